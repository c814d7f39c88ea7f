package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// sameToken compares rows field by field, times with Equal.
func sameToken(a, b epoch.APIToken) bool {
	return a.TokenID == b.TokenID && a.EditorID == b.EditorID && a.Name == b.Name && a.Description == b.Description &&
		slices.Equal(a.Rights, b.Rights) && (a.Rights == nil) == (b.Rights == nil) && a.Endpoint == b.Endpoint &&
		a.Created.Equal(b.Created) && a.Creator == b.Creator && a.Expires.Equal(b.Expires) && a.Revoked.Equal(b.Revoked) &&
		a.LastUsed.Equal(b.LastUsed) && a.LastUsedFrom == b.LastUsedFrom && slices.Equal(a.Parents, b.Parents) &&
		a.RotatedTo == b.RotatedTo && a.RotatedFrom == b.RotatedFrom && a.GraceUntil.Equal(b.GraceUntil) &&
		a.LastAttenuation == b.LastAttenuation && a.LastAttenuationID == b.LastAttenuationID &&
		slices.Equal(a.Caveats, b.Caveats) && (a.Caveats == nil) == (b.Caveats == nil)
}

// stored is a row as a store keeps it: times truncated to microseconds.
func stored(r epoch.APIToken) epoch.APIToken {
	r.Created, r.Expires, r.Revoked, r.LastUsed, r.GraceUntil = µs(r.Created), µs(r.Expires), µs(r.Revoked), µs(r.LastUsed), µs(r.GraceUntil)
	return r
}

// testRegisterToken: rows are checked (ErrInvalidToken), ids are unique,
// and a refused row leaves nothing behind.
func testRegisterToken(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	ok := token(e, "ok")
	register(t, s.a, ok)
	with := func(f func(*epoch.APIToken)) epoch.APIToken {
		r := token(e, s.username("n"))
		f(&r)
		return r
	}
	tests := []struct {
		name string
		row  epoch.APIToken
		want error // nil: any error
	}{
		{"id not a UUID", with(func(r *epoch.APIToken) { r.TokenID = "not-a-uuid" }), epoch.ErrInvalidToken},
		{"lower-case id", with(func(r *epoch.APIToken) { r.TokenID = strings.ToLower(r.TokenID) }), epoch.ErrInvalidToken},
		{"empty id", with(func(r *epoch.APIToken) { r.TokenID = "" }), epoch.ErrInvalidToken},
		{"empty name", with(func(r *epoch.APIToken) { r.Name = "" }), epoch.ErrInvalidToken},
		{"65-byte name", with(func(r *epoch.APIToken) { r.Name = strings.Repeat("n", 65) }), epoch.ErrInvalidToken},
		{"name with a newline", with(func(r *epoch.APIToken) { r.Name = "a\nb" }), epoch.ErrInvalidToken},
		{"name with a NUL", with(func(r *epoch.APIToken) { r.Name = "a\x00b" }), epoch.ErrInvalidToken},
		{"name not UTF-8", with(func(r *epoch.APIToken) { r.Name = "laptop\xff" }), epoch.ErrInvalidToken},
		{"description not UTF-8", with(func(r *epoch.APIToken) { r.Description = "my \xc3 laptop" }), epoch.ErrInvalidToken},
		{"1025-byte description", with(func(r *epoch.APIToken) { r.Description = strings.Repeat("d", 1025) }), epoch.ErrInvalidToken},
		{"description with an escape", with(func(r *epoch.APIToken) { r.Description = "a\x1b[31mb" }), epoch.ErrInvalidToken},
		{"caveat with a NUL", with(func(r *epoch.APIToken) { r.Caveats = []string{"tenant = a\x00b"} }), epoch.ErrInvalidToken},
		{"empty caveat", with(func(r *epoch.APIToken) { r.Caveats = []string{""} }), epoch.ErrInvalidToken},
		{"caveat not UTF-8", with(func(r *epoch.APIToken) { r.Caveats = []string{"tenant = \xff"} }), epoch.ErrInvalidToken},
		{"513-byte caveat", with(func(r *epoch.APIToken) { r.Caveats = []string{"tenant = " + strings.Repeat("a", 504)} }), epoch.ErrInvalidToken},
		{"33 caveats", with(func(r *epoch.APIToken) { r.Caveats = slices.Repeat([]string{"method = GET"}, 33) }), epoch.ErrInvalidToken},
		{"parent not a UUID", with(func(r *epoch.APIToken) { r.Parents = []string{tokenID(), "nope"} }), epoch.ErrInvalidToken},
		{"unknown editor", with(func(r *epoch.APIToken) { r.EditorID = "nobody-at-all" }), epoch.ErrNotFound},
		{"id already registered", with(func(r *epoch.APIToken) { r.TokenID = ok.TokenID }), epoch.ErrTokenExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.noChange(t, func() error { return s.a.RegisterToken(ctx, tc.row) })
			switch {
			case err == nil:
				t.Fatal("registered")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("RegisterToken = %v, want %v", err, tc.want)
			}
			if tc.row.TokenID == ok.TokenID {
				if got := must[epoch.APIToken](t)(s.a.Token(ctx, ok.TokenID)); !sameToken(got, stored(ok)) {
					t.Fatalf("the registered row became %+v", got)
				}
			} else if _, err := s.a.Token(ctx, tc.row.TokenID); !errors.Is(err, epoch.ErrTokenNotFound) {
				t.Fatalf("Token after a refused registration: %v", err)
			}
		})
	}
	t.Run("limits of the text", func(t *testing.T) {
		r := with(func(r *epoch.APIToken) {
			r.Name = pad(s.username("N"), 64)
			r.Description = strings.Repeat("line\n", 204) + "abcd" // 1024 bytes
		})
		wantErr(t, s.noChange(t, func() error { return s.a.RegisterToken(ctx, r) }), nil)
		if got := must[epoch.APIToken](t)(s.b.Token(ctx, r.TokenID)); !sameToken(got, stored(r)) {
			t.Fatalf("read back %+v", got)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		if _, err := s.a.Token(ctx, tokenID()); !errors.Is(err, epoch.ErrTokenNotFound) {
			t.Fatalf("Token = %v", err)
		}
	})
}

// testTokenRoundTrip: every field of a row reads back as registered (times
// at microsecond precision), rights nil and empty kept apart.
func testTokenRoundTrip(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	now := time.Now()
	tests := []struct {
		name string
		row  epoch.APIToken
	}{
		{"every field", epoch.APIToken{TokenID: tokenID(), EditorID: e.ID, Name: "laptop ✓", Description: "for the laptop\nsecond line",
			Rights: []string{"read", "write", "admin:editors"}, Endpoint: "api.example:v1", Created: now, Creator: "admin-1",
			Expires: now.Add(90 * 24 * time.Hour), Parents: []string{tokenID(), tokenID()}}},
		{"unrestricted (rights nil)", epoch.APIToken{TokenID: tokenID(), EditorID: e.ID, Name: "any", Created: now, Creator: e.ID}},
		{"no rights (empty, not nil)", epoch.APIToken{TokenID: tokenID(), EditorID: e.ID, Name: "none", Rights: []string{}, Created: now, Creator: "cli"}},
		{"one right", epoch.APIToken{TokenID: tokenID(), EditorID: e.ID, Name: "one", Rights: []string{"read"}, Created: now, Creator: "cli"}},
		{"one parent", epoch.APIToken{TokenID: tokenID(), EditorID: e.ID, Name: "child", Created: now, Creator: "cli", Parents: []string{tokenID()}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			register(t, s.a, tc.row)
			want := stored(tc.row)
			got := must[epoch.APIToken](t)(s.b.Token(ctx, tc.row.TokenID))
			if !sameToken(got, want) {
				t.Fatalf("Token = %#v\nwant    %#v", got, want)
			}
			l := must[[]epoch.APIToken](t)(s.b.Tokens(ctx, e.ID))
			if i := slices.IndexFunc(l, func(r epoch.APIToken) bool { return r.TokenID == tc.row.TokenID }); i < 0 || !sameToken(l[i], want) {
				t.Fatalf("Tokens lacks the row or differs: %+v", l)
			}
		})
	}
}

// testTokensOrder: Tokens lists oldest first (by creation time, not by
// registration), one editor's or everyone's.
func testTokensOrder(t *testing.T, s *suite) {
	ctx := t.Context()
	e, f := s.editor(t), s.editor(t)
	base := f.AuthEpoch.Add(time.Second) // after both editors' epochs
	at := func(ed epoch.Editor, d time.Duration, name string) epoch.APIToken {
		r := token(ed, name)
		r.Created = base.Add(d)
		return r
	}
	rows := []epoch.APIToken{at(e, 3*time.Microsecond, "third"), at(e, time.Microsecond, "first"), at(f, 2*time.Microsecond, "f"), at(e, 2*time.Microsecond, "second")}
	register(t, s.a, rows...)
	var names []string
	for _, r := range must[[]epoch.APIToken](t)(s.b.Tokens(ctx, e.ID)) {
		names = append(names, r.Name)
	}
	if want := []string{"first", "second", "third"}; !slices.Equal(names, want) {
		t.Fatalf("Tokens(e) = %v, want %v", names, want)
	}
	all := must[[]epoch.APIToken](t)(s.b.Tokens(ctx, ""))
	var ours []string
	for i, r := range all {
		if i > 0 && r.Created.Before(all[i-1].Created) {
			t.Fatalf("Tokens(\"\") out of order at %d: %v after %v", i, r.Created, all[i-1].Created)
		}
		if r.EditorID == e.ID || r.EditorID == f.ID {
			ours = append(ours, r.Name)
		}
	}
	if want := []string{"first", "f", "second", "third"}; !slices.Equal(ours, want) {
		t.Fatalf("Tokens(\"\") has ours as %v, want %v", ours, want)
	}
}

// testTokenNames: a name is taken while its token may still verify, and
// free once the token is dead for good, whatever killed it.
func testTokenNames(t *testing.T, s *suite) {
	ctx := t.Context()
	tests := []struct {
		name string
		// expired registers laptop already expired.
		expired bool
		// kill does something to the editor, its "laptop" token or that
		// token's parent.
		kill func(t *testing.T, e epoch.Editor, laptop, parent epoch.APIToken)
		free bool
	}{
		{"live", false, func(*testing.T, epoch.Editor, epoch.APIToken, epoch.APIToken) {}, false},
		{"revoked", false, func(t *testing.T, _ epoch.Editor, laptop, _ epoch.APIToken) { s.revoke(t, laptop.TokenID) }, true},
		{"expired", true, func(*testing.T, epoch.Editor, epoch.APIToken, epoch.APIToken) {}, true},
		{"touched", false, func(t *testing.T, e epoch.Editor, _, _ epoch.APIToken) { must[epoch.Editor](t)(s.a.Touch(ctx, e.ID)) }, true},
		{"touched by a touch of everyone", false, func(t *testing.T, e epoch.Editor, _, _ epoch.APIToken) { must[int64](t)(s.a.TouchAll(ctx)) }, true},
		{"locked", false, func(t *testing.T, e epoch.Editor, _, _ epoch.APIToken) { must[epoch.Editor](t)(s.a.Lock(ctx, e.ID)) }, true},
		{"locked and unlocked", false, func(t *testing.T, e epoch.Editor, _, _ epoch.APIToken) {
			must[epoch.Editor](t)(s.a.Lock(ctx, e.ID))
			must[epoch.Editor](t)(s.a.Unlock(ctx, e.ID))
		}, true},
		{"its parent revoked", false, func(t *testing.T, _ epoch.Editor, _, parent epoch.APIToken) { s.revoke(t, parent.TokenID) }, true},
		{"its editor deactivated (activating revives it)", false, func(t *testing.T, e epoch.Editor, _, _ epoch.APIToken) {
			must[epoch.Editor](t)(s.a.SetActive(ctx, e.ID, false))
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := s.editor(t)
			parent := token(e, "parent")
			parent.Expires = time.Now().Add(time.Hour)
			laptop := token(e, "laptop")
			laptop.Parents = []string{parent.TokenID}
			laptop.Expires = time.Now().Add(time.Hour)
			if tc.expired {
				laptop.Expires = time.Now().Add(-time.Hour)
			}
			register(t, s.a, parent, laptop)
			tc.kill(t, e, laptop, parent)
			now := must[epoch.Editor](t)(s.a.Editor(ctx, e.ID))
			again := token(now, "laptop")
			if now.Locked() {
				again.Created = time.Now()
			}
			err := s.b.RegisterToken(ctx, again)
			switch {
			case tc.free && err != nil:
				t.Fatalf("the name is still taken: %v", err)
			case !tc.free && !errors.Is(err, epoch.ErrNameTaken):
				t.Fatalf("registering the name again = %v, want ErrNameTaken", err)
			}
		})
	}
	t.Run("names are per editor", func(t *testing.T) {
		e, f := s.editor(t), s.editor(t)
		register(t, s.a, token(e, "laptop"), token(f, "laptop"))
	})
}

// revoke revokes a token, failing t on an error.
func (s *suite) revoke(t *testing.T, id string) epoch.Editor {
	t.Helper()
	e, _, err := s.a.RevokeToken(t.Context(), id)
	if err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	return e
}

// testTokenLimits: an editor may have so many live tokens, and its state
// list so many revoked ones; revoking is never refused; a touch clears
// both counts. With Opener.OpenLimited the limits are 3 and 4, otherwise
// the defaults.
func testTokenLimits(t *testing.T, s *suite) {
	ctx := t.Context()
	maxLive, maxRevoked := epoch.DefaultMaxLiveTokens, epoch.DefaultMaxRevokedTokens
	h := s.a
	if s.o.OpenLimited != nil {
		maxLive, maxRevoked = 3, 4
		st, err := s.o.OpenLimited(ctx, s.addr, maxLive, maxRevoked)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		h = st
	}
	t.Logf("limits: %d live, %d revoked", maxLive, maxRevoked)
	e := s.editor(t)
	n := 0
	var live []string
	next := func() epoch.APIToken { n++; r := token(e, fmt.Sprint("t", n)); return r }
	for range maxLive {
		r := next()
		register(t, h, r)
		live = append(live, r.TokenID)
	}
	if err := h.RegisterToken(ctx, next()); !errors.Is(err, epoch.ErrTooManyTokens) {
		t.Fatalf("one live token too many: %v", err)
	}
	// Revoking frees a live slot, until the revoked list is full.
	for i := 1; i <= maxRevoked; i++ {
		if _, _, err := h.RevokeToken(ctx, live[0]); err != nil {
			t.Fatal(err)
		}
		live = live[1:]
		r := next()
		err := h.RegisterToken(ctx, r)
		switch {
		case i < maxRevoked && err != nil:
			t.Fatalf("after revoking %d: %v", i, err)
		case i == maxRevoked && !errors.Is(err, epoch.ErrTooManyTokens):
			t.Fatalf("with %d revoked tokens listed: %v, want ErrTooManyTokens", i, err)
		case err == nil:
			live = append(live, r.TokenID)
		}
	}
	// Revoking is never refused, even beyond the list's limit.
	ed, _, err := h.RevokeToken(ctx, live[0])
	if err != nil {
		t.Fatalf("revoking beyond the limit: %v", err)
	}
	if got := (len(ed.Revoked) + 1) / 37; got != maxRevoked+1 {
		t.Fatalf("the state lists %d revoked tokens, want %d", got, maxRevoked+1)
	}
	// A touch clears the list and the live count.
	touched := must[epoch.Editor](t)(h.Touch(ctx, e.ID))
	if touched.Revoked != "" {
		t.Fatalf("after a touch the state still lists %q", touched.Revoked)
	}
	for range maxLive {
		register(t, h, token(touched, fmt.Sprint("after", n)))
		n++
	}
}

// testRevokeToken: revoking marks the row, bumps the editor's version and
// lists the token in its state, in one change; twice is refused.
func testRevokeToken(t *testing.T, s *suite) {
	ctx := t.Context()
	e, other := s.editor(t), s.editor(t)
	a, b := token(e, "a"), token(e, "b")
	register(t, s.a, a, b, token(other, "a"))
	var ed epoch.Editor
	var row epoch.APIToken
	before := time.Now()
	s.oneChange(t, e.ID, func() (err error) { ed, row, err = s.b.RevokeToken(ctx, a.TokenID); return err })
	after := time.Now()
	if ed.ID != e.ID || ed.Version != e.Version+1 || ed.Revoked != a.TokenID || !ed.AuthEpoch.Equal(e.AuthEpoch) {
		t.Fatalf("RevokeToken returned editor %+v", ed)
	}
	if row.TokenID != a.TokenID || !near(row.Revoked, before, after) {
		t.Fatalf("RevokeToken returned row %+v", row)
	}
	if got := must[epoch.APIToken](t)(s.a.Token(ctx, a.TokenID)); !got.Revoked.Equal(row.Revoked) || got.Live(time.Now()) {
		t.Fatalf("row read back %+v, revoked %v", got, row.Revoked)
	}
	st := must[epoch.State](t)(s.a.State(ctx, e.ID))
	if err := st.Admit(a.Created, a.TokenID); !errors.Is(err, epoch.ErrTokenRevoked) {
		t.Fatalf("Admit(revoked token) = %v", err)
	}
	if err := st.Admit(b.Created, b.TokenID); err != nil {
		t.Fatalf("Admit(other token) = %v", err)
	}
	if o := must[epoch.Editor](t)(s.a.Editor(ctx, other.ID)); o.Version != other.Version || o.Revoked != "" {
		t.Fatalf("revoking e's token changed another editor: %+v", o)
	}
	tests := []struct {
		name string
		id   string
		want error
	}{
		{"again", a.TokenID, epoch.ErrAlreadyRevoked},
		{"unknown", tokenID(), epoch.ErrTokenNotFound},
		{"not a token id", "nope", epoch.ErrTokenNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.noChange(t, func() error { _, _, err := s.a.RevokeToken(ctx, tc.id); return err })
			wantErr(t, err, tc.want)
		})
	}
}

// testRevokedList: the state lists the tokens revoked one by one that the
// epoch does not already cover, sorted; expired ones and ones created
// before the epoch are left out; a touch empties it.
func testRevokedList(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	ids := sortedIDs(3)
	var rows []epoch.APIToken
	for i, id := range ids {
		r := token(e, fmt.Sprint("t", i))
		r.TokenID = id
		rows = append(rows, r)
	}
	expired := token(e, "expired")
	expired.Expires = time.Now().Add(-time.Hour)
	early := token(e, "early")
	early.Created = e.AuthEpoch.Add(-time.Second)
	child := token(e, "child")
	child.Parents = []string{ids[2]}
	register(t, s.a, append(rows, expired, early, child)...)
	tests := []struct {
		name   string
		revoke string
		want   string
	}{
		{"the last id first", ids[2], ids[2]},
		{"then the first", ids[0], ids[0] + "," + ids[2]},
		{"an expired token: not listed", expired.TokenID, ids[0] + "," + ids[2]},
		{"a token created before the epoch: not listed", early.TokenID, ids[0] + "," + ids[2]},
	}
	prev := e.Version
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ed := s.revoke(t, tc.revoke)
			if ed.Revoked != tc.want || ed.Version != prev+1 {
				t.Fatalf("revoked list %q at version %d, want %q at %d", ed.Revoked, ed.Version, tc.want, prev+1)
			}
			prev = ed.Version
			st := must[epoch.State](t)(s.b.State(ctx, e.ID))
			if st.Revoked != tc.want || epoch.CheckRevoked(st.Revoked) != nil {
				t.Fatalf("state lists %q, want %q", st.Revoked, tc.want)
			}
		})
	}
	st := must[epoch.Editor](t)(s.a.Editor(ctx, e.ID))
	if err := st.State().Admit(rows[1].Created, rows[1].TokenID); err != nil {
		t.Fatalf("a token between two revoked ids: %v", err)
	}
	childRow := must[epoch.APIToken](t)(s.a.Token(ctx, child.TokenID))
	if touched, parent := childRow.RevokedBy(st); touched || !parent {
		t.Fatalf("a token whose parent is revoked: RevokedBy = %v, %v", touched, parent)
	}
	touched := must[epoch.Editor](t)(s.a.Touch(ctx, e.ID))
	if touched.Revoked != "" {
		t.Fatalf("after a touch the state lists %q", touched.Revoked)
	}
}

// testExpiringTokens: only tokens that still verify and expire within the
// window are listed, soonest first.
func testExpiringTokens(t *testing.T, s *suite) {
	ctx := t.Context()
	now := time.Now()
	expiring := func(e epoch.Editor, name string, in time.Duration) epoch.APIToken {
		r := token(e, name)
		r.Expires = now.Add(in)
		return r
	}
	e := s.editor(t)
	day, hours := expiring(e, "day", 24*time.Hour), expiring(e, "hours", 2*time.Hour)
	revoked := expiring(e, "revoked", 24*time.Hour)
	register(t, s.a, day, expiring(e, "month", 30*24*time.Hour), token(e, "never"), expiring(e, "past", -time.Hour), revoked, hours)
	s.revoke(t, revoked.TokenID)
	ours := map[string]bool{e.ID: true}
	for _, kill := range []func(id string) error{
		func(id string) error { _, err := s.a.Touch(ctx, id); return err },
		func(id string) error { _, err := s.a.Lock(ctx, id); return err },
		func(id string) error { _, err := s.a.SetActive(ctx, id, false); return err },
	} {
		f := s.editor(t)
		register(t, s.a, expiring(f, "day", 24*time.Hour))
		if err := kill(f.ID); err != nil {
			t.Fatal(err)
		}
		ours[f.ID] = true
	}
	var got []string
	var list []epoch.APIToken
	wantErr(t, s.noChange(t, func() (err error) { list, err = s.b.ExpiringTokens(ctx, 7*24*time.Hour); return err }), nil)
	for i, r := range list {
		if i > 0 && r.Expires.Before(list[i-1].Expires) {
			t.Fatalf("not soonest first: %v after %v", r.Expires, list[i-1].Expires)
		}
		if ours[r.EditorID] {
			got = append(got, r.TokenID)
		}
	}
	if want := []string{hours.TokenID, day.TokenID}; !slices.Equal(got, want) {
		t.Fatalf("expiring within 7 days: %v, want %v (hours, day)", got, want)
	}
}

// testRecordUses: last uses move forward only; unknown ids are ignored;
// the client address is cut to MaxUseFrom; no state changes.
func testRecordUses(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	r := token(e, "laptop")
	register(t, s.a, r)
	t0 := time.Now().Add(-time.Hour)
	long := strings.Repeat("f", epoch.MaxUseFrom+50)
	tests := []struct {
		name string
		uses []epoch.Use
		at   time.Time
		from string
	}{
		{"nothing", nil, time.Time{}, ""},
		{"first use, and an unknown id", []epoch.Use{{TokenID: r.TokenID, At: t0, From: "192.0.2.1"}, {TokenID: tokenID(), At: t0, From: "x"}, {TokenID: "not-an-api-token", At: t0}}, t0, "192.0.2.1"},
		{"an older use is ignored", []epoch.Use{{TokenID: r.TokenID, At: t0.Add(-time.Minute), From: "198.51.100.7"}}, t0, "192.0.2.1"},
		{"the newest of a batch wins", []epoch.Use{{TokenID: r.TokenID, At: t0.Add(2 * time.Minute), From: "2001:db8::2"}, {TokenID: r.TokenID, At: t0.Add(time.Minute), From: "2001:db8::1"}}, t0.Add(2 * time.Minute), "2001:db8::2"},
		{"a long address is cut", []epoch.Use{{TokenID: r.TokenID, At: t0.Add(3*time.Minute + 1234*time.Nanosecond), From: long}}, t0.Add(3*time.Minute + 1234*time.Nanosecond), long[:epoch.MaxUseFrom]},
		// What a client sends (a forwarded address) is stored as text
		// every store holds, and a batch is never lost to one odd use.
		{"an address cut inside a character", []epoch.Use{{TokenID: r.TokenID, At: t0.Add(4 * time.Minute), From: long[:epoch.MaxUseFrom-1] + "é"}}, t0.Add(4 * time.Minute), long[:epoch.MaxUseFrom-1]},
		{"an address not UTF-8, with a NUL", []epoch.Use{{TokenID: r.TokenID, At: t0.Add(5 * time.Minute), From: "192.0.2.\xff9\x00"}}, t0.Add(5 * time.Minute), "192.0.2.9"},
		{"a token id not UTF-8 in the batch", []epoch.Use{{TokenID: "\xff\x00", At: t0.Add(7 * time.Minute)}, {TokenID: r.TokenID, At: t0.Add(6 * time.Minute), From: "192.0.2.6"}}, t0.Add(6 * time.Minute), "192.0.2.6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.noChange(t, func() error { return []epoch.Store{s.a, s.b}[len(tc.uses)%2].RecordUses(ctx, tc.uses) }), nil)
			got := must[epoch.APIToken](t)(s.a.Token(ctx, r.TokenID))
			if !got.LastUsed.Equal(µs(tc.at)) || got.LastUsedFrom != tc.from {
				t.Fatalf("last use %v from %q, want %v from %q", got.LastUsed, got.LastUsedFrom, µs(tc.at), tc.from)
			}
			if ed := must[epoch.Editor](t)(s.a.Editor(ctx, e.ID)); ed.Version != e.Version {
				t.Fatalf("a use changed the editor's version to %d", ed.Version)
			}
		})
	}
}
