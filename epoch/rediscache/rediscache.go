// Package rediscache is the shared Redis layer of amaretti's revocation
// state: editor states cached in Redis in front of the authoritative store
// (SQLite or PostgreSQL), and the pub/sub feed that wakes every verifier up
// when something changed.
//
// Read path (a verifier): in-process epoch.Cache → Layer (Redis) → store,
// each layer filling the one above on a miss.
//
// Redis never undoes a revocation. The store decides: every change appends a
// row to its change log (epoch.ChangeLog), which every verifier follows with
// an epoch.Follower (a poll every second, and at once on a pub/sub message).
// A state carries the change-log head it was read at (epoch.State.Seq), and
// so does its Redis value. The Layer serves a Redis value only when the
// follower says it is fresh: the follower is current and knows of no change
// to that editor after the value's seq. Otherwise it reads the store and
// fills Redis. So a Redis restarted from an old RDB or AOF, a FLUSHALL
// followed by a stale fill, a failover to a replica that missed writes, a
// partition or a lost publish can cost cache hits, never a revocation.
//
// Why a window suffices: the follower remembers changes for W = Redis TTL +
// a margin. Redis stores SET … PX expiries as absolute times, in RDB and AOF
// files and on replicas alike, so no value outlives its TTL by a restart or
// failover; a value read before a change older than W was written before it
// too (fills that took over a second are not written), and has expired.
//
// Values are authenticated: each carries an HMAC, keyed from one of the
// verifiers' root keys (WithKeys) and bound to the editor's id, so that
// whoever can write to Redis (a server without a password, a compromised
// replica) cannot forge a state — a role, an epoch, a revoked list — nor
// move one editor's value under another's key. A value that does not
// authenticate is a miss. A Layer without keys neither serves nor writes
// values.
//
// Fills are written only if they carry a greater version than what Redis
// holds (a Lua script, atomic), so a reader that fetched an old state just
// before a touch cannot overwrite the touch's state; versions are compared,
// not epochs, because unlocking moves an epoch back.
//
// Write path (a touch): the store first (the change log row commits with
// it), then Layer.Announce: Redis (write-if-greater), then a message on
// Channel that every Watch applies to its in-process cache at once and
// passes to its follower as a wake-up. A failed Announce costs latency only.
//
// Staleness: with the feed working a revocation is seen everywhere within
// milliseconds; with a message lost, or Redis lying, within the follower's
// poll interval (1 s by default); a verifier whose follower cannot read the
// store bypasses its in-process cache and Redis. When Redis cannot answer,
// the Layer reads the store; when the store cannot answer either, the
// verifier denies.
package rediscache

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/redis/go-redis/v9"
)

// Channel is the pub/sub channel of invalidations. A message is an editor
// id, "*" for every editor, or a verifier's heartbeat (see Watch).
//
// With a Redis Cluster (a NewClient URL with addr parameters and no
// master_name) the channel is a sharded one: SPUBLISH and SSUBSCRIBE
// (Redis 7 or later). Its name hashes to one slot, so every message and
// every subscriber stays on the shard that owns that slot (its master and
// replicas), while the editor states (keys amaretti:editor:<id>) spread over
// every slot. Classic PUBLISH would work too, but a cluster broadcasts each
// classic message to every node over its bus whoever listens, and a
// subscriber is not told when the node it listens on stops mattering; a
// shard channel's subscriber is told (sunsubscribe) when its slot moves, and
// resubscribes where it went. A shard that is down takes the feed with it,
// which the heartbeat reports (the feed is down) and the change-log poll
// covers, as for any lost feed. With a single server or Sentinel, classic
// PUBLISH and SUBSCRIBE (any Redis version).
const Channel = "amaretti:invalidate"

// heartbeatPrefix starts a heartbeat message: "~heartbeat <token>", never
// an editor id.
const heartbeatPrefix = "~heartbeat "

const (
	keyPrefix = "amaretti:editor:"
	everyone  = "*"
	// DefaultTTL is how long Redis keeps a state: the worst-case staleness
	// if Redis loses a write on failover.
	DefaultTTL = 30 * time.Second
)

// setIfGreater stores ARGV[3] under KEYS[1] for ARGV[4] ms unless the value
// there has a greater version (the second field) than ARGV[1], or the same
// version and a seq (the third field) of at least ARGV[2].
var setIfGreater = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local v, q = string.match(cur, '^v%d+ (%d+) (%d+) ')
  v, q = tonumber(v), tonumber(q)
  local nv, nq = tonumber(ARGV[1]), tonumber(ARGV[2])
  if v and q and (v > nv or (v == nv and q >= nq)) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
`)

// Follower is what the Layer asks before serving a Redis value: an
// *epoch.Follower.
type Follower interface {
	// Fresh reports whether a state of the editor read at change-log head
	// seq may be served.
	Fresh(editorID string, seq int64) bool
	// Wake asks for a poll of the change log now.
	Wake()
}

// maxFillAge: a fill whose store read is older than this when it would be
// written is not written (see the package doc).
const maxFillAge = time.Second

// Layer caches editor states in Redis in front of an authoritative Source.
// It implements epoch.Source and is safe for concurrent use.
type Layer struct {
	rdb redis.UniversalClient
	src epoch.Source
	ttl time.Duration
	log *slog.Logger
	fol Follower
	// keys authenticate values (WithKeys); nil: none are served or written.
	keys Keys

	// downUntil (UnixNano) is set after a Redis failure: until then reads
	// go straight to the store instead of waiting on Redis again.
	downUntil atomic.Int64
	// sharded: invalidations use SPUBLISH/SSUBSCRIBE (a Cluster client).
	sharded bool
	// quiet is set while a Watch runs and its feed is down (its own
	// heartbeats do not come back): reads go to the store, Redis unused.
	quiet atomic.Bool

	hits, misses, untrusted, fallbacks, redisErrors, invalidations, heartbeats, quietTimes atomic.Int64
}

// breakFor is how long reads skip Redis after it failed.
const breakFor = time.Second

// An Option configures a Layer.
type Option func(*Layer)

// WithTTL sets how long Redis keeps a state (default DefaultTTL).
func WithTTL(d time.Duration) Option { return func(l *Layer) { l.ttl = d } }

// WithFollower sets the follower that vouches for Redis values. Without
// one, the Layer never serves a Redis value (every read goes to the store),
// which is what the CLI wants: it only announces.
func WithFollower(f Follower) Option { return func(l *Layer) { l.fol = f } }

// Keys are the root keys that authenticate Redis values: a
// *macaroon.KeyStore. Values are written under the current key (RootKey)
// and checked with the key they name (Get), so a key rotation costs no
// hits until the old key is retired.
type Keys interface {
	RootKey(ctx context.Context) (rootKey, id []byte, err error)
	Get(ctx context.Context, id []byte) ([]byte, error)
}

// WithKeys sets the keys that authenticate Redis values (see the package
// doc). Every Layer sharing a Redis must have the same key directory.
// Without keys, the Layer never serves a Redis value and writes none; it
// still announces changes (publishes).
func WithKeys(k Keys) Option { return func(l *Layer) { l.keys = k } }

// WithLogger logs Redis failures and subscription changes (default: none).
func WithLogger(log *slog.Logger) Option { return func(l *Layer) { l.log = log } }

// New returns a Layer over src using rdb.
func New(rdb redis.UniversalClient, src epoch.Source, opts ...Option) *Layer {
	l := &Layer{rdb: rdb, src: src, ttl: DefaultTTL, log: slog.New(slog.DiscardHandler)}
	_, l.sharded = rdb.(*redis.ClusterClient)
	for _, o := range opts {
		o(l)
	}
	return l
}

// NewClient returns a redis.UniversalClient for a redis:// or rediss://
// URL: a single server (redis://127.0.0.1:6379/0), Sentinel with a
// master_name parameter (redis://s1:26379/0?master_name=mymaster&addr=s2:26379),
// or Cluster with addr parameters and no master_name
// (redis://n1:6379?addr=n2:6379&addr=n3:6379).
//
// Redis sits on the verify path, so unless the URL says otherwise
// (dial_timeout, read_timeout, write_timeout, max_retries), timeouts are
// 250 ms and failed commands are not retried: the Layer falls back to the
// store at once instead.
//
// Errors never hold the URL's credentials (see Redact).
func NewClient(url string) (redis.UniversalClient, error) {
	c, err := newClient(url)
	if err != nil {
		return nil, redactErr(url, err)
	}
	return c, nil
}

func newClient(url string) (redis.UniversalClient, error) {
	for param, value := range map[string]string{"dial_timeout": "250ms", "read_timeout": "250ms", "write_timeout": "250ms", "max_retries": "-1"} {
		if !strings.Contains(url, param+"=") {
			sep := "?"
			if strings.Contains(url, "?") {
				sep = "&"
			}
			url += sep + param + "=" + value
		}
	}
	switch {
	case strings.Contains(url, "master_name="):
		o, err := redis.ParseFailoverURL(url)
		if err != nil {
			return nil, err
		}
		return redis.NewFailoverClient(o), nil
	case strings.Contains(url, "addr="):
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(o), nil
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}

func key(editorID string) string { return keyPrefix + editorID }

// valueVersion is the first field of every value this package writes.
const valueVersion = "v4"

// body writes "v4 <version> <seq> <epoch µs> <role> <active 0|1>
// <revoked>", revoked being the comma-separated token ids or "-": the
// authenticated part of a value.
func body(s epoch.State) string {
	active := "0"
	if s.Active {
		active = "1"
	}
	revoked := s.Revoked
	if revoked == "" {
		revoked = "-"
	}
	return fmt.Sprintf("%s %d %d %d %s %s %s", valueVersion, s.Version, s.Seq, s.Epoch.UnixMicro(), s.Role, active, revoked)
}

// valueMAC authenticates one editor's value body under a root key: an
// HMAC-SHA256 keyed by a key derived from the root key for this use only,
// over the editor's id and the body.
func valueMAC(root []byte, editorID, body string) string {
	k := hmac.New(sha256.New, root)
	k.Write([]byte("amaretti rediscache value v4"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(editorID))
	m.Write([]byte{0})
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// encode writes the value of an editor's state: its body, the id of the
// root key that authenticates it, and the MAC.
func encode(editorID string, s epoch.State, keyID string, root []byte) string {
	b := body(s)
	return b + " " + keyID + " " + valueMAC(root, editorID, b)
}

// errBadValue means a Redis value is not one encode writes, or does not
// authenticate.
var errBadValue = errors.New("unexpected cached value")

// decode reads an editor's value, checking its MAC with the key it names.
// Its errors never repeat the value.
func (l *Layer) decode(ctx context.Context, editorID, v string) (epoch.State, error) {
	f := strings.Split(v, " ")
	if len(f) != 9 || f[0] != valueVersion {
		return epoch.State{}, errBadValue
	}
	root, err := l.keys.Get(ctx, []byte(f[7]))
	if err != nil {
		return epoch.State{}, fmt.Errorf("%w: not authenticated by a known key", errBadValue)
	}
	b := strings.Join(f[:7], " ")
	if !hmac.Equal([]byte(valueMAC(root, editorID, b)), []byte(f[8])) {
		return epoch.State{}, fmt.Errorf("%w: it does not authenticate", errBadValue)
	}
	version, err1 := strconv.ParseInt(f[1], 10, 64)
	seq, err2 := strconv.ParseInt(f[2], 10, 64)
	us, err3 := strconv.ParseInt(f[3], 10, 64)
	role := epoch.Role(f[4])
	if err1 != nil || err2 != nil || err3 != nil || version <= 0 || seq <= 0 || !role.Valid() || f[5] != "0" && f[5] != "1" || f[6] == "" {
		return epoch.State{}, errBadValue
	}
	revoked := f[6]
	if revoked == "-" {
		revoked = ""
	}
	if err := epoch.CheckRevoked(revoked); err != nil {
		return epoch.State{}, fmt.Errorf("%w: %w", errBadValue, err)
	}
	return epoch.State{Epoch: time.UnixMicro(us).UTC(), Role: role, Active: f[5] == "1", Version: version, Revoked: revoked, Seq: seq}, nil
}

// State implements epoch.Source: Redis when the follower vouches for its
// value, else the store (filling Redis). When Redis fails it reads the
// store and says so in the log and Stats.
func (l *Layer) State(ctx context.Context, editorID string) (epoch.State, error) {
	if time.Now().UnixNano() < l.downUntil.Load() || l.quiet.Load() {
		// Redis failed a moment ago, or the feed is down (Watch): the
		// store, without waiting on Redis or trusting what it holds.
		l.fallbacks.Add(1)
		return l.src.State(ctx, editorID)
	}
	if l.keys == nil {
		// Nothing to authenticate a value with: Redis cannot be used.
		return l.src.State(ctx, editorID)
	}
	v, err := l.rdb.Get(ctx, key(editorID)).Result()
	switch {
	case err == nil:
		st, derr := l.decode(ctx, editorID, v)
		switch {
		case derr != nil:
			l.log.Warn("ignoring a cached editor state", "editor_id", editorID, "err", derr)
			l.misses.Add(1)
		case l.fol != nil && l.fol.Fresh(editorID, st.Seq):
			l.hits.Add(1)
			return st, nil
		default:
			l.untrusted.Add(1)
		}
	case errors.Is(err, redis.Nil):
		l.misses.Add(1)
	default:
		l.redisErrors.Add(1)
		l.fallbacks.Add(1)
		if l.downUntil.Swap(time.Now().Add(breakFor).UnixNano()) < time.Now().UnixNano() {
			l.log.Warn("redis read failed; reading the store for a while", "editor_id", editorID, "err", err, "retry_in", breakFor.String())
		}
		return l.src.State(ctx, editorID)
	}
	return l.fill(ctx, editorID)
}

// fill reads the store and writes the state to Redis, unless the read took
// so long that the value could outlive the follower's window.
func (l *Layer) fill(ctx context.Context, editorID string) (epoch.State, error) {
	start := time.Now()
	st, err := l.src.State(ctx, editorID)
	if err != nil {
		return st, err
	}
	if time.Since(start) < maxFillAge && st.Seq > 0 {
		l.put(ctx, editorID, st, start)
	}
	return st, nil
}

// put writes st unless Redis holds a state at least as new, or the read
// made at readAt is older than maxFillAge by now. Failures are logged and
// counted, never returned: Redis is a cache.
func (l *Layer) put(ctx context.Context, editorID string, st epoch.State, readAt time.Time) {
	ttl := l.ttl - time.Since(readAt) // the value lives TTL from the read, not from the write
	if time.Since(readAt) >= maxFillAge || ttl <= 0 || l.keys == nil {
		return
	}
	root, id, err := l.keys.RootKey(ctx)
	if err != nil || len(id) == 0 || strings.ContainsAny(string(id), " \r\n") {
		l.log.Warn("no root key to authenticate a cached state with; not written", "editor_id", editorID)
		return
	}
	err = setIfGreater.Run(ctx, l.rdb, []string{key(editorID)}, st.Version, st.Seq, encode(editorID, st, string(id), root), ttl.Milliseconds()).Err()
	if err != nil {
		l.redisErrors.Add(1)
		l.log.Warn("redis write failed", "editor_id", editorID, "err", err)
	}
}

// Announce tells every verifier that editors changed: for up to 16 editors
// their states are read again from the store and written to Redis (if
// newer than what it holds), then one message per editor is published (one
// message "*" for more). Call it after the store has committed the change.
// It is a wake-up: verifiers follow the store's change log whether it
// arrives or not, so an error only means they see the change within their
// poll interval instead of at once.
func (l *Layer) Announce(ctx context.Context, editors ...epoch.Editor) error {
	var errs []error
	if len(editors) > 16 {
		errs = append(errs, l.publish(ctx, everyone))
	} else {
		for _, e := range editors {
			if _, err := l.fill(ctx, e.ID); err != nil && !errors.Is(err, epoch.ErrNotFound) {
				errs = append(errs, fmt.Errorf("reading %s back: %w", e.ID, err))
			}
		}
		for _, e := range editors {
			errs = append(errs, l.publish(ctx, e.ID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		l.redisErrors.Add(1)
		return fmt.Errorf("publishing invalidations: %w", err)
	}
	return nil
}

// publish sends msg on Channel: SPUBLISH on a Cluster, PUBLISH otherwise.
func (l *Layer) publish(ctx context.Context, msg string) error {
	if l.sharded {
		return l.rdb.SPublish(ctx, Channel, msg).Err()
	}
	return l.rdb.Publish(ctx, Channel, msg).Err()
}

// Stats are counters since the Layer was made.
type Stats struct {
	// Hits and Misses count Redis lookups; Untrusted counts values found
	// but not served because the follower could not vouch for them.
	Hits, Misses, Untrusted int64
	// Fallbacks counts reads that went to the store because Redis failed
	// or the feed was down (see Watch).
	Fallbacks int64
	// RedisErrors counts failed Redis operations of any kind.
	RedisErrors int64
	// Invalidations counts messages Watch received and applied
	// (heartbeats not included).
	Invalidations int64
	// Heartbeats counts the Watch's own heartbeats that came back.
	Heartbeats int64
	// Quiet counts the times a subscribed feed was found quiet: its own
	// heartbeats did not come back within the health interval.
	Quiet int64
}

// Stats returns the Layer's counters.
func (l *Layer) Stats() Stats {
	return Stats{l.hits.Load(), l.misses.Load(), l.untrusted.Load(), l.fallbacks.Load(), l.redisErrors.Load(), l.invalidations.Load(), l.heartbeats.Load(), l.quietTimes.Load()}
}

// Ping checks that Redis answers.
func (l *Layer) Ping(ctx context.Context) error { return l.rdb.Ping(ctx).Err() }

// Watch subscribes to Channel until ctx ends. Each message drops that
// editor (every editor, for "*") from cache at once, the fast path, and
// wakes the Layer's follower, which reads the change log and is what makes
// caches correct.
//
// Heartbeats: while subscribed, Watch publishes a heartbeat to itself on
// Channel every health/4 — a random token it remembers — and counts the
// feed as up only while its own heartbeats come back: a feed whose last
// heartbeat is older than health is quiet, even if its connection looks
// healthy (pings answered, no error), as when the server holds publishes
// (CLIENT PAUSE WRITE) or the subscriber listens on a server the
// publishers no longer use. A quiet feed is subscribed again.
//
// While the feed is down (not subscribed, or quiet) the verifier trusts
// neither its in-process cache nor Redis: cache is bypassed
// (cache.SetBypass(true), re-asserted every health/4 should the follower
// turn it back on meanwhile) and the Layer reads the store without asking
// Redis. So a change made while the feed is silent reaches this verifier
// within health, even when the follower's poll is slower. When a heartbeat
// comes back the cache is used again (if the follower, when it has a
// Current method, is current) and the follower is woken, since messages
// may have been missed.
//
// A heartbeat only proves that the channel delivers: it turns the extra
// distrust off, never makes a value trusted that the follower's Fresh
// refuses, so a forged or replayed heartbeat can at most hide a silence
// for as long as the follower's poll bounds staleness anyway. Each token
// is accepted once, and only while recent (health).
//
// onChange, when not nil, is told each time the feed comes up (a heartbeat
// back) or goes down. A Layer without a running Watch trusts Redis values
// as its follower allows (the CLI's case).
func (l *Layer) Watch(ctx context.Context, cache *epoch.Cache, health time.Duration, onChange func(up bool)) {
	if health <= 0 {
		health = time.Second
	}
	beat := max(health/4, 5*time.Millisecond)
	var up atomic.Bool
	l.quiet.Store(true)
	cache.SetBypass(true)
	defer l.quiet.Store(false)
	set := func(now bool, err error) {
		if now == up.Load() {
			return
		}
		if now && !l.catchUp(ctx, cache) {
			// Not trusted again yet: a message lost in the silence may be
			// a revocation Redis and the cache do not know of. The next
			// heartbeat tries again.
			return
		}
		up.Store(now)
		l.quiet.Store(!now)
		if now {
			l.trustCache(cache)
			l.log.Info("invalidation feed up: own heartbeats come back", "channel", Channel)
		} else {
			cache.SetBypass(true)
			l.log.Warn("invalidation feed down; reading the store, in-process cache and Redis values unused, until it is back", "err", err)
		}
		if onChange != nil {
			onChange(now)
		}
	}
	// While down, keep the cache bypassed: the follower turns it back on
	// when it becomes current, not knowing about the feed.
	guardDone := make(chan struct{})
	go func() {
		defer close(guardDone)
		t := time.NewTicker(beat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !up.Load() && !cache.Bypassed() {
					cache.SetBypass(true)
				}
			}
		}
	}()
	defer func() { <-guardDone }()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := l.watchOnce(ctx, cache, health, beat, func() { set(true, nil); backoff = 50 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errQuiet) {
			l.quietTimes.Add(1)
		} else {
			l.redisErrors.Add(1)
		}
		set(false, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// catchUp reads the change log before the feed is trusted again after a
// silence: announcements lost meanwhile may be revocations, and Redis may
// still hold the states from before them. With an *epoch.Follower it polls
// synchronously — a poll that starts after the heartbeats came back, so it
// sees every change committed during the silence — and reports whether that
// poll succeeded; with another follower it wakes it (best effort).
func (l *Layer) catchUp(ctx context.Context, cache *epoch.Cache) bool {
	if p, ok := l.fol.(interface {
		Poll(ctx context.Context, cache *epoch.Cache) error
	}); ok {
		return p.Poll(ctx, cache) == nil
	}
	l.wake()
	return true
}

// trustCache turns the in-process cache back on when the follower is
// current; checked again after, so that a follower that went stale in
// between (and bypassed the cache) is not overridden.
func (l *Layer) trustCache(cache *epoch.Cache) {
	cur, ok := l.fol.(interface{ Current() bool })
	if !ok {
		if l.fol == nil {
			cache.SetBypass(false)
		}
		return
	}
	if cur.Current() {
		cache.SetBypass(false)
		if !cur.Current() {
			cache.SetBypass(true)
		}
	}
}

func (l *Layer) wake() {
	if l.fol != nil {
		l.fol.Wake()
	}
}

// errQuiet: subscribed, but the Watch's own heartbeats stopped coming back.
var errQuiet = errors.New("invalidation feed quiet: own heartbeats not delivered")

// errUnsubscribed: the server ended the subscription (a shard channel
// whose slot moved).
var errUnsubscribed = errors.New("subscription ended by the server")

// heartbeats are the tokens a Watch sent and not yet seen back.
type heartbeats struct {
	mu   sync.Mutex
	sent map[string]time.Time
}

// add makes a new token, remembered until it comes back or is older than
// maxAge.
func (h *heartbeats) add(maxAge time.Duration) string {
	var b [16]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, at := range h.sent {
		if now.Sub(at) > maxAge {
			delete(h.sent, k)
		}
	}
	h.sent[tok] = now
	return tok
}

// take reports whether tok is one of ours, recent, and not seen before.
func (h *heartbeats) take(tok string, maxAge time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.sent[tok]
	delete(h.sent, tok)
	return ok && time.Since(at) <= maxAge
}

// watchOnce runs one subscription until it fails or goes quiet. The PubSub
// is made with no channel and subscribed explicitly, so that a failure of
// the first SUBSCRIBE is an error here instead of a silent retry inside
// go-redis. subscribed is called on each own heartbeat that comes back.
func (l *Layer) watchOnce(ctx context.Context, cache *epoch.Cache, health, beat time.Duration, subscribed func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ps *redis.PubSub
	var err error
	if l.sharded {
		ps = l.rdb.SSubscribe(ctx)
		err = ps.SSubscribe(ctx, Channel)
	} else {
		ps = l.rdb.Subscribe(ctx)
		err = ps.Subscribe(ctx, Channel)
	}
	defer ps.Close()
	if err != nil {
		return err
	}
	hb := &heartbeats{sent: map[string]time.Time{}}
	beaterDone := make(chan struct{})
	go func() {
		defer close(beaterDone)
		t := time.NewTicker(beat)
		defer t.Stop()
		for {
			// A publish that fails or hangs is not an error of its own:
			// its heartbeat does not come back.
			pctx, pcancel := context.WithTimeout(ctx, health)
			l.publish(pctx, heartbeatPrefix+hb.add(health))
			pcancel()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer func() { cancel(); <-beaterDone }()
	// The grace before the first heartbeat counts from the subscription.
	last := time.Now()
	for {
		msg, err := ps.ReceiveTimeout(ctx, beat)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !isTimeout(err):
			return err
		case err != nil: // no message within beat: see below
		default:
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Channel == Channel && (m.Kind == "unsubscribe" || m.Kind == "sunsubscribe") {
					return errUnsubscribed
				}
			case *redis.Message:
				if tok, ok := strings.CutPrefix(m.Payload, heartbeatPrefix); ok {
					// Another verifier's heartbeat, or one of ours too old
					// or seen before, proves nothing about this feed.
					if hb.take(tok, health) {
						last = time.Now()
						l.heartbeats.Add(1)
						subscribed()
					}
					continue
				}
				l.invalidations.Add(1)
				if m.Payload == everyone {
					cache.Invalidate()
				} else {
					cache.Invalidate(m.Payload)
				}
				l.wake()
			}
		}
		if time.Since(last) > health {
			return errQuiet
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

var _ epoch.Source = (*Layer)(nil)

// Redact returns url with its credentials replaced by "REDACTED": the
// password of the user information (the whole user information when it has
// no password, since go-redis may read a lone user name as a password), and
// the value of every query parameter whose name holds "password". It works
// on URLs that do not parse too, so that error messages about them can be
// shown.
func Redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		// Not a URL: everything before the last "@" may be a credential.
		if at := strings.LastIndex(url, "@"); at >= 0 {
			return "REDACTED" + url[at:]
		}
		return url
	}
	scheme += "://"
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, _, hasPassword := strings.Cut(authority[:at], ":")
		if hasPassword {
			authority = user + ":REDACTED" + authority[at:]
		} else {
			authority = "REDACTED" + authority[at:]
		}
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			name, _, hasValue := strings.Cut(p, "=")
			if hasValue && strings.Contains(strings.ToLower(name), "password") {
				params[i] = name + "=REDACTED"
			}
		}
		path += "?" + strings.Join(params, "&")
	}
	return scheme + authority + path
}

// secrets returns the credentials Redact removes from url, raw and
// percent-decoded.
func secrets(url string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if u, err := neturl.PathUnescape(s); err == nil && u != s && u != "" {
			out = append(out, u)
		}
	}
	_, rest, ok := strings.Cut(url, "://")
	if !ok {
		if at := strings.LastIndex(url, "@"); at >= 0 {
			add(url[:at])
		}
		return out
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		user, pw, hasPassword := strings.Cut(rest[:at], ":")
		if hasPassword {
			add(pw)
		} else {
			add(user)
		}
	}
	if _, query, ok := strings.Cut(rest, "?"); ok {
		for _, p := range strings.Split(query, "&") {
			if name, v, ok := strings.Cut(p, "="); ok && strings.Contains(strings.ToLower(name), "password") {
				add(v)
			}
		}
	}
	return out
}

// redactedError is an error whose message had credentials removed; it
// still unwraps to the original for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err with the URL and its credentials removed from the
// message.
func redactErr(url string, err error) error {
	msg := strings.ReplaceAll(err.Error(), url, Redact(url))
	for _, s := range secrets(url) {
		msg = strings.ReplaceAll(msg, s, "REDACTED")
	}
	return &redactedError{msg: msg, err: err}
}
