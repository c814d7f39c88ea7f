package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// testChangeLog: each operation that changes what State returns appends
// exactly one row, naming the editor ("" for every editor) at its new
// version; every other operation, and every refused one, appends none.
func testChangeLog(t *testing.T, s *suite) {
	ctx := t.Context()
	alice := s.editor(t)
	tok := token(alice, "laptop")
	subject := s.username("sub")
	var newID string
	self := func() string { return alice.ID }
	created := func() string { return newID }
	every := func() string { return "" }
	tests := []struct {
		name   string
		do     func() error
		editor func() string // nil: nothing logged
	}{
		{"create", func() error {
			e, err := s.a.Create(ctx, epoch.NewEditor{Username: s.username("bob")})
			newID = e.ID
			return err
		}, created},
		{"login creating an editor", func() error {
			e, c, err := s.a.Login(ctx, "dev", subject, subject)
			if err == nil && !c {
				return errors.New("not created")
			}
			newID = e.ID
			return err
		}, created},
		{"login again", func() error { _, _, err := s.a.Login(ctx, "dev", subject, subject); return err }, nil},
		{"link", func() error { _, err := s.a.Link(ctx, alice.ID, "dev", s.username("alice-sub")); return err }, nil},
		{"unlink", func() error { _, err := s.a.Unlink(ctx, alice.ID, "dev"); return err }, nil},
		{"register a token", func() error { return s.a.RegisterToken(ctx, tok) }, nil},
		{"record a use", func() error {
			return s.a.RecordUses(ctx, []epoch.Use{{TokenID: tok.TokenID, At: time.Now(), From: "192.0.2.1"}})
		}, nil},
		{"read everything", func() error {
			_, err1 := s.a.State(ctx, alice.ID)
			_, err2 := s.a.Editor(ctx, alice.ID)
			_, err3 := s.a.EditorByUsername(ctx, alice.Username)
			_, err4 := s.a.List(ctx)
			_, err5 := s.a.Tokens(ctx, "")
			_, err6 := s.a.Token(ctx, tok.TokenID)
			_, err7 := s.a.ExpiringTokens(ctx, time.Hour)
			_, err8 := s.a.Links(ctx, alice.ID)
			_, err9 := s.a.LinkedEditor(ctx, "dev", subject)
			_, err10 := s.a.SchemaVersion(ctx)
			return errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, s.a.Ping(ctx))
		}, nil},
		{"touch", func() error { _, err := s.a.Touch(ctx, alice.ID); return err }, self},
		{"lock", func() error { _, err := s.a.Lock(ctx, alice.ID); return err }, self},
		{"unlock", func() error { _, err := s.a.Unlock(ctx, alice.ID); return err }, self},
		{"deactivate", func() error { _, err := s.a.SetActive(ctx, alice.ID, false); return err }, self},
		{"activate", func() error { _, err := s.a.SetActive(ctx, alice.ID, true); return err }, self},
		{"register a token after the touches", func() error {
			a := must[epoch.Editor](t)(s.a.Editor(ctx, alice.ID))
			tok = token(a, "laptop")
			return s.a.RegisterToken(ctx, tok)
		}, nil},
		{"revoke a token", func() error { _, _, err := s.a.RevokeToken(ctx, tok.TokenID); return err }, self},
		{"touch everyone", func() error { _, err := s.a.TouchAll(ctx); return err }, every},
		{"refused: revoke a token again", func() error {
			if _, _, err := s.a.RevokeToken(ctx, tok.TokenID); !errors.Is(err, epoch.ErrAlreadyRevoked) {
				return errors.Join(errors.New("want ErrAlreadyRevoked"), err)
			}
			return nil
		}, nil},
		{"refused: a name taken", func() error {
			a := must[epoch.Editor](t)(s.a.Editor(ctx, alice.ID))
			register(t, s.a, token(a, "desk"))
			if err := s.a.RegisterToken(ctx, token(a, "desk")); !errors.Is(err, epoch.ErrNameTaken) {
				return errors.Join(errors.New("want ErrNameTaken"), err)
			}
			return nil
		}, nil},
		{"refused: a username taken", func() error {
			if _, err := s.a.Create(ctx, epoch.NewEditor{Username: alice.Username}); !errors.Is(err, epoch.ErrExists) {
				return errors.Join(errors.New("want ErrExists"), err)
			}
			return nil
		}, nil},
		{"refused: touch an unknown editor", func() error {
			if _, err := s.a.Touch(ctx, "nobody-at-all"); !errors.Is(err, epoch.ErrNotFound) {
				return errors.Join(errors.New("want ErrNotFound"), err)
			}
			return nil
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.editor == nil {
				wantErr(t, s.noChange(t, tc.do), nil)
				return
			}
			s.oneChangeOf(t, tc.editor, tc.do)
		})
	}
}

// testChangesPaging: Changes returns up to limit rows after a seq, oldest
// first, and pages through the log without gaps or repeats.
func testChangesPaging(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	h := must[epoch.Head](t)(s.a.Head(ctx))
	for range 5 {
		must[epoch.Editor](t)(s.a.Touch(ctx, e.ID))
	}
	all := must[[]epoch.Change](t)(s.b.Changes(ctx, h.Seq, 100))
	if len(all) != 5 {
		t.Fatalf("Changes(%d, 100) = %+v, want 5 rows", h.Seq, all)
	}
	for i, c := range all {
		if c.EditorID != e.ID || c.Version != e.Version+int64(i)+1 || c.Seq <= h.Seq || i > 0 && c.Seq <= all[i-1].Seq {
			t.Fatalf("row %d: %+v (after %d)", i, c, h.Seq)
		}
	}
	tests := []struct {
		name  string
		after int64
		limit int
		want  []epoch.Change
	}{
		{"first page", h.Seq, 2, all[:2]},
		{"second page", all[1].Seq, 2, all[2:4]},
		{"last page", all[3].Seq, 2, all[4:]},
		{"after the head", all[4].Seq, 10, nil},
		{"from the middle", all[2].Seq, 1, all[3:4]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := must[[]epoch.Change](t)(s.b.Changes(ctx, tc.after, tc.limit))
			if len(got) != len(tc.want) {
				t.Fatalf("Changes(%d, %d) = %+v, want %+v", tc.after, tc.limit, got, tc.want)
			}
			for i := range got {
				if got[i].Seq != tc.want[i].Seq || got[i].EditorID != tc.want[i].EditorID || got[i].Version != tc.want[i].Version || !got[i].At.Equal(tc.want[i].At) {
					t.Fatalf("Changes(%d, %d)[%d] = %+v, want %+v", tc.after, tc.limit, i, got[i], tc.want[i])
				}
			}
		})
	}
}

// testHead: the head names the newest change and the oldest one kept, and
// the store's id, the same through every handle.
func testHead(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	touched := must[epoch.Editor](t)(s.a.Touch(ctx, e.ID))
	ha := must[epoch.Head](t)(s.a.Head(ctx))
	hb := must[epoch.Head](t)(s.b.Head(ctx))
	if ha != hb || ha.StoreID == "" {
		t.Fatalf("heads %+v and %+v through two handles of one store", ha, hb)
	}
	if ha.Seq != touched.Seq || ha.Oldest < 1 || ha.Oldest > ha.Seq {
		t.Fatalf("head %+v after a touch at seq %d", ha, touched.Seq)
	}
	newest := must[[]epoch.Change](t)(s.a.Changes(ctx, ha.Seq-1, 10))
	if len(newest) != 1 || newest[0].Seq != ha.Seq || newest[0].EditorID != e.ID || newest[0].Version != touched.Version {
		t.Fatalf("the newest change %+v, head %+v", newest, ha)
	}
	oldest := must[[]epoch.Change](t)(s.a.Changes(ctx, ha.Oldest-1, 1))
	if len(oldest) != 1 || oldest[0].Seq != ha.Oldest {
		t.Fatalf("Changes(Oldest-1, 1) = %+v, head %+v", oldest, ha)
	}
	if st := must[epoch.State](t)(s.b.State(ctx, e.ID)); st.Seq != ha.Seq || st.Version != touched.Version {
		t.Fatalf("state %+v read at head %+v", st, ha)
	}
}
