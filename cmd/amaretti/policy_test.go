package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// lifetimeOf is a token's lifetime, or 0 when it never expires, and its
// kind.
func lifetimeOf(t *testing.T, token string) (time.Duration, caveat.Kind) {
	t.Helper()
	tok, err := macaroon.Parse(token, macaroon.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cl := claimsOf(tok)
	if cl == nil {
		t.Fatal("claims do not parse")
	}
	if cl.Expires.IsZero() {
		return 0, cl.Kind
	}
	return cl.Expires.Sub(cl.Created), cl.Kind
}

// TestCreationPathsPolicy: every command that creates a token applies the
// lifetime policy: the kind's default, never no expiry unless the policy
// allows it and it is asked for. Before, each of these made a token that
// never expired.
func TestCreationPathsPolicy(t *testing.T) {
	type path struct {
		name string
		kind caveat.Kind
		// create runs the command with extra flags, once in a fresh store,
		// and returns the token and the result.
		create func(c *runner, extra ...string) (string, result)
	}
	paths := []path{
		{"token mint", caveat.KindCLI, func(c *runner, extra ...string) (string, result) {
			r := c.run("", append([]string{"token", "mint", c.ok("", "editor", "create", "minty")}, extra...)...)
			return strings.TrimSpace(r.stdout), r
		}},
		{"tokens create", caveat.KindAPI, func(c *runner, extra ...string) (string, result) {
			r := c.run("", append([]string{"tokens", "create", c.ok("", "editor", "create", "creaty"), "--name", "n"}, extra...)...)
			return strings.TrimSpace(r.stdout), r
		}},
		{"bootstrap", caveat.KindBootstrap, func(c *runner, extra ...string) (string, result) {
			dir := filepath.Join(c.dir, "env")
			r := c.run("", append([]string{"bootstrap", "--env-dir", dir}, extra...)...)
			b, _ := os.ReadFile(filepath.Join(dir, "root.env"))
			for _, line := range strings.Split(string(b), "\n") {
				if tok, ok := strings.CutPrefix(line, "AMARETTI_TOKEN="); ok {
					return tok, r
				}
			}
			return "", r
		}},
	}
	d := apitoken.DefaultPolicy()
	tests := []struct {
		name  string
		flags []string
		// want is the lifetime by kind (0: never expires); code the exit
		// status when it must fail, with want text on stderr.
		want    map[caveat.Kind]time.Duration
		code    int
		errText string
	}{
		{name: "no lifetime asked: the policy's default",
			want: map[caveat.Kind]time.Duration{caveat.KindCLI: d.CLI, caveat.KindAPI: d.API, caveat.KindBootstrap: d.Bootstrap}},
		{name: "configured defaults", flags: []string{"--default-lifetime", "cli=1h", "--default-lifetime", "api=48h", "--default-lifetime", "bootstrap=72h"},
			want: map[caveat.Kind]time.Duration{caveat.KindCLI: time.Hour, caveat.KindAPI: 48 * time.Hour, caveat.KindBootstrap: 72 * time.Hour}},
		{name: "a tighter maximum lowers the defaults", flags: []string{"--max-api-token-lifetime", "240h"},
			want: map[caveat.Kind]time.Duration{caveat.KindCLI: d.CLI, caveat.KindAPI: 240 * time.Hour, caveat.KindBootstrap: 240 * time.Hour}},
		{name: "asked", flags: []string{"--expires", "5h"},
			want: map[caveat.Kind]time.Duration{caveat.KindCLI: 5 * time.Hour, caveat.KindAPI: 5 * time.Hour, caveat.KindBootstrap: 5 * time.Hour}},
		{name: "allowed but not asked: still the default", flags: []string{"--allow-no-expiry"},
			want: map[caveat.Kind]time.Duration{caveat.KindCLI: d.CLI, caveat.KindAPI: d.API, caveat.KindBootstrap: d.Bootstrap}},
		{name: "no expiry, allowed and asked", flags: []string{"--allow-no-expiry", "--no-expiry"},
			want: map[caveat.Kind]time.Duration{caveat.KindCLI: 0, caveat.KindAPI: 0, caveat.KindBootstrap: 0}},
		{name: "no expiry asked, not allowed", flags: []string{"--no-expiry"}, code: 1, errText: "never expire are not allowed by the lifetime policy (set --allow-no-expiry"},
		{name: "no expiry and a lifetime", flags: []string{"--allow-no-expiry", "--no-expiry", "--expires", "1h"}, code: 2, errText: "choose one"},
		{name: "an unknown kind of default", flags: []string{"--default-lifetime", "wizard=1h"}, code: 2, errText: "no default lifetime for kind"},
		{name: "a default over the maximum", flags: []string{"--max-api-token-lifetime", "24h", "--default-lifetime", "api=48h"}, code: 2, errText: "over the maximum"},
	}
	for _, tc := range tests {
		for _, p := range paths {
			t.Run(tc.name+"/"+p.name, func(t *testing.T) {
				c := newCLI(t)
				c.ok("", "init")
				tok, r := p.create(c, tc.flags...)
				if tc.code != 0 {
					line := strings.TrimSuffix(r.stderr, "\n")
					if r.code != tc.code || strings.Contains(line, "\n") || !strings.Contains(line, tc.errText) {
						t.Fatalf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tc.code, tc.errText)
					}
					return
				}
				if r.code != 0 {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				got, kind := lifetimeOf(t, tok)
				// The issuer reads its clock just before the minter does:
				// a lifetime may be short by the microseconds between.
				if want := tc.want[p.kind]; kind != p.kind || got > want || got < want-time.Second || (want == 0) != (got == 0) {
					t.Fatalf("kind %q lifetime %v, want %q %v", string(kind), got, string(p.kind), tc.want[p.kind])
				}
			})
		}
	}
	// The environment configures the policy as the flags do.
	c := newCLI(t)
	c.env = append(c.env, "AMARETTI_ALLOW_NO_EXPIRY=true", "AMARETTI_DEFAULT_LIFETIME=cli=2h,api=3h")
	c.ok("", "init")
	ed := c.ok("", "editor", "create", "envy")
	if got, _ := lifetimeOf(t, c.ok("", "token", "mint", ed)); got != 2*time.Hour {
		t.Fatalf("mint under AMARETTI_DEFAULT_LIFETIME: %v", got)
	}
	if got, _ := lifetimeOf(t, c.ok("", "tokens", "create", ed, "--name", "x")); got > 3*time.Hour || got < 3*time.Hour-time.Second {
		t.Fatalf("tokens create under AMARETTI_DEFAULT_LIFETIME: %v", got)
	}
	if got, _ := lifetimeOf(t, c.ok("", "token", "mint", ed, "--no-expiry")); got != 0 {
		t.Fatalf("mint --no-expiry under AMARETTI_ALLOW_NO_EXPIRY: %v", got)
	}
}

// TestHelpShowsPolicyDefaults: lifetimes' help names the policy default,
// never "0s".
func TestHelpShowsPolicyDefaults(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "mint", "--help"}, "24h0m0s, the policy's for cli tokens"},
		{[]string{"tokens", "create", "--help"}, "2160h0m0s, the policy's for api tokens"},
		{[]string{"bootstrap", "--help"}, "2160h0m0s, the policy's for bootstrap tokens"},
		{[]string{"token", "attenuate", "--help"}, "no expiry added"},
		{[]string{"--help"}, "8760h0m0s, a year"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := c.run("", tc.args...).stdout
			if strings.Contains(out, "(default: 0s)") || !strings.Contains(out, tc.want) {
				t.Fatalf("help:\n%s\nwant %q and no (default: 0s)", out, tc.want)
			}
		})
	}
}

// TestRegistryStatus: tokens list says why a token no longer verifies,
// the name of a dead token is free again, and tokens expiring lists live
// tokens only. Before, a touched token was "live" and kept its name.
func TestRegistryStatus(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	status := func(editor, name string, extra ...string) apitoken.Row {
		t.Helper()
		var rows []apitoken.Row
		c.jsonOut(&rows, append([]string{"tokens", "list", editor}, extra...)...)
		var got apitoken.Row
		for _, r := range rows {
			if r.Name == name && (got.TokenID == "" || r.Created.After(got.Created)) {
				got = r
			}
		}
		return got
	}
	expiring := func(extra ...string) []apitoken.Row {
		var rows []apitoken.Row
		c.jsonOut(&rows, append([]string{"tokens", "expiring", "--within", "2400h"}, extra...)...)
		return rows
	}
	tests := []struct {
		name  string
		do    func(editor, token string)
		want  apitoken.Status
		extra []string // global flags for list and verify
		// reason is what verifying says; free whether the name is free.
		reason string
		free   bool
	}{
		{"touched", func(ed, _ string) { c.ok("", "editor", "touch", ed) }, apitoken.StatusRevokedByTouch, nil, "token revoked", true},
		{"locked", func(ed, _ string) { c.ok("", "editor", "lock", ed) }, apitoken.StatusEditorLocked, nil, "editor locked", true},
		{"deactivated", func(ed, _ string) { c.ok("", "editor", "deactivate", ed) }, apitoken.StatusEditorDeactivated, nil, "editor inactive", false},
		{"revoked", func(_, tok string) { c.ok("", "tokens", "revoke", tok) }, apitoken.StatusRevoked, nil, "token revoked", true},
		{"over a tightened policy", func(string, string) {}, apitoken.StatusOverPolicy, []string{"--max-api-token-lifetime", "720h"}, "token lifetime exceeds the policy", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ed := c.ok("", "editor", "create", "e"+string(rune('a'+i)))
			var created struct {
				Token   string `json:"token"`
				TokenID string `json:"token_id"`
			}
			c.jsonOut(&created, "tokens", "create", ed, "--name", "laptop", "--expires", "1000h")
			if r := status(ed, "laptop"); r.Status != apitoken.StatusLive || !r.Live {
				t.Fatalf("before: %+v", r)
			}
			tc.do(ed, created.TokenID)
			if r := status(ed, "laptop", tc.extra...); r.Status != tc.want || r.Live {
				t.Fatalf("status %q live %v, want %q", r.Status, r.Live, tc.want)
			}
			listing := c.ok("", append([]string{"tokens", "list", ed}, tc.extra...)...)
			if !strings.Contains(listing, string(tc.want)) {
				t.Fatalf("tokens list:\n%s", listing)
			}
			c.fail(tc.reason, "", append([]string{"token", "verify", created.Token}, tc.extra...)...)
			for _, r := range expiring(tc.extra...) {
				if r.TokenID == created.TokenID {
					t.Fatalf("a %s token is listed as expiring", tc.want)
				}
			}
			r := c.run("", "tokens", "create", ed, "--name", "laptop")
			if (r.code == 0) != tc.free {
				t.Fatalf("creating the name again: exit %d %s, want free %v", r.code, r.stderr, tc.free)
			}
		})
	}
	// A live token is listed as expiring.
	ed := c.ok("", "editor", "create", "live")
	var created struct {
		TokenID string `json:"token_id"`
	}
	c.jsonOut(&created, "tokens", "create", ed, "--name", "laptop", "--expires", "1000h")
	found := false
	for _, r := range expiring() {
		found = found || r.TokenID == created.TokenID && r.Status == apitoken.StatusLive
	}
	if !found {
		t.Fatal("a live token is not listed as expiring")
	}
}

// TestInspectNeverExpires: inspect says plainly when a token never expires.
func TestInspectNeverExpires(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	ed := c.ok("", "editor", "create", "alice")
	forever := c.ok("", "--allow-no-expiry", "token", "mint", ed, "--no-expiry")
	if out := c.ok("", "--allow-no-expiry", "token", "inspect", forever); !strings.Contains(out, "expires    never expires") {
		t.Fatalf("inspect:\n%s", out)
	}
	if out := c.ok("", "token", "verify", forever); !strings.Contains(out, "expires    never expires") {
		t.Fatalf("verify:\n%s", out)
	}
	var j map[string]any
	json.Unmarshal([]byte(c.ok("", "--json", "token", "inspect", forever)), &j)
	if j["never_expires"] != true || j["expires"] != nil {
		t.Fatalf("inspect --json: %v", j)
	}
	day := c.ok("", "token", "mint", ed)
	if out := c.ok("", "token", "inspect", day); strings.Contains(out, "never") || !strings.Contains(out, "expires    20") {
		t.Fatalf("inspect:\n%s", out)
	}
}
