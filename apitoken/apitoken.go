// Package apitoken manages API tokens: many named tokens per editor, each
// with its own rights and expiry, registered so that each can be listed and
// revoked on its own; the exchange of a long-lived token for a short-lived
// one; and the recording of last use, off the verify path.
//
// Revocation of one token works through the editor's state (epoch.State
// lists the editor's revoked tokens), so it reaches every verifier the way
// a touch does. The secret token is returned once, at creation, and never
// stored.
package apitoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

var (
	// ErrRightNotAllowed means a token was asked for a right (or an
	// endpoint) that its creator does not have: the editor's role or, when
	// a token creates it, that token's own restrictions.
	ErrRightNotAllowed = errors.New("right not allowed")
	// ErrInvalid means a request to create a token is malformed (its name,
	// description, rights, endpoint or lifetime), or can never succeed (the
	// creating token has expired, or the new token could not carry its
	// creator's caveats). Such a request will fail the same way every time.
	ErrInvalid = errors.New("invalid token request")
)

// DefaultMaxLifetime is the longest lifetime of an API token unless
// WithMaxLifetime says otherwise: one year, as GitHub's organisations and
// GitLab allow.
const DefaultMaxLifetime = 365 * 24 * time.Hour

// Issuer creates and exchanges tokens under one rule, the derived-token
// rule: nothing a token creates is more powerful or longer-lived than that
// token. A token created from a parent token (Request.Parent, Exchange)
//   - carries every restriction of the parent verbatim: rights, endpoint,
//     method, path_prefix, any caveat an application registered, and every
//     parent_token, so it can do no more;
//   - may ask only for rights the parent may exercise (its editor's role
//     and its rights caveats); asking for none inherits the parent's;
//   - expires no later than the parent, also when it asks for no lifetime
//     or for the default one;
//   - names the parent's token id in a parent_token caveat, so revoking
//     any ancestor revokes it.
//
// The one exception is a login session exactly as a frontend minted it
// (kind = session, and nothing appended by a holder: caveat.Claims
// Pristine): the API tokens it creates (Create, not Exchange) may live up
// to the lifetime policy (WithPolicy) and do not die with the session;
// they still carry every restriction the minter wrote into it. An operator
// (a Request without Parent) creates within the editor's role.
//
// Every token the issuer creates gets its lifetime from the policy (see
// Policy.Lifetime): the kind's default when none is asked for, never more
// than the maximum for an API token, and no expiry only when the policy
// allows it and the request asks for it (Request.NoExpiry).
type Issuer struct {
	store   Registry
	minter  *macaroon.Minter
	checker *caveat.Checker
	now     func() time.Time
	policy  Policy
}

// An Option configures an Issuer.
type Option func(*Issuer) error

// WithClock sets the issuer's clock (default time.Now); it should be the
// minter's.
func WithClock(now func() time.Time) Option {
	return func(i *Issuer) error {
		if now == nil {
			return errors.New("apitoken: nil clock")
		}
		i.now = now
		return nil
	}
}

// WithMaxLifetime sets the longest lifetime an API token may be created
// with (the policy's MaxAPI, default DefaultMaxLifetime), lowering the API
// and bootstrap defaults to it when they are longer.
func WithMaxLifetime(d time.Duration) Option {
	return func(i *Issuer) error {
		if d <= 0 {
			return fmt.Errorf("apitoken: maximum lifetime %v is not positive", d)
		}
		i.policy.MaxAPI = d
		i.policy.API, i.policy.Bootstrap = min(i.policy.API, d), min(i.policy.Bootstrap, d)
		return nil
	}
}

// WithPolicy sets the lifetime policy (default DefaultPolicy()). It must
// pass Policy.Validate.
func WithPolicy(p Policy) Option {
	return func(i *Issuer) error {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("apitoken: %w", err)
		}
		i.policy = p
		return nil
	}
}

// Policy returns the issuer's lifetime policy.
func (i *Issuer) Policy() Policy { return i.policy }

// Registry is what an Issuer needs of a store: the editor a token is for,
// and a row in the token registry for each token it mints. Both
// authoritative stores (epoch/sqlite, epoch/postgres) implement it.
type Registry interface {
	Editor(ctx context.Context, id string) (epoch.Editor, error)
	RegisterToken(ctx context.Context, t epoch.APIToken) error
	Token(ctx context.Context, tokenID string) (epoch.APIToken, error)
	epoch.Rotations
}

// NewIssuer returns an Issuer minting with minter and registering in
// store. checker must be the verifier's: it reads the caveats of creating
// tokens, including any an application registered (the minter must know
// them too, to write them into the children).
func NewIssuer(store Registry, minter *macaroon.Minter, checker *caveat.Checker, opts ...Option) (*Issuer, error) {
	if store == nil || minter == nil || checker == nil {
		return nil, errors.New("apitoken: store, minter and checker are required")
	}
	i := &Issuer{store: store, minter: minter, checker: checker, now: time.Now, policy: DefaultPolicy()}
	for _, o := range opts {
		if err := o(i); err != nil {
			return nil, err
		}
	}
	return i, nil
}

// Request describes a token to create.
type Request struct {
	// EditorID is the editor the token acts for. With a Parent it may be
	// left empty, and otherwise must be the parent's editor.
	EditorID    string
	Name        string
	Description string
	// Rights limits the token; nil inherits the parent's rights (or, for
	// an operator, leaves the token unrestricted, bounded by the editor's
	// role all the same). A non-nil empty list is invalid.
	Rights []string
	// Endpoint, when set, limits the token to requests naming it.
	Endpoint string
	// TTL is the token's lifetime, at most the policy's maximum. 0 means
	// the policy's default for the kind (Policy.API, Policy.Bootstrap). A
	// token created from a Parent never outlives it (see Issuer).
	TTL time.Duration
	// NoExpiry asks for a token that never expires (TTL must be 0). The
	// policy must allow it (Policy.AllowNoExpiry), or the request fails
	// with ErrPolicy; a token created from a Parent still expires with it.
	NoExpiry bool
	// Creator is who asks (an editor id, or "cli"), for the registry.
	Creator string
	// Parent is the token that asks, as verified; nil for an operator (the
	// CLI). See Issuer for what it bounds.
	Parent *Parent
	// Kind is the kind of token to write: caveat.KindAPI (the default) or,
	// for an operator only, caveat.KindBootstrap.
	Kind caveat.Kind
}

// Create mints an API token, registers it and returns the secret (shown
// once, in the API token format: macaroon.FormatAPI) with its row, which records what the token carries. Rights the
// editor's role, or the parent token, does not permit are refused
// (ErrRightNotAllowed): a bot's token never names an admin right. Malformed
// requests are refused with ErrInvalid.
func (i *Issuer) Create(ctx context.Context, r Request) (string, epoch.APIToken, error) {
	return i.create(ctx, r, carry{register: i.store.RegisterToken})
}

// carry is what a rotation adds to Create: what the old token carried
// besides what the creator carries.
type carry struct {
	// parents are parent_token ids carried besides the creator's.
	parents []string
	// caveats are caveat texts carried besides the creator's
	// (epoch.APIToken.Caveats of the old token).
	caveats []string
	// successorOf is the id of the token replaced: a creator with that
	// token id (the old token itself, or an attenuation of it) does not
	// become a parent of its successor, whose rotation would revoke it.
	successorOf string
	// notAfter bounds the expiry (zero: no bound).
	notAfter time.Time
	// register registers the row.
	register func(context.Context, epoch.APIToken) error
}

// create is Create, carrying what x names and registering the row with
// x.register.
func (i *Issuer) create(ctx context.Context, r Request, x carry) (string, epoch.APIToken, error) {
	if r.Parent != nil {
		switch {
		case r.EditorID == "":
			r.EditorID = r.Parent.Identity.EditorID
		case r.EditorID != r.Parent.Identity.EditorID:
			return "", epoch.APIToken{}, fmt.Errorf("%w: a token creates tokens for its own editor only", ErrInvalid)
		}
	}
	switch {
	case r.Kind == "":
		r.Kind = caveat.KindAPI
	case r.Kind == caveat.KindAPI, r.Kind == caveat.KindBootstrap && r.Parent == nil:
	default:
		return "", epoch.APIToken{}, fmt.Errorf("%w: an API token's kind is api (or bootstrap, for an operator)", ErrInvalid)
	}
	if err := epoch.CheckTokenText(r.Name, r.Description); err != nil {
		return "", epoch.APIToken{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	ttl, err := i.policy.Lifetime(r.Kind, r.TTL, r.NoExpiry)
	if err != nil {
		return "", epoch.APIToken{}, err
	}
	ed, err := i.store.Editor(ctx, r.EditorID)
	if err != nil {
		return "", epoch.APIToken{}, err
	}
	now := i.now()
	d := operator(ed.ID, ed.Role)
	if r.Parent != nil {
		if d, err = i.derive(r.Parent, true); err != nil {
			return "", epoch.APIToken{}, err
		}
		can := d.allows
		d.allows = func(right string) bool { return ed.Role.Permits(right) && can(right) }
	}
	if x.successorOf != "" && r.Parent != nil && r.Parent.Identity.TokenID == x.successorOf {
		// The old token rotating itself: its own caveats, parents included,
		// carry over, but the successor must outlive its retirement.
		d.carried = slices.DeleteFunc(d.carried, func(c caveat.Caveat) bool { return c == caveat.ParentToken(x.successorOf) })
	}
	for _, p := range x.parents {
		if !slices.Contains(d.carried, caveat.Caveat(caveat.ParentToken(p))) {
			d.carried = append(d.carried, caveat.ParentToken(p))
		}
	}
	for _, text := range x.caveats {
		c, err := i.checker.Parse(text)
		if err != nil {
			return "", epoch.APIToken{}, fmt.Errorf("%w: the token carries a caveat this issuer cannot carry over", ErrInvalid)
		}
		if !slices.ContainsFunc(d.carried, func(o caveat.Caveat) bool { return o.String() == c.String() }) {
			d.carried = append(d.carried, c)
		}
	}
	want := child{rights: r.Rights, endpoint: r.Endpoint, kind: r.Kind, now: now}
	if ttl > 0 {
		want.expires = now.Add(ttl)
		if !x.notAfter.IsZero() && want.expires.After(x.notAfter) {
			want.expires = x.notAfter
		}
	}
	c, err := d.child(want)
	if err != nil {
		return "", epoch.APIToken{}, err
	}
	m, err := i.minter.Mint(ctx, ed.ID, c.opts...)
	if err != nil {
		return "", epoch.APIToken{}, mintErr(err)
	}
	row := epoch.APIToken{
		TokenID: m.TokenID, EditorID: ed.ID, Name: r.Name, Description: r.Description,
		Rights: c.rights, Endpoint: c.endpoint, Created: m.Created, Creator: r.Creator, Expires: m.Expires,
		Parents: c.parents, Caveats: d.recorded(),
	}
	// Registered after minting: if registering fails, the token was never
	// shown to anyone.
	if err := x.register(ctx, row); err != nil {
		return "", epoch.APIToken{}, err
	}
	return macaroon.FormatAPI(m.Token), row, nil
}

// normalize sorts rights and drops repeats; the caveat grammar refuses a
// right listed twice.
func normalize(rights []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(rights)))
}

// DefaultExchangeTTL and MaxExchangeTTL bound exchanged tokens' lifetimes.
const (
	DefaultExchangeTTL = 15 * time.Minute
	MaxExchangeTTL     = time.Hour
)

// Exchange mints a short-lived access token (kind exchange, written in the
// API token format: macaroon.FormatAPI) for the holder of parent, under the rule Issuer describes (no session exception):
// the same editor, every restriction of the parent, rights narrowed further
// when given (they must be among the parent's), expiring after ttl (default
// the policy's Exchange, DefaultExchangeTTL unless configured; at most
// MaxExchangeTTL) and never after the parent,
// and a parent_token caveat naming the parent, so that revoking it revokes
// this. The parent's username claim is kept as a claim.
func (i *Issuer) Exchange(ctx context.Context, parent Parent, rights []string, ttl time.Duration) (*macaroon.Minted, error) {
	if ttl < 0 {
		return nil, fmt.Errorf("%w: negative lifetime", ErrInvalid)
	}
	if ttl == 0 {
		ttl = i.policy.Exchange
	}
	d, err := i.derive(&parent, false)
	if err != nil {
		return nil, err
	}
	now := i.now()
	c, err := d.child(child{rights: rights, expires: now.Add(min(ttl, MaxExchangeTTL)), kind: caveat.KindExchange, now: now})
	if err != nil {
		return nil, err
	}
	m, err := i.minter.Mint(ctx, parent.Identity.EditorID, c.opts...)
	if err != nil {
		return nil, mintErr(err)
	}
	m.Token = macaroon.FormatAPI(m.Token)
	return m, nil
}
