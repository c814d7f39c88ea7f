package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
)

// TestVerifyStrictInput: /v1/verify refuses repeated and case-variant keys
// (encoding/json would match them case-insensitively, last wins), a context
// named both in the query and in the body, and query parameters it does not
// take (issue 10, L9 and "query+body").
func TestVerifyStrictInput(t *testing.T) {
	f := newFixture(t)
	readOnly := f.mint(t, f.alice.ID, caveat.Rights{"read"})
	other := f.mint(t, f.admin.ID)
	for _, tc := range []struct {
		name, path, body string
		h                map[string][]string
		want             int
		desc             string
	}{
		{"control: rights in the body", "/v1/verify", `{"token":"` + readOnly + `","rights":["read"]}`, nil, 200, ""},
		{"case-variant token key", "/v1/verify", `{"token":"` + readOnly + `","Token":"` + other + `"}`, nil, 400, "unknown field"},
		{"case-variant rights key", "/v1/verify", `{"token":"` + readOnly + `","rights":["edit"],"Rights":[]}`, nil, 400, "unknown field"},
		{"repeated key", "/v1/verify", `{"token":"` + readOnly + `","rights":["edit"],"rights":[]}`, nil, 400, "repeated"},
		{"kelvin-sign key encoding/json folds", "/v1/verify", `{"token":"` + readOnly + `","rights":["edit"],"rights\u212a":[]}`, nil, 400, "unknown field"},
		{"only a case variant", "/v1/verify", `{"TOKEN":"` + readOnly + `"}`, nil, 400, "unknown field"},
		{"array, not an object", "/v1/verify", `["` + readOnly + `"]`, nil, 400, "one JSON object"},
		{"trailing data", "/v1/verify", `{"token":"` + readOnly + `"} {}`, nil, 400, "after the JSON object"},
		{"wrong type names the field", "/v1/verify", `{"token":"` + readOnly + `","rights":"edit"}`, nil, 400, `field \"rights\" has the wrong type (want an array of strings)`},
		{"wrong element type", "/v1/verify", `{"token":"` + readOnly + `","rights":[12345]}`, nil, 400, `field \"rights\"`},
		{"wrong type of a string", "/v1/verify", `{"token":"` + readOnly + `","method":98765}`, nil, 400, `want a string`},
		{"syntax error", "/v1/verify", `{"token":`, nil, 400, "not valid JSON"},
		{"query and body", "/v1/verify?right=edit", `{"token":"` + readOnly + `"}`, nil, 400, "not both"},
		{"query and body, bearer", "/v1/verify?right=edit", `{"rights":["read"]}`, bearer(readOnly), 400, "not both"},
		{"control: query only", "/v1/verify?right=read", "", bearer(readOnly), 200, ""},
		{"control: query forbids", "/v1/verify?right=edit", "", bearer(readOnly), 403, ""},
		{"token in the query", "/v1/verify?token=" + readOnly, "", nil, 400, "unknown query parameter"},
		{"method twice in the query", "/v1/verify?method=GET&method=DELETE", "", bearer(readOnly), 400, "repeated"},
		{"unreadable query", "/v1/verify?right=%zz", "", bearer(readOnly), 400, "query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.body == "" {
				method = "GET"
			}
			resp, body := f.do(t, call{method, tc.path, tc.h, tc.body})
			if resp.StatusCode != tc.want || !strings.Contains(body, tc.desc) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, tc.want, tc.desc)
			}
			for _, v := range []string{"12345", "98765", `"edit"`} {
				if tc.want == 400 && strings.Contains(body, v) {
					t.Fatalf("the answer repeats a value: %s", body)
				}
			}
		})
	}
}

// TestTokenBodiesStrict: the token endpoints share the strict decoder, and
// a malformed right is 400, never 503 (issue 10: exchange of a malformed
// right).
func TestTokenBodiesStrict(t *testing.T) {
	f := newFixture(t)
	session := f.mint(t, f.alice.ID)
	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{"create: case-variant key", "/v1/tokens", `{"name":"a","Name":"b"}`, 400},
		{"create: repeated key", "/v1/tokens", `{"name":"a","name":"b"}`, 400},
		{"create: malformed right", "/v1/tokens", `{"name":"a","rights":["Not A Right"]}`, 400},
		{"create: name too long", "/v1/tokens", `{"name":"` + strings.Repeat("n", 65) + `"}`, 400},
		{"create: endpoint the grammar refuses", "/v1/tokens", `{"name":"a","endpoint":"no spaces allowed"}`, 400},
		{"create: rights of the wrong type", "/v1/tokens", `{"name":"a","rights":"read"}`, 400},
		{"exchange: malformed right", "/v1/tokens/exchange", `{"rights":["Not A Right"]}`, 400},
		{"exchange: repeated key", "/v1/tokens/exchange", `{"ttl":"5m","ttl":"1h"}`, 400},
		{"exchange: bad ttl", "/v1/tokens/exchange", `{"ttl":"soon"}`, 400},
		{"exchange: right the token lacks", "/v1/tokens/exchange", `{"rights":["admin:touch"]}`, 403},
		{"control: exchange", "/v1/tokens/exchange", `{"rights":["read"],"ttl":"5m"}`, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, call{"POST", tc.path, bearer(session), tc.body})
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want >= 400 && (strings.Contains(body, "Not A Right") || strings.Contains(body, "no spaces")) {
				t.Fatalf("the answer repeats a value: %s", body)
			}
		})
	}
	if strings.Contains(f.logs.String(), `"level":"ERROR"`) {
		t.Fatalf("an input error was logged as an error:\n%s", f.logs)
	}
}

// TestBearerThroughDaemon: "Bearer" and one or more spaces; "two tokens"
// only when two were sent (issue 11 §5).
func TestBearerThroughDaemon(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, f.alice.ID)
	for _, tc := range []struct {
		name string
		h    map[string][]string
		want int
		desc string
	}{
		{"two spaces", map[string][]string{"Authorization": {"Bearer  " + tok}}, 200, ""},
		{"a tab", map[string][]string{"Authorization": {"Bearer\t" + tok}}, 400, "one or more spaces and the token"},
		{"no token", map[string][]string{"Authorization": {"Bearer "}}, 400, "one or more spaces and the token"},
		{"two headers", map[string][]string{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, 400, "two tokens"},
		{"header and cookie", with(bearer(tok), "Cookie", "session="+tok), 400, "two tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, call{"GET", "/v1/verify", tc.h, ""})
			if resp.StatusCode != tc.want || !strings.Contains(body, tc.desc) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, tc.want, tc.desc)
			}
			if strings.Contains(tc.desc, "spaces") && strings.Contains(body, "two tokens") {
				t.Fatal("a malformed header is called two tokens")
			}
			want := tc.want
			if want == 400 {
				want = 401 // forward auth never answers 400
			}
			if resp, body := f.do(t, call{"GET", "/v1/auth", tc.h, ""}); resp.StatusCode != want {
				t.Fatalf("forward auth: %d %s, want %d", resp.StatusCode, body, want)
			}
		})
	}
}

// TestCrossEditorTokens: an admin token restricted to rights = tokens keeps
// to its own editor's tokens; admin:tokens (or no rights restriction) is
// needed to reach other editors' (issue 10, L2).
func TestCrossEditorTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.mint(t, f.alice.ID)
	resp, body := f.do(t, call{"POST", "/v1/tokens", bearer(alice), `{"name":"laptop","expires_in":"24h"}`})
	var created map[string]any
	json.Unmarshal([]byte(body), &created)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	id := created["token_id"].(string)
	tokensOnly := f.mint(t, f.admin.ID, caveat.Rights{"tokens"})
	withAdminTokens := f.mint(t, f.admin.ID, caveat.Rights{"tokens", "admin:tokens"})
	unrestricted := f.mint(t, f.admin.ID)
	for _, tc := range []struct {
		name, tok string
		list, all int
		expiring  int
	}{
		{"rights = tokens", tokensOnly, 403, 403, 0},
		{"rights = tokens, admin:tokens", withAdminTokens, 200, 200, 1},
		{"unrestricted admin", unrestricted, 200, 200, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, body := f.do(t, call{"GET", "/v1/tokens?editor_id=" + f.alice.ID, bearer(tc.tok), ""}); resp.StatusCode != tc.list {
				t.Fatalf("list alice's: %d %s, want %d", resp.StatusCode, body, tc.list)
			}
			if resp, body := f.do(t, call{"GET", "/v1/tokens?editor_id=*", bearer(tc.tok), ""}); resp.StatusCode != tc.all {
				t.Fatalf("list everyone's: %d %s, want %d", resp.StatusCode, body, tc.all)
			}
			resp, body := f.do(t, call{"GET", "/v1/tokens/expiring?within=48h", bearer(tc.tok), ""})
			if resp.StatusCode != 200 || strings.Count(body, `"token_id"`) != tc.expiring {
				t.Fatalf("expiring: %d %s, want %d rows", resp.StatusCode, body, tc.expiring)
			}
		})
	}
	if resp, _ := f.do(t, call{"DELETE", "/v1/tokens/" + id, bearer(tokensOnly), ""}); resp.StatusCode != 404 {
		t.Fatalf("a tokens-only admin token revoked alice's token: %d", resp.StatusCode)
	}
	if row, _ := f.store.Token(ctx, id); !row.Revoked.IsZero() {
		t.Fatal("alice's token was revoked")
	}
	if resp, body := f.do(t, call{"DELETE", "/v1/tokens/" + id, bearer(withAdminTokens), ""}); resp.StatusCode != 200 {
		t.Fatalf("admin:tokens revoking: %d %s", resp.StatusCode, body)
	}
}

// TestCookieCSRF: with --cookie, a cross-origin state-changing request
// carrying the admin's cookie is refused and changes nothing, as is a
// cookie-authenticated body that is not application/json (issue 10, L5).
func TestCookieCSRF(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	adminTok := f.mint(t, f.admin.ID)
	aliceTok := f.mint(t, f.alice.ID)
	cookie := "session=" + adminTok
	before, _ := f.store.Editor(ctx, f.alice.ID)
	for _, tc := range []struct {
		name string
		h    []string
		body string
		want int
	}{
		{"cross-origin text/plain form", []string{"Origin", "https://evil.example", "Content-Type", "text/plain"}, "x", 403},
		{"cross-site fetch metadata", []string{"Sec-Fetch-Site", "cross-site", "Content-Type", "text/plain"}, "", 403},
		{"same-site but cross-origin", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://other.example.org"}, "", 403},
		{"same origin, text/plain body", []string{"Sec-Fetch-Site", "same-origin", "Content-Type", "text/plain"}, "{}", 415},
		{"no browser headers, form body", []string{"Content-Type", "application/x-www-form-urlencoded"}, "a=b", 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, call{"POST", "/v1/admin/touch-all", headers(append([]string{"Cookie", cookie}, tc.h...)...), tc.body})
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
	if after, _ := f.store.Editor(ctx, f.alice.ID); after.Version != before.Version {
		t.Fatal("a refused request touched alice")
	}
	if resp, _ := f.do(t, call{"GET", "/v1/verify", bearer(aliceTok), ""}); resp.StatusCode != 200 {
		t.Fatal("alice was logged out")
	}
	// A bearer token is not a browser credential: no origin check.
	if resp, body := f.do(t, call{"POST", "/v1/me/touch", headers("Authorization", "Bearer "+aliceTok, "Origin", "https://evil.example"), ""}); resp.StatusCode != 200 {
		t.Fatalf("bearer request with an Origin: %d %s", resp.StatusCode, body)
	}
	// The same origin, as the daemon's own page would send it.
	if resp, body := f.do(t, call{"POST", "/v1/admin/touch-all", headers("Cookie", cookie, "Sec-Fetch-Site", "same-origin", "Content-Type", "application/json"), "{}"}); resp.StatusCode != 200 {
		t.Fatalf("same-origin JSON: %d %s", resp.StatusCode, body)
	}
}

// TestClientAddr: X-Real-IP and X-Forwarded-For are believed only from a
// trusted proxy, and only a valid IP is recorded (issue 10, L6).
func TestClientAddr(t *testing.T) {
	trusted, err := parseTrustedProxies("10.0.0.0/8, 192.0.2.1, ::ffff:172.16.0.0/108")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{trusted: trusted}
	for _, tc := range []struct {
		name, peer string
		h          []string
		want       string
	}{
		{"untrusted peer, X-Real-IP ignored", "203.0.113.9:5000", []string{"X-Real-IP", "198.51.100.1"}, "203.0.113.9"},
		{"untrusted peer, XFF ignored", "203.0.113.9:5000", []string{"X-Forwarded-For", "198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, X-Real-IP", "10.1.2.3:5000", []string{"X-Real-IP", "198.51.100.1"}, "198.51.100.1"},
		{"trusted single address", "192.0.2.1:5000", []string{"X-Real-IP", "198.51.100.1"}, "198.51.100.1"},
		{"trusted mapped prefix", "172.16.5.5:5000", []string{"X-Real-IP", "198.51.100.1"}, "198.51.100.1"},
		{"trusted peer, X-Real-IP with bidi control", "10.1.2.3:5000", []string{"X-Real-IP", "198.51.100.1\u202e"}, "10.1.2.3"},
		{"trusted peer, X-Real-IP text", "10.1.2.3:5000", []string{"X-Real-IP", "<script>"}, "10.1.2.3"},
		{"trusted peer, two X-Real-IP", "10.1.2.3:5000", []string{"X-Real-IP", "198.51.100.1", "X-Real-IP", "198.51.100.2"}, "10.1.2.3"},
		{"trusted peer, IPv6 X-Real-IP", "10.1.2.3:5000", []string{"X-Real-IP", "2001:db8::1"}, "2001:db8::1"},
		{"trusted peer, zoned IPv6", "10.1.2.3:5000", []string{"X-Real-IP", "fe80::1%eth0"}, "10.1.2.3"},
		{"XFF: nearest untrusted hop", "10.1.2.3:5000", []string{"X-Forwarded-For", "1.1.1.1, 198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"XFF over two headers", "10.1.2.3:5000", []string{"X-Forwarded-For", "1.1.1.1", "X-Forwarded-For", "198.51.100.8"}, "198.51.100.8"},
		{"XFF with garbage", "10.1.2.3:5000", []string{"X-Forwarded-For", "1.1.1.1, evil"}, "10.1.2.3"},
		{"XFF all trusted", "10.1.2.3:5000", []string{"X-Forwarded-For", "10.2.2.2"}, "10.1.2.3"},
		{"trusted peer, no header", "10.1.2.3:5000", nil, "10.1.2.3"},
		{"IPv6 peer", "[2001:db8::2]:5000", nil, "2001:db8::2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for i := 0; i+1 < len(tc.h); i += 2 {
				r.Header.Add(tc.h[i], tc.h[i+1])
			}
			if got := s.clientAddr(r); got != tc.want {
				t.Fatalf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"10.0.0.0/33", "example.org", "fe80::1%eth0", "10.0.0.1:80"} {
		if _, err := parseTrustedProxies(bad); err == nil {
			t.Errorf("--trusted-proxies %q accepted", bad)
		}
	}
	if p, err := parseTrustedProxies(""); err != nil || len(p) != 0 {
		t.Errorf("empty --trusted-proxies: %v %v", p, err)
	}
	if _, ok := parseIP("::ffff:10.1.1.1"); !ok {
		t.Error("mapped address refused")
	}
	_ = netip.Addr{}
}

// TestNothingEchoed: a real token sent in every position a client controls
// — JSON values and keys, query parameters, context headers, paths — never
// reaches a log line, nor a refusal's body or headers (issue 10, L7).
func TestNothingEchoed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret := f.mint(t, f.alice.ID) // the token that must not leak
	auth := f.mint(t, f.alice.ID, caveat.PathPrefix("/nowhere"), caveat.Rights{"tokens", "read"})
	adminAuth := f.mint(t, f.admin.ID, caveat.Rights{"tokens"})
	bob, _ := f.store.Create(ctx, epoch.NewEditor{Username: "bob", Role: epoch.RoleEditor})
	_ = bob
	time.Sleep(time.Millisecond)
	s := secret
	b := bearer(auth)
	calls := []call{
		{"POST", "/v1/verify", nil, `{"token":"` + auth + `","endpoint":"` + s + `"}`},
		{"POST", "/v1/verify", nil, `{"token":"` + auth + `","method":"` + s + `"}`},
		{"POST", "/v1/verify", nil, `{"token":"` + auth + `","path":"/` + s + `"}`},
		{"POST", "/v1/verify", nil, `{"token":"` + auth + `","rights":["` + s + `"]}`},
		{"POST", "/v1/verify", nil, `{"token":"` + auth + `","` + s + `":1}`},
		{"POST", "/v1/verify", nil, `{"` + s + `":"` + s + `"}`},
		{"POST", "/v1/verify", nil, `{"token":"` + auth + `","rights":{"` + s + `":1,"` + s + `":2}}`},
		{"POST", "/v1/verify", nil, `{"token":"` + auth + `","method":` + `["` + s + `"]}`},
		{"POST", "/v1/verify", nil, `{"token":"` + auth + `"} "` + s + `"`},
		{"POST", "/v1/verify?path=" + s, b, `{"path":"/x"}`},
		{"GET", "/v1/verify?" + s + "=1", b, ""},
		{"GET", "/v1/verify?path=/" + s, b, ""},
		{"GET", "/v1/verify?right=" + s, b, ""},
		{"GET", "/v1/verify?endpoint=" + s, b, ""},
		{"GET", "/v1/verify?method=" + s + "&method=" + s, b, ""},
		{"GET", "/v1/auth", with(b, "X-Original-URI", "/"+s), ""},
		{"GET", "/v1/auth", with(with(b, "X-Original-URI", "/"+s), "X-Forwarded-Uri", "/"+s), ""},
		{"GET", "/v1/auth/nginx", with(with(b, "X-Original-URI", "/x"), "X-Original-Method", s), ""},
		{"GET", "/v1/auth/nginx", with(b, "X-Original-URI", "/"+s+"%zz"), ""},
		{"GET", "/v1/auth/traefik", with(b, "X-Forwarded-Uri", "/"+s), ""},
		{"GET", "/v1/auth/envoy/" + s, b, ""},
		{"GET", "/v1/auth/" + s, b, ""},
		{"GET", "/v1/auth/envoy/x?_method=" + s, with(b, "X-HTTP-Method-Override", s), ""},
		{"GET", "/v1/auth", map[string][]string{"Authorization": {"Bearer " + s + " " + s}}, ""},
		{"GET", "/v1/auth", map[string][]string{"Authorization": {"Bearer " + s, "Bearer " + s}}, ""},
		{"GET", "/v1/verify", map[string][]string{"Authorization": {"Bearer\t" + s}}, ""},
		{"GET", "/v1/verify", with(b, "X-Real-IP", s), ""},
		{"POST", "/v1/tokens", b, `{"name":"` + s + `"}`},
		{"POST", "/v1/tokens", b, `{"name":"x","rights":["` + s + `"]}`},
		{"POST", "/v1/tokens", b, `{"name":"x","endpoint":"` + s + `"}`},
		{"POST", "/v1/tokens", b, `{"name":"x","expires_in":"` + s + `"}`},
		{"POST", "/v1/tokens", b, `{"` + s + `":"x"}`},
		{"POST", "/v1/tokens/exchange", b, `{"rights":["` + s + `"]}`},
		{"POST", "/v1/tokens/exchange", b, `{"ttl":"` + s + `"}`},
		{"POST", "/v1/tokens/exchange", b, `{"` + s + `":1}`},
		{"DELETE", "/v1/tokens/" + s, b, ""},
		{"GET", "/v1/tokens?editor_id=" + s, b, ""},
		{"GET", "/v1/tokens?editor_id=" + s, bearer(adminAuth), ""},
		{"GET", "/v1/tokens/expiring?within=" + s, b, ""},
		{"POST", "/v1/admin/editors/" + s + "/touch", bearer(f.mint(t, f.admin.ID)), ""},
		{"POST", "/v1/admin/editors/" + s + "/touch", b, ""},
		{"POST", "/v1/admin/touch-all", headers("Cookie", "session="+auth, "Origin", "https://"+strings.ToLower(s[:60])+".example", "Content-Type", "text/plain"), s},
	}
	for i, c := range calls {
		resp, body := f.do(t, c)
		if resp.StatusCode < 400 {
			t.Errorf("call %d (%s %s): %d, want a refusal", i, c.method, c.path[:min(len(c.path), 30)], resp.StatusCode)
		}
		if leaks(body, s) {
			t.Errorf("call %d (%s %s): the body repeats the token: %.200s", i, c.method, c.path[:min(len(c.path), 30)], body)
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if leaks(v, s) {
					t.Errorf("call %d: header %s repeats the token", i, k)
				}
			}
		}
	}
	logs := f.logs.String()
	if leaks(logs, s) {
		sc := bufio.NewScanner(strings.NewReader(logs))
		for sc.Scan() {
			if leaks(sc.Text(), s) {
				t.Errorf("a log line holds the token: %.300s", sc.Text())
			}
		}
	}
	if n := strings.Count(logs, "\n"); n < len(calls)/2 {
		t.Errorf("%d log lines for %d refusals: the test would not see a leak", n, len(calls))
	}
}

// leaks: text holds the token, or a 24-byte piece of it.
func leaks(text, token string) bool {
	for i := 0; i+24 <= len(token); i += 12 {
		if strings.Contains(text, token[i:i+24]) {
			return true
		}
	}
	return false
}

// TestDecodeStrict: the shared decoder, case by case.
func TestDecodeStrict(t *testing.T) {
	type body struct {
		S  string   `json:"s"`
		L  []string `json:"l"`
		B  bool     `json:"b"`
		N  int      `json:"n"`
		M  []any    `json:"m"`
		F  float64  `json:"f,omitempty"`
		X  struct{} `json:"x"`
		No string   `json:"-"`
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", ``, ""},
		{"all fields", `{"s":"a","l":["b"],"b":true,"n":1,"m":[{"a":1},[2]],"f":1.5,"x":{}}`, ""},
		{"nested repeated key", `{"m":[{"a":1,"A":2}]}`, "repeated"},
		{"nested syntax error", `{"m":[{"a":}]}`, "not valid JSON"},
		{"ignored field is unknown", `{"-":"x"}`, "unknown field"},
		{"bool type", `{"b":"yes"}`, "true or false"},
		{"number type", `{"n":"one"}`, "a number"},
		{"struct type", `{"x":1}`, "another type"},
		{"unterminated", `{"s":"a"`, "not valid JSON"},
		{"number for a string", `{"s":1}`, "want a string"},
		{"number out of range", `{"n":1e999}`, "not valid JSON"},
		{"bare string", `"s"`, "one JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b body
			err := decodeStrict([]byte(tc.in), &b)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("decodeStrict(%s) = %v, want %q", tc.in, err, tc.want)
			}
		})
	}
}

// TestBodyLimits: a body over --max-body is refused by every JSON endpoint
// as 400, never read past the limit.
func TestBodyLimits(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, f.alice.ID)
	big := `{"name":"` + strings.Repeat("a", 5000) + `"}`
	for _, path := range []string{"/v1/tokens", "/v1/tokens/exchange", "/v1/verify"} {
		resp, body := f.do(t, call{"POST", path, bearer(tok), big})
		if resp.StatusCode != 400 || !strings.Contains(body, "size limit") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}
