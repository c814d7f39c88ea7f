package setup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
	if _, err := setup.Store(ctx, db); !errors.Is(err, setup.ErrNoDatabase) || err.Error() != `no database at `+db+` (run "amaretti init", or set --db / AMARETTI_DB)` {
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
	s, err := setup.Store(ctx, db)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	s.Close()
}
