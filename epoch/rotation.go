package epoch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	// ErrAlreadyRotated means a token was already rotated: it has a
	// successor, and is revoked once that is used or its grace ends.
	ErrAlreadyRotated = errors.New("token already rotated")
	// ErrNotRotatable means a token cannot be rotated: it no longer
	// verifies (expired, revoked with its editor or a parent).
	ErrNotRotatable = errors.New("token cannot be rotated")
)

// Rotations replaces API tokens with overlap: the old token keeps working
// until its successor is first used or its grace ends, and is then revoked
// by itself (RetireRotated). Both authoritative stores implement it.
type Rotations interface {
	// RotateToken registers successor, a token just minted to replace
	// oldID (same editor, same name), and marks oldID as rotated to it
	// with the given end of grace, in one transaction: of two concurrent
	// rotations of one token exactly one succeeds. It fails with
	// ErrTokenNotFound, ErrAlreadyRevoked, ErrAlreadyRotated,
	// ErrNotRotatable (oldID expired), ErrInvalidToken (a successor of
	// another editor or name), and RegisterToken's errors (the old
	// token's name is free for its successor). It returns the old row as
	// updated.
	RotateToken(ctx context.Context, oldID string, successor APIToken, graceUntil time.Time) (APIToken, error)
	// RetireRotated revokes every rotated token that is not revoked yet
	// and whose successor has been used (a last use is recorded) or
	// revoked, or whose grace has ended, bumping each editor's version in
	// the same transaction (as RevokeToken). A chain of rotations retires
	// in one call. It returns the changed editors, to announce, and the
	// revoked rows.
	RetireRotated(ctx context.Context) ([]Editor, []APIToken, error)
}

// CheckRotation checks a successor row against the row it replaces: the
// same editor and name. Errors wrap ErrInvalidToken.
func CheckRotation(old, successor APIToken) error {
	if successor.EditorID != old.EditorID || successor.Name != old.Name || successor.TokenID == old.TokenID {
		return fmt.Errorf("%w: a successor has its predecessor's editor and name, and an id of its own", ErrInvalidToken)
	}
	return successor.Check()
}

// MaxAttenuation bounds Use.Attenuation as stored, in bytes;
// MaxAttenuationID bounds Use.AttenuationID.
const (
	MaxAttenuation   = 160
	MaxAttenuationID = 16
)

// StoredAttenuation is what a store keeps of a use's attenuation summary
// or fingerprint: printable UTF-8 only (control and format characters
// become spaces), at most max bytes cut at a character boundary, with an
// ellipsis when cut.
func StoredAttenuation(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	n := max - len(ellipsis)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ellipsis
}
