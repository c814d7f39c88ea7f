package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// tokenID is the n-th test token id.
func tokenID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// TestNameFreeOnceDead: a name is taken by a token that may still verify,
// and free again once its token is dead for good, whatever killed it.
// Before migration 6 only revocation freed it (a partial unique index on
// revoked IS NULL).
func TestNameFreeOnceDead(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// kill does something to alice or her "laptop" token (id 1);
		// parent is id 2, laptop's parent.
		kill func(t *testing.T, s *Store, c *clock, alice string)
		free bool
	}{
		{"live", func(*testing.T, *Store, *clock, string) {}, false},
		{"revoked", func(t *testing.T, s *Store, _ *clock, _ string) { mustRevoke(t, s, tokenID(1)) }, true},
		{"expired", func(_ *testing.T, _ *Store, c *clock, _ string) { c.add(2 * time.Hour) }, true},
		{"touched", func(t *testing.T, s *Store, c *clock, alice string) { c.add(time.Second); mustDo(t, s.Touch, alice) }, true},
		{"locked", func(t *testing.T, s *Store, _ *clock, alice string) { mustDo(t, s.Lock, alice) }, true},
		{"locked and unlocked", func(t *testing.T, s *Store, _ *clock, alice string) {
			mustDo(t, s.Lock, alice)
			mustDo(t, s.Unlock, alice)
		}, true},
		{"its parent revoked", func(t *testing.T, s *Store, _ *clock, _ string) { mustRevoke(t, s, tokenID(2)) }, true},
		{"its editor deactivated (activating revives it)", func(t *testing.T, s *Store, _ *clock, alice string) {
			if _, err := s.SetActive(ctx, alice, false); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: t0}
			s, _ := open(t, c)
			alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
			c.add(time.Second)
			parent := epoch.APIToken{TokenID: tokenID(2), EditorID: alice.ID, Name: "parent", Created: c.now(), Creator: "cli", Expires: c.now().Add(time.Hour)}
			laptop := epoch.APIToken{TokenID: tokenID(1), EditorID: alice.ID, Name: "laptop", Created: c.now(), Creator: alice.ID,
				Expires: c.now().Add(time.Hour), Parents: []string{tokenID(2)}}
			for _, tok := range []epoch.APIToken{parent, laptop} {
				if err := s.RegisterToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := s.Token(ctx, laptop.TokenID); !slices.Equal(got.Parents, laptop.Parents) {
				t.Fatalf("parents read back as %v", got.Parents)
			}
			tc.kill(t, s, c, alice.ID)
			c.add(time.Second)
			err := s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(3), EditorID: alice.ID, Name: "laptop", Created: c.now(), Creator: "cli", Expires: c.now().Add(time.Hour)})
			switch {
			case tc.free && err != nil:
				t.Fatalf("the name is still taken: %v", err)
			case !tc.free && !errors.Is(err, epoch.ErrNameTaken):
				t.Fatalf("registering the name again = %v, want ErrNameTaken", err)
			}
		})
	}
}

func mustRevoke(t *testing.T, s *Store, id string) {
	t.Helper()
	if _, _, err := s.RevokeToken(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

func mustDo[T any](t *testing.T, f func(context.Context, string) (T, error), id string) {
	t.Helper()
	if _, err := f(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

// TestNameRace: concurrent registrations of one name, from two Store
// handles on one file (two processes), take it exactly once.
func TestNameRace(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s1, path := open(t, c)
	s2, err := Open(ctx, path, WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	alice, _ := s1.Create(ctx, epoch.NewEditor{Username: "alice"})
	c.add(time.Second)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*Store{s1, s2}[i%2]
			errs[i] = s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(100 + i), EditorID: alice.ID, Name: "laptop", Created: c.now(), Creator: "cli"})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, epoch.ErrNameTaken):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations of one name succeeded", ok)
	}
}

// TestExpiringLiveOnly: tokens revoked, touched, locked or of a
// deactivated editor are not listed as expiring.
func TestExpiringLiveOnly(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, _ := open(t, c)
	for i, kill := range []func(id string){
		func(string) {}, // stays live
		func(id string) { mustDo(t, s.Touch, id) },
		func(id string) { mustDo(t, s.Lock, id) },
		func(id string) {
			mustDo(t, func(ctx context.Context, id string) (any, error) { return s.SetActive(ctx, id, false) }, id)
		},
		func(string) { mustRevoke(t, s, tokenID(4)) },
	} {
		ed, err := s.Create(ctx, epoch.NewEditor{Username: fmt.Sprintf("e%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		c.add(time.Second)
		if err := s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(i), EditorID: ed.ID, Name: "t", Created: c.now(), Creator: "cli", Expires: c.now().Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		c.add(time.Second)
		kill(ed.ID)
	}
	rows, err := s.ExpiringTokens(ctx, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].TokenID != tokenID(0) {
		t.Fatalf("expiring: %+v, want only %s", rows, tokenID(0))
	}
}

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
