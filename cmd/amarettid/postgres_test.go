package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/internal/testredis"
)

// newPGDeployment makes a deployment on a fresh database of srv, its keys
// in a directory every daemon of the test shares.
func newPGDeployment(t *testing.T, srv *testpg.Server, redisURL string) *deployment {
	t.Helper()
	return newDeploymentOn(t, redisURL, srv.NewDatabase(t), t.TempDir())
}

// dbName is the database a postgres:// URL names.
func dbName(t *testing.T, db string) string {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// createSuperuser makes a login role with a password, for a daemon whose
// connections the test singles out (by user name) and whose logs must not
// show the password.
func createSuperuser(t *testing.T, srv *testpg.Server, role, password string) {
	t.Helper()
	if err := srv.Exec(context.Background(), "postgres", "CREATE ROLE "+role+" LOGIN SUPERUSER PASSWORD '"+password+"'"); err != nil {
		t.Fatal(err)
	}
}

// waitFollowing waits until the daemon follows the change log, and its
// LISTEN connection is up or not as notify says.
func waitFollowing(t *testing.T, dm *daemon, notify bool) {
	t.Helper()
	want := "0"
	if notify {
		want = "1"
	}
	waitUntil(t, "change log followed", 10*time.Second, func() bool {
		return dm.metric(t, "amaretti_changelog_current") == "1" && dm.metric(t, "amaretti_changelog_notify_up") == want
	})
}

// TestPostgresTouchReachesTwoDaemons: two daemons on one PostgreSQL
// database; after "amaretti editor touch" returns, both reject the editor's
// older tokens. The in-process cache TTL is an hour, so only the change log
// can make that happen, woken by NOTIFY, by nothing (the poll alone), or by
// Redis pub/sub. The latencies are logged, not asserted: the 5 s limit is
// the correctness condition (the revocation must arrive).
func TestPostgresTouchReachesTwoDaemons(t *testing.T) {
	srv := testpg.Start(t)
	for _, tc := range []struct {
		name    string
		redis   bool
		touches int
		flags   []string
		notify  bool
	}{
		{name: "NOTIFY", touches: 200, notify: true},
		// The poll alone, at a quarter of the default --poll 1s to keep
		// the test short, and fewer touches. Each touch follows just after
		// the poll that saw the previous one, so this measures close to
		// the bound (the poll interval), not its mean (half of it).
		{name: "NOTIFY lost, poll 250ms", touches: 40, flags: []string{"--notify=false", "--poll", "250ms"}},
		{name: "Redis", redis: true, touches: 200, flags: []string{"--notify=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redisURL := ""
			if tc.redis {
				redisURL = testredis.Start(t).URL()
			}
			d := newPGDeployment(t, srv, redisURL)
			alice := d.cli("editor", "create", "alice")
			flags := append([]string{"--cache-ttl", "1h"}, tc.flags...)
			a, b := d.start(flags...), d.start(flags...)
			for _, dm := range []*daemon{a, b} {
				waitFollowing(t, dm, tc.notify)
				if tc.redis {
					waitUntil(t, "invalidation feed up", 5*time.Second, func() bool { return dm.metric(t, "amaretti_invalidation_feed_up") == "1" })
				}
			}
			m := d.minter()
			var sinceReturn []time.Duration
			for i := 0; i < tc.touches; i++ {
				tok := d.mint(m, alice)
				for _, dm := range []*daemon{a, b} {
					if s := dm.status(t, tok); s != 200 { // also fills both caches
						t.Fatalf("touch %d: fresh token answered %d", i, s)
					}
				}
				d.cli("editor", "touch", alice)
				returned := time.Now()
				waitUntil(t, fmt.Sprintf("touch %d reaching both daemons", i), 5*time.Second, func() bool {
					return a.status(t, tok) == 401 && b.status(t, tok) == 401
				})
				sinceReturn = append(sinceReturn, time.Since(returned))
			}
			t.Logf("%s: touch → both daemons reject, over %d touches, from the CLI's return: p50 %v p99 %v max %v",
				tc.name, tc.touches, percentile(sinceReturn, .5), percentile(sinceReturn, .99), percentile(sinceReturn, 1))
			if tc.redis {
				if n := a.metric(t, "amaretti_invalidations_received_total"); n == "" || n == "0" {
					t.Fatalf("daemon a received %q invalidations from Redis", n)
				}
			}
		})
	}
}

// outcome counts one daemon's answers under load.
type outcome struct {
	validOK, valid503, revoked401, revoked503 atomic.Int64
	// bad counts answers that must never happen: 200 for the revoked
	// token, a 5xx other than 503, 401 for the valid token.
	bad      atomic.Int64
	badWhat  sync.Map // status description → true
	first503 atomic.Int64
}

func (o *outcome) record(what string, got int, allowed ...int) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	o.bad.Add(1)
	o.badWhat.Store(fmt.Sprintf("%s: %d", what, got), true)
}

func (o *outcome) bads() []string {
	var out []string
	o.badWhat.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	return out
}

// TestPostgresStoppedUnderLoad: PostgreSQL stops while two daemons verify
// in a loop. A token revoked before the stop is never accepted, nothing
// answers 500; valid tokens are served from cache until the daemon notices
// (daemon a: its LISTEN connection drops, it reads the log at once and the
// read fails; daemon b, with --notify=false: its next poll fails), then
// 503. A change made right before the stop is honoured. PostgreSQL back:
// both serve again without a restart, and a change made after it reaches
// them. Then one daemon alone is cut off from the database while a change
// is made: it catches up when it reconnects.
//
// Daemon a polls only every minute, so everything it learns in time comes
// from its LISTEN connection: its loss (store down), its return (catch up).
func TestPostgresStoppedUnderLoad(t *testing.T) {
	ctx := context.Background()
	srv := testpg.Start(t)
	d := newPGDeployment(t, srv, "")
	const role, password = "amarettid_a", "stopped-s3cret-pw"
	createSuperuser(t, srv, role, password)
	dbA := srv.URLAs(dbName(t, d.db), role, password)
	var ids = map[string]string{}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		ids[name] = d.cli("editor", "create", name)
	}
	m := d.minter()
	revoked := d.mint(m, ids["alice"])
	d.cli("editor", "touch", ids["alice"])
	valid := d.mint(m, ids["bob"])
	toks := map[string]string{}
	for _, name := range []string{"carol", "dave", "erin", "frank"} {
		toks[name] = d.mint(m, ids[name])
	}

	a := d.start("--db", dbA, "--cache-ttl", "1h", "--poll", "1m")
	b := d.start("--cache-ttl", "1h", "--notify=false") // --poll 1s, the default
	waitFollowing(t, a, true)
	waitFollowing(t, b, false)
	daemons := []*daemon{a, b}
	names := []string{"a (NOTIFY, --poll 1m)", "b (--notify=false, --poll 1s)"}
	for _, dm := range daemons {
		for _, name := range []string{"carol", "dave", "erin", "frank"} {
			if s := dm.status(t, toks[name]); s != 200 { // cached
				t.Fatalf("%s's fresh token: %d", name, s)
			}
		}
	}

	var (
		stop     atomic.Bool
		stopped  atomic.Int64 // UnixNano of the stop's start; 0 before
		wg       sync.WaitGroup
		outcomes = []*outcome{{}, {}}
	)
	for i, dm := range daemons {
		o := outcomes[i]
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					switch s := dm.status(t, valid); s {
					case 200:
						o.validOK.Add(1)
					case 503:
						o.valid503.Add(1)
						if stopped.Load() != 0 {
							o.first503.CompareAndSwap(0, time.Now().UnixNano())
						}
					default:
						o.record("valid token", s)
					}
					switch s := dm.status(t, revoked); s {
					case 401:
						o.revoked401.Add(1)
					case 503:
						o.revoked503.Add(1)
					default:
						o.record("revoked token", s)
					}
				}
			}()
		}
	}
	defer func() { stop.Store(true); wg.Wait() }()
	waitUntil(t, "load running before the stop", 20*time.Second, func() bool {
		return outcomes[0].validOK.Load() >= 50 && outcomes[1].validOK.Load() >= 50
	})

	// A change right before the stop; then the stop.
	d.cli("editor", "touch", ids["carol"])
	stopStart := time.Now()
	stopped.Store(stopStart.UnixNano())
	srv.Stop()
	stopTook := time.Since(stopStart)
	for i, dm := range daemons {
		o := outcomes[i]
		waitUntil(t, names[i]+" answering 503 with PostgreSQL stopped", 10*time.Second, func() bool { return o.first503.Load() != 0 })
		// Served from cache until then.
		t.Logf("daemon %s: 503 %v after the stop began (the stop took %v)", names[i], time.Duration(o.first503.Load()-stopStart.UnixNano()), stopTook)
		if s := dm.status(t, toks["carol"]); s == 200 {
			t.Fatalf("daemon %s: carol's token, touched before the stop, answered 200 after the daemon turned to 503", names[i])
		}
	}
	down := []int64{outcomes[0].valid503.Load(), outcomes[1].valid503.Load()}
	waitUntil(t, "load running while PostgreSQL is down", 20*time.Second, func() bool {
		return outcomes[0].valid503.Load() >= down[0]+20 && outcomes[1].valid503.Load() >= down[1]+20
	})
	for i, dm := range daemons {
		if dm.metric(t, "amaretti_changelog_current") != "0" {
			t.Fatalf("daemon %s follows the change log of a stopped database", names[i])
		}
	}
	if a.metric(t, "amaretti_changelog_notify_up") != "0" {
		t.Fatal("daemon a's LISTEN connection up while PostgreSQL is stopped")
	}

	// PostgreSQL back: service resumes without a restart.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	for i, dm := range daemons {
		took := waitUntil(t, names[i]+" serving again", 20*time.Second, func() bool {
			return dm.metric(t, "amaretti_changelog_current") == "1" && dm.status(t, valid) == 200
		})
		t.Logf("daemon %s: serving again %v after PostgreSQL was ready (%v after the start)", names[i], took, time.Since(started))
		// Carol's token stays refused: as revoked (401) once the daemon
		// reads her state, a fail-closed 503 meanwhile while its pool
		// replaces connections the restart broke; never 200.
		waitUntil(t, names[i]+" refusing carol's token as revoked", 20*time.Second, func() bool {
			s := dm.status(t, toks["carol"])
			if s != 401 && s != 503 {
				t.Fatalf("daemon %s: carol's token, touched right before the stop: %d after the restart", names[i], s)
			}
			return s == 401
		})
	}
	waitFollowing(t, a, true)
	// A change after the restart reaches both (daemon a through NOTIFY:
	// its poll is a minute away).
	d.cli("editor", "touch", ids["dave"])
	took := waitUntil(t, "a touch after the restart reaching both daemons", 5*time.Second, func() bool {
		return a.status(t, toks["dave"]) == 401 && b.status(t, toks["dave"]) == 401
	})
	t.Logf("a touch after the restart reached both daemons in %v", took)

	// One daemon cut off while the other is not. The test's own
	// connection terminates daemon a's backends.
	admin, err := pgx.Connect(ctx, srv.URL(dbName(t, d.db)))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	terminate := func(where string) int {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1"+where, role).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	store := d.store()
	t.Run("LISTEN connection cut", func(t *testing.T) {
		// Only the LISTEN connection: a's pool stays, so its caches stay
		// in use; the touch, made at once by the test's own store handle,
		// sends its NOTIFY while a is not listening (it reconnects after
		// 50 ms). Only the catch-up after the reconnection can tell a.
		if s := a.status(t, toks["erin"]); s != 200 {
			t.Fatalf("erin's token before the cut: %d", s)
		}
		if n := terminate(" AND query = 'LISTEN amaretti_changes'"); n != 1 {
			t.Fatalf("terminated %d LISTEN connections of daemon a", n)
		}
		if _, err := store.Touch(ctx, ids["erin"]); err != nil {
			t.Fatal(err)
		}
		took := waitUntil(t, "a touch made while a's LISTEN connection was cut, reaching a", 5*time.Second, func() bool {
			return a.status(t, toks["erin"]) == 401
		})
		t.Logf("the touch made while daemon a's LISTEN connection was cut reached it %v after the touch (poll 1m)", took)
		waitUntil(t, "a listening again", 5*time.Second, func() bool { return a.metric(t, "amaretti_changelog_notify_up") == "1" })
	})
	t.Run("every connection refused", func(t *testing.T) {
		// a cannot log in at all while frank is touched; b can and does.
		if err := srv.Exec(ctx, "postgres", "ALTER ROLE "+role+" NOLOGIN"); err != nil {
			t.Fatal(err)
		}
		if n := terminate(""); n == 0 {
			t.Fatal("daemon a had no connection to terminate")
		}
		// Its LISTEN connection lost, a reads the log at once, and fails:
		// its caches are off before the touch.
		waitUntil(t, "a no longer following the change log", 5*time.Second, func() bool {
			return a.metric(t, "amaretti_changelog_notify_up") == "0" && a.metric(t, "amaretti_changelog_current") == "0"
		})
		d.cli("editor", "touch", ids["frank"])
		waitUntil(t, "the touch reaching b", 5*time.Second, func() bool { return b.status(t, toks["frank"]) == 401 })
		if s := a.status(t, toks["frank"]); s != 503 {
			t.Fatalf("daemon a, cut off, answered %d for frank's touched token", s)
		}
		if err := srv.Exec(ctx, "postgres", "ALTER ROLE "+role+" LOGIN"); err != nil {
			t.Fatal(err)
		}
		took := waitUntil(t, "a back, having caught up", 15*time.Second, func() bool {
			return a.status(t, valid) == 200 && a.status(t, toks["frank"]) == 401
		})
		t.Logf("daemon a serving again %v after it could log in, frank's touch seen", took)
	})

	stop.Store(true)
	wg.Wait()
	for i, o := range outcomes {
		t.Logf("daemon %s: valid token %d accepted, %d answered 503; revoked token %d denied (401), %d answered 503",
			names[i], o.validOK.Load(), o.valid503.Load(), o.revoked401.Load(), o.revoked503.Load())
		if o.bad.Load() != 0 {
			t.Errorf("daemon %s gave %d answers it must never give: %v", names[i], o.bad.Load(), o.bads())
		}
	}
	if log := a.Log(); strings.Contains(log, password) || !strings.Contains(log, "change notifications lost") {
		t.Fatalf("daemon a's log shows the password, or not the lost LISTEN connection:\n%s", log)
	}
}

// TestPostgresSlowQuery: a verification that needs an editor's state while
// a lock holds the editors table answers 503 within about --store-timeout,
// not when the lock goes; once it goes, 200.
func TestPostgresSlowQuery(t *testing.T) {
	ctx := context.Background()
	srv := testpg.Start(t)
	d := newPGDeployment(t, srv, "")
	alice := d.cli("editor", "create", "alice")
	const timeout = 100 * time.Millisecond
	a := d.start("--store-timeout", timeout.String())
	waitFollowing(t, a, true)
	tok := d.mint(d.minter(), alice) // never verified: not cached

	c, err := pgx.Connect(ctx, d.db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE editors IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/verify", "/v1/auth"} {
		t.Run(path, func(t *testing.T) {
			req, _ := http.NewRequest("GET", a.url+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			start := time.Now()
			resp, err := client.Do(req) // the client's 5 s timeout is the failure
			if err != nil {
				t.Fatalf("no answer while the table is locked: %v", err)
			}
			took := time.Since(start)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Logf("%s with the editors table locked: %d after %v (--store-timeout %v)", path, resp.StatusCode, took, timeout)
			// RFC 6750 has no code for 503; RFC 6749's temporarily_unavailable.
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"error":"temporarily_unavailable"`) {
				t.Fatalf("%s under a lock: %d (Retry-After %q) %s", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
		})
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Once the lock goes, 200: a read may still miss the 100 ms on a
	// loaded machine (503, fail-closed) before one makes it; a 401 or any
	// other answer fails.
	waitUntil(t, "200 after the lock", 10*time.Second, func() bool {
		switch s := a.status(t, tok); s {
		case 200:
			return true
		case 503:
			return false
		default:
			t.Fatalf("after the lock: %d", s)
			return false
		}
	})
}

// TestPostgresDaemonSmoke: a daemon on PostgreSQL through its HTTP surface:
// the token API (create, list, revoke), /readyz, /metrics, and its startup
// log, which names the store without the password.
func TestPostgresDaemonSmoke(t *testing.T) {
	srv := testpg.Start(t)
	d := newPGDeployment(t, srv, "")
	const role, password = "amarettid_smoke", "smoke-s3cret-pw"
	createSuperuser(t, srv, role, password)
	db := srv.URLAs(dbName(t, d.db), role, password)
	alice := d.cli("editor", "create", "alice")
	a := d.start("--db", db)
	waitFollowing(t, a, true)
	session := d.mint(d.minter(), alice)

	do := func(method, path, tok, body string) (int, map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		json.Unmarshal(b, &out)
		return resp.StatusCode, out, string(b)
	}
	status, created, raw := do("POST", "/v1/tokens", session, `{"name":"laptop","rights":["read"],"expires_in":"24h"}`)
	if status != 201 || created["token"] == nil || created["token_id"] == nil {
		t.Fatalf("create: %d %s", status, raw)
	}
	secret, id := created["token"].(string), created["token_id"].(string)
	for _, tc := range []struct {
		name        string
		method, url string
		tok         string
		want        int
		contains    string
	}{
		{"the new token verifies", "GET", "/v1/verify", secret, 200, alice},
		{"listed", "GET", "/v1/tokens", session, 200, id},
		{"readyz", "GET", "/readyz", "", 200, `"store":"ok"`},
		{"revoke", "DELETE", "/v1/tokens/" + id, session, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := do(tc.method, tc.url, tc.tok, "")
			if status != tc.want || !strings.Contains(body, tc.contains) || strings.Contains(body, secret) {
				t.Fatalf("%s %s: %d %s", tc.method, tc.url, status, body)
			}
		})
	}
	waitUntil(t, "the revoked token refused", 5*time.Second, func() bool { return a.status(t, secret) == 401 })
	if s := a.status(t, session); s != 200 {
		t.Fatalf("the session token after revoking another: %d", s)
	}
	for name, want := range map[string]string{"amaretti_changelog_notify_up": "1", "amaretti_changelog_current": "1"} {
		if got := a.metric(t, name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	log := a.Log()
	if strings.Contains(log, password) || !strings.Contains(log, `"store":"postgresql"`) || !strings.Contains(log, `"db":"`+setup.Redact(db)+`"`) {
		t.Fatalf("startup log: want the store kind and the redacted URL, never the password:\n%s", log)
	}
}

// TestStoreTimeoutMustBePositive: a zero or negative --store-timeout is
// refused at start (it would leave reads unbounded, or fail every one).
func TestStoreTimeoutMustBePositive(t *testing.T) {
	d := newDeployment(t, "")
	for _, v := range []string{"0", "-1s"} {
		t.Run(v, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, "amarettid"), "--listen", freePort(t), "--store-timeout="+v)
			cmd.Env, cmd.Dir = d.env(), d.dir
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "--store-timeout must be positive") {
				t.Fatalf("--store-timeout=%s: %v %s", v, err, out)
			}
		})
	}
}
