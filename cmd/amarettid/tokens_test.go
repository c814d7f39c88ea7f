package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
)

func TestTokenAPI(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bot, _ := f.store.Create(ctx, epoch.NewEditor{Username: "import-bot", Role: epoch.RoleBot, Bot: true})
	bob, _ := f.store.Create(ctx, epoch.NewEditor{Username: "bob"})
	time.Sleep(time.Millisecond)
	session := f.mint(t, f.alice.ID)
	readOnly := f.mint(t, f.alice.ID, caveat.Rights{"read"})
	adminTok := f.mint(t, f.admin.ID)
	bobTok := f.mint(t, bob.ID)
	botTok := f.mint(t, bot.ID)

	create := func(tok, body string) (int, map[string]any) {
		resp, b := f.do(t, call{"POST", "/v1/tokens", bearer(tok), body})
		var out map[string]any
		json.Unmarshal([]byte(b), &out)
		return resp.StatusCode, out
	}
	var secrets []string
	var ids []string
	for _, name := range []string{"laptop", "server", "cron"} {
		status, out := create(session, `{"name":"`+name+`","description":"for `+name+`","rights":["read","edit"],"expires_in":"720h"}`)
		if status != 201 || out["token"] == nil || out["token_id"] == nil || out["name"] != name {
			t.Fatalf("create %s: %d %v", name, status, out)
		}
		secrets = append(secrets, out["token"].(string))
		ids = append(ids, out["token_id"].(string))
	}
	for name, tc := range map[string]struct {
		tok, body string
		status    int
	}{
		"duplicate name":          {session, `{"name":"laptop"}`, 409},
		"no token":                {"", `{"name":"x"}`, 401},
		"token without the right": {readOnly, `{"name":"x"}`, 403},
		"bot asking for admin":    {botTok, `{"name":"x","rights":["admin:touch"]}`, 403},
		"bad body":                {session, `{"name":`, 400},
		"unknown field":           {session, `{"nmae":"x"}`, 400},
		"bad expiry":              {session, `{"name":"x","expires_in":"soon"}`, 400},
		"empty name":              {session, `{"name":""}`, 400},
	} {
		h := map[string][]string{}
		if tc.tok != "" {
			h = bearer(tc.tok)
		}
		resp, body := f.do(t, call{"POST", "/v1/tokens", h, tc.body})
		if resp.StatusCode != tc.status || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s, want %d with a JSON error", name, resp.StatusCode, body, tc.status)
		}
	}

	// The created tokens work; their use is recorded, off the hot path.
	for _, s := range secrets {
		if resp, _ := f.do(t, call{"GET", "/v1/verify", with(bearer(s), "X-Real-IP", "192.0.2.7"), ""}); resp.StatusCode != 200 {
			t.Fatal("created token does not verify")
		}
	}
	if err := f.tracker.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Listing: rights, expiry, last use — never a secret.
	resp, body := f.do(t, call{"GET", "/v1/tokens", bearer(session), ""})
	for _, s := range secrets {
		if strings.Contains(body, s[len(s)-40:]) {
			t.Fatal("a listing contains a secret")
		}
	}
	var list struct {
		Tokens []apitoken.Row `json:"tokens"`
	}
	json.Unmarshal([]byte(body), &list)
	if resp.StatusCode != 200 || len(list.Tokens) != 3 || list.Tokens[0].LastUsedFrom != "127.0.0.1" /* X-Real-IP from an untrusted peer is ignored */ || list.Tokens[0].LastUsed.IsZero() || list.Tokens[0].Expires.IsZero() || !list.Tokens[0].Live {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	f.do(t, call{"POST", "/v1/tokens", bearer(bobTok), `{"name":"bobs","expires_in":"24h"}`})
	if resp, body := f.do(t, call{"GET", "/v1/tokens/expiring?within=800h", bearer(session), ""}); resp.StatusCode != 200 || strings.Count(body, `"token_id"`) != 3 || strings.Contains(body, `"name":"bobs"`) {
		t.Fatalf("alice's expiring tokens: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.do(t, call{"GET", "/v1/tokens/expiring?within=48h", bearer(adminTok), ""}); resp.StatusCode != 200 || strings.Count(body, `"token_id"`) != 1 || !strings.Contains(body, `"name":"bobs"`) {
		t.Fatalf("everyone's tokens expiring within 48h, for an admin: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.do(t, call{"GET", "/v1/tokens/expiring?within=soon", bearer(session), ""}); resp.StatusCode != 400 {
		t.Fatal("bad window is not 400")
	}
	if resp, _ := f.do(t, call{"GET", "/v1/tokens?editor_id=" + f.alice.ID, bearer(bobTok), ""}); resp.StatusCode != 403 {
		t.Fatal("bob listed alice's tokens")
	}
	if resp, body := f.do(t, call{"GET", "/v1/tokens?editor_id=*", bearer(adminTok), ""}); resp.StatusCode != 200 || strings.Count(body, `"token_id"`) != 4 {
		t.Fatalf("admin listing everyone: %d %s", resp.StatusCode, body)
	}

	// Revoke one: it fails, the other two keep working.
	if resp, _ := f.do(t, call{"DELETE", "/v1/tokens/" + ids[0], bearer(bobTok), ""}); resp.StatusCode != 404 {
		t.Fatal("bob revoked alice's token")
	}
	if resp, body := f.do(t, call{"DELETE", "/v1/tokens/" + ids[0], bearer(session), ""}); resp.StatusCode != 200 || !strings.Contains(body, `"live":false`) {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.do(t, call{"DELETE", "/v1/tokens/" + ids[0], bearer(session), ""}); resp.StatusCode != 409 {
		t.Fatal("second revoke is not 409")
	}
	if resp, _ := f.do(t, call{"DELETE", "/v1/tokens/00000000-0000-4000-8000-000000000000", bearer(session), ""}); resp.StatusCode != 404 {
		t.Fatal("unknown token is not 404")
	}
	want := []int{401, 200, 200}
	for i, s := range secrets {
		if resp, body := f.do(t, call{"GET", "/v1/verify", bearer(s), ""}); resp.StatusCode != want[i] {
			t.Fatalf("token %d after revoking token 0: %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, _ := f.do(t, call{"DELETE", "/v1/tokens/" + ids[1], bearer(adminTok), ""}); resp.StatusCode != 200 {
		t.Fatal("admin revoking alice's token")
	}

	// Exchange: a short-lived token with no more rights than its parent.
	resp, body = f.do(t, call{"POST", "/v1/tokens/exchange", bearer(secrets[2]), `{"rights":["read"],"ttl":"5m"}`})
	var ex map[string]any
	json.Unmarshal([]byte(body), &ex)
	if resp.StatusCode != 201 || ex["parent_token_id"] != ids[2] {
		t.Fatalf("exchange: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.do(t, call{"GET", "/v1/verify", bearer(ex["token"].(string)), ""}); resp.StatusCode != 200 || !strings.Contains(body, `"rights":["read"]`) {
		t.Fatalf("exchanged token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.do(t, call{"POST", "/v1/tokens/exchange", bearer(secrets[2]), `{"rights":["delete"]}`}); resp.StatusCode != 403 {
		t.Fatal("exchange for a right the parent lacks")
	}
	f.do(t, call{"DELETE", "/v1/tokens/" + ids[2], bearer(session), ""})
	if resp, _ := f.do(t, call{"GET", "/v1/verify", bearer(ex["token"].(string)), ""}); resp.StatusCode != 401 {
		t.Fatal("exchanged token outlived its parent's revocation")
	}
	if strings.Contains(f.logs.String(), secrets[2][len(secrets[2])-40:]) {
		t.Fatal("a secret reached the log")
	}
}
