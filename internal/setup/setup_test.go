package setup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/macaroon"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys, db := filepath.Join(dir, "keys"), filepath.Join(dir, "amaretti.db")
	if _, err := setup.Keys(keys); !errors.Is(err, setup.ErrNoKeyStore) || err.Error() != `no key store at `+keys+` (run "amaretti init", or set --keys / AMARETTI_KEYS)` {
		t.Fatalf("no key store: %v", err)
	}
	if _, err := setup.Store(ctx, db, setup.StoreOptions{}); !errors.Is(err, setup.ErrNoDatabase) || err.Error() != `no database at `+db+` (run "amaretti init", or set --db / AMARETTI_DB)` {
		t.Fatalf("no database: %v", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a missing database was created")
	}
	if _, _, err := macaroon.InitKeyStore(keys); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Keys(keys); err != nil {
		t.Fatalf("keys: %v", err)
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := setup.Store(ctx, db, setup.StoreOptions{})
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	s.Close()
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		db     string
		kind   setup.Kind
		target string
	}{
		{"amaretti.db", setup.SQLite, "amaretti.db"},
		{"/var/lib/amaretti/amaretti.db", setup.SQLite, "/var/lib/amaretti/amaretti.db"},
		{"sqlite:amaretti.db", setup.SQLite, "amaretti.db"},
		{"sqlite:///var/lib/a.db", setup.SQLite, "/var/lib/a.db"},
		{"SQLITE:a.db", setup.SQLite, "a.db"},
		{"postgres://u:p@h/db", setup.PostgreSQL, "postgres://u:p@h/db"},
		{"postgresql://h/db?sslmode=disable", setup.PostgreSQL, "postgresql://h/db?sslmode=disable"},
		{"Postgres://h/db", setup.PostgreSQL, "Postgres://h/db"},
		{"postgres.db", setup.SQLite, "postgres.db"},
	} {
		t.Run(tc.db, func(t *testing.T) {
			if k, target := setup.Parse(tc.db); k != tc.kind || target != tc.target {
				t.Errorf("Parse(%q) = %v, %q; want %v, %q", tc.db, k, target, tc.kind, tc.target)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ db, want string }{
		{"amaretti.db", "amaretti.db"},
		{"postgres://amaretti:s3cret@db.example:5432/amaretti", "postgres://amaretti:xxxxx@db.example:5432/amaretti"},
		{"postgres://db.example/amaretti?password=s3cret&sslmode=require", "postgres://db.example/amaretti"},
		{"postgresql://amaretti@db.example/amaretti", "postgresql://amaretti@db.example/amaretti"},
		{"postgres://u:s3cret@[::1/x", "postgres://(unparsable URL)"},
	} {
		t.Run(tc.db, func(t *testing.T) {
			got := setup.Redact(tc.db)
			if got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.db, got, tc.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("Redact(%q) leaks the password", tc.db)
			}
		})
	}
}
