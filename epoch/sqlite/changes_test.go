package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestEveryChangeIsLogged: each operation that changes what State returns
// appends exactly one change-log row, naming the editor and its new version
// (none for every editor); the others append none. The state read carries
// the head it was read at.
func TestEveryChangeIsLogged(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, _ := open(t, c)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	tok := epoch.APIToken{TokenID: "00000000-0000-4000-8000-000000000001", EditorID: alice.ID, Name: "laptop", Created: t0.Add(time.Second), Creator: "cli"}
	c.add(time.Minute)
	type op struct {
		name   string
		do     func() error
		logged bool
		editor string // "" with logged: every editor
	}
	var newID string
	for _, o := range []op{
		{"create", func() error { e, err := s.Create(ctx, epoch.NewEditor{Username: "bob"}); newID = e.ID; return err }, true, "new"},
		{"login creating an editor", func() error {
			e, _, err := s.Login(ctx, "dev", "carol-sub", "carol")
			newID = e.ID
			return err
		}, true, "new"},
		{"login again", func() error { _, _, err := s.Login(ctx, "dev", "carol-sub", "carol"); return err }, false, ""},
		{"link", func() error { _, err := s.Link(ctx, alice.ID, "dev", "alice-sub"); return err }, false, ""},
		{"register a token", func() error { return s.RegisterToken(ctx, tok) }, false, ""},
		{"record a use", func() error { return s.RecordUses(ctx, []epoch.Use{{TokenID: tok.TokenID, At: t0, From: "x"}}) }, false, ""},
		{"touch", func() error { _, err := s.Touch(ctx, alice.ID); return err }, true, alice.ID},
		{"lock", func() error { _, err := s.Lock(ctx, alice.ID); return err }, true, alice.ID},
		{"unlock", func() error { _, err := s.Unlock(ctx, alice.ID); return err }, true, alice.ID},
		{"deactivate", func() error { _, err := s.SetActive(ctx, alice.ID, false); return err }, true, alice.ID},
		{"activate", func() error { _, err := s.SetActive(ctx, alice.ID, true); return err }, true, alice.ID},
		{"revoke a token", func() error { _, _, err := s.RevokeToken(ctx, tok.TokenID); return err }, true, alice.ID},
		{"touch everyone", func() error { _, err := s.TouchAll(ctx); return err }, true, ""},
		{"touch an unknown editor", func() error { s.Touch(ctx, "nobody"); return nil }, false, ""},
	} {
		t.Run(o.name, func(t *testing.T) {
			before, err := s.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := o.do(); err != nil {
				t.Fatal(err)
			}
			after, _ := s.Head(ctx)
			cs, err := s.Changes(ctx, before.Seq, 10)
			if err != nil {
				t.Fatal(err)
			}
			if !o.logged {
				if len(cs) != 0 || after.Seq != before.Seq {
					t.Fatalf("logged %+v", cs)
				}
				return
			}
			if len(cs) != 1 || after.Seq != before.Seq+1 || cs[0].Seq != after.Seq || after.StoreID != before.StoreID {
				t.Fatalf("changes %+v, head %+v → %+v", cs, before, after)
			}
			want := o.editor
			if want == "new" {
				want = newID
			}
			if cs[0].EditorID != want || !cs[0].At.Equal(c.now()) {
				t.Fatalf("change %+v, want editor %q at %v", cs[0], want, c.now())
			}
			if want != "" {
				e, _ := s.Editor(ctx, want)
				if cs[0].Version != e.Version || e.Seq != after.Seq || e.State().Seq != after.Seq {
					t.Fatalf("change %+v, editor version %d seq %d", cs[0], e.Version, e.Seq)
				}
			}
		})
	}
}

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

// TestTwoRevokedTokens: two API tokens of one editor revoked one by one
// are both refused (the one whose id sorts last too); a third, whose id
// sorts between and before them, still verifies.
func TestTwoRevokedTokens(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, _ := open(t, c)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	c.add(time.Minute)
	ids := []string{ // in id order
		"10000000-0000-4000-8000-000000000000",
		"7AAAAAAA-0000-4000-8000-000000000000",
		"FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF",
	}
	for i, id := range ids {
		if err := s.RegisterToken(ctx, epoch.APIToken{TokenID: id, EditorID: alice.ID, Name: fmt.Sprint("t", i), Created: c.now(), Creator: "cli"}); err != nil {
			t.Fatal(err)
		}
	}
	created := c.now()
	for _, order := range [][2]int{{2, 0}, {0, 2}} {
		t.Run(fmt.Sprintf("revoke %d then %d", order[0], order[1]), func(t *testing.T) {
			s, _ := open(t, c)
			alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: t0})
			for i, id := range ids {
				s.RegisterToken(ctx, epoch.APIToken{TokenID: id, EditorID: alice.ID, Name: fmt.Sprint("t", i), Created: created, Creator: "cli"})
			}
			for _, i := range order {
				if _, _, err := s.RevokeToken(ctx, ids[i]); err != nil {
					t.Fatal(err)
				}
			}
			st, err := s.State(ctx, alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := epoch.CheckRevoked(st.Revoked); err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				err := st.Admit(created, id)
				if revoked := i != 1; revoked != errors.Is(err, epoch.ErrTokenRevoked) {
					t.Errorf("token %d (%s): %v", i, id, err)
				}
			}
			// Only the token's own id, or an exchanged token's parent.
			if err := st.Admit(created, ids[1], ids[2]); !errors.Is(err, epoch.ErrTokenRevoked) {
				t.Errorf("a token exchanged from the last revoked one: %v", err)
			}
		})
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

func TestTokenLimits(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, err := Open(ctx, filepath.Join(t.TempDir(), "a.db"), WithClock(c.now), WithTokenLimits(3, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	c.add(time.Minute)
	n := 0
	register := func() error {
		n++
		return s.RegisterToken(ctx, epoch.APIToken{TokenID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), EditorID: alice.ID, Name: fmt.Sprint("t", n), Created: c.now(), Creator: "cli"})
	}
	for i := 0; i < 3; i++ {
		if err := register(); err != nil {
			t.Fatal(err)
		}
	}
	if err := register(); !errors.Is(err, epoch.ErrTooManyTokens) || !strings.Contains(err.Error(), "live") {
		t.Fatalf("a fourth live token: %v", err)
	}
	// Revoking frees a live slot, until the revoked list is full.
	for i := 1; i <= 4; i++ {
		if _, _, err := s.RevokeToken(ctx, fmt.Sprintf("00000000-0000-4000-8000-%012d", i)); err != nil && !errors.Is(err, epoch.ErrTokenNotFound) {
			t.Fatal(err)
		}
		if i < 4 {
			if err := register(); err != nil {
				t.Fatalf("after revoking %d: %v", i, err)
			}
		}
	}
	if _, _, err := s.RevokeToken(ctx, "00000000-0000-4000-8000-000000000005"); err != nil {
		t.Fatal(err)
	}
	err = register() // 2 live, 4 revoked listed
	if !errors.Is(err, epoch.ErrTooManyTokens) || !strings.Contains(err.Error(), "log out everywhere") {
		t.Fatalf("with 4 revoked tokens listed: %v", err)
	}
	// Revoking is never refused.
	if _, _, err := s.RevokeToken(ctx, "00000000-0000-4000-8000-000000000006"); err != nil {
		t.Fatal(err)
	}
	// A touch clears the list.
	s.Touch(ctx, alice.ID)
	c.add(time.Second)
	if err := register(); err != nil {
		t.Fatalf("after a touch: %v", err)
	}
	if err := s.RegisterToken(ctx, epoch.APIToken{TokenID: "not-a-uuid", EditorID: alice.ID, Name: "x", Created: c.now(), Creator: "cli"}); !errors.Is(err, epoch.ErrInvalidToken) {
		t.Fatalf("a token id that is no UUID: %v", err)
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
