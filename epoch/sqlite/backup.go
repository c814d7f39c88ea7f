package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrBackupExists means the backup's destination exists already: a backup
// never overwrites a file. It wraps fs.ErrExist.
var ErrBackupExists = fmt.Errorf("backup file exists: %w", fs.ErrExist)

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
