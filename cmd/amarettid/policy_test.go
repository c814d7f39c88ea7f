package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// listTokens is GET /v1/tokens?editor_id=ID as tok.
func (f *fixture) listTokens(t *testing.T, tok, editor string) map[string]apitoken.Row {
	t.Helper()
	resp, body := f.do(t, call{"GET", "/v1/tokens?editor_id=" + editor, bearer(tok), ""})
	var list struct {
		Tokens []apitoken.Row `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	out := map[string]apitoken.Row{}
	for _, r := range list.Tokens {
		out[r.TokenID] = r
	}
	return out
}

// TestTokenAPIStatus: GET /v1/tokens says why a token no longer verifies
// ("status", with "live" consistent with it), a touched token's name is
// free again, and /v1/tokens/expiring leaves out tokens that do not
// verify. Before, a touched token was "live": true and kept its name.
func TestTokenAPIStatus(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		do     func(f *fixture, editor string)
		want   apitoken.Status
		reused bool // the name can be reused, by a token minted after
	}{
		{"touched", func(f *fixture, ed string) { f.store.Touch(ctx, ed) }, apitoken.StatusRevokedByTouch, true},
		{"locked", func(f *fixture, ed string) { f.store.Lock(ctx, ed) }, apitoken.StatusEditorLocked, false},
		{"deactivated", func(f *fixture, ed string) { f.store.SetActive(ctx, ed, false) }, apitoken.StatusEditorDeactivated, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			session, adminTok := f.mint(t, f.alice.ID), f.mint(t, f.admin.ID)
			resp, body := f.do(t, call{"POST", "/v1/tokens", bearer(session), `{"name":"laptop","expires_in":"240h"}`})
			var created struct {
				Token   string          `json:"token"`
				TokenID string          `json:"token_id"`
				Status  apitoken.Status `json:"status"`
				Live    bool            `json:"live"`
			}
			if json.Unmarshal([]byte(body), &created); resp.StatusCode != 201 || created.Status != apitoken.StatusLive || !created.Live {
				t.Fatalf("create: %d %s", resp.StatusCode, body)
			}
			tc.do(f, f.alice.ID)
			if r := f.listTokens(t, adminTok, f.alice.ID)[created.TokenID]; r.Status != tc.want || r.Live {
				t.Fatalf("status %q live %v, want %q", r.Status, r.Live, tc.want)
			}
			if resp, body := f.do(t, call{"GET", "/v1/tokens/expiring?within=800h", bearer(adminTok), ""}); resp.StatusCode != 200 || strings.Contains(body, created.TokenID) {
				t.Fatalf("expiring lists a %s token: %s", tc.want, body)
			}
			if !tc.reused {
				return
			}
			time.Sleep(10 * time.Microsecond) // after the touch's microsecond
			again := f.mint(t, f.alice.ID)
			if resp, body := f.do(t, call{"POST", "/v1/tokens", bearer(again), `{"name":"laptop"}`}); resp.StatusCode != 201 {
				t.Fatalf("reusing the name: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestTokenAPINever: "expires_in": "never" asks for no expiry, which the
// default policy refuses; no expires_in gets the policy's default.
func TestTokenAPINever(t *testing.T) {
	f := newFixture(t)
	session := f.mint(t, f.alice.ID, caveat.Rights{"tokens", "read"})
	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"name":"a","expires_in":"never"}`, 400, "never expire are not allowed"},
		{`{"name":"b","expires_in":"nevermore"}`, 400, "720h, or"},
		{`{"name":"c","expires_in":"never5h"}`, 400, "720h, or"},
		{`{"name":"d","expires_in":"9000h"}`, 400, "at most 8760h"},
	} {
		resp, body := f.do(t, call{"POST", "/v1/tokens", bearer(session), tc.body})
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d %q", tc.body, resp.StatusCode, body, tc.status, tc.want)
		}
	}
	resp, body := f.do(t, call{"POST", "/v1/tokens", bearer(session), `{"name":"default"}`})
	var out struct {
		Created time.Time `json:"created"`
		Expires time.Time `json:"expires"`
	}
	json.Unmarshal([]byte(body), &out)
	// A token (not a pristine session) bounds its child: the fixture's
	// tokens never expire, so the child gets the policy's default.
	if got := out.Expires.Sub(out.Created); resp.StatusCode != 201 || got > apitoken.DefaultAPILifetime || got < apitoken.DefaultAPILifetime-time.Second {
		t.Fatalf("default lifetime: %d %s (%v)", resp.StatusCode, body, got)
	}
}

// TestDaemonPolicy runs amarettid with the policy's flags: a tighter
// maximum refuses an API token created under the looser one at
// verification, with its own reason, and lists it as over_policy; without
// --allow-no-expiry "never" is refused, with it a token without expiry is
// created and verifies.
func TestDaemonPolicy(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	var created struct {
		Token   string `json:"token"`
		TokenID string `json:"token_id"`
	}
	d.jsonCLI(&created, "tokens", "create", alice, "--name", "cron", "--expires", "1000h")
	// A login session as a frontend mints it: its API tokens are bounded
	// by the policy, not by the session.
	m, err := d.minter().Mint(context.Background(), alice, macaroon.WithKind(caveat.KindSession), macaroon.ExpiresIn(12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	session := m.Token
	loose := d.start()
	if got := loose.status(t, created.Token); got != 200 {
		t.Fatalf("under the default policy: %d", got)
	}
	tight := d.start("--max-api-token-lifetime", "720h")
	req, _ := http.NewRequest("GET", tight.url+"/v1/verify", nil)
	req.Header.Set("Authorization", "Bearer "+created.Token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if www := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(www, `error="invalid_token"`) || !strings.Contains(www, "token lifetime exceeds the policy") {
		t.Fatalf("under a tighter policy: %d %q", resp.StatusCode, www)
	}
	if got := tight.status(t, session); got != 200 {
		t.Fatalf("a session under the tighter policy: %d", got)
	}
	if got := tight.status(t, d.cli("token", "mint", alice, "--expires", "2000h")); got != 200 {
		t.Fatalf("a CLI token longer than the API maximum: %d", got)
	}
	rows := getTokens(t, tight.url, session)
	if r := rows[created.TokenID]; r.Status != apitoken.StatusOverPolicy || r.Live {
		t.Fatalf("listed under the tighter policy: %+v", r)
	}
	if r := getTokens(t, loose.url, session)[created.TokenID]; r.Status != apitoken.StatusLive || !r.Live {
		t.Fatalf("listed under the default policy: %+v", r)
	}
	// Tokens created by the tight daemon get its maximum by default.
	code, out := post(t, tight.url, session, `{"name":"tight"}`)
	if exp, _ := time.Parse(time.RFC3339Nano, out["expires"].(string)); code != 201 || time.Until(exp) > 720*time.Hour {
		t.Fatalf("created under the tighter policy: %d %v", code, out)
	}
	if code, out := post(t, loose.url, session, `{"name":"forever","expires_in":"never"}`); code != 400 {
		t.Fatalf("never, not allowed: %d %v", code, out)
	}
	allowing := d.start("--allow-no-expiry")
	code, out = post(t, allowing.url, session, `{"name":"forever","expires_in":"never"}`)
	if code != 201 || out["expires"] != nil {
		t.Fatalf("never, allowed: %d %v", code, out)
	}
	if got := allowing.status(t, out["token"].(string)); got != 200 {
		t.Fatalf("a token without expiry under a policy allowing it: %d", got)
	}
	if got := loose.status(t, out["token"].(string)); got != 401 {
		t.Fatalf("a token without expiry under a policy not allowing it: %d", got)
	}
	// A policy that does not hold together stops the daemon at start.
	if err := app(io.Discard, io.Discard, slog.New(slog.DiscardHandler)).Run([]string{"amarettid", "--max-api-token-lifetime", "24h", "--default-lifetime", "api=48h"}); err == nil || !strings.Contains(err.Error(), "over the maximum") {
		t.Fatalf("inconsistent policy: %v", err)
	}
}

func getTokens(t *testing.T, url, tok string) map[string]apitoken.Row {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Tokens []apitoken.Row `json:"tokens"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %v", resp.StatusCode, err)
	}
	out := map[string]apitoken.Row{}
	for _, r := range list.Tokens {
		out[r.TokenID] = r
	}
	return out
}

func post(t *testing.T, url, tok, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/tokens", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
