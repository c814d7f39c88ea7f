package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/verifier"
)

// errCacheMaxAge: --auth-cache-max-age is negative, not whole seconds, or
// longer than the revocation bound (--poll).
var errCacheMaxAge = errors.New("--auth-cache-max-age")

// noStore is the Cache-Control of every answer a proxy must not keep: every
// denial, and every allow while --auth-cache-max-age is 0.
const noStore = "no-store"

// cacheablePrefix starts the Cache-Control of an allow a proxy may keep;
// the seconds follow.
const cacheablePrefix = "private, max-age="

// cacheFlags are the flags of the cache hints forward auth and
// introspection send.
func cacheFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "auth-cache-max-age", EnvVars: []string{"AMARETTI_AUTH_CACHE_MAX_AGE"},
			Usage: "let proxies cache an allow from forward auth or introspection this long (Cache-Control: private, max-age=N; whole seconds, at most --poll, never past the token's expiry); 0: no-store. A revocation then reaches a caching proxy within --poll + this"},
	}
}

// cacheMaxAge reads --auth-cache-max-age: whole seconds, from 0 to the
// daemon's revocation bound, --poll. A longer value is refused rather than
// clamped: an operator asking for more than the bound allows would
// otherwise believe a revocation waits longer in caches than it can.
func cacheMaxAge(c *cli.Context) (time.Duration, error) {
	d, poll := c.Duration("auth-cache-max-age"), c.Duration("poll")
	switch {
	case d < 0:
		return 0, fmt.Errorf("%w: %w must not be negative", errUsage, errCacheMaxAge)
	case d%time.Second != 0:
		return 0, fmt.Errorf("%w: %w must be whole seconds (max-age counts seconds), not %v", errUsage, errCacheMaxAge, d)
	case d > poll:
		return 0, fmt.Errorf("%w: %w %v is longer than --poll %v, the bound on how late a revocation reaches this daemon: a proxy's cache must not hold an allow longer than that (raise --poll, or lower this)", errUsage, errCacheMaxAge, d, poll)
	}
	return d, nil
}

// cacheControl is the Cache-Control of an allow for id at now: "private,
// max-age=N" with N the whole seconds of the smaller of maxAge and the
// token's remaining lifetime, or no-store when N is 0.
func cacheControl(maxAge time.Duration, id verifier.Identity, now time.Time) string {
	n := maxAge
	if !id.Expires.IsZero() {
		n = min(n, id.Expires.Sub(now))
	}
	secs := int64(n / time.Second) // rounded down: never past the bound
	if secs <= 0 {
		return noStore
	}
	return cacheablePrefix + strconv.FormatInt(secs, 10)
}
