package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/internal/testproc"
)

// pgRole and pgPassword are the role the PostgreSQL tests of the CLI log
// in as, and its password, which no output may ever show.
const (
	pgRole     = "amaretti_cli"
	pgPassword = "Cli-pg-s3cret-never-shown"
)

// pgDatabases numbers the databases pgDatabase makes.
var pgDatabases atomic.Int64

// pgServer starts a PostgreSQL server for the test, with pgRole.
func pgServer(t *testing.T) *testpg.Server {
	t.Helper()
	srv := testpg.Start(t)
	if err := srv.Exec(context.Background(), "postgres", "CREATE ROLE "+pgRole+" LOGIN PASSWORD '"+pgPassword+"'"); err != nil {
		t.Fatal(err)
	}
	return srv
}

// pgDatabase creates an empty database owned by pgRole and returns its URL,
// password included.
func pgDatabase(t *testing.T, srv *testpg.Server) string {
	t.Helper()
	name := fmt.Sprintf("cli%d", pgDatabases.Add(1))
	if err := srv.Exec(context.Background(), "postgres", "CREATE DATABASE "+name+" OWNER "+pgRole); err != nil {
		t.Fatal(err)
	}
	return srv.URLAs(name, pgRole, pgPassword)
}

// pgRunner runs the CLI and fails the test if any output, of a success or
// a failure, shows one of secrets.
type pgRunner struct {
	*runner
	secrets []string
}

func (c pgRunner) check(args []string, r result) {
	c.t.Helper()
	for _, s := range c.secrets {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			c.t.Fatalf("amaretti %s showed a password:\nstdout %s\nstderr %s", testproc.Args(args), r.stdout, r.stderr)
		}
	}
}

func (c pgRunner) ok(stdin string, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	c.check(args, r)
	if r.code != 0 {
		c.t.Fatalf("amaretti %s: exit %d: %s", testproc.Args(args), r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

func (c pgRunner) fail(want, stdin string, args ...string) {
	c.t.Helper()
	c.check(args, c.runner.fail(want, stdin, args...))
}

func (c pgRunner) jsonOut(v any, args ...string) {
	c.t.Helper()
	if err := json.Unmarshal([]byte(c.ok("", append([]string{"--json"}, args...)...)), v); err != nil {
		c.t.Fatal(err)
	}
}

// TestPostgresWalkthrough runs the README's CLI walkthrough on PostgreSQL,
// logged in as a role with a password: the keys in the database (sealed
// with a key-encryption key made by "keys new-kek --out") and in a
// directory. No output or error ever shows the password; messages name
// the database as setup.Redact does.
func TestPostgresWalkthrough(t *testing.T) {
	srv := pgServer(t)
	for _, mode := range []string{"keys in the database", "key directory"} {
		t.Run(mode, func(t *testing.T) {
			db := pgDatabase(t, srv)
			base := newCLI(t)
			c := pgRunner{runner: base, secrets: []string{pgPassword}}
			keysEnv := []string{"AMARETTI_KEYS=" + filepath.Join(base.dir, "keys")}
			if mode == "keys in the database" {
				kek := filepath.Join(base.dir, "kek")
				if out := c.ok("", "keys", "new-kek", "--out", kek); !strings.Contains(out, kek) {
					t.Fatalf("keys new-kek --out: %s", out)
				}
				keysEnv = []string{"AMARETTI_KEYS=db", setup.KEKFileEnv + "=" + kek}
			}
			base.env = append([]string{"AMARETTI_DB=" + db, "AMARETTI_LOCATION=api.example.org"}, keysEnv...)
			redacted := setup.Redact(db)

			if out := c.ok("", "init"); !strings.Contains(out, "created key store") || !strings.Contains(out, "created the schema in database "+redacted) {
				t.Fatalf("init: %s", out)
			}
			if out := c.ok("", "init"); !strings.Contains(out, "database "+redacted+" already exists (schema version") || strings.Contains(out, "created") {
				t.Fatalf("second init: %s", out)
			}
			if _, err := os.Stat(filepath.Join(base.dir, "amaretti.db")); !os.IsNotExist(err) {
				t.Fatalf("init on PostgreSQL made a SQLite file: %v", err)
			}
			if out := c.ok("", "migrate"); !strings.Contains(out, "up to date") || !strings.Contains(out, redacted) {
				t.Fatalf("migrate: %s", out)
			}
			c.ok("", "--no-migrate", "editor", "list") // up to date: --no-migrate has nothing to refuse

			// Editors.
			alice := c.ok("", "editor", "create", "alice")
			c.fail(`username "alice" is taken`, "", "editor", "create", "alice")
			bot := c.ok("", "editor", "create", "import-bot", "--role", "bot", "--id", "aaaaaaaaaaaaaaaaaaaaaaaaaq", "--epoch", "2019-01-01T00:00:00Z")
			var eds []editorJSON
			c.jsonOut(&eds, "editor", "list")
			if len(eds) != 2 || eds[0].ID != alice || eds[1].ID != bot || eds[1].Role != "bot" {
				t.Fatalf("editor list: %+v", eds)
			}
			if out := c.ok("", "editor", "list"); !strings.Contains(out, "USERNAME") || !strings.Contains(out, "import-bot") {
				t.Fatalf("editor list table: %s", out)
			}

			// Tokens, and what touch, lock and unlock do to them.
			tok := c.ok("", "token", "mint", alice, "--expires", "1h", "--right", "read", "--right", "edit")
			c.ok("", "token", "verify", tok, "--right", "edit")
			c.ok(tok+"\n", "token", "verify", "-")
			c.ok("", "editor", "touch", alice)
			c.fail("token revoked", "", "token", "verify", tok)
			beforeLock := c.ok("", "token", "mint", alice, "--expires", "1h")
			c.ok("", "token", "verify", beforeLock)
			c.ok("", "editor", "lock", alice)
			c.fail("editor locked", "", "token", "verify", beforeLock)
			c.fail("locked", "", "token", "mint", alice)
			c.ok("", "editor", "unlock", alice)
			c.fail("token revoked", "", "token", "verify", beforeLock)
			c.ok("", "token", "verify", c.ok("", "token", "mint", alice, "--expires", "1h"))

			// API tokens.
			laptop := c.ok("", "tokens", "create", alice, "--name", "laptop", "--expires", "720h")
			c.fail("live token of that name", "", "tokens", "create", alice, "--name", "laptop", "--expires", "720h")
			ci := c.ok("", "tokens", "create", alice, "--name", "ci", "--expires", "24h")
			var rows []apitoken.Row
			c.jsonOut(&rows, "tokens", "list", alice)
			if len(rows) != 2 || rows[0].Name != "laptop" || rows[1].Name != "ci" {
				t.Fatalf("tokens list: %+v", rows)
			}
			if out := c.ok("", "tokens", "list"); strings.Contains(out, laptop) || !strings.Contains(out, "laptop") {
				t.Fatalf("tokens list table:\n%s", out)
			}
			c.ok("", "token", "verify", laptop)
			c.ok("", "tokens", "revoke", rows[0].TokenID)
			c.fail("already revoked", "", "tokens", "revoke", rows[0].TokenID)
			c.fail("token revoked", "", "token", "verify", laptop)
			c.ok("", "token", "verify", ci)
			c.jsonOut(&rows, "tokens", "list", alice)
			if rows[0].Status != "revoked" || rows[1].Status != "live" {
				t.Fatalf("tokens list after the revocation: %+v", rows)
			}

			// Bootstrap, twice.
			envDir := filepath.Join(base.dir, "env")
			if out := c.ok("", "bootstrap", "--env-dir", envDir); strings.Count(out, "created editor") != 3 || !strings.Contains(out, "editor import-bot exists") || strings.Count(out, "wrote") != 4 {
				t.Fatalf("bootstrap:\n%s", out)
			}
			raw, err := os.ReadFile(filepath.Join(envDir, "root.env"))
			if err != nil {
				t.Fatal(err)
			}
			var root string
			for line := range strings.Lines(string(raw)) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "AMARETTI_TOKEN="); ok {
					root = v
				}
			}
			var id struct {
				Role string `json:"role"`
			}
			c.jsonOut(&id, "token", "verify", root)
			if id.Role != "superuser" {
				t.Fatalf("root's bootstrap token verifies as %+v", id)
			}
			if out := c.ok("", "bootstrap", "--env-dir", envDir); strings.Contains(out, "created") || strings.Contains(out, "wrote") {
				t.Fatalf("second bootstrap:\n%s", out)
			}

			// Failures name the database without its password.
			wrong := pgRunner{runner: &runner{t: t, dir: base.dir, env: append(append([]string{}, base.env...),
				"AMARETTI_DB="+strings.Replace(db, pgPassword, "Wr0ng-cli-pw", 1))}, secrets: []string{pgPassword, "Wr0ng-cli-pw"}}
			wrong.fail(redacted, "", "editor", "list")
			wrong.fail(redacted, "", "migrate")
			c.fail("pg_dump", "", "db", "backup", filepath.Join(base.dir, "backup.db"))
		})
	}
}

// TestPostgresNoMigrate: on an empty PostgreSQL database --no-migrate
// refuses to create the schema, and "amaretti migrate" applies it.
func TestPostgresNoMigrate(t *testing.T) {
	srv := pgServer(t)
	db := pgDatabase(t, srv)
	base := newCLI(t)
	base.env = append(base.env, "AMARETTI_DB="+db)
	c := pgRunner{runner: base, secrets: []string{pgPassword}}
	c.fail(`run "amaretti migrate"`, "", "--no-migrate", "editor", "list")
	if out := c.ok("", "migrate"); !strings.Contains(out, "schema version 0 → ") || !strings.Contains(out, setup.Redact(db)) {
		t.Fatalf("migrate: %s", out)
	}
	c.ok("", "--no-migrate", "init")
	c.ok("", "--no-migrate", "editor", "create", "alice")
}
