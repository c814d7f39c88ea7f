package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// copyTargets are the stores "db copy" is tested into; the PostgreSQL one
// is added by copy_postgres_test.go.
var copyTargets = []struct {
	name string
	db   func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "copy.db") }},
}

// TestStoreCopy moves a store and checks that tokens keep their fate: one
// minted before the copy verifies against the copy, tokens revoked before
// it (one by one, by a touch, by a lock) stay revoked, and the copy goes on
// working (touch, revoke) on its own.
func TestStoreCopy(t *testing.T) {
	for _, target := range copyTargets {
		t.Run(target.name, func(t *testing.T) {
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

			to := target.db(t)
			out := c.ok("", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", to)
			if !strings.Contains(out, "copied 3 editors, 2 API tokens and 0 login links") {
				t.Fatalf("db copy: %s", out)
			}
			c.fail("is not empty", "", "db", "copy", "--from", filepath.Join(c.dir, "amaretti.db"), "--to", to)

			// moved runs the CLI on the copy.
			moved := func(t *testing.T) *runner {
				return &runner{t: t, dir: c.dir, env: append(append([]string{}, c.env...), "AMARETTI_DB="+to)}
			}
			for _, tc := range []struct {
				name, token, fails string
			}{
				{"api token minted before the copy", live, ""},
				{"session minted before the copy", session, ""},
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
