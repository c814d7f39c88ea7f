package apitoken_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

const day = 24 * time.Hour

// creator is a token that creates another, and a request it is allowed.
type creator struct {
	token string
	req   caveat.Request
}

// claimsOf parses a token's caveats with the environment's checker.
func (e *env) claimsOf(t *testing.T, token string) *caveat.Claims {
	t.Helper()
	tok, err := macaroon.Parse(token, macaroon.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var raw [][]byte
	for _, c := range tok.Caveats() {
		raw = append(raw, []byte(c))
	}
	cl, err := e.checker.Claims(raw)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (e *env) mint(t *testing.T, opts ...macaroon.MintOption) string {
	t.Helper()
	m, err := e.minter.Mint(context.Background(), e.alice.ID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

func attenuate(t *testing.T, token string, cavs ...caveat.Caveat) string {
	t.Helper()
	out, err := macaroon.Attenuate(token, cavs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDerivedTokensNeverWiden: whatever a token creates — an API token
// through Create, a token through Exchange — can do no more and lives no
// longer than the token that created it; the one exception is a login
// session exactly as minted, creating API tokens.
func TestDerivedTokensNeverWiden(t *testing.T) {
	ctx := context.Background()
	tokensPost := caveat.Request{Method: "POST", Path: "/v1/tokens", Rights: []string{"tokens"}}
	// M1's token: rights = tokens, method = POST, path_prefix = /v1/tokens,
	// 5 minutes.
	restricted := func(t *testing.T, e *env) creator {
		secret, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "restricted", Rights: []string{"tokens"}, TTL: 5 * time.Minute, Creator: "cli"})
		if err != nil {
			t.Fatal(err)
		}
		return creator{attenuate(t, secret, caveat.Methods{"POST"}, caveat.PathPrefix("/v1/tokens")), tokensPost}
	}
	session := func(ttl time.Duration, extra ...macaroon.MintOption) func(*testing.T, *env) creator {
		return func(t *testing.T, e *env) creator {
			opts := append([]macaroon.MintOption{macaroon.WithUsername("alice"), macaroon.WithKind(caveat.KindSession), macaroon.ExpiresIn(ttl)}, extra...)
			return creator{e.mint(t, opts...), caveat.Request{}}
		}
	}
	attenuated := func(base func(*testing.T, *env) creator, cavs ...caveat.Caveat) func(*testing.T, *env) creator {
		return func(t *testing.T, e *env) creator {
			c := base(t, e)
			c.token = attenuate(t, c.token, cavs...)
			return c
		}
	}
	withReq := func(base func(*testing.T, *env) creator, req caveat.Request) func(*testing.T, *env) creator {
		return func(t *testing.T, e *env) creator {
			c := base(t, e)
			c.req = req
			return c
		}
	}
	start := time.Date(2026, 6, 1, 12, 0, 1, 0, time.UTC) // setup's clock
	tests := []struct {
		name    string
		creator func(*testing.T, *env) creator
		// exchange uses Exchange, otherwise Create.
		exchange bool
		rights   []string
		ttl      time.Duration
		wantErr  error
		// expires is the child's expiry after start (0: none).
		expires time.Duration
		// parented: the child names the creator in a parent_token.
		parented bool
		kind     caveat.Kind
		username string
		rights2  []string // the rights the child's caveats leave (nil: unrestricted)
		allowed  []caveat.Request
		refused  []caveat.Request
	}{
		{
			name: "M1: a restricted token creates a token no stronger", creator: restricted,
			expires: 5 * time.Minute, parented: true, kind: caveat.KindAPI, rights2: []string{"tokens"},
			allowed: []caveat.Request{tokensPost},
			refused: []caveat.Request{
				{Method: "DELETE", Path: "/v1/tokens/x"}, {Method: "POST", Path: "/v1/admin"},
				{Method: "POST", Path: "/v1/tokens", Rights: []string{"edit"}},
			},
		},
		{name: "M1: a restricted token asks for 30 days", creator: restricted, ttl: 30 * day,
			expires: 5 * time.Minute, parented: true, kind: caveat.KindAPI, rights2: []string{"tokens"}, allowed: []caveat.Request{tokensPost}},
		{name: "M1: a restricted token asks for edit", creator: restricted, rights: []string{"edit"}, wantErr: apitoken.ErrRightNotAllowed},
		{name: "M1: a restricted token exchanged", creator: restricted, exchange: true, ttl: time.Hour,
			expires: 5 * time.Minute, parented: true, kind: caveat.KindExchange, rights2: []string{"tokens"},
			allowed: []caveat.Request{tokensPost}, refused: []caveat.Request{{Method: "GET", Path: "/v1/tokens"}}},
		{
			name: "an application's caveat is carried",
			creator: func(t *testing.T, e *env) creator {
				return creator{e.mint(t, macaroon.ExpiresIn(time.Hour), macaroon.WithCaveats(tenant("acme"))), caveat.Request{Path: "/tenants/acme/x"}}
			},
			ttl: day, expires: time.Hour, parented: true, kind: caveat.KindAPI,
			allowed: []caveat.Request{{Path: "/tenants/acme/x"}}, refused: []caveat.Request{{Path: "/tenants/evil/x"}},
		},
		{name: "a pristine session creates a 90-day token", creator: session(12 * time.Hour), ttl: 90 * day,
			expires: 90 * day, kind: caveat.KindAPI, username: "alice", allowed: []caveat.Request{{Rights: []string{"edit"}}}},
		{name: "a pristine session creates a token of the policy's default lifetime", creator: session(12 * time.Hour),
			expires: apitoken.DefaultAPILifetime, kind: caveat.KindAPI, username: "alice"},
		{name: "a pristine session asks for more than the maximum", creator: session(12 * time.Hour), ttl: 2 * apitoken.DefaultMaxLifetime, wantErr: apitoken.ErrInvalid},
		{name: "a pristine session's minter-written rights are carried", creator: session(12*time.Hour, macaroon.WithCaveats(caveat.Rights{"read", "tokens"})),
			ttl: 90 * day, expires: 90 * day, kind: caveat.KindAPI, username: "alice", rights2: []string{"read", "tokens"},
			allowed: []caveat.Request{{Rights: []string{"read"}}}, refused: []caveat.Request{{Rights: []string{"edit"}}}},
		{name: "a pristine session asks for a right its minter withheld", creator: session(12*time.Hour, macaroon.WithCaveats(caveat.Rights{"read", "tokens"})),
			rights: []string{"edit"}, wantErr: apitoken.ErrRightNotAllowed},
		{name: "a session with a holder's shorter expiry is bounded by it", creator: attenuated(session(12*time.Hour), caveat.ExpiresAt(start.Add(10*time.Minute))),
			ttl: 90 * day, expires: 10 * time.Minute, parented: true, kind: caveat.KindAPI, username: "alice"},
		{name: "a session with a holder's restriction is bounded by the session", creator: withReq(attenuated(session(12*time.Hour), caveat.Methods{"POST"}), caveat.Request{Method: "POST"}),
			ttl: 90 * day, expires: 12 * time.Hour, parented: true, kind: caveat.KindAPI, username: "alice",
			allowed: []caveat.Request{{Method: "POST"}}, refused: []caveat.Request{{Method: "GET"}}},
		{name: "a session without a kind is bounded", creator: func(t *testing.T, e *env) creator {
			return creator{e.mint(t, macaroon.WithUsername("alice"), macaroon.ExpiresIn(12*time.Hour)), caveat.Request{}}
		}, ttl: 90 * day, expires: 12 * time.Hour, parented: true, kind: caveat.KindAPI, username: "alice"},
		{name: "a CLI-minted token is bounded", creator: func(t *testing.T, e *env) creator {
			return creator{e.mint(t, macaroon.WithKind(caveat.KindCLI), macaroon.ExpiresIn(time.Hour)), caveat.Request{}}
		}, ttl: 90 * day, expires: time.Hour, parented: true, kind: caveat.KindAPI},
		{name: "a webfront session is exchanged, its username kept", creator: session(12 * time.Hour), exchange: true,
			expires: apitoken.DefaultExchangeTTL, parented: true, kind: caveat.KindExchange, username: "alice"},
		{name: "a pristine session is exchanged: no exception", creator: session(10 * time.Minute), exchange: true, ttl: time.Hour,
			expires: 10 * time.Minute, parented: true, kind: caveat.KindExchange, username: "alice"},
		{name: "a 10-minute parent exchanged with the default lifetime dies with the parent", creator: func(t *testing.T, e *env) creator {
			secret, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "short", TTL: 10 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			return creator{secret, caveat.Request{}}
		}, exchange: true, expires: 10 * time.Minute, parented: true, kind: caveat.KindExchange},
		{name: "rights the role does not permit are not inherited", creator: func(t *testing.T, e *env) creator {
			return creator{e.mint(t, macaroon.ExpiresIn(time.Hour), macaroon.WithCaveats(caveat.Rights{"read", "edit", "admin:touch"})), caveat.Request{}}
		}, expires: time.Hour, parented: true, kind: caveat.KindAPI, rights2: []string{"edit", "read"},
			allowed: []caveat.Request{{Rights: []string{"edit"}}}, refused: []caveat.Request{{Rights: []string{"admin:touch"}}}},
		{name: "exchange: a malformed right", creator: session(time.Hour), exchange: true, rights: []string{"a b"}, wantErr: apitoken.ErrInvalid},
		{name: "create: a malformed right", creator: session(time.Hour), rights: []string{"AgEEnotaright"}, wantErr: apitoken.ErrInvalid},
		{name: "create: an empty list of rights", creator: session(time.Hour), rights: []string{}, wantErr: apitoken.ErrInvalid},
		{name: "exchange: a right the role forbids", creator: session(time.Hour), exchange: true, rights: []string{"admin:touch"}, wantErr: apitoken.ErrRightNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			c := tc.creator(t, e)
			id, err := e.v.Verify(ctx, c.token, c.req)
			if err != nil {
				t.Fatalf("the creator does not verify: %v", err)
			}
			parent := apitoken.Parent{Token: c.token, Identity: id}
			var child string
			var expires time.Time
			if tc.exchange {
				var m *macaroon.Minted
				if m, err = e.issuer.Exchange(ctx, parent, tc.rights, tc.ttl); err == nil {
					child, expires = m.Token, m.Expires
				}
			} else {
				secret, row, cerr := e.issuer.Create(ctx, apitoken.Request{Name: "child", Rights: tc.rights, TTL: tc.ttl, Creator: e.alice.ID, Parent: &parent})
				if err = cerr; err == nil {
					child, expires = secret, row.Expires
					stored, _ := e.store.Token(ctx, row.TokenID)
					if !stored.Expires.Equal(row.Expires) || !slices.Equal(stored.Rights, tc.rights2) || (stored.Rights == nil) != (tc.rights2 == nil) {
						t.Errorf("registry row: expires %v rights %#v, want rights %#v", stored.Expires, stored.Rights, tc.rights2)
					}
				}
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				for _, r := range tc.rights {
					if errors.Is(err, apitoken.ErrInvalid) && strings.Contains(err.Error(), r) {
						t.Errorf("the error repeats a requested value: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := start.Add(tc.expires); !expires.Equal(want) {
				t.Errorf("child expires at %v (%v from now), want %v", expires, expires.Sub(start), want)
			}
			cl := e.claimsOf(t, child)
			if !cl.Expires.Equal(expires) {
				t.Errorf("the child's caveats expire at %v, reported %v", cl.Expires, expires)
			}
			if cl.Kind != tc.kind || cl.Username != tc.username || !cl.Pristine {
				t.Errorf("child claims: kind %q username %q pristine %v", cl.Kind, cl.Username, cl.Pristine)
			}
			if got := slices.Contains(cl.Parents, id.TokenID); got != tc.parented {
				t.Errorf("child names its creator as parent: %v, want %v (parents %v)", got, tc.parented, cl.Parents)
			}
			creatorClaims := e.claimsOf(t, c.token)
			for _, p := range creatorClaims.Parents {
				if !slices.Contains(cl.Parents, p) {
					t.Errorf("the creator's parent %s is not carried", p)
				}
			}
			if got := slices.Sorted(slices.Values(cl.Rights)); !slices.Equal(got, tc.rights2) || (cl.Rights == nil) != (tc.rights2 == nil) {
				t.Errorf("child rights %v, want %v", cl.Rights, tc.rights2)
			}
			cid, err := e.v.Verify(ctx, child, caveat.Request{})
			if len(cl.Restrictions) == 0 {
				if err != nil || cid.Kind != tc.kind || cid.Username != tc.username {
					t.Errorf("child identity %+v, %v", cid, err)
				}
			}
			for _, req := range tc.allowed {
				if _, err := e.v.Verify(ctx, child, req); err != nil {
					t.Errorf("child refused %+v: %v", req, err)
				}
			}
			for _, req := range tc.refused {
				if _, err := e.v.Verify(ctx, child, req); !errors.Is(err, verifier.ErrCaveatNotSatisfied) {
					t.Errorf("child allowed %+v: %v", req, err)
				}
			}
			// It dies when its creator's expiry (or its own) passes.
			e.clk.add(tc.expires)
			if _, err := e.v.Verify(ctx, child, caveat.Request{}); !errors.Is(err, verifier.ErrExpired) {
				t.Errorf("child at its expiry: %v", err)
			}
		})
	}
}

// TestDerivedChainRevoked: a 5-minute token exchanged from an API token
// creates a token; revoking the API token revokes all three.
func TestDerivedChainRevoked(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	api, row, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "cron", TTL: 30 * day})
	if err != nil {
		t.Fatal(err)
	}
	aid, _ := e.v.Verify(ctx, api, caveat.Request{})
	ex, err := e.issuer.Exchange(ctx, apitoken.Parent{Token: api, Identity: aid}, nil, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	eid, _ := e.v.Verify(ctx, ex.Token, caveat.Request{})
	made, made2, err := e.issuer.Create(ctx, apitoken.Request{Name: "made", Parent: &apitoken.Parent{Token: ex.Token, Identity: eid}})
	if err != nil {
		t.Fatal(err)
	}
	if made2.Expires.After(ex.Expires) {
		t.Fatalf("created from a 5-minute token, it expires at %v, after %v", made2.Expires, ex.Expires)
	}
	for _, tok := range []string{api, ex.Token, made} {
		if _, err := e.v.Verify(ctx, tok, caveat.Request{}); err != nil {
			t.Fatalf("before the revocation: %v", err)
		}
	}
	if _, _, err := e.store.RevokeToken(ctx, row.TokenID); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"api": api, "exchanged": ex.Token, "made from the exchanged": made} {
		if _, err := e.v.Verify(ctx, tok, caveat.Request{}); !errors.Is(err, epoch.ErrTokenRevoked) {
			t.Errorf("%s after the API token's revocation: %v", name, err)
		}
	}
}

// TestDeriveRefusesMismatch: an identity that is not its token's is
// refused, whatever it claims; a token asks for its own editor only.
func TestDeriveRefusesMismatch(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	tok := e.mint(t, macaroon.WithKind(caveat.KindSession), macaroon.ExpiresIn(time.Hour))
	id, _ := e.v.Verify(ctx, tok, caveat.Request{})
	other := e.mint(t, macaroon.WithKind(caveat.KindSession), macaroon.ExpiresIn(time.Hour))
	for name, r := range map[string]apitoken.Request{
		"another token's identity": {Name: "x", Parent: &apitoken.Parent{Token: other, Identity: id}},
		"another editor":           {Name: "x", EditorID: e.bot.ID, Parent: &apitoken.Parent{Token: tok, Identity: id}},
		"not a token":              {Name: "x", Parent: &apitoken.Parent{Token: "garbage", Identity: id}},
		"a session's kind":         {Name: "x", Kind: caveat.KindSession, Parent: &apitoken.Parent{Token: tok, Identity: id}},
		"bootstrap from a token":   {Name: "x", Kind: caveat.KindBootstrap, Parent: &apitoken.Parent{Token: tok, Identity: id}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := e.issuer.Create(ctx, r); err == nil {
				t.Fatal("created")
			}
		})
	}
	// The operator writes kind = api, or bootstrap when asked, expiring
	// when the policy says.
	for _, k := range []caveat.Kind{"", caveat.KindBootstrap} {
		secret, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "op-" + string(k), Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		want := k
		if want == "" {
			want = caveat.KindAPI
		}
		if got := e.claimsOf(t, secret); got.Kind != want || !got.Expires.Equal(got.Created.Add(apitoken.DefaultPolicy().Default(want))) || !got.Pristine {
			t.Errorf("operator token %q: %+v", k, got)
		}
	}
}

// TestDerivedChainLimit: each generation of exchanged tokens carries one
// more parent_token; when a chain no longer fits the token limits, the
// refusal is ErrInvalid (it will never succeed), not a server error.
func TestDerivedChainLimit(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	tok := e.mint(t, macaroon.WithKind(caveat.KindCLI), macaroon.ExpiresIn(time.Hour))
	for gen := 1; ; gen++ {
		id, err := e.v.Verify(ctx, tok, caveat.Request{})
		if err != nil {
			t.Fatalf("generation %d does not verify: %v", gen, err)
		}
		m, err := e.issuer.Exchange(ctx, apitoken.Parent{Token: tok, Identity: id}, nil, 0)
		if err != nil {
			if !errors.Is(err, apitoken.ErrInvalid) || gen < 20 {
				t.Fatalf("generation %d: %v", gen, err)
			}
			return
		}
		if gen > 64 {
			t.Fatal("a chain of 64 exchanges still fits: parents are not carried")
		}
		tok = m.Token
	}
}
