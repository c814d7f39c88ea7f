package main

import (
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/testredis"
)

// TestRedisKilledUnderLoad: while verifications run, Redis is killed and
// restarted. No request is ever accepted for a revoked token, valid tokens
// keep verifying from SQLite, and the daemon uses Redis again by itself.
func TestRedisKilledUnderLoad(t *testing.T) {
	rs := testredis.Start(t)
	d := newDeployment(t, rs.URL())
	alice := d.cli("editor", "create", "alice")
	bob := d.cli("editor", "create", "bob")
	a := d.start("--cache-ttl", "50ms") // short, so most requests reach Redis
	waitUntil(t, "feed up", 5*time.Second, func() bool { return a.metric(t, "amaretti_invalidation_feed_up") == "1" })
	m := d.minter()
	revoked := d.mint(m, alice)
	d.cli("editor", "touch", alice)
	valid := d.mint(m, bob)

	var (
		stop                              atomic.Bool
		validOK, validFail, revokedOK     atomic.Int64
		revokedDenied, okWhileDown, phase atomic.Int64 // phase: 0 before the kill, 1 Redis down, 2 restarted
		wg                                sync.WaitGroup
	)
	const workers = 4
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if a.status(t, valid) == 200 {
					validOK.Add(1)
					if phase.Load() == 1 {
						okWhileDown.Add(1)
					}
				} else {
					validFail.Add(1)
				}
				if a.status(t, revoked) == 200 {
					revokedOK.Add(1)
				} else {
					revokedDenied.Add(1)
				}
			}
		}()
	}
	// Conditions, not sleeps: the load has run before the kill, while Redis
	// is down, and after the restart, however slow the machine.
	waitUntil(t, "load running before the kill", 20*time.Second, func() bool { return validOK.Load() >= 50 })
	phase.Store(1)
	rs.Kill()
	waitUntil(t, "feed down", 5*time.Second, func() bool { return a.metric(t, "amaretti_invalidation_feed_up") == "0" })
	// A touch while Redis is down reaches the daemon through SQLite.
	carol := d.cli("editor", "create", "carol")
	carolsTok := d.mint(m, carol)
	if a.status(t, carolsTok) != 200 {
		t.Fatal("carol's token with Redis down")
	}
	noRedis := *d
	noRedis.redisURL = ""
	noRedis.cli("editor", "touch", carol)
	waitUntil(t, "touch seen from SQLite with Redis down", 2*time.Second, func() bool { return a.status(t, carolsTok) == 401 })
	waitUntil(t, "valid tokens verified from SQLite while Redis is down", 20*time.Second, func() bool {
		return okWhileDown.Load() >= 20 && a.metric(t, "amaretti_redis_fallbacks_total") != "0"
	})
	rs.Restart()
	phase.Store(2)
	waitUntil(t, "feed back up after restart", 10*time.Second, func() bool { return a.metric(t, "amaretti_invalidation_feed_up") == "1" })
	afterRestart := validOK.Load()
	waitUntil(t, "load running after the restart", 20*time.Second, func() bool { return validOK.Load() >= afterRestart+50 })
	stop.Store(true)
	wg.Wait()

	t.Logf("valid token: %d accepted (%d while Redis was down), %d failed; revoked token: %d denied, %d accepted; redis errors %s, fallbacks %s",
		validOK.Load(), okWhileDown.Load(), validFail.Load(), revokedDenied.Load(), revokedOK.Load(),
		a.metric(t, "amaretti_redis_errors_total"), a.metric(t, "amaretti_redis_fallbacks_total"))
	if revokedOK.Load() != 0 {
		t.Fatalf("a revoked token was accepted %d times", revokedOK.Load())
	}
	// Only requests in flight at the kill may fail: at most one per worker.
	if validFail.Load() > workers {
		t.Fatalf("the valid token failed %d times", validFail.Load())
	}
	if okWhileDown.Load() == 0 || a.metric(t, "amaretti_redis_fallbacks_total") == "0" {
		t.Fatal("verification did not go on from SQLite while Redis was down")
	}
	// After the restart, a touch announced through Redis reaches the daemon at once.
	fresh := d.mint(m, bob)
	if a.status(t, fresh) != 200 {
		t.Fatal("fresh token after restart")
	}
	d.cli("editor", "touch", bob)
	waitUntil(t, "touch after restart", time.Second, func() bool { return a.status(t, fresh) == 401 })
}

// TestGracefulShutdown: SIGTERM lets an in-flight request finish and the
// process exits 0.
func TestGracefulShutdown(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	a := d.start()
	tok := d.mint(d.minter(), alice)
	if a.status(t, tok) != 200 {
		t.Fatal("verify before shutdown")
	}
	a.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10 s of SIGTERM")
	}
}

// TestKeyRotationReachesDaemon: keys rotated and retired with the CLI reach
// a running daemon on SIGHUP (and on the reload interval).
func TestKeyRotationReachesDaemon(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	a := d.start("--keys-reload", "0")
	old := d.mint(d.minter(), alice)
	var keys []struct {
		ID string `json:"id"`
	}
	d.jsonCLI(&keys, "keys", "list")
	d.cli("keys", "rotate")
	fresh := d.mint(d.minter(), alice)
	if a.status(t, fresh) != 401 {
		t.Fatal("the daemon knew the new key before reloading")
	}
	a.Signal(syscall.SIGHUP)
	waitUntil(t, "new key after SIGHUP", 5*time.Second, func() bool { return a.status(t, fresh) == 200 })
	if a.status(t, old) != 200 {
		t.Fatal("a token under the previous key after rotation")
	}
	d.cli("keys", "retire", keys[0].ID)
	a.Signal(syscall.SIGHUP)
	waitUntil(t, "retired key refused after SIGHUP", 5*time.Second, func() bool { return a.status(t, old) == 401 })

	b := d.start("--keys-reload", "200ms")
	d.cli("keys", "rotate")
	newest := d.mint(d.minter(), alice)
	waitUntil(t, "new key after the reload interval", 5*time.Second, func() bool { return b.status(t, newest) == 200 })
}
