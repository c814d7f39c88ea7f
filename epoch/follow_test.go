package epoch_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
)

// switchable is a ChangeLog that can be pointed at another real store, as
// when an operator replaces or restores the database under running
// verifiers.
type switchable struct {
	mu sync.Mutex
	s  *sqlite.Store
}

func (w *switchable) store() *sqlite.Store { w.mu.Lock(); defer w.mu.Unlock(); return w.s }
func (w *switchable) set(s *sqlite.Store)  { w.mu.Lock(); w.s = s; w.mu.Unlock() }
func (w *switchable) Changes(ctx context.Context, after int64, limit int) ([]epoch.Change, error) {
	return w.store().Changes(ctx, after, limit)
}
func (w *switchable) Head(ctx context.Context) (epoch.Head, error) { return w.store().Head(ctx) }

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFollowerFresh(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "a.db"))
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	bob, _ := s.Create(ctx, epoch.NewEditor{Username: "bob"})
	f := epoch.NewFollower(s, epoch.WithWindow(time.Minute))
	if f.Fresh(alice.ID, alice.Seq) {
		t.Fatal("fresh before the first poll")
	}
	cache := epoch.NewCache(s, 0, time.Hour)
	if err := f.Poll(ctx, cache); err != nil {
		t.Fatal(err)
	}
	old, _ := s.State(ctx, alice.ID)
	for _, tc := range []struct {
		name   string
		editor string
		seq    int64
		want   bool
	}{
		{"read after the editor's last change", alice.ID, old.Seq, true},
		{"read before the editor's creation", alice.ID, alice.Seq - 1, false},
		{"another editor, read after its change", bob.ID, bob.Seq, true},
		{"beyond the head", alice.ID, old.Seq + 1, false},
		{"no seq", alice.ID, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.Fresh(tc.editor, tc.seq); got != tc.want {
				t.Fatalf("Fresh(%s, %d) = %v", tc.editor, tc.seq, got)
			}
		})
	}
	// A change: the old read is no longer fresh, for alice only; a touch
	// of everyone makes no earlier read fresh.
	cache.State(ctx, alice.ID)
	touched, _ := s.Touch(ctx, alice.ID)
	if !f.Fresh(alice.ID, old.Seq) {
		t.Fatal("the follower knew of the touch before polling")
	}
	f.Poll(ctx, cache)
	if f.Fresh(alice.ID, old.Seq) || !f.Fresh(alice.ID, touched.Seq) || !f.Fresh(bob.ID, old.Seq) {
		t.Fatal("after the touch")
	}
	if cache.Len() != 0 {
		t.Fatal("the touch did not drop alice from the cache")
	}
	s.TouchAll(ctx)
	f.Poll(ctx, cache)
	h, _ := s.Head(ctx)
	if f.Fresh(bob.ID, touched.Seq) || !f.Fresh(bob.ID, h.Seq) {
		t.Fatal("after touch-all")
	}

	t.Run("a follower that started later knows the changes of the window", func(t *testing.T) {
		g := epoch.NewFollower(s, epoch.WithWindow(time.Minute))
		g.Poll(ctx, nil)
		if g.Fresh(alice.ID, old.Seq) || !g.Fresh(alice.ID, h.Seq) {
			t.Fatal("a new follower trusts a value read before a change of the window")
		}
	})
	t.Run("not current once polls stop", func(t *testing.T) {
		var mu sync.Mutex
		now := time.Now()
		clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		g := epoch.NewFollower(s, epoch.WithWindow(time.Minute), epoch.WithFollowerClock(clk), epoch.WithPollInterval(time.Second))
		g.Poll(ctx, nil)
		if !g.Fresh(bob.ID, h.Seq) {
			t.Fatal("not fresh after a poll")
		}
		mu.Lock()
		now = now.Add(3 * time.Second)
		mu.Unlock()
		if g.Current() || g.Fresh(bob.ID, h.Seq) {
			t.Fatal("current 3 s after its last poll with a 1 s interval")
		}
	})
}

// TestFollowerWindowPruned: the window forgets changes older than W, so its
// memory is bounded by the change rate × W.
func TestFollowerWindowPruned(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "a.db"))
	var mu sync.Mutex
	now := time.Now()
	clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := epoch.NewFollower(s, epoch.WithWindow(10*time.Second), epoch.WithFollowerClock(clk))
	f.Poll(ctx, nil)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	for i := 0; i < 50; i++ {
		s.Touch(ctx, alice.ID)
	}
	f.Poll(ctx, nil)
	if n := f.Stats().Window; n < 51 {
		t.Fatalf("window holds %d changes", n)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	f.Poll(ctx, nil)
	if n := f.Stats().Window; n != 0 {
		t.Fatalf("after W the window still holds %d changes", n)
	}
}

// TestFollowerDiscontinuity: a replaced store (another store id) or a
// restored one (the head goes backwards) drops every cache, and Redis values
// are not trusted for W; then following resumes.
func TestFollowerDiscontinuity(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		// replace returns the store verifiers see next.
		replace func(t *testing.T, s *sqlite.Store) *sqlite.Store
	}{
		{"store replaced", func(t *testing.T, _ *sqlite.Store) *sqlite.Store {
			other := openStore(t, filepath.Join(t.TempDir(), "other.db"))
			for i := 0; i < 20; i++ { // a head beyond the old one
				other.Create(ctx, epoch.NewEditor{Username: "x" + string(rune('a'+i))})
			}
			return other
		}},
		{"restored from a backup: head went backwards", func(t *testing.T, s *sqlite.Store) *sqlite.Store {
			return nil // set below: needs the backup made before the changes
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.db")
			s := openStore(t, path)
			alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
			backup := filepath.Join(dir, tc.name+".db")
			// A consistent copy: the store is idle and its WAL checkpointed on close.
			s.Close()
			copyFile(t, path, backup)
			s = openStore(t, path)
			for i := 0; i < 5; i++ {
				s.Touch(ctx, alice.ID)
			}
			log := &switchable{s: s}
			const w = 300 * time.Millisecond
			f := epoch.NewFollower(log, epoch.WithWindow(w))
			cache := epoch.NewCache(s, 0, time.Hour)
			if err := f.Poll(ctx, cache); err != nil {
				t.Fatal(err)
			}
			cache.State(ctx, alice.ID)
			st, _ := s.State(ctx, alice.ID)
			next := tc.replace(t, s)
			if next == nil {
				next = openStore(t, backup)
			}
			log.set(next)
			err := f.Poll(ctx, cache)
			if err == nil || !errors.Is(err, epoch.ErrDiscontinuity) {
				t.Fatalf("Poll after the switch: %v", err)
			}
			if cache.Len() != 0 || !cache.Bypassed() {
				t.Fatalf("cache not dropped and bypassed: %d entries", cache.Len())
			}
			if err := f.Poll(ctx, cache); err != nil {
				t.Fatal(err)
			}
			h, _ := next.Head(ctx)
			if f.Fresh(alice.ID, h.Seq) || f.Fresh(alice.ID, st.Seq) {
				t.Fatal("a value trusted within W of a discontinuity")
			}
			if cache.Bypassed() {
				t.Fatal("cache still bypassed once following again")
			}
			time.Sleep(w)
			if err := f.Poll(ctx, cache); err != nil {
				t.Fatal(err)
			}
			if !f.Fresh(alice.ID, h.Seq) {
				t.Fatal("not trusted again after W")
			}
		})
	}
}

// TestFollowerGap: a follower that stopped reading for longer than the
// store keeps its log finds a gap and drops its caches.
func TestFollowerGap(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Now()}
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"), sqlite.WithClock(clk.now), sqlite.WithChangeRetention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	f := epoch.NewFollower(s, epoch.WithWindow(time.Minute))
	cache := epoch.NewCache(s, 0, time.Hour)
	f.Poll(ctx, cache)
	cache.State(ctx, alice.ID)
	for i := 0; i < 10; i++ { // changes the follower never reads
		s.Touch(ctx, alice.ID)
	}
	clk.add(2 * time.Hour)
	for i := 0; i < 200; i++ { // enough to prune (every 64th change prunes)
		s.Touch(ctx, alice.ID)
	}
	if h, _ := s.Head(ctx); h.Oldest <= 3 {
		t.Fatalf("nothing was pruned: %+v", h)
	}
	if err := f.Poll(ctx, cache); !errors.Is(err, epoch.ErrDiscontinuity) {
		t.Fatalf("Poll after a gap: %v", err)
	}
	if cache.Len() != 0 {
		t.Fatal("cache kept across a gap")
	}
}
