package epoch_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
)

// counting wraps the real SQLite store to count reads and to fail on demand.
type counting struct {
	src   epoch.Source
	reads atomic.Int64
	fail  atomic.Bool
	hook  func() // runs between the read and the return, to stage races
}

func (c *counting) State(ctx context.Context, id string) (epoch.State, error) {
	c.reads.Add(1)
	if c.fail.Load() {
		return epoch.State{}, errors.New("database is down")
	}
	s, err := c.src.State(ctx, id)
	if c.hook != nil {
		c.hook()
	}
	return s, err
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T) (*sqlite.Store, *counting, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"), sqlite.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &counting{src: s}, clk
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	s, src, clk := setup(t)
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	c := epoch.NewCache(src, 10, time.Second, epoch.WithCacheClock(clk.now))

	get := func() epoch.State {
		t.Helper()
		st, err := c.State(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := get()
	get()
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("reads after a miss and a hit: %d", n)
	}

	t.Run("stale within TTL, fresh after", func(t *testing.T) {
		clk.add(time.Millisecond)
		if _, err := s.Touch(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
		if got := get(); got != first {
			t.Fatal("cache did not serve within its TTL")
		}
		clk.add(time.Second)
		if got := get(); got.Version != first.Version+1 {
			t.Fatalf("after the TTL: version %d", got.Version)
		}
	})

	t.Run("invalidate", func(t *testing.T) {
		v := get().Version
		s.Touch(ctx, e.ID)
		c.Invalidate(e.ID)
		if got := get(); got.Version != v+1 {
			t.Fatalf("after Invalidate: version %d, want %d", got.Version, v+1)
		}
		s.Touch(ctx, e.ID)
		c.Invalidate()
		if got := get(); got.Version != v+2 {
			t.Fatalf("after Invalidate(): version %d, want %d", got.Version, v+2)
		}
	})

	t.Run("errors are not cached and never answered from an expired entry", func(t *testing.T) {
		clk.add(2 * time.Second)
		src.fail.Store(true)
		defer src.fail.Store(false)
		if _, err := c.State(ctx, e.ID); err == nil {
			t.Fatal("answered from an expired entry while the store is down")
		}
	})

	t.Run("unknown editor", func(t *testing.T) {
		if _, err := c.State(ctx, "nobody"); !errors.Is(err, epoch.ErrNotFound) {
			t.Fatalf("State(unknown) = %v", err)
		}
	})
}

func TestCacheBounded(t *testing.T) {
	ctx := context.Background()
	s, src, clk := setup(t)
	c := epoch.NewCache(src, 5, time.Hour, epoch.WithCacheClock(clk.now))
	for i := 0; i < 20; i++ {
		e, err := s.Create(ctx, epoch.NewEditor{Username: "u" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.State(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
		if c.Len() > 5 {
			t.Fatalf("cache holds %d entries, bound is 5", c.Len())
		}
	}
}

// TestCacheFillRace: a reader that fetched the state before a touch must
// not store it after the touch's invalidation.
func TestCacheFillRace(t *testing.T) {
	ctx := context.Background()
	s, src, clk := setup(t)
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	c := epoch.NewCache(src, 10, time.Hour, epoch.WithCacheClock(clk.now))
	old, _ := s.State(ctx, e.ID)

	src.hook = func() {
		// The read has happened; now a touch and its invalidation land.
		src.hook = nil
		clk.add(time.Millisecond)
		if _, err := s.Touch(ctx, e.ID); err != nil {
			t.Error(err)
		}
		c.Invalidate(e.ID)
	}
	got, err := c.State(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != old.Version {
		t.Fatalf("racing read returned version %d, want the old %d", got.Version, old.Version)
	}
	fresh, _ := c.State(ctx, e.ID)
	if fresh.Version != old.Version+1 {
		t.Fatalf("the stale fill was cached: version %d, want %d", fresh.Version, old.Version+1)
	}
}

func TestCacheBypass(t *testing.T) {
	ctx := context.Background()
	s, src, clk := setup(t)
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	c := epoch.NewCache(src, 10, time.Hour, epoch.WithCacheClock(clk.now))
	c.State(ctx, e.ID)
	c.SetBypass(true)
	if c.Len() != 0 || !c.Bypassed() {
		t.Fatal("bypass kept entries")
	}
	before := src.reads.Load()
	s.Touch(ctx, e.ID)
	st, _ := c.State(ctx, e.ID)
	c.State(ctx, e.ID)
	if src.reads.Load() != before+2 || st.Version != 2 || c.Len() != 0 {
		t.Fatalf("bypassed cache: reads %d, version %d, len %d", src.reads.Load()-before, st.Version, c.Len())
	}
	c.SetBypass(false)
	c.State(ctx, e.ID)
	c.State(ctx, e.ID)
	if src.reads.Load() != before+3 {
		t.Fatal("cache not used after the bypass ended")
	}
}

// gated is a Source whose reads wait for a signal, to hold misses in
// flight; it counts them.
type gated struct {
	src     epoch.Source
	reads   atomic.Int64
	started chan struct{}
	release chan struct{}
}

func (g *gated) State(ctx context.Context, id string) (epoch.State, error) {
	g.reads.Add(1)
	g.started <- struct{}{}
	<-g.release
	return g.src.State(ctx, id)
}

// TestCacheSingleFlight: concurrent misses of one editor share one read;
// a lookup that begins after an invalidation does not join a read that
// began before it, and sees the change; a caller that gives up does not
// fail the others.
func TestCacheSingleFlight(t *testing.T) {
	ctx := context.Background()
	s, _, _ := setup(t)
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	t.Run("one read for many misses", func(t *testing.T) {
		g := &gated{src: s, started: make(chan struct{}, 100), release: make(chan struct{})}
		c := epoch.NewCache(g, 10, time.Minute)
		const n = 32
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				st, err := c.State(ctx, e.ID)
				if err == nil && st.Version != e.Version {
					err = errors.New("wrong version")
				}
				errs <- err
			})
		}
		<-g.started
		// Every caller is either waiting on the read or will hit the entry
		// it stores: release it only once all have looked.
		for hits, misses := c.Stats(); hits+misses < n; hits, misses = c.Stats() {
			time.Sleep(time.Millisecond)
		}
		close(g.release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := g.reads.Load(); got != 1 {
			t.Fatalf("%d misses read the store %d times, want once", n, got)
		}
	})
	t.Run("no joining a read from before an invalidation", func(t *testing.T) {
		g := &gated{src: s, started: make(chan struct{}, 100), release: make(chan struct{}, 100)}
		c := epoch.NewCache(g, 10, time.Minute)
		before := make(chan epoch.State, 1)
		go func() { st, _ := c.State(ctx, e.ID); before <- st }()
		<-g.started // the first read is in flight, not yet answered
		touched, err := s.Touch(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		c.Invalidate(e.ID)
		after := make(chan epoch.State, 1)
		go func() { st, _ := c.State(ctx, e.ID); after <- st }()
		<-g.started // a second read: the lookup did not join the first
		g.release <- struct{}{}
		g.release <- struct{}{}
		if st := <-after; st.Version != touched.Version {
			t.Fatalf("a lookup after the invalidation got version %d, want %d", st.Version, touched.Version)
		}
		<-before
		if st, _ := c.State(ctx, e.ID); st.Version != touched.Version {
			t.Fatalf("cached version %d after the touch, want %d", st.Version, touched.Version)
		}
	})
	t.Run("a caller that gives up", func(t *testing.T) {
		g := &gated{src: s, started: make(chan struct{}, 100), release: make(chan struct{})}
		c := epoch.NewCache(g, 10, time.Minute)
		reader, cancelReader := context.WithCancel(ctx)
		first := make(chan error, 1)
		go func() { _, err := c.State(reader, e.ID); first <- err }()
		<-g.started // the first lookup reads
		joined, cancelJoined := context.WithCancel(ctx)
		gaveUp := make(chan error, 1)
		go func() { _, err := c.State(joined, e.ID); gaveUp <- err }()
		for _, misses := c.Stats(); misses < 2; _, misses = c.Stats() {
			time.Sleep(time.Millisecond)
		}
		cancelJoined() // a lookup waiting on the read gives up: it stops waiting
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Fatalf("the caller that gave up: %v", err)
		}
		cancelReader() // the reader's caller gives up too: its read goes on
		close(g.release)
		if err := <-first; err != nil {
			t.Fatalf("the read failed with its caller: %v", err)
		}
		if got := g.reads.Load(); got != 1 {
			t.Fatalf("%d reads, want 1", got)
		}
		if _, err := c.State(ctx, e.ID); err != nil || g.reads.Load() != 1 {
			t.Fatalf("the read's answer was not kept: %v, %d reads", err, g.reads.Load())
		}
	})
	t.Run("a store slower than every caller's deadline", func(t *testing.T) {
		// A read that outlives the caller that began it still answers the
		// lookups that come later; were it cancelled with that caller,
		// no read would ever finish.
		synctest.Test(t, func(t *testing.T) {
			src := &slow{d: 50 * time.Millisecond}
			c := epoch.NewCache(src, 10, time.Minute)
			var answered atomic.Int64
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
					defer cancel()
					if _, err := c.State(cctx, "alice"); err == nil {
						answered.Add(1)
					}
				})
				time.Sleep(10 * time.Millisecond)
			}
			wg.Wait()
			if answered.Load() < 15 || src.reads.Load() != 1 {
				t.Fatalf("%d of 20 lookups answered with %d store reads; want 15 or more with 1", answered.Load(), src.reads.Load())
			}
		})
	})
}

// slow answers after d, or when ctx ends.
type slow struct {
	d     time.Duration
	reads atomic.Int64
}

func (s *slow) State(ctx context.Context, _ string) (epoch.State, error) {
	s.reads.Add(1)
	select {
	case <-time.After(s.d):
		return epoch.State{Version: 1}, nil
	case <-ctx.Done():
		return epoch.State{}, ctx.Err()
	}
}

// goexiting is a Source whose read ends its goroutine (t.FailNow in a
// test double, say) without returning or panicking.
type goexiting struct{}

func (goexiting) State(context.Context, string) (epoch.State, error) {
	runtime.Goexit()
	return epoch.State{}, nil
}

// TestCacheReadThatNeverReturns: a read that ends its goroutine without
// returning still answers the flight, so later lookups read again instead
// of waiting on it for ever.
func TestCacheReadThatNeverReturns(t *testing.T) {
	c := epoch.NewCache(goexiting{}, 10, time.Minute)
	for i := range 2 {
		done := make(chan struct{})
		go func() { defer close(done); c.State(context.Background(), "alice") }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("lookup %d still waits on a read that will never answer", i)
		}
	}
}

// panicking is a Source whose read panics (a bug below the cache).
type panicking struct{}

func (panicking) State(context.Context, string) (epoch.State, error) { panic("a bug in the source") }

// TestCacheSourcePanicDenies: a Source that panics while a miss is being
// filled (in the cache's own goroutine, where the verifier's recovery
// cannot reach) fails the lookups that wait for it, and does not take the
// process down.
func TestCacheSourcePanicDenies(t *testing.T) {
	c := epoch.NewCache(panicking{}, 0, 0)
	for i := range 2 {
		if _, err := c.State(context.Background(), "alice"); err == nil {
			t.Fatalf("lookup %d: a read that panicked answered", i)
		}
	}
}

// TestCacheBypassSharesReads: a bypassed cache keeps nothing, but
// concurrent lookups of one editor still share one store read, so an
// invalidation feed going down does not multiply the store's load. In a
// synctest bubble, Wait returns once every lookup has either joined the
// read in flight or started one of its own.
func TestCacheBypassSharesReads(t *testing.T) {
	ctx := context.Background()
	s, _, _ := setup(t)
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	synctest.Test(t, func(t *testing.T) {
		g := &gated{src: s, started: make(chan struct{}, 100), release: make(chan struct{})}
		c := epoch.NewCache(g, 10, time.Minute)
		c.SetBypass(true)
		const n = 16
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if st, err := c.State(ctx, e.ID); err != nil || st.Version != e.Version {
					t.Errorf("State = %+v, %v", st, err)
				}
			})
		}
		synctest.Wait()
		if got := g.reads.Load(); got != 1 {
			t.Errorf("%d bypassed lookups in flight read the store %d times, want once", n, got)
		}
		close(g.release)
		wg.Wait()
		if c.Len() != 0 {
			t.Fatal("a bypassed cache kept a state")
		}
		// Nothing is kept while bypassed: the next lookup reads again.
		if _, err := c.State(ctx, e.ID); err != nil || g.reads.Load() != 2 {
			t.Fatalf("a lookup after the shared read: %v, %d reads", err, g.reads.Load())
		}
	})
}
