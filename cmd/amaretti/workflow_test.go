package main

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/verifier"
)

// TestWorkflow runs every command of the README's walkthrough against one
// store, including the failures.
func TestWorkflow(t *testing.T) {
	c := newCLI(t)

	// init, twice.
	if out := c.ok("", "init"); !strings.Contains(out, "created key store") || !strings.Contains(out, "created database") {
		t.Fatalf("init: %s", out)
	}
	if out := c.ok("", "init"); !strings.Contains(out, "unchanged") || strings.Contains(out, "created") {
		t.Fatalf("second init: %s", out)
	}
	fi, err := os.Stat(filepath.Join(c.dir, "keys"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("key directory: %v %v", fi.Mode(), err)
	}

	// Editors.
	alice := c.ok("", "editor", "create", "alice")
	if len(alice) != 26 {
		t.Fatalf("editor id %q", alice)
	}
	c.fail(`username "alice" is taken`, "", "editor", "create", "alice")
	c.fail(`--role "root" is not a role`, "", "editor", "create", "mallory", "--role", "root")
	c.fail("not an RFC 3339 time", "", "editor", "create", "mallory", "--epoch", "yesterday")
	bot := c.ok("", "editor", "create", "import-bot", "--role", "bot", "--id", "aaaaaaaaaaaaaaaaaaaaaaaaaq", "--epoch", "2019-01-01T00:00:00Z")
	if bot != "aaaaaaaaaaaaaaaaaaaaaaaaaq" {
		t.Fatalf("editor with --id: %q", bot)
	}
	var eds []editorJSON
	c.jsonOut(&eds, "editor", "list")
	if len(eds) != 2 || eds[0].Username != "alice" || eds[1].Role != "bot" || !eds[1].AuthEpoch.Equal(time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("editor list: %+v", eds)
	}
	if out := c.ok("", "editor", "list"); !strings.Contains(out, "USERNAME") || !strings.Contains(out, "import-bot") {
		t.Fatalf("editor list table: %s", out)
	}
	var shown editorJSON
	c.jsonOut(&shown, "editor", "show", alice)
	if shown.ID != alice || !shown.Active || shown.Locked {
		t.Fatalf("editor show: %+v", shown)
	}
	c.fail("unknown editor", "", "editor", "show", "nobody")

	// Minting and verifying.
	tok := c.ok("", "token", "mint", alice, "--expires", "1h", "--right", "read", "--right", "edit")
	if strings.ContainsAny(tok, "=+/ \n") {
		t.Fatalf("token not base64url without padding: %q", tok)
	}
	var id verifier.Identity
	c.jsonOut(&id, "token", "verify", tok)
	if id.EditorID != alice || id.Role != "editor" || id.Expires.IsZero() || strings.Join(id.Rights, ",") != "read,edit" {
		t.Fatalf("token verify: %+v", id)
	}
	out := c.ok(tok+"\n", "token", "verify", "-", "--right", "edit")
	if !strings.Contains(out, alice) || strings.Contains(out, tok) {
		t.Fatalf("verify from stdin: %s", out)
	}
	insp := c.ok(tok+"\n", "token", "inspect", "-")
	for _, want := range []string{"api.example.org", "editor_id = " + alice, "time > ", "time < ", "rights = read,edit", "verifies   yes"} {
		if !strings.Contains(insp, want) {
			t.Fatalf("inspect lacks %q:\n%s", want, insp)
		}
	}
	if strings.Contains(insp, tok) {
		t.Fatal("inspect printed the token")
	}
	env := c.ok("", "token", "mint", alice, "--env-format")
	if !strings.HasPrefix(env, "AMARETTI_TOKEN=") || strings.Count(env, "\n") != 0 {
		t.Fatalf("--env-format: %q", env)
	}
	c.fail("unknown editor", "", "token", "mint", "nobody")
	c.fail("usage: amaretti token mint EDITOR_ID", "", "token", "mint")
	c.fail("no token on stdin", "", "token", "verify", "-")

	// Attenuation needs no key or database.
	weak := c.ok("", "token", "attenuate", tok, "--right", "read", "--method", "get", "--expires", "10m")
	noStore := &runner{t: t, dir: t.TempDir(), env: []string{"AMARETTI_KEYS=/nonexistent", "AMARETTI_DB=/nonexistent"}}
	if w2 := noStore.ok("", "token", "attenuate", tok, "--endpoint", "list"); w2 == "" {
		t.Fatal("attenuate without a store printed nothing")
	}
	c.ok("", "token", "verify", weak, "--right", "read", "--method", "GET")
	c.fail("right \"edit\" not granted", "", "token", "verify", weak, "--right", "edit", "--method", "GET")
	c.fail("method = GET", "", "token", "verify", weak, "--right", "read", "--method", "POST")
	c.fail("attenuate needs at least one", "", "token", "attenuate", tok)

	// Tampering and bad input.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	raw[len(raw)-1] ^= 1
	c.fail("bad signature", "", "token", "verify", base64.RawURLEncoding.EncodeToString(raw))
	c.fail("malformed token", "", "token", "verify", "not-a-token!")
	c.fail("malformed token", "", "token", "inspect", tok[:40])

	// A token from another deployment: unknown key.
	other := newCLI(t)
	other.ok("", "init")
	otherAlice := other.ok("", "editor", "create", "alice")
	foreign := other.ok("", "token", "mint", otherAlice)
	r := c.fail("unknown key", "", "token", "verify", foreign)
	if strings.Contains(r.stderr, foreign) {
		t.Fatal("error printed the token")
	}

	// Expiry.
	short := c.ok("", "token", "mint", alice, "--expires", "1s")
	time.Sleep(1100 * time.Millisecond)
	c.fail("token expired", "", "token", "verify", short)

	// Lock, unlock, touch.
	c.ok("", "editor", "lock", alice)
	c.fail("editor locked", "", "token", "verify", tok)
	c.fail("is locked", "", "token", "mint", alice)
	c.ok("", "editor", "unlock", alice)
	c.fail("token revoked", "", "token", "verify", tok) // minted before the unlock
	fresh := c.ok("", "token", "mint", alice)
	c.ok("", "token", "verify", fresh)
	c.ok("", "editor", "touch", alice)
	c.fail("token revoked", "", "token", "verify", fresh)
	if insp := c.ok("", "token", "inspect", fresh); !strings.Contains(insp, "verifies   no: token revoked") {
		t.Fatalf("inspect of a revoked token:\n%s", insp)
	}
	beforeDeactivation := c.ok("", "token", "mint", alice)
	c.ok("", "editor", "deactivate", alice)
	c.fail("editor inactive", "", "token", "verify", beforeDeactivation)
	c.fail("is deactivated", "", "token", "mint", alice)
	c.ok("", "editor", "activate", alice)
	c.ok("", "token", "verify", beforeDeactivation)
	after := c.ok("", "token", "mint", alice)
	botTok := c.ok("", "token", "mint", bot)
	for _, answer := range []string{"", "n\n", "whatever\n"} {
		r := c.run(answer, "editor", "touch", "--all")
		if r.code == 0 || !strings.HasPrefix(r.stderr, "Touch every editor") || !strings.HasSuffix(r.stderr, "(use --yes to skip the question)\n") {
			t.Fatalf("touch --all answered %q: exit %d, stderr %q", answer, r.code, r.stderr)
		}
	}
	c.ok("", "token", "verify", after)
	if out := c.ok("y\n", "editor", "touch", "--all"); !strings.Contains(out, "touched 2 editors") {
		t.Fatalf("touch --all: %s", out)
	}
	c.fail("token revoked", "", "token", "verify", after)
	c.fail("token revoked", "", "token", "verify", botTok)
	c.ok("", "editor", "touch", "--all", "--yes")
	c.fail("unknown editor", "", "editor", "touch", "nobody")

	// Keys: rotate, retire, export, import.
	var keys []keyJSON
	c.jsonOut(&keys, "keys", "list")
	if len(keys) != 1 || keys[0].State != "current" {
		t.Fatalf("keys list: %+v", keys)
	}
	first := keys[0].ID
	beforeRotation := c.ok("", "token", "mint", alice)
	c.ok("", "keys", "rotate")
	c.jsonOut(&keys, "keys", "list")
	if len(keys) != 2 || keys[0].State != "verify-only" || keys[1].State != "current" {
		t.Fatalf("after rotate: %+v", keys)
	}
	c.ok("", "token", "verify", beforeRotation)
	c.fail("rotate before retiring", "", "keys", "retire", keys[1].ID)
	c.ok("", "keys", "retire", first)
	c.fail("key retired", "", "token", "verify", beforeRotation)
	secret := c.ok("", "keys", "export", keys[1].ID)
	if len(secret) != 44 {
		t.Fatalf("exported key %q", secret)
	}
	c.fail("already exists", secret+"\n", "keys", "import", keys[1].ID)
	c.fail("44 characters", "not a key\n", "keys", "import", "imported")
	c.ok(secret+"\n", "keys", "import", "copy-of-current")
	if out := c.ok("", "keys", "list"); !strings.Contains(out, "copy-of-current") || strings.Contains(out, secret) {
		t.Fatalf("keys list after import:\n%s", out)
	}

	// Usage errors exit 2; missing stores are explained.
	if r := c.run("", "token", "verify"); r.code != 2 {
		t.Fatalf("usage error exit %d", r.code)
	}
	if r := c.run("", "--no-such-flag"); r.code != 2 {
		t.Fatalf("unknown flag exit %d", r.code)
	}
	noStore.fail(`run "amaretti init"`, "", "editor", "list")
	noStore.fail(`run "amaretti init"`, "", "token", "verify", tok)
}

func TestDemo(t *testing.T) {
	c := newCLI(t)
	out := c.ok("", "demo")
	for _, want := range []string{"1. initialised", "4. verified it", "denied (token revoked), HTTP 401", "8. a token minted after the touch verifies"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestHelp(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"--help"}, {"keys", "--help"}, {"editor", "create", "--help"}, {"token", "mint", "--help"}, {"token", "verify", "--help"}} {
		out := c.ok("", args...)
		if !strings.Contains(out, "USAGE") {
			t.Errorf("amaretti %v: no usage:\n%s", args, out)
		}
	}
}

// TestEditorLink: an operator links an editor made by the CLI to a login
// identity, so the frontend's first login finds it.
func TestEditorLink(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	const issuer = "https://id.example.org"
	if out := c.ok("", "editor", "link", alice, "--provider", issuer, "--subject", "sub-1"); out != "linked "+alice+" to sub-1 at "+issuer {
		t.Fatalf("link: %q", out)
	}
	c.fail("already linked", "", "editor", "link", alice, "--provider", issuer, "--subject", "sub-2")
	c.fail("unknown editor", "", "editor", "link", "nobody", "--provider", issuer, "--subject", "sub-3")
	c.fail("invalid login identity", "", "editor", "link", alice, "--provider", "dev", "--subject", "a b")
	if r := c.run("", "editor", "link", alice, "--provider", "dev"); r.code != 2 {
		t.Fatalf("missing --subject: exit %d %s", r.code, r.stderr)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(c.dir, "amaretti.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, created, err := store.Login(context.Background(), issuer, "sub-1", "someone-else")
	if err != nil || created || e.ID != alice {
		t.Fatalf("first login of the linked identity: %+v created=%v %v", e, created, err)
	}
}
