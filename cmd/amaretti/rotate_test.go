package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
)

// TestTokensRotate: "tokens rotate" prints a new token with the old one's
// name and rights; both verify until the new one is used; the listing
// shows the pending rotation; a second rotation of the same token, and
// rotations of revoked or unknown tokens, are refused.
func TestTokensRotate(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	var created struct {
		Token   string `json:"token"`
		TokenID string `json:"token_id"`
	}
	c.jsonOut(&created, "tokens", "create", alice, "--name", "ci", "--right", "read", "--expires", "72h")
	var rotated struct {
		Token   string `json:"token"`
		TokenID string `json:"token_id"`
		Name    string `json:"name"`
		Rights  []string
		Old     struct {
			RotatedTo  string `json:"rotated_to"`
			GraceUntil string `json:"grace_until"`
		} `json:"old"`
	}
	// By the token itself, from stdin: never echoed.
	r := c.run(created.Token+"\n", "--json", "tokens", "rotate", "-", "--grace", "2h")
	if r.code != 0 {
		t.Fatalf("rotate: %s", r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &rotated); err != nil {
		t.Fatal(err)
	}
	if rotated.Name != "ci" || strings.Join(rotated.Rights, ",") != "read" || rotated.Old.RotatedTo != rotated.TokenID || rotated.Old.GraceUntil == "" {
		t.Fatalf("rotated %+v", rotated)
	}
	c.ok("", "token", "verify", created.Token, "--right", "read")
	c.ok("", "token", "verify", rotated.Token, "--right", "read")
	c.fail(`right "edit" not granted`, "", "token", "verify", rotated.Token, "--right", "edit")
	if list := c.ok("", "tokens", "list", alice); !strings.Contains(list, "rotated to "+rotated.TokenID) {
		t.Fatalf("list:\n%s", list)
	}
	var rows []apitoken.Row
	c.jsonOut(&rows, "tokens", "list", alice)
	if len(rows) != 2 || rows[0].RotatedTo != rotated.TokenID || rows[1].RotatedFrom != created.TokenID {
		t.Fatalf("rows %+v", rows)
	}
	c.fail("already rotated", "", "tokens", "rotate", created.TokenID)
	c.fail("--grace must be positive", "", "tokens", "rotate", rotated.TokenID, "--grace", "-1h")
	c.fail("unknown API token", "", "tokens", "rotate", "00000000-0000-4000-8000-000000000000")
	c.ok("", "tokens", "revoke", rotated.TokenID)
	c.fail("already revoked", "", "tokens", "rotate", rotated.TokenID)
	// The successor's revocation ends the rotation: the next retirement
	// (run by any rotation) revokes the old token too.
	c.ok("", "tokens", "create", alice, "--name", "other")
	var other []apitoken.Row
	c.jsonOut(&other, "tokens", "list", alice)
	c.ok("", "tokens", "rotate", other[len(other)-1].TokenID)
	c.fail("token revoked", "", "token", "verify", created.Token)
}

// TestTokensListAttenuation: "tokens list" shows how a token was last used
// when its holder had narrowed it, escaped for the terminal.
func TestTokensListAttenuation(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	var created struct {
		TokenID string `json:"token_id"`
	}
	c.jsonOut(&created, "tokens", "create", alice, "--name", "ci")
	// A daemon's tracker records uses; here the store is written directly.
	store, err := sqlite.Open(context.Background(), filepath.Join(c.dir, "amaretti.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.RecordUses(context.Background(), []epoch.Use{{TokenID: created.TokenID, At: time.Now(), From: "192.0.2.1", Attenuation: "GET /api/x", AttenuationID: "0123456789ab"}}); err != nil {
		t.Fatal(err)
	}
	if list := c.ok("", "tokens", "list", alice); !strings.Contains(list, "from 192.0.2.1, attenuated to GET /api/x") {
		t.Fatalf("list:\n%s", list)
	}
	var rows []apitoken.Row
	c.jsonOut(&rows, "tokens", "list", alice)
	if len(rows) != 1 || rows[0].LastAttenuation != "GET /api/x" || rows[0].LastAttenuationID != "0123456789ab" {
		t.Fatalf("rows %+v", rows)
	}
}
