package verifier_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"context"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/session"
	"github.com/amaretti-auth/amaretti/verifier"
)

func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := verifier.FromContext(r.Context())
		if !ok {
			fmt.Fprint(w, "anonymous")
			return
		}
		fmt.Fprintf(w, "%s %s", id.EditorID, id.Role)
	})
	endpoint := verifier.WithEndpoint(func(r *http.Request) string { return r.URL.Query().Get("op") })
	required := httptest.NewServer(f.v.Middleware(verifier.WithLogger(logger), endpoint)(whoami))
	defer required.Close()
	optional := httptest.NewServer(f.v.Middleware(verifier.Optional(), verifier.WithLogger(logger), verifier.WithRealm("example"))(whoami))
	defer optional.Close()

	valid := f.mint(t, touchedEditor)
	getOnly, _ := macaroon.Attenuate(valid, caveat.Methods{"GET"})
	endpointOnly, _ := macaroon.Attenuate(valid, caveat.Endpoint("list"))
	expired := f.mint(t, alice, macaroon.ExpiresAt(fixNow.Add(time.Second)))
	f.clock.Add(2 * time.Second)

	tests := []struct {
		name       string
		server     *httptest.Server
		method     string
		path       string
		auth       []string
		wantStatus int
		wantBody   string
		wantChal   string // substring of WWW-Authenticate; "-" for none
	}{
		{"valid", required, "GET", "/", []string{"Bearer " + valid}, 200, touchedEditor + " admin", "-"},
		{"scheme is case-insensitive", required, "GET", "/", []string{"bearer " + valid}, 200, touchedEditor, "-"},
		{"no token", required, "GET", "/", nil, 401, `"unauthorized"`, `Bearer realm="amaretti"`},
		{"other scheme", required, "GET", "/", []string{"Basic dXNlcjpwYXNz"}, 401, "", `Bearer realm="amaretti"`},
		{"garbage token", required, "GET", "/", []string{"Bearer xyz"}, 401, `"invalid_token"`, `error="invalid_token", error_description="malformed token"`},
		{"expired", required, "GET", "/", []string{"Bearer " + expired}, 401, "token expired", `error_description="token expired"`},
		{"method caveat allows GET", required, "GET", "/", []string{"Bearer " + getOnly}, 200, touchedEditor, "-"},
		{"method caveat forbids POST", required, "POST", "/", []string{"Bearer " + getOnly}, 403, `"insufficient_scope"`, `error="insufficient_scope"`},
		{"endpoint named", required, "GET", "/?op=list", []string{"Bearer " + endpointOnly}, 200, touchedEditor, "-"},
		{"endpoint not named", required, "GET", "/?op=delete", []string{"Bearer " + endpointOnly}, 403, "", `insufficient_scope`},
		{"two Authorization headers", required, "GET", "/", []string{"Bearer " + valid, "Bearer " + valid}, 400, `"invalid_request"`, "-"},
		{"Bearer without token", required, "GET", "/", []string{"Bearer"}, 400, `"invalid_request"`, "-"},
		{"Bearer with two spaces (RFC 6750 1*SP)", required, "GET", "/", []string{"Bearer  " + valid}, 200, touchedEditor, "-"},
		{"Bearer with a tab", required, "GET", "/", []string{"Bearer\t" + valid}, 400, `"invalid_request"`, "-"},
		{"Bearer with a space inside the token", required, "GET", "/", []string{"Bearer " + valid[:20] + " " + valid[20:]}, 400, `"invalid_request"`, "-"},
		{"optional, anonymous", optional, "GET", "/", nil, 200, "anonymous", "-"},
		{"optional, valid", optional, "GET", "/", []string{"Bearer " + valid}, 200, touchedEditor, "-"},
		{"optional, a bad token must still fail", optional, "GET", "/", []string{"Bearer " + expired}, 401, "", `Bearer realm="example", error="invalid_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.server.URL+tc.path, nil)
			for _, a := range tc.auth {
				req.Header.Add("Authorization", a)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("%d %s, want %d containing %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			chal := resp.Header.Get("WWW-Authenticate")
			if tc.wantChal == "-" && chal != "" || tc.wantChal != "-" && !strings.Contains(chal, tc.wantChal) {
				t.Fatalf("WWW-Authenticate %q, want %q", chal, tc.wantChal)
			}
			if resp.StatusCode != 200 {
				var pb map[string]string
				if err := json.Unmarshal(body, &pb); err != nil || pb["error"] == "" {
					t.Fatalf("error body %q is not RFC 6750 JSON", body)
				}
				if resp.Header.Get("Cache-Control") != "no-store" {
					t.Error("error response may be cached")
				}
			}
		})
	}

	t.Run("logs carry reasons and token ids, never tokens", func(t *testing.T) {
		out := logs.String()
		for _, tok := range []string{valid, getOnly, expired, endpointOnly} {
			if strings.Contains(out, tok[len(tok)-43:]) || strings.Contains(out, tok[:60]) {
				t.Fatal("a token was logged")
			}
		}
		if !strings.Contains(out, `"reason":"token expired"`) || !strings.Contains(out, `"token_id":"`) {
			t.Fatalf("denial log lacks reason or token id:\n%s", out)
		}
		if n := strings.Count(out, "\n"); n != 11 {
			t.Errorf("%d log lines for 11 denials:\n%s", n, out)
		}
	})
}

// TestMiddlewareLogsNoClientValues: a token a client puts in the path, the
// method or the endpoint of a denied request never reaches the log.
func TestMiddlewareLogsNoClientValues(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	endpoint := verifier.WithEndpoint(func(r *http.Request) string { return r.URL.Query().Get("op") })
	srv := httptest.NewServer(f.v.Middleware(verifier.WithLogger(logger), endpoint)(http.NotFoundHandler()))
	defer srv.Close()
	secret := f.mint(t, alice)
	limited, _ := macaroon.Attenuate(secret, caveat.Endpoint("list"), caveat.Methods{"GET"}, caveat.PathPrefix("/api"))
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/" + secret},
		{"GET", "/other?op=" + secret},
		{secret[:40], "/api/x"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+limited)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s %s: %d, want 403", tc.method, tc.path[:10], resp.StatusCode)
		}
	}
	out := logs.String()
	if strings.Count(out, "\n") != 3 || !strings.Contains(out, `"reason":"caveat prohibits request"`) {
		t.Fatalf("want three denial lines with a fixed reason:\n%s", out)
	}
	if strings.Contains(out, secret[:40]) || strings.Contains(out, secret[len(secret)-40:]) {
		t.Fatalf("a client-sent token reached the log:\n%s", out)
	}
}

func TestMiddlewareUnavailable(t *testing.T) {
	f := newFixture(t)
	v, _ := verifier.New(f.keys, failingStore{}, verifier.WithClock(f.clock.Now))
	srv := httptest.NewServer(v.Middleware()(http.NotFoundHandler()))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+f.mint(t, alice))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store down: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestProblemFor(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{nil, 200, ""},
		{verifier.ErrMalformed, 401, "invalid_token"},
		{verifier.ErrRevoked, 401, "invalid_token"},
		{verifier.ErrUnavailable, 503, "temporarily_unavailable"},
		{verifier.ErrCaveatNotSatisfied, 403, "insufficient_scope"},
		// A token both expired and forbidden is invalid first.
		{fmt.Errorf("%w; %w", verifier.ErrCaveatNotSatisfied, verifier.ErrExpired), 401, "invalid_token"},
		{fmt.Errorf("something new"), 401, "invalid_token"},
	} {
		p := verifier.ProblemFor(tc.err)
		if p.Status != tc.status || p.Code != tc.code || strings.ContainsAny(p.Description, "\"\\") {
			t.Errorf("ProblemFor(%v) = %+v", tc.err, p)
		}
	}
}

func TestRequireRights(t *testing.T) {
	f := newFixture(t)
	f.clock.Add(time.Second)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := httptest.NewServer(f.v.Middleware(verifier.RequireRights("edit"))(ok))
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"unrestricted token", f.mint(t, alice), 204},
		{"token with the right", f.mint(t, alice, macaroon.WithCaveats(caveat.Rights{"read", "edit"})), 204},
		{"token without it", f.mint(t, alice, macaroon.WithCaveats(caveat.Rights{"read"})), 403},
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	admin := httptest.NewServer(f.v.Middleware(verifier.RequireRights("admin:touch"))(ok))
	defer admin.Close()
	req, _ := http.NewRequest("GET", admin.URL, nil)
	req.Header.Set("Authorization", "Bearer "+f.mint(t, fatcatEditor)) // a bot
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("bot on an admin route: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestMiddlewareCookie(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.clock.Add(time.Second)
	f.storeClock.Set(f.clock.Now())
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verifier.FromContext(r.Context())
		fmt.Fprint(w, id.EditorID)
	})
	srv := httptest.NewServer(f.v.Middleware(verifier.WithCookie(session.DefaultName))(whoami))
	defer srv.Close()
	minted, _ := f.minter.Mint(ctx, alice, macaroon.ExpiresIn(time.Hour))
	rec := httptest.NewRecorder()
	session.Set(rec, httptest.NewRequest("GET", "/", nil), session.Cookie{Token: minted.Token, Expires: minted.Expires}, f.clock.Now())
	cookie := rec.Result().Cookies()[0]
	get := func(withCookie bool, bearer string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if withCookie {
			req.AddCookie(cookie)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(true, ""); status != 200 || body != alice {
		t.Fatalf("cookie: %d %s", status, body)
	}
	if status, _ := get(false, minted.Token); status != 200 {
		t.Fatal("bearer alongside WithCookie")
	}
	if status, _ := get(true, minted.Token); status != 400 {
		t.Fatalf("cookie and bearer together: %d", status)
	}
	// Log out everywhere: a touch makes the old cookie useless.
	f.clock.Add(time.Second)
	f.storeClock.Set(f.clock.Now())
	if _, err := f.store.Touch(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if status, body := get(true, ""); status != 401 || !strings.Contains(body, "token revoked") {
		t.Fatalf("cookie after log-out-everywhere: %d %s", status, body)
	}
}
