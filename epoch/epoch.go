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

// rank orders the roles, from 1 (editor) up; 0 for an unknown role.
func (r Role) rank() int {
	switch r {
	case RoleEditor:
		return 1
	case RoleBot:
		return 2
	case RoleAdmin:
		return 3
	case RoleSuperuser:
		return 4
	}
	return 0
}

// Outranks reports whether r is above o in the order editor < bot < admin
// < superuser: what an editor of role r may do to an editor of role o
// without making anything more powerful than itself (linking a login
// identity to an editor is a way to log in as it). It is false when
// either role is unknown, and for equal roles.
func (r Role) Outranks(o Role) bool {
	return r.rank() > 0 && o.rank() > 0 && r.rank() > o.rank()
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
	// comma-separated token ids: upper-case UUIDs (36 characters each),
	// sorted, without duplicates (see CheckRevoked). TokenRevoked searches it
	// in O(log n). A string keeps State comparable and cheap to copy; stores
	// bound its length (epoch/sqlite: at most its revoked-token limit plus
	// its live-token limit).
	Revoked string
	// Seq is the change-log head (see ChangeLog) in the snapshot the state
	// was read from: the state reflects every change up to Seq. Zero when
	// the source keeps no change log.
	Seq int64
}

// tokenIDLen is the length of a token id in Revoked: an upper-case UUID.
const tokenIDLen = 36

// ErrBadRevoked means a revoked-token list is not in State.Revoked's format.
var ErrBadRevoked = errors.New("malformed revoked-token list")

// CheckRevoked checks a revoked-token list read from outside the process
// (a cache): comma-separated upper-case UUIDs in strictly increasing order.
// Errors wrap ErrBadRevoked.
func CheckRevoked(list string) error {
	if list == "" {
		return nil
	}
	if (len(list)+1)%(tokenIDLen+1) != 0 {
		return fmt.Errorf("%w: length %d", ErrBadRevoked, len(list))
	}
	prev := ""
	for i := 0; i < len(list); i += tokenIDLen + 1 {
		id := list[i : i+tokenIDLen]
		if i+tokenIDLen < len(list) && list[i+tokenIDLen] != ',' {
			return fmt.Errorf("%w: no comma after record %d", ErrBadRevoked, i/(tokenIDLen+1))
		}
		if !validTokenID(id) {
			return fmt.Errorf("%w: record %d is not an upper-case UUID", ErrBadRevoked, i/(tokenIDLen+1))
		}
		if id <= prev {
			return fmt.Errorf("%w: record %d is out of order", ErrBadRevoked, i/(tokenIDLen+1))
		}
		prev = id
	}
	return nil
}

// validTokenID reports whether id is XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX
// of [0-9A-F].
func validTokenID(id string) bool {
	if len(id) != tokenIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// TokenRevoked reports whether the token with the given id was revoked on
// its own: a binary search over Revoked's fixed-width records, O(log n),
// without allocating.
func (s State) TokenRevoked(tokenID string) bool {
	if len(tokenID) != tokenIDLen || s.Revoked == "" {
		return false
	}
	lo, hi := 0, (len(s.Revoked)+1)/(tokenIDLen+1)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		start := mid * (tokenIDLen + 1)
		if start+tokenIDLen > len(s.Revoked) {
			return false // not the format CheckRevoked accepts
		}
		switch rec := s.Revoked[start : start+tokenIDLen]; {
		case rec == tokenID:
			return true
		case rec < tokenID:
			lo = mid + 1
		default:
			hi = mid
		}
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
	// Seq is State.Seq: the change-log head when the record was read.
	Seq int64
}

// State returns the part of e the verify path reads.
func (e Editor) State() State {
	return State{Epoch: e.AuthEpoch, Role: e.Role, Active: e.Active, Version: e.Version, Revoked: e.Revoked, Seq: e.Seq}
}

// Locked reports whether the editor is locked.
func (e Editor) Locked() bool { return e.State().Locked() }
