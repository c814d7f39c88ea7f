package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrBackupExists means the backup's destination exists already: a backup
// never overwrites a file. It wraps fs.ErrExist.
var ErrBackupExists = fmt.Errorf("backup file exists: %w", fs.ErrExist)

// newStoreID gives the database file at path a store id of its own. A
// backup gets one so that, restored, it is another store to every follower
// (epoch.Head.StoreID): they drop what they cached rather than trust
// states read from the database it replaced, whose change log went further.
func newStoreID(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", "file:"+strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "UPDATE store_meta SET store_id = lower(hex(randomblob(16)))")
	return err
}

// Backup writes a consistent copy of the database to path while the store
// (and other processes, such as running daemons) keep reading and writing
// it: SQLite's VACUUM INTO copies one snapshot, a read transaction, so the
// copy holds every change committed before it started and none after. The
// file is written 0600 in a 0700 directory beside path and then linked to
// path, so path appears complete or not at all, and it fails with
// ErrBackupExists rather than replace an existing file.
func (s *Store) Backup(ctx context.Context, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: %s", ErrBackupExists, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".amaretti-backup-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	part := filepath.Join(tmp, "backup.db")
	// An empty file made 0600 first: SQLite fills it and keeps its mode.
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f.Close()
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", part); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Chmod(part, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := newStoreID(ctx, part); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if f, err := os.Open(part); err == nil {
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	// link fails when path exists, so even a file made since the check
	// above is never replaced.
	if err := os.Link(part, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrBackupExists, path)
		}
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
