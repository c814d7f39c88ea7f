package apitoken_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// TestRotate: the new token has the old one's name, description, rights,
// endpoint and parents, expires when the old one does, and verifies; the
// old one keeps verifying until the new one is used (or the grace ends),
// then RetireRotated revokes it.
func TestRotate(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	parentSecret, parentRow, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "parent", Rights: []string{"read", "edit", "tokens"}})
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := e.v.Verify(ctx, parentSecret, caveat.Request{})
	oldSecret, old, err := e.issuer.Create(ctx, apitoken.Request{Name: "ci", Description: "the CI", Rights: []string{"read"}, Endpoint: "api",
		TTL: 48 * time.Hour, Creator: e.alice.ID, Parent: &apitoken.Parent{Token: parentSecret, Identity: pid}})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Hour)
	secret, row, updated, err := e.issuer.Rotate(ctx, apitoken.RotateRequest{TokenID: old.TokenID, Creator: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := macaroon.CheckAPIFormat(secret); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	if row.Name != "ci" || row.Description != "the CI" || !slices.Equal(row.Rights, []string{"read"}) || row.Endpoint != "api" ||
		!slices.Equal(row.Parents, []string{parentRow.TokenID}) || row.Expires.After(old.Expires) || old.Expires.Sub(row.Expires) > time.Second || row.RotatedFrom != old.TokenID {
		t.Fatalf("new row %+v, old %+v", row, old)
	}
	if updated.RotatedTo != row.TokenID || !updated.GraceUntil.Equal(e.clk.now().Add(apitoken.DefaultGrace)) {
		t.Fatalf("old row %+v", updated)
	}
	verify := func(tok string) error {
		_, err := e.v.Verify(ctx, tok, caveat.Request{Endpoint: "api", Rights: []string{"read"}})
		return err
	}
	for name, tok := range map[string]string{"old": oldSecret, "new": secret} {
		if err := verify(tok); err != nil {
			t.Fatalf("%s token during the grace: %v", name, err)
		}
	}
	// The new token carries its predecessor's parent: revoking the
	// parent would revoke it too.
	id, _ := e.v.Verify(ctx, secret, caveat.Request{Endpoint: "api"})
	if id.Rights == nil || !slices.Equal(id.Rights, []string{"read"}) {
		t.Fatalf("new identity %+v", id)
	}
	if eds, rows, err := e.store.RetireRotated(ctx); err != nil || len(eds)+len(rows) != 0 {
		t.Fatalf("retired before any use: %v %v", rows, err)
	}
	if err := e.store.RecordUses(ctx, []epoch.Use{{TokenID: row.TokenID, At: e.clk.now()}}); err != nil {
		t.Fatal(err)
	}
	if _, rows, err := e.store.RetireRotated(ctx); err != nil || len(rows) != 1 || rows[0].TokenID != old.TokenID {
		t.Fatalf("retired %+v, %v", rows, err)
	}
	if err := verify(oldSecret); !errors.Is(err, epoch.ErrTokenRevoked) {
		t.Fatalf("old token after the new one's use: %v", err)
	}
	if err := verify(secret); err != nil {
		t.Fatalf("new token: %v", err)
	}
	// Revoking the old token's parent revokes its successor too.
	if _, _, err := e.store.RevokeToken(ctx, parentRow.TokenID); err != nil {
		t.Fatal(err)
	}
	if err := verify(secret); !errors.Is(err, epoch.ErrTokenRevoked) {
		t.Fatalf("new token after its parent's revocation: %v", err)
	}
}

// TestRotateRefused: rotation obeys creation's rules and only live tokens
// rotate.
func TestRotateRefused(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	create := func(r apitoken.Request) epoch.APIToken {
		t.Helper()
		r.EditorID = e.alice.ID
		_, row, err := e.issuer.Create(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	revoked := create(apitoken.Request{Name: "revoked"})
	if _, _, err := e.store.RevokeToken(ctx, revoked.TokenID); err != nil {
		t.Fatal(err)
	}
	expiring := create(apitoken.Request{Name: "expiring", TTL: time.Minute})
	rotated := create(apitoken.Request{Name: "rotated"})
	if _, _, _, err := e.issuer.Rotate(ctx, apitoken.RotateRequest{TokenID: rotated.TokenID}); err != nil {
		t.Fatal(err)
	}
	wide := create(apitoken.Request{Name: "wide", Rights: []string{"read", "edit"}})
	// A token limited to "read" may not rotate a token with "edit".
	narrowSecret, _, _ := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "narrow", Rights: []string{"read"}})
	nid, _ := e.v.Verify(ctx, narrowSecret, caveat.Request{})
	// A token of another editor may not rotate alice's.
	botSecret, _, _ := e.issuer.Create(ctx, apitoken.Request{EditorID: e.bot.ID, Name: "bot"})
	bid, _ := e.v.Verify(ctx, botSecret, caveat.Request{})
	e.clk.add(2 * time.Minute)
	tests := []struct {
		name string
		req  apitoken.RotateRequest
		want error
	}{
		{"unknown", apitoken.RotateRequest{TokenID: "00000000-0000-4000-8000-000000000000"}, epoch.ErrTokenNotFound},
		{"revoked", apitoken.RotateRequest{TokenID: revoked.TokenID}, epoch.ErrAlreadyRevoked},
		{"expired", apitoken.RotateRequest{TokenID: expiring.TokenID}, apitoken.ErrNotRotatable},
		{"already rotated", apitoken.RotateRequest{TokenID: rotated.TokenID}, epoch.ErrAlreadyRotated},
		{"negative grace", apitoken.RotateRequest{TokenID: wide.TokenID, Grace: -time.Hour}, apitoken.ErrInvalid},
		{"grace too long", apitoken.RotateRequest{TokenID: wide.TokenID, Grace: apitoken.MaxGrace + time.Hour}, apitoken.ErrInvalid},
		{"more rights than the rotating token", apitoken.RotateRequest{TokenID: wide.TokenID, Parent: &apitoken.Parent{Token: narrowSecret, Identity: nid}}, apitoken.ErrRightNotAllowed},
		{"another editor's token", apitoken.RotateRequest{TokenID: wide.TokenID, Parent: &apitoken.Parent{Token: botSecret, Identity: bid}}, apitoken.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.store.Tokens(ctx, "")
			_, _, _, err := e.issuer.Rotate(ctx, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Rotate = %v, want %v", err, tc.want)
			}
			if after, _ := e.store.Tokens(ctx, ""); len(after) != len(before) {
				t.Fatal("a refused rotation registered a token")
			}
		})
	}
	// Under a tighter policy, a token over it is not rotated into one
	// that lives as long.
	long := create(apitoken.Request{Name: "long", TTL: 300 * 24 * time.Hour})
	tight, err := apitoken.NewIssuer(e.store, e.minter, e.checker, apitoken.WithClock(e.clk.now), apitoken.WithMaxLifetime(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := tight.Rotate(ctx, apitoken.RotateRequest{TokenID: long.TokenID}); !errors.Is(err, apitoken.ErrNotRotatable) {
		t.Fatalf("rotating a token over the policy: %v", err)
	}
}
