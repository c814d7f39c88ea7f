package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/testredis"
	"github.com/redis/go-redis/v9"
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
	m := d.minter()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	store := d.store()

	t.Run("message lost", func(t *testing.T) {
		tok := d.mint(m, alice)
		if a.status(t, tok) != 200 {
			t.Fatal("fresh token")
		}
		// The touch reaches SQLite and Redis, but no message is published.
		ed, err := store.Touch(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		val := fmt.Sprintf("v2 %d %d %s 1 -", ed.Version, ed.AuthEpoch.UnixMicro(), ed.Role)
		rdb.Set(ctx, "amaretti:editor:"+alice, val, time.Minute)
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
