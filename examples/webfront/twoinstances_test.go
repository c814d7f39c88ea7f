package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/session"
)

// frontProc is one webfront process, reached over HTTP as a browser would.
type frontProc struct {
	p    *testproc.Process
	base string
}

func (f frontProc) do(t *testing.T, method, path, cookie string, form url.Values) (int, string, string, *http.Cookie) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, f.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != "GET" {
		req.Header.Set("Origin", f.base)
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
	var c *http.Cookie
	for _, rc := range resp.Cookies() {
		if rc.Name == session.DefaultName {
			c = rc
		}
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b), c
}

func (f frontProc) login(t *testing.T, name string) string {
	t.Helper()
	status, _, body, c := f.do(t, "POST", "/login/dev", "", url.Values{"username": {name}})
	if status != http.StatusSeeOther || c == nil || c.Value == "" {
		t.Fatalf("login at %s: %d %s", f.base, status, body)
	}
	return c.Value
}

func (f frontProc) loggedInAs(t *testing.T, tok string) string {
	t.Helper()
	status, loc, body, _ := f.do(t, "GET", "/", tok, nil)
	switch {
	case status == http.StatusOK:
		m := regexp.MustCompile(`Signed in as <strong>([^<]+)</strong>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("home names nobody: %s", body)
		}
		return m[1]
	case status == http.StatusSeeOther && strings.HasPrefix(loc, "/login"):
		return ""
	}
	t.Fatalf("home at %s: %d %s", f.base, status, body)
	return ""
}

// TestTwoInstances: two webfront processes on different ports that share
// nothing but the key directory and one amarettid (neither opens the
// database) serve the same users: a session made at one works at the
// other, tokens made through one are listed by the other, and a log out
// everywhere at one ends the sessions at the other at once (both ask
// amarettid, which saw the touch).
func TestTwoInstances(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			d := newDeploymentOn(t, b)
			start := func() frontProc {
				addr := testproc.FreeAddr(t)
				env := []string{"PATH=" + os.Getenv("PATH"), "AMARETTI_KEYS=" + filepath.Join(d.dir, "keys"),
					"WEBFRONT_SERVICE_TOKEN=" + d.service, "WEBFRONT_DAEMON=" + d.daemon.URL,
					"AMARETTI_DB=/nonexistent/must-not-be-opened.db"}
				p := testproc.Start(t, t.TempDir(), filepath.Join(bin, "webfront"), addr, "/healthz", []string{"--dev-login", "--listen", addr}, env)
				return frontProc{p: p, base: "http://" + addr}
			}
			a, b := start(), start()

			tok := a.login(t, "alice")
			d.secrets = append(d.secrets, tok)
			if who := b.loggedInAs(t, tok); who != "alice" {
				t.Fatalf("the session made at A is %q at B", who)
			}
			// A first login at B of alice's identity reaches her editor.
			tokB := b.login(t, "ALICE")
			d.secrets = append(d.secrets, tokB)
			if who := a.loggedInAs(t, tokB); who != "alice" {
				t.Fatalf("the session made at B is %q at A", who)
			}
			status, _, body, _ := b.do(t, "POST", "/tokens", tokB, url.Values{"name": {"ci"}, "expires_in": {"720h"}})
			if status != http.StatusCreated {
				t.Fatalf("create a token at B: %d %s", status, body)
			}
			if m := regexp.MustCompile(`id="new-token" readonly value="([A-Za-z0-9_-]+)"`).FindStringSubmatch(body); m != nil {
				d.secrets = append(d.secrets, m[1])
			}
			if _, _, list, _ := a.do(t, "GET", "/tokens", tok, nil); !strings.Contains(list, ">ci<") {
				t.Fatal("the token made at B is not listed at A")
			}
			bob := a.login(t, "bob")
			d.secrets = append(d.secrets, bob)

			// Log out everywhere at B: A refuses both of alice's sessions
			// on its next request, with no wait.
			if status, loc, _, _ := b.do(t, "POST", "/logout/everywhere", tokB, nil); status != http.StatusSeeOther || loc != "/login?m=everywhere" {
				t.Fatalf("log out everywhere at B: %d %s", status, loc)
			}
			for name, s := range map[string]string{"made at A": tok, "made at B": tokB} {
				if who := a.loggedInAs(t, s); who != "" {
					t.Errorf("alice's session %s still works at A", name)
				}
				if who := b.loggedInAs(t, s); who != "" {
					t.Errorf("alice's session %s still works at B", name)
				}
			}
			if who := b.loggedInAs(t, bob); who != "bob" {
				t.Error("bob's session ended too")
			}
			// Neither frontend has the database open (on SQLite: no
			// descriptor names the file).
			for _, f := range []frontProc{a, b} {
				fds, _ := os.ReadDir("/proc/" + strconv.Itoa(f.p.Cmd.Process.Pid) + "/fd")
				for _, fd := range fds {
					target, _ := os.Readlink("/proc/" + strconv.Itoa(f.p.Cmd.Process.Pid) + "/fd/" + fd.Name())
					if strings.Contains(target, "amaretti.db") {
						t.Errorf("webfront %s has %s open", f.base, target)
					}
				}
				for _, s := range d.secrets {
					if strings.Contains(f.p.Log(), s) {
						t.Errorf("a token reached the log of %s", f.base)
					}
				}
			}
		})
	}
}
