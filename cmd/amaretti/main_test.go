package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/testproc"
)

// binary is the amaretti command built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "amaretti-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "amaretti")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building amaretti:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runner runs the built binary against one store directory.
type runner struct {
	t   *testing.T
	dir string
	env []string
}

func newCLI(t *testing.T) *runner {
	dir := t.TempDir()
	return &runner{t: t, dir: dir, env: []string{
		"AMARETTI_DB=" + filepath.Join(dir, "amaretti.db"),
		"AMARETTI_KEYS=" + filepath.Join(dir, "keys"),
		"AMARETTI_LOCATION=api.example.org",
	}}
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *runner) run(stdin string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = c.dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir}, c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("running amaretti %s: %v", testproc.Args(args), err)
	}
	r := result{out.String(), errb.String(), code}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		c.t.Fatalf("amaretti %s printed a stack trace:\n%s", testproc.Args(args), r.stderr)
	}
	return r
}

// ok runs a command that must succeed and returns its trimmed stdout.
func (c *runner) ok(stdin string, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("amaretti %s: exit %d: %s", testproc.Args(args), r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// fail runs a command that must fail with one line on stderr containing
// want, and nothing on stdout.
func (c *runner) fail(want string, stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code == 0 {
		c.t.Fatalf("amaretti %s succeeded, want failure %q; stdout %s", testproc.Args(args), want, r.stdout)
	}
	line := strings.TrimSuffix(r.stderr, "\n")
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "amaretti: ") || !strings.Contains(line, want) {
		c.t.Fatalf("amaretti %s: stderr %q, want one line containing %q", testproc.Args(args), r.stderr, want)
	}
	return r
}

func (c *runner) jsonOut(v any, args ...string) {
	c.t.Helper()
	if err := json.Unmarshal([]byte(c.ok("", append([]string{"--json"}, args...)...)), v); err != nil {
		c.t.Fatal(err)
	}
}
