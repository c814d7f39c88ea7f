package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/macaroon"
)

// TestAPITokenFormatCLI: the tokens the CLI creates are in the API token
// format, match the published pattern, pass "token check" offline (no key
// or database) and every command that reads a token takes them; a damaged
// one fails "token check" and "token verify" with the checksum reason, and
// no command echoes the token.
func TestAPITokenFormatCLI(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	var out struct {
		Token   string `json:"token"`
		TokenID string `json:"token_id"`
	}
	c.jsonOut(&out, "tokens", "create", alice, "--name", "laptop", "--right", "read")
	tok := out.Token
	if !strings.HasPrefix(tok, macaroon.APIPrefix) || regexp.MustCompile(`^`+macaroon.APITokenPattern+`$`).FindString(tok) != tok {
		t.Fatalf("created token is not in the API format: %.12s…", tok)
	}
	plain, _, _ := macaroon.StripAPIFormat(tok)
	damaged := tok[:len(tok)-1] + map[bool]string{true: "0", false: "1"}[tok[len(tok)-1] != '0']

	// token check needs no key and no database.
	offline := &runner{t: t, dir: t.TempDir()}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"argument", "", []string{"token", "check", tok}},
		{"stdin", tok + "\n", []string{"token", "check", "-"}},
	} {
		t.Run("check "+tc.name, func(t *testing.T) {
			got := offline.ok(tc.stdin, tc.args...)
			if !strings.Contains(got, out.TokenID) || strings.Contains(got, plain[:30]) {
				t.Fatalf("token check:\n%s", got)
			}
		})
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(offline.ok("", "--json", "token", "check", tok)), &j); err != nil || j["checksum"] != "ok" || j["token_id"] != out.TokenID {
		t.Fatalf("token check --json: %v %v", j, err)
	}
	for _, tc := range []struct{ name, text, want string }{
		{"damaged checksum", damaged, "token checksum mismatch"},
		{"truncated", tok[:len(tok)/2], "token checksum mismatch"},
		{"plain macaroon", plain, "not an API token"},
		{"garbage", "amt_hello_world_of_tokens", "token checksum mismatch"},
	} {
		t.Run("check "+tc.name, func(t *testing.T) {
			r := offline.fail(tc.want, "", "token", "check", tc.text)
			if strings.Contains(r.stderr, tc.text[4:20]) {
				t.Errorf("the error echoes the token: %s", r.stderr)
			}
		})
	}

	// Every command that reads a token takes the format.
	c.ok("", "token", "verify", tok, "--right", "read")
	c.ok("", "token", "verify", plain, "--right", "read")
	r := c.fail("token checksum mismatch", "", "token", "verify", damaged)
	if strings.Contains(r.stderr, tok[4:30]) {
		t.Errorf("verify echoes the token: %s", r.stderr)
	}
	if got := c.ok("", "token", "inspect", tok); !strings.Contains(got, out.TokenID) || !strings.Contains(got, "verifies   yes") {
		t.Fatalf("inspect:\n%s", got)
	}
	att := c.ok("", "token", "attenuate", tok, "--method", "GET")
	if _, err := macaroon.CheckAPIFormat(att); err != nil {
		t.Fatalf("attenuated API token: %v", err)
	}
	c.ok("", "token", "verify", att, "--right", "read", "--method", "GET")
	c.ok(tok+"\n", "tokens", "revoke", "-")
	c.fail("token revoked", "", "token", "verify", att, "--method", "GET")

	// Tokens that are not API tokens keep their plain form.
	if cli := c.ok("", "token", "mint", alice); strings.HasPrefix(cli, macaroon.APIPrefix) {
		t.Error("token mint wrote a CLI token in the API format")
	}
}

// TestReadmePublishesPattern: the README's scanner rule is exactly the
// pattern the code tests.
func TestReadmePublishesPattern(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(readme), macaroon.APITokenPattern); n < 2 {
		t.Fatalf("README quotes macaroon.APITokenPattern %d times, want the expression and the gitleaks rule", n)
	}
}
