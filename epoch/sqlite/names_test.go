package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// tokenID is the n-th test token id.
func tokenID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// TestUpgradeNames: a database at schema 5 with a revoked and a live token
// of the same name upgrades, keeps both rows, and refuses the live name.
func TestUpgradeNames(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:5] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	created, expires := micros(t0.Add(time.Second)), micros(t0.Add(time.Hour))
	for _, q := range []string{
		"PRAGMA user_version = 5",
		"INSERT INTO editors (id, username, role, auth_epoch, created) VALUES ('old', 'old', 'editor', 1, 1)",
		fmt.Sprintf("INSERT INTO api_tokens (token_id, editor_id, name, created, creator, expires, revoked) VALUES ('%s', 'old', 'laptop', %d, 'cli', %d, %d)", tokenID(1), created, expires, created),
		fmt.Sprintf("INSERT INTO api_tokens (token_id, editor_id, name, created, creator, expires) VALUES ('%s', 'old', 'laptop', %d, 'cli', %d)", tokenID(2), created, expires),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	db.Close()
	c := &clock{t: t0.Add(time.Minute)}
	s, err := Open(ctx, path, WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rows, _ := s.Tokens(ctx, "old"); len(rows) != 2 || rows[1].Parents != nil {
		t.Fatalf("rows after upgrade: %+v", rows)
	}
	err = s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(3), EditorID: "old", Name: "laptop", Created: c.now(), Creator: "cli"})
	if !errors.Is(err, epoch.ErrNameTaken) {
		t.Fatalf("the live name after upgrade: %v", err)
	}
	c.add(time.Hour)
	if err := s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(3), EditorID: "old", Name: "laptop", Created: c.now(), Creator: "cli"}); err != nil {
		t.Fatalf("the name once its token expired: %v", err)
	}
}
