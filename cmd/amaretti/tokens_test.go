package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/apitoken"
)

func TestTokensCommands(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	bot := c.ok("", "editor", "create", "bot", "--role", "bot")
	var secrets, ids []string
	for _, name := range []string{"laptop", "server", "cron"} {
		var out struct {
			Token   string `json:"token"`
			TokenID string `json:"token_id"`
		}
		if err := json.Unmarshal([]byte(c.ok("", "--json", "tokens", "create", alice, "--name", name, "--description", "the "+name, "--right", "read", "--expires", "72h")), &out); err != nil {
			t.Fatal(err)
		}
		secrets, ids = append(secrets, out.Token), append(ids, out.TokenID)
	}
	plain := c.ok("", "tokens", "create", alice, "--name", "plain")
	c.ok("", "token", "verify", plain, "--right", "anything")
	c.fail("live token of that name", "", "tokens", "create", alice, "--name", "laptop")
	c.fail(`may not hold "admin:touch"`, "", "tokens", "create", bot, "--name", "x", "--right", "admin:touch")
	c.fail("unknown editor", "", "tokens", "create", "nobody", "--name", "x")
	c.fail("tokens create: --name is required", "", "tokens", "create", alice)

	listing := c.ok("", "tokens", "list", alice)
	for _, s := range append(secrets, plain) {
		if strings.Contains(listing, s[len(s)-40:]) {
			t.Fatal("tokens list printed a secret")
		}
	}
	if !strings.Contains(listing, "laptop") || strings.Count(listing, " live\n")+strings.Count(listing, " live") < 4 || !strings.Contains(listing, "(all)") {
		t.Fatalf("tokens list:\n%s", listing)
	}
	var rows []apitoken.Row
	json.Unmarshal([]byte(c.ok("", "--json", "tokens", "list")), &rows)
	if len(rows) != 4 || rows[0].Status != apitoken.StatusLive || !rows[0].Live {
		t.Fatalf("rows %+v", rows)
	}
	var expiring []apitoken.Row
	json.Unmarshal([]byte(c.ok("", "tokens", "expiring", "--within", "100h", "--json")), &expiring)
	if len(expiring) != 3 {
		t.Fatalf("expiring within 100h: %d", len(expiring))
	}

	c.ok("", "tokens", "revoke", ids[0])
	c.fail("token revoked", "", "token", "verify", secrets[0])
	c.ok("", "token", "verify", secrets[1])
	c.ok("", "token", "verify", secrets[2])
	c.fail("already revoked", "", "tokens", "revoke", ids[0])
	c.fail("unknown API token", "", "tokens", "revoke", "00000000-0000-4000-8000-000000000000")
	c.ok("", "editor", "touch", alice)
	c.fail("token revoked", "", "token", "verify", secrets[1])
}

func TestBootstrap(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	dir := filepath.Join(c.dir, "env")
	first := c.ok("", "bootstrap", "--env-dir", dir)
	if strings.Count(first, "created editor") != 4 || strings.Count(first, "wrote") != 4 {
		t.Fatalf("first bootstrap:\n%s", first)
	}
	read := func(name string) string {
		fi, err := os.Stat(filepath.Join(dir, name+".env"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s.env: %v %v", name, fi.Mode(), err)
		}
		variable := "AMARETTI_TOKEN="
		if name == "webfront" {
			variable = "WEBFRONT_SERVICE_TOKEN="
		}
		b, _ := os.ReadFile(filepath.Join(dir, name+".env"))
		for _, line := range strings.Split(string(b), "\n") {
			if tok, ok := strings.CutPrefix(line, variable); ok {
				return tok
			}
		}
		t.Fatalf("%s.env has no %s", name, variable)
		return ""
	}
	roles := map[string]string{"root": "superuser", "import-bot": "admin", "demo-user": "editor", "webfront": "admin"}
	tokens := map[string]string{}
	for name, role := range roles {
		tokens[name] = read(name)
		var id struct {
			Role string `json:"role"`
		}
		json.Unmarshal([]byte(c.ok("", "--json", "token", "verify", tokens[name])), &id)
		if id.Role != role {
			t.Fatalf("%s's token: role %q, want %s", name, id.Role, role)
		}
	}
	var eds []editorJSON
	c.jsonOut(&eds, "editor", "list")
	if len(eds) != 4 || !eds[1].Bot || eds[0].Bot || !eds[3].Bot {
		t.Fatalf("editors %+v", eds)
	}
	// The web frontend's service token may find, create and link editors
	// who log in, and nothing else its role allows.
	c.ok("", "token", "verify", tokens["webfront"], "--right", "admin:logins")
	c.fail("rights", "", "token", "verify", tokens["webfront"], "--right", "admin:touch")

	// Again: nothing duplicated, files unchanged.
	second := c.ok("", "bootstrap", "--env-dir", dir)
	if strings.Contains(second, "created") || strings.Contains(second, "wrote") {
		t.Fatalf("second bootstrap:\n%s", second)
	}
	c.jsonOut(&eds, "editor", "list")
	if len(eds) != 4 || read("root") != tokens["root"] {
		t.Fatal("second bootstrap changed something")
	}
	// A lost file: a new token, and the lost one revoked.
	os.Remove(filepath.Join(dir, "demo-user.env"))
	if out := c.ok("", "bootstrap", "--env-dir", dir); !strings.Contains(out, "demo-user.env was gone: revoked its token") {
		t.Fatalf("bootstrap after a lost file does not say it revoked the lost token:\n%s", out)
	}
	if read("demo-user") == tokens["demo-user"] {
		t.Fatal("no new token for the lost file")
	}
	c.ok("", "token", "verify", read("demo-user"))
	c.fail("token revoked", "", "token", "verify", tokens["demo-user"])
}

// TestBootstrapRoleWarning: an editor of bootstrap's name made earlier with
// another role is kept, and bootstrap says its token is bounded by that
// role.
func TestBootstrapRoleWarning(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	c.ok("", "editor", "create", "import-bot", "--role", "bot")
	r := c.run("", "bootstrap", "--env-dir", filepath.Join(c.dir, "env"))
	if r.code != 0 || !strings.Contains(r.stderr, "editor import-bot has role bot, not admin") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
