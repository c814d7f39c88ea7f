package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/examples/internal/pgtest"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/session"
)

// bin holds amarettid, api-service and webfront, built once.
var bin string

// pg is the PostgreSQL server of the tests that run on it, started by the
// first of them.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	dir, err := testproc.Build("../../cmd/amarettid", "../api-service", ".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	pg.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// backends are the stores the flows that touch the store are tested on:
// SQLite with a key directory, and PostgreSQL (as a role with a password)
// with the root keys in it, sealed with a key-encryption key.
var backends = []string{"sqlite", "postgres"}

// syncBuffer is a log sink the handlers and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// deployment is one store and key directory, a real amarettid on it, and
// the frontend's handler in process.
type deployment struct {
	dir    string
	env    []string
	store  epoch.Store
	keys   *macaroon.KeyStore
	daemon *testproc.Process
	// service is the frontend's service token (admin:logins).
	service string
	app     *app
	srv     *httptest.Server
	logs    *syncBuffer
	// secrets are every token the test saw, none of which may be logged.
	secrets []string
}

// newDeployment starts amarettid and the frontend on SQLite, both under
// the given lifetime policy (default apitoken.DefaultPolicy()).
func newDeployment(t *testing.T, policy ...apitoken.Policy) *deployment {
	t.Helper()
	return newDeploymentOn(t, "sqlite", policy...)
}

// newDeploymentOn starts amarettid and the frontend on one of backends.
func newDeploymentOn(t *testing.T, backend string, policy ...apitoken.Policy) *deployment {
	t.Helper()
	pol := apitoken.DefaultPolicy()
	if len(policy) > 0 {
		pol = policy[0]
	}
	ctx := context.Background()
	d := &deployment{dir: t.TempDir(), logs: &syncBuffer{}}
	// The frontend reads the key directory amarettid verifies with; only
	// amarettid (and the test) open the store.
	keyOpts := setup.KeyOptions{Keys: filepath.Join(d.dir, "keys"), DB: filepath.Join(d.dir, "amaretti.db")}
	if backend == "postgres" {
		keyOpts.DB = pg.Database(t)
		d.secrets = append(d.secrets, pgtest.Password)
	}
	d.env = []string{"PATH=" + os.Getenv("PATH"), "AMARETTI_DB=" + keyOpts.DB, "AMARETTI_KEYS=" + keyOpts.Keys}
	var err error
	if d.store, err = setup.Store(ctx, keyOpts.DB, setup.StoreOptions{Create: true, ReadTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.store.Close() })
	if d.keys, _, err = setup.InitKeys(ctx, keyOpts, d.store); err != nil {
		t.Fatal(err)
	}
	addr := testproc.FreeAddr(t)
	// Last uses (and the rotations they end) are written every 100 ms, so
	// that the page shows them within a test.
	d.daemon = testproc.Start(t, d.dir, filepath.Join(bin, "amarettid"), addr, "/healthz", []string{"--listen", addr, "--last-use-interval", "100ms", "--store-timeout", "5s",
		"--max-api-token-lifetime", pol.MaxAPI.String(), fmt.Sprintf("--allow-no-expiry=%t", pol.AllowNoExpiry)}, d.env)
	minter, _ := macaroon.NewMinter(d.keys, "")
	d.service = serviceToken(t, d.store, minter)
	d.secrets = append(d.secrets, d.service)
	// The frontend answers the Host names run gives a dev login on
	// loopback: its address, and the loopback names with its port.
	d.srv = httptest.NewUnstartedServer(nil)
	front := d.srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(front)
	a, h, err := newApp(config{Minter: minter, DaemonURL: d.daemon.URL, ServiceToken: d.service,
		DevLogin: true, SessionTTL: time.Hour, Policy: pol, AllowedHosts: allowedHosts(&url.URL{Scheme: "http", Host: front}, port, true),
		Log: slog.New(slog.NewJSONHandler(d.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d.app = a
	d.srv.Config.Handler = h
	d.srv.Start()
	t.Cleanup(d.srv.Close)
	t.Cleanup(func() {
		for _, s := range d.secrets {
			if strings.Contains(d.logs.String(), s) {
				t.Error("a token or password reached the frontend's log")
			}
			if strings.Contains(d.daemon.Log(), s) {
				t.Error("a token or password reached amarettid's log")
			}
		}
	})
	return d
}

// serviceToken makes the frontend's service editor (an admin) in the store
// and mints its token limited to admin:logins, as an operator does with
// "amaretti editor create webfront --role admin" and "amaretti token mint
// ID --right admin:logins".
func serviceToken(t *testing.T, store epoch.Store, minter *macaroon.Minter) string {
	t.Helper()
	ctx := context.Background()
	e, err := store.EditorByUsername(ctx, "webfront")
	if err != nil {
		if e, err = store.Create(ctx, epoch.NewEditor{Username: "webfront", Role: epoch.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Millisecond) // the token is created after the editor's epoch
	m, err := minter.Mint(ctx, e.ID, macaroon.WithCaveats(caveat.Rights{"admin:logins"}))
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

// eventually waits up to 10 s for cond, polling: for an outcome that
// arrives within a documented bound, not for readiness.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type answer struct {
	status   int
	location string
	body     string
	cookies  []*http.Cookie
	header   http.Header
}

// cookie returns the answer's Set-Cookie of that name.
func (a answer) cookie(name string) *http.Cookie {
	for _, c := range a.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// do sends a request as a browser on this site would: same-origin, with
// the session cookie (when not empty). headers override ("Host" sets the
// request's Host).
func (d *deployment) do(t *testing.T, method, path, sessionToken string, form url.Values, headers ...string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, d.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", d.srv.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	if sessionToken != "" {
		req.AddCookie(&http.Cookie{Name: session.DefaultName, Value: sessionToken})
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b), cookies: resp.Cookies(), header: resp.Header}
}

// login logs in with the development provider and returns the session
// token from the cookie.
func (d *deployment) login(t *testing.T, username string) string {
	t.Helper()
	a := d.do(t, "POST", "/login/dev", "", url.Values{"username": {username}})
	c := a.cookie(session.DefaultName)
	if a.status != http.StatusSeeOther || a.location != "/" || c == nil || c.Value == "" {
		t.Fatalf("login as %s: %d %s %v", username, a.status, a.location, a.cookies)
	}
	d.secrets = append(d.secrets, c.Value)
	time.Sleep(time.Millisecond) // separate creation times for separate sessions
	return c.Value
}

// loggedIn reports whether the frontend accepts a session token.
func (d *deployment) loggedIn(t *testing.T, tok string) bool {
	t.Helper()
	a := d.do(t, "GET", "/", tok, nil)
	switch {
	case a.status == http.StatusOK:
		return true
	case a.status == http.StatusSeeOther && strings.HasPrefix(a.location, "/login"):
		return false
	}
	t.Fatalf("home: %d %s", a.status, a.body)
	return false
}

// daemonStatus asks amarettid whether it accepts a token.
func (d *deployment) daemonStatus(t *testing.T, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", d.daemon.URL+"/v1/verify", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSessionCookie(t *testing.T) {
	d := newDeployment(t)
	for _, tc := range []struct {
		name       string
		headers    []string
		wantSecure bool
	}{
		{"plain http", nil, false},
		{"TLS at a proxy", []string{"X-Forwarded-Proto", "https"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := d.do(t, "POST", "/login/dev", "", url.Values{"username": {"Alice"}}, tc.headers...)
			c := a.cookie(session.DefaultName)
			if c == nil {
				t.Fatalf("no session cookie: %d %v", a.status, a.cookies)
			}
			d.secrets = append(d.secrets, c.Value)
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tc.wantSecure {
				t.Errorf("cookie flags: HttpOnly=%v SameSite=%v Path=%q Secure=%v", c.HttpOnly, c.SameSite, c.Path, c.Secure)
			}
			if c.MaxAge < 3590 || c.MaxAge > 3600 {
				t.Errorf("Max-Age %d, want the session's hour", c.MaxAge)
			}
			// The cookie is a macaroon naming the user, which the
			// daemon accepts like any other token.
			tok, err := macaroon.Parse(c.Value, macaroon.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			// A session, marked as one in the minter's part of the chain
			// (before the creation time, which is last).
			if cavs := strings.Join(tok.Caveats(), "|"); !strings.Contains(cavs, "username = Alice|kind = session|") || !strings.HasPrefix(tok.Caveats()[tok.NumCaveats()-1], "time > ") {
				t.Errorf("caveats %s", cavs)
			}
			if d.daemonStatus(t, c.Value) != 200 {
				t.Error("amarettid refuses the session token")
			}
		})
	}

	tok := d.login(t, "Alice")
	if a := d.do(t, "GET", "/", tok, nil); a.status != 200 || !strings.Contains(a.body, "<strong>Alice</strong>") || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("home: %d %s", a.status, a.body)
	}
	// Pages take the username from the token, not from the database: a
	// rename there does not show until the next login.
	e, _, _ := d.store.Login(context.Background(), devProvider, "alice", "")
	raw, err := sql.Open("sqlite3", filepath.Join(d.dir, "amaretti.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("UPDATE editors SET username = 'renamed' WHERE id = ?", e.ID); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if a := d.do(t, "GET", "/", tok, nil); !strings.Contains(a.body, "<strong>Alice</strong>") {
			t.Fatalf("home after rename: %s", a.body)
		}
	}

	t.Run("log out clears the cookie", func(t *testing.T) {
		a := d.do(t, "POST", "/logout", tok, nil)
		c := a.cookie(session.DefaultName)
		if a.status != 303 || a.location != "/login?m=out" || c == nil || c.MaxAge >= 0 || c.Value != "" {
			t.Fatalf("logout: %d %s %v", a.status, a.location, a.cookies)
		}
		if page := d.do(t, "GET", "/login?m=out", "", nil); !strings.Contains(page.body, "You are logged out.") {
			t.Error("no notice after logout")
		}
	})
	t.Run("no or bad cookie", func(t *testing.T) {
		if a := d.do(t, "GET", "/tokens", "", nil); a.status != 303 || a.location != "/login" {
			t.Errorf("no cookie: %d %s", a.status, a.location)
		}
		a := d.do(t, "GET", "/", "garbage", nil)
		if c := a.cookie(session.DefaultName); a.status != 303 || a.location != "/login?m=ended" || c == nil || c.MaxAge >= 0 {
			t.Errorf("bad cookie: %d %s %v", a.status, a.location, a.cookies)
		}
	})
}

func TestDevLogin(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testDevLogin(t, newDeploymentOn(t, b)) })
	}
}

func testDevLogin(t *testing.T, d *deployment) {
	for _, tc := range []struct {
		name     string
		username string
		status   int
		want     string
	}{
		{"empty", "", 400, "A username is"},
		{"space", "a b", 400, "A username is"},
		{"markup", "<script>", 400, "A username is"},
		{"too long", strings.Repeat("a", 65), 400, "A username is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := d.do(t, "POST", "/login/dev", "", url.Values{"username": {tc.username}})
			if a.status != tc.status || !strings.Contains(a.body, tc.want) || a.cookie(session.DefaultName) != nil {
				t.Fatalf("%d %s", a.status, a.body)
			}
		})
	}
	t.Run("one editor per name, whatever the case", func(t *testing.T) {
		d.login(t, "bob")
		d.login(t, "BOB")
		links, _ := d.store.List(context.Background())
		links = slices.DeleteFunc(links, func(e epoch.Editor) bool { return e.Username == "webfront" }) // the service editor
		if len(links) != 1 || links[0].Username != "bob" {
			t.Fatalf("editors %+v", links)
		}
	})
	t.Run("locked", func(t *testing.T) {
		tok := d.login(t, "carol")
		e, _, _ := d.store.Login(context.Background(), devProvider, "carol", "")
		if _, err := d.store.Lock(context.Background(), e.ID); err != nil {
			t.Fatal(err)
		}
		a := d.do(t, "POST", "/login/dev", "", url.Values{"username": {"carol"}})
		if a.status != 403 || !strings.Contains(a.body, "locked") || a.cookie(session.DefaultName) != nil {
			t.Fatalf("locked login: %d %s", a.status, a.body)
		}
		// amarettid reads the lock from the store's change log within
		// its --poll (1 s), and the frontend asks amarettid.
		eventually(t, "the locked editor's session refused", func() bool { return !d.loggedIn(t, tok) })
	})
	t.Run("off", func(t *testing.T) {
		d.app.dev = false
		defer func() { d.app.dev = true }()
		if a := d.do(t, "POST", "/login/dev", "", url.Values{"username": {"dave"}}); a.status != 404 {
			t.Fatalf("dev login while off: %d", a.status)
		}
		if a := d.do(t, "GET", "/login", "", nil); strings.Contains(a.body, "Development login") || !strings.Contains(a.body, "No login provider") {
			t.Fatalf("login page while off: %s", a.body)
		}
	})
	t.Run("labelled", func(t *testing.T) {
		if a := d.do(t, "GET", "/login", "", nil); !strings.Contains(a.body, "Development login") || !strings.Contains(a.body, "For local development only") {
			t.Fatalf("login page: %s", a.body)
		}
	})
}

func TestRunRefuses(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		o    options
		want string
	}{
		{"dev login on every interface", options{listen: "0.0.0.0:8082", dev: true, sessionTTL: time.Hour}, "loopback"},
		{"dev login on a public name", options{listen: "example.org:8082", dev: true, sessionTTL: time.Hour}, "loopback"},
		{"no provider", options{listen: "127.0.0.1:0", sessionTTL: time.Hour}, "no login provider"},
		{"no session lifetime", options{listen: "127.0.0.1:0", dev: true}, "session-ttl"},
		{"every interface, no public URL", options{listen: ":8082", issuer: "https://id.example", sessionTTL: time.Hour}, "set --public-url"},
		{"0.0.0.0, no public URL", options{listen: "0.0.0.0:8082", issuer: "https://id.example", sessionTTL: time.Hour}, "set --public-url"},
		{"[::], no public URL", options{listen: "[::]:8082", issuer: "https://id.example", sessionTTL: time.Hour}, "set --public-url"},
		{"public URL not HTTP", options{listen: "0.0.0.0:8082", publicURL: "ftp://front.example", issuer: "https://id.example", sessionTTL: time.Hour}, "--public-url"},
		{"daemon not HTTP", options{listen: "127.0.0.1:0", dev: true, sessionTTL: time.Hour, withDaemon: true, daemon: "https://127.0.0.1:8080"}, "--with-daemon needs --daemon to be http://HOST:PORT"},
		{"daemon on another host", options{listen: "127.0.0.1:0", dev: true, sessionTTL: time.Hour, withDaemon: true, daemon: "http://auth.example:8080"}, "must be a loopback address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(tc.o, discard); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run: %v, want %q", err, tc.want)
			}
		})
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, ":1": false, "10.0.0.1:1": false, "bad": false} {
		if loopback(addr) != want {
			t.Errorf("loopback(%q) = %v", addr, !want)
		}
	}
}

// TestCrossOrigin: every state-changing form refuses a request another site
// makes the browser send, and has no effect.
func TestCrossOrigin(t *testing.T) {
	d := newDeployment(t)
	tok := d.login(t, "alice")
	created := d.do(t, "POST", "/tokens", tok, url.Values{"name": {"keep"}, "expires_in": {"720h"}})
	id := regexp.MustCompile(`data-token-id="([0-9A-F-]{36})"`).FindStringSubmatch(created.body)
	if created.status != 201 || id == nil {
		t.Fatalf("create: %d", created.status)
	}
	attacks := map[string][]string{
		"Origin of another site":       {"Origin", "https://evil.example", "Sec-Fetch-Site", ""},
		"Sec-Fetch-Site cross-site":    {"Sec-Fetch-Site", "cross-site", "Origin", ""},
		"Sec-Fetch-Site same-site":     {"Sec-Fetch-Site", "same-site", "Origin", "http://sub." + strings.TrimPrefix(d.srv.URL, "http://")},
		"Origin null (sandboxed page)": {"Origin", "null", "Sec-Fetch-Site", ""},
	}
	forms := []struct {
		path string
		form url.Values
	}{
		{"/logout/everywhere", nil},
		{"/tokens", url.Values{"name": {"evil"}, "expires_in": {"720h"}}},
		{"/tokens/" + id[1] + "/revoke", nil},
		{"/logout", nil},
		{"/login/dev", url.Values{"username": {"mallory"}}},
	}
	for name, headers := range attacks {
		for _, f := range forms {
			t.Run(name+" "+f.path, func(t *testing.T) {
				a := d.do(t, "POST", f.path, tok, f.form, headers...)
				if a.status != http.StatusForbidden || !strings.Contains(a.body, "sent from another site") || len(a.cookies) != 0 {
					t.Fatalf("%d %v %s", a.status, a.cookies, a.body)
				}
			})
		}
	}
	// Nothing happened: the session, the token and no new ones.
	if !d.loggedIn(t, tok) {
		t.Fatal("a cross-origin request logged the user out")
	}
	list := d.do(t, "GET", "/tokens", tok, nil)
	if !strings.Contains(list.body, ">keep<") || strings.Contains(list.body, ">evil<") || strings.Contains(list.body, "revoked") {
		t.Fatalf("tokens after the attacks: %s", list.body)
	}
	if _, err := d.store.EditorByUsername(context.Background(), "mallory"); err == nil {
		t.Fatal("a cross-origin login created an editor")
	}
	if !strings.Contains(d.logs.String(), "cross-origin request refused") {
		t.Error("refusals are not logged")
	}
	// Requests without browser headers (curl, scripts) are not CSRF and pass.
	if a := d.do(t, "POST", "/logout", tok, nil, "Origin", "", "Sec-Fetch-Site", ""); a.status != 303 {
		t.Errorf("non-browser logout: %d", a.status)
	}
}

// TestLogoutEverywhere: through amarettid, it revokes every older session
// and API token of the user — in this frontend at once, in the daemon at
// once — and leaves other users alone. When the daemon cannot do it, the
// user is told and stays logged in.
func TestLogoutEverywhere(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testLogoutEverywhere(t, newDeploymentOn(t, b)) })
	}
}

func testLogoutEverywhere(t *testing.T, d *deployment) {
	older := d.login(t, "alice")
	bob := d.login(t, "bob")
	created := d.do(t, "POST", "/tokens", older, url.Values{"name": {"laptop"}, "expires_in": {"8760h"}})
	secret := regexp.MustCompile(`id="new-token" readonly value="([A-Za-z0-9_-]+)"`).FindStringSubmatch(created.body)
	if created.status != 201 || secret == nil {
		t.Fatalf("create: %d", created.status)
	}
	d.secrets = append(d.secrets, secret[1])
	current := d.login(t, "alice")
	for _, tok := range []string{older, current, bob} {
		if !d.loggedIn(t, tok) {
			t.Fatal("a session before log out everywhere")
		}
	}
	if d.daemonStatus(t, secret[1]) != 200 {
		t.Fatal("the API token before log out everywhere")
	}

	t.Run("daemon down", func(t *testing.T) {
		saved := d.app.daemon
		d.app.daemon = newDaemonClient("http://"+testproc.FreeAddr(t), d.service)
		defer func() { d.app.daemon = saved }()
		// Nothing can be checked: the user is told, and keeps the cookie.
		a := d.do(t, "POST", "/logout/everywhere", current, nil)
		if a.status != 503 || !strings.Contains(a.body, "cannot be checked") || a.cookie(session.DefaultName) != nil {
			t.Fatalf("%d %v %s", a.status, a.cookies, a.body)
		}
	})
	t.Run("touch fails", func(t *testing.T) {
		// amarettid verifies, but the touch does not go through (a proxy
		// in front of the real amarettid fails that one path).
		target, _ := url.Parse(d.daemon.URL)
		rp := httputil.NewSingleHostReverseProxy(target)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/me/touch" {
				http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		defer proxy.Close()
		saved := d.app.daemon
		d.app.daemon = newDaemonClient(proxy.URL, d.service)
		defer func() { d.app.daemon = saved }()
		a := d.do(t, "POST", "/logout/everywhere", current, nil)
		if a.status != 503 || !strings.Contains(a.body, "still valid") || a.cookie(session.DefaultName) != nil {
			t.Fatalf("%d %v %s", a.status, a.cookies, a.body)
		}
		if !d.loggedIn(t, older) {
			t.Fatal("sessions ended although the touch failed")
		}
	})

	a := d.do(t, "POST", "/logout/everywhere", current, nil)
	if c := a.cookie(session.DefaultName); a.status != 303 || a.location != "/login?m=everywhere" || c == nil || c.MaxAge >= 0 {
		t.Fatalf("log out everywhere: %d %s %v", a.status, a.location, a.cookies)
	}
	for name, tok := range map[string]string{"older session": older, "current session": current} {
		if d.loggedIn(t, tok) {
			t.Errorf("%s still accepted by the frontend", name)
		}
		if d.daemonStatus(t, tok) != 401 {
			t.Errorf("%s still accepted by amarettid", name)
		}
	}
	if d.daemonStatus(t, secret[1]) != 401 {
		t.Error("the API token survived log out everywhere")
	}
	if !d.loggedIn(t, bob) || d.daemonStatus(t, bob) != 200 {
		t.Error("another user's session ended")
	}
	if page := d.do(t, "GET", "/login?m=everywhere", "", nil); !strings.Contains(page.body, "logged out everywhere") {
		t.Error("no notice after log out everywhere")
	}
	// A new login works at once.
	if again := d.login(t, "alice"); !d.loggedIn(t, again) {
		t.Error("logging in again after log out everywhere")
	}
}

func TestTokensPage(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testTokensPage(t, newDeploymentOn(t, b)) })
	}
}

func testTokensPage(t *testing.T, d *deployment) {
	tok := d.login(t, "alice")
	secretRe := regexp.MustCompile(`id="new-token" readonly value="([A-Za-z0-9_-]+)"`)
	create := func(t *testing.T, form url.Values) (answer, string) {
		t.Helper()
		a := d.do(t, "POST", "/tokens", tok, form)
		if m := secretRe.FindStringSubmatch(a.body); m != nil {
			d.secrets = append(d.secrets, m[1])
			return a, m[1]
		}
		return a, ""
	}

	soon, soonSecret := create(t, url.Values{"name": {"ci"}, "description": {"the CI job"}, "rights": {"read, edit"}, "expires_in": {"168h"}})
	if soon.status != 201 || soonSecret == "" || !strings.Contains(soon.body, "only time it is shown") || !strings.Contains(soon.body, `data-copy="new-token"`) {
		t.Fatalf("create: %d %s", soon.status, soon.body)
	}
	if soon.header.Get("Cache-Control") != "no-store" {
		t.Error("the page with the secret may be cached")
	}
	_, laterSecret := create(t, url.Values{"name": {"backup"}, "expires_in": {"720h"}})
	if laterSecret == "" {
		t.Fatal("second token")
	}
	if d.daemonStatus(t, soonSecret) != 200 {
		t.Fatal("the new token does not verify")
	}

	list := d.do(t, "GET", "/tokens", tok, nil)
	for _, want := range []string{">ci<", "the CI job", "edit, read", ">backup<", "all of yours", "Expiring soon", "<strong>ci</strong> expires in 7 days", "never"} {
		if !strings.Contains(list.body, want) {
			t.Errorf("tokens page lacks %q", want)
		}
	}
	if strings.Contains(list.body, soonSecret) || strings.Contains(list.body, laterSecret) || strings.Contains(list.body, "new-token") {
		t.Error("the tokens page shows a secret again")
	}
	if strings.Contains(list.body, "<strong>backup</strong> expires") {
		t.Error("a token with 30 days left is flagged as expiring")
	}

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			form   url.Values
			status int
			want   string
		}{
			{"name taken", url.Values{"name": {"ci"}, "expires_in": {"720h"}}, 409, "already have a live token called ci"},
			{"no name", url.Values{"expires_in": {"720h"}}, 400, "The token was not created"},
			{"role forbids", url.Values{"name": {"x"}, "rights": {"admin:touch"}, "expires_in": {"720h"}}, 403, "The token was not created"},
			{"odd lifetime", url.Values{"name": {"x"}, "expires_in": {"1s"}}, 400, "offered lifetimes"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a, secret := create(t, tc.form)
				if a.status != tc.status || !strings.Contains(a.body, tc.want) || secret != "" {
					t.Fatalf("%d, want %d %q: %s", a.status, tc.status, tc.want, a.body)
				}
				if !strings.Contains(a.body, ">ci<") {
					t.Error("the list is missing from the error page")
				}
			})
		}
	})

	id := regexp.MustCompile(`data-token-id="([0-9A-F-]{36})" class="soon"`).FindStringSubmatch(list.body)
	if id == nil {
		t.Fatal("no row for ci")
	}
	t.Run("revoke someone else's", func(t *testing.T) {
		mallory := d.login(t, "mallory")
		if a := d.do(t, "POST", "/tokens/"+id[1]+"/revoke", mallory, nil); a.status != 404 || !strings.Contains(a.body, "no such token") {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if a := d.do(t, "POST", "/tokens/not-an-id/revoke", tok, nil); a.status != 404 {
			t.Fatalf("bad id: %d", a.status)
		}
	})
	a := d.do(t, "POST", "/tokens/"+id[1]+"/revoke", tok, nil)
	if a.status != 303 || a.location != "/tokens?m=revoked" {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	if d.daemonStatus(t, soonSecret) != 401 || d.daemonStatus(t, laterSecret) != 200 {
		t.Error("revoking one token: wrong tokens dead")
	}
	after := d.do(t, "GET", "/tokens?m=revoked", tok, nil)
	if !strings.Contains(after.body, "The token was revoked") || !regexp.MustCompile(`(?s)id="inactive".*>ci<.*revoked 20`).MatchString(after.body) {
		t.Errorf("tokens page after revoking: %s", after.body)
	}
	if again := d.do(t, "POST", "/tokens/"+id[1]+"/revoke", tok, nil); again.status != 409 || !strings.Contains(again.body, "already revoked") {
		t.Errorf("revoke twice: %d", again.status)
	}
}
