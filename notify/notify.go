// Package notify posts API-token lifecycle events to a webhook: a token
// about to expire (at each threshold, by default 30, 7 and 1 days before),
// a token that expired without ever being used, and a token revoked by
// itself (a rotation's old token; see audit.TokenAutoRevoked). A receiver
// turns them into e-mail or chat messages.
//
// # Once per token per event, across restarts and daemons
//
// Before sending, a notifier claims the (token, event) pair in the store
// (epoch.Notifications): an insert-if-absent row. Only the claimer sends;
// a delivery marks the row sent for good. A send that still fails after
// the retries (with exponential backoff) releases the claim, so that the
// next scan — of this daemon or another — tries again. A claimer that dies
// between claiming and marking loses its claim after the lease (default 10
// minutes), after which another daemon sends: a receiver that must never
// see a duplicate dedupes by the event's id, which is the same on every
// attempt.
//
// # Signature
//
// Each POST carries
//
//	X-Amaretti-Timestamp: <Unix seconds>
//	X-Amaretti-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver recomputes the HMAC over the timestamp header, a dot and the
// raw body, compares in constant time, and refuses a timestamp more than a
// few minutes from its clock (a replay): Verify does exactly that.
//
// Events hold ids, names, owners and dates only — never a token's secret.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/epoch"
)

// Event types.
const (
	TypeExpiring      = "token.expiring"
	TypeExpiredUnused = "token.expired_unused"
	TypeAutoRevoked   = "token.auto_revoked"
)

// Headers of a delivery.
const (
	HeaderSignature = "X-Amaretti-Signature"
	HeaderTimestamp = "X-Amaretti-Timestamp"
)

// DefaultThresholds are the times before expiry a token's owner is warned.
var DefaultThresholds = []time.Duration{30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour}

// Errors.
var (
	// ErrSignature means a delivery's signature or timestamp is wrong.
	ErrSignature = errors.New("notify: bad signature")
	// ErrSecretFile means the secret file is unusable: readable by others
	// than its owner, or too short.
	ErrSecretFile = errors.New("notify: secret file")
	// ErrConfig means a configuration value is unusable.
	ErrConfig = errors.New("notify: configuration")
	// ErrDelivery means the receiver did not accept an event.
	ErrDelivery = errors.New("notify: delivery failed")
)

// Event is what a notifier posts, as JSON.
type Event struct {
	// ID is the same on every attempt of one notification: receivers
	// dedupe by it.
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	TokenID   string    `json:"token_id"`
	TokenName string    `json:"token_name"`
	EditorID  string    `json:"editor_id"`
	Username  string    `json:"username,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires,omitzero"`
	// Threshold is the warning crossed ("30d", "7d", "1d"), for
	// TypeExpiring.
	Threshold string `json:"threshold,omitempty"`
	// Revoked and Reason are a TypeAutoRevoked's.
	Revoked time.Time `json:"revoked,omitzero"`
	Reason  string    `json:"reason,omitempty"`
	// SentAt is when this attempt was made.
	SentAt time.Time `json:"sent_at"`
}

// Store is what a notifier reads and claims in; both authoritative stores
// implement it.
type Store interface {
	apitoken.EditorSource
	Tokens(ctx context.Context, editorID string) ([]epoch.APIToken, error)
	Token(ctx context.Context, tokenID string) (epoch.APIToken, error)
	AuditEvents(ctx context.Context, f epoch.AuditFilter) ([]epoch.AuditEvent, int64, error)
	epoch.Notifications
}

// Config configures a Notifier.
type Config struct {
	// URL receives the POSTs (required).
	URL string
	// Secret keys the HMAC signature (required; at least 16 bytes).
	Secret []byte
	// Thresholds before expiry (default DefaultThresholds).
	Thresholds []time.Duration
	// Interval between scans (default 5 minutes).
	Interval time.Duration
	// Policy decides which tokens are live (apitoken.StatusOf).
	Policy apitoken.Policy
	// Attempts per notification in one scan (default 5), with Backoff
	// before the second, doubled before each next, at most a minute
	// (default 1 s).
	Attempts int
	Backoff  time.Duration
	// Lease after which an unfinished claim may be taken over (default 10
	// minutes; longer than one notification's attempts take).
	Lease time.Duration
	// Clock (default time.Now); Client (default a client with a 10 s
	// timeout); Log (default discard).
	Clock  func() time.Time
	Client *http.Client
	Log    *slog.Logger
}

// Notifier scans the registry and posts events.
type Notifier struct {
	store Store
	cfg   Config
}

// New checks cfg and returns a Notifier.
func New(store Store, cfg Config) (*Notifier, error) {
	// The URL is never repeated in an error or a log line: a chat
	// webhook's URL is its secret.
	if u, err := url.Parse(cfg.URL); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: the webhook must be an http:// or https:// URL", ErrConfig)
	}
	if len(cfg.Secret) < 16 {
		return nil, fmt.Errorf("%w: the secret must be at least 16 bytes", ErrConfig)
	}
	if cfg.Thresholds == nil {
		cfg.Thresholds = DefaultThresholds
	}
	cfg.Thresholds = slices.Clone(cfg.Thresholds)
	slices.Sort(cfg.Thresholds) // smallest first
	cfg.Thresholds = slices.Compact(cfg.Thresholds)
	if len(cfg.Thresholds) == 0 || cfg.Thresholds[0] <= 0 {
		return nil, fmt.Errorf("%w: thresholds must be positive", ErrConfig)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{store: store, cfg: cfg}, nil
}

// ParseThresholds reads a comma-separated list of durations, with "d" for
// days: "30d,7d,1d", "48h".
func ParseThresholds(v string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var d time.Duration
		if days, ok := strings.CutSuffix(f, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil || n <= 0 || n > 3650 {
				return nil, fmt.Errorf("%w: threshold %q: want a positive number of days (30d) or a duration (48h)", ErrConfig, f)
			}
			d = time.Duration(n) * 24 * time.Hour
		} else {
			var err error
			if d, err = time.ParseDuration(f); err != nil || d <= 0 {
				return nil, fmt.Errorf("%w: threshold %q: want a positive number of days (30d) or a duration (48h)", ErrConfig, f)
			}
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no thresholds", ErrConfig)
	}
	return out, nil
}

// ReadSecretFile reads a webhook secret from a file that only its owner
// may read (mode 0600 or stricter), trimmed of surrounding white space: at
// least 16 bytes.
func ReadSecretFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSecretFile, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s must be a regular file of mode 0600 (it is %v): chmod 600 %s", ErrSecretFile, path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSecretFile, err)
	}
	secret := bytes.TrimSpace(data)
	if len(secret) < 16 {
		return nil, fmt.Errorf("%w: %s holds less than 16 bytes", ErrSecretFile, path)
	}
	return secret, nil
}

// Sign returns the X-Amaretti-Signature value of body sent at timestamp
// (Unix seconds, as in X-Amaretti-Timestamp).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery as a receiver: the signature over the
// timestamp and the body, and a timestamp within tolerance of now (a
// replay of an old delivery fails). Errors wrap ErrSignature.
func Verify(secret []byte, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: unreadable timestamp", ErrSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance (a replay?)", ErrSignature)
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return fmt.Errorf("%w: signature mismatch", ErrSignature)
	}
	return nil
}

// label names a threshold: "7d" for whole days, else the duration.
func label(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// Run scans every interval until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		if err := n.Scan(ctx); err != nil && ctx.Err() == nil {
			n.cfg.Log.Warn("token notifications: scan failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pending is a notification to claim and send.
type pending struct {
	key string // the claim's event
	ev  Event
	// superseded are larger thresholds crossed at once: claimed and
	// marked sent with this one, never delivered.
	superseded []string
}

// Scan makes one pass: every live token that crossed a threshold, every
// token that expired unused within the largest threshold, every token
// revoked by itself within it. It returns the first error; the other
// notifications are still attempted.
func (n *Notifier) Scan(ctx context.Context) error {
	now := n.cfg.Clock()
	rows, err := n.store.Tokens(ctx, "")
	if err != nil {
		return fmt.Errorf("notify: reading the registry: %w", err)
	}
	all, err := apitoken.Rows(ctx, n.store, rows, n.cfg.Policy, now)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	lookback := n.cfg.Thresholds[len(n.cfg.Thresholds)-1]
	var todo []pending
	for _, r := range all {
		if r.Expires.IsZero() {
			continue
		}
		switch {
		case r.Live:
			if p, ok := n.expiring(r, now); ok {
				todo = append(todo, p)
			}
		case r.Status == apitoken.StatusExpired && r.LastUsed.IsZero() && r.Revoked.IsZero() && now.Sub(r.Expires) <= lookback:
			todo = append(todo, pending{key: "expired_unused", ev: n.event(TypeExpiredUnused, r.APIToken)})
		}
	}
	revoked, _, err := n.store.AuditEvents(ctx, epoch.AuditFilter{Action: epoch.AuditTokenAutoRevoked, Since: now.Add(-lookback), Limit: epoch.MaxAuditPage})
	if err != nil {
		return fmt.Errorf("notify: reading the audit trail: %w", err)
	}
	for _, a := range revoked {
		row, err := n.store.Token(ctx, a.TokenID)
		if err != nil {
			continue // not a registered token
		}
		ev := n.event(TypeAutoRevoked, row)
		ev.Revoked, ev.Reason = row.Revoked, a.Detail
		if ev.Revoked.IsZero() {
			ev.Revoked = a.At
		}
		todo = append(todo, pending{key: "auto_revoked", ev: ev})
	}
	var first error
	usernames := map[string]string{}
	for _, p := range todo {
		if err := n.notify(ctx, p, now, usernames); err != nil {
			n.cfg.Log.Warn("token notification not delivered; retried on a later scan", "type", p.ev.Type, "token_id", p.ev.TokenID, "err", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// expiring is the notification of a live token's smallest threshold
// crossed at now, if any: a threshold counts once the token has less than
// it left, and only if the token lived longer than it (a token minted for
// a day is not warned about at "7d" or "1d" the moment it is made).
func (n *Notifier) expiring(r apitoken.Row, now time.Time) (pending, bool) {
	left, lifetime := r.Expires.Sub(now), r.Expires.Sub(r.Created)
	var crossed []time.Duration
	for _, t := range n.cfg.Thresholds { // smallest first
		if left <= t && lifetime > t {
			crossed = append(crossed, t)
		}
	}
	if len(crossed) == 0 {
		return pending{}, false
	}
	ev := n.event(TypeExpiring, r.APIToken)
	ev.Threshold = label(crossed[0])
	p := pending{key: "expiring:" + ev.Threshold, ev: ev}
	for _, t := range crossed[1:] {
		p.superseded = append(p.superseded, "expiring:"+label(t))
	}
	return p, true
}

func (n *Notifier) event(typ string, t epoch.APIToken) Event {
	return Event{Type: typ, TokenID: t.TokenID, TokenName: t.Name, EditorID: t.EditorID, Created: t.Created, Expires: t.Expires}
}

// notify claims and sends one notification.
func (n *Notifier) notify(ctx context.Context, p pending, now time.Time, usernames map[string]string) error {
	ok, err := n.store.ClaimNotification(ctx, p.ev.TokenID, p.key, now, n.cfg.Lease)
	if err != nil || !ok {
		return err
	}
	p.ev.ID = p.ev.TokenID + ":" + p.key
	if _, known := usernames[p.ev.EditorID]; !known {
		if ed, err := n.store.Editor(ctx, p.ev.EditorID); err == nil {
			usernames[p.ev.EditorID] = ed.Username
		}
	}
	p.ev.Username = usernames[p.ev.EditorID]
	if err := n.send(ctx, p.ev); err != nil {
		if rerr := n.store.ReleaseNotification(context.WithoutCancel(ctx), p.ev.TokenID, p.key); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	sent := n.cfg.Clock()
	for _, key := range append([]string{p.key}, p.superseded...) {
		if key != p.key {
			if ok, err := n.store.ClaimNotification(ctx, p.ev.TokenID, key, now, n.cfg.Lease); err != nil || !ok {
				continue
			}
		}
		if err := n.store.NotificationSent(context.WithoutCancel(ctx), p.ev.TokenID, key, sent); err != nil {
			return fmt.Errorf("notify: delivered, but not marked sent (it may be sent again after the lease): %w", err)
		}
	}
	n.cfg.Log.Info("token notification delivered", "type", p.ev.Type, "token_id", p.ev.TokenID, "threshold", p.ev.Threshold)
	return nil
}

// send posts ev, retrying with exponential backoff.
func (n *Notifier) send(ctx context.Context, ev Event) error {
	backoff := n.cfg.Backoff
	var last error
	for attempt := range n.cfg.Attempts {
		if attempt > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(last, ctx.Err())
			case <-t.C:
			}
			backoff = min(2*backoff, time.Minute)
		}
		if last = n.post(ctx, ev); last == nil {
			return nil
		}
	}
	return last
}

func (n *Notifier) post(ctx context.Context, ev Event) error {
	ev.SentAt = n.cfg.Clock().UTC()
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(n.cfg.Clock().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "amarettid-notify")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(n.cfg.Secret, ts, body))
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		// Not the URL: a chat webhook's URL is its secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: the receiver answered %d", ErrDelivery, resp.StatusCode)
	}
	return nil
}
