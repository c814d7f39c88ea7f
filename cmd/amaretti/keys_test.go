package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/macaroon"
)

func TestNewKEK(t *testing.T) {
	c := newCLI(t)
	printed := c.ok("", "keys", "new-kek")
	if _, err := macaroon.ParseKeyEncryptionKey(printed); err != nil || len(printed) != 44 {
		t.Fatalf("printed %d characters: %v", len(printed), err)
	}
	if again := c.ok("", "keys", "new-kek"); again == printed {
		t.Fatal("two runs printed the same key")
	}
	path := filepath.Join(c.dir, "kek")
	if out := c.ok("", "keys", "new-kek", "--out", path); !strings.Contains(out, path) || strings.Contains(out, printed) {
		t.Fatalf("new-kek --out printed %q", out)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kek file: %v, %v", fi, err)
	}
	if _, err := macaroon.ReadKeyEncryptionKeyFile(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	c.fail("exists", "", "keys", "new-kek", "--out", path)
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("an existing key-encryption key file was replaced")
	}
	c.fail("takes no arguments", "", "keys", "new-kek", "extra")
}

// TestKeysDBWithSQLite: --keys db needs a PostgreSQL --db; with SQLite
// every key command refuses, saying so, and init makes nothing.
func TestKeysDBWithSQLite(t *testing.T) {
	c := newCLI(t)
	c.env = append(c.env, "AMARETTI_KEYS=db", "AMARETTI_KEY_ENCRYPTION_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	for _, args := range [][]string{{"init"}, {"keys", "list"}, {"keys", "rotate"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := *c
			c.t = t
			c.fail("only when --db is a PostgreSQL URL", "", args...)
		})
	}
	if _, err := os.Stat(filepath.Join(c.dir, "amaretti.db")); !os.IsNotExist(err) {
		t.Fatalf("init made the SQLite file: %v", err)
	}
}

// TestKeysInDatabase runs init and every key command with the keys in a
// real PostgreSQL (--keys db), moves a key in from a directory store, and
// checks what a wrong or missing key-encryption key does.
func TestKeysInDatabase(t *testing.T) {
	url := testpg.Start(t).NewDatabase(t)
	c := newCLI(t)
	kek := filepath.Join(c.dir, "kek")
	c.ok("", "keys", "new-kek", "--out", kek)
	c.env = []string{"AMARETTI_DB=" + url, "AMARETTI_KEYS=db", "AMARETTI_LOCATION=api.example.org"}
	c.fail("no key-encryption key", "", "init")
	c.env = append(c.env, "AMARETTI_KEY_ENCRYPTION_KEY_FILE="+kek)

	if out := c.ok("", "init"); !strings.Contains(out, "created key store in the database postgres://") {
		t.Fatalf("init: %s", out)
	}
	if out := c.ok("", "init"); !strings.Contains(out, "key store in the database postgres://") || !strings.Contains(out, "unchanged") {
		t.Fatalf("second init: %s", out)
	}
	alice := c.ok("", "editor", "create", "alice")
	tok := c.ok("", "token", "mint", alice)
	c.ok("", "token", "verify", tok)

	var keys []keyJSON
	c.jsonOut(&keys, "keys", "list")
	if len(keys) != 1 || keys[0].State != "current" {
		t.Fatalf("keys list: %+v", keys)
	}
	first := keys[0].ID
	c.ok("", "keys", "rotate")
	c.jsonOut(&keys, "keys", "list")
	if len(keys) != 2 || keys[0].ID != first || keys[0].State != "verify-only" || keys[1].State != "current" {
		t.Fatalf("after rotate: %+v", keys)
	}
	c.ok("", "token", "verify", tok)
	c.fail("rotate before retiring", "", "keys", "retire", keys[1].ID)
	c.ok("", "keys", "retire", first)
	c.fail("key retired", "", "token", "verify", tok)

	// A key moves from a directory store into the database: a token
	// minted under it there verifies here.
	d := newCLI(t)
	d.ok("", "init")
	dirEditor := d.ok("", "editor", "create", "bob", "--id", "bbbbbbbbbbbbbbbbbbbbbbbbbq")
	dirTok := d.ok("", "token", "mint", dirEditor)
	var dirKeys []keyJSON
	d.jsonOut(&dirKeys, "keys", "list")
	secret := d.ok("", "keys", "export", dirKeys[0].ID)
	c.ok(secret+"\n", "keys", "import", dirKeys[0].ID)
	c.fail("already exists", secret+"\n", "keys", "import", dirKeys[0].ID)
	if got := c.ok("", "keys", "export", dirKeys[0].ID); got != secret {
		t.Fatal("exported from the database, the moved key differs")
	}
	c.ok("", "editor", "create", "bob", "--id", "bbbbbbbbbbbbbbbbbbbbbbbbbq", "--epoch", "2020-01-01T00:00:00Z")
	c.ok("", "token", "verify", dirTok)
	// And back: the database's current key into the directory.
	secret = c.ok("", "keys", "export", keys[1].ID)
	d.ok(secret+"\n", "keys", "import", keys[1].ID)
	if out := c.ok("", "keys", "list"); strings.Contains(out, secret) {
		t.Fatalf("keys list shows a secret:\n%s", out)
	}

	// Another key-encryption key opens nothing and adds nothing.
	other := filepath.Join(c.dir, "other-kek")
	c.ok("", "keys", "new-kek", "--out", other)
	c.env[len(c.env)-1] = "AMARETTI_KEY_ENCRYPTION_KEY_FILE=" + other
	c.fail("key-encryption key does not open the stored keys", "", "keys", "list")
	c.fail("key-encryption key does not open the stored keys", "", "keys", "rotate")
	c.fail("key-encryption key does not open the stored keys", "", "token", "verify", dirTok)
	// A key-encryption key file others may read is refused.
	if err := os.Chmod(kek, 0o644); err != nil {
		t.Fatal(err)
	}
	c.env[len(c.env)-1] = "AMARETTI_KEY_ENCRYPTION_KEY_FILE=" + kek
	c.fail("chmod 600", "", "keys", "list")
}
