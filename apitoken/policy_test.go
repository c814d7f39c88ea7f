package apitoken_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// TestPolicyLifetimes: every token the issuer creates gets its lifetime
// from the policy: the kind's default when none is asked, never over the
// maximum, and no expiry only when the policy allows it and it is asked for.
// Before the policy, an operator's token without a lifetime never expired.
func TestPolicyLifetimes(t *testing.T) {
	ctx := context.Background()
	allow := apitoken.DefaultPolicy()
	allow.AllowNoExpiry = true
	custom := apitoken.DefaultPolicy()
	custom.API, custom.Bootstrap, custom.MaxAPI = 7*day, 2*day, 30*day
	session := func(t *testing.T, e *env) *apitoken.Parent {
		tok := e.mint(t, macaroon.WithKind(caveat.KindSession), macaroon.ExpiresIn(12*time.Hour))
		id, err := e.v.Verify(ctx, tok, caveat.Request{})
		if err != nil {
			t.Fatal(err)
		}
		return &apitoken.Parent{Token: tok, Identity: id}
	}
	tests := []struct {
		name    string
		policy  apitoken.Policy
		parent  func(*testing.T, *env) *apitoken.Parent
		req     apitoken.Request
		want    time.Duration // the lifetime; 0: never expires
		wantErr error
	}{
		{name: "operator api, no lifetime asked: the default", policy: apitoken.DefaultPolicy(), want: apitoken.DefaultAPILifetime},
		{name: "operator bootstrap: the bootstrap default", policy: apitoken.DefaultPolicy(), req: apitoken.Request{Kind: caveat.KindBootstrap}, want: apitoken.DefaultBootstrapLifetime},
		{name: "operator api, configured defaults", policy: custom, want: 7 * day},
		{name: "operator bootstrap, configured defaults", policy: custom, req: apitoken.Request{Kind: caveat.KindBootstrap}, want: 2 * day},
		{name: "operator asks for a lifetime", policy: apitoken.DefaultPolicy(), req: apitoken.Request{TTL: 3 * day}, want: 3 * day},
		{name: "operator asks for the maximum", policy: apitoken.DefaultPolicy(), req: apitoken.Request{TTL: apitoken.DefaultMaxLifetime}, want: apitoken.DefaultMaxLifetime},
		{name: "operator asks for more than the maximum", policy: custom, req: apitoken.Request{TTL: 31 * day}, wantErr: apitoken.ErrPolicy},
		{name: "operator asks for no expiry, not allowed", policy: apitoken.DefaultPolicy(), req: apitoken.Request{NoExpiry: true}, wantErr: apitoken.ErrPolicy},
		{name: "operator asks for no expiry, allowed", policy: allow, req: apitoken.Request{NoExpiry: true}, want: 0},
		{name: "operator bootstrap, no expiry, allowed", policy: allow, req: apitoken.Request{Kind: caveat.KindBootstrap, NoExpiry: true}, want: 0},
		{name: "allowed, but not asked: the default", policy: allow, want: apitoken.DefaultAPILifetime},
		{name: "no expiry and a lifetime", policy: allow, req: apitoken.Request{NoExpiry: true, TTL: day}, wantErr: apitoken.ErrInvalid},
		{name: "a negative lifetime", policy: allow, req: apitoken.Request{TTL: -day}, wantErr: apitoken.ErrInvalid},
		{name: "session, no lifetime asked: the API default", policy: apitoken.DefaultPolicy(), parent: session, want: apitoken.DefaultAPILifetime},
		{name: "session, configured default", policy: custom, parent: session, want: 7 * day},
		{name: "session asks for no expiry, not allowed", policy: apitoken.DefaultPolicy(), parent: session, req: apitoken.Request{NoExpiry: true}, wantErr: apitoken.ErrPolicy},
		{name: "session asks for no expiry, allowed", policy: allow, parent: session, req: apitoken.Request{NoExpiry: true}, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			iss, err := apitoken.NewIssuer(e.store, e.minter, e.checker, apitoken.WithClock(e.clk.now), apitoken.WithPolicy(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			r := tc.req
			r.EditorID, r.Name, r.Creator = e.alice.ID, "t", "cli"
			if tc.parent != nil {
				r.Parent = tc.parent(t, e)
			}
			secret, row, err := iss.Create(ctx, r)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, apitoken.ErrInvalid) {
					t.Fatalf("err = %v, want %v (and ErrInvalid)", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cl := e.claimsOf(t, secret)
			switch {
			case tc.want == 0 && (!cl.Expires.IsZero() || !row.Expires.IsZero()):
				t.Fatalf("expires %v (row %v), want never", cl.Expires, row.Expires)
			case tc.want != 0 && (cl.Expires.Sub(cl.Created) != tc.want || !row.Expires.Equal(cl.Expires)):
				t.Fatalf("lifetime %v (row expires %v), want %v", cl.Expires.Sub(cl.Created), row.Expires, tc.want)
			}
		})
	}
}

// TestExchangePolicyDefault: an exchange without a lifetime gets the
// policy's.
func TestExchangePolicyDefault(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	p := apitoken.DefaultPolicy()
	p.Exchange = 5 * time.Minute
	iss, err := apitoken.NewIssuer(e.store, e.minter, e.checker, apitoken.WithClock(e.clk.now), apitoken.WithPolicy(p))
	if err != nil {
		t.Fatal(err)
	}
	parent, _, err := iss.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "cron"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.v.Verify(ctx, parent, caveat.Request{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := iss.Exchange(ctx, apitoken.Parent{Token: parent, Identity: id}, nil, 0)
	if err != nil || m.Expires.Sub(m.Created) != 5*time.Minute {
		t.Fatalf("exchanged: %v, %v", m, err)
	}
}

func TestPolicyValidate(t *testing.T) {
	mod := func(f func(*apitoken.Policy)) apitoken.Policy { p := apitoken.DefaultPolicy(); f(&p); return p }
	tests := []struct {
		name string
		p    apitoken.Policy
		ok   bool
	}{
		{"default", apitoken.DefaultPolicy(), true},
		{"no maximum", mod(func(p *apitoken.Policy) { p.MaxAPI = 0 }), false},
		{"API default over the maximum", mod(func(p *apitoken.Policy) { p.MaxAPI = 30 * day }), false},
		{"bootstrap over the maximum", mod(func(p *apitoken.Policy) { p.MaxAPI, p.API = 30*day, day }), false},
		{"a zero session", mod(func(p *apitoken.Policy) { p.Session = 0 }), false},
		{"a negative CLI", mod(func(p *apitoken.Policy) { p.CLI = -time.Hour }), false},
		{"exchange over an hour", mod(func(p *apitoken.Policy) { p.Exchange = 2 * time.Hour }), false},
		{"tight but consistent", mod(func(p *apitoken.Policy) { p.MaxAPI, p.API, p.Bootstrap = day, day, time.Hour }), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, apitoken.ErrPolicy) {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestPolicyParseDefault(t *testing.T) {
	tests := []struct {
		in   string
		kind caveat.Kind
		want time.Duration
		ok   bool
	}{
		{"api=720h", caveat.KindAPI, 720 * time.Hour, true},
		{"session=8h", caveat.KindSession, 8 * time.Hour, true},
		{"cli=1h", caveat.KindCLI, time.Hour, true},
		{"bootstrap=48h", caveat.KindBootstrap, 48 * time.Hour, true},
		{"exchange=5m", caveat.KindExchange, 5 * time.Minute, true},
		{"api", "", 0, false},
		{"api=30d", "", 0, false},
		{"wizard=1h", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			p := apitoken.DefaultPolicy()
			err := p.ParseDefault(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseDefault = %v", err)
			}
			if tc.ok && p.Default(tc.kind) != tc.want {
				t.Fatalf("default of %s = %v", string(tc.kind), p.Default(tc.kind))
			}
		})
	}
}

// TestStatus: one status per registry row, from everything that decides
// whether its token verifies, and verification agrees with it.
func TestStatus(t *testing.T) {
	ctx := context.Background()
	tight := apitoken.DefaultPolicy()
	tight.MaxAPI, tight.API, tight.Bootstrap = 30*day, 30*day, 30*day
	tests := []struct {
		name string
		// setup creates the token (a 90-day API token unless it says
		// otherwise) and does something to it or its editor.
		setup  func(t *testing.T, e *env, iss *apitoken.Issuer) (string, epoch.APIToken)
		policy apitoken.Policy
		want   apitoken.Status
		// reason is what verifying it says (nil: it verifies).
		reason error
	}{
		{name: "live", want: apitoken.StatusLive},
		{name: "revoked", want: apitoken.StatusRevoked, reason: epoch.ErrTokenRevoked,
			setup: after(func(t *testing.T, e *env, row epoch.APIToken) { e.store.RevokeToken(ctx, row.TokenID) })},
		{name: "expired", want: apitoken.StatusExpired, reason: verifier.ErrExpired,
			setup: after(func(t *testing.T, e *env, _ epoch.APIToken) { e.clk.add(91 * day) })},
		{name: "touched", want: apitoken.StatusRevokedByTouch, reason: epoch.ErrRevoked,
			setup: after(func(t *testing.T, e *env, _ epoch.APIToken) { e.clk.add(time.Second); e.store.Touch(ctx, e.alice.ID) })},
		{name: "locked", want: apitoken.StatusEditorLocked, reason: epoch.ErrLocked,
			setup: after(func(t *testing.T, e *env, _ epoch.APIToken) { e.store.Lock(ctx, e.alice.ID) })},
		{name: "locked, then unlocked", want: apitoken.StatusRevokedByTouch, reason: epoch.ErrRevoked,
			setup: after(func(t *testing.T, e *env, _ epoch.APIToken) {
				e.store.Lock(ctx, e.alice.ID)
				e.store.Unlock(ctx, e.alice.ID)
			})},
		{name: "deactivated", want: apitoken.StatusEditorDeactivated, reason: epoch.ErrInactive,
			setup: after(func(t *testing.T, e *env, _ epoch.APIToken) { e.store.SetActive(ctx, e.alice.ID, false) })},
		{name: "over a tightened policy", policy: tight, want: apitoken.StatusOverPolicy, reason: verifier.ErrOverPolicy},
		{name: "never expires, over the policy", policy: apitoken.DefaultPolicy(), want: apitoken.StatusOverPolicy, reason: verifier.ErrOverPolicy,
			setup: func(t *testing.T, e *env, _ *apitoken.Issuer) (string, epoch.APIToken) {
				allow := apitoken.DefaultPolicy()
				allow.AllowNoExpiry = true
				iss, _ := apitoken.NewIssuer(e.store, e.minter, e.checker, apitoken.WithClock(e.clk.now), apitoken.WithPolicy(allow))
				return create(t, iss, apitoken.Request{EditorID: e.alice.ID, Name: "t", NoExpiry: true})
			}},
		{name: "a bootstrap token over a tightened policy", policy: tight, want: apitoken.StatusOverPolicy, reason: verifier.ErrOverPolicy,
			setup: func(t *testing.T, e *env, iss *apitoken.Issuer) (string, epoch.APIToken) {
				return create(t, iss, apitoken.Request{EditorID: e.alice.ID, Name: "t", Kind: caveat.KindBootstrap})
			}},
		{name: "its parent revoked", want: apitoken.StatusRevokedByParent, reason: epoch.ErrTokenRevoked,
			setup: func(t *testing.T, e *env, iss *apitoken.Issuer) (string, epoch.APIToken) {
				parent, prow := create(t, iss, apitoken.Request{EditorID: e.alice.ID, Name: "parent"})
				id, err := e.v.Verify(ctx, parent, caveat.Request{})
				if err != nil {
					t.Fatal(err)
				}
				secret, row := create(t, iss, apitoken.Request{Name: "child", Parent: &apitoken.Parent{Token: parent, Identity: id}})
				e.store.RevokeToken(ctx, prow.TokenID)
				return secret, row
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			iss := e.issuer
			if tc.setup == nil {
				tc.setup = after(func(*testing.T, *env, epoch.APIToken) {})
			}
			secret, row := tc.setup(t, e, iss)
			if tc.policy == (apitoken.Policy{}) {
				tc.policy = apitoken.DefaultPolicy()
			}
			rows, err := apitoken.List(ctx, e.store, e.alice.ID, tc.policy, e.clk.now())
			if err != nil {
				t.Fatal(err)
			}
			var got apitoken.Row
			for _, r := range rows {
				if r.TokenID == row.TokenID {
					got = r
				}
			}
			if got.Status != tc.want || got.Live != (tc.want == apitoken.StatusLive) {
				t.Fatalf("status %q live %v, want %q", got.Status, got.Live, tc.want)
			}
			v, err := verifier.New(e.keys, e.store, append(tc.policy.VerifierOptions(),
				verifier.WithClock(e.clk.now), verifier.WithSignatureCache(0), verifier.WithChecker(e.checker))...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(ctx, secret, caveat.Request{})
			switch {
			case tc.reason == nil && err != nil:
				t.Fatalf("a live token does not verify: %v", err)
			case tc.reason != nil && !errors.Is(err, tc.reason):
				t.Fatalf("verify = %v, want %v", err, tc.reason)
			}
			// Expiring lists it only when it is live.
			exp, err := apitoken.Expiring(ctx, e.store, 400*day, tc.policy, e.clk.now())
			if err != nil {
				t.Fatal(err)
			}
			listed := false
			for _, r := range exp {
				listed = listed || r.TokenID == row.TokenID
			}
			if listed != (tc.want == apitoken.StatusLive) && !row.Expires.IsZero() {
				t.Fatalf("listed as expiring: %v, status %s", listed, got.Status)
			}
		})
	}
}

// after creates a default API token for alice, then runs f.
func after(f func(t *testing.T, e *env, row epoch.APIToken)) func(*testing.T, *env, *apitoken.Issuer) (string, epoch.APIToken) {
	return func(t *testing.T, e *env, iss *apitoken.Issuer) (string, epoch.APIToken) {
		secret, row := create(t, iss, apitoken.Request{EditorID: e.alice.ID, Name: "t"})
		f(t, e, row)
		return secret, row
	}
}

func create(t *testing.T, iss *apitoken.Issuer, r apitoken.Request) (string, epoch.APIToken) {
	t.Helper()
	secret, row, err := iss.Create(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return secret, row
}

// TestVerifierPolicyIgnoresOtherKinds: the policy's maximum is enforced on
// registered kinds (api, bootstrap) only; a CLI token, a session and a
// token without a kind may live longer.
func TestVerifierPolicyIgnoresOtherKinds(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	p := apitoken.DefaultPolicy()
	p.MaxAPI, p.API, p.Bootstrap = day, day, day
	v, err := verifier.New(e.keys, e.store, append(p.VerifierOptions(), verifier.WithClock(e.clk.now), verifier.WithChecker(e.checker))...)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts []macaroon.MintOption
		want error
	}{
		{"no kind, no expiry", nil, nil},
		{"cli, a year", []macaroon.MintOption{macaroon.WithKind(caveat.KindCLI), macaroon.ExpiresIn(365 * day)}, nil},
		{"session, never", []macaroon.MintOption{macaroon.WithKind(caveat.KindSession)}, nil},
		{"api, a day", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(day)}, nil},
		{"api, a day and a second", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(day + time.Second)}, verifier.ErrOverPolicy},
		{"api, never", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI)}, verifier.ErrOverPolicy},
		{"bootstrap, two days", []macaroon.MintOption{macaroon.WithKind(caveat.KindBootstrap), macaroon.ExpiresIn(2 * day)}, verifier.ErrOverPolicy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(ctx, e.mint(t, tc.opts...), caveat.Request{})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// An over-policy API token attenuated by its holder to a shorter
	// expiry verifies: its lifetime is its earliest expiry.
	long := e.mint(t, macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(30*day))
	short := attenuate(t, long, caveat.ExpiresAt(e.clk.now().Add(time.Hour)))
	if _, err := v.Verify(ctx, short, caveat.Request{}); err != nil {
		t.Fatalf("attenuated within the policy: %v", err)
	}
	if p := verifier.ProblemFor(func() error { _, err := v.Verify(ctx, long, caveat.Request{}); return err }()); p.Status != 401 || p.Code != "invalid_token" || p.Description != "token lifetime exceeds the policy" {
		t.Fatalf("problem %+v", p)
	}
}

// TestPolicyConfigure: what operators set, applied the one way the CLI,
// amarettid and the examples share.
func TestPolicyConfigure(t *testing.T) {
	day, zero, twoYears := 24*time.Hour, time.Duration(0), 2*365*24*time.Hour
	for _, tc := range []struct {
		name     string
		maxAPI   *time.Duration
		never    bool
		defaults []string
		check    func(apitoken.Policy) bool
		ok       bool
	}{
		{"defaults", nil, false, nil, func(p apitoken.Policy) bool { return p == apitoken.DefaultPolicy() }, true},
		{"a tighter maximum lowers the defaults", &day, false, nil, func(p apitoken.Policy) bool { return p.MaxAPI == day && p.API == day && p.Bootstrap == day }, true},
		{"a looser maximum keeps the defaults", &twoYears, true, nil, func(p apitoken.Policy) bool {
			return p.MaxAPI == twoYears && p.API == apitoken.DefaultPolicy().API && p.AllowNoExpiry
		}, true},
		{"a default", nil, false, []string{"cli=1h"}, func(p apitoken.Policy) bool { return p.CLI == time.Hour }, true},
		{"a zero maximum", &zero, false, nil, nil, false},
		{"a default over the maximum", &day, false, []string{"api=48h"}, nil, false},
		{"a malformed default", nil, false, []string{"api"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := apitoken.DefaultPolicy().Configure(tc.maxAPI, tc.never, tc.defaults)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, apitoken.ErrPolicy) {
				t.Fatalf("error %v, want ok=%v wrapping ErrPolicy", err, tc.ok)
			}
			if tc.ok && !tc.check(p) {
				t.Fatalf("policy %+v", p)
			}
		})
	}
}
