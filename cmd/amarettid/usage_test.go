package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFlagErrors: a flag amarettid cannot parse — a duration without its
// unit, a number that is not one, an unknown flag, a flag without its
// value, an argument that is not a flag — is one line on stderr naming the
// flag and the fix, nothing on stdout (not the whole help), and exit
// status 2, before anything starts; a value that may be a secret is not
// repeated.
func TestFlagErrors(t *testing.T) {
	const unit = `is not a duration: use a number with h, m or s, e.g. 15m, 24h, or 720h for 30 days (there is no d)`
	for _, tc := range []struct {
		name string
		args []string
		want string // the whole of stderr
		env  []string
	}{
		{"a duration without a unit", []string{"--cache-ttl", "5"}, `amarettid: usage: --cache-ttl "5" ` + unit, nil},
		{"a duration in days", []string{"--poll=1d"}, `amarettid: usage: --poll "1d" ` + unit, nil},
		{"not a number", []string{"--cache-size", "many"}, `amarettid: usage: --cache-size "many" is not a whole number (see amarettid --help)`, nil},
		{"not a boolean", []string{"--notify=maybe"}, `amarettid: usage: --notify "maybe" is not a boolean: use --notify (true) or --notify=false (see amarettid --help)`, nil},
		{"an unknown flag", []string{"--cache-tll", "5s"}, `amarettid: usage: unknown flag --cache-tll (see amarettid --help)`, nil},
		{"a flag without its value", []string{"--listen"}, `amarettid: usage: --listen needs a value (see amarettid --help)`, nil},
		{"a boolean's value after a space", []string{"--notify", "false"}, `amarettid: usage: amarettid takes flags only, got 1 other argument; a boolean flag takes its value after "=": --notify=false (see amarettid --help)`, nil},
		{"arguments after --", []string{"--", "--bogus", "postgres://u:s3cret@h/db"}, `amarettid: usage: amarettid takes flags only, got 2 other arguments (see amarettid --help)`, nil},
		{"a secret given to the wrong flag", []string{"--poll", "postgres://u:s3cret@h/db"}, `amarettid: usage: --poll (a value of 24 bytes, not repeated) ` + unit, nil},
		{"a duration from the environment", nil, `amarettid: usage: AMARETTI_CACHE_TTL (--cache-ttl) "5" ` + unit, []string{"AMARETTI_CACHE_TTL=5"}},
		{"a number from the environment", nil, `amarettid: usage: AMARETTI_CACHE_SIZE (--cache-size) "many" is not a whole number (see amarettid --help)`, []string{"AMARETTI_CACHE_SIZE=many"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "amarettid"), tc.args...)
			cmd.Dir = t.TempDir() // no store, no keys: nothing may start
			// The runner's environment without its AMARETTI_ settings.
			env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AMARETTI_") })
			cmd.Env = append(env, tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("%v, want exit status 2", err)
			}
			if got := stderr.String(); got != tc.want+"\n" {
				t.Errorf("stderr\n%q\nwant\n%q", got, tc.want+"\n")
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}
