package verifier_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

func TestTokenRevokedAlone(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.storeClock.Set(fixNow)
	f.clock.Add(time.Second)
	register := func(name string) *macaroon.Minted {
		m, err := f.minter.Mint(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.RegisterToken(ctx, epoch.APIToken{TokenID: m.TokenID, EditorID: alice, Name: name, Created: m.Created, Creator: alice}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	laptop, server := register("laptop"), register("server")
	// A token exchanged from the laptop token.
	child, err := macaroon.Attenuate(laptop.Token, caveat.ParentToken(laptop.TokenID))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{laptop.Token, server.Token, child} {
		if _, err := f.v.Verify(ctx, tok, caveat.Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.store.RevokeToken(ctx, laptop.TokenID); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"the revoked token":         {laptop.Token, epoch.ErrTokenRevoked},
		"a token exchanged from it": {child, epoch.ErrTokenRevoked},
		"the other token":           {server.Token, nil},
		"a session token":           {f.mint(t, alice), nil},
	} {
		_, err := f.v.Verify(ctx, tc.tok, caveat.Request{})
		if tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, verifier.ErrRevoked)) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A parent_token appended by a holder only adds a check.
	ownParent, _ := macaroon.Attenuate(server.Token, caveat.ParentToken(laptop.TokenID))
	if _, err := f.v.Verify(ctx, ownParent, caveat.Request{}); !errors.Is(err, epoch.ErrTokenRevoked) {
		t.Errorf("server token claiming the revoked laptop token as parent: %v", err)
	}
}

func TestRoleBoundsRights(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.clock.Add(time.Second)
	botWithAdminRight := f.mint(t, fatcatEditor, macaroon.WithCaveats(caveat.Rights{"read", "admin:touch"}))
	botUnrestricted := f.mint(t, fatcatEditor)
	adminTok := f.mint(t, touchedEditor, macaroon.WithCaveats(caveat.Rights{"read", "admin:touch"}))

	id, err := f.v.Verify(ctx, botWithAdminRight, caveat.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(id.Rights, ",") != "read" || id.Can("admin:touch") || !id.Can("read") {
		t.Fatalf("bot identity rights %v", id.Rights)
	}
	for _, tok := range []string{botWithAdminRight, botUnrestricted} {
		_, err := f.v.Verify(ctx, tok, caveat.Request{Rights: []string{"admin:touch"}})
		if !errors.Is(err, verifier.ErrRoleForbids) || verifier.ProblemFor(err).Status != 403 {
			t.Fatalf("bot asking for admin:touch: %v", err)
		}
	}
	if id, _ := f.v.Verify(ctx, botUnrestricted, caveat.Request{}); id.Can("admin:touch") || !id.Can("edit") {
		t.Fatal("unrestricted bot token: Can")
	}
	id, err = f.v.Verify(ctx, adminTok, caveat.Request{Rights: []string{"admin:touch"}})
	if err != nil || !id.Can("admin:touch") || id.Can("superuser:x") {
		t.Fatalf("admin: %+v %v", id, err)
	}
}
