package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
)

// sameEditor compares records field by field (times with Equal), leaving
// out Seq, which moves with every change to any editor.
func sameEditor(a, b epoch.Editor) bool {
	return a.ID == b.ID && a.Username == b.Username && a.Role == b.Role && a.Bot == b.Bot && a.Active == b.Active &&
		a.AuthEpoch.Equal(b.AuthEpoch) && a.Created.Equal(b.Created) && a.Version == b.Version && a.Revoked == b.Revoked
}

// testStore: both handles answer, and report the same schema version.
func testStore(t *testing.T, s *suite) {
	ctx := t.Context()
	for _, h := range []struct {
		name string
		st   epoch.Store
	}{{"a", s.a}, {"b", s.b}} {
		t.Run(h.name, func(t *testing.T) {
			if err := h.st.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		})
	}
	va, err := s.a.SchemaVersion(ctx)
	if err != nil || va <= 0 {
		t.Fatalf("SchemaVersion = %d, %v", va, err)
	}
	if vb, err := s.b.SchemaVersion(ctx); err != nil || vb != va {
		t.Fatalf("SchemaVersion on a second handle = %d, %v; want %d", vb, err, va)
	}
}

// testCreate: ids, defaults, validation and uniqueness; each creation
// appends one change at version 1, a refused one nothing.
func testCreate(t *testing.T, s *suite) {
	ctx := t.Context()
	early := time.Date(2019, 1, 2, 3, 4, 5, 678901234, time.UTC) // nanoseconds: stored truncated to µs
	explicitID := s.username("id-")
	taken := s.username("Taken")
	tests := []struct {
		name  string
		n     epoch.NewEditor
		check func(t *testing.T, e epoch.Editor, before, after time.Time)
	}{
		{"defaults", epoch.NewEditor{Username: taken}, func(t *testing.T, e epoch.Editor, before, after time.Time) {
			if len(e.ID) != 26 || strings.Trim(e.ID, "abcdefghijklmnopqrstuvwxyz234567") != "" || !caveat.ValidEditorID(e.ID) {
				t.Errorf("generated id %q: want 26 characters of lower-case base32", e.ID)
			}
			if e.Role != epoch.RoleEditor || e.Bot || !e.Active || e.Version != 1 || e.Revoked != "" || e.Locked() {
				t.Errorf("created %+v", e)
			}
			if !near(e.Created, before, after) || !e.AuthEpoch.Equal(e.Created) {
				t.Errorf("created at %v with epoch %v; want both now (%v)", e.Created, e.AuthEpoch, before)
			}
		}},
		{"explicit id, role, bot and epoch", epoch.NewEditor{ID: explicitID, Username: s.username("fatcat-bot"), Role: epoch.RoleBot, Bot: true, Epoch: early},
			func(t *testing.T, e epoch.Editor, before, after time.Time) {
				if e.ID != explicitID || e.Role != epoch.RoleBot || !e.Bot || !e.AuthEpoch.Equal(µs(early)) || !near(e.Created, before, after) {
					t.Errorf("created %+v; want epoch %v", e, µs(early))
				}
			}},
		{"admin", epoch.NewEditor{Username: s.username("admin"), Role: epoch.RoleAdmin}, func(t *testing.T, e epoch.Editor, _, _ time.Time) {
			if e.Role != epoch.RoleAdmin {
				t.Errorf("role %q", e.Role)
			}
		}},
		{"superuser", epoch.NewEditor{Username: s.username("root"), Role: epoch.RoleSuperuser}, func(t *testing.T, e epoch.Editor, _, _ time.Time) {
			if e.Role != epoch.RoleSuperuser {
				t.Errorf("role %q", e.Role)
			}
		}},
		{"64-character username", epoch.NewEditor{Username: pad(s.username("L"), 64)}, func(*testing.T, epoch.Editor, time.Time, time.Time) {}},
		{"future epoch", epoch.NewEditor{Username: s.username("future"), Epoch: early.AddDate(100, 0, 0)}, func(t *testing.T, e epoch.Editor, _, _ time.Time) {
			if !e.AuthEpoch.Equal(µs(early.AddDate(100, 0, 0))) || e.Locked() {
				t.Errorf("epoch %v", e.AuthEpoch)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e epoch.Editor
			before := time.Now()
			cs, err := s.appended(t, func() (err error) { e, err = s.a.Create(ctx, tc.n); return err })
			after := time.Now()
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if e.Username != tc.n.Username {
				t.Errorf("username %q, want %q", e.Username, tc.n.Username)
			}
			tc.check(t, e, before, after)
			if len(cs) != 1 || cs[0].EditorID != e.ID || cs[0].Version != 1 || e.Seq != cs[0].Seq || !near(cs[0].At, before, after) {
				t.Errorf("changes %+v for a creation; editor seq %d", cs, e.Seq)
			}
			got, err := s.b.Editor(ctx, e.ID)
			if err != nil || !sameEditor(got, e) {
				t.Errorf("read back through another handle: %+v, %v; want %+v", got, err, e)
			}
		})
	}

	bad := []struct {
		name string
		n    epoch.NewEditor
		want error // nil: any error
	}{
		{"duplicate username", epoch.NewEditor{Username: taken}, epoch.ErrExists},
		{"duplicate username, other case", epoch.NewEditor{Username: strings.ToUpper(taken)}, epoch.ErrExists},
		{"duplicate username, lower case", epoch.NewEditor{Username: strings.ToLower(taken)}, epoch.ErrExists},
		{"duplicate id", epoch.NewEditor{ID: explicitID, Username: s.username("other")}, epoch.ErrExists},
		{"unknown role", epoch.NewEditor{Username: s.username("x"), Role: "root"}, epoch.ErrInvalidEditor},
		{"username with a space", epoch.NewEditor{Username: "a b"}, epoch.ErrInvalidEditor},
		{"empty username", epoch.NewEditor{}, epoch.ErrInvalidEditor},
		{"username starting with punctuation", epoch.NewEditor{Username: "-x"}, epoch.ErrInvalidEditor},
		{"65-character username", epoch.NewEditor{Username: strings.Repeat("y", 65)}, epoch.ErrInvalidEditor},
		{"non-ASCII username", epoch.NewEditor{Username: "zoë"}, epoch.ErrInvalidEditor},
		{"upper-case id", epoch.NewEditor{ID: "ABC", Username: s.username("y")}, epoch.ErrInvalidEditor},
		{"id with a slash", epoch.NewEditor{ID: "a/b", Username: s.username("y")}, epoch.ErrInvalidEditor},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := s.noChange(t, func() error { _, err := s.a.Create(ctx, tc.n); return err })
			switch {
			case err == nil:
				t.Fatal("created")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Create = %v, want %v", err, tc.want)
			case tc.want == nil && errors.Is(err, epoch.ErrExists):
				t.Fatalf("an invalid editor refused with ErrExists: %v", err)
			}
		})
	}
}

// testRead: Editor, EditorByUsername (case-insensitive), List (order of
// creation), State and the Seq they carry; reads append nothing.
func testRead(t *testing.T, s *suite) {
	ctx := t.Context()
	first := s.editor(t)
	second := must[epoch.Editor](t)(s.a.Create(ctx, epoch.NewEditor{Username: s.username("MixedCase"), Epoch: time.Unix(1e9, 0)}))
	third := s.editor(t)
	tests := []struct {
		name string
		read func() (epoch.Editor, error)
		want epoch.Editor
	}{
		{"Editor", func() (epoch.Editor, error) { return s.b.Editor(ctx, second.ID) }, second},
		{"EditorByUsername", func() (epoch.Editor, error) { return s.b.EditorByUsername(ctx, second.Username) }, second},
		{"EditorByUsername, upper case", func() (epoch.Editor, error) { return s.b.EditorByUsername(ctx, strings.ToUpper(second.Username)) }, second},
		{"EditorByUsername, lower case", func() (epoch.Editor, error) { return s.b.EditorByUsername(ctx, strings.ToLower(second.Username)) }, second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got epoch.Editor
			wantErr(t, s.noChange(t, func() (err error) { got, err = tc.read(); return err }), nil)
			if !sameEditor(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			h, err := s.a.Head(ctx)
			if err != nil || got.Seq != h.Seq {
				t.Fatalf("read at seq %d; head %d, %v", got.Seq, h.Seq, err)
			}
		})
	}
	t.Run("State", func(t *testing.T) {
		var st epoch.State
		wantErr(t, s.noChange(t, func() (err error) { st, err = s.b.State(ctx, second.ID); return err }), nil)
		h, err := s.a.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := second.State()
		want.Seq = h.Seq
		if !st.Epoch.Equal(want.Epoch) || st.Role != want.Role || st.Active != want.Active || st.Version != want.Version || st.Revoked != want.Revoked || st.Seq != want.Seq {
			t.Fatalf("State = %+v, want %+v", st, want)
		}
	})
	t.Run("List", func(t *testing.T) {
		var l []epoch.Editor
		wantErr(t, s.noChange(t, func() (err error) { l, err = s.b.List(ctx); return err }), nil)
		var pos []int
		for _, want := range []epoch.Editor{first, second, third} {
			i := slices.IndexFunc(l, func(e epoch.Editor) bool { return e.ID == want.ID })
			if i < 0 || !sameEditor(l[i], want) {
				t.Fatalf("List lacks %+v", want)
			}
			pos = append(pos, i)
		}
		if !slices.IsSorted(pos) {
			t.Fatalf("List has editors created in order at positions %v", pos)
		}
		for i := 1; i < len(l); i++ {
			if l[i].Created.Before(l[i-1].Created) {
				t.Fatalf("List is not in order of creation: %v then %v", l[i-1].Created, l[i].Created)
			}
		}
	})
}

// testUnknownEditor: every operation on an unknown editor fails with
// ErrNotFound and changes nothing.
func testUnknownEditor(t *testing.T, s *suite) {
	ctx := t.Context()
	const nobody = "nobody-at-all"
	tests := []struct {
		name string
		do   func() error
	}{
		{"Editor", func() error { _, err := s.a.Editor(ctx, nobody); return err }},
		{"State", func() error { _, err := s.a.State(ctx, nobody); return err }},
		{"EditorByUsername", func() error { _, err := s.a.EditorByUsername(ctx, nobody); return err }},
		{"Touch", func() error { _, err := s.a.Touch(ctx, nobody); return err }},
		{"Lock", func() error { _, err := s.a.Lock(ctx, nobody); return err }},
		{"Unlock", func() error { _, err := s.a.Unlock(ctx, nobody); return err }},
		{"SetActive", func() error { _, err := s.a.SetActive(ctx, nobody, false); return err }},
		{"RegisterToken", func() error {
			return s.a.RegisterToken(ctx, epoch.APIToken{TokenID: tokenID(), EditorID: nobody, Name: "x", Created: time.Now(), Creator: "cli"})
		}},
		{"Link", func() error { _, err := s.a.Link(ctx, nobody, "dev", "nobody-sub"); return err }},
		{"Unlink", func() error { _, err := s.a.Unlink(ctx, nobody, "dev"); return err }},
		{"LinkedEditor", func() error { _, err := s.a.LinkedEditor(ctx, "dev", "nobody-sub"); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, s.noChange(t, tc.do), epoch.ErrNotFound) })
	}
	t.Run("empty lists", func(t *testing.T) {
		if l, err := s.a.Tokens(ctx, nobody); err != nil || len(l) != 0 {
			t.Fatalf("Tokens = %+v, %v", l, err)
		}
		if l, err := s.a.Links(ctx, nobody); err != nil || len(l) != 0 {
			t.Fatalf("Links = %+v, %v", l, err)
		}
	})
	// Ids and names no store can hold — invalid UTF-8, a NUL byte, too
	// long — come from requests (a path, a query, an argument): they are
	// unknown, as on every store, never a store error (which a daemon
	// answers 503, and PostgreSQL raises for bytes a text column refuses).
	for _, bad := range []struct{ name, v string }{
		{"invalid UTF-8", "bad\xff\xfe"},
		{"NUL byte", "nul\x00byte"},
		{"100 kB", strings.Repeat("a", 100_000)},
	} {
		t.Run("unusable id: "+bad.name, func(t *testing.T) {
			ops := []struct {
				name string
				do   func() error
				want error
			}{
				{"Editor", func() error { _, err := s.a.Editor(ctx, bad.v); return err }, epoch.ErrNotFound},
				{"State", func() error { _, err := s.a.State(ctx, bad.v); return err }, epoch.ErrNotFound},
				{"EditorByUsername", func() error { _, err := s.a.EditorByUsername(ctx, bad.v); return err }, epoch.ErrNotFound},
				{"Touch", func() error { _, err := s.a.Touch(ctx, bad.v); return err }, epoch.ErrNotFound},
				{"Lock", func() error { _, err := s.a.Lock(ctx, bad.v); return err }, epoch.ErrNotFound},
				{"Unlock", func() error { _, err := s.a.Unlock(ctx, bad.v); return err }, epoch.ErrNotFound},
				{"SetActive", func() error { _, err := s.a.SetActive(ctx, bad.v, false); return err }, epoch.ErrNotFound},
				{"Unlink", func() error { _, err := s.a.Unlink(ctx, bad.v, "dev"); return err }, epoch.ErrNotFound},
				{"Unlink provider", func() error { _, err := s.a.Unlink(ctx, "nobody", bad.v); return err }, epoch.ErrNotFound},
				{"LinkedEditor", func() error { _, err := s.a.LinkedEditor(ctx, "dev", bad.v); return err }, epoch.ErrNotFound},
				{"Token", func() error { _, err := s.a.Token(ctx, bad.v); return err }, epoch.ErrTokenNotFound},
				{"RevokeToken", func() error { _, _, err := s.a.RevokeToken(ctx, bad.v); return err }, epoch.ErrTokenNotFound},
				{"Tokens", func() error {
					if l, err := s.a.Tokens(ctx, bad.v); err != nil || len(l) != 0 {
						return fmt.Errorf("Tokens = %+v, %w", l, err)
					}
					return nil
				}, nil},
				{"Links", func() error {
					if l, err := s.a.Links(ctx, bad.v); err != nil || len(l) != 0 {
						return fmt.Errorf("Links = %+v, %w", l, err)
					}
					return nil
				}, nil},
			}
			for _, op := range ops {
				t.Run(op.name, func(t *testing.T) {
					err := s.noChange(t, op.do)
					if op.want == nil {
						if err != nil {
							t.Fatal(err)
						}
						return
					}
					wantErr(t, err, op.want)
				})
			}
		})
	}
}

// testEpochRule: a token is valid only if created strictly after the
// epoch, at microsecond precision, as read back from the store.
func testEpochRule(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	mintedBefore := time.Now()
	touched := must[epoch.Editor](t)(s.a.Touch(ctx, e.ID))
	mintedAfter := time.Now()
	st := must[epoch.State](t)(s.b.State(ctx, e.ID))
	ep := st.Epoch
	if !ep.Equal(touched.AuthEpoch) || !ep.Equal(µs(ep)) {
		t.Fatalf("epoch %v read back as %v (must be whole microseconds)", touched.AuthEpoch, ep)
	}
	tests := []struct {
		name    string
		created time.Time
		want    error
	}{
		{"created before the touch", mintedBefore, epoch.ErrRevoked},
		{"created at the old epoch", e.AuthEpoch, epoch.ErrRevoked},
		{"created a microsecond before the epoch", ep.Add(-time.Microsecond), epoch.ErrRevoked},
		{"created at the epoch", ep, epoch.ErrRevoked},
		{"created in the epoch's microsecond, later nanosecond", ep.Add(999 * time.Nanosecond), epoch.ErrRevoked},
		{"created one microsecond after the epoch", ep.Add(time.Microsecond), nil},
		{"created right after the touch returned (store clock = host clock)", mintedAfter, nil},
		{"created an hour after", ep.Add(time.Hour), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := st.Admit(tc.created)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Admit(%v) with epoch %v = %v, want %v", tc.created, ep, err, tc.want)
			}
		})
	}
}

// testTouch: a touch moves the epoch to max(now, epoch + 1 µs), bumps the
// version and appends one change; a locked editor stays locked.
func testTouch(t *testing.T, s *suite) {
	ctx := t.Context()
	t.Run("now", func(t *testing.T) {
		e := s.editor(t)
		var got epoch.Editor
		before := time.Now()
		s.oneChange(t, e.ID, func() (err error) { got, err = s.a.Touch(ctx, e.ID); return err })
		after := time.Now()
		if !got.AuthEpoch.After(e.AuthEpoch) || !near(got.AuthEpoch, before, after) || got.Version != e.Version+1 || got.Locked() {
			t.Fatalf("touched %+v, was %+v", got, e)
		}
		if read := must[epoch.Editor](t)(s.b.Editor(ctx, e.ID)); !sameEditor(read, got) {
			t.Fatalf("read back %+v, Touch returned %+v", read, got)
		}
	})
	t.Run("epoch in the future: one microsecond per touch", func(t *testing.T) {
		// The store's clock is behind the epoch, as when two touches fall
		// in one microsecond: each still moves the epoch forward by 1 µs.
		future := µs(time.Now().Add(time.Hour))
		e := must[epoch.Editor](t)(s.a.Create(ctx, epoch.NewEditor{Username: s.username("ahead"), Epoch: future}))
		for i := 1; i <= 3; i++ {
			h := []epoch.Store{s.a, s.b}[i%2]
			got := must[epoch.Editor](t)(h.Touch(ctx, e.ID))
			if want := future.Add(time.Duration(i) * time.Microsecond); !got.AuthEpoch.Equal(want) || got.Version != int64(1+i) {
				t.Fatalf("touch %d: epoch %v version %d, want %v and %d", i, got.AuthEpoch, got.Version, want, 1+i)
			}
		}
	})
	t.Run("back to back", func(t *testing.T) {
		e := s.editor(t)
		prev := e
		for i := range 20 {
			got := must[epoch.Editor](t)([]epoch.Store{s.a, s.b}[i%2].Touch(ctx, e.ID))
			if !got.AuthEpoch.After(prev.AuthEpoch) || got.Version != prev.Version+1 {
				t.Fatalf("touch %d: %v v%d after %v v%d", i, got.AuthEpoch, got.Version, prev.AuthEpoch, prev.Version)
			}
			prev = got
		}
	})
	t.Run("locked stays locked", func(t *testing.T) {
		e := s.editor(t)
		locked := must[epoch.Editor](t)(s.a.Lock(ctx, e.ID))
		var got epoch.Editor
		s.oneChange(t, e.ID, func() (err error) { got, err = s.a.Touch(ctx, e.ID); return err })
		if !got.Locked() || !got.AuthEpoch.Equal(epoch.FarFuture) || got.Version != locked.Version+1 {
			t.Fatalf("touching a locked editor: %+v", got)
		}
	})
}

// testLockUnlock: Lock sets FarFuture; Unlock sets now, so that tokens
// minted while locked stay revoked; on an unlocked editor Unlock touches.
func testLockUnlock(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	var locked epoch.Editor
	s.oneChange(t, e.ID, func() (err error) { locked, err = s.a.Lock(ctx, e.ID); return err })
	if !locked.Locked() || !locked.AuthEpoch.Equal(epoch.FarFuture) || locked.Version != e.Version+1 {
		t.Fatalf("Lock = %+v", locked)
	}
	st := must[epoch.State](t)(s.b.State(ctx, e.ID))
	if err := st.Admit(time.Now().Add(time.Hour)); !errors.Is(err, epoch.ErrLocked) || !errors.Is(err, epoch.ErrRevoked) {
		t.Fatalf("a new token of a locked editor: %v", err)
	}
	again := must[epoch.Editor](t)(s.b.Lock(ctx, e.ID))
	if !again.Locked() || again.Version != locked.Version+1 {
		t.Fatalf("locking again: %+v", again)
	}
	mintedWhileLocked := time.Now()
	var unlocked epoch.Editor
	before := time.Now()
	s.oneChange(t, e.ID, func() (err error) { unlocked, err = s.a.Unlock(ctx, e.ID); return err })
	after := time.Now()
	if unlocked.Locked() || !near(unlocked.AuthEpoch, before, after) || unlocked.Version != again.Version+1 {
		t.Fatalf("Unlock = %+v", unlocked)
	}
	if err := unlocked.State().Admit(mintedWhileLocked); !errors.Is(err, epoch.ErrRevoked) {
		t.Fatalf("a token minted while locked, after unlock: %v", err)
	}
	if err := unlocked.State().Admit(unlocked.AuthEpoch.Add(time.Microsecond)); err != nil {
		t.Fatalf("a token minted after unlock: %v", err)
	}
	t.Run("unlock of an unlocked editor touches", func(t *testing.T) {
		got := must[epoch.Editor](t)(s.a.Unlock(ctx, e.ID))
		if !got.AuthEpoch.After(unlocked.AuthEpoch) || got.Version != unlocked.Version+1 {
			t.Fatalf("Unlock = %+v after %+v", got, unlocked)
		}
		future := µs(time.Now().Add(time.Hour))
		f := must[epoch.Editor](t)(s.a.Create(ctx, epoch.NewEditor{Username: s.username("ahead"), Epoch: future}))
		if got := must[epoch.Editor](t)(s.a.Unlock(ctx, f.ID)); !got.AuthEpoch.Equal(future.Add(time.Microsecond)) {
			t.Fatalf("Unlock of an editor whose epoch is ahead: %v, want %v", got.AuthEpoch, future.Add(time.Microsecond))
		}
	})
}

// testSetActive: deactivation fails every token until activation.
func testSetActive(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	prev := e
	for _, active := range []bool{false, true, false} {
		var got epoch.Editor
		s.oneChange(t, e.ID, func() (err error) { got, err = s.a.SetActive(ctx, e.ID, active); return err })
		if got.Active != active || got.Version != prev.Version+1 || !got.AuthEpoch.Equal(prev.AuthEpoch) {
			t.Fatalf("SetActive(%v) = %+v after %+v", active, got, prev)
		}
		st := must[epoch.State](t)(s.b.State(ctx, e.ID))
		err := st.Admit(e.AuthEpoch.Add(time.Microsecond))
		if active && err != nil || !active && !errors.Is(err, epoch.ErrInactive) {
			t.Fatalf("Admit with active=%v: %v", active, err)
		}
		prev = got
	}
}

// testTouchAll: every editor touched once, locked ones left locked; one
// change for every editor.
func testTouchAll(t *testing.T, s *suite) {
	ctx := t.Context()
	plain := s.editor(t)
	locked := must[epoch.Editor](t)(s.a.Lock(ctx, s.editor(t).ID))
	future := µs(time.Now().Add(time.Hour))
	ahead := must[epoch.Editor](t)(s.a.Create(ctx, epoch.NewEditor{Username: s.username("ahead"), Epoch: future}))
	before := must[[]epoch.Editor](t)(s.a.List(ctx))
	var n int64
	c := s.oneChange(t, "", func() (err error) { n, err = s.b.TouchAll(ctx); return err })
	if n != int64(len(before)) {
		t.Fatalf("TouchAll = %d, with %d editors", n, len(before))
	}
	after := must[[]epoch.Editor](t)(s.a.List(ctx))
	if len(after) != len(before) {
		t.Fatalf("%d editors after, %d before", len(after), len(before))
	}
	for i, e := range after {
		b := before[i]
		switch {
		case e.ID != b.ID || e.Version != b.Version+1:
			t.Errorf("%s: version %d, was %d", e.ID, e.Version, b.Version)
		case b.Locked() && !e.Locked():
			t.Errorf("%s: unlocked by a touch of everyone", e.ID)
		case !b.Locked() && !e.AuthEpoch.After(b.AuthEpoch):
			t.Errorf("%s: epoch %v, was %v", e.ID, e.AuthEpoch, b.AuthEpoch)
		case e.Seq != c.Seq:
			t.Errorf("%s: read at seq %d after the change %d", e.ID, e.Seq, c.Seq)
		}
	}
	for _, w := range []struct {
		e    epoch.Editor
		want func(epoch.Editor) bool
	}{
		{plain, func(g epoch.Editor) bool { return g.AuthEpoch.After(plain.AuthEpoch) && !g.Locked() }},
		{locked, func(g epoch.Editor) bool { return g.AuthEpoch.Equal(epoch.FarFuture) }},
		{ahead, func(g epoch.Editor) bool { return g.AuthEpoch.Equal(future.Add(time.Microsecond)) }},
	} {
		if got := must[epoch.Editor](t)(s.a.Editor(ctx, w.e.ID)); !w.want(got) || got.Version != w.e.Version+1 {
			t.Errorf("after TouchAll: %+v, was %+v", got, w.e)
		}
	}
}

// pad pads name with "x" to n characters.
func pad(name string, n int) string { return name + strings.Repeat("x", n-len(name)) }
