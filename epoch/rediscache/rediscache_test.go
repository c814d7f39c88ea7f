package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/internal/testredis"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// env is a verifier's stack over a real SQLite file and a real Redis:
// follower → Layer → in-process cache.
type env struct {
	srv      *testredis.Server
	rdb      redis.UniversalClient
	store    *sqlite.Store
	follower *epoch.Follower
	layer    *rediscache.Layer
	cache    *epoch.Cache
	keys     *macaroon.KeyStore
}

const (
	testTTL  = 3 * time.Second
	testPoll = 200 * time.Millisecond
)

func setup(t *testing.T) *env { return setupWith(t, testredis.Start(t), testPoll) }

func setupWith(t *testing.T, srv *testredis.Server, poll time.Duration) *env {
	t.Helper()
	rdb, err := rediscache.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, _, err := macaroon.InitKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, rdb: rdb, store: store, keys: keys}
	e.follower = epoch.NewFollower(store, epoch.WithPollInterval(poll), epoch.WithWindow(testTTL+5*time.Second))
	e.layer = rediscache.New(rdb, store, rediscache.WithTTL(testTTL), rediscache.WithFollower(e.follower), rediscache.WithKeys(e.keys))
	e.cache = epoch.NewCache(e.layer, 0, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.follower.Run(ctx, e.cache); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "follower current", 5*time.Second, e.follower.Current)
	return e
}

func (e *env) cached(t *testing.T, id string) string {
	t.Helper()
	v, err := e.rdb.Get(context.Background(), "amaretti:editor:"+id).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return v
}

func TestReadThrough(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice", Role: epoch.RoleAdmin})
	waitFor(t, "creation followed", 5*time.Second, func() bool { return e.follower.Stats().Head >= alice.Seq })
	st, err := e.layer.State(ctx, alice.ID)
	if err != nil || st != alice.State() {
		t.Fatalf("State = %+v, %v; want %+v", st, err, alice.State())
	}
	if v := e.cached(t, alice.ID); !strings.HasPrefix(v, fmt.Sprintf("v4 1 %d ", alice.Seq)) || !strings.Contains(v, " admin 1 - ") {
		t.Fatalf("cached %q", v)
	}
	again, _ := e.layer.State(ctx, alice.ID)
	if again != st {
		t.Fatalf("hit %+v", again)
	}
	if s := e.layer.Stats(); s.Hits != 1 || s.Misses != 1 {
		t.Fatalf("stats %+v", s)
	}
	ttl, _ := e.rdb.PTTL(ctx, "amaretti:editor:"+alice.ID).Result()
	if ttl <= 0 || ttl > testTTL {
		t.Fatalf("TTL %v", ttl)
	}
	if _, err := e.layer.State(ctx, "nobody"); !errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("unknown editor: %v", err)
	}
	if v := e.cached(t, "nobody"); v != "" {
		t.Fatal("an unknown editor was cached")
	}

	// A touch announced through the layer is in Redis at once.
	touched, _ := e.store.Touch(ctx, alice.ID)
	if err := e.layer.Announce(ctx, touched); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.layer.State(ctx, alice.ID); st.Version != touched.Version || !st.Epoch.Equal(touched.AuthEpoch) {
		t.Fatalf("after Announce: %+v, want %+v", st, touched.State())
	}
	for _, bad := range []string{
		"v2 999 0 admin 1 -",                                // the old format
		"v3 999 99999 0 root 1 -",                           // an unknown role
		"v3 999 99999 0 admin 1 x,y",                        // a revoked list in no known format
		"v3 999 99999 0 admin 2 -",                          // active neither 0 nor 1
		"v3 999 0 0 admin 1 -",                              // no seq
		"v3 999 99999 0 admin 1 - x",                        // a field too many
		"v3 999 99999 0 admin 1 " + strings.Repeat("0", 36), // no dashes
	} {
		e.rdb.Set(ctx, "amaretti:editor:"+alice.ID, bad, time.Minute)
		if st, _ := e.layer.State(ctx, alice.ID); st.Version != touched.Version {
			t.Fatalf("garbage %q in Redis was served: %+v", bad, st)
		}
	}
}

// staleSource answers an old state: a reader that read the store before a
// change and fills Redis after it.
type staleSource struct{ st epoch.State }

func (s staleSource) State(context.Context, string) (epoch.State, error) { return s.st, nil }

// TestFillNeverGoesBack: a reader that fetched an old state before a touch
// cannot overwrite the touch's state in Redis, and cannot make it served.
func TestFillNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice"})

	t.Run("staged", func(t *testing.T) {
		old := alice // read before the touch
		touched, _ := e.store.Touch(ctx, alice.ID)
		e.layer.Announce(ctx, touched)
		slow := rediscache.New(e.rdb, staleSource{old.State()}, rediscache.WithTTL(testTTL), rediscache.WithKeys(e.keys))
		slow.State(ctx, alice.ID) // the slow reader's fill lands last
		if v := e.cached(t, alice.ID); !strings.HasPrefix(v, fmt.Sprintf("v4 %d ", touched.Version)) {
			t.Fatalf("Redis went back: %q (touch made version %d)", v, touched.Version)
		}
		if st, _ := e.layer.State(ctx, alice.ID); st.Version != touched.Version {
			t.Fatalf("served version %d (touch made %d)", st.Version, touched.Version)
		}
	})

	t.Run("unlock goes forward although the epoch goes back", func(t *testing.T) {
		locked, _ := e.store.Lock(ctx, alice.ID)
		e.layer.Announce(ctx, locked)
		unlocked, _ := e.store.Unlock(ctx, alice.ID)
		e.layer.Announce(ctx, unlocked)
		if st, _ := e.layer.State(ctx, alice.ID); st.Locked() || st.Version != unlocked.Version {
			t.Fatalf("after unlock Redis holds %+v", st)
		}
	})
}

// TestRacingFillsAndTouches: readers fill Redis from SQLite (the key is
// deleted before each read) while touches commit, with and without
// announcements. No read that starts after a touch has committed and the
// follower's bound has passed may return an older version; once the
// touches stop, every read returns the last one.
func TestRacingFillsAndTouches(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice"})
	type event struct {
		at      time.Time
		version int64
	}
	var mu sync.Mutex
	var commits []event
	var reads [][]event
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		rdb, _ := rediscache.NewClient(e.srv.URL())
		defer rdb.Close()
		r := rediscache.New(rdb, e.store, rediscache.WithTTL(testTTL), rediscache.WithFollower(e.follower), rediscache.WithKeys(e.keys))
		reads = append(reads, nil)
		wg.Add(1)
		go func(i int, r *rediscache.Layer) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if n%2 == 0 {
					e.rdb.Del(ctx, "amaretti:editor:"+alice.ID)
				}
				start := time.Now()
				st, err := r.State(ctx, alice.ID)
				if err != nil {
					t.Error(err)
					return
				}
				reads[i] = append(reads[i], event{start, st.Version})
			}
		}(i, r)
	}
	for i := 0; i < 200; i++ {
		ed, err := e.store.Touch(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		commits = append(commits, event{time.Now(), ed.Version})
		mu.Unlock()
		if i%3 != 0 { // a third of the touches are never announced
			e.layer.Announce(ctx, ed)
		}
		time.Sleep(time.Millisecond) // let the readers run between touches
	}
	final := commits[len(commits)-1].version
	time.Sleep(3 * testPoll) // past the follower's bound: from here on only the final version
	settled := time.Now()
	time.Sleep(testPoll)
	close(stop)
	wg.Wait()
	bound := 2*testPoll + 500*time.Millisecond // a poll interval, a late poll, the query timeout
	stale, total := 0, 0
	for _, rs := range reads {
		for _, r := range rs {
			total++
			// The newest version committed at least bound before the read.
			var want int64
			for _, c := range commits {
				if c.at.Add(bound).Before(r.at) {
					want = c.version
				}
			}
			if r.version < want {
				stale++
				t.Errorf("a read at %v returned version %d; version %d was committed more than %v before", r.at.Format(time.StampMicro), r.version, want, bound)
			}
			if r.at.After(settled) && r.version != final {
				t.Fatalf("after settling a read returned version %d, the store has %d", r.version, final)
			}
		}
	}
	t.Logf("%d reads racing 200 touches: %d stale beyond the bound", total, stale)
	if st, _ := e.cache.State(ctx, alice.ID); st.Version != final {
		t.Fatalf("cache holds version %d, the store %d", st.Version, final)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, d)
	return 0
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := setup(t)
	alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice"})
	cache := e.cache
	var mu sync.Mutex
	var changes []bool
	watchDone := make(chan struct{})
	go func() {
		e.layer.Watch(ctx, cache, 200*time.Millisecond, func(up bool) { mu.Lock(); changes = append(changes, up); mu.Unlock() })
		close(watchDone)
	}()
	defer func() { cancel(); <-watchDone }()
	subscribed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(changes) > 0 && changes[len(changes)-1]
	}
	waitFor(t, "subscribed", 5*time.Second, subscribed)

	// An announcement from another verifier's layer reaches this cache at
	// once: the follower polls every 200 ms, but the message is faster.
	rdb2, _ := rediscache.NewClient(e.srv.URL())
	defer rdb2.Close()
	writer := rediscache.New(rdb2, e.store, rediscache.WithKeys(e.keys))
	if st, _ := cache.State(ctx, alice.ID); st.Version != 1 {
		t.Fatal(st)
	}
	touched, _ := e.store.Touch(ctx, alice.ID)
	writer.Announce(ctx, touched)
	d := waitFor(t, "invalidation applied", 2*time.Second, func() bool {
		st, _ := cache.State(ctx, alice.ID)
		return st.Version == touched.Version
	})
	t.Logf("invalidation seen after %v", d)

	t.Run("subscription killed: down, then back", func(t *testing.T) {
		mu.Lock()
		n := len(changes)
		mu.Unlock()
		if err := e.rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		// Down and up again: compare with the changes before the kill, so a
		// flap that happened before it (a late pong on a loaded machine)
		// neither passes nor fails this.
		waitFor(t, "resubscribed", 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			sawDown := false
			for _, up := range changes[n:] {
				sawDown = sawDown || !up
			}
			return sawDown && changes[len(changes)-1]
		})
	})

	t.Run("redis killed: reads go to the store; back when it returns", func(t *testing.T) {
		e.srv.Kill()
		waitFor(t, "feed down after redis died", 5*time.Second, func() bool { return !subscribed() })
		locked, _ := e.store.Lock(ctx, alice.ID)
		// No message: the follower's poll brings the change.
		waitFor(t, "lock seen with redis down", 5*time.Second, func() bool {
			st, err := cache.State(ctx, alice.ID)
			return err == nil && st.Locked() && st.Version == locked.Version
		})
		if e.layer.Stats().Fallbacks == 0 {
			t.Fatal("fallback not counted")
		}
		e.srv.Restart()
		waitFor(t, "resubscribed after restart", 10*time.Second, subscribed)
		unlocked, _ := e.store.Unlock(ctx, alice.ID)
		writer.Announce(ctx, unlocked)
		waitFor(t, "invalidation after restart", 2*time.Second, func() bool {
			st, _ := cache.State(ctx, alice.ID)
			return st.Version == unlocked.Version
		})
	})
}

func TestNewClientURLs(t *testing.T) {
	for _, tc := range []struct {
		url  string
		kind string
	}{
		{"redis://127.0.0.1:6379/0", "*redis.Client"},
		{"redis://s1:26379/0?master_name=mymaster&addr=s2:26379", "*redis.Client"}, // a failover client is a *redis.Client
		{"redis://n1:6379?addr=n2:6379&addr=n3:6379", "*redis.ClusterClient"},
	} {
		c, err := rediscache.NewClient(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if got := fmt.Sprintf("%T", c); got != tc.kind {
			t.Errorf("%s: %s, want %s", tc.url, got, tc.kind)
		}
		c.Close()
	}
	if c, err := rediscache.NewClient("redis://127.0.0.1:6379/0?read_timeout=2s"); err != nil {
		t.Fatal(err)
	} else {
		// go-redis turns max_retries=-1 (no retries) into MaxRetries 0 after its defaults.
		if o := c.(*redis.Client).Options(); o.ReadTimeout != 2*time.Second || o.MaxRetries != 0 || o.DialTimeout != 250*time.Millisecond {
			t.Errorf("options %v %v %v", o.ReadTimeout, o.MaxRetries, o.DialTimeout)
		}
		c.Close()
	}
	if _, err := rediscache.NewClient("http://nope"); err == nil {
		t.Error("accepted a non-redis URL")
	}
}

// TestRedact: no error of NewClient, and no redacted URL, holds a
// password (L11).
func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, url, redacted string }{
		{"password only, bad port", "redis://:Secret@host:badport/0", "redis://:REDACTED@host:badport/0"},
		{"user and password", "redis://user:Secret@host:6379/0", "redis://user:REDACTED@host:6379/0"},
		{"user and password, bad port", "redis://user:Secret@host:badport/0", "redis://user:REDACTED@host:badport/0"},
		{"escaped password", "redis://user:Se%63ret@host:x/0", "redis://user:REDACTED@host:x/0"},
		{"lone user information", "redis://Secret@host:badport", "redis://REDACTED@host:badport"},
		{"password with @", "redis://u:Sec@ret@host:bad/0", "redis://u:REDACTED@host:bad/0"},
		{"sentinel password parameter", "redis://s1:bad/0?master_name=m&sentinel_password=Secret", "redis://s1:bad/0?master_name=m&sentinel_password=REDACTED"},
		{"cluster with a bad timeout", "redis://:Secret@n1:6379?addr=n2:6379&dial_timeout=x", "redis://:REDACTED@n1:6379?addr=n2:6379&dial_timeout=x"},
		{"not a URL", "rediss//:Secret@", "REDACTED@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rediscache.Redact(tc.url); got != tc.redacted {
				t.Errorf("Redact = %q, want %q", got, tc.redacted)
			}
			c, err := rediscache.NewClient(tc.url)
			if err == nil {
				c.Close()
				return
			}
			if strings.Contains(err.Error(), "Secret") || strings.Contains(err.Error(), "Sec") {
				t.Fatalf("the password is in the error: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}
	// The redacted error still unwraps to go-redis's.
	_, err := rediscache.NewClient("redis://:Secret@host:badport/0")
	if err == nil || errors.Unwrap(err) == nil {
		t.Fatalf("error %v does not unwrap", err)
	}
}
