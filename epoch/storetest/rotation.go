package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// successor is a row replacing old: same editor and name, an id of its own.
func successor(old epoch.APIToken) epoch.APIToken {
	n := old
	n.TokenID, n.Created = tokenID(), old.Created.Add(time.Microsecond)
	n.Revoked, n.LastUsed, n.LastUsedFrom, n.RotatedTo, n.RotatedFrom, n.GraceUntil = time.Time{}, time.Time{}, "", "", "", time.Time{}
	return n
}

// testRotateToken: a rotation registers the successor and links both rows,
// appending nothing to the change log; refused rotations (unknown,
// revoked, expired or already rotated tokens; successors of another editor
// or name) leave nothing behind; the successor holds the name, and may be
// rotated in turn.
func testRotateToken(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	other := s.editor(t)
	grace := time.Now().Add(24 * time.Hour)
	live := token(e, "laptop")
	live.Caveats = []string{"method = GET,POST", "path_prefix = /api/a,b"} // the successor's, as read, too
	revoked := token(e, "revoked")
	expired := token(e, "expired")
	expired.Expires = time.Now().Add(-time.Hour)
	register(t, s.a, live, revoked, expired)
	s.revoke(t, revoked.TokenID)

	var rotated epoch.APIToken
	succ := successor(live)
	t.Run("rotate", func(t *testing.T) {
		err := s.noChange(t, func() error {
			var err error
			rotated, err = s.a.RotateToken(ctx, live.TokenID, succ, grace)
			return err
		})
		wantErr(t, err, nil)
		if rotated.RotatedTo != succ.TokenID || !rotated.GraceUntil.Equal(µs(grace)) || !rotated.Revoked.IsZero() {
			t.Fatalf("old row returned %+v", rotated)
		}
		if got := must[epoch.APIToken](t)(s.b.Token(ctx, live.TokenID)); !sameToken(got, stored(rotated)) {
			t.Fatalf("old row reads %+v, RotateToken returned %+v", got, rotated)
		}
		want := stored(succ)
		want.RotatedFrom = live.TokenID
		if got := must[epoch.APIToken](t)(s.b.Token(ctx, succ.TokenID)); !sameToken(got, want) {
			t.Fatalf("successor reads %+v, want %+v", got, want)
		}
		// The successor holds the name; the old token no longer does.
		wantErr(t, s.a.RegisterToken(ctx, token(e, "laptop")), epoch.ErrNameTaken)
	})

	with := func(old epoch.APIToken, f func(*epoch.APIToken)) epoch.APIToken {
		n := successor(old)
		if f != nil {
			f(&n)
		}
		return n
	}
	tests := []struct {
		name string
		old  string
		succ epoch.APIToken
		want error
	}{
		{"unknown token", tokenID(), with(live, nil), epoch.ErrTokenNotFound},
		{"revoked token", revoked.TokenID, with(revoked, nil), epoch.ErrAlreadyRevoked},
		{"expired token", expired.TokenID, with(expired, nil), epoch.ErrNotRotatable},
		{"already rotated", live.TokenID, with(live, nil), epoch.ErrAlreadyRotated},
		{"successor of another editor", succ.TokenID, with(succ, func(n *epoch.APIToken) { n.EditorID = other.ID }), epoch.ErrInvalidToken},
		{"successor of another name", succ.TokenID, with(succ, func(n *epoch.APIToken) { n.Name = "other" }), epoch.ErrInvalidToken},
		{"successor with its predecessor's id", succ.TokenID, with(succ, func(n *epoch.APIToken) { n.TokenID = succ.TokenID }), epoch.ErrInvalidToken},
		{"successor with a taken id", succ.TokenID, with(succ, func(n *epoch.APIToken) { n.TokenID = revoked.TokenID }), epoch.ErrTokenExists},
		{"successor with a bad id", succ.TokenID, with(succ, func(n *epoch.APIToken) { n.TokenID = "nope" }), epoch.ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before epoch.APIToken
			known := tc.old != "" && !errors.Is(tc.want, epoch.ErrTokenNotFound)
			if known {
				before = must[epoch.APIToken](t)(s.a.Token(ctx, tc.old))
			}
			err := s.noChange(t, func() error {
				_, err := s.b.RotateToken(ctx, tc.old, tc.succ, grace)
				return err
			})
			wantErr(t, err, tc.want)
			if known {
				if got := must[epoch.APIToken](t)(s.a.Token(ctx, tc.old)); !sameToken(got, before) {
					t.Fatalf("a refused rotation changed the row to %+v", got)
				}
			}
			if tc.succ.TokenID != revoked.TokenID && tc.succ.TokenID != succ.TokenID {
				if _, err := s.a.Token(ctx, tc.succ.TokenID); !errors.Is(err, epoch.ErrTokenNotFound) {
					t.Fatalf("the refused successor was registered: %v", err)
				}
			}
		})
	}
	t.Run("rotate the successor", func(t *testing.T) {
		third := successor(succ)
		old := must[epoch.APIToken](t)(s.a.RotateToken(ctx, succ.TokenID, third, grace))
		if old.RotatedFrom != live.TokenID || old.RotatedTo != third.TokenID {
			t.Fatalf("middle row %+v", old)
		}
		rows := must[[]epoch.APIToken](t)(s.a.Tokens(ctx, e.ID))
		var chain []string
		for _, r := range rows {
			if r.Name == "laptop" {
				chain = append(chain, r.RotatedFrom+">"+r.TokenID+">"+r.RotatedTo)
			}
		}
		want := []string{">" + live.TokenID + ">" + succ.TokenID, live.TokenID + ">" + succ.TokenID + ">" + third.TokenID, succ.TokenID + ">" + third.TokenID + ">"}
		if !slices.Equal(chain, want) {
			t.Fatalf("chain %q, want %q", chain, want)
		}
	})
}

// testRetireRotated: rotated tokens are revoked once their successor is
// used or revoked, or their grace ends, each editor's version bumped once
// with one change-log row; pending rotations stay; a chain retires in one
// call; the editor's state lists the retired ids.
func testRetireRotated(t *testing.T, s *suite) {
	ctx := t.Context()
	// Leftovers of earlier groups are retired first, so that each case
	// below sees only its own.
	if _, _, err := s.a.RetireRotated(ctx); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	rotate := func(t *testing.T, old epoch.APIToken, grace time.Time) epoch.APIToken {
		t.Helper()
		n := successor(old)
		if _, err := s.a.RotateToken(ctx, old.TokenID, n, grace); err != nil {
			t.Fatalf("RotateToken: %v", err)
		}
		return n
	}
	retire := func(t *testing.T, e epoch.Editor, want ...string) {
		t.Helper()
		var eds []epoch.Editor
		var rows []epoch.APIToken
		c := s.oneChange(t, e.ID, func() error {
			var err error
			eds, rows, err = s.b.RetireRotated(ctx)
			return err
		})
		var got []string
		for _, r := range rows {
			if r.Revoked.IsZero() {
				t.Fatalf("retired row %+v has no revocation time", r)
			}
			got = append(got, r.TokenID)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) || len(eds) != 1 || eds[0].ID != e.ID || eds[0].Version != c.Version {
			t.Fatalf("retired %q for %+v, want %q for %s", got, eds, want, e.ID)
		}
		st := must[epoch.State](t)(s.a.State(ctx, e.ID))
		for _, id := range want {
			if !st.TokenRevoked(id) || must[epoch.APIToken](t)(s.a.Token(ctx, id)).Revoked.IsZero() {
				t.Fatalf("%s retired but not revoked", id)
			}
			// The retirement is in the audit trail, recorded in its
			// transaction.
			evs, _, err := s.a.AuditEvents(ctx, epoch.AuditFilter{TokenID: id, Action: epoch.AuditTokenAutoRevoked})
			if err != nil || len(evs) != 1 || evs[0].Actor != epoch.ActorDaemon || evs[0].EditorID != e.ID || !strings.HasPrefix(evs[0].Detail, "rotated: ") {
				t.Fatalf("audit events of retired %s: %+v, %v", id, evs, err)
			}
		}
	}
	t.Run("nothing to retire", func(t *testing.T) {
		e := s.editor(t)
		old := token(e, "pending")
		register(t, s.a, old)
		n := rotate(t, old, later)
		err := s.noChange(t, func() error {
			eds, rows, err := s.a.RetireRotated(ctx)
			if len(eds)+len(rows) != 0 {
				t.Fatalf("retired %+v", rows)
			}
			return err
		})
		wantErr(t, err, nil)
		if got := must[epoch.APIToken](t)(s.a.Token(ctx, old.TokenID)); !got.Revoked.IsZero() || got.RotatedTo != n.TokenID {
			t.Fatalf("pending rotation %+v", got)
		}
		// An older use of the old token changes nothing either.
		wantErr(t, s.a.RecordUses(ctx, []epoch.Use{{TokenID: old.TokenID, At: time.Now()}}), nil)
		wantErr(t, s.noChange(t, func() error { _, _, err := s.a.RetireRotated(ctx); return err }), nil)
	})
	t.Run("successor used", func(t *testing.T) {
		e := s.editor(t)
		old := token(e, "used")
		register(t, s.a, old)
		n := rotate(t, old, later)
		wantErr(t, s.a.RecordUses(ctx, []epoch.Use{{TokenID: n.TokenID, At: time.Now(), From: "192.0.2.1"}}), nil)
		retire(t, e, old.TokenID)
		if got := must[epoch.APIToken](t)(s.a.Token(ctx, n.TokenID)); !got.Revoked.IsZero() {
			t.Fatal("the successor was revoked")
		}
	})
	t.Run("grace ended", func(t *testing.T) {
		e := s.editor(t)
		old := token(e, "graced")
		register(t, s.a, old)
		rotate(t, old, time.Now().Add(-time.Second))
		retire(t, e, old.TokenID)
	})
	t.Run("successor revoked", func(t *testing.T) {
		e := s.editor(t)
		old := token(e, "undone")
		register(t, s.a, old)
		n := rotate(t, old, later)
		s.revoke(t, n.TokenID)
		retire(t, e, old.TokenID)
	})
	t.Run("a chain retires at once", func(t *testing.T) {
		e := s.editor(t)
		a := token(e, "chain")
		register(t, s.a, a)
		b := rotate(t, a, later)
		c := rotate(t, b, later)
		wantErr(t, s.a.RecordUses(ctx, []epoch.Use{{TokenID: c.TokenID, At: time.Now()}}), nil)
		retire(t, e, a.TokenID, b.TokenID)
	})
	t.Run("a retired token is not rotated again", func(t *testing.T) {
		e := s.editor(t)
		old := token(e, "again")
		register(t, s.a, old)
		rotate(t, old, time.Now().Add(-time.Second))
		retire(t, e, old.TokenID)
		_, err := s.a.RotateToken(ctx, old.TokenID, successor(old), later)
		wantErr(t, err, epoch.ErrAlreadyRevoked)
	})
}

// testConcurrentRotations: of many concurrent rotations of one token
// through two handles, exactly one succeeds; the others find it rotated.
func testConcurrentRotations(t *testing.T, s *suite) {
	const n = 16
	e := s.editor(t)
	old := token(e, "laptop")
	register(t, s.a, old)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = []epoch.Store{s.a, s.b}[i%2].RotateToken(t.Context(), old.TokenID, successor(old), time.Now().Add(time.Hour))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, epoch.ErrAlreadyRotated):
			t.Fatalf("RotateToken: %v, want ErrAlreadyRotated or success", err)
		}
	}
	if rows := must[[]epoch.APIToken](t)(s.a.Tokens(t.Context(), e.ID)); ok != 1 || len(rows) != 2 {
		t.Fatalf("%d of %d rotations succeeded; %d rows", ok, n, len(rows))
	}
}

// testUseAttenuation: a use records the attenuation it carried, bounded
// and printable; a later use without one clears it.
func testUseAttenuation(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	r := token(e, "attenuated")
	register(t, s.a, r)
	t0 := time.Now().Add(-time.Hour)
	long := ""
	for len(long) < epoch.MaxAttenuation+20 {
		long += "GET /api/é "
	}
	tests := []struct {
		name          string
		use           epoch.Use
		summary, fpID string
	}{
		{"attenuated", epoch.Use{At: t0, Attenuation: "GET /api/x", AttenuationID: "0123456789ab"}, "GET /api/x", "0123456789ab"},
		{"as minted", epoch.Use{At: t0.Add(time.Minute)}, "", ""},
		{"a long summary is cut", epoch.Use{At: t0.Add(2 * time.Minute), Attenuation: long, AttenuationID: "0123456789abcdef0123"},
			epoch.StoredAttenuation(long, epoch.MaxAttenuation), "0123456789abcdef0123"[:epoch.MaxAttenuationID-3] + "…"},
		{"controls are blanked", epoch.Use{At: t0.Add(3 * time.Minute), Attenuation: "GET\x1b[31m /\xff\u202e", AttenuationID: "ab"}, "GET [31m / ", "ab"},
		{"an older use changes nothing", epoch.Use{At: t0, Attenuation: "POST /"}, "GET [31m / ", "ab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.use.TokenID = r.TokenID
			wantErr(t, s.noChange(t, func() error { return s.b.RecordUses(ctx, []epoch.Use{tc.use}) }), nil)
			got := must[epoch.APIToken](t)(s.a.Token(ctx, r.TokenID))
			if got.LastAttenuation != tc.summary || got.LastAttenuationID != tc.fpID {
				t.Fatalf("last attenuation %q (%q), want %q (%q)", got.LastAttenuation, got.LastAttenuationID, tc.summary, tc.fpID)
			}
			if len(got.LastAttenuation) > epoch.MaxAttenuation {
				t.Fatalf("stored %d bytes", len(got.LastAttenuation))
			}
		})
	}
}
