package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// copyTargets are the stores "db copy" is tested into; the PostgreSQL one
// is added by copy_postgres_test.go.
var copyTargets = []copyTarget{
	{"sqlite", func(*testing.T) func(t *testing.T) string {
		return func(t *testing.T) string { return filepath.Join(t.TempDir(), "copy.db") }
	}},
}

// copyTarget names a kind of store and how a test makes empty ones: setup
// runs once per test and returns what makes each store.
type copyTarget struct {
	name  string
	setup func(t *testing.T) func(t *testing.T) string
}

// TestStoreCopy moves a store and checks that tokens keep their fate: one
// minted before the copy verifies against the copy, tokens revoked before
// it (one by one, by a touch, by a lock) stay revoked, and the copy goes on
// working (touch, revoke) on its own.
func TestStoreCopy(t *testing.T) {
	for _, target := range copyTargets {
		t.Run(target.name, func(t *testing.T) {
			newDB := target.setup(t)
			c := newCLI(t)
			c.ok("", "init")
			alice := c.ok("", "editor", "create", "alice")
			bob := c.ok("", "editor", "create", "bob")
			carol := c.ok("", "editor", "create", "carol")
			touched := c.ok("", "token", "mint", bob, "--expires", "1h")
			c.ok("", "editor", "touch", bob)
			locked := c.ok("", "token", "mint", carol, "--expires", "1h")
			c.ok("", "editor", "lock", carol)
			live := c.ok("", "tokens", "create", alice, "--name", "ci", "--expires", "1h")
			revoked := c.ok("", "tokens", "create", alice, "--name", "old", "--expires", "1h")
			c.ok("", "tokens", "revoke", revoked)
			session := c.ok("", "token", "mint", bob, "--expires", "1h")

			c.ok("", "keys", "rotate") // a verify-only key and a current one
			old := c.ok("", "token", "mint", alice, "--expires", "1h")
			c.ok("", "keys", "rotate")
			to := newDB(t)
			keysTo := filepath.Join(t.TempDir(), "keys")
			out := c.ok("", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", to,
				"--keys-from", filepath.Join(c.dir, "keys"), "--keys-to", keysTo)
			if !strings.Contains(out, "copied 3 editors, 2 API tokens and 0 login links") || !strings.Contains(out, "copied 3 root keys") {
				t.Fatalf("db copy: %s", out)
			}
			c.fail("is not empty", "", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", to)

			// moved runs the CLI on the copy.
			moved := func(t *testing.T) *runner {
				return &runner{t: t, dir: c.dir, env: append(append([]string{}, c.env...), "AMARETTI_DB="+to, "AMARETTI_KEYS="+keysTo)}
			}
			for _, tc := range []struct {
				name, token, fails string
			}{
				{"api token minted before the copy", live, ""},
				{"session minted before the copy", session, ""},
				{"minted under a key rotated since", old, ""},
				{"revoked one by one", revoked, "this token was revoked"},
				{"revoked by a touch", touched, "token revoked"},
				{"revoked by a lock", locked, "editor locked"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if tc.fails == "" {
						moved(t).ok("", "token", "verify", tc.token)
					} else {
						moved(t).fail(tc.fails, "", "token", "verify", tc.token)
					}
				})
			}
			t.Run("keys are copied into an empty key store only", func(t *testing.T) {
				c.t = t
				fresh := newDB(t)
				c.fail("already holds 3 keys", "", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", fresh,
					"--keys-from", filepath.Join(c.dir, "keys"), "--keys-to", keysTo)
				// Nothing was copied: the store copy can be run again.
				c.ok("", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", fresh)
				c.fail("give both --keys-from and --keys-to", "", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", newDB(t),
					"--keys-from", filepath.Join(c.dir, "keys"))
			})
			t.Run("the copy works on its own", func(t *testing.T) {
				m := moved(t)
				m.fail("live token of that name", "", "tokens", "create", alice, "--name", "ci", "--expires", "1h")
				m.ok("", "tokens", "revoke", live)
				m.fail("this token was revoked", "", "token", "verify", live)
				c.t = t
				c.ok("", "token", "verify", live) // the source is untouched
			})
			t.Run("replace", func(t *testing.T) {
				c.t = t
				out := c.ok("", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", to, "--replace")
				if !strings.Contains(out, "copied 3 editors") {
					t.Fatalf("db copy --replace: %s", out)
				}
				moved(t).ok("", "token", "verify", live)
			})
		})
	}
}

// TestStoreCopyFromEnvironment: db copy takes its source and target from
// AMARETTI_COPY_FROM and AMARETTI_COPY_TO, so that a URL with a password
// never has to be an argument (any local user reads /proc/PID/cmdline).
func TestStoreCopyFromEnvironment(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	c.ok("", "editor", "create", "alice")
	to := filepath.Join(t.TempDir(), "copy.db")
	env := &runner{t: t, dir: c.dir, env: append(append([]string{}, c.env...),
		"AMARETTI_COPY_FROM="+filepath.Join(c.dir, "amaretti.db"), "AMARETTI_COPY_TO="+to)}
	if out := env.ok("", "db", "copy"); !strings.Contains(out, "copied 1 editor,") {
		t.Fatalf("db copy: %s", out)
	}
}
