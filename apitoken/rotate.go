package apitoken

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// DefaultGrace is how long a rotated token keeps working at most when no
// grace is asked for; MaxGrace bounds what may be asked.
const (
	DefaultGrace = 24 * time.Hour
	MaxGrace     = 30 * 24 * time.Hour
)

// ErrNotRotatable means a token cannot be rotated: it no longer verifies
// (revoked, expired, revoked with its editor or a parent, over the policy)
// or was rotated already. It is epoch.ErrNotRotatable; the error also
// wraps epoch.ErrAlreadyRevoked or epoch.ErrAlreadyRotated when those
// apply.
var ErrNotRotatable = epoch.ErrNotRotatable

// ErrCaveatsUnknown means a token's registry row does not record the
// caveats it carries beyond its rights, endpoint and parents (a row
// registered before epoch.APIToken.Caveats existed), so a rotation by
// another caller could drop them. Such a token is rotated only by itself
// (RotateRequest.Parent is the old token, or an attenuation of it), or
// replaced by a new one. Rotate wraps it with ErrNotRotatable.
var ErrCaveatsUnknown = errors.New("the token's caveats are not recorded (it predates their recording): rotate it with the token itself, or create a new one")

// RotateRequest describes a rotation.
type RotateRequest struct {
	// TokenID is the token to replace.
	TokenID string
	// Grace is how long the old token keeps working at most (0:
	// DefaultGrace; at most MaxGrace). It stops earlier once the new
	// token is first used.
	Grace time.Duration
	// Creator is who asks (an editor id, or "cli"), for the registry.
	Creator string
	// Parent is the token that asks, as verified; nil for an operator.
	// It must be a token of the rotated token's editor.
	Parent *Parent
}

// Rotate replaces an API token with overlap: it creates a new token with
// the old one's name, description, rights, endpoint, parent_token caveats
// and recorded caveats (epoch.APIToken.Caveats: method, path_prefix,
// application caveats inherited from its creator), so it is never broader
// than the old one, expiring when the old one does (never later, and never without
// expiry unless the policy allows it), under every rule of Create (the
// creator's role and restrictions bound it); it registers the new token
// and marks the old one as rotated to it in one transaction, so that of
// concurrent rotations of one token one succeeds. The old token keeps
// working until the new one is first used or the grace ends; the store's
// RetireRotated then revokes it (amarettid runs it after each batch of
// last uses). Rotating a token that is not live fails with
// ErrNotRotatable, and a token whose row does not record its caveats with
// ErrCaveatsUnknown too, unless the old token itself asks. When the
// caller is the old token (same token id), it does not become a parent of
// the successor (whose retirement of the old would revoke it); its other
// caveats carry over all the same. It returns the new secret (shown once), the new row
// and the old row as updated.
func (i *Issuer) Rotate(ctx context.Context, r RotateRequest) (string, epoch.APIToken, epoch.APIToken, error) {
	switch {
	case r.Grace < 0 || r.Grace > MaxGrace:
		return "", epoch.APIToken{}, epoch.APIToken{}, fmt.Errorf("%w: the grace period must be positive and at most %v", ErrInvalid, MaxGrace)
	case r.Grace == 0:
		r.Grace = DefaultGrace
	}
	old, err := i.store.Token(ctx, r.TokenID)
	if err != nil {
		return "", epoch.APIToken{}, epoch.APIToken{}, err
	}
	ed, err := i.store.Editor(ctx, old.EditorID)
	if err != nil {
		return "", epoch.APIToken{}, epoch.APIToken{}, err
	}
	now := i.now()
	switch st := StatusOf(old, ed, i.policy, now); {
	case st == StatusRevoked:
		return "", epoch.APIToken{}, old, fmt.Errorf("%w: %w", ErrNotRotatable, epoch.ErrAlreadyRevoked)
	case old.RotatedTo != "":
		return "", epoch.APIToken{}, old, fmt.Errorf("%w: %w", ErrNotRotatable, epoch.ErrAlreadyRotated)
	case st != StatusLive:
		return "", epoch.APIToken{}, old, fmt.Errorf("%w: the token is %s", ErrNotRotatable, st)
	}
	if old.Rights != nil && len(old.Rights) == 0 {
		// A token whose creator could exercise no right: asking for none
		// would inherit the rotating creator's instead.
		return "", epoch.APIToken{}, old, fmt.Errorf("%w: a token without any right is not rotated; create a new one", ErrNotRotatable)
	}
	if old.Caveats == nil && (r.Parent == nil || r.Parent.Identity.TokenID != old.TokenID) {
		// A row registered before caveats were recorded: only the token
		// itself tells what it carries (derive reads it).
		return "", epoch.APIToken{}, old, fmt.Errorf("%w: %w", ErrNotRotatable, ErrCaveatsUnknown)
	}
	req := Request{
		EditorID: old.EditorID, Name: old.Name, Description: old.Description, Rights: old.Rights, Endpoint: old.Endpoint,
		Creator: r.Creator, Parent: r.Parent, NoExpiry: old.Expires.IsZero(),
	}
	if !req.NoExpiry {
		// The remaining lifetime: the new token expires when the old one
		// does, never later (create caps it at old.Expires).
		req.TTL = old.Expires.Sub(now)
		if req.TTL <= 0 {
			return "", epoch.APIToken{}, old, fmt.Errorf("%w: the token is %s", ErrNotRotatable, StatusExpired)
		}
	}
	var updated epoch.APIToken
	secret, row, err := i.create(ctx, req, carry{parents: old.Parents, caveats: old.Caveats, successorOf: old.TokenID, notAfter: old.Expires,
		register: func(ctx context.Context, n epoch.APIToken) error {
			if !old.Expires.IsZero() && n.Expires.After(old.Expires) {
				return fmt.Errorf("%w: the new token would outlive the old one", ErrInvalid)
			}
			var err error
			updated, err = i.store.RotateToken(ctx, old.TokenID, n, now.Add(r.Grace))
			return err
		}})
	switch {
	case errors.Is(err, epoch.ErrAlreadyRotated), errors.Is(err, epoch.ErrAlreadyRevoked):
		return "", epoch.APIToken{}, old, fmt.Errorf("%w: %w", ErrNotRotatable, err)
	case err != nil:
		return "", epoch.APIToken{}, old, err
	}
	row.RotatedFrom = old.TokenID
	return secret, row, updated, nil
}
