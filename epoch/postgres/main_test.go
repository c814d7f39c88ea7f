package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/testpg"
)

// server is the package's PostgreSQL, started by TestMain; each test makes
// a database of its own on it.
var server *testpg.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

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
	s, err := Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tokenID is the n-th test token id.
func tokenID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
