package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestCallerGoneIsNoRedisFailure: a lookup whose caller has gone (a client
// that disconnected during a miss) is not counted as a Redis failure, so
// it does not trip the breaker and send every other lookup to the store.
func TestCallerGoneIsNoRedisFailure(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice"})
	bob, _ := e.store.Create(ctx, epoch.NewEditor{Username: "bob"})
	waitFor(t, "creations followed", 5*time.Second, func() bool { return e.follower.Stats().Head >= bob.Seq })

	gone, cancel := context.WithCancel(ctx)
	cancel()
	e.cache.State(gone, alice.ID) // its answer does not matter; it must not end Redis's use
	before := e.layer.Stats()
	if _, err := e.cache.State(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	after := e.layer.Stats()
	if before.RedisErrors != 0 || after.Fallbacks != before.Fallbacks {
		t.Fatalf("one caller's cancellation counted as a Redis failure (%d errors) and sent bob's lookup past Redis (fallbacks %d → %d)",
			before.RedisErrors, before.Fallbacks, after.Fallbacks)
	}
}
