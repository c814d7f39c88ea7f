package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestHeadAndStoreID: SQLite's store id is 32 hex digits, and a new store's
// log starts with the row migration 4 writes (the suite checks what every
// store shares: ids differ between stores, the head names the newest row).
func TestHeadAndStoreID(t *testing.T) {
	ctx := context.Background()
	a, _ := open(t, &clock{t: t0})
	b, _ := open(t, &clock{t: t0})
	ha, _ := a.Head(ctx)
	hb, _ := b.Head(ctx)
	if len(ha.StoreID) != 32 || ha.StoreID == hb.StoreID {
		t.Fatalf("store ids %q %q", ha.StoreID, hb.StoreID)
	}
	if ha.Seq != 1 || ha.Oldest != 1 {
		t.Fatalf("a new store's head %+v", ha)
	}
}

// TestStateReadUsesIndexes: the state read finds an editor's revoked
// tokens through an index, never by scanning api_tokens (M5).
func TestStateReadUsesIndexes(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t, &clock{t: t0})
	rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT "+editorColumns+" FROM editors WHERE id = :arg",
		sql.Named("now", 0), sql.Named("arg", "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", all)
	if strings.Contains(all, "SCAN t") || strings.Contains(all, "SCAN api_tokens") || strings.Contains(all, "SCAN editors") || strings.Contains(all, "SCAN changes") {
		t.Fatalf("the state read scans a table:\n%s", all)
	}
	if !strings.Contains(all, "api_tokens_editor_revoked") {
		t.Fatalf("the revoked tokens are not found through their index:\n%s", all)
	}
}

// TestFileModes: the database and its WAL and shared-memory files are
// 0600 whatever the umask (issue 11 §4).
func TestFileModes(t *testing.T) {
	for _, umask := range []int{0o022, 0o000} {
		t.Run(fmt.Sprintf("umask %03o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			path := filepath.Join(t.TempDir(), "amaretti.db")
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Create(context.Background(), epoch.NewEditor{Username: "alice"}); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if m := fi.Mode().Perm(); m != 0o600 {
					t.Errorf("%s: mode %o", filepath.Base(f), m)
				}
			}
		})
	}
}
