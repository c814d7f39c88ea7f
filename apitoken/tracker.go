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

	rotations epoch.Rotations // see WithRetirement
	announce  func(context.Context, []epoch.Editor)
}

// A TrackerOption configures a Tracker.
type TrackerOption func(*Tracker)

// WithRetirement makes each flush, after writing its batch of uses, revoke
// the rotated tokens now due (store.RetireRotated: their successor was
// used or revoked, or their grace ended) and hand the changed editors to
// announce (nil: verifiers learn from the change log). A rotation thus
// ends at most one interval after the new token's first use.
func WithRetirement(store epoch.Rotations, announce func(context.Context, []epoch.Editor)) TrackerOption {
	return func(t *Tracker) { t.rotations, t.announce = store, announce }
}

// NewTracker returns a Tracker writing to store every interval (default a
// minute).
func NewTracker(store UseStore, interval time.Duration, log *slog.Logger, opts ...TrackerOption) *Tracker {
	if interval <= 0 {
		interval = time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{store: store, interval: interval, now: time.Now, log: log}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Due reports whether a use of tokenID now would be noted: false for a
// token noted within the interval, or for no token ID. A caller whose
// client address costs something to work out asks first, and calls Seen
// or SeenToken only when it is due (which checks again).
func (t *Tracker) Due(tokenID string) bool {
	_, due := t.due(tokenID)
	return due
}

// due is Due, with the time it judged by (UnixNano).
func (t *Tracker) due(tokenID string) (int64, bool) {
	if tokenID == "" {
		return 0, false
	}
	now := t.coarse.Load()
	if now == 0 {
		now = t.now().UnixNano()
	}
	if last, ok := t.noted.Load(tokenID); ok && now-last.(int64) < int64(t.interval) {
		return now, false
	}
	return now, true
}

// Seen notes a use of tokenID from the client address from. A token already
// noted within the interval costs one lock-free map read.
func (t *Tracker) Seen(tokenID, from string) { t.SeenToken(tokenID, from, "") }

// SeenToken is Seen for a caller that has the token as presented: when the
// use is noted (at most once per token per interval), the caveats the
// holder added to the minted token are summarised (Attenuation) and
// recorded with it. The token itself is not kept.
func (t *Tracker) SeenToken(tokenID, from, token string) {
	now, due := t.due(tokenID)
	if !due {
		return
	}
	// Once per token per interval: the token is parsed again, outside
	// the lock and after verification.
	var summary, fingerprint string
	if token != "" {
		summary, fingerprint = Attenuation(token)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.noted.Load(tokenID); ok && now-last.(int64) < int64(t.interval) {
		return
	}
	t.noted.Store(tokenID, now)
	t.pending = append(t.pending, epoch.Use{TokenID: tokenID, At: time.Unix(0, now).UTC(), From: from, Attenuation: summary, AttenuationID: fingerprint})
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
	if err := t.store.RecordUses(ctx, batch); err != nil {
		return err
	}
	if t.rotations == nil {
		return nil
	}
	eds, retired, err := t.rotations.RetireRotated(ctx)
	if err != nil {
		return err
	}
	for _, r := range retired {
		t.log.Info("rotated api token revoked", "token_id", r.TokenID, "editor_id", r.EditorID, "successor", r.RotatedTo)
	}
	if len(eds) > 0 && t.announce != nil {
		t.announce(ctx, eds)
	}
	return nil
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
