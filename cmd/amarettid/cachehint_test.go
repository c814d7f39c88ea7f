package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/verifier"
)

// TestCacheControl: N is the whole seconds of the smaller of the bound and
// the token's remaining lifetime, rounded down; 0 is no-store.
func TestCacheControl(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		expires time.Time
		want    string
	}{
		{"default: no-store", 0, time.Time{}, "no-store"},
		{"no expiry: the bound", 5 * time.Second, time.Time{}, "private, max-age=5"},
		{"far expiry: the bound", 5 * time.Second, now.Add(time.Hour), "private, max-age=5"},
		{"near expiry: the lifetime", 5 * time.Second, now.Add(2500 * time.Millisecond), "private, max-age=2"},
		{"under a second left: no-store", 5 * time.Second, now.Add(999 * time.Millisecond), "no-store"},
		{"expired: no-store", 5 * time.Second, now.Add(-time.Second), "no-store"},
		{"no bound, near expiry: no-store", 0, now.Add(time.Hour), "no-store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cacheControl(tc.maxAge, verifier.Identity{Expires: tc.expires}, now); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAuthCacheHints: forward auth allows carry the hint (and, for nginx,
// X-Accel-Expires with the same N); every denial is no-store (nginx: 0), and
// so is every allow under the default bound 0.
func TestAuthCacheHints(t *testing.T) {
	for _, bound := range []time.Duration{0, 30 * time.Second} {
		f := newFixtureWith(t, func(s *server) { s.authCacheMaxAge = bound })
		tok := f.mint(t, f.alice.ID)
		soon := f.mint(t, f.alice.ID, caveat.ExpiresAt(time.Now().Add(10*time.Second)))
		getOnly := f.mint(t, f.alice.ID, caveat.Methods{"GET"})
		full := "private, max-age=30"
		if bound == 0 {
			full = "no-store"
		}
		for _, tc := range []struct {
			name, path string
			h          map[string][]string
			status     int
			cc         string // "" with a max-age of 9 or 10 s (the token's lifetime)
		}{
			{"traefik allow", "/v1/auth/traefik", with(bearer(tok), "X-Forwarded-Method", "GET"), 200, full},
			{"caddy allow", "/v1/auth/caddy", with(bearer(tok), "X-Forwarded-Method", "GET"), 200, full},
			{"envoy allow", "/v1/auth/envoy/x", bearer(tok), 200, full},
			{"nginx allow", "/v1/auth/nginx", with(bearer(tok), "X-Original-Method", "GET"), 200, full},
			{"nginx allow, token expiring", "/v1/auth/nginx", with(bearer(soon), "X-Original-Method", "GET"), 200, ""},
			{"traefik allow, token expiring", "/v1/auth/traefik", bearer(soon), 200, ""},
			{"no token", "/v1/auth/nginx", nil, 401, "no-store"},
			{"garbage", "/v1/auth/caddy", bearer("garbage"), 401, "no-store"},
			{"method refused", "/v1/auth/nginx", with(bearer(getOnly), "X-Original-Method", "POST"), 403, "no-store"},
			{"ambiguous context", "/v1/auth", with(with(bearer(tok), "X-Original-Method", "GET"), "X-Forwarded-Method", "GET"), 403, "no-store"},
		} {
			t.Run(bound.String()+"/"+tc.name, func(t *testing.T) {
				resp, body := f.rawCall(t, "GET", tc.path, tc.h)
				cc := resp.Header.Get("Cache-Control")
				if resp.StatusCode != tc.status {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				switch {
				case tc.cc == "" && bound == 0:
					if cc != "no-store" {
						t.Errorf("Cache-Control %q, want no-store", cc)
					}
				case tc.cc == "":
					if cc != "private, max-age=9" && cc != "private, max-age=10" {
						t.Errorf("Cache-Control %q, want max-age 9 or 10 (the token's lifetime)", cc)
					}
				case cc != tc.cc:
					t.Errorf("Cache-Control %q, want %q", cc, tc.cc)
				}
				xa := resp.Header.Values("X-Accel-Expires")
				switch {
				case !strings.HasPrefix(tc.path, "/v1/auth/nginx"):
					if len(xa) != 0 {
						t.Errorf("X-Accel-Expires %q outside the nginx endpoint", xa)
					}
				case cc == "no-store":
					if len(xa) != 1 || xa[0] != "0" {
						t.Errorf("X-Accel-Expires %q, want 0", xa)
					}
				case len(xa) != 1 || "private, max-age="+xa[0] != cc:
					t.Errorf("X-Accel-Expires %q does not match Cache-Control %q", xa, cc)
				}
			})
		}
		// Touched: the denial that follows is never cacheable.
		if resp, body := f.do(t, call{"POST", "/v1/admin/editors/" + f.alice.ID + "/touch", bearer(f.mint(t, f.admin.ID)), ""}); resp.StatusCode != 200 {
			t.Fatalf("touch: %d %s", resp.StatusCode, body)
		}
		resp, _ := f.rawCall(t, "GET", "/v1/auth/nginx", with(bearer(tok), "X-Original-Method", "GET"))
		if resp.StatusCode != 401 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Accel-Expires") != "0" {
			t.Errorf("touched token: %d %v", resp.StatusCode, resp.Header)
		}
	}
}

// TestAuthCacheMaxAgeFlag: --auth-cache-max-age refuses what it cannot
// honour — negative, fractions of a second, or longer than --poll (the
// bound on how late a revocation reaches the daemon) — and accepts up to
// --poll; both gateway flags are checked before anything starts (an
// introspection client file others may read: exit status 1).
func TestAuthCacheMaxAgeFlag(t *testing.T) {
	d := newDeployment(t, "")
	open := writeClientFile(t, "rs:a-secret\n", 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string // the whole of stderr, exit status 2 (1 for the client file)
	}{
		{"a client file others may read", []string{"--introspect-client-file", open},
			"amarettid: --introspect-client-file: insecure introspection client file permissions: " + open + " is accessible by group or others (mode 0644); chmod 600 it\n"},
		{"negative", []string{"--auth-cache-max-age", "-1s"},
			"amarettid: usage: --auth-cache-max-age must not be negative\n"},
		{"fractions", []string{"--auth-cache-max-age", "500ms"},
			"amarettid: usage: --auth-cache-max-age must be whole seconds (max-age counts seconds), not 500ms\n"},
		{"above --poll (default 1s)", []string{"--auth-cache-max-age", "2s"},
			"amarettid: usage: --auth-cache-max-age 2s is longer than --poll 1s, the bound on how late a revocation reaches this daemon: a proxy's cache must not hold an allow longer than that (raise --poll, or lower this)\n"},
		{"above --poll", []string{"--poll", "5s", "--auth-cache-max-age", "6s"},
			"amarettid: usage: --auth-cache-max-age 6s is longer than --poll 5s, the bound on how late a revocation reaches this daemon: a proxy's cache must not hold an allow longer than that (raise --poll, or lower this)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "amarettid"), append([]string{"--listen", freePort(t)}, tc.args...)...)
			cmd.Env = d.env()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 2
			if strings.Contains(tc.name, "client file") {
				code = 1
			}
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != code || stderr.String() != tc.want {
				t.Errorf("%v, stderr:\n%q\nwant exit 2, stderr:\n%q", err, stderr.String(), tc.want)
			}
		})
	}
	t.Run("equal to --poll", func(t *testing.T) {
		a := d.start("--poll", "3s", "--auth-cache-max-age", "3s")
		req, _ := http.NewRequest("GET", a.url+"/v1/auth/traefik", nil)
		req.Header.Set("Authorization", "Bearer "+d.mint(d.minter(), d.cli("editor", "create", "carol")))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "private, max-age=3" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
}

// TestNginxAuthCache runs the example nginx configuration with its cache of
// amarettid's answers on, amarettid with --auth-cache-max-age 1s: an allow
// is served from nginx's cache (amarettid is not asked again), a denial
// never is, and a touched token is refused within N + 1 s (nginx counts
// whole seconds) of the touch reaching amarettid — here at once, through
// the admin endpoint.
func TestNginxAuthCache(t *testing.T) {
	const n = time.Second
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	root := d.cli("editor", "create", "--role", "admin", "root")
	a := d.start("--cache-ttl", "50ms", "--auth-cache-max-age", n.String())
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(echo.Close)
	base := "http://" + startExampleNginxWith(t, a.url, strings.TrimPrefix(echo.URL, "http://"), true)

	get := func(tok string) (int, http.Header) {
		req, _ := http.NewRequest("GET", base+"/v1/things", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	asked := func(outcome string) string {
		return a.metric(t, `amaretti_verifications_total{handler="auth",outcome="`+outcome+`"}`)
	}
	tok := d.mint(d.minter(), alice)
	t.Run("an allow is cached", func(t *testing.T) {
		if status, _ := get(tok); status != 200 {
			t.Fatalf("%d", status)
		}
		before := asked("allowed")
		// nginx keeps the entry until the end of the second after the one
		// it stored it in: a request at once is a hit.
		if status, _ := get(tok); status != 200 {
			t.Fatalf("%d", status)
		}
		if after := asked("allowed"); after != before {
			t.Fatalf("amarettid asked again (%s → %s): the allow was not cached", before, after)
		}
	})
	t.Run("a denial is not", func(t *testing.T) {
		before := asked("invalid_token")
		for range 3 {
			if status, _ := get("garbage"); status != 401 {
				t.Fatalf("%d", status)
			}
		}
		if after := asked("invalid_token"); after == before || after == "" {
			t.Fatalf("denials: %s → %s", before, after)
		}
		b, _ := strconv.Atoi(before)
		if after, _ := strconv.Atoi(asked("invalid_token")); after-b != 3 {
			t.Fatalf("amarettid saw %d of 3 denied requests: a denial was cached", after-b)
		}
	})
	t.Run("a touch is refused within N + 1 s", func(t *testing.T) {
		if status, _ := get(tok); status != 200 { // cached now
			t.Fatalf("%d", status)
		}
		req, _ := http.NewRequest("POST", a.url+"/v1/admin/editors/"+alice+"/touch", nil)
		req.Header.Set("Authorization", "Bearer "+d.mint(d.minter(), root))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("touch: %d", resp.StatusCode)
		}
		touched := time.Now()
		if status := a.status(t, tok); status != 401 {
			t.Fatalf("amarettid itself: %d after the touch", status)
		}
		waitUntil(t, "touched token refused through nginx's cache", n+time.Second+500*time.Millisecond, func() bool {
			status, _ := get(tok)
			return status == 401
		})
		t.Logf("refused through the cache %v after the touch (bound N + 1 s = %v)", time.Since(touched).Round(time.Millisecond), n+time.Second)
	})
}
