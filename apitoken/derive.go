package apitoken

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// A Parent is the token a new token is derived from: its text, exactly as
// it was verified, and the identity verifying it gave. Everything the new
// token may do is derived from it (see Issuer).
type Parent struct {
	// Token is the creating token in wire form. It is read, never stored
	// or logged.
	Token string
	// Identity is what verifying Token gave.
	Identity verifier.Identity
}

// derivation is the derived-token rule applied to one creator: what every
// token it creates must carry, what it may ask for, and how long it may
// live. It is the only place the rule is written; Create and Exchange both
// build their tokens from one.
type derivation struct {
	// editorID is the editor every child acts for.
	editorID string
	// username is the creator's username claim, written into the child as
	// a claim ("" for none).
	username string
	// carried are the creator's restrictions, carried over verbatim (rights,
	// endpoint, method, path_prefix, registered caveats, parent_token), and
	// the creator's own id as a parent_token when it has one.
	carried []caveat.Caveat
	// allows reports whether the creator may give a child right: its
	// editor's role permits it and, when the creator restricts rights, it
	// is among them.
	allows func(right string) bool
	// bound names what bounds the rights, for refusals: "a bot", "the
	// creating token".
	bound string
	// rights are the creator's effective rights, or nil when its token
	// does not restrict rights: what a child inherits when it asks for none.
	rights []string
	// rightsCarried: the carried rights caveats already leave exactly
	// rights, so an inheriting child needs no caveat of its own (chains of
	// derived tokens grow by as little as possible).
	rightsCarried bool
	// endpoints are the endpoints the creator is limited to.
	endpoints []string
	// expires is the latest expiry a child may have, or zero when the
	// creator puts no bound on it (a token without expiry, a pristine
	// session, or an operator).
	expires time.Time
}

// operator is the derivation for an operator's request (the CLI, which
// holds the store and the keys): bounded by the editor's role alone.
func operator(editorID string, role epoch.Role) *derivation {
	return &derivation{editorID: editorID, allows: role.Permits, bound: "a " + string(role)}
}

// derive applies the rule to a creator. With sessionException, a pristine
// login session (kind = session, nothing appended by a holder) bounds
// neither the lifetime of its children nor adds itself to their revocation
// chain: this is how a user's 12-hour session creates a 90-day API token.
// Everything else — a session a holder attenuated, an exchanged token, an
// API token, a token without a kind — bounds its children by its own expiry
// and revocation chain.
func (i *Issuer) derive(p *Parent, sessionException bool) (*derivation, error) {
	tok, err := macaroon.Parse(p.Token, macaroon.Limits{})
	if err != nil {
		return nil, fmt.Errorf("apitoken: the creating token does not parse: %w", err)
	}
	texts := tok.Caveats()
	raw := make([][]byte, len(texts))
	for n, t := range texts {
		raw[n] = []byte(t)
	}
	cl, err := i.checker.Claims(raw)
	if err != nil {
		// Verified by the daemon, refused by this issuer's checker: it
		// does not know a caveat the verifier's knows. It will never work.
		return nil, fmt.Errorf("%w: the creating token carries a caveat this issuer cannot carry over", ErrInvalid)
	}
	id := p.Identity
	if tok.KeyID() != id.KeyID || tok.TokenID() != id.TokenID || cl.EditorID != id.EditorID {
		return nil, errors.New("apitoken: the creator's identity is not its token's")
	}
	d := &derivation{editorID: id.EditorID, username: cl.Username, allows: id.Can, bound: "the creating token"}
	if id.Rights != nil {
		d.rights = normalize(id.Rights)
		d.rightsCarried = cl.Rights != nil && slices.Equal(d.rights, normalize(cl.Rights))
	}
	session := sessionException && cl.Kind == caveat.KindSession && cl.Pristine
	if !session {
		d.expires = cl.Expires
	}
	for _, text := range texts {
		c, err := i.checker.Parse(text)
		if err != nil {
			return nil, fmt.Errorf("%w: the creating token carries a caveat this issuer cannot carry over", ErrInvalid)
		}
		switch c := c.(type) {
		case caveat.EditorID, caveat.Username, caveat.Kind, caveat.Created:
			// Claims: the minter writes the child's own.
		case caveat.Expiry:
			// Folded into d.expires: the child's one expiry is the
			// earliest of them (or, for a pristine session, the policy's).
		case caveat.Endpoint:
			d.endpoints = append(d.endpoints, string(c))
			d.carried = append(d.carried, c)
		default:
			d.carried = append(d.carried, c)
		}
	}
	if !session && id.TokenID != "" {
		d.carried = append(d.carried, caveat.ParentToken(id.TokenID))
	}
	return d, nil
}

// recorded are the texts of the carried caveats the registry row does not
// record in another field (epoch.APIToken.Caveats): all but rights,
// endpoint and parent_token. Never nil: a row records them as known.
func (d *derivation) recorded() []string {
	texts := []string{}
	for _, c := range d.carried {
		switch c.(type) {
		case caveat.Rights, caveat.Endpoint, caveat.ParentToken:
			continue
		}
		if t := c.String(); !slices.Contains(texts, t) {
			texts = append(texts, t)
		}
	}
	return texts
}

// child is what one child token asks for.
type child struct {
	// rights asked for; nil inherits the creator's.
	rights []string
	// endpoint asked for; "" inherits the creator's (if any).
	endpoint string
	// expires is the expiry asked for; zero for none.
	expires time.Time
	kind    caveat.Kind
	// now is the issuer's clock, to refuse a creator that has expired.
	now time.Time
}

// minted is a child as the rule let it be: the options to mint it with and
// what it carries, for the registry.
type minted struct {
	opts     []macaroon.MintOption
	rights   []string // nil: unrestricted
	endpoint string
	expires  time.Time
	parents  []string // the parent_token ids it carries
}

// child applies the rule to one request: the rights asked for must be
// well-formed and among the creator's, the endpoint must not leave the
// creator's, and the expiry is at most the creator's. Errors wrap
// ErrInvalid or ErrRightNotAllowed and repeat no requested value that did
// not pass its grammar (a right name is at most 64 characters of
// [a-z0-9_.:-]: never a token).
func (d *derivation) child(req child) (*minted, error) {
	if req.rights != nil && len(req.rights) == 0 {
		return nil, fmt.Errorf("%w: rights must name at least one right (leave them out to inherit)", ErrInvalid)
	}
	for _, r := range req.rights {
		if !caveat.ValidRight(r) {
			return nil, fmt.Errorf("%w: a right is malformed (want [a-z][a-z0-9_.:-]{0,63})", ErrInvalid)
		}
	}
	for _, r := range req.rights {
		if !d.allows(r) {
			return nil, fmt.Errorf("%w: %s may not hold %q", ErrRightNotAllowed, d.bound, r)
		}
	}
	if req.endpoint != "" {
		if !caveat.ValidEndpoint(req.endpoint) {
			return nil, fmt.Errorf("%w: the endpoint is malformed", ErrInvalid)
		}
		for _, e := range d.endpoints {
			if e != req.endpoint {
				return nil, fmt.Errorf("%w: the creator is limited to another endpoint", ErrRightNotAllowed)
			}
		}
	}
	m := &minted{expires: req.expires}
	if !d.expires.IsZero() && (m.expires.IsZero() || m.expires.After(d.expires)) {
		m.expires = d.expires
	}
	if !m.expires.IsZero() && !m.expires.After(req.now) {
		return nil, fmt.Errorf("%w: the creating token has expired", ErrInvalid)
	}
	cavs := slices.Clone(d.carried)
	for _, c := range cavs {
		if p, ok := c.(caveat.ParentToken); ok {
			m.parents = append(m.parents, string(p))
		}
	}
	switch {
	case req.rights != nil:
		m.rights = normalize(req.rights)
		cavs = append(cavs, caveat.Rights(m.rights))
	case len(d.rights) > 0:
		m.rights = d.rights
		if !d.rightsCarried {
			cavs = append(cavs, caveat.Rights(m.rights))
		}
	case d.rights != nil:
		m.rights = []string{} // the creator may exercise no right; its caveats, carried, say so
	}
	if len(d.endpoints) > 0 {
		m.endpoint = d.endpoints[0]
	} else if req.endpoint != "" {
		m.endpoint = req.endpoint
		cavs = append(cavs, caveat.Endpoint(req.endpoint))
	}
	m.opts = []macaroon.MintOption{macaroon.WithKind(req.kind), macaroon.WithCaveats(cavs...)}
	if d.username != "" {
		m.opts = append(m.opts, macaroon.WithUsername(d.username))
	}
	if !m.expires.IsZero() {
		m.opts = append(m.opts, macaroon.ExpiresAt(m.expires))
	}
	return m, nil
}

// mintErr maps a failure to mint a child: a child that cannot be minted
// because of what it would carry (over the token limits, a caveat the
// minter's checker refuses) will never be; anything else (no current key,
// a cancelled context) may pass.
func mintErr(err error) error {
	if errors.Is(err, macaroon.ErrMalformed) || errors.Is(err, caveat.ErrMalformed) || errors.Is(err, caveat.ErrUnknown) {
		return fmt.Errorf("%w: the new token cannot carry its creator's caveats (too many, or unknown to the minter)", ErrInvalid)
	}
	return err
}
