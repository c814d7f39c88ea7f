package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// policyFlags are the global flags of the token lifetime policy: the same
// names and variables as amarettid's and the web frontend's, so one
// environment configures them all.
func policyFlags() []cli.Flag {
	d := apitoken.DefaultPolicy()
	return []cli.Flag{
		&cli.DurationFlag{Name: "max-api-token-lifetime", Value: d.MaxAPI, DefaultText: d.MaxAPI.String() + ", a year",
			EnvVars: []string{"AMARETTI_MAX_API_TOKEN_LIFETIME"}, Usage: "longest lifetime of an API or bootstrap token"},
		&cli.BoolFlag{Name: "allow-no-expiry", EnvVars: []string{"AMARETTI_ALLOW_NO_EXPIRY"},
			Usage: "allow tokens that never expire, when asked for with --no-expiry"},
		&cli.StringSliceFlag{Name: "default-lifetime", EnvVars: []string{"AMARETTI_DEFAULT_LIFETIME"},
			DefaultText: fmt.Sprintf("session=%v, api=%v, cli=%v, bootstrap=%v, exchange=%v", d.Session, d.API, d.CLI, d.Bootstrap, d.Exchange),
			Usage:       "default lifetime of a `KIND=DURATION` of token (repeatable, or comma-separated in the variable)"},
	}
}

// policy is the lifetime policy the global flags configure. A policy that
// does not hold together is a usage error.
func (e *env) policy(c *cli.Context) (apitoken.Policy, error) {
	var maxAPI *time.Duration
	if c.IsSet("max-api-token-lifetime") {
		d := c.Duration("max-api-token-lifetime")
		maxAPI = &d
	}
	p, err := apitoken.DefaultPolicy().Configure(maxAPI, c.Bool("allow-no-expiry"), c.StringSlice("default-lifetime"))
	if err != nil {
		return p, usagef("the lifetime policy (--max-api-token-lifetime, --default-lifetime): %v", err)
	}
	return p, nil
}

// expiresFlag is the --expires flag of a command that creates a token of
// kind k: its help names the policy's default, not "0s".
func expiresFlag(k caveat.Kind) cli.Flag {
	return &cli.DurationFlag{Name: "expires", DefaultText: fmt.Sprintf("%v, the policy's for %s tokens (--default-lifetime)", apitoken.DefaultPolicy().Default(k), string(k)),
		Usage: "expire after `DURATION` (e.g. 15m, 24h)"}
}

// noExpiryFlag asks for a token that never expires.
var noExpiryFlag = &cli.BoolFlag{Name: "no-expiry", Usage: "the token never expires (only when the policy allows it: --allow-no-expiry)"}

// lifetime is the lifetime a command creating a token of kind k asks for:
// 0 for the policy's default (what apitoken.Request.TTL takes), and
// whether it asked for no expiry, which the policy must allow.
func (e *env) lifetime(c *cli.Context, p apitoken.Policy, k caveat.Kind) (time.Duration, bool, error) {
	d, never := c.Duration("expires"), c.Bool("no-expiry")
	switch {
	case never && c.IsSet("expires"):
		return 0, false, usagef("--expires and --no-expiry: choose one")
	case c.IsSet("expires") && d <= 0:
		return 0, false, usagef("--expires must be positive")
	}
	if _, err := p.Lifetime(k, d, never); err != nil {
		if errors.Is(err, apitoken.ErrPolicy) && never {
			return 0, false, errors.New("tokens that never expire are not allowed by the lifetime policy (set --allow-no-expiry or AMARETTI_ALLOW_NO_EXPIRY=true to allow them)")
		}
		return 0, false, err
	}
	return d, never, nil
}

// expiresText says when a token expires, plainly: "never expires" for a
// token without an expiry caveat.
func expiresText(t time.Time) string {
	if t.IsZero() {
		return "never expires"
	}
	return formatTime(t)
}

// claimsOf reads a token's claims (its earliest expiry among them), or nil
// when its caveats do not parse: inspect then shows the caveats alone.
func claimsOf(tok *macaroon.Token) *caveat.Claims {
	checker, err := caveat.NewChecker()
	if err != nil {
		return nil
	}
	texts := tok.Caveats()
	raw := make([][]byte, len(texts))
	for i, t := range texts {
		raw[i] = []byte(t)
	}
	cl, err := checker.Claims(raw)
	if err != nil {
		return nil
	}
	return cl
}
