package redislog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no URL", "connection pool: failed to dial after 5 attempts: dial tcp 127.0.0.1:1: connect: connection refused",
			"connection pool: failed to dial after 5 attempts: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"URL without credentials", "dialing redis://127.0.0.1:6379/0 failed", "dialing redis://127.0.0.1:6379/0 failed"},
		{"password in userinfo", "dialing redis://:hunter2@127.0.0.1:6379/0 failed", "dialing redis://:REDACTED@127.0.0.1:6379/0 failed"},
		{"user and password", "url=rediss://bob:hunter2@h:1/0, retrying", "url=rediss://bob:REDACTED@h:1/0, retrying"},
		{"quoted", `addr="redis://bob:hunter2@h:1"`, `addr="redis://bob:REDACTED@h:1"`},
		{"password parameter", "redis://h:1/0?sentinel_password=hunter2&db=1 down", "redis://h:1/0?sentinel_password=REDACTED&db=1 down"},
		{"bare password option", "options: password=hunter2 db=0", "options: password=REDACTED db=0"},
		{"the word password alone", "WRONGPASS invalid username-password pair", "WRONGPASS invalid username-password pair"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestPrintf: a go-redis line becomes one JSON record at warn level, without
// go-redis's own "redis: " prefix and without credentials.
func TestPrintf(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewJSONHandler(&buf, nil)))
	l.Printf(context.Background(), "redis: connection pool: failed to dial %s after %d attempts: %v\n", "redis://:hunter2@127.0.0.1:1/0", 5, "refused")
	if strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %q: %v", buf.String(), err)
	}
	for k, want := range map[string]string{
		"level":     "WARN",
		"component": "go-redis",
		"msg":       "connection pool: failed to dial redis://:REDACTED@127.0.0.1:1/0 after 5 attempts: refused",
	} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %q", k, rec[k], want)
		}
	}
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("password logged: %s", buf.String())
	}
}
