// Package rediscache is the shared Redis layer of amaretti's revocation
// state: editor states cached in Redis in front of the authoritative store
// (SQLite or PostgreSQL), and the pub/sub feed that tells every verifier to
// drop what it caches in process.
//
// Read path (a verifier): in-process epoch.Cache → Layer (Redis) → store,
// each layer filling the one above on a miss. Fills are written only if they
// carry a greater version than what Redis holds (a Lua script, atomic), so a
// reader that fetched an old state just before a touch cannot overwrite the
// touch's state. Versions are compared, not epochs, because unlocking moves
// an epoch back.
//
// Write path (a touch): the store first, then Layer.Announce: Redis
// (write-if-greater), then a message on Channel that every Watch applies to
// its in-process cache.
//
// Staleness: with the feed working a revocation is seen everywhere within
// milliseconds; with a message lost, within the in-process TTL; a verifier
// whose subscription is down bypasses its in-process cache until it has
// resubscribed. Redis may lose an acknowledged write on failover, so the
// Redis TTL is the worst-case staleness. When Redis cannot answer, the Layer
// reads the store; when neither can, the verifier denies.
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/redis/go-redis/v9"
)

// Channel is the pub/sub channel of invalidations. A message is an editor
// id, or "*" for every editor.
const Channel = "amaretti:invalidate"

const (
	keyPrefix = "amaretti:editor:"
	everyone  = "*"
	// DefaultTTL is how long Redis keeps a state: the worst-case staleness
	// if Redis loses a write on failover.
	DefaultTTL = 30 * time.Second
)

// setIfGreater stores ARGV[2] under KEYS[1] for ARGV[3] ms unless the value
// there already has a version (the second field) of at least ARGV[1].
var setIfGreater = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = tonumber(string.match(cur, '^v%d+ (%d+) '))
  if v and v >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// Layer caches editor states in Redis in front of an authoritative Source.
// It implements epoch.Source and is safe for concurrent use.
type Layer struct {
	rdb redis.UniversalClient
	src epoch.Source
	ttl time.Duration
	log *slog.Logger

	// downUntil (UnixNano) is set after a Redis failure: until then reads
	// go straight to the store instead of waiting on Redis again.
	downUntil atomic.Int64

	hits, misses, fallbacks, redisErrors, invalidations atomic.Int64
}

// breakFor is how long reads skip Redis after it failed.
const breakFor = time.Second

// An Option configures a Layer.
type Option func(*Layer)

// WithTTL sets how long Redis keeps a state (default DefaultTTL).
func WithTTL(d time.Duration) Option { return func(l *Layer) { l.ttl = d } }

// WithLogger logs Redis failures and subscription changes (default: none).
func WithLogger(log *slog.Logger) Option { return func(l *Layer) { l.log = log } }

// New returns a Layer over src using rdb.
func New(rdb redis.UniversalClient, src epoch.Source, opts ...Option) *Layer {
	l := &Layer{rdb: rdb, src: src, ttl: DefaultTTL, log: slog.New(slog.DiscardHandler)}
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
func NewClient(url string) (redis.UniversalClient, error) {
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

// encode writes "v2 <version> <epoch µs> <role> <active 0|1> <revoked>",
// revoked being the comma-separated token ids or "-".
func encode(s epoch.State) string {
	active := "0"
	if s.Active {
		active = "1"
	}
	revoked := s.Revoked
	if revoked == "" {
		revoked = "-"
	}
	return fmt.Sprintf("v2 %d %d %s %s %s", s.Version, s.Epoch.UnixMicro(), s.Role, active, revoked)
}

func decode(v string) (epoch.State, error) {
	f := strings.Split(v, " ")
	if len(f) != 6 || f[0] != "v2" {
		return epoch.State{}, fmt.Errorf("unexpected cached value %q", v)
	}
	version, err1 := strconv.ParseInt(f[1], 10, 64)
	us, err2 := strconv.ParseInt(f[2], 10, 64)
	role := epoch.Role(f[3])
	if err1 != nil || err2 != nil || !role.Valid() || f[4] != "0" && f[4] != "1" || f[5] == "" {
		return epoch.State{}, fmt.Errorf("unexpected cached value %q", v)
	}
	revoked := f[5]
	if revoked == "-" {
		revoked = ""
	}
	return epoch.State{Epoch: time.UnixMicro(us).UTC(), Role: role, Active: f[4] == "1", Version: version, Revoked: revoked}, nil
}

// State implements epoch.Source: Redis, then the store (filling Redis).
// When Redis fails it reads the store and says so in the log and Stats.
func (l *Layer) State(ctx context.Context, editorID string) (epoch.State, error) {
	if time.Now().UnixNano() < l.downUntil.Load() {
		l.fallbacks.Add(1)
		return l.src.State(ctx, editorID)
	}
	v, err := l.rdb.Get(ctx, key(editorID)).Result()
	switch {
	case err == nil:
		st, derr := decode(v)
		if derr == nil {
			l.hits.Add(1)
			return st, nil
		}
		l.log.Warn("ignoring a cached editor state", "editor_id", editorID, "err", derr)
		l.misses.Add(1)
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
	st, err := l.src.State(ctx, editorID)
	if err != nil {
		return st, err
	}
	l.put(ctx, editorID, st)
	return st, nil
}

// put writes st unless Redis holds a state at least as new. Failures are
// logged and counted, never returned: Redis is a cache.
func (l *Layer) put(ctx context.Context, editorID string, st epoch.State) {
	err := setIfGreater.Run(ctx, l.rdb, []string{key(editorID)}, st.Version, encode(st), l.ttl.Milliseconds()).Err()
	if err != nil {
		l.redisErrors.Add(1)
		l.log.Warn("redis write failed", "editor_id", editorID, "err", err)
	}
}

// Announce publishes changed editor states: each is written to Redis (if
// newer than what it holds), then one invalidation per editor is published.
// Call it after the store has committed the change. An error means the
// announcement may not have reached every verifier; they still see the
// change within their caches' TTLs.
func (l *Layer) Announce(ctx context.Context, editors ...epoch.Editor) error {
	for _, e := range editors {
		l.put(ctx, e.ID, e.State())
	}
	var errs []error
	if len(editors) > 16 {
		errs = append(errs, l.rdb.Publish(ctx, Channel, everyone).Err())
	} else {
		for _, e := range editors {
			errs = append(errs, l.rdb.Publish(ctx, Channel, e.ID).Err())
		}
	}
	if err := errors.Join(errs...); err != nil {
		l.redisErrors.Add(1)
		return fmt.Errorf("publishing invalidations: %w", err)
	}
	return nil
}

// Stats are counters since the Layer was made.
type Stats struct {
	// Hits and Misses count Redis lookups.
	Hits, Misses int64
	// Fallbacks counts reads that went to the store because Redis failed.
	Fallbacks int64
	// RedisErrors counts failed Redis operations of any kind.
	RedisErrors int64
	// Invalidations counts messages Watch received and applied.
	Invalidations int64
}

// Stats returns the Layer's counters.
func (l *Layer) Stats() Stats {
	return Stats{l.hits.Load(), l.misses.Load(), l.fallbacks.Load(), l.redisErrors.Load(), l.invalidations.Load()}
}

// Ping checks that Redis answers.
func (l *Layer) Ping(ctx context.Context) error { return l.rdb.Ping(ctx).Err() }

// Watch subscribes to Channel and applies invalidations to cache until ctx
// ends. The cache is bypassed until the subscription is confirmed and
// whenever it is lost (a connection error, or no answer to a ping within
// health), and dropped whole when it is back, since messages may have been
// missed meanwhile. Watch resubscribes by itself; onChange, when not nil, is
// told each time the subscription comes up or goes down.
func (l *Layer) Watch(ctx context.Context, cache *epoch.Cache, health time.Duration, onChange func(up bool)) {
	if health <= 0 {
		health = time.Second
	}
	cache.SetBypass(true)
	up := false
	set := func(now bool, err error) {
		if now == up {
			return
		}
		up = now
		cache.SetBypass(!now)
		if now {
			l.log.Info("invalidation feed subscribed; in-process cache in use", "channel", Channel)
		} else {
			l.log.Warn("invalidation feed lost; in-process cache bypassed until resubscribed", "err", err)
		}
		if onChange != nil {
			onChange(now)
		}
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := l.watchOnce(ctx, cache, health, func() { set(true, nil); backoff = 50 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		l.redisErrors.Add(1)
		set(false, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// watchOnce runs one subscription until it fails.
func (l *Layer) watchOnce(ctx context.Context, cache *epoch.Cache, health time.Duration, subscribed func()) error {
	ps := l.rdb.Subscribe(ctx, Channel)
	defer ps.Close()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, health)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isTimeout(err) {
				if pinged {
					return errors.New("no answer to ping")
				}
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				pinged = true
				continue
			}
			return err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == Channel {
				subscribed()
			}
		case *redis.Message:
			l.invalidations.Add(1)
			if m.Payload == everyone {
				cache.Invalidate()
			} else {
				cache.Invalidate(m.Payload)
			}
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

var _ epoch.Source = (*Layer)(nil)
