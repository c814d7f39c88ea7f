package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
