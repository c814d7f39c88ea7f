package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	keys    *macaroon.KeyStore
	checker *caveat.Checker
	minter  *macaroon.Minter
	clk     *clock
	store   *sqlite.Store
	issuer  *apitoken.Issuer
	v       *verifier.Verifier
	alice   epoch.Editor
	bot     epoch.Editor
	admin   epoch.Editor
}

func setup(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "a.db"), sqlite.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{keys: keys, clk: clk, store: store}
	e.alice, _ = store.Create(ctx, epoch.NewEditor{Username: "alice"})
	e.bot, _ = store.Create(ctx, epoch.NewEditor{Username: "bot", Role: epoch.RoleBot, Bot: true})
	e.admin, _ = store.Create(ctx, epoch.NewEditor{Username: "root", Role: epoch.RoleAdmin})
	clk.add(time.Second)
	// One checker for the minter, the issuer and the verifier, knowing an
	// application's own caveat, as in a daemon that registers one.
	if e.checker, err = caveat.NewChecker(caveat.WithCaveat("tenant", parseTenant)); err != nil {
		t.Fatal(err)
	}
	if e.minter, err = macaroon.NewMinter(keys, "api.example.org", macaroon.WithMintClock(clk.now), macaroon.WithMintChecker(e.checker)); err != nil {
		t.Fatal(err)
	}
	if e.issuer, err = apitoken.NewIssuer(store, e.minter, e.checker, apitoken.WithClock(clk.now)); err != nil {
		t.Fatal(err)
	}
	e.v, _ = verifier.New(keys, store, verifier.WithClock(clk.now), verifier.WithSignatureCache(0), verifier.WithChecker(e.checker))
	return e
}

// tenant is an application's own caveat, "tenant = acme": only paths
// under /tenants/acme.
type tenant string

func (c tenant) String() string { return "tenant = " + string(c) }

func (c tenant) Prohibits(req *caveat.Request) error {
	if !strings.HasPrefix(req.Path, "/tenants/"+string(c)+"/") {
		return fmt.Errorf("%w: another tenant", caveat.ErrProhibited)
	}
	return nil
}

func parseTenant(op, value string) (caveat.Caveat, error) {
	if op != "=" {
		return nil, errors.New("tenant takes =")
	}
	return tenant(value), nil
}

func TestCreate(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	secret, row, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "laptop", Description: "my laptop", Rights: []string{"read", "edit"}, TTL: 24 * time.Hour, Creator: e.alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.v.Verify(ctx, secret, caveat.Request{Rights: []string{"edit"}})
	if err != nil || id.TokenID != row.TokenID || strings.Join(id.Rights, ",") != "edit,read" {
		t.Fatalf("created token: %+v %v", id, err)
	}
	stored, _ := e.store.Token(ctx, row.TokenID)
	if stored.Name != "laptop" || !stored.Expires.Equal(row.Expires) || stored.Expires.IsZero() {
		t.Fatalf("row %+v", stored)
	}
	if _, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "laptop"}); !errors.Is(err, epoch.ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.bot.ID, Name: "sneaky", Rights: []string{"admin:touch"}}); !errors.Is(err, apitoken.ErrRightNotAllowed) {
		t.Fatalf("bot asking for an admin right: %v", err)
	}
	if _, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.admin.ID, Name: "ops", Rights: []string{"admin:touch"}}); err != nil {
		t.Fatalf("admin with an admin right: %v", err)
	}
	if _, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: "nobody", Name: "x"}); !errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("unknown editor: %v", err)
	}
	if _, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "bad", Rights: []string{"Bad Right"}}); !errors.Is(err, apitoken.ErrInvalid) {
		t.Fatalf("invalid right: %v", err)
	}
}

func TestExchange(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	parent, row, _ := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "cron", Rights: []string{"read", "edit"}})
	pid, err := e.v.Verify(ctx, parent, caveat.Request{})
	if err != nil {
		t.Fatal(err)
	}
	access, err := e.issuer.Exchange(ctx, apitoken.Parent{Token: parent, Identity: pid}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := access.Expires.Sub(access.Created); got < 15*time.Minute-time.Second || got > 15*time.Minute {
		t.Fatalf("default lifetime %v", got)
	}
	// Both the API token and the exchanged one are in the API token format.
	for name, tok := range map[string]string{"created": parent, "exchanged": access.Token} {
		if _, err := macaroon.CheckAPIFormat(tok); err != nil {
			t.Errorf("%s token: %v", name, err)
		}
	}
	aid, err := e.v.Verify(ctx, access.Token, caveat.Request{})
	if err != nil || strings.Join(aid.Rights, ",") != "edit,read" || aid.EditorID != e.alice.ID {
		t.Fatalf("access token: %+v %v", aid, err)
	}
	narrow, err := e.issuer.Exchange(ctx, apitoken.Parent{Token: parent, Identity: pid}, []string{"read"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if nid, _ := e.v.Verify(ctx, narrow.Token, caveat.Request{}); strings.Join(nid.Rights, ",") != "read" {
		t.Fatalf("narrowed rights %v", nid.Rights)
	}
	if _, err := e.issuer.Exchange(ctx, apitoken.Parent{Token: parent, Identity: pid}, []string{"delete"}, 0); !errors.Is(err, apitoken.ErrRightNotAllowed) {
		t.Fatalf("exchange for more rights: %v", err)
	}
	if long, _ := e.issuer.Exchange(ctx, apitoken.Parent{Token: parent, Identity: pid}, nil, 48*time.Hour); long.Expires.Sub(long.Created) > time.Hour {
		t.Fatal("exchange beyond the maximum lifetime")
	}
	// It expires on time.
	e.clk.add(time.Minute)
	if _, err := e.v.Verify(ctx, narrow.Token, caveat.Request{}); !errors.Is(err, verifier.ErrExpired) {
		t.Fatalf("after its minute: %v", err)
	}
	// Revoking the parent revokes what was exchanged from it, and what was
	// exchanged from that.
	aid, _ = e.v.Verify(ctx, access.Token, caveat.Request{})
	grandchild, err := e.issuer.Exchange(ctx, apitoken.Parent{Token: access.Token, Identity: aid}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.RevokeToken(ctx, row.TokenID); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"child": access.Token, "grandchild": grandchild.Token} {
		if _, err := e.v.Verify(ctx, tok, caveat.Request{}); !errors.Is(err, epoch.ErrTokenRevoked) {
			t.Errorf("%s after the parent's revocation: %v", name, err)
		}
	}
}

type recorder struct {
	mu      sync.Mutex
	batches [][]epoch.Use
}

func (r *recorder) RecordUses(_ context.Context, uses []epoch.Use) error {
	r.mu.Lock()
	r.batches = append(r.batches, uses)
	r.mu.Unlock()
	return nil
}

func TestTracker(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	_, row, _ := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "laptop"})
	tr := apitoken.NewTracker(e.store, time.Hour, nil)
	for i := 0; i < 100; i++ {
		tr.Seen(row.TokenID, "192.0.2.1")
	}
	if got, _ := e.store.Token(ctx, row.TokenID); !got.LastUsed.IsZero() {
		t.Fatal("a use reached the store before a flush")
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Token(ctx, row.TokenID)
	if got.LastUsed.IsZero() || got.LastUsedFrom != "192.0.2.1" {
		t.Fatalf("after flush: %+v", got)
	}
	// At most once per token per interval.
	rec := &recorder{}
	tr2 := apitoken.NewTracker(rec, time.Hour, nil)
	for i := 0; i < 1000; i++ {
		tr2.Seen("A", "x")
		tr2.Seen("B", "y")
	}
	tr2.Flush(ctx)
	tr2.Seen("A", "x")
	tr2.Flush(ctx)
	if len(rec.batches) != 2 || len(rec.batches[0]) != 2 || len(rec.batches[1]) != 0 {
		t.Fatalf("batches %v", rec.batches)
	}
	// Run flushes on its interval and when stopped.
	rec3 := &recorder{}
	tr3 := apitoken.NewTracker(rec3, 20*time.Millisecond, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { tr3.Run(runCtx); close(done) }()
	tr3.Seen("C", "z")
	time.Sleep(60 * time.Millisecond)
	stop()
	<-done
	rec3.mu.Lock()
	defer rec3.mu.Unlock()
	n := 0
	for _, b := range rec3.batches {
		n += len(b)
	}
	if n != 1 {
		t.Fatalf("Run wrote %d uses", n)
	}
}

// TestTrackerDue: a use is due once per token per interval, and never for
// no token; Seen and SeenToken note only what is due.
func TestTrackerDue(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	tr := apitoken.NewTracker(rec, time.Hour, nil)
	steps := []struct {
		name string
		id   string
		seen bool // note a use after asking
		want bool
	}{
		{"no token ID", "", true, false},
		{"first use", "A", true, true},
		{"again within the interval", "A", true, false},
		{"another token", "B", false, true},
		{"asking notes nothing", "B", true, true},
		{"noted", "B", false, false},
	}
	for _, st := range steps {
		if got := tr.Due(st.id); got != st.want {
			t.Fatalf("%s: Due(%q) = %v, want %v", st.name, st.id, got, st.want)
		}
		if st.seen {
			tr.Seen(st.id, "192.0.2.1")
		}
	}
	tr.Flush(ctx)
	if len(rec.batches) != 1 || len(rec.batches[0]) != 2 {
		t.Fatalf("batches %v, want one of A and B", rec.batches)
	}
	// After a flush the notes stay: still not due within the interval.
	if tr.Due("A") {
		t.Fatal("A due again within the interval after a flush")
	}
}

// BenchmarkVerifyTracking: verification with last-use tracking on and off
// (the tracker notes the use in memory; the store is written by Run).
func BenchmarkVerifyTracking(b *testing.B) {
	ctx := context.Background()
	e := setup(b)
	secret, _, _ := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "laptop"})
	// A verifier as a service runs one: signature and epoch caches warm.
	v, _ := verifier.New(e.keys, epoch.NewCache(e.store, 0, time.Hour))
	tr := apitoken.NewTracker(e.store, time.Minute, nil)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go tr.Run(runCtx) // as a daemon runs it: the coarse clock ticks
	for _, track := range []bool{false, true} {
		name := "off"
		if track {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				id, err := v.Verify(ctx, secret, caveat.Request{})
				if err != nil {
					b.Fatal(err)
				}
				if track {
					tr.Seen(id.TokenID, "192.0.2.1")
				}
			}
		})
	}
}

// TestExchangeKeepsRestrictions: a token exchanged from one limited to an
// endpoint and a method is limited the same way (it used to be re-minted
// with the rights alone).
func TestExchangeKeepsRestrictions(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	secret, row, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "scoped", Endpoint: "list_things", Rights: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.store.Token(ctx, row.TokenID); got.Endpoint != "list_things" {
		t.Fatalf("registry endpoint %q", got.Endpoint)
	}
	parent, err := macaroon.Attenuate(secret, caveat.Methods{"GET"}, caveat.PathPrefix("/api"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := caveat.Request{Endpoint: "list_things", Method: "GET", Path: "/api/things"}
	pid, err := e.v.Verify(ctx, parent, allowed)
	if err != nil {
		t.Fatal(err)
	}
	child, err := e.issuer.Exchange(ctx, apitoken.Parent{Token: parent, Identity: pid}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Verify(ctx, child.Token, allowed); err != nil {
		t.Fatalf("child, allowed request: %v", err)
	}
	for name, req := range map[string]caveat.Request{
		"other endpoint": {Endpoint: "delete_things", Method: "GET", Path: "/api/things"},
		"other method":   {Endpoint: "list_things", Method: "POST", Path: "/api/things"},
		"other path":     {Endpoint: "list_things", Method: "GET", Path: "/admin"},
		"other right":    {Endpoint: "list_things", Method: "GET", Path: "/api/things", Rights: []string{"edit"}},
	} {
		if _, err := e.v.Verify(ctx, child.Token, req); !errors.Is(err, verifier.ErrCaveatNotSatisfied) {
			t.Errorf("child, %s: %v", name, err)
		}
	}
	if _, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "bad", Endpoint: "no spaces allowed"}); err == nil {
		t.Fatal("invalid endpoint accepted")
	}
}

// TestCreateNormalizes: the row records the rights the token carries, and
// the one name rule (the store's) applies.
func TestCreateNormalizes(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	secret, row, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "dup", Rights: []string{"read", "edit", "read"}})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := e.store.Token(ctx, row.TokenID)
	id, _ := e.v.Verify(ctx, secret, caveat.Request{})
	if strings.Join(row.Rights, ",") != "edit,read" || strings.Join(stored.Rights, ",") != "edit,read" || strings.Join(id.Rights, ",") != "edit,read" {
		t.Fatalf("row %v, stored %v, token %v", row.Rights, stored.Rights, id.Rights)
	}
	for _, name := range []string{"", "a\nb", "c1\u0085control", strings.Repeat("x", 65)} {
		if _, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: name}); !errors.Is(err, apitoken.ErrInvalid) {
			t.Errorf("name %q: %v", name, err)
		}
	}
}
