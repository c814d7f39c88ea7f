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
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

var (
	// ErrRightNotAllowed means a token was asked for a right its editor's
	// role or its parent token does not allow.
	ErrRightNotAllowed = errors.New("right not allowed")
	// ErrInvalid means a request to create a token is malformed: its name,
	// description, rights, endpoint or lifetime.
	ErrInvalid = errors.New("invalid token request")
)

// Issuer creates and exchanges tokens.
type Issuer struct {
	store   *sqlite.Store
	minter  *macaroon.Minter
	now     func() time.Time
	checker *caveat.Checker // built-in caveats: what exchange copies and creation accepts
}

// NewIssuer returns an Issuer minting with minter and registering in store.
func NewIssuer(store *sqlite.Store, minter *macaroon.Minter, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	checker, err := caveat.NewChecker()
	if err != nil {
		panic(err) // no options: cannot fail
	}
	return &Issuer{store: store, minter: minter, now: now, checker: checker}
}

// Request describes a token to create.
type Request struct {
	EditorID    string
	Name        string
	Description string
	// Rights limits the token; nil leaves it unrestricted (bounded by the
	// editor's role all the same).
	Rights []string
	// Endpoint, when set, limits the token to requests naming it.
	Endpoint string
	// TTL is the token's lifetime; 0 for none.
	TTL time.Duration
	// Creator is who asks (an editor id, or "cli").
	Creator string
}

// Create mints an API token, registers it and returns the secret (shown
// once) with its row. Rights the editor's role does not permit are refused
// (ErrRightNotAllowed): a bot's token never names an admin right.
func (i *Issuer) Create(ctx context.Context, r Request) (string, sqlite.APIToken, error) {
	ed, err := i.store.Editor(ctx, r.EditorID)
	if err != nil {
		return "", sqlite.APIToken{}, err
	}
	if err := sqlite.CheckTokenText(r.Name, r.Description); err != nil {
		return "", sqlite.APIToken{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if r.TTL < 0 {
		return "", sqlite.APIToken{}, fmt.Errorf("%w: negative lifetime", ErrInvalid)
	}
	if r.Endpoint != "" {
		if _, err := i.checker.Parse(caveat.Endpoint(r.Endpoint).String()); err != nil {
			return "", sqlite.APIToken{}, fmt.Errorf("%w: endpoint %q", ErrInvalid, r.Endpoint)
		}
	}
	for _, right := range r.Rights {
		if !caveat.ValidRight(right) {
			return "", sqlite.APIToken{}, fmt.Errorf("%w: right %q", ErrInvalid, right)
		}
		if !ed.Role.Permits(right) {
			return "", sqlite.APIToken{}, fmt.Errorf("%w: a %s may not hold %q", ErrRightNotAllowed, ed.Role, right)
		}
	}
	var opts []macaroon.MintOption
	var rights []string // what the token says, and so what the row records
	if r.Rights != nil {
		rights = normalize(r.Rights)
		opts = append(opts, macaroon.WithCaveats(caveat.Rights(rights)))
	}
	if r.Endpoint != "" {
		opts = append(opts, macaroon.WithCaveats(caveat.Endpoint(r.Endpoint)))
	}
	if r.TTL > 0 {
		opts = append(opts, macaroon.ExpiresIn(r.TTL))
	}
	m, err := i.minter.Mint(ctx, ed.ID, opts...)
	if err != nil {
		return "", sqlite.APIToken{}, err
	}
	row := sqlite.APIToken{
		TokenID: m.TokenID, EditorID: ed.ID, Name: r.Name, Description: r.Description,
		Rights: rights, Endpoint: r.Endpoint, Created: m.Created, Creator: r.Creator, Expires: m.Expires,
	}
	// Registered after minting: if registering fails, the token was never
	// shown to anyone.
	if err := i.store.RegisterToken(ctx, row); err != nil {
		return "", sqlite.APIToken{}, err
	}
	return m.Token, row, nil
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

// Exchange mints a short-lived access token for the holder of parent (a
// verified identity, minted as parentToken): the same editor, every
// restriction of the parent (rights, endpoint, method, path, expiry, parent
// tokens — copied as they are, so the new token can do no more), rights
// narrowed further when given (they must be among the parent's), expiring
// after ttl (default DefaultExchangeTTL, at most MaxExchangeTTL), and a
// parent_token caveat naming the parent, so that revoking it revokes this.
// A parent with a caveat the built-in checker does not know is refused.
func (i *Issuer) Exchange(ctx context.Context, parent verifier.Identity, parentToken string, rights []string, ttl time.Duration) (*macaroon.Minted, error) {
	if ttl <= 0 {
		ttl = DefaultExchangeTTL
	}
	for _, r := range rights {
		if !parent.Can(r) {
			return nil, fmt.Errorf("%w: the parent token does not allow %q", ErrRightNotAllowed, r)
		}
	}
	tok, err := macaroon.Parse(parentToken, macaroon.Limits{})
	if err != nil {
		return nil, err
	}
	var cavs []caveat.Caveat
	for _, text := range tok.Caveats() {
		c, err := i.checker.Parse(text)
		if err != nil {
			return nil, fmt.Errorf("cannot exchange a token with caveat %q: %w", text, err)
		}
		switch c.(type) {
		case caveat.EditorID, caveat.Created: // claims: the minter writes its own
		default:
			cavs = append(cavs, c)
		}
	}
	if rights != nil {
		cavs = append(cavs, caveat.Rights(normalize(rights)))
	}
	if parent.TokenID != "" {
		cavs = append(cavs, caveat.ParentToken(parent.TokenID))
	}
	return i.minter.Mint(ctx, parent.EditorID, macaroon.ExpiresIn(min(ttl, MaxExchangeTTL)), macaroon.WithCaveats(cavs...))
}
