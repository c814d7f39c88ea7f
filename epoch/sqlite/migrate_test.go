package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// oldDatabase writes a database at schema version 1, from the frozen
// fixture, with one editor in it.
func oldDatabase(t *testing.T) string {
	t.Helper()
	fixture, err := os.ReadFile("testdata/schema-v1.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{string(fixture), "INSERT INTO editors (id, username, role, auth_epoch, created) VALUES ('old', 'old', 'admin', 1, 1)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestSchemaFixture(t *testing.T) {
	fixture, err := os.ReadFile("testdata/schema-v1.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fixture), migrations[0]+";") {
		t.Fatal("migration 1 differs from the schema it shipped with (testdata/schema-v1.sql): never edit a shipped migration, append one")
	}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	t.Run("refused with WithNoMigrate", func(t *testing.T) {
		path := oldDatabase(t)
		if _, err := Open(ctx, path, WithNoMigrate()); !errors.Is(err, epoch.ErrSchemaOld) {
			t.Fatalf("Open(WithNoMigrate) on schema 1: %v, want ErrSchemaOld", err)
		}
	})
	t.Run("Migrate", func(t *testing.T) {
		path := oldDatabase(t)
		from, to, err := Migrate(ctx, path)
		if err != nil || from != 1 || to != len(migrations) {
			t.Fatalf("Migrate = %d, %d, %v; want 1, %d", from, to, err, len(migrations))
		}
		s, err := Open(ctx, path, WithNoMigrate())
		if err != nil {
			t.Fatalf("Open(WithNoMigrate) after Migrate: %v", err)
		}
		defer s.Close()
		if e, err := s.Editor(ctx, "old"); err != nil || e.Role != epoch.RoleAdmin {
			t.Fatalf("editor after Migrate: %+v, %v", e, err)
		}
		if from, to, err := Migrate(ctx, path); err != nil || from != to || to != len(migrations) {
			t.Fatalf("Migrate again = %d, %d, %v", from, to, err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "none.db")
		if _, _, err := Migrate(ctx, path); err == nil {
			t.Fatal("Migrate created a database")
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("Migrate left a file behind")
		}
	})
}
