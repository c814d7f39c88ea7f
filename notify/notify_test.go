package notify_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/notify"
)

var secret = []byte("0123456789abcdef-webhook-secret")

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// receiver is a real HTTP server that checks each delivery's signature
// against the test clock, answers 500 to the first fail requests, and
// keeps every body it accepted and every raw body it saw.
type receiver struct {
	t   *testing.T
	clk *clock
	srv *httptest.Server

	mu       sync.Mutex
	fail     int
	requests int
	accepted []notify.Event
	raw      []string
}

func newReceiver(t *testing.T, clk *clock) *receiver {
	r := &receiver{t: t, clk: clk}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		r.raw = append(r.raw, string(body))
		if err := notify.Verify(secret, req.Header.Get(notify.HeaderSignature), req.Header.Get(notify.HeaderTimestamp), body, clk.now(), 5*time.Minute); err != nil {
			t.Errorf("delivery: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.fail > 0 {
			r.fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var ev notify.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("delivery body: %v", err)
		}
		r.accepted = append(r.accepted, ev)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// take returns and forgets the accepted events.
func (r *receiver) take() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.accepted
	r.accepted = nil
	return out
}

type env struct {
	clk     *clock
	path    string
	store   *sqlite.Store
	issuer  *apitoken.Issuer
	alice   epoch.Editor
	secrets []string
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	e := &env{clk: &clock{t: time.Now().UTC()}, path: filepath.Join(dir, "a.db")}
	var err error
	if e.store, err = sqlite.Open(ctx, e.path, sqlite.WithClock(e.clk.now)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if e.alice, err = e.store.Create(ctx, epoch.NewEditor{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	e.clk.set(e.clk.now().Add(time.Second))
	checker, _ := caveat.NewChecker()
	minter, err := macaroon.NewMinter(keys, "api.example.org", macaroon.WithMintClock(e.clk.now), macaroon.WithMintChecker(checker))
	if err != nil {
		t.Fatal(err)
	}
	if e.issuer, err = apitoken.NewIssuer(e.store, minter, checker, apitoken.WithClock(e.clk.now)); err != nil {
		t.Fatal(err)
	}
	return e
}

// create makes an API token of alice living ttl and remembers its secret.
func (e *env) create(t *testing.T, name string, ttl time.Duration) epoch.APIToken {
	t.Helper()
	secret, row, err := e.issuer.Create(t.Context(), apitoken.Request{EditorID: e.alice.ID, Name: name, TTL: ttl, Creator: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, secret)
	return row
}

func (e *env) notifier(t *testing.T, st notify.Store, url string) *notify.Notifier {
	t.Helper()
	n, err := notify.New(st, notify.Config{URL: url, Secret: secret, Clock: e.clk.now, Backoff: time.Millisecond, Attempts: 3, Policy: apitoken.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestThresholds: each threshold is delivered exactly once per token, even
// with two notifiers on one store scanning at once and after a restart;
// tokens that never lived past a threshold are not warned at it; a token
// that expired unused is announced once; an auto-revoked one too; no event
// holds a token's secret.
func TestThresholds(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	rcv := newReceiver(t, e.clk)
	t0 := e.clk.now()
	day := 24 * time.Hour
	e.create(t, "deploy", 40*day)
	e.create(t, "one-hour", time.Hour)
	used := e.create(t, "used", 2*day)
	if err := e.store.RecordUses(ctx, []epoch.Use{{TokenID: used.TokenID, At: t0.Add(time.Minute), From: "192.0.2.1"}}); err != nil {
		t.Fatal(err)
	}
	other, err := sqlite.Open(ctx, e.path, sqlite.WithClock(e.clk.now)) // a second daemon
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	n1, n2 := e.notifier(t, e.store, rcv.srv.URL), e.notifier(t, other, rcv.srv.URL)

	steps := []struct {
		name string
		at   time.Duration
		want []string // type/token name/threshold
	}{
		{"an hour in: nothing crossed", 30 * time.Minute, nil},
		{"day 1: the one-hour token expired unused; the two-day one crossed 1d", day, []string{"token.expired_unused one-hour ", "token.expiring used 1d"}},
		{"day 1.5: nothing new", day + 12*time.Hour, nil},
		{"day 3: the used token expired: not announced", 3 * day, nil},
		{"29 days left: 30d", 11 * day, []string{"token.expiring deploy 30d"}},
		{"later the same threshold: nothing", 12 * day, nil},
		{"6 days left: 7d", 34 * day, []string{"token.expiring deploy 7d"}},
		{"12 hours left: 1d", 40*day - 12*time.Hour, []string{"token.expiring deploy 1d"}},
		{"expired unused", 40*day + time.Hour, []string{"token.expired_unused deploy "}},
		{"and then nothing", 41 * day, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.clk.set(t0.Add(s.at))
			var wg sync.WaitGroup
			for _, n := range []*notify.Notifier{n1, n2, n1, n2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := n.Scan(ctx); err != nil {
						t.Errorf("Scan: %v", err)
					}
				}()
			}
			wg.Wait()
			// A restarted daemon: a new notifier on a new handle.
			if err := e.notifier(t, e.store, rcv.srv.URL).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range rcv.take() {
				got = append(got, ev.Type+" "+ev.TokenName+" "+ev.Threshold)
				if ev.EditorID != e.alice.ID || ev.Username != "alice" || ev.ID == "" || ev.Expires.IsZero() || ev.TokenID == "" {
					t.Errorf("event %+v", ev)
				}
			}
			slices.Sort(got)
			if strings.Join(got, "|") != strings.Join(slices.Sorted(slices.Values(s.want)), "|") {
				t.Fatalf("delivered %q, want %q", got, s.want)
			}
		})
	}

	t.Run("auto-revoked", func(t *testing.T) {
		row := e.create(t, "rotated-away", 90*day)
		if _, _, err := e.store.RevokeToken(ctx, row.TokenID); err != nil {
			t.Fatal(err)
		}
		if err := audit.Record(ctx, e.store, audit.TokenAutoRevoked(row, "rotated: the new token was used", e.clk.now())); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			for _, n := range []*notify.Notifier{n1, n2} {
				if err := n.Scan(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		got := rcv.take()
		if len(got) != 1 || got[0].Type != notify.TypeAutoRevoked || got[0].TokenID != row.TokenID || got[0].Reason != "rotated: the new token was used" || got[0].Revoked.IsZero() {
			t.Fatalf("delivered %+v", got)
		}
	})

	t.Run("no secret in any delivery", func(t *testing.T) {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if len(rcv.raw) == 0 {
			t.Fatal("nothing delivered")
		}
		for _, body := range rcv.raw {
			for _, s := range append(e.secrets, string(secret)) {
				if strings.Contains(body, s) || strings.Contains(body, s[len(s)-16:]) {
					t.Fatalf("a secret in a delivery: %s", body)
				}
			}
		}
	})
}

// TestRetries: a receiver failing with 500 is retried with backoff within
// a scan; one failing past the attempts releases the claim, and the next
// scan delivers — once.
func TestRetries(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	rcv := newReceiver(t, e.clk)
	e.create(t, "deploy", 10*24*time.Hour)
	e.clk.set(e.clk.now().Add(4 * 24 * time.Hour)) // 6 days left: 7d
	n := e.notifier(t, e.store, rcv.srv.URL)

	rcv.fail = 2 // two 500s, then accepted: within one scan's 3 attempts
	if err := n.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcv.take(); len(got) != 1 || rcv.requests != 3 {
		t.Fatalf("delivered %d after %d requests, want 1 after 3", len(got), rcv.requests)
	}

	e.create(t, "second", 10*24*time.Hour)
	e.clk.set(e.clk.now().Add(4 * 24 * time.Hour))
	rcv.fail = 3 // every attempt of this scan fails
	if err := n.Scan(ctx); !errors.Is(err, notify.ErrDelivery) {
		t.Fatalf("Scan = %v, want ErrDelivery", err)
	}
	if got := rcv.take(); len(got) != 0 {
		t.Fatalf("delivered %+v", got)
	}
	if err := n.Scan(ctx); err != nil { // released: retried now
		t.Fatal(err)
	}
	if got := rcv.take(); len(got) != 1 || got[0].TokenName != "second" || got[0].Threshold != "7d" {
		t.Fatalf("after the release: %+v", got)
	}
	if err := n.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcv.take(); len(got) != 0 {
		t.Fatalf("delivered again: %+v", got)
	}
}

// TestVerify: a receiver's check refuses a wrong secret, a changed body,
// a replayed (old) timestamp.
func TestVerify(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	body := []byte(`{"id":"x"}`)
	ts := "1900000000"
	good := notify.Sign(secret, ts, body)
	cases := []struct {
		name       string
		key        []byte
		sig, stamp string
		body       []byte
		at         time.Time
		ok         bool
	}{
		{"good", secret, good, ts, body, now, true},
		{"another secret", []byte("another-secret-of-16"), good, ts, body, now, false},
		{"changed body", secret, good, ts, []byte(`{"id":"y"}`), now, false},
		{"changed timestamp", secret, good, "1900000001", body, now, false},
		{"replayed an hour later", secret, good, ts, body, now.Add(time.Hour), false},
		{"unreadable timestamp", secret, good, "soon", body, now, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := notify.Verify(c.key, c.sig, c.stamp, c.body, c.at, 5*time.Minute)
			if (err == nil) != c.ok || err != nil && !errors.Is(err, notify.ErrSignature) {
				t.Fatalf("Verify = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// TestConfig: the secret file must be private; thresholds parse; a bad
// URL is refused without being repeated.
func TestConfig(t *testing.T) {
	dir := t.TempDir()
	files := []struct {
		name    string
		mode    os.FileMode
		content string
		ok      bool
	}{
		{"0600", 0o600, "  a-long-enough-secret\n", true},
		{"0640", 0o640, "a-long-enough-secret", false},
		{"0644", 0o644, "a-long-enough-secret", false},
		{"short", 0o600, "short", false},
	}
	for _, f := range files {
		t.Run("secret file "+f.name, func(t *testing.T) {
			p := filepath.Join(dir, "secret-"+strings.ReplaceAll(f.name, "short", "s"))
			if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, f.mode)
			got, err := notify.ReadSecretFile(p)
			if (err == nil) != f.ok || err != nil && !errors.Is(err, notify.ErrSecretFile) || f.ok && string(got) != "a-long-enough-secret" {
				t.Fatalf("ReadSecretFile = %q, %v", got, err)
			}
			if err != nil && strings.Contains(err.Error(), f.content) {
				t.Fatal("the error repeats the secret")
			}
		})
	}
	thresholds := []struct {
		in   string
		want []time.Duration
	}{
		{"30d,7d,1d", []time.Duration{720 * time.Hour, 168 * time.Hour, 24 * time.Hour}},
		{"48h, 2d", []time.Duration{48 * time.Hour, 48 * time.Hour}},
		{"0d", nil}, {"-1h", nil}, {"x", nil}, {"", nil},
	}
	for _, c := range thresholds {
		t.Run("thresholds "+c.in, func(t *testing.T) {
			got, err := notify.ParseThresholds(c.in)
			if (err == nil) != (c.want != nil) || len(got) != len(c.want) {
				t.Fatalf("ParseThresholds = %v, %v", got, err)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("ParseThresholds = %v", got)
				}
			}
		})
	}
	hook := "https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX"
	for _, u := range []string{"ftp://x", "not a url", "https://", hook[:8]} {
		if _, err := notify.New(nil, notify.Config{URL: u, Secret: secret}); !errors.Is(err, notify.ErrConfig) {
			t.Fatalf("New(%q) = %v", u, err)
		}
	}
	if _, err := notify.New(nil, notify.Config{URL: hook, Secret: []byte("short")}); err == nil || strings.Contains(err.Error(), "XXXXSECRET") {
		t.Fatalf("short secret: %v", err)
	}
}
