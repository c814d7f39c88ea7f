package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

func TestLogin(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t, &clock{t: t0})
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
		if _, err := s.Link(ctx, bob.ID, issuer, "bob-sub"); err != nil {
			t.Fatal(err)
		}
		if e, err := s.LinkedEditor(ctx, issuer, "bob-sub"); err != nil || e.ID != bob.ID {
			t.Fatalf("linked editor: %+v %v", e, err)
		}
		if _, err := s.Link(ctx, "nobody", issuer, "x"); !errors.Is(err, epoch.ErrNotFound) {
			t.Fatalf("unknown editor: %v", err)
		}
		links, err := s.Links(ctx, first.ID)
		if err != nil || len(links) != 1 || links[0].Subject != "sub-1" || links[0].Provider != issuer {
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
	t.Run("concurrent first logins create one editor", func(t *testing.T) {
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Go(func() {
				e, _, err := s.Login(ctx, issuer, "racer", "racer")
				if err != nil {
					t.Error(err)
				}
				ids[i] = e.ID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("one subject became several editors: %v", ids)
			}
		}
	})
}

func TestUsernameFrom(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                   "alice",
		"Alice.Smith@example.org": "Alice.Smith",
		"  _-jo hn!":              "jo-hn-",
		"Zoë":                     "Zo-",
		"@example.org":            "user",
		"":                        "user",
		"...":                     "user",
		strings.Repeat("a", 80):   strings.Repeat("a", 64),
	} {
		if got := epoch.UsernameFrom(in); got != want {
			t.Errorf("epoch.UsernameFrom(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnlink(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t, &clock{t: t0})
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
	// The next login through the issuer no longer finds alice.
	e, created, err := s.Login(ctx, issuer, "sub-1", "alice")
	if err != nil || !created || e.ID == alice.ID {
		t.Fatalf("login after unlink: %+v created=%v %v", e, created, err)
	}
}
