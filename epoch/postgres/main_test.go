package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/storetest"
	"github.com/amaretti-auth/amaretti/internal/testpg"
)

// server is the package's PostgreSQL, started by TestMain; each test makes
// a database of its own on it.
var server *testpg.Server

func TestMain(m *testing.M) {
	storetest.Child(conformance) // a child of the suite needs no server of its own
	os.Exit(run(m))
}

// conformance runs epoch/storetest against PostgreSQL: a fresh database
// per store, handles of their own pools.
var conformance = storetest.Opener{
	Name: "postgres",
	New:  func(t *testing.T) string { return server.NewDatabase(t) },
	Open: func(ctx context.Context, addr string) (epoch.Store, error) {
		return Open(ctx, addr, WithQueryTimeout(testReadTimeout))
	},
	OpenLimited: func(ctx context.Context, addr string, maxLive, maxRevoked int) (epoch.Store, error) {
		return Open(ctx, addr, WithQueryTimeout(testReadTimeout), WithTokenLimits(maxLive, maxRevoked))
	},
	ChildProcesses: true,
}

// TestConformance: the PostgreSQL store passes the suite both stores pass.
func TestConformance(t *testing.T) { storetest.Run(t, conformance) }

func run(m *testing.M) int {
	s, err := testpg.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	server = s
	return m.Run()
}

// open opens a store on a fresh database and returns it with its URL.
func open(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	url := server.NewDatabase(t)
	return openURL(t, url, opts...), url
}

// openURL opens another handle (another pool: another process, as far as
// the database can tell) on url, closed when the test ends.
func openURL(t testing.TB, url string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, append([]Option{WithQueryTimeout(testReadTimeout)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testReadTimeout replaces DefaultReadTimeout in tests of anything but the
// timeout itself: under -race on a loaded machine a read may wait longer
// than 100 ms for a pooled connection.
const testReadTimeout = 10 * time.Second

// tokenID is the n-th test token id.
func tokenID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
