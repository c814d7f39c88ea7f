package main

import (
	"net"
	"strings"
	"testing"
)

// TestRedisLogsThroughSlog: when --redis cannot be reached, go-redis's own
// complaint goes through slog (a warn record of component go-redis), not as
// its "redis: <date> pool.go:…" line, and no line holds the URL's password.
func TestRedisLogsThroughSlog(t *testing.T) {
	const password = "s3cret-pw-in-url"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close() // nothing listens there now
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	r := c.run("", "--redis", "redis://:"+password+"@"+closed+"/0", "editor", "touch", alice)
	if r.code != 0 {
		t.Fatalf("touch with Redis down: exit %d: %s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		name string
		ok   func(line string) bool
	}{
		{"ours or slog's", func(line string) bool {
			return strings.HasPrefix(line, "amaretti: ") || strings.HasPrefix(line, "time=")
		}},
		{"without the password", func(line string) bool { return !strings.Contains(line, password) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, line := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
				if !tc.ok(line) {
					t.Errorf("stderr line %q", line)
				}
			}
		})
	}
	if !strings.Contains(r.stderr, `level=WARN msg="connection pool: failed to dial`) || !strings.Contains(r.stderr, "component=go-redis") {
		t.Errorf("no go-redis warn record on stderr:\n%s", r.stderr)
	}
}
