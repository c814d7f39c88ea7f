package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

func TestCreate(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	before := time.Now().Truncate(time.Microsecond)
	e, err := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if len(e.ID) != 26 || e.Role != epoch.RoleEditor || !e.Active || e.Version != 1 || !e.AuthEpoch.Equal(e.Created) ||
		e.Created.Before(before.Add(-time.Second)) || e.Created.After(after.Add(time.Second)) || e.Created.Location() != time.UTC || e.Seq < 2 {
		t.Errorf("created %+v", e)
	}
	early := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := s.Create(ctx, epoch.NewEditor{ID: "aaaaaaaaaaaaaaaaaaaaaaaaaq", Username: "fatcat-bot", Role: epoch.RoleBot, Bot: true, Epoch: early})
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != "aaaaaaaaaaaaaaaaaaaaaaaaaq" || f.Role != epoch.RoleBot || !f.Bot || !f.AuthEpoch.Equal(early) {
		t.Errorf("created %+v", f)
	}
	got, err := s.Editor(ctx, f.ID)
	if err != nil || got != f {
		t.Errorf("Editor = %+v, %v; want %+v", got, err, f)
	}
	if byName, err := s.EditorByUsername(ctx, "FATCAT-BOT"); err != nil || byName.ID != f.ID {
		t.Errorf("EditorByUsername = %+v, %v", byName, err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 2 || l[0].Username != "alice" || l[1] != f {
		t.Errorf("List = %+v, %v", l, err)
	}
	for _, tc := range []struct {
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
	} {
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
	if _, err := s.EditorByUsername(ctx, "nobody"); !errors.Is(err, epoch.ErrNotFound) {
		t.Errorf("EditorByUsername(unknown) = %v", err)
	}
}

// TestEpochRule: with the database server's clock, a token minted right
// after a touch returns is valid and one minted right before is not; the
// rule holds at microsecond precision; and epochs only grow, by 1 µs when
// the clock has not passed the epoch.
func TestEpochRule(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
	before := time.Now()
	touched, err := s.Touch(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	ep := touched.AuthEpoch
	if touched.Version != 2 || ep.Before(before.Add(-time.Second)) || ep.After(after.Add(time.Second)) {
		t.Fatalf("touch: %+v (called between %v and %v)", touched, before, after)
	}
	for _, tc := range []struct {
		name    string
		created time.Time
		want    error
	}{
		{"minted before the touch", before.Add(-time.Second), epoch.ErrRevoked},
		{"minted in the same instant as the epoch", ep, epoch.ErrRevoked},
		{"same microsecond, later nanosecond", ep.Add(999 * time.Nanosecond), epoch.ErrRevoked},
		{"minted one microsecond after the touch", ep.Add(time.Microsecond), nil},
		{"minted long after", ep.Add(time.Hour), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := s.State(ctx, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Admit(tc.created); !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("Admit = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("epochs only grow", func(t *testing.T) {
		// An epoch ahead of the clock (an import, a clock that went back):
		// each touch still moves it exactly 1 µs.
		future := time.Now().Add(time.Hour).Truncate(time.Microsecond)
		f, _ := s.Create(ctx, epoch.NewEditor{Username: "future", Epoch: future})
		for i := 1; i <= 3; i++ {
			got, err := s.Touch(ctx, f.ID)
			if want := future.Add(time.Duration(i) * time.Microsecond); err != nil || !got.AuthEpoch.Equal(want) {
				t.Fatalf("touch %d: %v %v, want %v", i, got.AuthEpoch, err, want)
			}
		}
		again, _ := s.Touch(ctx, e.ID)
		if !again.AuthEpoch.After(ep) {
			t.Fatalf("second touch: %v, not after %v", again.AuthEpoch, ep)
		}
	})
}

func TestTouchAllLockUnlockActive(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	var ids []string
	for _, u := range []string{"a", "b", "c"} {
		e, _ := s.Create(ctx, epoch.NewEditor{Username: u})
		ids = append(ids, e.ID)
	}
	tokenTime := time.Now()
	n, err := s.TouchAll(ctx)
	if err != nil || n != 3 {
		t.Fatalf("TouchAll = %d, %v", n, err)
	}
	for _, id := range ids {
		st, _ := s.State(ctx, id)
		if err := st.Admit(tokenTime); !errors.Is(err, epoch.ErrRevoked) || st.Version != 2 {
			t.Errorf("%s after touch everyone: %v, version %d", id, err, st.Version)
		}
	}
	locked, err := s.Lock(ctx, ids[0])
	if err != nil || !locked.Locked() || !locked.AuthEpoch.Equal(epoch.FarFuture) { // farFuture is epoch.FarFuture
		t.Fatalf("Lock = %+v, %v", locked, err)
	}
	newToken := time.Now()
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
	before := time.Now()
	unlocked, err := s.Unlock(ctx, ids[0])
	if err != nil || unlocked.Locked() || unlocked.AuthEpoch.Before(before.Add(-time.Second)) || unlocked.AuthEpoch.After(time.Now().Add(time.Second)) {
		t.Fatalf("Unlock = %+v, %v", unlocked, err)
	}
	if err := unlocked.State().Admit(newToken); !errors.Is(err, epoch.ErrRevoked) {
		t.Errorf("token minted while locked, after unlock: %v", err)
	}
	if err := unlocked.State().Admit(unlocked.AuthEpoch.Add(time.Microsecond)); err != nil {
		t.Errorf("token minted after unlock: %v", err)
	}
	if unlocked.Version <= locked.Version {
		t.Errorf("versions %d then %d: must grow even when the epoch goes back", locked.Version, unlocked.Version)
	}
	// Unlocking an editor that is not locked is a touch.
	again, _ := s.Unlock(ctx, ids[0])
	if !again.AuthEpoch.After(unlocked.AuthEpoch) || again.Version != unlocked.Version+1 {
		t.Errorf("unlock of an unlocked editor: %+v after %+v", again, unlocked)
	}

	off, err := s.SetActive(ctx, ids[1], false)
	if err != nil || off.Active {
		t.Fatalf("SetActive = %+v, %v", off, err)
	}
	if err := off.State().Admit(time.Now().Add(time.Hour)); !errors.Is(err, epoch.ErrInactive) {
		t.Errorf("inactive editor: %v", err)
	}
	on, _ := s.SetActive(ctx, ids[1], true)
	if err := on.State().Admit(time.Now().Add(time.Hour)); err != nil || on.Version != off.Version+1 {
		t.Errorf("reactivated editor: %v", err)
	}
	for name, f := range map[string]func(context.Context, string) (epoch.Editor, error){
		"touch": s.Touch, "lock": s.Lock, "unlock": s.Unlock,
		"deactivate": func(ctx context.Context, id string) (epoch.Editor, error) { return s.SetActive(ctx, id, false) },
	} {
		t.Run(name+" an unknown editor", func(t *testing.T) {
			if _, err := f(ctx, "nobody"); !errors.Is(err, epoch.ErrNotFound) {
				t.Errorf("%s unknown editor: %v", name, err)
			}
		})
	}
}

// TestEveryChangeIsLogged: each operation that changes what State returns
// appends exactly one change-log row, naming the editor and its new version
// (none for every editor); the others append none. The state read carries
// the head it was read at.
func TestEveryChangeIsLogged(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	tok := epoch.APIToken{TokenID: tokenID(1), EditorID: alice.ID, Name: "laptop", Created: time.Now(), Creator: "cli"}
	var newID string
	for _, o := range []struct {
		name   string
		do     func() error
		logged bool
		editor string // "" with logged: every editor
	}{
		{"create", func() error { e, err := s.Create(ctx, epoch.NewEditor{Username: "bob"}); newID = e.ID; return err }, true, "new"},
		{"login creating an editor", func() error {
			e, _, err := s.Login(ctx, "dev", "carol-sub", "carol")
			newID = e.ID
			return err
		}, true, "new"},
		{"login again", func() error { _, _, err := s.Login(ctx, "dev", "carol-sub", "carol"); return err }, false, ""},
		{"link", func() error { _, err := s.Link(ctx, alice.ID, "dev", "alice-sub"); return err }, false, ""},
		{"register a token", func() error { return s.RegisterToken(ctx, tok) }, false, ""},
		{"record a use", func() error { return s.RecordUses(ctx, []epoch.Use{{TokenID: tok.TokenID, At: time.Now(), From: "x"}}) }, false, ""},
		{"touch", func() error { _, err := s.Touch(ctx, alice.ID); return err }, true, alice.ID},
		{"lock", func() error { _, err := s.Lock(ctx, alice.ID); return err }, true, alice.ID},
		{"unlock", func() error { _, err := s.Unlock(ctx, alice.ID); return err }, true, alice.ID},
		{"deactivate", func() error { _, err := s.SetActive(ctx, alice.ID, false); return err }, true, alice.ID},
		{"activate", func() error { _, err := s.SetActive(ctx, alice.ID, true); return err }, true, alice.ID},
		{"revoke a token", func() error { _, _, err := s.RevokeToken(ctx, tok.TokenID); return err }, true, alice.ID},
		{"revoke it again", func() error { s.RevokeToken(ctx, tok.TokenID); return nil }, false, ""},
		{"create a duplicate", func() error { s.Create(ctx, epoch.NewEditor{Username: "ALICE"}); return nil }, false, ""},
		{"touch everyone", func() error { _, err := s.TouchAll(ctx); return err }, true, ""},
		{"touch an unknown editor", func() error { s.Touch(ctx, "nobody"); return nil }, false, ""},
		{"unlink", func() error { _, err := s.Unlink(ctx, alice.ID, "dev"); return err }, false, ""},
	} {
		t.Run(o.name, func(t *testing.T) {
			before, err := s.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			if err := o.do(); err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
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
			if len(cs) != 1 || after.Seq != before.Seq+1 || cs[0].Seq != after.Seq || after.StoreID != before.StoreID || cs[0].Keys {
				t.Fatalf("changes %+v, head %+v → %+v", cs, before, after)
			}
			want := o.editor
			if want == "new" {
				want = newID
			}
			if cs[0].EditorID != want || cs[0].At.Before(t0.Add(-time.Second)) || cs[0].At.After(t1.Add(time.Second)) {
				t.Fatalf("change %+v, want editor %q between %v and %v", cs[0], want, t0, t1)
			}
			if want != "" {
				e, _ := s.Editor(ctx, want)
				if cs[0].Version != e.Version || e.Seq != after.Seq || e.State().Seq != after.Seq {
					t.Fatalf("change %+v, editor version %d seq %d", cs[0], e.Version, e.Seq)
				}
			} else if cs[0].Version != 0 {
				t.Fatalf("change of every editor with version %d", cs[0].Version)
			}
		})
	}
}

func TestHeadAndStoreID(t *testing.T) {
	ctx := context.Background()
	a, _ := open(t)
	b, _ := open(t)
	ha, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := b.Head(ctx)
	if len(ha.StoreID) != 32 || ha.StoreID == hb.StoreID {
		t.Fatalf("store ids %q %q", ha.StoreID, hb.StoreID)
	}
	if ha.Seq != 1 || ha.Oldest != 1 {
		t.Fatalf("a new store's head %+v", ha)
	}
	// Pruning: old rows go, the newest stays, so the head never goes back.
	s, _ := open(t, WithChangeRetention(time.Nanosecond))
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	for range pruneEvery {
		if _, err := s.Touch(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := s.Head(ctx)
	if h.Seq != pruneEvery+2 || h.Oldest <= 1 || h.Oldest > h.Seq {
		t.Fatalf("after pruning: %+v", h)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM changes"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Head(ctx); h.Seq != 0 || h.Oldest != 1 {
		t.Fatalf("an empty log: %+v", h)
	}
}

// TestTwoRevokedTokens: the revoked list is sorted, whatever the order of
// revocation; a token between them still verifies.
func TestTwoRevokedTokens(t *testing.T) {
	ctx := context.Background()
	ids := []string{ // in id order
		"10000000-0000-4000-8000-000000000000",
		"7AAAAAAA-0000-4000-8000-000000000000",
		"FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF",
	}
	for _, order := range [][2]int{{2, 0}, {0, 2}} {
		t.Run(fmt.Sprintf("revoke %d then %d", order[0], order[1]), func(t *testing.T) {
			s, _ := open(t)
			alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
			created := time.Now().Add(-time.Minute)
			for i, id := range ids {
				if err := s.RegisterToken(ctx, epoch.APIToken{TokenID: id, EditorID: alice.ID, Name: fmt.Sprint("t", i), Created: created, Creator: "cli"}); err != nil {
					t.Fatal(err)
				}
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
			if err := epoch.CheckRevoked(st.Revoked); err != nil || st.Revoked != ids[0]+","+ids[2] {
				t.Fatalf("revoked %q: %v", st.Revoked, err)
			}
			for i, id := range ids {
				err := st.Admit(created, id)
				if revoked := i != 1; revoked != errors.Is(err, epoch.ErrTokenRevoked) {
					t.Errorf("token %d (%s): %v", i, id, err)
				}
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
	bob, _ := s.Create(ctx, epoch.NewEditor{Username: "bob", Epoch: time.Now().Add(-time.Hour)})
	now := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	mk := func(id, editor, name string, rights []string, expires time.Time) epoch.APIToken {
		return epoch.APIToken{TokenID: id, EditorID: editor, Name: name, Description: "for " + name, Rights: rights,
			Created: now, Creator: editor, Expires: expires}
	}
	laptop := mk(tokenID(1), alice.ID, "laptop", nil, time.Time{})
	laptop.Endpoint = "https://api.example.org"
	cron := mk(tokenID(2), alice.ID, "cron", []string{"read"}, now.Add(48*time.Hour))
	server := mk(tokenID(3), alice.ID, "server", []string{}, now.Add(10*24*time.Hour))
	other := mk(tokenID(4), bob.ID, "laptop", nil, time.Time{})
	for _, tok := range []epoch.APIToken{laptop, cron, server, other} {
		if err := s.RegisterToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		tok  epoch.APIToken
		want error
	}{
		{"duplicate live name", mk(tokenID(5), alice.ID, "laptop", nil, time.Time{}), epoch.ErrNameTaken},
		{"unknown editor", mk(tokenID(6), "nobody", "x", nil, time.Time{}), epoch.ErrNotFound},
		{"name with a newline", mk(tokenID(7), alice.ID, "bad\nname", nil, time.Time{}), epoch.ErrInvalidToken},
		{"id not a UUID", mk("not-a-uuid", alice.ID, "x", nil, time.Time{}), epoch.ErrInvalidToken},
		{"id registered twice", mk(laptop.TokenID, bob.ID, "again", nil, time.Time{}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.RegisterToken(ctx, tc.tok)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("RegisterToken = %v, want %v", err, tc.want)
			}
		})
	}
	got, err := s.Token(ctx, cron.TokenID)
	if err != nil || !tokenEqual(got, cron) {
		t.Fatalf("Token = %+v, %v; want %+v", got, err, cron)
	}
	if got, _ := s.Token(ctx, laptop.TokenID); got.Rights != nil || got.Endpoint != laptop.Endpoint {
		t.Fatalf("unrestricted token read back with rights %#v endpoint %q", got.Rights, got.Endpoint)
	}
	if got, _ := s.Token(ctx, server.TokenID); got.Rights == nil || len(got.Rights) != 0 {
		t.Fatalf("no-rights token read back as %#v", got.Rights)
	}
	if l, _ := s.Tokens(ctx, alice.ID); len(l) != 3 || l[0].TokenID != laptop.TokenID || l[2].TokenID != server.TokenID {
		t.Fatalf("alice's tokens: %+v", l)
	}
	if l, _ := s.Tokens(ctx, ""); len(l) != 4 {
		t.Fatalf("all tokens: %d", len(l))
	}
	if _, err := s.Token(ctx, "nope"); !errors.Is(err, epoch.ErrTokenNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if _, _, err := s.RevokeToken(ctx, "nope"); !errors.Is(err, epoch.ErrTokenNotFound) {
		t.Fatalf("revoke unknown token: %v", err)
	}
	if exp, _ := s.ExpiringTokens(ctx, 7*24*time.Hour); len(exp) != 1 || exp[0].TokenID != cron.TokenID {
		t.Fatalf("expiring within 7 days: %+v", exp)
	}

	before, _ := s.Editor(ctx, alice.ID)
	ed, row, err := s.RevokeToken(ctx, cron.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	if ed.Version != before.Version+1 || ed.Revoked != cron.TokenID || row.Revoked.IsZero() || row.TokenID != cron.TokenID {
		t.Fatalf("after revoke: editor %+v row %+v", ed, row)
	}
	if got, _ := s.Token(ctx, cron.TokenID); !got.Revoked.Equal(row.Revoked) {
		t.Fatalf("revoked at %v, read back %v", row.Revoked, got.Revoked)
	}
	st := ed.State()
	if err := st.Admit(now, cron.TokenID); !errors.Is(err, epoch.ErrTokenRevoked) {
		t.Fatalf("Admit(revoked token) = %v", err)
	}
	if _, again, err := s.RevokeToken(ctx, cron.TokenID); !errors.Is(err, epoch.ErrAlreadyRevoked) || again.TokenID != cron.TokenID {
		t.Fatalf("second revoke: %v", err)
	}
	if bobNow, _ := s.Editor(ctx, bob.ID); bobNow.Revoked != "" || bobNow.Version != bob.Version {
		t.Fatal("revoking alice's token changed bob")
	}
	if err := s.RegisterToken(ctx, mk(tokenID(8), alice.ID, "cron", nil, time.Time{})); err != nil {
		t.Fatalf("reusing a revoked token's name: %v", err)
	}
	if exp, _ := s.ExpiringTokens(ctx, 7*24*time.Hour); len(exp) != 0 {
		t.Fatal("a revoked token is listed as expiring")
	}
	s.RevokeToken(ctx, laptop.TokenID)
	if ed, _ = s.Editor(ctx, alice.ID); ed.Revoked != laptop.TokenID+","+cron.TokenID {
		t.Fatalf("revoked list %q", ed.Revoked)
	}
	if ed, _ = s.Touch(ctx, alice.ID); ed.Revoked != "" {
		t.Fatalf("after touch the list still holds %q", ed.Revoked)
	}
	// A revoked token that has expired leaves the list.
	gone := mk(tokenID(9), alice.ID, "gone", nil, time.Now().Add(-time.Second))
	gone.Created = ed.AuthEpoch.Add(time.Microsecond)
	if err := s.RegisterToken(ctx, gone); err != nil {
		t.Fatal(err)
	}
	late := mk(tokenID(10), alice.ID, "late", nil, time.Now().Add(time.Hour))
	late.Created = ed.AuthEpoch.Add(time.Microsecond)
	s.RegisterToken(ctx, late)
	s.RevokeToken(ctx, gone.TokenID)
	if ed, _, _ = s.RevokeToken(ctx, late.TokenID); ed.Revoked != late.TokenID {
		t.Fatalf("revoked list %q, want only the unexpired %s", ed.Revoked, late.TokenID)
	}
}

// tokenEqual compares rows, times by instant.
func tokenEqual(a, b epoch.APIToken) bool {
	return a.TokenID == b.TokenID && a.EditorID == b.EditorID && a.Name == b.Name && a.Description == b.Description &&
		slices.Equal(a.Rights, b.Rights) && (a.Rights == nil) == (b.Rights == nil) && a.Endpoint == b.Endpoint &&
		a.Created.Equal(b.Created) && a.Creator == b.Creator && a.Expires.Equal(b.Expires) && a.Revoked.Equal(b.Revoked) &&
		a.LastUsed.Equal(b.LastUsed) && a.LastUsedFrom == b.LastUsedFrom && slices.Equal(a.Parents, b.Parents)
}

func TestRecordUses(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	tok := epoch.APIToken{TokenID: tokenID(1), EditorID: alice.ID, Name: "laptop", Created: t0, Creator: "cli"}
	if err := s.RegisterToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 300)
	if err := s.RecordUses(ctx, []epoch.Use{
		{TokenID: tok.TokenID, At: t0.Add(time.Hour), From: "192.0.2.1"},
		{TokenID: "not-an-api-token", At: t0, From: "x"},
	}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Token(ctx, tok.TokenID)
	if !got.LastUsed.Equal(t0.Add(time.Hour)) || got.LastUsedFrom != "192.0.2.1" {
		t.Fatalf("last use %v from %q", got.LastUsed, got.LastUsedFrom)
	}
	s.RecordUses(ctx, []epoch.Use{{TokenID: tok.TokenID, At: t0.Add(time.Minute), From: "198.51.100.7"}})
	if got, _ := s.Token(ctx, tok.TokenID); !got.LastUsed.Equal(t0.Add(time.Hour)) || got.LastUsedFrom != "192.0.2.1" {
		t.Fatalf("last use moved back to %v from %q", got.LastUsed, got.LastUsedFrom)
	}
	s.RecordUses(ctx, []epoch.Use{{TokenID: tok.TokenID, At: t0.Add(2 * time.Hour), From: long}})
	if got, _ := s.Token(ctx, tok.TokenID); got.LastUsedFrom != long[:epoch.MaxUseFrom] {
		t.Fatalf("from kept %d bytes", len(got.LastUsedFrom))
	}
	if err := s.RecordUses(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// TestNameFreeOnceDead: a name is taken by a token that may still verify,
// and free again once its token is dead for good, whatever killed it.
func TestNameFreeOnceDead(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		expires time.Duration // of laptop, from now
		kill    func(t *testing.T, s *Store, alice string)
		free    bool
	}{
		{"live", time.Hour, func(*testing.T, *Store, string) {}, false},
		{"revoked", time.Hour, func(t *testing.T, s *Store, _ string) { mustRevoke(t, s, tokenID(1)) }, true},
		{"expired", -time.Second, func(*testing.T, *Store, string) {}, true},
		{"touched", time.Hour, func(t *testing.T, s *Store, alice string) { mustDo(t, s.Touch, alice) }, true},
		{"locked", time.Hour, func(t *testing.T, s *Store, alice string) { mustDo(t, s.Lock, alice) }, true},
		{"locked and unlocked", time.Hour, func(t *testing.T, s *Store, alice string) {
			mustDo(t, s.Lock, alice)
			mustDo(t, s.Unlock, alice)
		}, true},
		{"its parent revoked", time.Hour, func(t *testing.T, s *Store, _ string) { mustRevoke(t, s, tokenID(2)) }, true},
		{"its editor deactivated (activating revives it)", time.Hour, func(t *testing.T, s *Store, alice string) {
			if _, err := s.SetActive(ctx, alice, false); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t)
			alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
			created := time.Now().Add(-time.Minute)
			parent := epoch.APIToken{TokenID: tokenID(2), EditorID: alice.ID, Name: "parent", Created: created, Creator: "cli", Expires: time.Now().Add(time.Hour)}
			laptop := epoch.APIToken{TokenID: tokenID(1), EditorID: alice.ID, Name: "laptop", Created: created, Creator: alice.ID,
				Expires: time.Now().Add(tc.expires), Parents: []string{tokenID(2)}}
			for _, tok := range []epoch.APIToken{parent, laptop} {
				if err := s.RegisterToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := s.Token(ctx, laptop.TokenID); !slices.Equal(got.Parents, laptop.Parents) {
				t.Fatalf("parents read back as %v", got.Parents)
			}
			tc.kill(t, s, alice.ID)
			e, _ := s.Editor(ctx, alice.ID)
			later := time.Now()
			if e.AuthEpoch.After(later) && !e.Locked() {
				later = e.AuthEpoch.Add(time.Microsecond)
			}
			err := s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(3), EditorID: alice.ID, Name: "laptop", Created: later, Creator: "cli", Expires: time.Now().Add(time.Hour)})
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

func TestExpiringLiveOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	for i, kill := range []func(id string){
		func(string) {}, // stays live
		func(id string) { mustDo(t, s.Touch, id) },
		func(id string) { mustDo(t, s.Lock, id) },
		func(id string) { s.SetActive(ctx, id, false) },
		func(string) { mustRevoke(t, s, tokenID(4)) },
	} {
		ed, err := s.Create(ctx, epoch.NewEditor{Username: fmt.Sprintf("e%d", i), Epoch: time.Now().Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(i), EditorID: ed.ID, Name: "t", Created: time.Now().Add(-time.Minute), Creator: "cli", Expires: time.Now().Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
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

func TestTokenLimits(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t, WithTokenLimits(3, 4))
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
	n := 0
	created := time.Now().Add(-time.Minute)
	register := func() error {
		n++
		return s.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(n), EditorID: alice.ID, Name: fmt.Sprint("t", n), Created: created, Creator: "cli"})
	}
	for range 3 {
		if err := register(); err != nil {
			t.Fatal(err)
		}
	}
	if err := register(); !errors.Is(err, epoch.ErrTooManyTokens) || !strings.Contains(err.Error(), "live") {
		t.Fatalf("a fourth live token: %v", err)
	}
	for i := 1; i <= 4; i++ {
		if _, _, err := s.RevokeToken(ctx, tokenID(i)); err != nil && !errors.Is(err, epoch.ErrTokenNotFound) {
			t.Fatal(err)
		}
		if i < 4 {
			if err := register(); err != nil {
				t.Fatalf("after revoking %d: %v", i, err)
			}
		}
	}
	if _, _, err := s.RevokeToken(ctx, tokenID(5)); err != nil {
		t.Fatal(err)
	}
	if err := register(); !errors.Is(err, epoch.ErrTooManyTokens) || !strings.Contains(err.Error(), "log out everywhere") {
		t.Fatalf("with 4 revoked tokens listed: %v", err)
	}
	if _, _, err := s.RevokeToken(ctx, tokenID(6)); err != nil {
		t.Fatal(err)
	}
	touched, _ := s.Touch(ctx, alice.ID)
	created = touched.AuthEpoch.Add(time.Microsecond)
	if err := register(); err != nil {
		t.Fatalf("after a touch: %v", err)
	}
}

func TestLogin(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	const issuer = "https://id.example.org"
	first, created, err := s.Login(ctx, issuer, "sub-1", "alice@example.org")
	if err != nil || !created || first.Username != "alice" || first.Role != epoch.RoleEditor {
		t.Fatalf("first login: %+v created=%v %v", first, created, err)
	}
	again, created, err := s.Login(ctx, issuer, "sub-1", "renamed")
	if err != nil || created || again.ID != first.ID || again.Username != "alice" {
		t.Fatalf("second login: %+v created=%v %v", again, created, err)
	}
	t.Run("taken username gets a suffix", func(t *testing.T) {
		for i, want := range []string{"Alice-2", "Alice-3"} {
			e, created, err := s.Login(ctx, issuer, fmt.Sprintf("other-%d", i), "Alice")
			if err != nil || !created || e.Username != want {
				t.Fatalf("login %d: %+v %v, want username %s", i, e, err, want)
			}
		}
	})
	t.Run("same subject at another provider is another editor", func(t *testing.T) {
		e, created, err := s.Login(ctx, "dev", "sub-1", "alice")
		if err != nil || !created || e.ID == first.ID {
			t.Fatalf("%+v created=%v %v", e, created, err)
		}
	})
	t.Run("one identity per provider per editor", func(t *testing.T) {
		if _, err := s.Link(ctx, first.ID, issuer, "sub-2"); !errors.Is(err, epoch.ErrLinked) {
			t.Fatalf("second identity at one provider: %v", err)
		}
		bob, _ := s.Create(ctx, epoch.NewEditor{Username: "bob"})
		if _, err := s.Link(ctx, bob.ID, issuer, "sub-1"); !errors.Is(err, epoch.ErrLinked) {
			t.Fatalf("subject linked twice: %v", err)
		}
		l, err := s.Link(ctx, bob.ID, issuer, "bob-sub")
		if err != nil || l.Created.IsZero() || l.EditorID != bob.ID {
			t.Fatal(l, err)
		}
		if e, err := s.LinkedEditor(ctx, issuer, "bob-sub"); err != nil || e.ID != bob.ID {
			t.Fatalf("linked editor: %+v %v", e, err)
		}
		if _, err := s.Link(ctx, "nobody", issuer, "x"); !errors.Is(err, epoch.ErrNotFound) {
			t.Fatalf("unknown editor: %v", err)
		}
		if _, err := s.Link(ctx, bob.ID, "dev", "a b"); !errors.Is(err, epoch.ErrInvalidLink) {
			t.Fatalf("invalid subject: %v", err)
		}
		if _, err := s.Link(ctx, bob.ID, "a-dev", "bob"); err != nil {
			t.Fatal(err)
		}
		links, err := s.Links(ctx, bob.ID)
		if err != nil || len(links) != 2 || links[0].Provider != "a-dev" || links[1].Provider != issuer {
			t.Fatalf("links %+v %v", links, err)
		}
	})
	t.Run("unknown identity", func(t *testing.T) {
		if _, err := s.LinkedEditor(ctx, issuer, "never"); !errors.Is(err, epoch.ErrNotFound) {
			t.Fatal(err)
		}
	})
	t.Run("invalid identities", func(t *testing.T) {
		for _, tc := range []struct{ provider, subject string }{
			{"", "x"}, {"dev", ""}, {"dev", "a b"}, {"dev", "ä"}, {"dev", strings.Repeat("x", 256)}, {"dev\n", "x"},
		} {
			if _, _, err := s.Login(ctx, tc.provider, tc.subject, "x"); !errors.Is(err, epoch.ErrInvalidLink) {
				t.Errorf("Login(%q, %q): %v", tc.provider, tc.subject, err)
			}
		}
	})
}

func TestUnlink(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	const issuer = "https://id.example.org"
	alice, _, err := s.Login(ctx, issuer, "sub-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Link(ctx, alice.ID, "dev", "alice"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, editor, provider string
		want                   error
		left                   int
	}{
		{"unknown provider", alice.ID, "https://other.example.org", epoch.ErrNotFound, 2},
		{"unknown editor", "nobody", issuer, epoch.ErrNotFound, 2},
		{"the issuer's identity", alice.ID, issuer, nil, 1},
		{"again", alice.ID, issuer, epoch.ErrNotFound, 1},
		{"the dev identity", alice.ID, "dev", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := s.Unlink(ctx, tc.editor, tc.provider)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unlink: %v, want %v", err, tc.want)
			}
			if err == nil && (l.EditorID != alice.ID || l.Provider != tc.provider || l.Created.IsZero()) {
				t.Fatalf("removed link %+v", l)
			}
			links, err := s.Links(ctx, alice.ID)
			if err != nil || len(links) != tc.left {
				t.Fatalf("links left: %+v %v, want %d", links, err, tc.left)
			}
		})
	}
	e, created, err := s.Login(ctx, issuer, "sub-1", "alice")
	if err != nil || !created || e.ID == alice.ID {
		t.Fatalf("login after unlink: %+v created=%v %v", e, created, err)
	}
}

func TestStoreClosed(t *testing.T) {
	s, _ := open(t)
	s.Close()
	if _, err := s.State(context.Background(), "x"); err == nil || errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("State on a closed store = %v, want a store error (not ErrNotFound)", err)
	}
}

// TestStateReadUsesIndexes: the state read finds the editor by its key and
// its revoked tokens through their index, never by a scan, so that it
// stays flat from a thousand editors to a million.
func TestStateReadUsesIndexes(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// Statistics of a big table, so the planner's choice is the real one.
	for _, q := range []string{
		"INSERT INTO editors (id, username, role, auth_epoch, created) SELECT 'e' || i, 'u' || i, 'editor', now(), now() FROM generate_series(1, 20000) i",
		"INSERT INTO api_tokens (token_id, editor_id, name, created, creator, revoked) SELECT 'T' || i, 'e' || (i % 20000 + 1), 'n', now(), 'cli', CASE WHEN i % 2 = 0 THEN now() END FROM generate_series(1, 40000) i",
		"INSERT INTO changes (at) SELECT now() FROM generate_series(1, 20000)",
		"ANALYZE",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.Query(ctx, "EXPLAIN SELECT "+editorColumns+" FROM editors e WHERE e.id = 'e5'")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", all)
	if strings.Contains(all, "Seq Scan") {
		t.Fatalf("the state read scans a table:\n%s", all)
	}
	for _, index := range []string{"editors_pkey", "api_tokens_editor_revoked", "changes_pkey"} {
		if !strings.Contains(all, index) {
			t.Errorf("the state read does not use %s:\n%s", index, all)
		}
	}
}
