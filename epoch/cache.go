package epoch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amaretti-auth/amaretti/internal/percpu"
)

// Cache is a bounded in-process cache of editor states in front of a Source.
// Entries expire after a TTL, which bounds how stale an answer can be when no
// invalidation arrives. When full, an arbitrary entry is evicted (Go's map
// order), which costs nothing on the hit path.
//
// A fill that raced with Invalidate is not stored, so an answer read before
// an invalidation never outlives it. Errors are never cached: when the
// Source fails and the entry has expired, State fails too.
//
// Misses are single-flight: concurrent lookups of one editor that is not
// cached share one Source read, so an entry lapsing under load sends one
// query to the store, not one per request (which, on PostgreSQL, would
// queue for pool connections against the read timeout). A lookup that
// begins after Invalidate never joins a read that began before it. The
// first lookup makes the read, not cancelled with it (the others may still
// want its answer); the lookups that joined it stop waiting when their own
// context ends.
type Cache struct {
	src  Source
	ttl  time.Duration
	size int
	now  func() time.Time

	bypass atomic.Bool // see SetBypass
	// hits and misses are counted per processor (percpu.Counter): the
	// hit path makes no write to memory another core reads.
	hits, misses percpu.Counter

	// entries maps an editor id to its *cacheEntry. Reads take no lock and
	// write nothing (sync.Map's Load), so cores verifying in parallel do
	// not fight over a lock's cache line; every change is made under mu.
	entries sync.Map
	// gen is bumped by every invalidation (under mu); read without it.
	gen atomic.Uint64

	mu       sync.Mutex
	count    int                // entries held, under mu
	inflight map[string]*flight // the Source reads under way, by editor
}

// flight is one Source read that concurrent misses of an editor share.
type flight struct {
	done  chan struct{} // closed when state and err are set
	state State
	err   error
	// store is false for a read made while the cache is bypassed: its
	// answer is shared, never kept.
	store bool
}

type cacheEntry struct {
	state   State
	expires time.Time
}

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// WithCacheClock sets the cache's clock (default time.Now).
func WithCacheClock(now func() time.Time) CacheOption { return func(c *Cache) { c.now = now } }

// DefaultCacheTTL and DefaultCacheSize are NewCache's defaults.
const (
	DefaultCacheTTL  = 2 * time.Second
	DefaultCacheSize = 100_000
)

// NewCache returns a cache of at most size states (DefaultCacheSize when
// size ≤ 0) that live for ttl (DefaultCacheTTL when ttl ≤ 0).
func NewCache(src Source, size int, ttl time.Duration, opts ...CacheOption) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	c := &Cache{src: src, ttl: ttl, size: size, now: time.Now, inflight: make(map[string]*flight)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// State implements Source.
func (c *Cache) State(ctx context.Context, editorID string) (State, error) {
	bypass := c.bypass.Load()
	now := c.now()
	// gen before the entry: a lookup that read an entry stored after an
	// invalidation only ever treats itself as older than it is.
	gen := c.gen.Load()
	if !bypass {
		if e, ok := c.entries.Load(editorID); ok && now.Before(e.(*cacheEntry).expires) {
			c.hits.Add(1)
			return e.(*cacheEntry).state, nil
		}
		c.misses.Add(1)
	}
	// Bypassed or not, concurrent reads of one editor share one Source
	// read: a bypassed cache (an invalidation feed down) sends every
	// lookup to the store, and must not multiply them. Invalidate and
	// SetBypass drop the reads in flight, so a lookup never joins a read
	// that began before a change the cache has heard of.
	c.mu.Lock()
	if f, ok := c.inflight[editorID]; ok && c.gen.Load() == gen {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.state, f.err
		case <-ctx.Done():
			return State{}, ctx.Err()
		}
	}
	if e, ok := c.entries.Load(editorID); ok && !bypass && now.Before(e.(*cacheEntry).expires) {
		// Stored by a read that ended between the lookup above and the
		// lock: under mu, an entry is current (Invalidate deletes under
		// it), so no second read.
		c.mu.Unlock()
		return e.(*cacheEntry).state, nil
	}
	if err := ctx.Err(); err != nil {
		c.mu.Unlock()
		return State{}, err
	}
	f := &flight{done: make(chan struct{}), store: !bypass}
	c.inflight[editorID] = f
	gen = c.gen.Load()
	c.mu.Unlock()
	// The lookup that missed first reads, in the caller's goroutine
	// (handing the read to a new goroutine cost as much as the SQLite
	// read itself: BenchmarkCacheMiss). The read is shared, so it is not cancelled
	// with this caller: its cancellation must not fail the lookups that
	// joined it, nor a slow store's read never finish. Stores bound their
	// reads (PostgreSQL's read timeout, Redis's); this caller waits that
	// long at most, the others stop waiting when their ctx ends.
	c.fill(context.WithoutCancel(ctx), editorID, f, gen, now)
	return f.state, f.err
}

// fill reads editorID's state for flight f, begun at generation gen, and
// stores it unless an invalidation came in between. Whatever the read
// does — return, panic, runtime.Goexit — the flight is answered and
// removed, so that no lookup waits on it for ever.
func (c *Cache) fill(ctx context.Context, editorID string, f *flight, gen uint64, now time.Time) {
	// Unless the read returns, lookups get ErrSourcePanicked: a panic is
	// recovered here (so the lookups sharing the read are answered, and a
	// verifier denies), and a Goexit leaves err as it is.
	s, err := State{}, error(ErrSourcePanicked)
	defer func() {
		if r := recover(); r != nil {
			s, err = State{}, fmt.Errorf("%w: %v", ErrSourcePanicked, r)
		}
		c.mu.Lock()
		if c.inflight[editorID] == f {
			delete(c.inflight, editorID)
		}
		if err == nil && f.store && c.gen.Load() == gen && !c.bypass.Load() {
			old, ok := c.entries.Load(editorID)
			if !ok || old.(*cacheEntry).state.Version <= s.Version {
				if !ok && c.count >= c.size {
					c.entries.Range(func(k, _ any) bool {
						c.entries.Delete(k)
						c.count--
						return false
					})
				}
				if !ok {
					c.count++
				}
				// A copy of the key: the caller's string may be a
				// substring of something far larger (a token's text),
				// which an entry kept for as long as it lives would keep
				// alive too.
				c.entries.Store(strings.Clone(editorID), &cacheEntry{state: s, expires: now.Add(c.ttl)})
			}
		}
		c.mu.Unlock()
		f.state, f.err = s, err
		close(f.done)
	}()
	s, err = c.src.State(ctx, editorID)
}

// ErrSourcePanicked is what lookups get when the Source panicked while
// reading for them: the cache recovers it as a failure (which a verifier
// denies), so that the lookups sharing the read are answered too rather
// than wait for ever.
var ErrSourcePanicked = errors.New("editor state read panicked")

// Invalidate drops the cached state of the given editors, or of every
// editor when called with none. Fills that began before it are discarded.
func (c *Cache) Invalidate(editorIDs ...string) {
	c.mu.Lock()
	c.gen.Add(1)
	if len(editorIDs) == 0 {
		c.entries.Clear()
		c.count = 0
		clear(c.inflight)
	}
	for _, id := range editorIDs {
		if _, ok := c.entries.LoadAndDelete(id); ok {
			c.count--
		}
		delete(c.inflight, id)
	}
	c.mu.Unlock()
}

// SetBypass turns the cache off (every State reads the Source; nothing is
// stored) or back on. A verifier whose invalidation feed is down bypasses its
// cache until the feed is back, since it would not hear of revocations.
// Turning the cache off or on drops every entry.
func (c *Cache) SetBypass(on bool) {
	c.bypass.Store(on)
	c.Invalidate()
}

// Bypassed reports whether the cache is turned off by SetBypass.
func (c *Cache) Bypassed() bool { return c.bypass.Load() }

// Stats returns how many lookups the cache answered (hits) and passed to
// its Source (misses, bypassed lookups not counted).
func (c *Cache) Stats() (hits, misses int64) { return c.hits.Load(), c.misses.Load() }

// Len returns the number of cached states.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}
