package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestAuditTrailDaemon runs every management action of the daemon once,
// and refused uses of a revoked token many times, then reads the trail
// through GET /v1/admin/audit: one event per action by the caller's editor
// and token from the validated address, the refusals as one counted event,
// newest first in pages — and never a token in any record.
func TestAuditTrailDaemon(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bob, _ := f.store.Create(ctx, epoch.NewEditor{Username: "bob"})
	session := f.mint(t, f.alice.ID)
	adminTok := f.mint(t, f.admin.ID)
	secrets := []string{session, adminTok}
	spoofed := func(tok string) map[string][]string { return with(bearer(tok), "X-Real-IP", "198.51.100.66") }
	ok := func(method, path, tok, body string, want int) map[string]any {
		t.Helper()
		resp, b := f.do(t, call{method, path, spoofed(tok), body})
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		var out map[string]any
		json.Unmarshal([]byte(b), &out)
		return out
	}

	created := ok("POST", "/v1/tokens", session, `{"name":"ci","expires_in":"720h"}`, 201)
	apiTok, apiID := created["token"].(string), created["token_id"].(string)
	secrets = append(secrets, apiTok)
	exchanged := ok("POST", "/v1/tokens/exchange", apiTok, `{"ttl":"10m"}`, 201)
	secrets = append(secrets, exchanged["token"].(string))
	ok("DELETE", "/v1/tokens/"+apiID, session, "", 200)
	for range 50 {
		if resp, _ := f.do(t, call{"GET", "/v1/verify", spoofed(apiTok), ""}); resp.StatusCode != 401 {
			t.Fatalf("revoked token: %d", resp.StatusCode)
		}
	}
	// Introspecting the revoked token is a refused use too.
	if resp, b := f.do(t, call{"POST", "/v1/introspect", with(spoofed(adminTok), "Content-Type", "application/x-www-form-urlencoded"), "token=" + url.QueryEscape(apiTok)}); resp.StatusCode != 200 || !strings.Contains(b, `"active":false`) {
		t.Fatalf("introspecting the revoked token: %d %s", resp.StatusCode, b)
	}
	ok("POST", "/v1/admin/editors/"+bob.ID+"/touch", adminTok, "", 200)
	ok("POST", "/v1/admin/editors/"+bob.ID+"/lock", adminTok, "", 200)
	ok("POST", "/v1/admin/editors/"+bob.ID+"/unlock", adminTok, "", 200)
	login := ok("POST", "/v1/admin/logins", adminTok, `{"provider":"dev","subject":"carol-sub","username":"carol"}`, 201)
	carol := login["editor"].(map[string]any)["id"].(string)
	ok("POST", "/v1/admin/editors/"+bob.ID+"/links", adminTok, `{"provider":"https://id.example.org","subject":"bob-sub"}`, 201)
	ok("DELETE", "/v1/admin/editors/"+bob.ID+"/links?provider=https://id.example.org", adminTok, "", 200)
	ok("POST", "/v1/me/touch", session, "", 200)
	ok("POST", "/v1/admin/touch-all", adminTok, "", 200)
	if err := f.refusals.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	adminTok = f.mint(t, f.admin.ID) // touch-all revoked the first
	secrets = append(secrets, adminTok)
	read := func(query string) ([]epoch.AuditEvent, string, string) {
		t.Helper()
		resp, b := f.do(t, call{"GET", "/v1/admin/audit" + query, bearer(adminTok), ""})
		if resp.StatusCode != 200 {
			t.Fatalf("GET /v1/admin/audit%s: %d %s", query, resp.StatusCode, b)
		}
		var out struct {
			Events []epoch.AuditEvent `json:"events"`
			Next   string             `json:"next"`
		}
		if err := json.Unmarshal([]byte(b), &out); err != nil {
			t.Fatal(err)
		}
		return out.Events, out.Next, b
	}
	events, next, raw := read("?limit=1000")
	if next != "" {
		t.Fatalf("next %q on the only page", next)
	}
	type key struct {
		action epoch.AuditAction
		by     string
	}
	got := map[key]int{}
	for _, e := range events {
		got[key{e.Action, e.ActorEditorID}]++
		if e.From != "127.0.0.1" {
			t.Errorf("event %+v: from %q, want the peer (X-Real-IP of an untrusted peer is ignored)", e, e.From)
		}
		switch e.Action {
		case epoch.AuditTokenRefused:
			if e.Actor != epoch.ActorDaemon || e.TokenID != apiID || e.Count != 51 || e.Detail != "revoked" || e.EditorID != f.alice.ID {
				t.Errorf("refusals recorded as %+v", e)
			}
		default:
			if e.Actor != epoch.ActorToken || e.ActorEditorID == "" {
				t.Errorf("event %+v: want a caller", e)
			}
		}
	}
	want := map[key]int{
		{epoch.AuditTokenCreated, f.alice.ID}: 1, {epoch.AuditTokenExchanged, f.alice.ID}: 1, {epoch.AuditTokenRevoked, f.alice.ID}: 1,
		{epoch.AuditTokenRefused, ""}: 1, {epoch.AuditEditorTouched, f.admin.ID}: 1, {epoch.AuditEditorLocked, f.admin.ID}: 1,
		{epoch.AuditEditorUnlocked, f.admin.ID}: 1, {epoch.AuditEditorCreated, f.admin.ID}: 1, {epoch.AuditEditorLinked, f.admin.ID}: 2,
		{epoch.AuditEditorUnlinked, f.admin.ID}: 1, {epoch.AuditEditorTouched, f.alice.ID}: 1, {epoch.AuditEditorTouchedAll, f.admin.ID}: 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s events by %q, want %d", got[k], k.action, k.by, n)
		}
	}
	if len(events) != 13 {
		t.Errorf("%d events, want 13: %v", len(events), got)
	}
	for _, s := range secrets {
		for _, part := range []string{s, s[len(s)-32:]} {
			if strings.Contains(raw, part) {
				t.Fatal("a token appears in the audit trail")
			}
		}
	}

	t.Run("filters", func(t *testing.T) {
		for _, c := range []struct {
			query string
			want  int
		}{
			{"?editor_id=" + bob.ID, 5},
			{"?editor_id=" + carol, 2},
			{"?token_id=" + apiID, 4},
			{"?action=token.refused", 1},
			{"?since=" + url.QueryEscape("2999-01-01T00:00:00Z"), 0},
			{"?since=1ns", 0},
			{"?since=87600h&limit=1000", len(events)},
			{"?editor_id=" + url.QueryEscape("not an id!"), 0},
		} {
			if got, _, _ := read(c.query); len(got) != c.want {
				t.Errorf("%s: %d events, want %d", c.query, len(got), c.want)
			}
		}
	})
	t.Run("pages", func(t *testing.T) {
		var ids []int64
		q := "?limit=4"
		for range 10 {
			page, next, _ := read(q)
			for _, e := range page {
				ids = append(ids, e.ID)
			}
			if next == "" {
				break
			}
			q = "?limit=4&before=" + next
		}
		if len(ids) != 13 {
			t.Fatalf("paged %d events", len(ids))
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] >= ids[i-1] {
				t.Fatalf("not newest first: %v", ids)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			name, tok, query string
			status           int
		}{
			{"not an admin", f.mint(t, bob.ID), "", 403},
			{"no token", "", "", 401},
			{"bad limit", adminTok, "?limit=0", 400},
			{"bad cursor", adminTok, "?before=x", 400},
			{"bad since", adminTok, "?since=yesterday", 400},
			{"unknown parameter", adminTok, "?delete=1", 400},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := map[string][]string{}
				if c.tok != "" {
					h = bearer(c.tok)
				}
				if resp, b := f.do(t, call{"GET", "/v1/admin/audit" + c.query, h, ""}); resp.StatusCode != c.status {
					t.Fatalf("%d %s, want %d", resp.StatusCode, b, c.status)
				}
			})
		}
		for _, m := range []string{"DELETE", "POST", "PUT"} {
			if resp, _ := f.do(t, call{m, "/v1/admin/audit", bearer(adminTok), ""}); resp.StatusCode != 405 {
				t.Fatalf("%s /v1/admin/audit: %d, want 405 (the trail is append-only)", m, resp.StatusCode)
			}
		}
	})
}
