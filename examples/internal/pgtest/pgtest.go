// Package pgtest gives the examples' tests PostgreSQL databases on one real
// server (internal/testpg: initdb and postgres of the installed Debian
// package, on a free loopback port), started when a test first asks for a
// database. Each database is owned by a role that logs in with a password,
// so that tests can check the password never reaches a log line or an
// error.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// Role and Password are what the URLs of Database log in with.
const (
	Role     = "amaretti_app"
	Password = "Pg-s3cret-never-shown"
)

// Shared is a server shared by a test binary's tests. The zero value is
// ready; Close it in TestMain after m.Run.
type Shared struct {
	once sync.Once
	srv  *testpg.Server
	err  error
	dbs  atomic.Int64
}

// Server returns the running server, starting it on first use.
func (s *Shared) Server(t testing.TB) *testpg.Server {
	t.Helper()
	s.once.Do(func() {
		if s.srv, s.err = testpg.StartMain(); s.err != nil {
			return
		}
		s.err = s.srv.Exec(context.Background(), "postgres", "CREATE ROLE "+Role+" LOGIN PASSWORD '"+Password+"'")
	})
	if s.err != nil {
		t.Fatalf("pgtest: %v", s.err)
	}
	return s.srv
}

// Database creates an empty database owned by Role and returns its
// postgres:// URL, password included.
func (s *Shared) Database(t testing.TB) string {
	t.Helper()
	srv := s.Server(t)
	name := fmt.Sprintf("ex%d", s.dbs.Add(1))
	if err := srv.Exec(context.Background(), "postgres", "CREATE DATABASE "+name+" OWNER "+Role); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return srv.URLAs(name, Role, Password)
}

// Close stops the server, if it was started, and removes its directory.
func (s *Shared) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// KEKFile writes a new key-encryption key, as "amaretti keys new-kek --out"
// does, to a file (mode 0600) in a test directory and returns its path.
func KEKFile(t testing.TB) string {
	t.Helper()
	text, err := macaroon.NewKeyEncryptionKeyText(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kek")
	if err := macaroon.WriteKeyEncryptionKeyFile(path, text); err != nil {
		t.Fatal(err)
	}
	return path
}
