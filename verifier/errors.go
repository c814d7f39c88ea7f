package verifier

import (
	"errors"
	"net/http"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// Reasons a token is denied. Verify's errors wrap exactly the ones that
// apply; test them with errors.Is. Several are the sentinels of the packages
// that detect them, re-exported so callers need only this package.
var (
	// ErrMalformed: the token does not decode, breaks a limit, or has
	// unparsable, unknown, missing or repeated caveats, or a third-party
	// caveat.
	ErrMalformed = macaroon.ErrMalformed
	// ErrChecksum: an API token's checksum (macaroon.FormatAPI) does not
	// match: a typo or a truncation, found before decoding. It wraps
	// ErrMalformed.
	ErrChecksum = macaroon.ErrChecksum
	// ErrUnknownKey: no root key has the id the token names.
	ErrUnknownKey = macaroon.ErrUnknownKey
	// ErrRetiredKey: the root key the token names has been retired.
	ErrRetiredKey = macaroon.ErrRetiredKey
	// ErrBadSignature: the signature does not chain to the root key.
	ErrBadSignature = macaroon.ErrBadSignature
	// ErrExpired: an expiry caveat has passed.
	ErrExpired = caveat.ErrExpired
	// ErrNotYetValid: the creation time is beyond the allowed clock skew.
	ErrNotYetValid = caveat.ErrNotYetValid
	// ErrCaveatNotSatisfied: the token is valid but a restricting caveat
	// forbids this request (HTTP 403).
	ErrCaveatNotSatisfied = caveat.ErrProhibited
	// ErrRoleForbids: the request exercises a right the editor's role does
	// not permit, whatever the token says (HTTP 403).
	ErrRoleForbids = errors.New("role forbids this right")
	// ErrRevoked: the token was created at or before its editor's epoch
	// (touched), the editor is locked (also epoch.ErrLocked), or the token
	// or one it was exchanged from was revoked on its own (also
	// epoch.ErrTokenRevoked).
	ErrRevoked = epoch.ErrRevoked
	// ErrUnknownEditor: the editor does not exist.
	ErrUnknownEditor = epoch.ErrNotFound
	// ErrInactiveEditor: the editor is deactivated.
	ErrInactiveEditor = epoch.ErrInactive
	// ErrUnavailable: the epoch store could not give a fresh answer (HTTP
	// 503). The token may be fine; the verifier denies anyway.
	ErrUnavailable = errors.New("revocation state unavailable")
	// ErrInternal: verification panicked; the panic was recovered.
	ErrInternal = errors.New("internal error during verification")
)

// A Denial is the error Verify returns: the reason, plus what was learned
// about the token before it was denied (never the token itself).
type Denial struct {
	// Err is the reason; it wraps one or more of the sentinels above.
	Err error
	// KeyID and TokenID are set once the identifier has been decoded.
	KeyID, TokenID string
	// EditorID is set once the signature has been checked and the caveats
	// parsed.
	EditorID string
}

func (d *Denial) Error() string { return d.Err.Error() }

// Unwrap returns the reason.
func (d *Denial) Unwrap() error { return d.Err }

// A Problem is how to answer a denied HTTP request, per RFC 6750.
type Problem struct {
	// Status is the HTTP status: 401, 403 or 503 (400 is the middleware's,
	// for requests it cannot read).
	Status int
	// Code is the RFC 6750 error code: "invalid_token",
	// "insufficient_scope", "invalid_request", or "temporarily_unavailable"
	// for 503 (a code from RFC 6749, which has no 503 code of its own).
	Code string
	// Description is a fixed, safe sentence for the client; operators get
	// the full reason from the error.
	Description string
}

// ProblemFor classifies a Verify error. Reasons that make a token invalid
// for any request win over those that only forbid this request.
func ProblemFor(err error) Problem {
	invalid := func(d string) Problem { return Problem{http.StatusUnauthorized, "invalid_token", d} }
	switch {
	case err == nil:
		return Problem{Status: http.StatusOK}
	case errors.Is(err, ErrChecksum):
		return invalid("token checksum mismatch: mistyped or truncated")
	case errors.Is(err, ErrMalformed):
		return invalid("malformed token")
	case errors.Is(err, ErrUnknownKey):
		return invalid("token signed with an unknown key")
	case errors.Is(err, ErrRetiredKey):
		return invalid("token signed with a retired key")
	case errors.Is(err, ErrBadSignature):
		return invalid("token signature is invalid")
	case errors.Is(err, ErrExpired):
		return invalid("token expired")
	case errors.Is(err, ErrNotYetValid):
		return invalid("token created in the future")
	case errors.Is(err, ErrOverPolicy):
		return invalid("token lifetime exceeds the policy")
	case errors.Is(err, epoch.ErrLocked):
		return invalid("account locked")
	case errors.Is(err, ErrRevoked):
		return invalid("token revoked")
	case errors.Is(err, ErrUnknownEditor):
		return invalid("unknown editor")
	case errors.Is(err, ErrInactiveEditor):
		return invalid("editor inactive")
	case errors.Is(err, ErrUnavailable):
		return Problem{http.StatusServiceUnavailable, "temporarily_unavailable", "token could not be checked; try again"}
	case errors.Is(err, ErrRoleForbids):
		return Problem{http.StatusForbidden, "insufficient_scope", "the editor's role does not allow this request"}
	case errors.Is(err, ErrCaveatNotSatisfied):
		return Problem{http.StatusForbidden, "insufficient_scope", "token does not allow this request"}
	}
	return invalid("token could not be verified")
}

// reasons are the sentinels Reason reports, most specific first.
var reasons = []error{
	ErrInternal, ErrChecksum, ErrMalformed, ErrUnknownKey, ErrRetiredKey, ErrBadSignature,
	ErrExpired, ErrNotYetValid, ErrOverPolicy, epoch.ErrLocked, epoch.ErrTokenRevoked, ErrRevoked,
	ErrUnknownEditor, ErrInactiveEditor, ErrUnavailable, ErrRoleForbids,
	ErrCaveatNotSatisfied, ErrSeveralTokens, ErrMalformedAuthorization, ErrNoToken,
}

// Reason returns the fixed text of the most specific sentinel err wraps
// ("token expired", "caveat prohibits request", …), or "" when it wraps
// none. Log denials with it rather than err.Error(): a full reason may
// repeat what the client sent (a path, a right, an endpoint), and a client
// can put a token there.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return ""
}
