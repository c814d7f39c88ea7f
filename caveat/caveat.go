package caveat

import (
	"errors"
	"time"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them, so callers can act on the class with errors.Is.
var (
	// ErrMalformed means a caveat does not follow the grammar, its value does
	// not match its type, or the caveats of a token are inconsistent (a claim
	// missing or repeated, no caveats at all).
	ErrMalformed = errors.New("malformed caveat")
	// ErrUnknown means no checker is registered for the caveat's name.
	ErrUnknown = errors.New("unknown caveat")
	// ErrExpired means an expiry caveat has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid means the token's creation time lies further in the
	// future than the allowed clock skew.
	ErrNotYetValid = errors.New("token created in the future")
	// ErrProhibited means a restricting caveat forbids the request.
	ErrProhibited = errors.New("caveat prohibits request")
)

// A Request describes what the bearer of a token is trying to do. Contextual
// caveats (endpoint, rights, method, path) are checked against it; a caveat
// whose context the request leaves empty is not satisfied, except rights,
// which only limit the rights a request names.
type Request struct {
	// Time is the verifier's current time; the Checker compares expiry and
	// creation against it. Verifiers set it from their own clock.
	Time time.Time
	// Method is the HTTP method, upper case.
	Method string
	// Path is the URL path (decoded, as in url.URL.Path).
	Path string
	// Endpoint names the operation, as fatcat's API did ("create_editgroup").
	Endpoint string
	// Rights lists the rights the request exercises. Every one must be
	// allowed by every rights caveat of the token.
	Rights []string
}

// A Caveat is one parsed first-party caveat.
type Caveat interface {
	// String returns the caveat in its canonical text form, the form a
	// minter appends to a token.
	String() string
	// Prohibits returns nil when the caveat allows req, and otherwise an
	// error wrapping ErrProhibited or ErrExpired that says why. Claims
	// (EditorID, Created) never prohibit by themselves.
	Prohibits(req *Request) error
}

// A ParseFunc turns the operator and value of a caveat into a Caveat. It is
// called only with an operator of "=", "<" or ">" and a value of printable,
// space-free ASCII. It must return an error for anything it does not accept;
// the Checker wraps that error in ErrMalformed.
type ParseFunc func(op, value string) (Caveat, error)
