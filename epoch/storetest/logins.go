package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// issuer is the provider the login tests use besides "dev".
const issuer = "https://id.example.org"

// invalidLinks are identities CheckLink refuses.
var invalidLinks = []struct{ name, provider, subject string }{
	{"empty provider", "", "x"},
	{"empty subject", "dev", ""},
	{"space in subject", "dev", "a b"},
	{"non-ASCII subject", "dev", "ä"},
	{"256-byte subject", "dev", strings.Repeat("x", 256)},
	{"newline in provider", "dev\n", "x"},
	{"256-byte provider", strings.Repeat("p", 256), "x"},
}

// testLogin: a first login creates and links an editor (username from the
// provider's suggestion, suffixed when taken); later logins find it.
func testLogin(t *testing.T, s *suite) {
	ctx := t.Context()
	base := s.username("Alice")
	sub := s.username("sub")
	var first epoch.Editor
	t.Run("first login creates", func(t *testing.T) {
		var created bool
		before := time.Now()
		s.oneChangeOf(t, func() string { return first.ID }, func() (err error) {
			first, created, err = s.a.Login(ctx, issuer, sub, base+"@example.org")
			return err
		})
		if !created || first.Username != base || first.Role != epoch.RoleEditor || !first.Active || first.Version != 1 || first.Locked() || !near(first.Created, before, time.Now()) {
			t.Fatalf("first login: %+v created=%v", first, created)
		}
		if got := must[epoch.Editor](t)(s.b.LinkedEditor(ctx, issuer, sub)); !sameEditor(got, first) {
			t.Fatalf("LinkedEditor = %+v", got)
		}
		links := must[[]epoch.Link](t)(s.b.Links(ctx, first.ID))
		if len(links) != 1 || links[0] != (epoch.Link{Provider: issuer, Subject: sub, EditorID: first.ID, Created: links[0].Created}) || !near(links[0].Created, before, time.Now()) {
			t.Fatalf("Links = %+v", links)
		}
	})
	t.Run("second login finds", func(t *testing.T) {
		var again epoch.Editor
		var created bool
		wantErr(t, s.noChange(t, func() (err error) { again, created, err = s.b.Login(ctx, issuer, sub, "renamed"); return err }), nil)
		if created || !sameEditor(again, first) {
			t.Fatalf("second login: %+v created=%v", again, created)
		}
	})
	t.Run("a locked editor is found, still locked", func(t *testing.T) {
		locked := must[epoch.Editor](t)(s.a.Lock(ctx, first.ID))
		again, created, err := s.a.Login(ctx, issuer, sub, base)
		if err != nil || created || again.ID != first.ID || !again.Locked() || again.Version != locked.Version {
			t.Fatalf("login of a locked editor: %+v created=%v %v", again, created, err)
		}
	})
	suffixes := []struct {
		name, preferred, want string
	}{
		{"taken username gets -2", base, base + "-2"},
		{"then -3", strings.ToUpper(base), strings.ToUpper(base) + "-3"},
		{"a 64-character name is cut for its suffix", pad(base+"L", 64), pad(base+"L", 64)},
		{"…to 62 characters and -2", pad(base+"L", 64), pad(base+"L", 64)[:62] + "-2"},
		{"an e-mail address gives its local part", base + ".x@example.org", base + ".x"},
	}
	for i, tc := range suffixes {
		t.Run(tc.name, func(t *testing.T) {
			e, created, err := s.a.Login(ctx, "dev", s.username("sub")+string(rune('a'+i)), tc.preferred)
			if err != nil || !created || e.Username != tc.want {
				t.Fatalf("login: %+v created=%v %v, want a new editor named %s", e, created, err, tc.want)
			}
		})
	}
	t.Run("nothing usable in the name", func(t *testing.T) {
		e, created, err := s.a.Login(ctx, "dev", s.username("sub"), "@@@")
		if err != nil || !created || !(e.Username == "user" || strings.HasPrefix(e.Username, "user-")) {
			t.Fatalf("login: %+v created=%v %v, want user or user-N", e, created, err)
		}
	})
	t.Run("same subject at another provider is another editor", func(t *testing.T) {
		e, created, err := s.a.Login(ctx, "dev", sub, base)
		if err != nil || !created || e.ID == first.ID {
			t.Fatalf("%+v created=%v %v", e, created, err)
		}
	})
	for _, tc := range invalidLinks {
		t.Run("invalid: "+tc.name, func(t *testing.T) {
			err := s.noChange(t, func() error { _, _, err := s.a.Login(ctx, tc.provider, tc.subject, "x"); return err })
			wantErr(t, err, epoch.ErrInvalidLink)
		})
	}
}

// testLinks: Link ties an existing editor to one identity per provider,
// one editor per identity; it changes no state.
func testLinks(t *testing.T, s *suite) {
	ctx := t.Context()
	alice, bob := s.editor(t), s.editor(t)
	aliceSub, bobSub := s.username("alice-sub"), s.username("bob-sub")
	var l epoch.Link
	before := time.Now()
	wantErr(t, s.noChange(t, func() (err error) { l, err = s.a.Link(ctx, alice.ID, issuer, aliceSub); return err }), nil)
	if l.Provider != issuer || l.Subject != aliceSub || l.EditorID != alice.ID || !near(l.Created, before, time.Now()) {
		t.Fatalf("Link = %+v", l)
	}
	must[epoch.Link](t)(s.b.Link(ctx, alice.ID, "dev", aliceSub))
	for _, tc := range []struct {
		name                      string
		editor, provider, subject string
		want                      error
	}{
		{"a second identity at one provider", alice.ID, issuer, s.username("other"), epoch.ErrLinked},
		{"a subject linked to another editor", bob.ID, issuer, aliceSub, epoch.ErrLinked},
		{"the same link again", alice.ID, issuer, aliceSub, epoch.ErrLinked},
		{"unknown editor", "nobody-at-all", issuer, bobSub, epoch.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.noChange(t, func() error { _, err := s.b.Link(ctx, tc.editor, tc.provider, tc.subject); return err }), tc.want)
		})
	}
	for _, tc := range invalidLinks {
		t.Run("invalid: "+tc.name, func(t *testing.T) {
			wantErr(t, s.noChange(t, func() error { _, err := s.a.Link(ctx, bob.ID, tc.provider, tc.subject); return err }), epoch.ErrInvalidLink)
		})
	}
	must[epoch.Link](t)(s.a.Link(ctx, bob.ID, issuer, bobSub))
	if e := must[epoch.Editor](t)(s.b.LinkedEditor(ctx, issuer, bobSub)); e.ID != bob.ID {
		t.Fatalf("LinkedEditor = %+v", e)
	}
	if _, err := s.b.LinkedEditor(ctx, issuer, s.username("never")); !errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("LinkedEditor(unknown) = %v", err)
	}
	links := must[[]epoch.Link](t)(s.b.Links(ctx, alice.ID))
	slices.SortFunc(links, func(a, b epoch.Link) int { return strings.Compare(a.Provider, b.Provider) })
	if len(links) != 2 || links[0].Provider != "dev" || links[1].Provider != issuer || links[1].Subject != aliceSub || !links[1].Created.Equal(l.Created) {
		t.Fatalf("Links = %+v", links)
	}
	if e, created, err := s.a.Login(ctx, "dev", aliceSub, "x"); err != nil || created || e.ID != alice.ID {
		t.Fatalf("login through a link: %+v created=%v %v", e, created, err)
	}
	if e := must[epoch.Editor](t)(s.a.Editor(ctx, alice.ID)); e.Version != alice.Version {
		t.Fatalf("linking changed the version to %d", e.Version)
	}
}

// testUnlink: Unlink removes one identity; the next login through it makes
// a new editor. It changes no state.
func testUnlink(t *testing.T, s *suite) {
	ctx := t.Context()
	sub := s.username("sub")
	alice, _, err := s.a.Login(ctx, issuer, sub, s.username("alice"))
	if err != nil {
		t.Fatal(err)
	}
	must[epoch.Link](t)(s.a.Link(ctx, alice.ID, "dev", sub))
	for _, tc := range []struct {
		name, editor, provider string
		want                   error
		left                   int
	}{
		{"unknown provider", alice.ID, "https://other.example.org", epoch.ErrNotFound, 2},
		{"unknown editor", "nobody-at-all", issuer, epoch.ErrNotFound, 2},
		{"the issuer's identity", alice.ID, issuer, nil, 1},
		{"again", alice.ID, issuer, epoch.ErrNotFound, 1},
		{"the dev identity", alice.ID, "dev", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l epoch.Link
			err := s.noChange(t, func() (err error) { l, err = s.b.Unlink(ctx, tc.editor, tc.provider); return err })
			wantErr(t, err, tc.want)
			if err == nil && (l.EditorID != alice.ID || l.Provider != tc.provider || l.Subject != sub || l.Created.IsZero()) {
				t.Fatalf("removed link %+v", l)
			}
			if links := must[[]epoch.Link](t)(s.a.Links(ctx, alice.ID)); len(links) != tc.left {
				t.Fatalf("links left: %+v, want %d", links, tc.left)
			}
		})
	}
	if _, err := s.a.LinkedEditor(ctx, issuer, sub); !errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("LinkedEditor after unlink: %v", err)
	}
	e, created, err := s.a.Login(ctx, issuer, sub, "alice")
	if err != nil || !created || e.ID == alice.ID {
		t.Fatalf("login after unlink: %+v created=%v %v", e, created, err)
	}
	if got := must[epoch.Editor](t)(s.a.Editor(ctx, alice.ID)); got.Version != alice.Version {
		t.Fatalf("unlinking changed the version to %d", got.Version)
	}
}
