package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/storetest"
)

// conformance opens SQLite stores for the conformance suite: each store a
// file in a temporary directory.
var conformance = storetest.Opener{
	Name: "sqlite",
	New:  func(t *testing.T) string { return filepath.Join(t.TempDir(), "amaretti.db") },
	Open: func(ctx context.Context, addr string) (epoch.Store, error) { return Open(ctx, addr) },
	OpenLimited: func(ctx context.Context, addr string, maxLive, maxRevoked int) (epoch.Store, error) {
		return Open(ctx, addr, WithTokenLimits(maxLive, maxRevoked))
	},
	ChildProcesses: true,
}

// TestConformance runs the store conformance suite against SQLite.
func TestConformance(t *testing.T) { storetest.Run(t, conformance) }

// TestMain lets the suite run this binary as a second process touching
// the same store (storetest.Main).
func TestMain(m *testing.M) { storetest.Main(m, conformance) }
