package main

import (
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	ibuildinfo "github.com/amaretti-auth/amaretti/internal/buildinfo"
)

// TestUsageErrors: every kind of usage error is one line on stderr, naming
// the command and the fix, nothing on stdout, and exit status 2.
func TestUsageErrors(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	for _, tc := range []struct {
		kind string
		args []string
		want string
	}{
		{"bad duration", []string{"token", "mint", alice, "--expires", "1d"}, `token mint: --expires "1d" is not a duration: use a number with h, m or s`},
		{"bad duration before the argument", []string{"token", "mint", "--expires=1d", alice}, `--expires "1d" is not a duration`},
		{"bad role", []string{"editor", "create", "bob", "--role", "wizard"}, `editor create: --role "wizard" is not a role: use editor, bot, admin or superuser`},
		{"bad username", []string{"editor", "create", "bob smith"}, `is not a valid username`},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate" (commands: init, demo, keys, editor, token, tokens, bootstrap, db, migrate, audit, completion; see amaretti --help)`},
		{"unknown subcommand", []string{"editor", "frobnicate"}, `editor: unknown command "frobnicate" (commands: create, list, show,`},
		{"help is not a command", []string{"help"}, `unknown command "help"`},
		{"unknown flag", []string{"editor", "list", "--bogus"}, `editor list: unknown flag --bogus (see amaretti editor list --help)`},
		{"unknown global flag", []string{"--bogus", "editor", "list"}, `unknown flag --bogus (see amaretti --help)`},
		{"flag without its value", []string{"token", "mint", alice, "--expires"}, `token mint: --expires needs a value`},
		{"missing argument", []string{"editor", "show"}, `editor show: missing EDITOR_ID|USERNAME (usage: amaretti editor show EDITOR_ID|USERNAME)`},
		{"missing argument of mint", []string{"token", "mint"}, `usage: amaretti token mint EDITOR_ID`},
		{"extra argument", []string{"editor", "show", alice, "bob"}, `editor show: takes EDITOR_ID|USERNAME only, got 2 arguments`},
		{"argument to a command that takes none", []string{"editor", "list", "x"}, `editor list: takes no arguments, got 1`},
		{"missing required flag", []string{"editor", "unlink", alice}, `editor unlink: --provider is required (see amaretti editor unlink --help)`},
		{"missing required flag, no argument", []string{"audit", "prune"}, `audit prune: --older-than is required (see amaretti audit prune --help)`},
		{"token argument that is a file", []string{"token", "inspect", "token.txt"}, `"token.txt" looks like a file name; pass - and redirect the file to stdin: - < token.txt`},
		{"unknown shell", []string{"completion", "fish"}, `completion: "fish" is not a shell this supports: use bash or zsh`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			c := c.in(t)
			os.WriteFile(filepath.Join(c.dir, "token.txt"), []byte("not a token\n"), 0o600)
			r := c.fail(tc.want, "", tc.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2", r.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

// in returns a runner on the same store that reports to t (a subtest).
func (c *runner) in(t *testing.T) *runner {
	cc := *c
	cc.t = t
	return &cc
}

// TestVersion: --version prints the module version and VCS revision the
// go command recorded in the binary.
func TestVersion(t *testing.T) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	want := "amaretti version " + ibuildinfo.FromBuildInfo(bi) + "\n"
	for _, flag := range []string{"--version", "-v"} {
		t.Run(flag, func(t *testing.T) {
			r := newCLI(t).run("", flag)
			if r.code != 0 || r.stdout != want {
				t.Fatalf("amaretti %s: exit %d %q, want %q", flag, r.code, r.stdout, want)
			}
		})
	}
}

// TestEditorByUsername: editor show, links and link take a username as well
// as an id, and suggest near matches when neither matches.
func TestEditorByUsername(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	c.ok("", "editor", "create", "alicia")
	for _, tc := range []struct {
		name string
		arg  string
		want string // in stdout, or in the one-line error when fail is set
		fail bool
	}{
		{"id", alice, "username    alice", false},
		{"username", "alice", "id          " + alice, false},
		{"username in another case", "ALICE", "id          " + alice, false},
		{"prefix", "ali", `did you mean alice (id ` + alice + `), alicia (id `, true},
		{"id prefix", alice[:10], `did you mean alice (id ` + alice + `)?`, true},
		{"a typo", "alicee", `did you mean alice (id ` + alice + `)`, true},
		{"nothing near", "z1d", `"z1d" is neither an editor id nor a username (amaretti editor list shows them)`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.in(t)
			if tc.fail {
				if r := c.fail(tc.want, "", "editor", "show", tc.arg); r.code != 1 {
					t.Fatalf("exit %d, want 1", r.code)
				}
				return
			}
			if out := c.ok("", "editor", "show", tc.arg); !strings.Contains(out, tc.want) {
				t.Fatalf("editor show %s:\n%s\nwant %q", tc.arg, out, tc.want)
			}
		})
	}
}

// TestEditorLinks: link by username, list, unlink, and unlink again.
func TestEditorLinks(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	if out := c.ok("", "editor", "links", "alice"); out != "PROVIDER  SUBJECT  CREATED" {
		t.Fatalf("links of an unlinked editor:\n%s", out)
	}
	c.ok("", "editor", "link", "alice", "--provider", "https://id.example.org", "--subject", "sub-1")
	c.ok("", "editor", "link", alice, "--provider", "dev", "--subject", "alice")
	var links []struct {
		Provider string `json:"provider"`
		Subject  string `json:"subject"`
		EditorID string `json:"editor_id"`
	}
	c.jsonOut(&links, "editor", "links", alice)
	if len(links) != 2 || links[0].Provider != "dev" || links[1].Subject != "sub-1" || links[1].EditorID != alice {
		t.Fatalf("links: %+v", links)
	}
	out := c.ok("", "editor", "unlink", "alice", "--provider", "https://id.example.org")
	if !strings.Contains(out, "unlinked "+alice+" (alice) from sub-1 at https://id.example.org") || !strings.Contains(out, "editor touch "+alice) {
		t.Fatalf("unlink: %s", out)
	}
	c.fail("has no identity at https://id.example.org", "", "editor", "unlink", alice, "--provider", "https://id.example.org")
	if out := c.ok("", "editor", "links", alice); strings.Contains(out, "sub-1") || !strings.Contains(out, "dev") {
		t.Fatalf("links after unlink:\n%s", out)
	}
}

// TestTokenArgument: a token given with its "Bearer " prefix (as copied
// from an Authorization header) is used without it, from the argument and
// from stdin; the prefix is never printed back.
func TestTokenArgument(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	tok := c.ok("", "token", "mint", alice, "--expires", "1h")
	for _, tc := range []struct {
		name, arg, stdin string
	}{
		{"argument", "Bearer " + tok, ""},
		{"argument, lower case, two spaces", "bearer  " + tok, ""},
		{"stdin", "-", "Bearer " + tok + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.in(t)
			if out := c.ok(tc.stdin, "token", "verify", tc.arg); !strings.Contains(out, alice) {
				t.Fatalf("verify: %s", out)
			}
		})
	}
}

// TestCompletion: the bash script, sourced by a real bash, completes
// commands, subcommands and flags by asking the binary; the zsh script
// registers itself for amaretti.
func TestCompletion(t *testing.T) {
	c := newCLI(t)
	script := c.ok("", "completion", "bash")
	path := filepath.Join(c.dir, "amaretti.bash")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is not installed")
	}
	for _, tc := range []struct {
		line []string // the words typed; the last is being completed
		want []string
	}{
		{[]string{"amaretti", "ed"}, []string{"editor"}},
		{[]string{"amaretti", ""}, []string{"init", "editor", "token", "tokens", "db", "completion"}},
		{[]string{"amaretti", "editor", "un"}, []string{"unlink", "unlock"}},
		{[]string{"amaretti", "token", "mint", "--exp"}, []string{"--expires"}},
	} {
		t.Run(strings.Join(tc.line, " "), func(t *testing.T) {
			words := ""
			for _, w := range tc.line {
				words += " '" + w + "'"
			}
			prog := `source "$1"; COMP_WORDS=(` + words + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _amaretti_complete; printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command(bash, "-c", prog, "bash", path)
			cmd.Env = append([]string{"PATH=" + filepath.Dir(binary) + ":" + os.Getenv("PATH")}, c.env...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Fields(string(out))
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || g == w
				}
				if !found {
					t.Errorf("completing %q: %v lacks %q", tc.line, got, w)
				}
			}
		})
	}
	zsh := c.ok("", "completion", "zsh")
	if !strings.HasPrefix(zsh, "#compdef amaretti\n") || !strings.Contains(zsh, "compdef _amaretti amaretti") || !strings.Contains(zsh, completionFlag) {
		t.Fatalf("zsh script:\n%s", zsh)
	}
}

// TestDBBackup: a backup is written 0600, opens as the same database, and
// is never written over.
func TestDBBackup(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	if out := c.ok("", "db", "backup", "backup.db"); !strings.Contains(out, "to backup.db (mode 0600)") {
		t.Fatalf("db backup: %s", out)
	}
	fi, err := os.Stat(filepath.Join(c.dir, "backup.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	c.fail("backup.db exists; a backup never overwrites a file", "", "db", "backup", "backup.db")
	restored := *c
	restored.env = append([]string{"AMARETTI_DB=" + filepath.Join(c.dir, "backup.db")}, c.env[1:]...)
	if out := restored.ok("", "editor", "show", "alice"); !strings.Contains(out, alice) {
		t.Fatalf("the backup lacks alice:\n%s", out)
	}
}

// TestEditorByUsernameEverywhere: every command that names one editor
// takes its username as well as its id, and a typo gets a suggestion.
func TestEditorByUsernameEverywhere(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	for _, args := range [][]string{
		{"editor", "touch", "alice"},
		{"editor", "lock", "alice"},
		{"editor", "unlock", "alice"},
		{"editor", "deactivate", "alice"},
		{"editor", "activate", "alice"},
		{"token", "mint", "alice"},
		{"tokens", "create", "alice", "--name", "laptop"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			c := c.in(t)
			out := c.ok("", append(args, "--json")...)
			if !strings.Contains(out, alice) && args[0] != "token" {
				t.Fatalf("%v did not act on alice (%s):\n%s", args, alice, out)
			}
			typo := append([]string{}, args...)
			typo[2] = "alicee"
			if r := c.fail("did you mean alice (id "+alice+")", "", typo...); r.code != 1 {
				t.Fatalf("%v: exit %d, want 1", typo, r.code)
			}
		})
	}
}

// TestRequiredFlags: after withUsageErrors no flag is left for urfave/cli
// to require (it would print the whole help on stdout): every required
// flag is of a type unrequire handles.
func TestRequiredFlags(t *testing.T) {
	app := (&env{stdout: io.Discard, stderr: io.Discard, now: time.Now}).app()
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
					t.Errorf("%s %s: --%s is still required by urfave/cli", path, c.Name, f.Names()[0])
				}
			}
			walk(path+" "+c.Name, c.Subcommands)
		}
	}
	walk("amaretti", app.Commands)
}
