package apitoken

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// Status is what a registry row's token is now, derived from everything
// that decides whether it verifies (StatusOf). Only StatusLive verifies.
type Status string

// Statuses, in the order StatusOf tests them.
const (
	// StatusRevoked: this token was revoked on its own.
	StatusRevoked Status = "revoked"
	// StatusRevokedByParent: a token it was derived from (a parent_token
	// caveat) was revoked, which revokes it too.
	StatusRevokedByParent Status = "revoked_by_parent"
	// StatusExpired: its expiry has passed.
	StatusExpired Status = "expired"
	// StatusEditorLocked: its editor is locked; unlocking does not revive
	// it.
	StatusEditorLocked Status = "editor_locked"
	// StatusRevokedByTouch: it was created at or before its editor's epoch:
	// a touch ("log out everywhere"), or an unlock after a lock.
	StatusRevokedByTouch Status = "revoked_by_touch"
	// StatusEditorDeactivated: its editor is deactivated; activating the
	// editor revives it.
	StatusEditorDeactivated Status = "editor_deactivated"
	// StatusOverPolicy: it lives longer than the lifetime policy now
	// allows (Policy.OverMax), so verifiers enforcing the policy refuse it;
	// loosening the policy revives it.
	StatusOverPolicy Status = "over_policy"
	// StatusLive: it verifies (for requests its caveats allow).
	StatusLive Status = "live"
)

// Statuses lists every Status, in the order StatusOf tests them.
var Statuses = []Status{StatusRevoked, StatusRevokedByParent, StatusExpired, StatusEditorLocked,
	StatusRevokedByTouch, StatusEditorDeactivated, StatusOverPolicy, StatusLive}

// StatusOf is the status of registry row t, a token of editor ed, under
// policy p at now. Causes that are final come first: a revoked and expired
// token is "revoked", an expired token of a deactivated editor "expired".
// It is the one place the registry's status is decided; the CLI, the
// daemon's JSON and the web page all show it.
func StatusOf(t epoch.APIToken, ed epoch.Editor, p Policy, now time.Time) Status {
	touched, parent := t.RevokedBy(ed)
	switch {
	case !t.Revoked.IsZero():
		return StatusRevoked
	case parent:
		return StatusRevokedByParent
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return StatusExpired
	case ed.Locked():
		return StatusEditorLocked
	case touched:
		return StatusRevokedByTouch
	case !ed.Active:
		return StatusEditorDeactivated
	case p.OverMax(t.Created, t.Expires):
		return StatusOverPolicy
	}
	return StatusLive
}

// Row is a registry row with its status: the JSON form the CLI and the
// daemon show. Live is Status == StatusLive.
type Row struct {
	epoch.APIToken
	Status Status `json:"status"`
	Live   bool   `json:"live"`
}

// NewRow gives a registry row its status.
func NewRow(t epoch.APIToken, ed epoch.Editor, p Policy, now time.Time) Row {
	st := StatusOf(t, ed, p, now)
	return Row{APIToken: t, Status: st, Live: st == StatusLive}
}

// EditorSource finds editors by id (Rows weighs each token against its
// editor).
type EditorSource interface {
	Editor(ctx context.Context, id string) (epoch.Editor, error)
}

// Lister lists registry rows: an editor's (every editor's for ""), and
// those expiring soon. Both authoritative stores implement it.
type Lister interface {
	EditorSource
	Tokens(ctx context.Context, editorID string) ([]epoch.APIToken, error)
	ExpiringTokens(ctx context.Context, d time.Duration) ([]epoch.APIToken, error)
}

// Rows gives registry rows their statuses, reading each editor once from
// store.
func Rows(ctx context.Context, store EditorSource, rows []epoch.APIToken, p Policy, now time.Time) ([]Row, error) {
	out := make([]Row, 0, len(rows))
	editors := map[string]epoch.Editor{}
	for _, t := range rows {
		ed, ok := editors[t.EditorID]
		if !ok {
			var err error
			if ed, err = store.Editor(ctx, t.EditorID); err != nil {
				// Rows reference editors (a foreign key): any error is the
				// store's.
				return nil, fmt.Errorf("apitoken: reading editor of token %s: %w", t.TokenID, err)
			}
			editors[t.EditorID] = ed
		}
		out = append(out, NewRow(t, ed, p, now))
	}
	return out, nil
}

// List returns the registry rows of one editor (every editor's when
// editorID is ""), oldest first, with their statuses under p at now.
func List(ctx context.Context, store Lister, editorID string, p Policy, now time.Time) ([]Row, error) {
	rows, err := store.Tokens(ctx, editorID)
	if err != nil {
		return nil, err
	}
	return Rows(ctx, store, rows, p, now)
}

// Expiring returns the live tokens (StatusLive under p at now) that expire
// within d, soonest first, for warning their owners: never a token that no
// longer verifies.
func Expiring(ctx context.Context, store Lister, d time.Duration, p Policy, now time.Time) ([]Row, error) {
	if d <= 0 {
		return nil, errors.New("apitoken: the window must be positive")
	}
	rows, err := store.ExpiringTokens(ctx, d)
	if err != nil {
		return nil, err
	}
	all, err := Rows(ctx, store, rows, p, now)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, r := range all {
		if r.Live {
			out = append(out, r)
		}
	}
	return out, nil
}
