// Command amaretti is the operator CLI: it manages root keys, editors and
// their epochs, and mints, inspects, attenuates and verifies tokens.
//
//	amaretti init
//	amaretti editor create alice
//	amaretti token mint <editor id> --expires 1h
//	amaretti token verify -   < token.txt
//	amaretti editor touch <editor id>
//
// Global flags (each also an environment variable): --db / AMARETTI_DB,
// --keys / AMARETTI_KEYS, --location / AMARETTI_LOCATION, --json.
// Run "amaretti demo" to watch the whole cycle in a temporary directory.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/amaretti-auth/amaretti/internal/redislog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// go-redis logs through a package-level logger of its own, as plain
	// "redis: <date> pool.go:770: ..." lines on stderr. It is global state
	// of go-redis, so it is set here, once, before anything dials Redis:
	// its lines go through slog at warn level, with URL credentials
	// redacted (see internal/redislog).
	redis.SetLogger(redislog.New(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
