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
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
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

func TestCreate(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, _ := open(t, c)
	e, err := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.ID) != 26 || e.Role != epoch.RoleEditor || !e.Active || !e.AuthEpoch.Equal(t0) || !e.Created.Equal(t0) || e.Version != 1 {
		t.Errorf("created %+v", e)
	}
	early := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := s.Create(ctx, epoch.NewEditor{ID: "aaaaaaaaaaaaaaaaaaaaaaaaaq", Username: "fatcat-bot", Role: epoch.RoleBot, Epoch: early})
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != "aaaaaaaaaaaaaaaaaaaaaaaaaq" || f.Role != epoch.RoleBot || !f.AuthEpoch.Equal(early) {
		t.Errorf("created %+v", f)
	}
	got, err := s.Editor(ctx, f.ID)
	if err != nil || got != f {
		t.Errorf("Editor = %+v, %v", got, err)
	}
	if byName, err := s.EditorByUsername(ctx, "FATCAT-BOT"); err != nil || byName.ID != f.ID {
		t.Errorf("EditorByUsername = %+v, %v", byName, err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 2 || l[0].Username != "alice" {
		t.Errorf("List = %+v, %v", l, err)
	}
	bad := []struct {
		name string
		n    epoch.NewEditor
		want error
	}{
		{"duplicate username", epoch.NewEditor{Username: "alice"}, epoch.ErrExists},
		{"duplicate username, other case", epoch.NewEditor{Username: "ALICE"}, epoch.ErrExists},
		{"duplicate id", epoch.NewEditor{ID: f.ID, Username: "other"}, epoch.ErrExists},
		{"bad role", epoch.NewEditor{Username: "x", Role: "root"}, nil},
		{"bad username", epoch.NewEditor{Username: "a b"}, nil},
		{"empty username", epoch.NewEditor{}, nil},
		{"bad id", epoch.NewEditor{ID: "A/B", Username: "y"}, nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(ctx, tc.n)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Create = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := s.Editor(ctx, "nobody"); !errors.Is(err, epoch.ErrNotFound) {
		t.Errorf("Editor(unknown) = %v", err)
	}
	if _, err := s.State(ctx, "nobody"); !errors.Is(err, epoch.ErrNotFound) {
		t.Errorf("State(unknown) = %v", err)
	}
}

// TestEpochRule is the heart of revocation: a token is valid only if it was
// created strictly after the epoch, at microsecond precision.
func TestEpochRule(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, _ := open(t, c)
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	admit := func(created time.Time) error {
		st, err := s.State(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Admit(created)
	}

	c.set(t0.Add(time.Hour))
	tokenBefore := t0.Add(30 * time.Minute)
	if err := admit(tokenBefore); err != nil {
		t.Fatalf("token before any touch: %v", err)
	}
	touched, err := s.Touch(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	ep := touched.AuthEpoch
	if !ep.Equal(t0.Add(time.Hour)) || touched.Version != 2 {
		t.Fatalf("touch: %+v", touched)
	}
	tests := []struct {
		name    string
		created time.Time
		want    error
	}{
		{"minted before the touch", tokenBefore, epoch.ErrRevoked},
		{"minted in the same instant as the epoch", ep, epoch.ErrRevoked},
		{"same microsecond, later nanosecond", ep.Add(999 * time.Nanosecond), epoch.ErrRevoked},
		{"minted one microsecond after the touch", ep.Add(time.Microsecond), nil},
		{"minted long after", ep.Add(time.Hour), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := admit(tc.created); !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("Admit = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("epochs only grow", func(t *testing.T) {
		// The clock stands still or goes back: each touch still moves 1 µs.
		again, _ := s.Touch(ctx, e.ID)
		if want := ep.Add(time.Microsecond); !again.AuthEpoch.Equal(want) {
			t.Fatalf("second touch in the same instant: %v, want %v", again.AuthEpoch, want)
		}
		c.set(t0)
		back, _ := s.Touch(ctx, e.ID)
		if want := ep.Add(2 * time.Microsecond); !back.AuthEpoch.Equal(want) {
			t.Fatalf("touch with the clock behind: %v, want %v", back.AuthEpoch, want)
		}
	})
}

func TestTouchRealClock(t *testing.T) {
	// With the real clock, a token minted right after a touch returns is
	// valid, and one minted right before is not.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
	before := time.Now()
	touched, err := s.Touch(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if err := touched.State().Admit(before); !errors.Is(err, epoch.ErrRevoked) {
		t.Errorf("token minted before the touch: %v", err)
	}
	if err := touched.State().Admit(after); err != nil {
		t.Errorf("token minted right after the touch: %v (epoch %v, created %v)", err, touched.AuthEpoch, after)
	}
}

func TestTouchAllLockUnlockActive(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, _ := open(t, c)
	var ids []string
	for _, u := range []string{"a", "b", "c"} {
		e, _ := s.Create(ctx, epoch.NewEditor{Username: u})
		ids = append(ids, e.ID)
	}
	c.add(time.Minute)
	tokenTime := c.now()
	c.add(time.Minute)
	n, err := s.TouchAll(ctx)
	if err != nil || n != 3 {
		t.Fatalf("TouchAll = %d, %v", n, err)
	}
	for _, id := range ids {
		st, _ := s.State(ctx, id)
		if err := st.Admit(tokenTime); !errors.Is(err, epoch.ErrRevoked) {
			t.Errorf("%s after touch everyone: %v", id, err)
		}
	}

	c.add(time.Minute)
	locked, err := s.Lock(ctx, ids[0])
	if err != nil || !locked.Locked() {
		t.Fatalf("Lock = %+v, %v", locked, err)
	}
	c.add(time.Minute)
	newToken := c.now()
	if err := locked.State().Admit(newToken); !errors.Is(err, epoch.ErrLocked) || !errors.Is(err, epoch.ErrRevoked) {
		t.Errorf("new token of a locked editor: %v", err)
	}
	if still, _ := s.Touch(ctx, ids[0]); !still.Locked() {
		t.Error("touch unlocked a locked editor")
	}
	if n, _ := s.TouchAll(ctx); n != 3 {
		t.Error("touch everyone skipped someone")
	}
	if st, _ := s.State(ctx, ids[0]); !st.Locked() {
		t.Error("touch everyone unlocked a locked editor")
	}
	c.add(time.Minute)
	unlocked, err := s.Unlock(ctx, ids[0])
	if err != nil || unlocked.Locked() || !unlocked.AuthEpoch.Equal(c.now()) {
		t.Fatalf("Unlock = %+v, %v", unlocked, err)
	}
	if err := unlocked.State().Admit(newToken); !errors.Is(err, epoch.ErrRevoked) {
		t.Errorf("token minted while locked, after unlock: %v", err)
	}
	if err := unlocked.State().Admit(c.now().Add(time.Microsecond)); err != nil {
		t.Errorf("token minted after unlock: %v", err)
	}
	if unlocked.Version <= locked.Version {
		t.Errorf("versions %d then %d: must grow even when the epoch goes back", locked.Version, unlocked.Version)
	}

	off, err := s.SetActive(ctx, ids[1], false)
	if err != nil || off.Active {
		t.Fatalf("SetActive = %+v, %v", off, err)
	}
	if err := off.State().Admit(c.now().Add(time.Hour)); !errors.Is(err, epoch.ErrInactive) {
		t.Errorf("inactive editor: %v", err)
	}
	on, _ := s.SetActive(ctx, ids[1], true)
	if err := on.State().Admit(c.now().Add(time.Hour)); err != nil {
		t.Errorf("reactivated editor: %v", err)
	}
	for name, f := range map[string]func(context.Context, string) (epoch.Editor, error){"touch": s.Touch, "lock": s.Lock, "unlock": s.Unlock} {
		if _, err := f(ctx, "nobody"); !errors.Is(err, epoch.ErrNotFound) {
			t.Errorf("%s unknown editor: %v", name, err)
		}
	}
}

// TestConcurrentTouches: touches from many connections serialise, and each
// one moves the epoch forward.
func TestConcurrentTouches(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, path := open(t, c)
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	other, err := Open(ctx, path, WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	const n = 50
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(st *Store) {
			defer wg.Done()
			if _, err := st.Touch(ctx, e.ID); err != nil {
				t.Error(err)
			}
		}([]*Store{s, other}[i%2])
	}
	wg.Wait()
	got, _ := s.Editor(ctx, e.ID)
	if want := t0.Add(n * time.Microsecond); !got.AuthEpoch.Equal(want) || got.Version != n+1 {
		t.Errorf("after %d concurrent touches: epoch %v version %d, want %v and %d", n, got.AuthEpoch, got.Version, want, n+1)
	}
}

func TestStoreClosed(t *testing.T) {
	s, _ := open(t, &clock{t: t0})
	s.Close()
	_, err := s.State(context.Background(), "x")
	if err == nil || errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("State on a closed store = %v, want a store error (not ErrNotFound)", err)
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
