package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/verifier"
)

// RefusalStore is what Refusals writes to: the audit trail, and the
// registry to tell API tokens from others. Both authoritative stores
// implement it.
type RefusalStore interface {
	Recorder
	Token(ctx context.Context, tokenID string) (epoch.APIToken, error)
}

// DefaultMaxPending bounds the tokens Refusals remembers between two
// flushes.
const DefaultMaxPending = 10000

// Refusals records refused uses of registered API tokens — revoked,
// expired, over the lifetime policy, of a locked or deactivated editor —
// without slowing the verify path or letting a flood of requests flood the
// store: Seen notes a refusal in memory (a map under a mutex; the allowed
// path never calls it), and Run writes one epoch.AuditTokenRefused event
// per token per interval, with the count of refusals and the first one's
// reason and address. Memory is bounded: past maxPending tokens in one
// interval, further tokens are only counted, and recorded as one event
// without a token id. Tokens without a registry row (sessions, exchanged
// tokens) are dropped at flush.
type Refusals struct {
	store      RefusalStore
	interval   time.Duration
	maxPending int
	now        func() time.Time
	log        *slog.Logger

	mu      sync.Mutex
	pending map[string]*refusal
	// overflow counts the refusals of tokens beyond maxPending.
	overflow int64
}

type refusal struct {
	at             time.Time
	editorID, from string
	reason         string
	count          int64
}

// RefusalsOption configures Refusals.
type RefusalsOption func(*Refusals)

// WithRefusalsClock sets the clock of recorded times (default time.Now).
func WithRefusalsClock(now func() time.Time) RefusalsOption {
	return func(r *Refusals) { r.now = now }
}

// WithMaxPending bounds the tokens remembered per interval (default
// DefaultMaxPending).
func WithMaxPending(n int) RefusalsOption {
	return func(r *Refusals) {
		if n > 0 {
			r.maxPending = n
		}
	}
}

// NewRefusals returns a recorder writing to store every interval (default
// a minute: at most one record per token per minute).
func NewRefusals(store RefusalStore, interval time.Duration, log *slog.Logger, opts ...RefusalsOption) *Refusals {
	if interval <= 0 {
		interval = time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Refusals{store: store, interval: interval, maxPending: DefaultMaxPending, now: time.Now, log: log, pending: map[string]*refusal{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// refusable are the reasons a refusal of a genuine token is recorded for,
// most specific first, with their fixed texts.
var refusable = []struct {
	err    error
	reason string
}{
	{verifier.ErrExpired, "expired"},
	{verifier.ErrOverPolicy, "over_policy"},
	{epoch.ErrLocked, "editor_locked"},
	{epoch.ErrTokenRevoked, "revoked"},
	{verifier.ErrRevoked, "revoked_by_touch"},
	{verifier.ErrInactiveEditor, "editor_deactivated"},
}

// Refused reports whether a verification error is a refused use worth
// recording — a genuine token (its signature checked: the denial names
// its editor) with a token id, refused for one of the reasons of
// Refusals — and returns the token and editor ids and the reason's fixed
// text. Forged, malformed or unknown-key tokens are not: their ids are
// whatever a client wrote.
func Refused(err error) (tokenID, editorID, reason string, ok bool) {
	var d *verifier.Denial
	if !errors.As(err, &d) || d.TokenID == "" || d.EditorID == "" {
		return "", "", "", false
	}
	for _, r := range refusable {
		if errors.Is(err, r.err) {
			return d.TokenID, d.EditorID, r.reason, true
		}
	}
	return "", "", "", false
}

// Seen notes a refused use of tokenID (of editor editorID) for reason,
// from the client address from.
func (r *Refusals) Seen(tokenID, editorID, reason, from string) {
	if tokenID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pending[tokenID]; ok {
		p.count++
		return
	}
	if len(r.pending) >= r.maxPending {
		r.overflow++
		return
	}
	r.pending[tokenID] = &refusal{at: r.now(), editorID: editorID, from: from, reason: reason, count: 1}
}

// Flush writes the refusals noted so far, one event per registered token.
func (r *Refusals) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch, overflow := r.pending, r.overflow
	r.pending, r.overflow = map[string]*refusal{}, 0
	r.mu.Unlock()
	var events []epoch.AuditEvent
	for id, p := range batch {
		row, err := r.store.Token(ctx, id)
		if errors.Is(err, epoch.ErrTokenNotFound) {
			continue // not an API token
		}
		if err != nil {
			r.restore(batch, overflow)
			return fmt.Errorf("audit: reading token %s: %w", id, err)
		}
		e := Actor{Kind: epoch.ActorDaemon, From: p.from}.Event(epoch.AuditTokenRefused,
			Target{EditorID: row.EditorID, TokenID: id, Detail: p.reason}, p.at)
		e.Count = p.count
		events = append(events, e)
	}
	if overflow > 0 {
		e := Daemon().Event(epoch.AuditTokenRefused, Target{Detail: "refusals of further tokens, not itemised (too many tokens refused in one interval)"}, r.now())
		e.Count = overflow
		events = append(events, e)
	}
	if err := r.store.RecordAudit(ctx, events...); err != nil {
		r.restore(batch, overflow)
		return err
	}
	return nil
}

// restore puts back a batch that could not be written, merged with what
// was noted since (within maxPending), so that a store error delays the
// records to the next flush instead of losing them.
func (r *Refusals) restore(batch map[string]*refusal, overflow int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overflow += overflow
	for id, p := range batch {
		switch q, ok := r.pending[id]; {
		case ok:
			q.count += p.count
			if p.at.Before(q.at) {
				q.at, q.from, q.reason = p.at, p.from, p.reason
			}
		case len(r.pending) < r.maxPending:
			r.pending[id] = p
		default:
			r.overflow += p.count
		}
	}
}

// Run flushes every interval until ctx ends, then once more.
func (r *Refusals) Run(ctx context.Context) {
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := r.Flush(context.Background()); err != nil {
				r.log.Warn("recording refused token uses failed", "err", err)
			}
			return
		case <-tick.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("recording refused token uses failed", "err", err)
			}
		}
	}
}
