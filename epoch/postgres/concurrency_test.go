package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestConcurrentTouches: goroutines of two stores (two pools: two
// processes, as far as PostgreSQL can tell) touch one editor at once.
// Epochs only grow, versions strictly increase, no touch is lost, and the
// change log lists every version once, in order.
func TestConcurrentTouches(t *testing.T) {
	ctx := context.Background()
	a, url := open(t)
	b := openURL(t, url)
	// An epoch ahead of the clock: each touch moves it exactly 1 µs.
	future := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	e, _ := a.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: future})
	other, _ := a.Create(ctx, epoch.NewEditor{Username: "bob"})
	head, _ := a.Head(ctx)
	const workers, touches = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]time.Time{} // version → epoch
	for w := range workers {
		s := []*Store{a, b}[w%2]
		wg.Go(func() {
			last := time.Time{}
			for range touches {
				got, err := s.Touch(ctx, e.ID)
				if err != nil {
					t.Error(err)
					return
				}
				if !got.AuthEpoch.After(last) {
					t.Errorf("worker %d: epoch %v after %v", w, got.AuthEpoch, last)
				}
				last = got.AuthEpoch
				mu.Lock()
				if _, dup := seen[got.Version]; dup {
					t.Errorf("version %d returned twice", got.Version)
				}
				seen[got.Version] = got.AuthEpoch
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	n := int64(workers * touches)
	got, _ := b.Editor(ctx, e.ID)
	if want := future.Add(time.Duration(n) * time.Microsecond); got.Version != 1+n || !got.AuthEpoch.Equal(want) {
		t.Fatalf("after %d touches: version %d epoch %v, want %d and %v", n, got.Version, got.AuthEpoch, 1+n, want)
	}
	// Each version's epoch is the one before it plus 1 µs: no two touches
	// read the same previous epoch.
	for v := int64(2); v <= 1+n; v++ {
		if want := future.Add(time.Duration(v-1) * time.Microsecond); !seen[v].Equal(want) {
			t.Fatalf("version %d has epoch %v, want %v", v, seen[v], want)
		}
	}
	cs, err := a.Changes(ctx, head.Seq, 1000)
	if err != nil || int64(len(cs)) != n {
		t.Fatalf("%d changes, %v", len(cs), err)
	}
	for i, c := range cs {
		if c.EditorID != e.ID || c.Version != int64(i)+2 || i > 0 && c.Seq <= cs[i-1].Seq {
			t.Fatalf("change %d: %+v (previous %+v)", i, c, cs[max(i-1, 0)])
		}
	}
	if o, _ := a.Editor(ctx, other.ID); o.Version != 1 {
		t.Fatalf("another editor changed: %+v", o)
	}
}

// TestTouchAllWhileRevoking: touch-all from one store while another
// revokes tokens one by one: no deadlock, no lost version, and every token
// ends revoked, by its epoch or by itself.
func TestTouchAllWhileRevoking(t *testing.T) {
	ctx := context.Background()
	a, url := open(t)
	b := openURL(t, url)
	const editors, tokens = 5, 8
	var ids []string
	created := time.Now().Add(-time.Minute)
	for i := range editors {
		e, err := a.Create(ctx, epoch.NewEditor{Username: fmt.Sprint("e", i), Epoch: time.Now().Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		for j := range tokens {
			if err := a.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(i*100 + j), EditorID: e.ID, Name: fmt.Sprint("t", j), Created: created, Creator: "cli"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var touchAlls atomic.Int64
	var wg sync.WaitGroup
	for i := range editors {
		wg.Go(func() {
			for j := range tokens {
				if _, _, err := b.RevokeToken(ctx, tokenID(i*100+j)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			if n, err := a.TouchAll(ctx); err != nil || n != editors {
				t.Errorf("TouchAll = %d, %v", n, err)
				return
			}
			touchAlls.Add(1)
		}
	})
	wg.Wait()
	for i, id := range ids {
		e, err := a.Editor(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 + touchAlls.Load() + tokens; e.Version != want {
			t.Errorf("editor %d: version %d, want %d", i, e.Version, want)
		}
		for j := range tokens {
			if err := e.State().Admit(created, tokenID(i*100+j)); !errors.Is(err, epoch.ErrRevoked) {
				t.Errorf("token %d of editor %d: %v", j, i, err)
			}
		}
	}
}

// TestNameRace: concurrent registrations of one name, from two stores,
// take it exactly once.
func TestNameRace(t *testing.T) {
	ctx := context.Background()
	s1, url := open(t)
	s2 := openURL(t, url)
	alice, _ := s1.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s := []*Store{s1, s2}[i%2]
			errs[i] = s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(100 + i), EditorID: alice.ID, Name: "laptop", Created: time.Now(), Creator: "cli"})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, epoch.ErrNameTaken):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations of one name succeeded", ok)
	}
}

// TestLoginRace: concurrent first logins of one identity, from two stores,
// make one editor; concurrent logins of one preferred name from different
// identities make distinct usernames.
func TestLoginRace(t *testing.T) {
	ctx := context.Background()
	s1, url := open(t)
	s2 := openURL(t, url)
	const n = 12
	var wg sync.WaitGroup
	ids := make([]string, n)
	var created atomic.Int64
	for i := range n {
		wg.Go(func() {
			e, c, err := []*Store{s1, s2}[i%2].Login(ctx, "dev", "racer", "racer")
			if err != nil {
				t.Error(err)
			}
			if c {
				created.Add(1)
			}
			ids[i] = e.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("one subject became several editors: %v", ids)
		}
	}
	if created.Load() != 1 {
		t.Fatalf("%d logins created the editor", created.Load())
	}
	names := make([]string, n)
	for i := range n {
		wg.Go(func() {
			e, _, err := []*Store{s1, s2}[i%2].Login(ctx, "dev", fmt.Sprint("sub-", i), "same")
			if err != nil {
				t.Error(err)
			}
			names[i] = e.Username
		})
	}
	wg.Wait()
	set := map[string]bool{}
	for _, u := range names {
		set[u] = true
	}
	if len(set) != n {
		t.Fatalf("usernames %v", names)
	}
}

// TestOrderingRule: while several writers on two stores change editors,
// followers reading the change log never see a seq at or below one they
// have already read (epoch.ChangeLog), and end with every change.
func TestOrderingRule(t *testing.T) {
	ctx := context.Background()
	a, url := open(t)
	b := openURL(t, url)
	var ids []string
	for i := range 4 {
		e, _ := a.Create(ctx, epoch.NewEditor{Username: fmt.Sprint("e", i)})
		ids = append(ids, e.ID)
	}
	start, _ := a.Head(ctx)
	const writers, changes = 8, 25
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s := []*Store{a, b}[w%2]
			for i := range changes {
				var err error
				if i%10 == 9 {
					_, err = s.TouchAll(ctx)
				} else {
					_, err = s.Touch(ctx, ids[(w+i)%len(ids)])
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var followers sync.WaitGroup
	read := make([]int, 3)
	for f := range 3 {
		followers.Go(func() {
			s := []*Store{a, b}[f%2]
			last := start.Seq
			for {
				finished := false
				select {
				case <-done:
					finished = true
				default:
				}
				cs, err := s.Changes(ctx, last, 7)
				if err != nil {
					t.Error(err)
					return
				}
				for _, c := range cs {
					if c.Seq <= last {
						t.Errorf("follower %d saw seq %d after %d", f, c.Seq, last)
						return
					}
					if c.Seq != last+1 {
						t.Errorf("follower %d: seq %d follows %d (a change it will never see)", f, c.Seq, last)
						return
					}
					last = c.Seq
					read[f]++
				}
				if finished && len(cs) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	followers.Wait()
	for f, n := range read {
		if n != writers*changes {
			t.Errorf("follower %d read %d changes, want %d", f, n, writers*changes)
		}
	}
}
