package setup_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/postgres"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testpg"
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
		// A libpq key=value string is PostgreSQL (postgres.Open takes
		// it), not a SQLite file named after it, password and all.
		{"host=db user=a password=s3cret dbname=x", setup.PostgreSQL, "host=db user=a password=s3cret dbname=x"},
		{"  dbname=x", setup.PostgreSQL, "  dbname=x"},
		{"hostname.db", setup.SQLite, "hostname.db"},
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
		// One redaction for every program: setup's and the store's.
		{"host=db user=a password=s3cret dbname=x", "host=db user=a password=xxxxx dbname=x"},
		{"postgres://amaretti:123/s3cret@db.example/amaretti", "postgres://amaretti:xxxxx@db.example/amaretti"},
		{"postgres://amaretti:1?s3cret@db.example/amaretti", "postgres://amaretti:xxxxx@db.example/amaretti"},
		{"postgres://amaretti:s3cret@db.example/amaretti#frag", "postgres://amaretti:xxxxx@db.example/amaretti"},
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

// TestStorePostgres: postgres:// and postgresql:// URLs open the
// PostgreSQL store, with the options every store takes; its errors name
// the database as Redact does, never with its password.
func TestStorePostgres(t *testing.T) {
	ctx := context.Background()
	srv := testpg.Start(t)
	const password = "setup-s3cret-pw"
	if err := srv.Exec(ctx, "postgres", "CREATE ROLE amaretti LOGIN PASSWORD '"+password+"'"); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"postgres", "postgresql"} {
		t.Run(scheme, func(t *testing.T) {
			db := strings.Replace(srv.NewDatabase(t), "postgres://", scheme+"://", 1)
			if _, err := setup.Store(ctx, db, setup.StoreOptions{NoMigrate: true}); !errors.Is(err, postgres.ErrSchemaOld) {
				t.Fatalf("NoMigrate on an empty database: %v", err)
			}
			s, err := setup.Store(ctx, db, setup.StoreOptions{MaxLiveTokens: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, ok := s.(*postgres.Store); !ok {
				t.Fatalf("opened a %T", s)
			}
			e, err := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range []error{nil, epoch.ErrTooManyTokens} {
				err := s.RegisterToken(ctx, epoch.APIToken{TokenID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), EditorID: e.ID, Name: fmt.Sprint("t", i), Created: time.Now(), Creator: "cli"})
				if !errors.Is(err, want) {
					t.Fatalf("token %d: %v, want %v (MaxLiveTokens 1)", i, err, want)
				}
			}
			again, err := setup.Store(ctx, db, setup.StoreOptions{NoMigrate: true})
			if err != nil {
				t.Fatalf("NoMigrate on a current schema: %v", err)
			}
			again.Close()
		})
	}
	t.Run("read timeout", func(t *testing.T) {
		// ReadTimeout reaches the store: a read held up by a lock fails
		// after it, not after postgres.DefaultReadTimeout.
		db := srv.NewDatabase(t)
		const bound = 700 * time.Millisecond
		s, err := setup.Store(ctx, db, setup.StoreOptions{ReadTimeout: bound})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		e, err := s.Create(ctx, epoch.NewEditor{Username: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := pgx.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE editors IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = s.State(ctx, e.ID)
		if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took < bound {
			t.Fatalf("State under a lock: %v after %v, want a deadline error after %v", err, took, bound)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		db := srv.URLAs("postgres", "amaretti", "wrong-"+password)
		_, err := setup.Store(ctx, db, setup.StoreOptions{})
		if err == nil || strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), setup.Redact(db)) {
			t.Fatalf("error %v: want it to name %s and not the password", err, setup.Redact(db))
		}
	})
}

// TestStoreNoMigrateSQLite: NoMigrate refuses a SQLite file at an older
// schema.
func TestStoreNoMigrateSQLite(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite3", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, "CREATE TABLE editors (id TEXT); PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if _, err := setup.Store(ctx, db, setup.StoreOptions{NoMigrate: true}); !errors.Is(err, sqlite.ErrSchemaOld) || !strings.Contains(err.Error(), "amaretti migrate") {
		t.Fatalf("NoMigrate on an old file: %v", err)
	}
}
