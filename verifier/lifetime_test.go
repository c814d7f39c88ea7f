package verifier_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// TestMaxLifetime: WithMaxLifetime refuses tokens of its kind that live
// too long (or forever), with ErrOverPolicy and its own 401 reason, before
// their caveats are checked against the request; other kinds and tokens
// without a kind are not affected.
func TestMaxLifetime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verifier.WithMaxLifetime(caveat.KindAPI, verifier.Lifetime{Max: time.Hour}),
		verifier.WithMaxLifetime(caveat.KindCLI, verifier.Lifetime{Max: time.Hour, AllowNoExpiry: true}))
	f.clock.Add(time.Second)
	tests := []struct {
		name string
		opts []macaroon.MintOption
		req  caveat.Request
		want error
	}{
		{"api within", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(time.Hour)}, caveat.Request{}, nil},
		{"api over", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(2 * time.Hour)}, caveat.Request{}, verifier.ErrOverPolicy},
		{"api over, for a request its caveats forbid: still over", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(2 * time.Hour),
			macaroon.WithCaveats(caveat.Methods{"GET"})}, caveat.Request{Method: "POST"}, verifier.ErrOverPolicy},
		{"api never", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI)}, caveat.Request{}, verifier.ErrOverPolicy},
		{"cli never, allowed", []macaroon.MintOption{macaroon.WithKind(caveat.KindCLI)}, caveat.Request{}, nil},
		{"cli over", []macaroon.MintOption{macaroon.WithKind(caveat.KindCLI), macaroon.ExpiresIn(2 * time.Hour)}, caveat.Request{}, verifier.ErrOverPolicy},
		{"session: not limited", []macaroon.MintOption{macaroon.WithKind(caveat.KindSession)}, caveat.Request{}, nil},
		{"no kind: not limited", nil, caveat.Request{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := f.mint(t, alice, tc.opts...)
			for range 2 { // the second from the signature cache
				_, err := f.v.Verify(ctx, tok, tc.req)
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("Verify = %v, want %v", err, tc.want)
				}
				if tc.want != nil {
					if p := verifier.ProblemFor(err); p.Status != 401 || p.Code != "invalid_token" || p.Description != "token lifetime exceeds the policy" {
						t.Fatalf("problem %+v", p)
					}
				}
			}
		})
	}
	for name, o := range map[string]verifier.Option{
		"an unknown kind": verifier.WithMaxLifetime("wizard", verifier.Lifetime{Max: time.Hour}),
		"no kind":         verifier.WithMaxLifetime("", verifier.Lifetime{Max: time.Hour}),
		"zero maximum":    verifier.WithMaxLifetime(caveat.KindAPI, verifier.Lifetime{}),
	} {
		if _, err := verifier.New(f.keys, f.store, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
