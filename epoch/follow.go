package epoch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// A Change is one row of a store's change log: every change to what State
// returns (touch, touch all, lock, unlock, (de)activation, a single token's
// revocation, a new editor) appends one, in the same transaction as the
// change.
type Change struct {
	// Seq numbers changes; it only grows, and is never reused.
	Seq int64
	// EditorID is the changed editor, or "" for every editor (touch all)
	// or for none (a change of root keys).
	EditorID string
	// Version is the editor's version after the change (0 for every
	// editor).
	Version int64
	// At is when the change was made, by the store's clock.
	At time.Time
	// Keys marks a change of the shared root keys (a rotation, a
	// retirement, an import) rather than of editors: followers reload
	// their keys (WithKeysChanged).
	Keys bool
}

// Head describes a change log as a whole.
type Head struct {
	// Seq is the newest change's Seq (0 when there is none yet).
	Seq int64
	// StoreID names the store; it changes when the store is replaced by
	// another one (a new database), so followers drop what they cache.
	StoreID string
	// Oldest is the smallest Seq the log still holds (it prunes old rows);
	// Seq+1 when it holds none. A follower that last saw a change before
	// Oldest-1 has missed some (a gap).
	Oldest int64
}

// ChangeLog is the consumer side of a store's change log, what a Follower
// reads.
//
// Changes returns up to limit changes with Seq > afterSeq, oldest first.
// A store must never later reveal a change with a Seq at or below one it
// has already returned (SQLite serialises writers, so commit order is Seq
// order; a store where it is not must hold back changes until the ones
// before them have committed).
type ChangeLog interface {
	Changes(ctx context.Context, afterSeq int64, limit int) ([]Change, error)
	Head(ctx context.Context) (Head, error)
}

// DefaultPollInterval is a Follower's default poll interval: the bound on
// how late a change reaches a verifier whose wake-ups (Redis pub/sub) are
// lost.
const DefaultPollInterval = time.Second

// changesPage is how many changes a Follower reads per query.
const changesPage = 1000

// Follower follows a store's change log, so that no cache in front of the
// store outlives a change by more than the poll interval, however the change
// was made and whatever happened to the wake-ups.
//
// It polls the log every interval and whenever Wake is called (on a Redis
// pub/sub message, say). For each change it invalidates the editor (every
// editor, for touch all) in the in-process Cache given to Run. It also
// remembers, for a window W, the Seq of each editor's last change, so that a
// shared cache (Redis) can ask Fresh whether a state read at some Seq may
// still be served: see Fresh.
//
// While the follower is not current (the store cannot be read, the first
// catch-up is not done, or its last successful poll is older than
// 2 × interval + the query timeout), Fresh is false and the Cache is
// bypassed; when it is current again the Cache is dropped whole. A
// discontinuity (a gap: changes pruned before they were read; the store id
// changed; the head went backwards, as after a restore) drops every cache,
// and Fresh stays false for W afterwards, so that any shared-cache value
// written before it has expired.
//
// Memory: the window holds one entry per change of the last W (plus the
// changes of the last W before start, by the store's clock): the change
// rate × W, e.g. 35 s × 100 changes/s = 3,500 entries of ~100 bytes.
type Follower struct {
	log      ChangeLog
	interval time.Duration
	timeout  time.Duration
	window   time.Duration
	now      func() time.Time
	logger   *slog.Logger
	wake     chan struct{}
	// keysChanged is WithKeysChanged's function, or nil.
	keysChanged func(ctx context.Context) error
	// keysWant counts the reloads asked for (a key change read, a first
	// catch-up, a discontinuity), keysDone the last of them a reload that
	// succeeded covered: while they differ, every Poll tries again.
	keysWant, keysDone uint64

	mu            sync.RWMutex
	started       bool // a first catch-up was done since the last reset
	storeID       string
	head          int64
	lastAll       int64 // Seq of the newest touch-all within the window
	last          map[string]int64
	queue         []seen // the window's changes, oldest first
	polled        time.Time
	current       bool
	distrustUntil time.Time
	polls, errs   int64
}

// seen is a change in the window, with when this follower learnt of it.
type seen struct {
	seq    int64
	editor string
	at     time.Time // local clock
}

// FollowerOption configures a Follower.
type FollowerOption func(*Follower)

// WithPollInterval sets how often the log is polled (default
// DefaultPollInterval).
func WithPollInterval(d time.Duration) FollowerOption {
	return func(f *Follower) {
		if d > 0 {
			f.interval = d
		}
	}
}

// WithWindow sets W, how long the follower remembers changes for Fresh.
// It must exceed the longest a shared cache keeps a value (a Redis TTL) plus
// the time a fill may take and the clock skew between hosts; the daemon
// uses its Redis TTL + 5 s. Zero (the default) remembers nothing: Fresh then
// accepts only values read after the newest change the follower knows of
// (to any editor), which is safe but makes a shared cache nearly useless.
func WithWindow(d time.Duration) FollowerOption { return func(f *Follower) { f.window = d } }

// WithFollowerClock sets the follower's clock (default time.Now).
func WithFollowerClock(now func() time.Time) FollowerOption {
	return func(f *Follower) { f.now = now }
}

// WithKeysChanged sets what a follower calls, outside its locks, after a
// poll that found a change of root keys (Change.Keys) or a discontinuity,
// and after each first catch-up (at start, and after a discontinuity),
// so that a key store shared through the database (epoch/postgres) is
// reloaded within the poll interval. The function should not block for
// long; it logs what it meets. When it fails, every later Poll calls it
// again until it succeeds: the change that asked for it is behind the
// follower's head, so no later read of the log would ask again, and a key
// retired on another host would go on verifying here.
func WithKeysChanged(reload func(ctx context.Context) error) FollowerOption {
	return func(f *Follower) { f.keysChanged = reload }
}

// WithFollowerLogger logs polls that fail and discontinuities (default:
// none).
func WithFollowerLogger(l *slog.Logger) FollowerOption { return func(f *Follower) { f.logger = l } }

// NewFollower returns a follower of log; it does nothing until Run.
func NewFollower(log ChangeLog, opts ...FollowerOption) *Follower {
	f := &Follower{log: log, interval: DefaultPollInterval, now: time.Now,
		logger: slog.New(slog.DiscardHandler), wake: make(chan struct{}, 1), last: map[string]int64{}}
	for _, o := range opts {
		o(f)
	}
	f.timeout = max(f.interval, 500*time.Millisecond)
	return f
}

// Wake asks for a poll now. It never blocks.
func (f *Follower) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run follows the log until ctx ends, invalidating cache (which may be nil)
// on every change. The cache is bypassed from the moment Run starts until
// the first catch-up is done; to close the gap before Run is scheduled,
// call cache.SetBypass(true) before starting Run in a goroutine.
func (f *Follower) Run(ctx context.Context, cache *Cache) {
	if cache != nil {
		cache.SetBypass(true)
	}
	t := time.NewTimer(f.interval)
	defer t.Stop()
	retry := time.Duration(0)
	for {
		next := f.interval
		if err := f.Poll(ctx, cache); err != nil {
			// A failed poll is retried soon, backing off up to the
			// interval: with a long interval, a store that comes back
			// would otherwise wait a whole interval for its verifiers.
			retry = min(max(2*retry, retryMin), f.interval)
			next = retry
		} else {
			retry = 0
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.wake:
		}
	}
}

// retryMin is the first wait before a failed poll is retried (then twice
// as long each time, up to the poll interval).
const retryMin = 50 * time.Millisecond

// Poll reads the log once, applies what it finds to cache (which may be
// nil), and reports the error that left the follower not current, if any.
// Run calls it; tests may too.
func (f *Follower) Poll(ctx context.Context, cache *Cache) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	f.mu.RLock()
	was := f.current
	f.mu.RUnlock()
	err := f.poll(ctx, cache)
	f.reloadKeys(ctx)
	f.mu.Lock()
	f.polls++
	if err != nil {
		f.errs++
		f.current = false
	} else {
		f.current, f.polled = true, f.now()
	}
	now := f.current
	f.mu.Unlock()
	if cache != nil && was != now {
		// Turning the bypass on or off drops every entry: whatever was
		// cached while not current may have missed changes.
		cache.SetBypass(!now)
	}
	if err != nil && was {
		f.logger.Warn("change log unreadable; in-process cache bypassed and shared cache untrusted until it is read again", "err", err)
	}
	if err == nil && !was {
		f.logger.Info("change log followed; caches in use")
	}
	return err
}

// ErrDiscontinuity is what Poll returns when the log is not the
// continuation of what was followed: a gap, another store id, a head that
// went backwards. Every cache was dropped; the next poll starts over.
var ErrDiscontinuity = errors.New("change log discontinuity")

func (f *Follower) poll(ctx context.Context, cache *Cache) error {
	h, err := f.log.Head(ctx)
	if err != nil {
		return fmt.Errorf("change log head: %w", err)
	}
	f.mu.RLock()
	started, storeID, head := f.started, f.storeID, f.head
	f.mu.RUnlock()
	if started {
		var why string
		switch {
		case h.StoreID != storeID:
			why = "the store id changed"
		case h.Seq < head:
			why = "the head went backwards"
		case h.Oldest > head+1:
			why = "changes were pruned before they were read (a gap)"
		}
		if why != "" {
			f.reset()
			f.wantKeys()
			if cache != nil {
				cache.Invalidate()
			}
			f.logger.Warn("change log discontinuity: every cache dropped; the shared cache is untrusted for the window", "why", why, "window", f.window.String())
			return fmt.Errorf("%w: %s", ErrDiscontinuity, why)
		}
	}
	if !started {
		if err := f.catchUpFirst(ctx, h); err != nil {
			return err
		}
		// Keys loaded before this first catch-up may have changed
		// since, by changes now behind the head: reload them.
		f.wantKeys()
		return nil
	}
	after := head
	for {
		cs, err := f.log.Changes(ctx, after, changesPage)
		if err != nil {
			return fmt.Errorf("change log: %w", err)
		}
		if len(cs) == 0 {
			break
		}
		now := f.now()
		var ids []string
		all, keys := false, false
		f.mu.Lock()
		for _, c := range cs {
			f.record(c, now)
			switch {
			case c.Keys:
				keys = true
			case c.EditorID == "":
				all = true
			default:
				ids = append(ids, c.EditorID)
			}
		}
		f.head = max(f.head, cs[len(cs)-1].Seq)
		f.mu.Unlock()
		// Invalidate after recording, so that a fill racing with this poll
		// is either refused by Fresh or dropped here.
		if cache != nil {
			if all {
				cache.Invalidate()
			} else {
				cache.Invalidate(ids...)
			}
		}
		if keys {
			f.wantKeys()
		}
		after = cs[len(cs)-1].Seq
		if len(cs) < changesPage {
			break
		}
	}
	f.mu.Lock()
	f.head = max(f.head, h.Seq)
	f.prune(f.now())
	f.mu.Unlock()
	return nil
}

// wantKeys asks for a reload of the keys (WithKeysChanged) at the end of
// the poll.
func (f *Follower) wantKeys() {
	f.mu.Lock()
	f.keysWant++
	f.mu.Unlock()
}

// reloadKeys calls the WithKeysChanged function, if any, when a reload was
// asked for and none has succeeded since; on failure the next Poll tries
// again.
func (f *Follower) reloadKeys(ctx context.Context) {
	f.mu.RLock()
	want, done := f.keysWant, f.keysDone
	f.mu.RUnlock()
	if f.keysChanged == nil || want == done {
		return
	}
	if err := f.keysChanged(ctx); err != nil {
		return
	}
	f.mu.Lock()
	f.keysDone = max(f.keysDone, want)
	f.mu.Unlock()
}

// catchUpFirst loads the changes of the last W (by the store's clock) into
// the window and starts following from the head.
func (f *Follower) catchUpFirst(ctx context.Context, h Head) error {
	var window []Change
	after := h.Oldest - 1
	newest := time.Time{}
	for {
		cs, err := f.log.Changes(ctx, after, changesPage)
		if err != nil {
			return fmt.Errorf("change log: %w", err)
		}
		for _, c := range cs {
			if c.At.After(newest) {
				newest = c.At
			}
		}
		window = append(window, cs...)
		// Keep only what may fall in the window, so memory stays bounded
		// by the change rate × W while reading a long log.
		if cut := f.cutoff(newest); len(window) > changesPage {
			window = keepAfter(window, cut)
		}
		if len(cs) < changesPage {
			break
		}
		after = cs[len(cs)-1].Seq
	}
	window = keepAfter(window, f.cutoff(newest))
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storeID, f.head, f.started = h.StoreID, h.Seq, true
	if f.window <= 0 {
		f.lastAll = h.Seq // nothing before the start is vouched for
	}
	for _, c := range window {
		f.record(c, now)
		f.head = max(f.head, c.Seq)
	}
	return nil
}

// cutoff is the oldest change time (store clock) that may matter: W before
// the earlier of this host's now and the newest change, so that a store
// clock behind this host's never hides a recent change.
func (f *Follower) cutoff(newest time.Time) time.Time {
	ref := f.now()
	if !newest.IsZero() && newest.Before(ref) {
		ref = newest
	}
	return ref.Add(-f.window)
}

func keepAfter(cs []Change, cut time.Time) []Change {
	out := cs[:0]
	for _, c := range cs {
		if !c.At.Before(cut) {
			out = append(out, c)
		}
	}
	return out
}

// record notes a change in the window. f.mu is held.
func (f *Follower) record(c Change, now time.Time) {
	if c.Keys {
		return // no editor's state changed
	}
	if f.window <= 0 {
		// Nothing is remembered, so nothing older than the head is fresh.
		f.lastAll = max(f.lastAll, c.Seq)
		return
	}
	if c.EditorID == "" {
		f.lastAll = max(f.lastAll, c.Seq)
	} else {
		f.last[c.EditorID] = max(f.last[c.EditorID], c.Seq)
	}
	f.queue = append(f.queue, seen{seq: c.Seq, editor: c.EditorID, at: now})
}

// prune forgets the window's changes older than W (by this host's clock,
// from when it learnt of them). f.mu is held.
func (f *Follower) prune(now time.Time) {
	cut := now.Add(-f.window)
	n := 0
	for n < len(f.queue) && f.queue[n].at.Before(cut) {
		s := f.queue[n]
		if s.editor != "" && f.last[s.editor] == s.seq {
			delete(f.last, s.editor)
		}
		n++
	}
	if n > 0 {
		f.queue = append(f.queue[:0:0], f.queue[n:]...)
	}
}

// reset forgets everything after a discontinuity: the next poll starts
// over, and Fresh is false for W.
func (f *Follower) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started, f.current = false, false
	f.storeID, f.head, f.lastAll = "", 0, 0
	f.last, f.queue = map[string]int64{}, nil
	f.distrustUntil = f.now().Add(f.window)
}

// Current reports whether the follower is current: its last poll succeeded
// within 2 × interval + the query timeout.
func (f *Follower) Current() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.currentLocked(f.now())
}

func (f *Follower) currentLocked(now time.Time) bool {
	return f.current && now.Sub(f.polled) < 2*f.interval+f.timeout
}

// Fresh reports whether a shared cache may serve the editor's state read at
// change-log head seq (State.Seq): the follower is current, seq is at or
// after every change to the editor (and to every editor) it knows of, and
// not beyond its head (a value from the future is from another log, or
// newer than what the follower can vouch for). Within W, every change is
// known; a value older than W has expired (the Redis TTL is shorter than W).
func (f *Follower) Fresh(editorID string, seq int64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	now := f.now()
	if !f.currentLocked(now) || now.Before(f.distrustUntil) || seq <= 0 {
		return false
	}
	return seq >= f.lastAll && seq >= f.last[editorID] && seq <= f.head
}

// FollowerStats are a Follower's counters and position.
type FollowerStats struct {
	// Head is the newest change seen.
	Head int64
	// Window is how many changes the window holds.
	Window int
	// Polls and Errors count polls and failed ones.
	Polls, Errors int64
	// Current is Current().
	Current bool
}

// Stats returns the follower's counters.
func (f *Follower) Stats() FollowerStats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return FollowerStats{Head: f.head, Window: len(f.queue), Polls: f.polls, Errors: f.errs, Current: f.currentLocked(f.now())}
}
