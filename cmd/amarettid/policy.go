package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/verifier"
)

// policyFlags are the token lifetime policy's flags: the same names and
// variables as amaretti's and the web frontend's.
func policyFlags() []cli.Flag {
	d := apitoken.DefaultPolicy()
	return []cli.Flag{
		&cli.DurationFlag{Name: "max-api-token-lifetime", Value: d.MaxAPI, DefaultText: d.MaxAPI.String() + ", a year", EnvVars: []string{"AMARETTI_MAX_API_TOKEN_LIFETIME"},
			Usage: "longest lifetime of an API or bootstrap token, at creation and at verification: tightening it refuses longer-lived tokens without revoking them"},
		&cli.BoolFlag{Name: "allow-no-expiry", EnvVars: []string{"AMARETTI_ALLOW_NO_EXPIRY"},
			Usage: `allow API tokens that never expire, when asked for with "expires_in": "never" (otherwise such tokens are refused at verification too)`},
		&cli.StringSliceFlag{Name: "default-lifetime", EnvVars: []string{"AMARETTI_DEFAULT_LIFETIME"},
			DefaultText: fmt.Sprintf("api=%v, exchange=%v", d.API, d.Exchange),
			Usage:       "default lifetime of a `KIND=DURATION` of token the daemon creates: api, exchange (repeatable, or comma-separated in the variable)"},
	}
}

// policyFrom is the lifetime policy the flags configure.
func policyFrom(c *cli.Context) (apitoken.Policy, error) {
	var maxAPI *time.Duration
	if c.IsSet("max-api-token-lifetime") {
		d := c.Duration("max-api-token-lifetime")
		maxAPI = &d
	}
	p, err := apitoken.DefaultPolicy().Configure(maxAPI, c.Bool("allow-no-expiry"), c.StringSlice("default-lifetime"))
	if err != nil {
		return p, fmt.Errorf("the lifetime policy (--max-api-token-lifetime, --default-lifetime): %w", err)
	}
	return p, nil
}

// tokenRows gives registry rows their status under the daemon's policy.
func (s *server) tokenRows(ctx context.Context, rows []epoch.APIToken) ([]apitoken.Row, error) {
	return apitoken.Rows(ctx, s.store, rows, s.issuer.Policy(), time.Now())
}

// createdRow is the status of a token the caller just created: it verified
// this moment (its editor active, not locked, the new token created after
// the epoch), so only the row decides.
func (s *server) createdRow(caller verifier.Identity, row epoch.APIToken) apitoken.Row {
	return apitoken.NewRow(row, epoch.Editor{ID: caller.EditorID, Role: caller.Role, Active: true}, s.issuer.Policy(), time.Now())
}
