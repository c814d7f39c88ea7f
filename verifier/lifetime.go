package verifier

import (
	"errors"
	"fmt"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
)

// ErrOverPolicy: the token's lifetime (expiry minus creation, or no expiry
// at all) exceeds the maximum the verifier enforces for its kind (see
// WithMaxLifetime). Tightening the maximum refuses tokens created under a
// looser one without revoking anything.
var ErrOverPolicy = errors.New("token lifetime exceeds the policy")

// Lifetime is the longest a kind of token may live (see WithMaxLifetime).
type Lifetime struct {
	// Max is the longest lifetime: expiry minus creation.
	Max time.Duration
	// AllowNoExpiry accepts tokens of the kind that never expire.
	AllowNoExpiry bool
}

// Exceeded reports whether a token created at created and expiring at
// expires (zero: never) lives longer than l allows.
func (l Lifetime) Exceeded(created, expires time.Time) bool {
	if expires.IsZero() {
		return !l.AllowNoExpiry
	}
	return expires.Sub(created) > l.Max
}

// WithMaxLifetime refuses tokens of kind k (by their kind claim) whose
// lifetime exceeds l, with ErrOverPolicy (401 invalid_token). Tokens
// without a kind claim, and of other kinds, are not affected. The lifetime
// is the token's earliest expiry minus its creation time, so a holder can
// shorten it (by attenuating) but not lengthen it. Give it once per kind.
func WithMaxLifetime(k caveat.Kind, l Lifetime) Option {
	return func(v *Verifier) error {
		if !caveat.ValidKind(string(k)) {
			return fmt.Errorf("verifier: unknown kind %q", string(k))
		}
		if l.Max <= 0 {
			return fmt.Errorf("verifier: maximum lifetime %v of %s tokens is not positive", l.Max, string(k))
		}
		if v.lifetimes == nil {
			v.lifetimes = map[caveat.Kind]Lifetime{}
		}
		v.lifetimes[k] = l
		return nil
	}
}

// checkLifetime applies WithMaxLifetime to a token's claims.
func (v *Verifier) checkLifetime(cl *caveat.Claims) error {
	if cl.Kind == "" || v.lifetimes == nil {
		return nil
	}
	l, ok := v.lifetimes[cl.Kind]
	if !ok || !l.Exceeded(cl.Created, cl.Expires) {
		return nil
	}
	if cl.Expires.IsZero() {
		return fmt.Errorf("%w: a %s token that never expires", ErrOverPolicy, string(cl.Kind))
	}
	return fmt.Errorf("%w: a %s token living %v, over the maximum %v", ErrOverPolicy, string(cl.Kind), cl.Expires.Sub(cl.Created), l.Max)
}
