package main

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/session"
)

// TestHostAllowList (L4): a DNS rebinding page reaches the frontend under
// the attacker's host name, and its requests are same-origin in the
// browser's eyes (Origin and Host agree, Sec-Fetch-Site: same-origin), so
// cross-origin protection lets them pass. Only the configured Host values
// are answered: for a dev login on loopback, the loopback names with the
// listening port.
func TestHostAllowList(t *testing.T) {
	d := newDeployment(t)
	tok := d.login(t, "alice")
	created := d.do(t, "POST", "/tokens", tok, url.Values{"name": {"keep"}, "expires_in": {"720h"}})
	id := regexp.MustCompile(`data-token-id="([0-9A-F-]{36})"`).FindStringSubmatch(created.body)
	if created.status != 201 || id == nil {
		t.Fatalf("create: %d", created.status)
	}
	front := strings.TrimPrefix(d.srv.URL, "http://")
	_, port, _ := net.SplitHostPort(front)
	// as sends a request as a page served under host: its own origin.
	as := func(host string) []string {
		return []string{"Host", host, "Origin", "http://" + host, "Sec-Fetch-Site", "same-origin"}
	}
	forms := []struct {
		path string
		form url.Values
	}{
		{"/login/dev", url.Values{"username": {"mallory"}}},
		{"/tokens", url.Values{"name": {"evil"}, "expires_in": {"720h"}}},
		{"/tokens/" + id[1] + "/revoke", nil},
		{"/logout/everywhere", nil},
		{"/logout", nil},
	}
	longHost := strings.Repeat("a", 300) + ".example"
	for _, host := range []string{
		"attacker.example",
		"attacker.example:" + port,
		"127.0.0.1",          // no port
		"localhost",          // no port
		"[::1]",              // no port
		"127.0.0.1:1" + port, // another port
		"[::1]:1" + port,     // another port
		"localhost.:" + port, // a trailing dot is another name
		"127.0.0.2:" + port,  // loopback, but not a name we answer
		"[::ffff:127.0.0.1]:" + port,
		longHost,
	} {
		t.Run("refused "+clip(host, 30), func(t *testing.T) {
			for _, f := range forms {
				a := d.do(t, "POST", f.path, tok, f.form, as(host)...)
				if a.status != http.StatusMisdirectedRequest || !strings.Contains(a.body, "misdirected") || len(a.cookies) != 0 {
					t.Errorf("POST %s: %d, %d cookies", f.path, a.status, len(a.cookies))
				}
			}
			for _, path := range []string{"/", "/tokens", "/login", "/healthz", "/static/app.css"} {
				if a := d.do(t, "GET", path, tok, nil, as(host)...); a.status != http.StatusMisdirectedRequest {
					t.Errorf("GET %s: %d", path, a.status)
				}
			}
		})
	}
	t.Run("refused without a Host", func(t *testing.T) {
		// HTTP/1.0 may omit Host (HTTP/1.1 without one is a 400 of net/http).
		conn, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("GET /login HTTP/1.0\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("no Host: %d", resp.StatusCode)
		}
	})
	// Nothing happened: the session, the token, no new ones, no new editor.
	if !d.loggedIn(t, tok) {
		t.Fatal("a request under another Host logged the user out")
	}
	list := d.do(t, "GET", "/tokens", tok, nil)
	if !strings.Contains(list.body, ">keep<") || strings.Contains(list.body, ">evil<") || strings.Contains(list.body, "revoked") {
		t.Fatalf("tokens after the attacks: %s", list.body)
	}
	if _, err := d.store.EditorByUsername(t.Context(), "mallory"); err == nil {
		t.Fatal("a request under another Host created an editor")
	}
	logs := d.logs.String()
	if !strings.Contains(logs, "request refused: unknown Host") || !strings.Contains(logs, `"host":"attacker.example"`) {
		t.Error("refusals are not logged with the host")
	}
	if strings.Contains(logs, longHost[:100]) {
		t.Error("a long Host value reached the log in full")
	}

	for _, host := range []string{front, "localhost:" + port, "LocalHost:" + port, "[::1]:" + port} {
		t.Run("answered "+host, func(t *testing.T) {
			if a := d.do(t, "GET", "/login", "", nil, as(host)...); a.status != 200 {
				t.Fatalf("login page: %d", a.status)
			}
			a := d.do(t, "POST", "/login/dev", "", url.Values{"username": {"bob"}}, as(host)...)
			c := a.cookie(session.DefaultName)
			if a.status != http.StatusSeeOther || c == nil {
				t.Fatalf("dev login: %d, %d cookies", a.status, len(a.cookies))
			}
			d.secrets = append(d.secrets, c.Value)
			if a := d.do(t, "POST", "/logout", c.Value, nil, as(host)...); a.status != http.StatusSeeOther {
				t.Fatalf("log out: %d", a.status)
			}
		})
	}
	// The Host check comes before cross-origin protection, which still
	// refuses another origin under an answered Host.
	if a := d.do(t, "POST", "/logout", tok, nil, "Host", "localhost:"+port, "Origin", "http://attacker.example", "Sec-Fetch-Site", ""); a.status != http.StatusForbidden {
		t.Fatalf("cross-origin under an answered Host: %d", a.status)
	}
}

func TestAllowedHosts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		public  string
		port    string
		local   bool
		want    []string
		notWant []string
	}{
		{"dev login on 127.0.0.1", "http://127.0.0.1:8082", "8082", true,
			[]string{"127.0.0.1:8082", "localhost:8082", "[::1]:8082"},
			[]string{"127.0.0.1", "localhost", "[::1]", "localhost:8080", "0.0.0.0:8082"}},
		{"IPv6 loopback listener", "http://[::1]:8082", "8082", true,
			[]string{"[::1]:8082", "localhost:8082", "127.0.0.1:8082"},
			[]string{"::1:8082", "[::1]"}},
		{"public HTTPS name", "https://front.example", "8082", false,
			[]string{"front.example", "front.example:443"},
			[]string{"localhost:8082", "127.0.0.1:8082", "front.example:8082", "front.example:80"}},
		{"public name on its own port", "http://front.example:8000", "8082", false,
			[]string{"front.example:8000"},
			[]string{"front.example", "front.example:80"}},
		{"public name, proxy on loopback", "https://front.example", "8082", true,
			[]string{"front.example", "front.example:443", "localhost:8082", "127.0.0.1:8082", "[::1]:8082"},
			[]string{"localhost", "front.example:8082"}},
		{"loopback on port 80", "http://localhost", "80", true,
			[]string{"localhost", "localhost:80", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:80"},
			[]string{"localhost:8082"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.public)
			if err != nil {
				t.Fatal(err)
			}
			got := allowedHosts(u, tc.port, tc.local)
			for _, h := range tc.want {
				if !slices.Contains(got, h) {
					t.Errorf("%q not allowed: %q", h, got)
				}
			}
			for _, h := range tc.notWant {
				if slices.Contains(got, h) {
					t.Errorf("%q allowed: %q", h, got)
				}
			}
		})
	}
	if _, _, err := newApp(config{Log: slog.New(slog.DiscardHandler)}); !errors.Is(err, errNoAllowedHosts) {
		t.Errorf("newApp without allowed hosts: %v", err)
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"attacker.example", "attacker.example"},
		{"a\x00b\nc\u202e", "a?b?c???"},
		{strings.Repeat("x", 70), strings.Repeat("x", 64) + "..."},
		{strings.Repeat("x", 64), strings.Repeat("x", 64)},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := clip(tc.in, 64); got != tc.want {
				t.Errorf("clip(%q) = %q", tc.in, got)
			}
		})
	}
}
