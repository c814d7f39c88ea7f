package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func open(t *testing.T, c *clock) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "amaretti.db")
	s, err := Open(context.Background(), path, WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func TestOpenMigrations(t *testing.T) {
	ctx := context.Background()
	s, path := open(t, &clock{t: t0})
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != len(migrations) {
		t.Fatalf("schema version %d, %v", v, err)
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v", mode, err)
	}
	var timeout int
	if err := s.db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout); err != nil || timeout != 5000 {
		t.Errorf("busy_timeout %d, %v", timeout, err)
	}
	if _, err := s.Create(ctx, epoch.NewEditor{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopening applies nothing and keeps the data.
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := s2.List(ctx); len(l) != 1 {
		t.Errorf("editors after reopen: %d", len(l))
	}
	// A newer schema is refused.
	if _, err := s2.db.ExecContext(ctx, "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := Open(ctx, path); err == nil {
		t.Fatal("opened a database with a newer schema")
	}
}

// TestUpgrade opens databases left at every earlier schema version, with an
// editor in them, as an older amaretti would have left them.
func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	for from := 1; from < len(migrations); from++ {
		t.Run(fmt.Sprintf("from %d", from), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.db")
			db, err := sql.Open("sqlite3", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range migrations[:from] {
				if _, err := db.ExecContext(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO editors (id, username, role, auth_epoch, created) VALUES ('old', 'old', 'admin', 1, 1)"); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if v, _ := s.SchemaVersion(ctx); v != len(migrations) {
				t.Fatalf("schema version %d after upgrade", v)
			}
			if e, err := s.Editor(ctx, "old"); err != nil || e.Role != epoch.RoleAdmin {
				t.Fatalf("editor after upgrade: %+v %v", e, err)
			}
			if _, err := s.Link(ctx, "old", "dev", "old"); err != nil {
				t.Fatalf("link after upgrade: %v", err)
			}
		})
	}
}

// TestNoMigrate: WithNoMigrate refuses a file at an older schema, leaving
// it as it was, initialises a brand-new empty one, and opens a current one.
func TestNoMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := filepath.Join(dir, "old.db")
	db, err := sql.Open("sqlite3", "file:"+old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, migrations[0]+"; PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(ctx, old, WithNoMigrate()); !errors.Is(err, ErrSchemaOld) {
		t.Fatalf("an old schema with WithNoMigrate: %v", err)
	}
	s, err := Open(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, path := range []string{old, filepath.Join(dir, "new.db")} {
		s, err := Open(ctx, path, WithNoMigrate())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if v, _ := s.SchemaVersion(ctx); v != len(migrations) {
			t.Fatalf("%s: schema %d", path, v)
		}
		s.Close()
	}
}
