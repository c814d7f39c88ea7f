package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// api calls the daemon with a bearer token and a JSON body ("" for none).
func (dm *daemon) api(t testing.TB, method, path, tok, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, dm.url+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// TestRotationWithDaemon runs rotations against a real amarettid: the old
// token works during the grace, the new one works, the old one is refused
// once the new one has been used (or once the grace ends), a chain of
// rotations retires at once, and refused rotations are refused.
func TestRotationWithDaemon(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	bob := d.cli("editor", "create", "bob")
	dm := d.start("--last-use-interval", "100ms")
	m := d.minter()
	session, bobSession := d.mint(m, alice), d.mint(m, bob)
	store := d.store()
	ctx := context.Background()

	create := func(name, expires string) (string, string) {
		t.Helper()
		status, out := dm.api(t, "POST", "/v1/tokens", session, `{"name":"`+name+`","rights":["read"],"expires_in":"`+expires+`"}`)
		if status != 201 {
			t.Fatalf("create %s: %d %v", name, status, out)
		}
		return out["token"].(string), out["token_id"].(string)
	}
	rotate := func(id, grace string) (string, string) {
		t.Helper()
		status, out := dm.api(t, "POST", "/v1/tokens/"+id+"/rotate", session, `{"grace":"`+grace+`"}`)
		if status != 201 {
			t.Fatalf("rotate %s: %d %v", id, status, out)
		}
		old := out["old"].(map[string]any)
		if old["rotated_to"] != out["token_id"] || out["rotated_from"] != id || out["name"] != old["name"] {
			t.Fatalf("rotation answer %v", out)
		}
		return out["token"].(string), out["token_id"].(string)
	}
	row := func(id string) epoch.APIToken {
		t.Helper()
		r, err := store.Token(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	refusedSoon := func(what, tok string) {
		t.Helper()
		waitUntil(t, what+" refused", 20*time.Second, func() bool { return dm.status(t, tok) == http.StatusUnauthorized })
	}

	oldTok, oldID := create("ci", "720h")
	newTok, newID := rotate(oldID, "1h")
	if _, err := macaroon.CheckAPIFormat(newTok); err != nil {
		t.Fatalf("rotated token: %v", err)
	}
	if n := row(newID); !n.Expires.Equal(row(oldID).Expires) && n.Expires.After(row(oldID).Expires) {
		t.Fatalf("the new token outlives the old: %v > %v", n.Expires, row(oldID).Expires)
	}
	t.Run("old works during the grace", func(t *testing.T) {
		if s := dm.status(t, oldTok); s != 200 {
			t.Fatalf("old token: %d", s)
		}
		// A batch of uses (the old token's) is written, and the
		// retirement that follows it leaves the old token alone.
		waitUntil(t, "the old token's use recorded", 20*time.Second, func() bool { return !row(oldID).LastUsed.IsZero() })
		// A later batch is written only after the first one's
		// retirement has run.
		first := row(oldID).LastUsed
		waitUntil(t, "a later batch", 20*time.Second, func() bool {
			return dm.status(t, oldTok) == 200 && row(oldID).LastUsed.After(first)
		})
		if s := dm.status(t, oldTok); s != 200 || !row(oldID).Revoked.IsZero() {
			t.Fatalf("old token before the new one's use: %d, revoked %v", s, row(oldID).Revoked)
		}
	})
	t.Run("old refused after the new one's first use", func(t *testing.T) {
		if s := dm.status(t, newTok); s != 200 {
			t.Fatalf("new token: %d", s)
		}
		refusedSoon("old token", oldTok)
		if row(oldID).Revoked.IsZero() {
			t.Fatal("the old row is not revoked")
		}
		if s := dm.status(t, newTok); s != 200 {
			t.Fatalf("new token after the retirement: %d", s)
		}
	})
	t.Run("a token rotates itself", func(t *testing.T) {
		// The CI use: a token holding "tokens" replaces itself. Its
		// successor is not its child: the old token's retirement leaves it.
		status, out := dm.api(t, "POST", "/v1/tokens", session, `{"name":"self","rights":["read","tokens"],"expires_in":"720h"}`)
		if status != 201 {
			t.Fatalf("create: %d %v", status, out)
		}
		selfTok, selfID := out["token"].(string), out["token_id"].(string)
		status, out = dm.api(t, "POST", "/v1/tokens/"+selfID+"/rotate", selfTok, `{"grace":"1h"}`)
		if status != 201 {
			t.Fatalf("self-rotation: %d %v", status, out)
		}
		succTok, succID := out["token"].(string), out["token_id"].(string)
		if slices.Contains(row(succID).Parents, selfID) {
			t.Fatalf("the successor names the old token as a parent: %v", row(succID).Parents)
		}
		if s := dm.status(t, succTok); s != 200 {
			t.Fatalf("new token: %d", s)
		}
		refusedSoon("old token", selfTok)
		if row(selfID).Revoked.IsZero() {
			t.Fatal("the old row is not revoked")
		}
		if s := dm.status(t, succTok); s != 200 {
			t.Fatalf("new token after the old one's retirement: %d", s)
		}
	})
	t.Run("rotated then rotated again", func(t *testing.T) {
		b, bID := rotate(newID, "1h")
		c, cID := rotate(bID, "1h")
		for name, tok := range map[string]string{"first": newTok, "second": b, "third": c} {
			if s := dm.status(t, tok); s != 200 && name != "third" {
				t.Fatalf("%s during the grace: %d", name, s)
			}
		}
		// Using the newest ends both older ones.
		if s := dm.status(t, c); s != 200 {
			t.Fatalf("newest: %d", s)
		}
		refusedSoon("first", newTok)
		refusedSoon("second", b)
		if s := dm.status(t, c); s != 200 || !row(cID).Revoked.IsZero() {
			t.Fatalf("newest after the chain retired: %d", s)
		}
	})
	t.Run("the grace ends", func(t *testing.T) {
		tok, id := create("nightly", "720h")
		_, _ = rotate(id, "1s")
		refusedSoon("old token after its grace", tok)
	})
	t.Run("refused", func(t *testing.T) {
		live, liveID := create("refusals", "720h")
		_ = live
		short, shortID := create("short", "1s")
		waitUntil(t, "the short token expired", 20*time.Second, func() bool { return dm.status(t, short) == http.StatusUnauthorized })
		revokedTok, revokedID := create("revoked", "720h")
		_ = revokedTok
		if s, _ := dm.api(t, "DELETE", "/v1/tokens/"+revokedID, session, ""); s != 200 {
			t.Fatalf("revoke: %d", s)
		}
		for _, tc := range []struct {
			name, id, tok, body string
			status              int
		}{
			{"revoked token", revokedID, session, `{}`, 409},
			{"expired token", shortID, session, `{}`, 409},
			{"already rotated", oldID, session, `{}`, 409},
			{"another editor's token", liveID, bobSession, `{}`, 404},
			{"unknown token", "00000000-0000-4000-8000-000000000000", session, `{}`, 404},
			{"bad grace", liveID, session, `{"grace":"soon"}`, 400},
			{"grace too long", liveID, session, `{"grace":"10000h"}`, 400},
			{"unknown field", liveID, session, `{"gracе":"1h"}`, 400},
			{"no token", liveID, "", `{}`, 401},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if s, out := dm.api(t, "POST", "/v1/tokens/"+tc.id+"/rotate", tc.tok, tc.body); s != tc.status || out["error"] == nil {
					t.Fatalf("%d %v, want %d with an error", s, out, tc.status)
				}
			})
		}
		// A token with the tokens right only for reading cannot rotate.
		readOnly := d.mint(m, alice)
		narrowed, err := macaroon.Attenuate(readOnly, caveat.Rights{"read"})
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := dm.api(t, "POST", "/v1/tokens/"+liveID+"/rotate", narrowed, `{}`); s != 403 {
			t.Fatalf("rotation by a token without the tokens right: %d", s)
		}
	})
	t.Run("concurrent rotations of one token", func(t *testing.T) {
		_, id := create("race", "720h")
		const n = 8
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i], _ = dm.api(t, "POST", "/v1/tokens/"+id+"/rotate", session, `{}`) })
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			switch s {
			case 201:
				ok++
			case 409:
			default:
				t.Fatalf("statuses %v", statuses)
			}
		}
		rows, err := store.Tokens(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		race := 0
		for _, r := range rows {
			if r.Name == "race" {
				race++
			}
		}
		if ok != 1 || race != 2 {
			t.Fatalf("%d rotations succeeded (%v); %d rows named race", ok, statuses, race)
		}
	})
}
