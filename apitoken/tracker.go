package apitoken

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// UseStore records last uses in batches; both authoritative stores
// implement it.
type UseStore interface {
	RecordUses(ctx context.Context, uses []epoch.Use) error
}

// Tracker records when and from where tokens were last used without
// slowing verification: Seen only notes a use in memory, at most once per
// token per interval, and Run writes the notes in one batch every interval.
// A crash loses at most one interval of last-use data.
type Tracker struct {
	store    UseStore
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	// coarse is the time (UnixNano) as of Run's last tick, so that Seen
	// need not read the clock; zero until Run starts.
	coarse atomic.Int64
	// noted maps a token id to when its use was last noted (int64
	// UnixNano). A sync.Map: read without a lock on every verification,
	// written once per token per interval.
	noted sync.Map

	mu      sync.Mutex
	pending []epoch.Use
}

// NewTracker returns a Tracker writing to store every interval (default a
// minute).
func NewTracker(store UseStore, interval time.Duration, log *slog.Logger) *Tracker {
	if interval <= 0 {
		interval = time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{store: store, interval: interval, now: time.Now, log: log}
}

// Seen notes a use of tokenID from the client address from. A token already
// noted within the interval costs one lock-free map read.
func (t *Tracker) Seen(tokenID, from string) {
	if tokenID == "" {
		return
	}
	now := t.coarse.Load()
	if now == 0 {
		now = t.now().UnixNano()
	}
	if last, ok := t.noted.Load(tokenID); ok && now-last.(int64) < int64(t.interval) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.noted.Load(tokenID); ok && now-last.(int64) < int64(t.interval) {
		return
	}
	t.noted.Store(tokenID, now)
	t.pending = append(t.pending, epoch.Use{TokenID: tokenID, At: time.Unix(0, now).UTC(), From: from})
}

// Flush writes the uses noted so far.
func (t *Tracker) Flush(ctx context.Context) error {
	t.mu.Lock()
	batch := t.pending
	t.pending = nil
	t.mu.Unlock()
	// Forget notes older than an interval, so the map stays bounded by the
	// tokens used within one interval.
	cutoff := t.now().Add(-t.interval).UnixNano()
	t.noted.Range(func(id, at any) bool {
		if at.(int64) < cutoff {
			t.noted.CompareAndDelete(id, at)
		}
		return true
	})
	return t.store.RecordUses(ctx, batch)
}

// Run flushes every interval until ctx ends, then once more.
func (t *Tracker) Run(ctx context.Context) {
	flush := time.NewTicker(t.interval)
	defer flush.Stop()
	clock := time.NewTicker(min(t.interval/10, 100*time.Millisecond))
	defer clock.Stop()
	t.coarse.Store(t.now().UnixNano())
	for {
		select {
		case <-ctx.Done():
			if err := t.Flush(context.Background()); err != nil {
				t.log.Warn("recording last token uses failed", "err", err)
			}
			return
		case now := <-clock.C:
			t.coarse.Store(now.UnixNano())
		case <-flush.C:
			if err := t.Flush(ctx); err != nil {
				t.log.Warn("recording last token uses failed", "err", err)
			}
		}
	}
}
