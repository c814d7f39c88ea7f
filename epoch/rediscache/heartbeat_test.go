package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/testredis"
)

// TestQuietFeed: the server holds every publish (CLIENT PAUSE WRITE) while
// the subscriber's connection stays open and answered (pings, reads). The
// verifier's follower polls only every 30 s, so only the heartbeat can
// tell. A token revoked during the silence (its announcement held with
// the rest) is denied within the heartbeat bound (health, 400 ms here: the
// feed is declared down, the in-process cache and Redis values unused), and
// stays denied when the feed is back.
func TestQuietFeed(t *testing.T) {
	const health = 400 * time.Millisecond
	srv := testredis.Start(t)
	sh := newShared(t)
	alice := newToken(t, sh, "alice", 1)
	other := newToken(t, sh, "bob", 2)
	e, f := verifierAt(t, srv.URL(), sh, 30*time.Second, health)
	// Cached in process and in Redis, as usual.
	for _, tok := range []token{alice, other} {
		if !e.admits(tok) || !e.admits(tok) {
			t.Fatal("denied")
		}
	}
	if hits, _ := e.cache.Stats(); hits == 0 {
		t.Fatal("the in-process cache is not in use with the feed up")
	}

	// Nothing closes: the silence is only that publishes are held.
	if _, err := srv.Do("CLIENT", "PAUSE", "20000", "WRITE"); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	unpaused := false
	unpause := func() {
		if !unpaused {
			unpaused = true
			if _, err := srv.Do("CLIENT", "UNPAUSE"); err != nil {
				t.Error(err)
			}
		}
	}
	defer unpause()
	if pong, err := srv.Do("PING"); err != nil || pong != "PONG" {
		t.Fatalf("the server does not answer while paused: %q, %v", pong, err)
	}
	var rev revocations
	ed, _, err := sh.store.RevokeToken(context.Background(), alice.id)
	if err != nil {
		t.Fatal(err)
	}
	rev.set(alice, time.Now())
	announced := make(chan error, 1)
	go func() { announced <- e.layer.Announce(context.Background(), ed) }() // held by the pause
	bound := waitFor(t, "the revocation denied during the silence", 10*time.Second, func() bool { return rev.get(alice) != (time.Time{}) && !e.admits(alice) })
	down := f.downSince(paused)
	if down.IsZero() {
		t.Fatal("the feed was never reported down")
	}
	if n := e.layer.Stats().Quiet; n == 0 {
		t.Error("the silence was not found by the heartbeat (Stats.Quiet 0)")
	}
	if !e.cache.Bypassed() {
		t.Error("the in-process cache is in use while the feed is quiet")
	}
	if !e.admits(other) {
		t.Error("a token never revoked is denied while the feed is quiet")
	}
	// The bound: a silence is found within health + one heartbeat
	// interval, plus scheduling (logged below, not asserted: the suite runs
	// on loaded machines).
	unpause()
	if err := <-announced; err == nil {
		t.Log("the held announcement went through after the pause")
	}
	back := waitFor(t, "the feed back", 10*time.Second, func() bool { return f.backAfter(paused) })
	for range 50 {
		if e.admits(alice) {
			t.Fatal("the revoked token is admitted again after the feed came back")
		}
	}
	if !e.admits(other) || !e.admits(other) || e.cache.Bypassed() {
		t.Error("the in-process cache is not in use again")
	}
	t.Logf("quiet feed: found %v after publishes were held (heartbeat every %v, bound health + an interval = %v); the revocation made during it denied %v after its commit; feed back %v after the pause ended",
		down.Sub(paused), health/4, health+health/4, bound, back)
}
