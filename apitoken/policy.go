package apitoken

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/verifier"
)

// ErrPolicy means a request asked for a lifetime the lifetime policy does
// not allow: longer than its maximum, or no expiry when the policy does not
// allow tokens that never expire. Such errors also wrap ErrInvalid.
var ErrPolicy = errors.New("refused by the lifetime policy")

// Policy is the token lifetime policy: how long each kind of token lives
// when its creator does not say, the longest an API token may live, and
// whether a token may be created without expiry. It is configured once (a
// daemon's, a CLI's and a frontend's flags) and applied wherever a token is
// created; MaxAPI is also enforced at verification (VerifierOptions).
//
// A token never expires only when AllowNoExpiry is set and its creator asks
// for it explicitly (Request.NoExpiry, --no-expiry, "expires_in": "never").
type Policy struct {
	// Session is the lifetime of a login session a frontend mints
	// (kind session).
	Session time.Duration
	// API is the default lifetime of an API token (kind api).
	API time.Duration
	// CLI is the default lifetime of a token "amaretti token mint" makes
	// (kind cli).
	CLI time.Duration
	// Bootstrap is the lifetime of the tokens "amaretti bootstrap" writes
	// (kind bootstrap).
	Bootstrap time.Duration
	// Exchange is the default lifetime of an exchanged token (kind
	// exchange); it is at most MaxExchangeTTL.
	Exchange time.Duration
	// MaxAPI is the longest lifetime of a registered token (kinds api and
	// bootstrap), at creation and at verification.
	MaxAPI time.Duration
	// AllowNoExpiry lets a creator ask explicitly for a token that never
	// expires. Registered tokens without expiry are refused at verification
	// while it is false.
	AllowNoExpiry bool
}

// Defaults of DefaultPolicy.
const (
	DefaultSessionLifetime   = 12 * time.Hour
	DefaultAPILifetime       = 90 * 24 * time.Hour
	DefaultCLILifetime       = 24 * time.Hour
	DefaultBootstrapLifetime = 90 * 24 * time.Hour
)

// DefaultPolicy returns the default policy: sessions 12 hours, API tokens
// 90 days (at most DefaultMaxLifetime, a year), CLI mints 24 hours,
// bootstrap tokens 90 days, exchanged tokens DefaultExchangeTTL; no token
// without expiry.
func DefaultPolicy() Policy {
	return Policy{
		Session:   DefaultSessionLifetime,
		API:       DefaultAPILifetime,
		CLI:       DefaultCLILifetime,
		Bootstrap: DefaultBootstrapLifetime,
		Exchange:  DefaultExchangeTTL,
		MaxAPI:    DefaultMaxLifetime,
	}
}

// Kinds whose default lifetime a Policy sets, in the order SetDefault and
// error messages name them.
var policyKinds = []caveat.Kind{caveat.KindSession, caveat.KindAPI, caveat.KindCLI, caveat.KindBootstrap, caveat.KindExchange}

// Default returns the default lifetime of a kind of token (0 for a kind the
// policy does not know).
func (p Policy) Default(k caveat.Kind) time.Duration {
	switch k {
	case caveat.KindSession:
		return p.Session
	case caveat.KindAPI:
		return p.API
	case caveat.KindCLI:
		return p.CLI
	case caveat.KindBootstrap:
		return p.Bootstrap
	case caveat.KindExchange:
		return p.Exchange
	}
	return 0
}

// SetDefault sets the default lifetime of a kind of token.
func (p *Policy) SetDefault(k caveat.Kind, d time.Duration) error {
	switch k {
	case caveat.KindSession:
		p.Session = d
	case caveat.KindAPI:
		p.API = d
	case caveat.KindCLI:
		p.CLI = d
	case caveat.KindBootstrap:
		p.Bootstrap = d
	case caveat.KindExchange:
		p.Exchange = d
	default:
		return fmt.Errorf("%w: no default lifetime for kind %q (kinds: %s)", ErrPolicy, string(k), kindList())
	}
	return nil
}

func kindList() string {
	names := make([]string, len(policyKinds))
	for i, k := range policyKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// ParseDefault parses "kind=duration", as the --default-lifetime flags
// take it, into p.
func (p *Policy) ParseDefault(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%w: want KIND=DURATION (e.g. api=720h), not %q", ErrPolicy, s)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%w: %s: %q is not a duration such as 720h", ErrPolicy, k, v)
	}
	return p.SetDefault(caveat.Kind(k), d)
}

// Validate checks that every lifetime is positive, that the API and
// bootstrap defaults are within MaxAPI, and that the exchange default is
// within MaxExchangeTTL. Errors wrap ErrPolicy.
func (p Policy) Validate() error {
	if p.MaxAPI <= 0 {
		return fmt.Errorf("%w: the maximum API token lifetime %v is not positive", ErrPolicy, p.MaxAPI)
	}
	for _, k := range policyKinds {
		if d := p.Default(k); d <= 0 {
			return fmt.Errorf("%w: the default lifetime of %s tokens %v is not positive", ErrPolicy, string(k), d)
		}
	}
	switch {
	case p.API > p.MaxAPI:
		return fmt.Errorf("%w: the default API token lifetime %v is over the maximum %v", ErrPolicy, p.API, p.MaxAPI)
	case p.Bootstrap > p.MaxAPI:
		return fmt.Errorf("%w: the bootstrap token lifetime %v is over the maximum API token lifetime %v", ErrPolicy, p.Bootstrap, p.MaxAPI)
	case p.Exchange > MaxExchangeTTL:
		return fmt.Errorf("%w: the exchanged token lifetime %v is over %v", ErrPolicy, p.Exchange, MaxExchangeTTL)
	}
	return nil
}

// Configure returns p changed by what an operator sets — the maximum API
// token lifetime (nil keeps p's), whether tokens may never expire, and
// KIND=DURATION defaults — and validated. A tighter maximum also lowers the
// API and bootstrap defaults it would otherwise refuse. The CLI, amarettid
// and the examples configure their policy through it, so one environment
// means one policy everywhere. Errors wrap ErrPolicy.
func (p Policy) Configure(maxAPI *time.Duration, allowNoExpiry bool, defaults []string) (Policy, error) {
	p.AllowNoExpiry = allowNoExpiry
	if maxAPI != nil {
		p.MaxAPI = *maxAPI
		p.API, p.Bootstrap = min(p.API, p.MaxAPI), min(p.Bootstrap, p.MaxAPI)
	}
	for _, d := range defaults {
		if err := p.ParseDefault(d); err != nil {
			return p, err
		}
	}
	return p, p.Validate()
}

// Lifetime decides the lifetime of a new token of kind k: asked when it is
// positive, the kind's default when it is 0, and 0 (no expiry) when
// noExpiry is set, which the policy must allow. A registered kind (api,
// bootstrap) may not ask for more than MaxAPI. Errors wrap ErrInvalid, and
// ErrPolicy when the policy refuses what was asked.
func (p Policy) Lifetime(k caveat.Kind, asked time.Duration, noExpiry bool) (time.Duration, error) {
	switch {
	case asked < 0:
		return 0, fmt.Errorf("%w: the lifetime must be positive", ErrInvalid)
	case noExpiry && asked > 0:
		return 0, fmt.Errorf("%w: a lifetime and no expiry both asked for", ErrInvalid)
	case noExpiry && !p.AllowNoExpiry:
		return 0, fmt.Errorf("%w: %w: tokens that never expire are not allowed (the policy's --allow-no-expiry / AMARETTI_ALLOW_NO_EXPIRY is off)", ErrInvalid, ErrPolicy)
	case noExpiry:
		return 0, nil
	case registered(k) && asked > p.MaxAPI:
		return 0, fmt.Errorf("%w: %w: the lifetime must be at most %v", ErrInvalid, ErrPolicy, p.MaxAPI)
	case asked > 0:
		return asked, nil
	}
	if d := p.Default(k); d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%w: no default lifetime for %q tokens", ErrInvalid, string(k))
}

// registered reports whether tokens of kind k are API tokens in the
// registry, bounded by MaxAPI.
func registered(k caveat.Kind) bool { return k == caveat.KindAPI || k == caveat.KindBootstrap }

// OverMax reports whether a registered token created at created and
// expiring at expires (zero: never) lives longer than the policy allows
// now: longer than MaxAPI, or without expiry while AllowNoExpiry is off.
// This is what verification refuses (VerifierOptions) and what the
// registry reports as StatusOverPolicy.
func (p Policy) OverMax(created, expires time.Time) bool {
	return verifier.Lifetime{Max: p.MaxAPI, AllowNoExpiry: p.AllowNoExpiry}.Exceeded(created, expires)
}

// VerifierOptions are the options that make a verifier enforce the policy:
// a token of kind api or bootstrap whose lifetime exceeds MaxAPI (or that
// never expires, unless AllowNoExpiry) is refused with
// verifier.ErrOverPolicy. Tokens without a kind claim are not affected.
func (p Policy) VerifierOptions() []verifier.Option {
	l := verifier.Lifetime{Max: p.MaxAPI, AllowNoExpiry: p.AllowNoExpiry}
	return []verifier.Option{verifier.WithMaxLifetime(caveat.KindAPI, l), verifier.WithMaxLifetime(caveat.KindBootstrap, l)}
}
