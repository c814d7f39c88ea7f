package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestBackupWhileWriting: a backup taken while another connection keeps
// touching editors is a consistent, openable database holding everything
// committed before it, written 0600; a second backup to the same name is
// refused and leaves the first intact.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, filepath.Join(dir, "amaretti.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice, err := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Touch(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A second process's view of the database: its own connection pool.
	writer, err := Open(ctx, filepath.Join(dir, "amaretti.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	var stop atomic.Bool
	var touches atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := writer.Touch(ctx, alice.ID); err != nil {
				t.Errorf("touch during backup: %v", err)
				return
			}
			touches.Add(1)
		}
	}()
	for touches.Load() < 20 {
		if t.Failed() {
			break
		}
		runtime.Gosched()
	}
	path := filepath.Join(dir, "backup.db")
	err = s.Backup(ctx, path)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var check string
	if err := b.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	got, err := b.Editor(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version < before.Version || got.AuthEpoch.Before(before.AuthEpoch) {
		t.Fatalf("backup has alice at version %d, epoch %v; committed before it: %d, %v", got.Version, got.AuthEpoch, before.Version, before.AuthEpoch)
	}
	t.Logf("%d touches ran beside the backup; it holds version %d", touches.Load(), got.Version)

	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		{"the same name again", path, ErrBackupExists},
		{"over the live database", filepath.Join(dir, "amaretti.db"), ErrBackupExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(tc.path)
			if err := s.Backup(ctx, tc.path); !errors.Is(err, tc.want) {
				t.Fatalf("Backup: %v, want %v", err, tc.want)
			}
			if after, _ := os.ReadFile(tc.path); string(after) != string(before) {
				t.Fatal("the existing file changed")
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestBackupIsAnotherStore: a backup has a store id of its own, so that
// verifiers following a database restored from it drop their caches
// instead of trusting states read from the database it replaced.
func TestBackupIsAnotherStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, filepath.Join(dir, "amaretti.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Backup(ctx, filepath.Join(dir, "backup.db")); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, filepath.Join(dir, "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	live, _ := s.Head(ctx)
	restored, err := b.Head(ctx)
	if err != nil || restored.StoreID == live.StoreID || len(restored.StoreID) != 32 {
		t.Fatalf("store ids: live %q, backup %q (%v)", live.StoreID, restored.StoreID, err)
	}
	if restored.Seq != live.Seq {
		t.Fatalf("the backup's change log ends at %d, the database's at %d", restored.Seq, live.Seq)
	}
}
