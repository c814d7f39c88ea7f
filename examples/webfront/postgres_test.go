package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/examples/internal/pgtest"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/session"
)

// TestConcurrentFirstLogins: first logins of one identity at once (two
// tabs, a double click; the dev login's subject is the lower-cased name)
// make one editor, on each store, and every login gets a session for it.
func TestConcurrentFirstLogins(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			d := newDeploymentOn(t, b)
			names := []string{"zoe", "Zoe", "ZOE", "zoE", "zoe", "ZoE", "zOe", "zOE"}
			tokens := make([]string, len(names))
			errs := make([]string, len(names))
			var wg sync.WaitGroup
			for i, name := range names {
				wg.Go(func() {
					req, _ := http.NewRequest("POST", d.srv.URL+"/login/dev", strings.NewReader(url.Values{"username": {name}}.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Origin", d.srv.URL)
					req.Header.Set("Sec-Fetch-Site", "same-origin")
					resp, err := noRedirects.Do(req)
					if err != nil {
						errs[i] = err.Error()
						return
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					for _, c := range resp.Cookies() {
						if c.Name == session.DefaultName && c.Value != "" {
							tokens[i] = c.Value
						}
					}
					if resp.StatusCode != http.StatusSeeOther || tokens[i] == "" {
						errs[i] = resp.Status + " " + string(body)
					}
				})
			}
			wg.Wait()
			for i, e := range errs {
				if e != "" {
					t.Fatalf("login %d as %s: %s", i, names[i], e)
				}
			}
			d.secrets = append(d.secrets, tokens...)
			editors, err := d.store.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			editors = slices.DeleteFunc(editors, func(e epoch.Editor) bool { return e.Username == "webfront" }) // the service editor
			if len(editors) != 1 || !strings.EqualFold(editors[0].Username, "zoe") {
				t.Fatalf("%d concurrent first logins made editors %+v, want one", len(names), editors)
			}
			linked, err := d.store.LinkedEditor(context.Background(), devProvider, "zoe")
			if err != nil || linked.ID != editors[0].ID {
				t.Fatalf("the identity is linked to %+v (%v), want %s", linked, err, editors[0].ID)
			}
			for i, tok := range tokens {
				if !d.loggedIn(t, tok) || d.daemonStatus(t, tok) != 200 {
					t.Errorf("session %d is refused", i)
				}
			}
		})
	}
}

// TestWithDaemonPostgres runs "webfront --dev-login --with-daemon" as the
// README does, with one change: AMARETTI_DB is a postgres:// URL (a role
// with a password), which only amarettid opens. The two work together (a
// dev login, the tokens page through amarettid); the password is on no
// command line and in no log; a log out everywhere made by another host
// through the same database ends the frontend's sessions (it asks
// amarettid, which follows the change log); a key rotation in the key
// directory reaches both after SIGHUP.
func TestWithDaemonPostgres(t *testing.T) {
	ctx := context.Background()
	db := pg.Database(t)
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	// The other host: "amaretti init" on the same database.
	store, err := setup.Store(ctx, db, setup.StoreOptions{ReadTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, _, err := macaroon.InitKeyStore(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := keys.Current()
	minter, _ := macaroon.NewMinter(keys, "")
	service := serviceToken(t, store, minter)
	tokenFile := filepath.Join(dir, "webfront.token")
	if err := os.WriteFile(tokenFile, []byte(service), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "AMARETTI_DB=" + db, "AMARETTI_KEYS=" + keyDir, "WEBFRONT_SERVICE_TOKEN_FILE=" + tokenFile, "AMARETTI_POLL=1s"}
	front, daemon := testproc.FreeAddr(t), testproc.FreeAddr(t)
	s := startStack(t, dir, env, front, daemon)
	s.waitReady(t, front, daemon)
	base := "http://" + front
	do := func(method, path, cookie string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if method != "GET" {
			req.Header.Set("Origin", base)
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: session.DefaultName, Value: cookie})
		}
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	login := func(name string) (string, *macaroon.Token) {
		t.Helper()
		resp, body := do("POST", "/login/dev", "", url.Values{"username": {name}})
		for _, c := range resp.Cookies() {
			if c.Name == session.DefaultName && c.Value != "" {
				m, err := macaroon.Parse(c.Value, macaroon.Limits{})
				if err != nil {
					t.Fatal(err)
				}
				return c.Value, m
			}
		}
		t.Fatalf("dev login: %s %s", resp.Status, body)
		return "", nil
	}
	loggedIn := func(tok string) bool {
		t.Helper()
		resp, body := do("GET", "/", tok, nil)
		switch {
		case resp.StatusCode == 200:
			return true
		case resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login"):
			return false
		}
		t.Fatalf("home: %s %s", resp.Status, body)
		return false
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: not after 10 s (poll 1 s)", what)
			}
			time.Sleep(10 * time.Millisecond) // polling for an outcome, not for readiness
		}
		t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
	}

	tok, m := login("alice")
	if m.KeyID() != first.ID() {
		t.Fatalf("session under key %s, want %s", m.KeyID(), first.ID())
	}
	created, body := do("POST", "/tokens", tok, url.Values{"name": {"laptop"}, "expires_in": {"720h"}})
	secret := regexp.MustCompile(`id="new-token" readonly value="([A-Za-z0-9_-]+)"`).FindStringSubmatch(body)
	if created.StatusCode != 201 || secret == nil {
		t.Fatalf("create a token through amarettid: %s", created.Status)
	}
	if list, body := do("GET", "/tokens", tok, nil); list.StatusCode != 200 || !strings.Contains(body, ">laptop<") {
		t.Fatalf("tokens page: %s", list.Status)
	}

	t.Run("log out everywhere on another host", func(t *testing.T) {
		alice, err := store.EditorByUsername(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Touch(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		eventually("the touch reached the frontend", func() bool { return !loggedIn(tok) })
	})
	t.Run("key rotation on another host", func(t *testing.T) {
		next, err := keys.RotateContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Both reload the directory on SIGHUP (and every 30 s): the
		// process group, as "kill -HUP -PGID" does.
		if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually("the frontend mints under the new key", func() bool {
			_, m := login("bob")
			return m.KeyID() == next.ID()
		})
		fresh, _ := login("carol")
		if !loggedIn(fresh) {
			t.Fatal("a session under the new key is refused")
		}
	})

	pid := s.daemonPID()
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cmdline), pgtest.Password) || strings.Contains(string(cmdline), "postgres://") {
		t.Errorf("amarettid's command line holds the database URL: %q", cmdline)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("webfront exit code %d:\n%s", code, s.log())
	}
	waitGone(t, pid)
	log := s.log()
	for _, secret := range []string{pgtest.Password, secret[1], tok, service} {
		if strings.Contains(log, secret) {
			t.Errorf("a password or token in the log:\n%s", log)
		}
	}
}
