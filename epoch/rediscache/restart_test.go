package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/internal/testredis"
)

// neverAgain reads the editor's state through the whole stack (in-process
// cache → Layer → store) for the Redis TTL and a bit, and fails if any
// read admits a token created at created with the given ids.
func neverAgain(t *testing.T, e *env, editorID string, created time.Time, ids ...string) int {
	t.Helper()
	ctx := context.Background()
	reads := 0
	for start := time.Now(); time.Since(start) < testTTL+time.Second; reads++ {
		st, err := e.cache.State(ctx, editorID)
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		if err := st.Admit(created, ids...); err == nil {
			t.Fatalf("read %d, %v after the change: the old state came back: %+v", reads, time.Since(start), st)
		}
		st, err = e.layer.State(ctx, editorID)
		if err != nil || st.Admit(created, ids...) == nil {
			t.Fatalf("read %d through the Layer alone: %+v, %v", reads, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return reads
}

// TestRedisNeverUndoesARevocation (M2): Redis with RDB persistence holds an
// editor's state; Redis is shut down (saving its snapshot), the editor is
// changed in the store while Redis is down, and Redis comes back from the
// snapshot with the old state. No read may return the old state again.
func TestRedisNeverUndoesARevocation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(s *sqlite.Store, editorID, tokenID string) (epoch.Editor, error)
	}{
		{"touch", func(s *sqlite.Store, id, _ string) (epoch.Editor, error) { return s.Touch(ctx, id) }},
		{"lock", func(s *sqlite.Store, id, _ string) (epoch.Editor, error) { return s.Lock(ctx, id) }},
		{"deactivate", func(s *sqlite.Store, id, _ string) (epoch.Editor, error) { return s.SetActive(ctx, id, false) }},
		{"revoke one token", func(s *sqlite.Store, _, tok string) (epoch.Editor, error) {
			ed, _, err := s.RevokeToken(ctx, tok)
			return ed, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testredis.StartPersistent(t)
			e := setupWith(t, srv, testPoll)
			alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice"})
			created := time.Now().Add(time.Millisecond)
			tokenID := "6F1C3A52-0000-4000-8000-00000000000F"
			if err := e.store.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID, EditorID: alice.ID, Name: "laptop", Created: created, Creator: "cli"}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // the token is created after the epoch
			waitFor(t, "follower current", 5*time.Second, e.follower.Current)
			// Cached in Redis and served from there.
			waitFor(t, "a Redis hit", 5*time.Second, func() bool {
				st, err := e.layer.State(ctx, alice.ID)
				return err == nil && st.Admit(created, tokenID) == nil && e.layer.Stats().Hits > 0
			})
			before := e.cached(t, alice.ID)
			srv.Shutdown() // SHUTDOWN saves dump.rdb
			ed, err := tc.change(e.store, alice.ID, tokenID)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.layer.Announce(ctx, ed); err == nil {
				t.Fatal("announced with Redis down")
			}
			srv.Start()
			if got := e.cached(t, alice.ID); got != before {
				t.Fatalf("Redis did not come back with the old state: %q, was %q", got, before)
			}
			reads := neverAgain(t, e, alice.ID, created, tokenID)
			t.Logf("%d reads over %v after Redis came back from its snapshot: none admitted the token", reads, testTTL+time.Second)
		})
	}
}

// TestFlushAllThenStaleFill (M2): Redis is flushed and a slow reader that
// read the store before a touch fills Redis after it. The stale value is
// never served.
func TestFlushAllThenStaleFill(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice"})
	created := time.Now().Add(time.Millisecond)
	time.Sleep(2 * time.Millisecond)
	old, _ := e.store.State(ctx, alice.ID) // the slow reader's read
	if _, err := e.store.Touch(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "touch followed", 5*time.Second, func() bool { return e.follower.Stats().Head > old.Seq })
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	slow := rediscache.New(e.rdb, staleSource{old}, rediscache.WithTTL(testTTL), rediscache.WithKeys(e.keys))
	slow.State(ctx, alice.ID)
	if v := e.cached(t, alice.ID); !strings.HasPrefix(v, fmt.Sprintf("v4 %d %d ", old.Version, old.Seq)) {
		t.Fatalf("the stale fill did not land: %q", v)
	}
	neverAgain(t, e, alice.ID, created)
	if e.layer.Stats().Untrusted == 0 {
		t.Fatal("the stale value was never seen and refused")
	}
}

// TestUnannouncedChange (L3, and M2's lost publish): a change made on the
// store with no announcement at all (no --redis on the CLI, Redis down when
// it ran, a lost message) reaches a Redis-backed stack whose caches hold the
// old state within the follower's poll interval. Measured with the default
// interval (1 s).
func TestUnannouncedChange(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, testredis.Start(t), epoch.DefaultPollInterval)
	alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice"})
	var took []time.Duration
	for i := 0; i < 5; i++ {
		created := time.Now()
		time.Sleep(time.Millisecond)
		// Cached in both layers: in process (an hour) and in Redis.
		waitFor(t, "cached", 5*time.Second, func() bool {
			st, err := e.cache.State(ctx, alice.ID)
			return err == nil && st.Admit(created) == nil && e.cached(t, alice.ID) != ""
		})
		start := time.Now()
		if _, err := e.store.Touch(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		took = append(took, waitFor(t, "unannounced touch seen", 2*epoch.DefaultPollInterval+time.Second, func() bool {
			st, err := e.cache.State(ctx, alice.ID)
			return err == nil && errors.Is(st.Admit(created), epoch.ErrRevoked)
		}))
		_ = start
		// Out of phase with the poll, for the next round.
		time.Sleep(time.Duration(i+1) * 170 * time.Millisecond)
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("unannounced touch seen by a Redis-backed stack (poll %v): min %v median %v max %v", epoch.DefaultPollInterval, took[0], took[len(took)/2], took[len(took)-1])
}

// TestAnnouncedChange measures the feed-up path: a touch announced through
// Redis reaches another stack's in-process cache (an hour's TTL) at once,
// long before its follower's next poll.
func TestAnnouncedChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := setupWith(t, testredis.Start(t), epoch.DefaultPollInterval)
	alice, _ := e.store.Create(ctx, epoch.NewEditor{Username: "alice"})
	up := make(chan bool, 10)
	done := make(chan struct{})
	go func() { e.layer.Watch(ctx, e.cache, time.Second, func(u bool) { up <- u }); close(done) }()
	defer func() { cancel(); <-done }()
	if !<-up {
		t.Fatal("feed down")
	}
	rdb, _ := rediscache.NewClient(e.srv.URL())
	defer rdb.Close()
	writer := rediscache.New(rdb, e.store, rediscache.WithKeys(e.keys))
	var took []time.Duration
	for i := 0; i < 20; i++ {
		created := time.Now()
		time.Sleep(time.Millisecond)
		waitFor(t, "cached", 5*time.Second, func() bool {
			st, err := e.cache.State(ctx, alice.ID)
			return err == nil && st.Admit(created) == nil
		})
		start := time.Now()
		ed, _ := e.store.Touch(ctx, alice.ID)
		if err := writer.Announce(ctx, ed); err != nil {
			t.Fatal(err)
		}
		took = append(took, waitFor(t, "announced touch seen", time.Second, func() bool {
			st, err := e.cache.State(ctx, alice.ID)
			return err == nil && errors.Is(st.Admit(created), epoch.ErrRevoked)
		}))
		_ = start
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("announced touch seen (feed up, poll %v): median %v max %v", epoch.DefaultPollInterval, took[len(took)/2], took[len(took)-1])
	if took[len(took)-1] >= epoch.DefaultPollInterval/2 {
		t.Fatalf("the feed did not beat the poll: max %v", took[len(took)-1])
	}
}
