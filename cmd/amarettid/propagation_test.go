package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/amaretti-auth/amaretti/internal/testredis"
)

// TestTouchReachesTwoDaemons: two daemons share one Redis and one SQLite
// file; after "amaretti editor touch" returns, both reject the editor's
// older tokens. The in-process cache TTL is an hour, so only the pub/sub
// feed can make that happen.
func TestTouchReachesTwoDaemons(t *testing.T) {
	rs := testredis.Start(t)
	d := newDeployment(t, rs.URL())
	alice := d.cli("editor", "create", "alice")
	a := d.start("--cache-ttl", "1h")
	b := d.start("--cache-ttl", "1h")
	for _, dm := range []*daemon{a, b} {
		waitUntil(t, "invalidation feed up", 5*time.Second, func() bool { return dm.metric(t, "amaretti_invalidation_feed_up") == "1" })
	}
	m := d.minter()
	const touches = 200
	var sinceReturn, sinceStart []time.Duration
	for i := 0; i < touches; i++ {
		tok := d.mint(m, alice)
		for _, dm := range []*daemon{a, b} {
			if s := dm.status(t, tok); s != 200 { // also fills both caches
				t.Fatalf("touch %d: fresh token answered %d", i, s)
			}
		}
		start := time.Now()
		d.cli("editor", "touch", alice)
		returned := time.Now()
		waitUntil(t, fmt.Sprintf("touch %d reaching both daemons", i), 5*time.Second, func() bool {
			return a.status(t, tok) == 401 && b.status(t, tok) == 401
		})
		sinceReturn = append(sinceReturn, time.Since(returned))
		sinceStart = append(sinceStart, time.Since(start))
	}
	t.Logf("touch → both daemons reject, over %d touches: from the CLI's return p50 %v p99 %v max %v; from its start p50 %v p99 %v",
		touches, percentile(sinceReturn, .5), percentile(sinceReturn, .99), percentile(sinceReturn, 1),
		percentile(sinceStart, .5), percentile(sinceStart, .99))
	if n := a.metric(t, "amaretti_invalidations_received_total"); n == "" || n == "0" {
		t.Fatalf("daemon a received %q invalidations", n)
	}
}

// TestLostInvalidation: when the message does not arrive, a touch is still
// seen within the in-process cache TTL.
func TestLostInvalidation(t *testing.T) {
	ctx := context.Background()
	rs := testredis.Start(t)
	d := newDeployment(t, rs.URL())
	alice := d.cli("editor", "create", "alice")
	const ttl = 500 * time.Millisecond
	a := d.start("--cache-ttl", ttl.String())
	waitUntil(t, "feed up", 5*time.Second, func() bool { return a.metric(t, "amaretti_invalidation_feed_up") == "1" })
	waitUntil(t, "change log followed", 5*time.Second, func() bool { return a.metric(t, "amaretti_changelog_current") == "1" })
	m := d.minter()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	store := d.store()

	t.Run("message lost", func(t *testing.T) {
		tok := d.mint(m, alice)
		if a.status(t, tok) != 200 {
			t.Fatal("fresh token")
		}
		// The touch reaches SQLite only: no message is published, and Redis
		// keeps the state from before the touch, validly signed. The
		// daemon's change-log poll must retire both caches.
		if n, err := rdb.Exists(ctx, "amaretti:editor:"+alice).Result(); err != nil || n != 1 {
			t.Fatalf("Redis holds no state of alice before the touch: %v", err)
		}
		if _, err := store.Touch(ctx, alice); err != nil {
			t.Fatal(err)
		}
		took := waitUntil(t, "rejection without a message", ttl+2*time.Second, func() bool { return a.status(t, tok) == 401 })
		t.Logf("rejected %v after the unannounced touch (cache TTL %v)", took, ttl)
	})

	t.Run("subscriber disconnected", func(t *testing.T) {
		tok := d.mint(m, alice)
		if a.status(t, tok) != 200 {
			t.Fatal("fresh token")
		}
		if err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		d.cli("editor", "touch", alice)
		took := waitUntil(t, "rejection with the subscriber cut off", ttl+2*time.Second, func() bool { return a.status(t, tok) == 401 })
		t.Logf("rejected %v after the touch, subscriber disconnected (cache TTL %v)", took, ttl)
		waitUntil(t, "feed back up", 5*time.Second, func() bool { return a.metric(t, "amaretti_invalidation_feed_up") == "1" })
	})
}

// TestRevokeOneTokenInTwoDaemons: three API tokens for one editor; revoking
// one with the CLI reaches both daemons through Redis, while the other two
// keep working in both.
func TestRevokeOneTokenInTwoDaemons(t *testing.T) {
	rs := testredis.Start(t)
	d := newDeployment(t, rs.URL())
	alice := d.cli("editor", "create", "alice")
	a := d.start("--cache-ttl", "1h")
	b := d.start("--cache-ttl", "1h")
	for _, dm := range []*daemon{a, b} {
		waitUntil(t, "feed up", 5*time.Second, func() bool { return dm.metric(t, "amaretti_invalidation_feed_up") == "1" })
	}
	var secrets, ids []string
	for _, name := range []string{"laptop", "server", "cron"} {
		var out struct {
			Token   string `json:"token"`
			TokenID string `json:"token_id"`
		}
		d.jsonCLI(&out, "tokens", "create", alice, "--name", name)
		secrets, ids = append(secrets, out.Token), append(ids, out.TokenID)
	}
	for _, dm := range []*daemon{a, b} {
		for _, s := range secrets {
			if dm.status(t, s) != 200 { // and cached in both daemons
				t.Fatal("fresh API token refused")
			}
		}
	}
	start := time.Now()
	d.cli("tokens", "revoke", ids[1])
	took := waitUntil(t, "revocation in both daemons", 5*time.Second, func() bool {
		return a.status(t, secrets[1]) == 401 && b.status(t, secrets[1]) == 401
	})
	t.Logf("one token revoked in both daemons %v after the CLI returned (%v from its start)", took, time.Since(start))
	for _, dm := range []*daemon{a, b} {
		for _, i := range []int{0, 2} {
			if s := dm.status(t, secrets[i]); s != 200 {
				t.Fatalf("token %d after revoking token 1: %d", i, s)
			}
		}
	}
	// Last use reaches the registry after the daemons' flush (at shutdown here).
	a.Stop()
	b.Stop()
	var rows []struct {
		Name     string     `json:"name"`
		LastUsed *time.Time `json:"last_used"`
		From     string     `json:"last_used_from"`
	}
	d.jsonCLI(&rows, "tokens", "list", alice)
	for _, r := range rows {
		if r.LastUsed == nil || r.From != "127.0.0.1" {
			t.Fatalf("last use of %s: %v from %q", r.Name, r.LastUsed, r.From)
		}
	}
}
