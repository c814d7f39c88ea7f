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

// restricted is a token restriction a creator passes on, with a request it
// allows and one it refuses.
type restricted struct {
	name          string
	caveats       []caveat.Caveat
	texts         []string // what the row records
	allow, refuse caveat.Request
}

func restrictions() []restricted {
	return []restricted{
		{
			name:    "method and path_prefix",
			caveats: []caveat.Caveat{caveat.Methods{"GET"}, caveat.PathPrefix("/api/reports")},
			texts:   []string{"method = GET", "path_prefix = /api/reports"},
			allow:   caveat.Request{Method: "GET", Path: "/api/reports/q1", Rights: []string{"read"}},
			refuse:  caveat.Request{Method: "DELETE", Path: "/api/admin", Rights: []string{"read"}},
		},
		{
			name:    "an application's caveat",
			caveats: []caveat.Caveat{tenant("acme")},
			texts:   []string{"tenant = acme"},
			allow:   caveat.Request{Method: "GET", Path: "/tenants/acme/x", Rights: []string{"read"}},
			refuse:  caveat.Request{Method: "GET", Path: "/tenants/other/x", Rights: []string{"read"}},
		},
	}
}

// session mints a login session of alice as a frontend would (pristine),
// attenuated with cavs when given, and verifies it for req.
func (e *env) session(t *testing.T, req caveat.Request, cavs ...caveat.Caveat) apitoken.Parent {
	t.Helper()
	ctx := context.Background()
	m, err := e.minter.Mint(ctx, e.alice.ID, macaroon.WithKind(caveat.KindSession), macaroon.ExpiresAt(e.clk.now().Add(12*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	tok := m.Token
	if len(cavs) > 0 {
		if tok, err = macaroon.AttenuateWith(e.checker, macaroon.Limits{}, tok, cavs...); err != nil {
			t.Fatal(err)
		}
	}
	return e.parent(t, tok, req)
}

// parent verifies tok for req, as a creator.
func (e *env) parent(t *testing.T, tok string, req caveat.Request) apitoken.Parent {
	t.Helper()
	id, err := e.v.Verify(context.Background(), tok, req)
	if err != nil {
		t.Fatalf("verifying a creator: %v", err)
	}
	return apitoken.Parent{Token: tok, Identity: id}
}

// checkRestricted fails unless tok allows r.allow and refuses r.refuse.
func (e *env) checkRestricted(t *testing.T, what, tok string, r restricted) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.v.Verify(ctx, tok, r.allow); err != nil {
		t.Fatalf("%s refuses %s %s: %v", what, r.allow.Method, r.allow.Path, err)
	}
	if _, err := e.v.Verify(ctx, tok, r.refuse); err == nil {
		t.Fatalf("%s allows %s %s; the token it replaces could not", what, r.refuse.Method, r.refuse.Path)
	}
}

// A rotator is who rotates a token: the creator and the parent to give
// Rotate. old is the old token's secret, req a request it allows.
type rotator func(t *testing.T, e *env, old string, req caveat.Request) (string, *apitoken.Parent)

func byOperator(*testing.T, *env, string, caveat.Request) (string, *apitoken.Parent) {
	return "cli", nil
}

func bySession(t *testing.T, e *env, _ string, _ caveat.Request) (string, *apitoken.Parent) {
	p := e.session(t, caveat.Request{})
	return e.alice.ID, &p
}

func byItself(t *testing.T, e *env, old string, req caveat.Request) (string, *apitoken.Parent) {
	p := e.parent(t, old, req)
	return e.alice.ID, &p
}

// TestRotateKeepsCaveats: a token created by a restricted creator records
// the restrictions it inherited (epoch.APIToken.Caveats), and a rotation
// by any caller (the operator, a fresh login session, the old token
// itself) writes them into the successor, and again into the successor's
// successor: a rotated token is never broader than the token it replaces.
func TestRotateKeepsCaveats(t *testing.T) {
	rotators := []struct {
		name string
		by   rotator
	}{
		{"the operator", byOperator},
		{"a fresh login session", bySession},
		{"the old token itself", byItself},
	}
	for _, r := range restrictions() {
		for _, rot := range rotators {
			t.Run(r.name+"/"+rot.name, func(t *testing.T) {
				ctx := context.Background()
				e := setup(t)
				narrow := e.session(t, r.allow, r.caveats...)
				oldSecret, old, err := e.issuer.Create(ctx, apitoken.Request{Name: "reports", Rights: []string{"read"}, Creator: e.alice.ID, Parent: &narrow})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(old.Caveats, r.texts) {
					t.Fatalf("recorded caveats %q, want %q", old.Caveats, r.texts)
				}
				if got, err := e.store.Token(ctx, old.TokenID); err != nil || !slices.Equal(got.Caveats, r.texts) {
					t.Fatalf("stored caveats %q (%v), want %q", got.Caveats, err, r.texts)
				}
				e.checkRestricted(t, "the old token", oldSecret, r)
				creator, p := rot.by(t, e, oldSecret, r.allow)
				secret, row, _, err := e.issuer.Rotate(ctx, apitoken.RotateRequest{TokenID: old.TokenID, Creator: creator, Parent: p})
				if err != nil {
					t.Fatal(err)
				}
				e.checkRestricted(t, "the rotated token", secret, r)
				for _, c := range r.texts {
					if !slices.Contains(row.Caveats, c) {
						t.Fatalf("the successor records %q, not %q", row.Caveats, c)
					}
				}
				// Rotated again, by the operator: the restrictions stay.
				again, _, _, err := e.issuer.Rotate(ctx, apitoken.RotateRequest{TokenID: row.TokenID, Creator: "cli"})
				if err != nil {
					t.Fatal(err)
				}
				e.checkRestricted(t, "the token rotated twice", again, r)
			})
		}
	}
}

// TestRotateOperatorRecordsNoCaveats: an operator's token records that it
// carries no caveats beyond its row (an empty list, not an unknown one),
// and rotates.
func TestRotateOperatorRecordsNoCaveats(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	_, old, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "ci", Rights: []string{"read"}, Creator: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.Token(ctx, old.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][]string{"returned": old.Caveats, "stored": stored.Caveats} {
		if c == nil || len(c) != 0 {
			t.Fatalf("%s caveats %#v, want an empty list", name, c)
		}
	}
	if _, _, _, err := e.issuer.Rotate(ctx, apitoken.RotateRequest{TokenID: old.TokenID, Creator: "cli"}); err != nil {
		t.Fatal(err)
	}
}

// TestRotateSelf: a token that rotates itself (or an attenuation of it
// does) does not become a parent of its successor, so the retirement of
// the old token leaves the successor working; the old token's own parents
// and restrictions still carry over.
func TestRotateSelf(t *testing.T) {
	tests := []struct {
		name string
		// attenuate is what the holder appends to the old token before
		// rotating with it.
		attenuate []caveat.Caveat
		req       caveat.Request
	}{
		{"the token itself", nil, caveat.Request{Rights: []string{"read"}}},
		{"an attenuation of it", []caveat.Caveat{caveat.Methods{"GET"}}, caveat.Request{Method: "GET", Rights: []string{"read"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := setup(t)
			grand, grandRow, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "deploy", Rights: []string{"read", "tokens"}, Creator: "cli"})
			if err != nil {
				t.Fatal(err)
			}
			gp := e.parent(t, grand, caveat.Request{})
			oldSecret, old, err := e.issuer.Create(ctx, apitoken.Request{Name: "ci", Rights: []string{"read", "tokens"}, TTL: 48 * time.Hour, Creator: e.alice.ID, Parent: &gp})
			if err != nil {
				t.Fatal(err)
			}
			caller := oldSecret
			if tc.attenuate != nil {
				if caller, err = macaroon.Attenuate(oldSecret, tc.attenuate...); err != nil {
					t.Fatal(err)
				}
			}
			p := e.parent(t, caller, tc.req)
			secret, row, _, err := e.issuer.Rotate(ctx, apitoken.RotateRequest{TokenID: old.TokenID, Creator: e.alice.ID, Parent: &p})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(row.Parents, []string{grandRow.TokenID}) {
				t.Fatalf("successor parents %v, want only the old token's parent %s (old %s)", row.Parents, grandRow.TokenID, old.TokenID)
			}
			if err := e.store.RecordUses(ctx, []epoch.Use{{TokenID: row.TokenID, At: e.clk.now()}}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.store.RetireRotated(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := e.v.Verify(ctx, oldSecret, caveat.Request{Rights: []string{"read"}}); err == nil {
				t.Fatal("the old token still verifies after its retirement")
			}
			if _, err := e.v.Verify(ctx, secret, tc.req); err != nil {
				t.Fatalf("the successor of a self-rotated token no longer works after the retirement: %v", err)
			}
			if tc.attenuate != nil {
				if _, err := e.v.Verify(ctx, secret, caveat.Request{Method: "DELETE", Rights: []string{"read"}}); err == nil {
					t.Fatal("the successor dropped the attenuation of the token that rotated it")
				}
			}
		})
	}
}

// TestRotateUnknownCaveats: a row registered before caveats were recorded
// (Caveats nil) is rotated only by the token itself, whose caveats then
// come through; any other caller is refused with ErrCaveatsUnknown.
func TestRotateUnknownCaveats(t *testing.T) {
	r := restrictions()[0]
	tests := []struct {
		name    string
		by      rotator
		wantErr error
	}{
		{"the operator", byOperator, apitoken.ErrCaveatsUnknown},
		{"a fresh login session", bySession, apitoken.ErrCaveatsUnknown},
		{"the old token itself", byItself, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := setup(t)
			// A token as the issuer registered it before this change: its
			// restrictions in the token, not in the row.
			m, err := e.minter.Mint(ctx, e.alice.ID, macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresAt(e.clk.now().Add(48*time.Hour)),
				macaroon.WithCaveats(append(slices.Clone(r.caveats), caveat.Rights{"read"})...))
			if err != nil {
				t.Fatal(err)
			}
			old := epoch.APIToken{TokenID: m.TokenID, EditorID: e.alice.ID, Name: "legacy", Rights: []string{"read"}, Created: m.Created, Creator: e.alice.ID, Expires: m.Expires}
			if err := e.store.RegisterToken(ctx, old); err != nil {
				t.Fatal(err)
			}
			if got, err := e.store.Token(ctx, old.TokenID); err != nil || got.Caveats != nil {
				t.Fatalf("stored caveats %#v (%v), want unknown", got.Caveats, err)
			}
			creator, p := tc.by(t, e, m.Token, r.allow)
			secret, row, _, err := e.issuer.Rotate(ctx, apitoken.RotateRequest{TokenID: old.TokenID, Creator: creator, Parent: p})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, apitoken.ErrNotRotatable) {
					t.Fatalf("got %v, want %v (and ErrNotRotatable)", err, tc.wantErr)
				}
				if got, _ := e.store.Token(ctx, old.TokenID); got.RotatedTo != "" {
					t.Fatal("a refused rotation rotated the token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e.checkRestricted(t, "the rotated token", secret, r)
			if !slices.Equal(row.Caveats, r.texts) {
				t.Fatalf("the successor records %q, want %q", row.Caveats, r.texts)
			}
		})
	}
}
