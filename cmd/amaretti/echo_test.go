package main

import (
	"strings"
	"testing"
)

// TestArgumentsNotEchoed: a token pasted where an id belongs never comes
// back in an error, and "tokens revoke" takes the token itself.
func TestArgumentsNotEchoed(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	api := c.ok("", "tokens", "create", alice, "--name", "ci", "--expires", "1h")
	session := c.ok("", "token", "mint", alice, "--expires", "1h")
	other := c.ok("", "tokens", "create", alice, "--name", "other", "--expires", "1h")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"editor show", []string{"editor", "show", session}, "not shown) is neither an editor id nor a username"},
		{"editor touch", []string{"editor", "touch", api}, "not shown) is neither an editor id nor a username"},
		{"tokens create", []string{"tokens", "create", session, "--name", "x"}, "not shown)"},
		{"tokens revoke garbage", []string{"tokens", "revoke", strings.Repeat("Zm9v", 30)}, "is neither a token id"},
		{"tokens revoke a session", []string{"tokens", "revoke", session}, "unknown API token (only API tokens are revoked one by one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			r := c.fail(tc.want, "", tc.args...)
			for _, a := range tc.args {
				if len(a) > maxShown && strings.Contains(r.stderr, a) {
					t.Errorf("the error echoes an argument of %d bytes: %s", len(a), r.stderr)
				}
			}
		})
	}
	t.Run("revoke by token", func(t *testing.T) {
		c.t = t
		c.ok("", "tokens", "revoke", api)
		c.fail("this token was revoked", "", "token", "verify", api)
		c.ok("", "token", "verify", other)
	})
	t.Run("revoke by token on stdin", func(t *testing.T) {
		c.t = t
		c.ok(other+"\n", "tokens", "revoke", "-")
		c.fail("this token was revoked", "", "token", "verify", other)
	})
}
