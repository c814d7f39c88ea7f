package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/setup"
)

// "db copy" into PostgreSQL: empty databases on one server of the test's
// own.
func init() {
	copyTargets = append(copyTargets, copyTarget{"postgres", func(t *testing.T) func(t *testing.T) string {
		srv := pgServer(t)
		return func(t *testing.T) string { return pgDatabase(t, srv) }
	}})
}

// TestStoreCopyKeysIntoDatabase moves a one-host deployment (SQLite, a key
// directory) to PostgreSQL with its keys sealed in the database, as the
// README's move from SQLite says, and checks that tokens keep verifying
// there and that the database password is never shown.
func TestStoreCopyKeysIntoDatabase(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	session := c.ok("", "token", "mint", alice, "--expires", "1h")
	api := c.ok("", "tokens", "create", alice, "--name", "ci", "--expires", "1h")
	revoked := c.ok("", "tokens", "create", alice, "--name", "old", "--expires", "1h")
	c.ok("", "tokens", "revoke", revoked)
	kek := filepath.Join(t.TempDir(), "kek")
	c.ok("", "keys", "new-kek", "--out", kek)

	db := pgDatabase(t, pgServer(t))
	pg := pgRunner{runner: &runner{t: t, dir: c.dir, env: append(append([]string{}, c.env...), setup.KEKFileEnv+"="+kek)}, secrets: []string{pgPassword}}
	out := pg.ok("", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", db,
		"--keys-from", filepath.Join(c.dir, "keys"), "--keys-to", "db")
	if !strings.Contains(out, "copied 1 editor, 2 API tokens and 0 login links") || !strings.Contains(out, "copied 1 root key") || !strings.Contains(out, "to the database postgres://") {
		t.Fatalf("db copy: %s", out)
	}
	moved := pgRunner{runner: &runner{t: t, dir: c.dir, env: append(append([]string{}, c.env...),
		"AMARETTI_DB="+db, "AMARETTI_KEYS=db", setup.KEKFileEnv+"="+kek)}, secrets: []string{pgPassword}}
	moved.ok("", "token", "verify", session)
	moved.ok("", "token", "verify", api)
	moved.fail("this token was revoked", "", "token", "verify", revoked)
	moved.ok("", "keys", "rotate")
	fresh := moved.ok("", "token", "mint", alice, "--expires", "1h")
	moved.ok("", "token", "verify", fresh)
	// Copying again, keys and all, is refused before anything changes.
	moved.fail("already holds 2 keys", "", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", db, "--replace",
		"--keys-from", filepath.Join(c.dir, "keys"), "--keys-to", "db")
	moved.ok("", "token", "verify", fresh)
}
