package sqlite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, _ := open(t, c)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	bob, _ := s.Create(ctx, epoch.NewEditor{Username: "bob"})
	c.add(time.Minute)
	mk := func(id, editor, name string, rights []string, expires time.Time) epoch.APIToken {
		return epoch.APIToken{TokenID: id, EditorID: editor, Name: name, Description: "for " + name, Rights: rights,
			Created: c.now(), Creator: editor, Expires: expires}
	}
	laptop := mk("00000000-0000-4000-8000-000000000001", alice.ID, "laptop", nil, time.Time{})
	cron := mk("00000000-0000-4000-8000-000000000002", alice.ID, "cron", []string{"read"}, t0.Add(48*time.Hour))
	server := mk("00000000-0000-4000-8000-000000000003", alice.ID, "server", []string{}, t0.Add(10*24*time.Hour))
	other := mk("00000000-0000-4000-8000-000000000004", bob.ID, "laptop", nil, time.Time{})
	for _, tok := range []epoch.APIToken{laptop, cron, server, other} {
		if err := s.RegisterToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RegisterToken(ctx, mk("00000000-0000-4000-8000-000000000005", alice.ID, "laptop", nil, time.Time{})); !errors.Is(err, epoch.ErrNameTaken) {
		t.Fatalf("duplicate live name: %v", err)
	}
	if err := s.RegisterToken(ctx, mk(laptop.TokenID, bob.ID, "again", nil, time.Time{})); err == nil {
		t.Fatal("a token id registered twice")
	}
	if err := s.RegisterToken(ctx, mk("00000000-0000-4000-8000-000000000006", "nobody", "x", nil, time.Time{})); !errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("unknown editor: %v", err)
	}
	if err := s.RegisterToken(ctx, mk("00000000-0000-4000-8000-000000000007", alice.ID, "bad\nname", nil, time.Time{})); err == nil {
		t.Fatal("a name with a newline")
	}

	got, err := s.Token(ctx, cron.TokenID)
	if err != nil || got.Name != "cron" || strings.Join(got.Rights, ",") != "read" || !got.Expires.Equal(cron.Expires) || !got.Revoked.IsZero() {
		t.Fatalf("Token = %+v, %v", got, err)
	}
	if got, _ := s.Token(ctx, laptop.TokenID); got.Rights != nil {
		t.Fatalf("unrestricted token read back with rights %#v", got.Rights)
	}
	if got, _ := s.Token(ctx, server.TokenID); got.Rights == nil || len(got.Rights) != 0 {
		t.Fatalf("no-rights token read back as %#v", got.Rights)
	}
	if l, _ := s.Tokens(ctx, alice.ID); len(l) != 3 {
		t.Fatalf("alice's tokens: %d", len(l))
	}
	if l, _ := s.Tokens(ctx, ""); len(l) != 4 {
		t.Fatalf("all tokens: %d", len(l))
	}
	if _, err := s.Token(ctx, "nope"); !errors.Is(err, epoch.ErrTokenNotFound) {
		t.Fatalf("unknown token: %v", err)
	}

	exp, _ := s.ExpiringTokens(ctx, 7*24*time.Hour)
	if len(exp) != 1 || exp[0].TokenID != cron.TokenID {
		t.Fatalf("expiring within 7 days: %+v", exp)
	}

	// Revoking one token puts it in the editor's state, bumping the version.
	before, _ := s.Editor(ctx, alice.ID)
	ed, row, err := s.RevokeToken(ctx, cron.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	if ed.Version != before.Version+1 || ed.Revoked != cron.TokenID || row.Revoked.IsZero() {
		t.Fatalf("after revoke: editor %+v row %+v", ed, row)
	}
	st := ed.State()
	if !st.TokenRevoked(cron.TokenID) || st.TokenRevoked(laptop.TokenID) || st.TokenRevoked("") {
		t.Fatal("TokenRevoked")
	}
	if err := st.Admit(c.now(), cron.TokenID); !errors.Is(err, epoch.ErrTokenRevoked) || !errors.Is(err, epoch.ErrRevoked) {
		t.Fatalf("Admit(revoked token) = %v", err)
	}
	if err := st.Admit(c.now(), laptop.TokenID); err != nil {
		t.Fatalf("Admit(other token) = %v", err)
	}
	if _, _, err := s.RevokeToken(ctx, cron.TokenID); !errors.Is(err, epoch.ErrAlreadyRevoked) {
		t.Fatalf("second revoke: %v", err)
	}
	if bobNow, _ := s.Editor(ctx, bob.ID); bobNow.Revoked != "" || bobNow.Version != bob.Version {
		t.Fatal("revoking alice's token changed bob")
	}
	// The name is free again once its token is revoked; the row stays.
	if err := s.RegisterToken(ctx, mk("00000000-0000-4000-8000-000000000008", alice.ID, "cron", nil, time.Time{})); err != nil {
		t.Fatalf("reusing a revoked token's name: %v", err)
	}
	if exp, _ := s.ExpiringTokens(ctx, 7*24*time.Hour); len(exp) != 0 {
		t.Fatal("a revoked token is listed as expiring")
	}

	// Two revocations, then a touch: the epoch covers them, the list empties.
	s.RevokeToken(ctx, laptop.TokenID)
	ed, _ = s.Editor(ctx, alice.ID)
	if ed.Revoked != laptop.TokenID+","+cron.TokenID { // ordered by id
		t.Fatalf("revoked list %q", ed.Revoked)
	}
	c.add(time.Minute)
	ed, _ = s.Touch(ctx, alice.ID)
	if ed.Revoked != "" {
		t.Fatalf("after touch the list still holds %q", ed.Revoked)
	}
	// A revoked token that has expired leaves the list too.
	s.RevokeToken(ctx, server.TokenID) // created before the touch: not listed
	late := mk("00000000-0000-4000-8000-000000000009", alice.ID, "late", nil, c.now().Add(time.Hour))
	late.Created = c.now().Add(time.Second)
	s.RegisterToken(ctx, late)
	ed, _, _ = s.RevokeToken(ctx, late.TokenID)
	if ed.Revoked != late.TokenID {
		t.Fatalf("revoked list %q", ed.Revoked)
	}
	c.add(2 * time.Hour)
	if ed, _ = s.Editor(ctx, alice.ID); ed.Revoked != "" {
		t.Fatalf("an expired revoked token is still listed: %q", ed.Revoked)
	}
}

func TestRecordUses(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s, _ := open(t, c)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	tok := epoch.APIToken{TokenID: "00000000-0000-4000-8000-000000000001", EditorID: alice.ID, Name: "laptop", Created: t0, Creator: "cli"}
	s.RegisterToken(ctx, tok)
	err := s.RecordUses(ctx, []epoch.Use{
		{TokenID: tok.TokenID, At: t0.Add(time.Hour), From: "192.0.2.1"},
		{TokenID: "not-an-api-token", At: t0, From: "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Token(ctx, tok.TokenID)
	if !got.LastUsed.Equal(t0.Add(time.Hour)) || got.LastUsedFrom != "192.0.2.1" {
		t.Fatalf("last use %v from %q", got.LastUsed, got.LastUsedFrom)
	}
	// An older use (a late batch) never moves it back.
	s.RecordUses(ctx, []epoch.Use{{TokenID: tok.TokenID, At: t0.Add(time.Minute), From: "198.51.100.7"}})
	if got, _ := s.Token(ctx, tok.TokenID); !got.LastUsed.Equal(t0.Add(time.Hour)) || got.LastUsedFrom != "192.0.2.1" {
		t.Fatalf("last use moved back to %v from %q", got.LastUsed, got.LastUsedFrom)
	}
}
