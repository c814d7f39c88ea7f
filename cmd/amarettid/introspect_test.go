package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// writeClientFile writes an introspection client file with mode.
func writeClientFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clients")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// rfcClients holds the client of RFC 7662 §2.1's example (s6BhdRkqt3,
// gX1fBat3bV) and one whose id and secret need form-encoding.
const rfcClients = "# RFC 7662 §2.1\ns6BhdRkqt3:gX1fBat3bV\n\nrs+1:p@ss:w%rd\n"

func introspectFixture(t *testing.T, maxAge time.Duration) *fixture {
	t.Helper()
	clients, err := readIntrospectClients(writeClientFile(t, rfcClients, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureWith(t, func(s *server) { s.introspectClients = clients; s.authCacheMaxAge = maxAge })
}

// rfcBasic is RFC 7662 §2.1's Authorization header.
var rfcBasic = map[string][]string{"Authorization": {"Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"}}

func form(h map[string][]string) map[string][]string {
	return with(h, "Content-Type", "application/x-www-form-urlencoded")
}

// TestIntrospectCallers: the caller authenticates with Basic (RFC 6749
// §2.3.1's encoding or raw) or a service token holding admin:introspect;
// otherwise 401 (403 for a token without the right), whatever the token
// introspected.
func TestIntrospectCallers(t *testing.T) {
	f := introspectFixture(t, 0)
	tok := f.mint(t, f.alice.ID)
	body := "token=" + url.QueryEscape(tok)
	basic := func(id, secret string) map[string][]string {
		r, _ := http.NewRequest("POST", "/", nil)
		r.SetBasicAuth(id, secret)
		return map[string][]string{"Authorization": r.Header["Authorization"]}
	}
	for _, tc := range []struct {
		name   string
		h      map[string][]string
		status int
	}{
		{"RFC example client", rfcBasic, 200},
		{"Basic, form-encoded (RFC 6749 §2.3.1)", basic(url.QueryEscape("rs+1"), url.QueryEscape("p@ss:w%rd")), 200},
		{"Basic, raw", basic("rs+1", "p@ss:w%rd"), 200},
		{"admin token with admin:introspect", bearer(f.mint(t, f.admin.ID, caveat.Rights{"admin:introspect"})), 200},
		{"unrestricted admin token", bearer(f.mint(t, f.admin.ID)), 200},
		{"no credentials", nil, 401},
		{"wrong secret", basic("s6BhdRkqt3", "gX1fBat3bW"), 401},
		{"unknown client", basic("someone", "gX1fBat3bV"), 401},
		{"a secret of another client", basic("s6BhdRkqt3", "p@ss:w%rd"), 401},
		{"empty Basic", basic("", ""), 401},
		{"garbage Basic", map[string][]string{"Authorization": {"Basic !!!"}}, 401},
		{"two Authorization headers", map[string][]string{"Authorization": {rfcBasic["Authorization"][0], rfcBasic["Authorization"][0]}}, 401},
		{"garbage bearer", bearer("garbage"), 401},
		{"the token itself as the caller", bearer(tok), 403},
		{"admin token without the right", bearer(f.mint(t, f.admin.ID, caveat.Rights{"admin:touch"})), 403},
		{"admin token for another path", bearer(f.mint(t, f.admin.ID, caveat.PathPrefix("/v1/verify"))), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := f.do(t, call{"POST", "/v1/introspect", form(tc.h), body})
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, got, tc.status)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
			chal := resp.Header.Values("WWW-Authenticate")
			switch {
			case tc.status != 401:
			case tc.name == "garbage bearer": // RFC 6750's answer to a bad bearer token
				if len(chal) != 1 || !strings.HasPrefix(chal[0], `Bearer realm="amaretti", error="invalid_token"`) {
					t.Errorf("challenges %q", chal)
				}
			case len(chal) != 2 || !strings.HasPrefix(chal[0], `Basic realm="amaretti"`) || !strings.HasPrefix(chal[1], `Bearer realm="amaretti"`):
				t.Errorf("challenges %q", chal)
			}
			if tc.status != 200 && strings.Contains(got, `"active"`) {
				t.Errorf("an unauthenticated caller learnt about the token: %s", got)
			}
		})
	}
	t.Run("Basic refused without a client file", func(t *testing.T) {
		f := newFixture(t)
		resp, got := f.do(t, call{"POST", "/v1/introspect", form(rfcBasic), body})
		if resp.StatusCode != 401 || len(resp.Header.Values("WWW-Authenticate")) != 1 {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, got)
		}
	})
}

// TestIntrospectTokens: a valid token is active with its claims; anything
// else is exactly {"active":false}, 200 and no-store, with no reason — a
// token restricted to methods, paths or endpoints too, since the answer
// cannot carry the restriction to the resource server.
func TestIntrospectTokens(t *testing.T) {
	f := introspectFixture(t, 30*time.Second)
	now := time.Now()
	bob, _ := f.store.Create(t.Context(), epoch.NewEditor{Username: "bob"})
	time.Sleep(time.Millisecond)
	plain, err := f.minter.Mint(t.Context(), f.alice.ID, macaroon.WithUsername("alice"), macaroon.WithKind(caveat.KindSession))
	if err != nil {
		t.Fatal(err)
	}
	scoped, err := f.minter.Mint(t.Context(), f.alice.ID, macaroon.WithUsername("jdoe"),
		macaroon.WithCaveats(caveat.Rights{"read", "write", "dolphin"}, caveat.ExpiresAt(now.Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	expiring := f.mint(t, f.alice.ID, caveat.ExpiresAt(now.Add(5*time.Second)))
	expired := f.mint(t, f.alice.ID, caveat.ExpiresAt(now.Add(-time.Minute)))
	getOnly := f.mint(t, f.alice.ID, caveat.Methods{"GET"})
	pathOnly := f.mint(t, f.alice.ID, caveat.PathPrefix("/api"))
	bobs := f.mint(t, bob.ID)
	touched := bobs
	if resp, b := f.do(t, call{"POST", "/v1/admin/editors/" + bob.ID + "/touch", bearer(f.mint(t, f.admin.ID)), ""}); resp.StatusCode != 200 {
		t.Fatalf("touch: %d %s", resp.StatusCode, b)
	}
	tampered := plain.Token[:len(plain.Token)-2] + map[bool]string{true: "AA", false: "AB"}[!strings.HasSuffix(plain.Token, "AA")]

	for _, tc := range []struct {
		name, tok string
		want      map[string]any // nil: inactive
		cc        string
	}{
		{"plain", plain.Token, map[string]any{"active": true, "sub": f.alice.ID, "username": "alice", "scope": "*", "token_type": "Bearer", "amaretti_role": "editor", "amaretti_kind": "session", "jti": plain.TokenID}, "private, max-age=30"},
		{"rights and expiry (RFC 7662 §2.2's scope)", scoped.Token, map[string]any{"active": true, "sub": f.alice.ID, "username": "jdoe", "scope": "read write dolphin", "exp": float64(caveat.ExpiresAt(now.Add(time.Hour)).Time.Unix())}, "private, max-age=30"},
		{"expiring: max-age bounded by the lifetime", expiring, map[string]any{"active": true}, "private, max-age=4"},
		{"touched", touched, nil, ""},
		{"expired", expired, nil, ""},
		{"tampered", tampered, nil, ""},
		{"garbage", "mF_9.B5f-4.1JqM", nil, ""},
		{"method-restricted", getOnly, nil, ""},
		{"path-restricted", pathOnly, nil, ""},
		{"huge", strings.Repeat("A", 3000), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := f.do(t, call{"POST", "/v1/introspect", form(rfcBasic), "token=" + url.QueryEscape(tc.tok) + "&token_type_hint=access_token"})
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, got)
			}
			cc := resp.Header.Get("Cache-Control")
			if tc.want == nil {
				if got != `{"active":false}`+"\n" || cc != "no-store" {
					t.Fatalf("inactive: %q %q", got, cc)
				}
				return
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v (%s)", k, m[k], v, got)
				}
			}
			iat, _ := m["iat"].(float64)
			if jti, _ := m["jti"].(string); jti == "" || iat < float64(now.Add(-time.Minute).Unix()) || iat > float64(time.Now().Unix()) {
				t.Errorf("jti or iat: %s", got)
			}
			if tc.cc == "private, max-age=4" && cc != "private, max-age=4" && cc != "private, max-age=5" {
				t.Errorf("Cache-Control %q, want max-age 4 or 5", cc)
			} else if tc.cc != "private, max-age=4" && cc != tc.cc {
				t.Errorf("Cache-Control %q, want %q", cc, tc.cc)
			}
		})
	}
}

// TestIntrospectRFCExample sends RFC 7662 §2.1's request byte for byte
// (its token is not an amaretti token) and expects §2.2's inactive answer
// exactly; then the same request with a real token, whose answer has
// §2.2's members with their types.
func TestIntrospectRFCExample(t *testing.T) {
	f := introspectFixture(t, 0)
	exchange := func(token string) (string, string) {
		u, _ := url.Parse(f.srv.URL)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := "token=" + token + "&token_type_hint=access_token"
		req := "POST /v1/introspect HTTP/1.1\r\n" +
			"Host: server.example.com\r\n" +
			"Accept: application/json\r\n" +
			"Content-Type: application/x-www-form-urlencoded\r\n" +
			"Authorization: Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
			"Connection: close\r\n\r\n" + body
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status, string(b)
	}
	if status, body := exchange("mF_9.B5f-4.1JqM"); status != "200 OK" || body != `{"active":false}`+"\n" {
		t.Fatalf("RFC 7662 §2.1 example: %s %s, want §2.2's {\"active\": false}", status, body)
	}
	jdoe, err := f.minter.Mint(t.Context(), f.alice.ID, macaroon.WithUsername("jdoe"),
		macaroon.WithCaveats(caveat.Rights{"read", "write", "dolphin"}, caveat.ExpiresAt(time.Now().Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	status, body := exchange(url.QueryEscape(jdoe.Token))
	var m map[string]any
	if status != "200 OK" || json.Unmarshal([]byte(body), &m) != nil {
		t.Fatalf("%s %s", status, body)
	}
	// §2.2: "active" a boolean, "scope" a space-separated string,
	// "username", "sub", "jti", "token_type" strings, "exp" and "iat"
	// integers (seconds since the epoch).
	for k, kind := range map[string]string{"active": "bool", "scope": "string", "username": "string", "sub": "string", "jti": "string", "token_type": "string", "exp": "number", "iat": "number"} {
		switch v := m[k].(type) {
		case bool:
			if kind != "bool" || !v {
				t.Errorf("%s: %v", k, v)
			}
		case string:
			if kind != "string" || v == "" {
				t.Errorf("%s: %q", k, v)
			}
		case float64:
			if kind != "number" || v != float64(int64(v)) || v <= 0 {
				t.Errorf("%s: %v", k, v)
			}
		default:
			t.Errorf("%s missing or of the wrong type: %s", k, body)
		}
	}
	if m["scope"] != "read write dolphin" {
		t.Errorf("scope %v", m["scope"])
	}
}

// TestIntrospectRequests: a malformed request (not a form, no token, a
// parameter repeated, anything in the query) is 400 invalid_request —
// never a token read from the URL — and only POST is served.
func TestIntrospectRequests(t *testing.T) {
	f := introspectFixture(t, 0)
	tok := f.mint(t, f.alice.ID)
	q := url.QueryEscape(tok)
	for _, tc := range []struct {
		name, method, path, body string
		h                        map[string][]string
		status                   int
	}{
		{"good", "POST", "/v1/introspect", "token=" + q, form(rfcBasic), 200},
		{"unknown parameters ignored", "POST", "/v1/introspect", "token=" + q + "&resource=x", form(rfcBasic), 200},
		{"charset parameter", "POST", "/v1/introspect", "token=" + q, with(rfcBasic, "Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"), 200},
		{"no token", "POST", "/v1/introspect", "token_type_hint=access_token", form(rfcBasic), 400},
		{"empty token", "POST", "/v1/introspect", "token=", form(rfcBasic), 400},
		{"token twice", "POST", "/v1/introspect", "token=" + q + "&token=" + q, form(rfcBasic), 400},
		{"hint twice", "POST", "/v1/introspect", "token=" + q + "&token_type_hint=a&token_type_hint=b", form(rfcBasic), 400},
		{"token in the query", "POST", "/v1/introspect?token=" + q, "", form(rfcBasic), 400},
		{"JSON body", "POST", "/v1/introspect", `{"token":"` + tok + `"}`, with(rfcBasic, "Content-Type", "application/json"), 400},
		{"no content type", "POST", "/v1/introspect", "token=" + q, rfcBasic, 400},
		{"bad escape", "POST", "/v1/introspect", "token=%zz", form(rfcBasic), 400},
		{"over the size limit", "POST", "/v1/introspect", "token=" + strings.Repeat("A", 5000), form(rfcBasic), 400},
		{"GET", "GET", "/v1/introspect?token=" + q, "", rfcBasic, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := f.do(t, call{tc.method, tc.path, tc.h, tc.body})
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, got, tc.status)
			}
			if tc.status == 400 && (!strings.Contains(got, "invalid_request") || strings.Contains(got, tok)) {
				t.Errorf("body %s", got)
			}
		})
	}
	if leaks(f.logs.String(), tok) {
		t.Error("a token reached the log")
	}
}

// TestIntrospectStoreDown: when the store cannot answer, introspection is
// 503 with Retry-After — not {"active": false}, which a resource server
// could cache as the truth, and never active.
func TestIntrospectStoreDown(t *testing.T) {
	f := introspectFixture(t, 0)
	tok := f.mint(t, f.alice.ID) // never verified: not in the cache
	f.store.Close()
	resp, got := f.do(t, call{"POST", "/v1/introspect", form(rfcBasic), "token=" + url.QueryEscape(tok)})
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" || strings.Contains(got, "active") {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, got)
	}
}

// TestIntrospectClientFile: the client file must be 0600 (no group or
// other access), every line ID:SECRET with each id once; errors name the
// line, never a secret.
func TestIntrospectClientFile(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		err           error
		want          string // in the error
	}{
		{"group-readable", "a:secret-one\n", 0o640, errInsecureClientFile, "chmod 600"},
		{"world-readable", "a:secret-one\n", 0o644, errInsecureClientFile, "chmod 600"},
		{"no colon", "# c\nsecret-one\n", 0o600, errClientFile, "line 2"},
		{"empty id", ":secret-one\n", 0o600, errClientFile, "line 1"},
		{"empty secret", "a:\n", 0o600, errClientFile, "line 1"},
		{"id twice", "a:secret-one\nb:secret-two\na:secret-three\n", 0o600, errClientFile, "line 3"},
		{"no client", "# nobody\n\n", 0o600, errClientFile, "lists no client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readIntrospectClients(writeClientFile(t, tc.content, tc.mode))
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret-") {
				t.Fatalf("%v", err)
			}
		})
	}
	cs, err := readIntrospectClients(writeClientFile(t, "a:one\r\nb:two:with:colons\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, secret string
		ok         bool
	}{{"a", "one", true}, {"b", "two:with:colons", true}, {"a", "two:with:colons", false}, {"a", "one\r", false}, {"c", "one", false}} {
		if who, ok := cs.authenticate(tc.id, tc.secret); ok != tc.ok || ok && who != tc.id {
			t.Errorf("%s: %v %q", tc.id, ok, who)
		}
	}
	if _, err := readIntrospectClients(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, errClientFile) {
		t.Errorf("missing file: %v", err)
	}
}
