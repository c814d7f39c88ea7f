package main

import "github.com/amaretti-auth/amaretti/epoch/postgres"

// The PostgreSQL store is a watcher: a change of either signature would
// silently turn NOTIFY wake-ups off.
var _ watcher = (*postgres.Store)(nil)
