// Package redislog routes go-redis's own log lines through log/slog.
//
// go-redis prints with the standard library's log package to standard
// error ("redis: 2026/11/30 12:00:00 pool.go:770: ..."), which breaks the
// daemon's JSON logs. Its logger is a package-level variable of go-redis,
// set with redis.SetLogger, so it is global state we do not own: the
// commands set it once, in main, before anything dials Redis, and nothing
// else touches it (libraries and tests pass loggers explicitly).
package redislog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/amaretti-auth/amaretti/epoch/rediscache"
)

// Logger is a go-redis logger (the interface redis.SetLogger takes) that
// writes each line as one slog record at warn level, with "component"
// "go-redis", and the credentials of any URL in it redacted.
type Logger struct {
	log *slog.Logger
}

// New returns a Logger writing to log.
func New(log *slog.Logger) *Logger { return &Logger{log: log} }

// Printf logs one go-redis line.
func (l *Logger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	msg = strings.TrimPrefix(msg, "redis: ")
	l.log.WarnContext(ctx, Redact(msg), "component", "go-redis")
}

// Redact replaces the credentials of every URL in msg (user information
// and password query parameters, as rediscache.Redact does) with REDACTED.
// go-redis does not print its options today; this keeps it so if a later
// version does.
func Redact(msg string) string {
	if !strings.Contains(msg, "://") && !strings.Contains(strings.ToLower(msg), "password") {
		return msg
	}
	fields := strings.FieldsFunc(msg, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '"' || r == '\'' })
	for _, f := range fields {
		if strings.Contains(f, "://") || strings.Contains(strings.ToLower(f), "password") {
			if r := redactField(f); r != f {
				msg = strings.ReplaceAll(msg, f, r)
			}
		}
	}
	return msg
}

func redactField(f string) string {
	if i := strings.Index(f, "://"); i >= 0 {
		// Keep what precedes the scheme (e.g. "url=") outside the URL.
		start := strings.LastIndexAny(f[:i], "=,;([{<") + 1
		return f[:start] + rediscache.Redact(f[start:])
	}
	// A bare "password=..." or "?password=..." outside a URL.
	lower := strings.ToLower(f)
	i := strings.Index(lower, "password")
	if eq := strings.IndexByte(f[i:], '='); eq >= 0 {
		v := f[i+eq+1:]
		if end := strings.IndexAny(v, "&,;)"); end >= 0 {
			return f[:i+eq+1] + "REDACTED" + v[end:]
		}
		return f[:i+eq+1] + "REDACTED"
	}
	return f
}
