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
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
