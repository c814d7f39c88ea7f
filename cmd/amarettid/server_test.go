package main

import (
	"bytes"

	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/audit"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

type fixture struct {
	s        *server
	tracker  *apitoken.Tracker
	refusals *audit.Refusals
	srv      *httptest.Server
	store    *sqlite.Store
	minter   *macaroon.Minter
	logs     *bytes.Buffer
	alice    epoch.Editor
	admin    epoch.Editor
}

func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with configure applied to the server before
// it serves (nil: nothing).
func newFixtureWith(t *testing.T, configure func(*server)) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "amaretti.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, logs: &bytes.Buffer{}}
	f.alice, _ = store.Create(ctx, epoch.NewEditor{Username: "alice"})
	f.admin, _ = store.Create(ctx, epoch.NewEditor{Username: "root", Role: epoch.RoleAdmin})
	cache := epoch.NewCache(store, 0, time.Minute)
	v, _ := verifier.New(keys, cache)
	s := &server{v: v, keys: keys, store: store, cache: cache, m: newMetrics(cache, nil),
		log: slog.New(slog.NewJSONHandler(f.logs, nil)), cookie: "session", maxBody: 4096,
		tracker: apitoken.NewTracker(store, time.Minute, nil), refusals: audit.NewRefusals(store, time.Minute, nil)}
	f.refusals = s.refusals
	minter, _ := macaroon.NewMinter(keys, "api.example.org")
	checker, _ := caveat.NewChecker()
	s.issuer, _ = apitoken.NewIssuer(store, minter, checker)
	f.tracker = s.tracker
	f.s = s
	if configure != nil {
		configure(s)
	}
	f.srv = httptest.NewServer(s.routes())
	t.Cleanup(f.srv.Close)
	f.minter, _ = macaroon.NewMinter(keys, "api.example.org")
	time.Sleep(time.Millisecond) // tokens are created after the editors' epochs
	return f
}

func (f *fixture) mint(t *testing.T, editor string, cavs ...caveat.Caveat) string {
	t.Helper()
	m, err := f.minter.Mint(context.Background(), editor, macaroon.WithCaveats(cavs...))
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

type call struct {
	method, path string
	headers      map[string][]string
	body         string
}

func (f *fixture) do(t *testing.T, c call) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(c.method, f.srv.URL+c.path, strings.NewReader(c.body))
	for k, vs := range c.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func bearer(tok string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + tok}}
}

func with(h map[string][]string, k, v string) map[string][]string {
	out := map[string][]string{k: {v}}
	for kk, vv := range h {
		out[kk] = append(out[kk], vv...)
	}
	return out
}

func TestVerifyEndpoint(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, f.alice.ID)
	getOnly := f.mint(t, f.alice.ID, caveat.Methods{"GET"}, caveat.Rights{"read"})
	cookie := map[string][]string{"Cookie": {"session=" + tok}}
	tests := []struct {
		name   string
		c      call
		status int
		want   string // in the body
		chal   string // in WWW-Authenticate
	}{
		{"bearer", call{"GET", "/v1/verify", bearer(tok), ""}, 200, `"editor_id":"` + f.alice.ID, ""},
		{"cookie", call{"GET", "/v1/verify", cookie, ""}, 200, f.alice.ID, ""},
		{"JSON body", call{"POST", "/v1/verify", nil, `{"token":"` + tok + `"}`}, 200, f.alice.ID, ""},
		{"context in body allows", call{"POST", "/v1/verify", nil, `{"token":"` + getOnly + `","method":"get","rights":["read"]}`}, 200, `"rights":["read"]`, ""},
		{"context in body forbids", call{"POST", "/v1/verify", nil, `{"token":"` + getOnly + `","method":"POST"}`}, 403, "insufficient_scope", `error="insufficient_scope"`},
		{"context in query", call{"GET", "/v1/verify?method=GET&right=read", bearer(getOnly), ""}, 200, f.alice.ID, ""},
		{"no token", call{"GET", "/v1/verify", nil, ""}, 401, "unauthorized", `Bearer realm="amaretti"`},
		{"bad token", call{"GET", "/v1/verify", bearer("nope"), ""}, 401, "malformed token", `error="invalid_token"`},
		{"header and cookie", call{"GET", "/v1/verify", with(bearer(tok), "Cookie", "session="+tok), ""}, 400, "invalid_request", ""},
		{"header and body", call{"POST", "/v1/verify", bearer(tok), `{"token":"` + tok + `"}`}, 400, "invalid_request", ""},
		{"two Authorization headers", call{"GET", "/v1/verify", map[string][]string{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, ""}, 400, "invalid_request", ""},
		{"unreadable body", call{"POST", "/v1/verify", nil, `{"token":`}, 400, "invalid_request", ""},
		{"unknown field", call{"POST", "/v1/verify", nil, `{"tokn":"x"}`}, 400, "invalid_request", ""},
		{"body over the limit", call{"POST", "/v1/verify", nil, `{"token":"` + strings.Repeat("A", 5000) + `"}`}, 400, "invalid_request", ""},
		{"wrong method", call{"DELETE", "/v1/verify", bearer(tok), ""}, 405, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, tc.c)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) || !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.chal) {
				t.Fatalf("%d %s (WWW-Authenticate %q); want %d with %q, %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"), tc.status, tc.want, tc.chal)
			}
		})
	}
	if strings.Contains(f.logs.String(), tok[len(tok)-40:]) {
		t.Fatal("a token was logged")
	}
	// The identity is answered with its length, not chunked, though the
	// handler leaves Content-Length to the server.
	t.Run("content length", func(t *testing.T) {
		for _, c := range []call{{"GET", "/v1/verify", bearer(tok), ""}, {"POST", "/v1/verify", nil, `{"token":"` + tok + `"}`}} {
			resp, body := f.do(t, c)
			if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%s: %d, Content-Length %d for %d bytes, Transfer-Encoding %v, Content-Type %q", c.method, resp.StatusCode, resp.ContentLength, len(body), resp.TransferEncoding, resp.Header.Get("Content-Type"))
			}
		}
	})
}

func TestForwardAuth(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, f.alice.ID)
	scoped := f.mint(t, f.alice.ID, caveat.Methods{"GET"}, caveat.PathPrefix("/api"))
	tests := []struct {
		name    string
		c       call
		status  int
		headers bool
	}{
		{"valid", call{"GET", "/v1/auth", bearer(tok), ""}, 200, true},
		{"nginx headers allow", call{"GET", "/v1/auth", with(with(bearer(scoped), "X-Original-Method", "GET"), "X-Original-URI", "/api/things?page=2"), ""}, 200, true},
		{"nginx headers forbid path", call{"GET", "/v1/auth", with(with(bearer(scoped), "X-Original-Method", "GET"), "X-Original-URI", "/admin"), ""}, 403, false},
		{"nginx dot-dot escape", call{"GET", "/v1/auth", with(with(bearer(scoped), "X-Original-Method", "GET"), "X-Original-URI", "/api/../admin"), ""}, 403, false},
		{"traefik headers allow", call{"GET", "/v1/auth", with(with(bearer(scoped), "X-Forwarded-Method", "GET"), "X-Forwarded-Uri", "/api/x"), ""}, 200, true},
		{"traefik headers forbid method", call{"GET", "/v1/auth", with(with(bearer(scoped), "X-Forwarded-Method", "DELETE"), "X-Forwarded-Uri", "/api/x"), ""}, 403, false},
		{"envoy path and method", call{"GET", "/v1/auth/api/x", bearer(scoped), ""}, 200, true},
		{"envoy forbidden method", call{"POST", "/v1/auth/api/x", bearer(scoped), ""}, 403, false},
		{"no context for a scoped token", call{"GET", "/v1/auth", bearer(scoped), ""}, 403, false},
		{"no token", call{"GET", "/v1/auth", nil, ""}, 401, false},
		{"bad token", call{"GET", "/v1/auth", bearer("x"), ""}, 401, false},
		{"two tokens is 401, never 400", call{"GET", "/v1/auth", map[string][]string{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, ""}, 401, false},
		{"malformed header is 401, never 400", call{"GET", "/v1/auth", map[string][]string{"Authorization": {"Bearer"}}, ""}, 401, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, tc.c)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.status)
			}
			got := resp.Header.Get("X-Amaretti-Editor-Id") == f.alice.ID && resp.Header.Get("X-Amaretti-Role") == "editor" && resp.Header.Get("X-Amaretti-Token-Id") != ""
			if got != tc.headers {
				t.Fatalf("identity headers %v, want %v: %v", got, tc.headers, resp.Header)
			}
		})
	}
}

func TestAdmin(t *testing.T) {
	f := newFixture(t)
	aliceTok := f.mint(t, f.alice.ID)
	adminTok := f.mint(t, f.admin.ID)
	readOnlyAdmin := f.mint(t, f.admin.ID, caveat.Rights{"read"})
	touchOnlyAdmin := f.mint(t, f.admin.ID, caveat.Rights{"admin:touch"})
	post := func(path, tok string) (int, string) {
		h := map[string][]string{}
		if tok != "" {
			h = bearer(tok)
		}
		resp, body := f.do(t, call{"POST", path, h, ""})
		return resp.StatusCode, body
	}
	touch := "/v1/admin/editors/" + f.alice.ID + "/touch"
	for _, tc := range []struct {
		name, path, tok string
		status          int
		want            string
	}{
		{"no token", touch, "", 401, "unauthorized"},
		{"editor token", touch, aliceTok, 403, "role does not allow"},
		{"admin token without the right", touch, readOnlyAdmin, 403, "insufficient_scope"},
		{"unknown editor", "/v1/admin/editors/nobody/touch", adminTok, 404, "not_found"},
		{"GET is not allowed", "", "", 0, ""},
	} {
		if tc.path == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			if status, body := post(tc.path, tc.tok); status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d %q", status, body, tc.status, tc.want)
			}
		})
	}
	if resp, _ := f.do(t, call{"GET", touch, bearer(adminTok), ""}); resp.StatusCode != 405 {
		t.Fatalf("GET touch: %d", resp.StatusCode)
	}

	verify := func(tok string) int {
		resp, _ := f.do(t, call{"GET", "/v1/verify", bearer(tok), ""})
		return resp.StatusCode
	}
	if verify(aliceTok) != 200 {
		t.Fatal("alice's token before the touch")
	}
	status, body := post(touch, touchOnlyAdmin)
	var ed map[string]any
	json.Unmarshal([]byte(body), &ed)
	if status != 200 || ed["id"] != f.alice.ID || ed["version"].(float64) != 2 {
		t.Fatalf("touch: %d %s", status, body)
	}
	if verify(aliceTok) != 401 {
		t.Fatal("alice's token after the touch: the daemon's own cache was not invalidated")
	}
	if status, _ := post("/v1/admin/editors/"+f.alice.ID+"/lock", touchOnlyAdmin); status != 403 {
		t.Fatal("lock needs admin:lock when rights are restricted")
	}
	if status, body := post("/v1/admin/editors/"+f.alice.ID+"/lock", adminTok); status != 200 || !strings.Contains(body, `"locked":true`) {
		t.Fatalf("lock: %d %s", status, body)
	}
	time.Sleep(time.Millisecond)
	if verify(f.mint(t, f.alice.ID)) != 401 {
		t.Fatal("a new token of a locked editor")
	}
	if status, _ := post("/v1/admin/editors/"+f.alice.ID+"/unlock", adminTok); status != 200 {
		t.Fatal("unlock")
	}
	time.Sleep(time.Millisecond)
	fresh := f.mint(t, f.alice.ID)
	if verify(fresh) != 200 {
		t.Fatal("a token minted after unlock")
	}
	if status, body := post("/v1/admin/touch-all", adminTok); status != 200 || !strings.Contains(body, `"touched":2`) {
		t.Fatalf("touch-all: %d %s", status, body)
	}
	if verify(fresh) != 401 || verify(adminTok) != 401 {
		t.Fatal("touch-all left a token valid")
	}
}

// TestTouchSelf: "log out everywhere" through the daemon revokes every
// token of the caller, the calling one included, and nobody else's.
func TestTouchSelf(t *testing.T) {
	f := newFixture(t)
	older := f.mint(t, f.alice.ID)
	session := f.mint(t, f.alice.ID)
	readOnly := f.mint(t, f.alice.ID, caveat.Rights{"read"})
	adminTok := f.mint(t, f.admin.ID)
	status := func(c call) (int, string) {
		resp, body := f.do(t, c)
		return resp.StatusCode, body
	}
	for _, tc := range []struct {
		name   string
		c      call
		status int
		want   string
	}{
		{"no token", call{"POST", "/v1/me/touch", nil, ""}, 401, "unauthorized"},
		{"token without the tokens right", call{"POST", "/v1/me/touch", bearer(readOnly), ""}, 403, "insufficient_scope"},
		{"GET", call{"GET", "/v1/me/touch", bearer(session), ""}, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, body := status(tc.c); got != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d %q", got, body, tc.status, tc.want)
			}
		})
	}
	for _, tok := range []string{older, session, readOnly, adminTok} {
		if got, _ := status(call{"GET", "/v1/verify", bearer(tok), ""}); got != 200 {
			t.Fatal("a token before the touch")
		}
	}
	// By cookie, as a web frontend's session would call it.
	got, body := status(call{"POST", "/v1/me/touch", map[string][]string{"Cookie": {"session=" + session}}, ""})
	if got != 200 || !strings.Contains(body, `"id":"`+f.alice.ID+`"`) || !strings.Contains(body, `"version":2`) {
		t.Fatalf("self touch: %d %s", got, body)
	}
	for name, tok := range map[string]string{"older session": older, "calling session": session, "api token": readOnly} {
		if got, _ := status(call{"GET", "/v1/verify", bearer(tok), ""}); got != 401 {
			t.Errorf("%s after log out everywhere: %d, want 401", name, got)
		}
	}
	if got, _ := status(call{"GET", "/v1/verify", bearer(adminTok), ""}); got != 200 {
		t.Error("another editor's token died with alice's sessions")
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, f.alice.ID)
	f.do(t, call{"GET", "/v1/verify", bearer(tok), ""})
	f.do(t, call{"GET", "/v1/verify", bearer("garbage"), ""})
	for path, want := range map[string]string{
		"/healthz": `"ok"`,
		"/readyz":  `"store":"ok"`,
		"/metrics": `amaretti_verifications_total{handler="verify",outcome="invalid_token"} 1`,
	} {
		resp, body := f.do(t, call{"GET", path, nil, ""})
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %q in:\n%.600s", path, resp.StatusCode, want, body)
		}
	}
	_, metrics := f.do(t, call{"GET", "/metrics", nil, ""})
	for _, want := range []string{"amaretti_verification_duration_seconds_bucket", `amaretti_epoch_cache_hits_total{layer="process"}`, "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	f.store.Close()
	if resp, body := f.do(t, call{"GET", "/readyz", nil, ""}); resp.StatusCode != 503 {
		t.Errorf("readyz with the store closed: %d %s", resp.StatusCode, body)
	}
	// The epoch is cached; a token of another editor needs the store.
	if resp, _ := f.do(t, call{"GET", "/v1/verify", bearer(f.mint(t, f.admin.ID)), ""}); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("verify with the store closed: %d", resp.StatusCode)
	}
}
