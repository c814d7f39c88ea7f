package epoch_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// sliceLog is a change log held in memory, for driving a Follower through
// changes no store makes yet.
type sliceLog struct {
	mu      sync.Mutex
	storeID string
	changes []epoch.Change
}

func (l *sliceLog) add(c epoch.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.Seq = int64(len(l.changes) + 1)
	c.At = time.Now()
	l.changes = append(l.changes, c)
}

func (l *sliceLog) Changes(_ context.Context, after int64, limit int) ([]epoch.Change, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []epoch.Change
	for _, c := range l.changes {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (l *sliceLog) Head(context.Context) (epoch.Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return epoch.Head{Seq: int64(len(l.changes)), StoreID: l.storeID, Oldest: 1}, nil
}

func TestFollowerKeysChanged(t *testing.T) {
	ctx := context.Background()
	log := &sliceLog{storeID: "a"}
	log.add(epoch.Change{EditorID: "alice", Version: 1})
	var reloads atomic.Int32
	f := epoch.NewFollower(log, epoch.WithWindow(time.Minute), epoch.WithKeysChanged(func(context.Context) error { reloads.Add(1); return nil }))
	if err := f.Poll(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// The first catch-up reloads: keys loaded before the follower started
	// may have changed by changes now behind the head.
	if got := reloads.Swap(0); got != 1 {
		t.Fatalf("first poll: reloads = %d, want 1", got)
	}
	steps := []struct {
		name    string
		change  *epoch.Change
		storeID string
		reloads int32
		fresh   bool // whether alice's state at seq 1 is still fresh
	}{
		{"an editor change reloads nothing", &epoch.Change{EditorID: "bob", Version: 1}, "a", 0, true},
		{"a key change reloads keys and leaves editor states fresh", &epoch.Change{Keys: true}, "a", 1, true},
		{"a touch-all reloads nothing", &epoch.Change{}, "a", 1, false},
		{"a new store id reloads keys", nil, "b", 2, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.change != nil {
				log.add(*s.change)
			}
			log.mu.Lock()
			log.storeID = s.storeID
			log.mu.Unlock()
			f.Poll(ctx, nil)
			if got := reloads.Load(); got != s.reloads {
				t.Errorf("reloads = %d, want %d", got, s.reloads)
			}
			if got := f.Fresh("alice", 1); got != s.fresh {
				t.Errorf("Fresh(alice, 1) = %v, want %v", got, s.fresh)
			}
		})
	}
}

// failingLog is a sliceLog whose reads fail while down is set.
type failingLog struct {
	sliceLog
	down atomic.Bool
}

func (l *failingLog) Head(ctx context.Context) (epoch.Head, error) {
	if l.down.Load() {
		return epoch.Head{}, errors.New("store down")
	}
	return l.sliceLog.Head(ctx)
}

// TestFollowerRetriesSoon: a follower whose poll failed retries soon
// (backing off up to its interval), so that it is current again shortly
// after the store comes back, not a whole poll interval later.
func TestFollowerRetriesSoon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &failingLog{sliceLog: sliceLog{storeID: "a"}}
		log.add(epoch.Change{EditorID: "alice", Version: 1})
		log.down.Store(true)
		f := epoch.NewFollower(log, epoch.WithPollInterval(time.Hour))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go f.Run(ctx, nil)
		time.Sleep(10 * time.Second) // the store is down: polls fail
		if f.Current() {
			t.Fatal("current while the store is down")
		}
		log.down.Store(false)
		time.Sleep(20 * time.Second) // the backoff is at most 10 s by now
		if !f.Current() {
			t.Fatal("not current 20 s after the store came back (poll interval 1 h)")
		}
		cancel()
		synctest.Wait()
	})
}
