// Package epoch holds the revocation state a verifier reads: each editor's
// auth_epoch, role and active flag. A token is valid only if it was created
// strictly after its editor's epoch, compared at microsecond precision.
// Touching the epoch (setting it to now) revokes every older token of the
// editor; setting it to FarFuture locks the account.
//
// The verify path reads through Source, a one-method interface. Stores
// (package epoch/sqlite) implement it, and so does Cache, the bounded
// in-process layer that sits in front of them.
package epoch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors a Source or State.Admit returns.
var (
	// ErrNotFound means the editor does not exist.
	ErrNotFound = errors.New("unknown editor")
	// ErrRevoked means the token was created at or before the editor's
	// epoch.
	ErrRevoked = errors.New("token revoked")
	// ErrLocked means the editor is locked (epoch in the far future). It
	// wraps ErrRevoked.
	ErrLocked = fmt.Errorf("%w: editor locked", ErrRevoked)
	// ErrInactive means the editor is deactivated.
	ErrInactive = errors.New("editor inactive")
	// ErrTokenRevoked means this one token was revoked on its own. It wraps
	// ErrRevoked.
	ErrTokenRevoked = fmt.Errorf("%w: this token was revoked", ErrRevoked)
)

// FarFuture is the epoch of a locked editor: no token can be created after
// it.
var FarFuture = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// Role is an editor's role.
type Role string

// Roles, from least to most powerful.
const (
	RoleEditor    Role = "editor"
	RoleBot       Role = "bot"
	RoleAdmin     Role = "admin"
	RoleSuperuser Role = "superuser"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleEditor, RoleBot, RoleAdmin, RoleSuperuser:
		return true
	}
	return false
}

// Permits reports whether an editor of role r may exercise right at all,
// whatever its tokens say: rights named "admin:…" need admin or superuser,
// "superuser:…" superuser; others are for every role. A token's caveats can
// only narrow this.
func (r Role) Permits(right string) bool {
	switch {
	case strings.HasPrefix(right, "superuser:"):
		return r == RoleSuperuser
	case strings.HasPrefix(right, "admin:"):
		return r == RoleAdmin || r == RoleSuperuser
	}
	return true
}

// State is what the verify path needs to know about an editor.
type State struct {
	// Epoch is the editor's auth_epoch, at microsecond precision.
	Epoch time.Time
	// Role is the editor's role.
	Role Role
	// Active is false for a deactivated editor, whose tokens all fail.
	Active bool
	// Version grows by one with every change to the editor, token
	// revocations included. Caches compare versions, not epochs, because
	// unlocking moves the epoch back from FarFuture.
	Version int64
	// Revoked lists the editor's API tokens revoked one by one that the
	// epoch does not already revoke (created after it, not expired), as
	// comma-separated token ids (upper-case UUIDs); see TokenRevoked. A
	// string keeps State comparable and cheap to copy.
	Revoked string
}

// TokenRevoked reports whether the token with the given id was revoked on
// its own.
func (s State) TokenRevoked(tokenID string) bool {
	if tokenID == "" || s.Revoked == "" {
		return false
	}
	for rest := s.Revoked; rest != ""; {
		id, next, _ := strings.Cut(rest, ",")
		if id == tokenID {
			return true
		}
		rest = next
	}
	return false
}

// Locked reports whether the editor is locked.
func (s State) Locked() bool { return !s.Epoch.Before(FarFuture) }

// Admit applies the epoch rule to a token created at created: it returns nil
// when the editor is active and created, truncated to the microsecond, is
// strictly after the epoch; otherwise ErrInactive, ErrLocked or ErrRevoked.
// Any tokenIDs given (the token's own id, and those of the tokens it was
// exchanged from) must not be revoked one by one either (ErrTokenRevoked).
func (s State) Admit(created time.Time, tokenIDs ...string) error {
	switch {
	case !s.Active:
		return ErrInactive
	case s.Locked():
		return ErrLocked
	case !created.Truncate(time.Microsecond).After(s.Epoch):
		return ErrRevoked
	}
	for _, id := range tokenIDs {
		if s.TokenRevoked(id) {
			return ErrTokenRevoked
		}
	}
	return nil
}

// A Source answers the verify path's one question: what is this editor's
// state? It returns ErrNotFound for an unknown editor; any other error means
// it could not answer, and the verifier denies.
type Source interface {
	State(ctx context.Context, editorID string) (State, error)
}

// Editor is an editor's full record, as stores list it.
type Editor struct {
	ID       string
	Username string
	Role     Role
	// Bot marks an automated account (fatcat's is_bot), whatever its role.
	Bot    bool
	Active bool
	// AuthEpoch is the editor's epoch.
	AuthEpoch time.Time
	Created   time.Time
	Version   int64
	// Revoked is State.Revoked.
	Revoked string
}

// State returns the part of e the verify path reads.
func (e Editor) State() State {
	return State{Epoch: e.AuthEpoch, Role: e.Role, Active: e.Active, Version: e.Version, Revoked: e.Revoked}
}

// Locked reports whether the editor is locked.
func (e Editor) Locked() bool { return e.State().Locked() }
