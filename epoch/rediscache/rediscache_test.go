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

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/internal/testredis"
	"github.com/redis/go-redis/v9"
)

type env struct {
	srv   *testredis.Server
	rdb   redis.UniversalClient
	store *sqlite.Store
	layer *rediscache.Layer
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := testredis.Start(t)
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
	return &env{srv: srv, rdb: rdb, store: store, layer: rediscache.New(rdb, store, rediscache.WithTTL(time.Minute))}
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
	alice, _ := e.store.Create(ctx, sqlite.NewEditor{Username: "alice", Role: epoch.RoleAdmin})
	st, err := e.layer.State(ctx, alice.ID)
	if err != nil || st != alice.State() {
		t.Fatalf("State = %+v, %v; want %+v", st, err, alice.State())
	}
	if v := e.cached(t, alice.ID); !strings.HasPrefix(v, "v2 1 ") || !strings.HasSuffix(v, " admin 1 -") {
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
	if ttl <= 0 || ttl > time.Minute {
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
	if st, _ := e.layer.State(ctx, alice.ID); st != touched.State() {
		t.Fatalf("after Announce: %+v, want %+v", st, touched.State())
	}
	// Garbage in Redis is ignored, not trusted.
	e.rdb.Set(ctx, "amaretti:editor:"+alice.ID, "v2 999 0 root 1 -", time.Minute)
	if st, _ := e.layer.State(ctx, alice.ID); st != touched.State() {
		t.Fatalf("garbage in Redis: %+v", st)
	}
}

// TestFillNeverGoesBack: a reader that fetched an old state before a touch
// cannot overwrite the touch's state in Redis.
func TestFillNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	alice, _ := e.store.Create(ctx, sqlite.NewEditor{Username: "alice"})

	t.Run("staged", func(t *testing.T) {
		old := alice // read before the touch
		touched, _ := e.store.Touch(ctx, alice.ID)
		e.layer.Announce(ctx, touched)
		e.layer.Announce(ctx, old) // the slow reader's fill lands last
		st, _ := e.layer.State(ctx, alice.ID)
		if st.Version != touched.Version {
			t.Fatalf("Redis went back to version %d (touch made %d)", st.Version, touched.Version)
		}
	})

	t.Run("unlock goes forward although the epoch goes back", func(t *testing.T) {
		locked, _ := e.store.Lock(ctx, alice.ID)
		e.layer.Announce(ctx, locked)
		unlocked, _ := e.store.Unlock(ctx, alice.ID)
		e.layer.Announce(ctx, unlocked)
		if st, _ := e.layer.State(ctx, alice.ID); st.Locked() || st != unlocked.State() {
			t.Fatalf("after unlock Redis holds %+v", st)
		}
	})

	t.Run("racing fills and touches", func(t *testing.T) {
		readers := make([]*rediscache.Layer, 4)
		for i := range readers {
			rdb, _ := rediscache.NewClient(e.srv.URL())
			defer rdb.Close()
			readers[i] = rediscache.New(rdb, e.store)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for _, r := range readers {
			wg.Add(1)
			go func(r *rediscache.Layer) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					// Expire the key so every read is a fill from SQLite.
					e.rdb.Del(ctx, "amaretti:editor:"+alice.ID)
					if _, err := r.State(ctx, alice.ID); err != nil {
						t.Error(err)
						return
					}
				}
			}(r)
		}
		for i := 0; i < 200; i++ {
			ed, err := e.store.Touch(ctx, alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			e.layer.Announce(ctx, ed)
		}
		close(stop)
		wg.Wait()
		final, _ := e.store.Editor(ctx, alice.ID)
		e.layer.Announce(ctx, final)
		if st, _ := e.layer.State(ctx, alice.ID); st.Version != final.Version {
			t.Fatalf("Redis holds version %d, the store %d", st.Version, final.Version)
		}
	})
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
	alice, _ := e.store.Create(ctx, sqlite.NewEditor{Username: "alice"})
	cache := epoch.NewCache(e.layer, 0, time.Hour)
	var mu sync.Mutex
	var changes []bool
	go e.layer.Watch(ctx, cache, 200*time.Millisecond, func(up bool) { mu.Lock(); changes = append(changes, up); mu.Unlock() })
	waitFor(t, "subscribed", 5*time.Second, func() bool { return !cache.Bypassed() })

	// An announcement from another verifier's layer reaches this cache.
	rdb2, _ := rediscache.NewClient(e.srv.URL())
	defer rdb2.Close()
	writer := rediscache.New(rdb2, e.store)
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

	t.Run("subscription killed: bypass, then back", func(t *testing.T) {
		if err := e.rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "resubscribed", 5*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(changes) >= 3 && !changes[len(changes)-2] && changes[len(changes)-1]
		})
	})

	t.Run("redis killed: reads go to the store; back when it returns", func(t *testing.T) {
		e.srv.Kill()
		waitFor(t, "bypass after redis died", 5*time.Second, cache.Bypassed)
		locked, _ := e.store.Lock(ctx, alice.ID)
		st, err := cache.State(ctx, alice.ID)
		if err != nil || !st.Locked() || st.Version != locked.Version {
			t.Fatalf("with redis down: %+v, %v", st, err)
		}
		if e.layer.Stats().Fallbacks == 0 {
			t.Fatal("fallback not counted")
		}
		e.srv.Restart()
		waitFor(t, "resubscribed after restart", 10*time.Second, func() bool { return !cache.Bypassed() })
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
