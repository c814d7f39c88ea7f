package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// created is what POST /v1/tokens and /v1/tokens/exchange answer.
type created struct {
	Token    string    `json:"token"`
	TokenID  string    `json:"token_id"`
	Expires  time.Time `json:"expires"`
	Rights   []string  `json:"rights"`
	Error    string    `json:"error"`
	ParentID string    `json:"parent_token_id"`
}

func (f *fixture) post(t *testing.T, path, token, body string) (int, created) {
	t.Helper()
	resp, b := f.do(t, call{"POST", path, bearer(token), body})
	var out created
	if err := json.Unmarshal([]byte(b), &out); err != nil {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func (f *fixture) verifyStatus(t *testing.T, token, query string) (int, string) {
	t.Helper()
	resp, body := f.do(t, call{"GET", "/v1/verify" + query, bearer(token), ""})
	return resp.StatusCode, body
}

// TestCreateNeverWidens is issue M1 through the daemon: a token restricted
// to rights = tokens, POST, /v1/tokens and 5 minutes used to create a
// never-expiring token that could edit and delete anywhere; now what it
// creates is bound the same way. A token exchanged from an API token, then
// used to create one, dies with that API token; a web session exchanges
// (it used to be 503) and keeps its username; and a session exactly as the
// frontend minted it creates a 90-day token.
func TestCreateNeverWidens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	session := func(t *testing.T, ttl time.Duration) string {
		m, err := f.minter.Mint(ctx, f.alice.ID, macaroon.WithUsername("alice"), macaroon.WithKind(caveat.KindSession), macaroon.ExpiresIn(ttl))
		if err != nil {
			t.Fatal(err)
		}
		return m.Token
	}

	t.Run("M1: a restricted token", func(t *testing.T) {
		m, err := f.minter.Mint(ctx, f.alice.ID, macaroon.ExpiresIn(5*time.Minute),
			macaroon.WithCaveats(caveat.Rights{"tokens"}, caveat.Methods{"POST"}, caveat.PathPrefix("/v1/tokens")))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, body string
			status     int
		}{
			{"never expiring, asked", `{"name":"forever"}`, 201},
			{"90 days, asked", `{"name":"long","expires_in":"2160h"}`, 201},
			{"edit, asked", `{"name":"editor","rights":["edit"]}`, 403},
			{"a malformed right", `{"name":"bad","rights":["a b"]}`, 400},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, out := f.post(t, "/v1/tokens", m.Token, tc.body)
				if status != tc.status {
					t.Fatalf("%d %+v, want %d", status, out, tc.status)
				}
				if status != 201 {
					return
				}
				if out.Expires.IsZero() || out.Expires.After(m.Expires) {
					t.Errorf("the new token expires at %v, after its creator (%v)", out.Expires, m.Expires)
				}
				if strings.Join(out.Rights, ",") != "tokens" {
					t.Errorf("the registry records rights %v", out.Rights)
				}
				if s, _ := f.verifyStatus(t, out.Token, "?method=POST&path=/v1/tokens&right=tokens"); s != 200 {
					t.Errorf("what it was made for: %d", s)
				}
				for _, q := range []string{"?method=DELETE&path=/v1/admin/users/1", "?method=POST&path=/v1/tokens&right=edit", "?method=POST&path=/api/things"} {
					if s, body := f.verifyStatus(t, out.Token, q); s != 403 {
						t.Errorf("%s: %d %s", q, s, body)
					}
				}
			})
		}
	})

	t.Run("exchanged from an API token, then creating: revoked with the API token", func(t *testing.T) {
		status, api := f.post(t, "/v1/tokens", session(t, 12*time.Hour), `{"name":"cron","expires_in":"720h"}`)
		if status != 201 {
			t.Fatalf("create: %d %+v", status, api)
		}
		status, ex := f.post(t, "/v1/tokens/exchange", api.Token, `{"ttl":"5m"}`)
		if status != 201 || ex.ParentID != api.TokenID {
			t.Fatalf("exchange: %d %+v", status, ex)
		}
		status, made := f.post(t, "/v1/tokens", ex.Token, `{"name":"made"}`)
		if status != 201 || made.Expires.After(ex.Expires) {
			t.Fatalf("create from the exchanged token: %d %+v (exchanged expires %v)", status, made, ex.Expires)
		}
		if s, _ := f.verifyStatus(t, made.Token, ""); s != 200 {
			t.Fatalf("before the revocation: %d", s)
		}
		if resp, body := f.do(t, call{"DELETE", "/v1/tokens/" + api.TokenID, bearer(session(t, time.Hour)), ""}); resp.StatusCode != 200 {
			t.Fatalf("revoke: %d %s", resp.StatusCode, body)
		}
		for name, tok := range map[string]string{"exchanged": ex.Token, "made from the exchanged": made.Token} {
			if s, body := f.verifyStatus(t, tok, ""); s != 401 || !strings.Contains(body, "revoked") {
				t.Errorf("%s after the API token's revocation: %d %s", name, s, body)
			}
		}
	})

	t.Run("a web session is exchanged", func(t *testing.T) {
		s := session(t, 12*time.Hour)
		status, ex := f.post(t, "/v1/tokens/exchange", s, `{}`)
		if status != 201 {
			t.Fatalf("exchange of a session: %d %+v", status, ex)
		}
		if code, body := f.verifyStatus(t, ex.Token, ""); code != 200 || !strings.Contains(body, `"username":"alice"`) || !strings.Contains(body, `"kind":"exchange"`) {
			t.Fatalf("the exchanged token: %d %s", code, body)
		}
		const marker = "AgEEzzmarker x"
		if status, out := f.post(t, "/v1/tokens/exchange", s, `{"rights":["`+marker+`"]}`); status != 400 || out.Error != "invalid_request" {
			t.Fatalf("a malformed right: %d %+v", status, out)
		}
		if strings.Contains(f.logs.String(), "AgEEzzmarker") {
			t.Error("a requested right reached the log")
		}
	})

	t.Run("a pristine session creates a 90-day token, an attenuated one cannot", func(t *testing.T) {
		s := session(t, 12*time.Hour)
		status, out := f.post(t, "/v1/tokens", s, `{"name":"laptop","expires_in":"2160h"}`)
		if status != 201 || out.Expires.Before(time.Now().Add(89*24*time.Hour)) {
			t.Fatalf("from the session: %d %+v", status, out)
		}
		if code, body := f.verifyStatus(t, out.Token, ""); code != 200 || !strings.Contains(body, `"kind":"api"`) {
			t.Fatalf("the new token: %d %s", code, body)
		}
		shorter, err := macaroon.Attenuate(s, caveat.ExpiresAt(time.Now().Add(10*time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		status, out = f.post(t, "/v1/tokens", shorter, `{"name":"laptop2","expires_in":"2160h"}`)
		if status != 201 || out.Expires.After(time.Now().Add(10*time.Minute)) {
			t.Fatalf("from an attenuated session: %d %+v", status, out)
		}
		if status, out = f.post(t, "/v1/tokens", s, `{"name":"too-long","expires_in":"20000h"}`); status != 400 {
			t.Fatalf("over the maximum lifetime: %d %+v", status, out)
		}
	})
}
