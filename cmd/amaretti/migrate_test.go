package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// TestMigrateCommand: "amaretti migrate" upgrades an old schema, and
// --no-migrate makes every other command refuse one instead of upgrading
// it.
func TestMigrateCommand(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	db := filepath.Join(c.dir, "amaretti.db")
	if out := c.ok("", "migrate"); !strings.Contains(out, "up to date") {
		t.Fatalf("migrate on a new database: %s", out)
	}
	// An old database, at schema version 1.
	fixture, err := os.ReadFile("../../epoch/sqlite/testdata/schema-v1.sql")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(db)
	sdb, err := sql.Open("sqlite3", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec(string(fixture)); err != nil {
		t.Fatal(err)
	}
	sdb.Close()

	c.fail(`schema is older than this program: run "amaretti migrate"`, "", "--no-migrate", "editor", "list")
	c.env = append(c.env, "AMARETTI_NO_MIGRATE=true")
	c.fail(`schema is older than this program`, "", "editor", "list")
	if out := c.ok("", "migrate"); !strings.Contains(out, "schema version 1 → ") {
		t.Fatalf("migrate: %s", out)
	}
	c.ok("", "editor", "create", "alice")
	if out := c.ok("", "migrate"); !strings.Contains(out, "up to date") {
		t.Fatalf("migrate again: %s", out)
	}
	c.env = append(c.env, "AMARETTI_DB="+filepath.Join(c.dir, "none.db"))
	c.fail("no database at", "", "migrate")
}
