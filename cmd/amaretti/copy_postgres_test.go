package main

import (
	"testing"

	"github.com/amaretti-auth/amaretti/internal/testpg"
)

// "db copy" into PostgreSQL: an empty database on a server of the test's
// own.
func init() {
	copyTargets = append(copyTargets, struct {
		name string
		db   func(t *testing.T) string
	}{"postgres", func(t *testing.T) string { return testpg.Start(t).NewDatabase(t) }})
}
