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

// ErrRightNotAllowed means a token was asked for a right its editor's role
// or its parent token does not allow.
var ErrRightNotAllowed = errors.New("right not allowed")

// Issuer creates and exchanges tokens.
type Issuer struct {
	store  *sqlite.Store
	minter *macaroon.Minter
	now    func() time.Time
}

// NewIssuer returns an Issuer minting with minter and registering in store.
func NewIssuer(store *sqlite.Store, minter *macaroon.Minter, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{store: store, minter: minter, now: now}
}

// Request describes a token to create.
type Request struct {
	EditorID    string
	Name        string
	Description string
	// Rights limits the token; nil leaves it unrestricted (bounded by the
	// editor's role all the same).
	Rights []string
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
	if r.TTL < 0 {
		return "", sqlite.APIToken{}, errors.New("negative lifetime")
	}
	for _, right := range r.Rights {
		if !caveat.ValidRight(right) {
			return "", sqlite.APIToken{}, fmt.Errorf("invalid right %q", right)
		}
		if !ed.Role.Permits(right) {
			return "", sqlite.APIToken{}, fmt.Errorf("%w: a %s may not hold %q", ErrRightNotAllowed, ed.Role, right)
		}
	}
	var opts []macaroon.MintOption
	if r.Rights != nil {
		opts = append(opts, macaroon.WithCaveats(caveat.Rights(slices.Compact(slices.Sorted(slices.Values(r.Rights))))))
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
		Rights: r.Rights, Created: m.Created, Creator: r.Creator, Expires: m.Expires,
	}
	// Registered after minting: if registering fails, the token was never
	// shown to anyone.
	if err := i.store.RegisterToken(ctx, row); err != nil {
		return "", sqlite.APIToken{}, err
	}
	return m.Token, row, nil
}

// DefaultExchangeTTL and MaxExchangeTTL bound exchanged tokens' lifetimes.
const (
	DefaultExchangeTTL = 15 * time.Minute
	MaxExchangeTTL     = time.Hour
)

// Exchange mints a short-lived access token for the holder of parent (a
// verified identity): the same editor, at most the parent's rights
// (rights, when given, must be among them), expiring after ttl (default
// DefaultExchangeTTL, at most MaxExchangeTTL, never after the parent), and
// carrying parent_token caveats so that revoking the parent revokes it.
func (i *Issuer) Exchange(ctx context.Context, parent verifier.Identity, parentToken string, rights []string, ttl time.Duration) (*macaroon.Minted, error) {
	if ttl <= 0 {
		ttl = DefaultExchangeTTL
	}
	ttl = min(ttl, MaxExchangeTTL)
	expires := i.now().Add(ttl)
	if !parent.Expires.IsZero() && parent.Expires.Before(expires) {
		expires = parent.Expires
	}
	var granted []string
	switch {
	case rights != nil:
		for _, r := range rights {
			if !parent.Can(r) {
				return nil, fmt.Errorf("%w: the parent token does not allow %q", ErrRightNotAllowed, r)
			}
		}
		granted = rights
	case parent.Rights != nil:
		granted = parent.Rights
	}
	var cavs []caveat.Caveat
	if granted != nil {
		cavs = append(cavs, caveat.Rights(slices.Compact(slices.Sorted(slices.Values(granted)))))
	}
	// The parent's own parents too, so revoking any ancestor revokes this.
	tok, err := macaroon.Parse(parentToken, macaroon.Limits{})
	if err != nil {
		return nil, err
	}
	checker, _ := caveat.NewChecker()
	for _, text := range tok.Caveats() {
		if c, err := checker.Parse(text); err == nil {
			if p, ok := c.(caveat.ParentToken); ok {
				cavs = append(cavs, p)
			}
		}
	}
	if parent.TokenID != "" {
		cavs = append(cavs, caveat.ParentToken(parent.TokenID))
	}
	return i.minter.Mint(ctx, parent.EditorID, macaroon.ExpiresAt(expires), macaroon.WithCaveats(cavs...))
}
