package verifier_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

func TestVerifyIdentity(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.clock.Add(time.Second)
	minted, err := f.minter.Mint(ctx, touchedEditor, macaroon.ExpiresIn(time.Hour), macaroon.WithCaveats(caveat.Rights{"read", "edit"}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.v.Verify(ctx, minted.Token, caveat.Request{Rights: []string{"edit"}})
	if err != nil {
		t.Fatal(err)
	}
	want := verifier.Identity{
		EditorID: touchedEditor, Role: epoch.RoleAdmin, TokenID: minted.TokenID, KeyID: minted.KeyID,
		Created: minted.Created, Expires: minted.Expires,
	}
	want.Rights = []string{"read", "edit"}
	if !reflect.DeepEqual(id, want) || !id.Can("read") || id.Can("admin") {
		t.Fatalf("identity %+v, want %+v with rights read,edit", id, want)
	}
	// The identity's rights are the caller's to keep: changing them does
	// not change the next answer.
	id.Rights[0] = "admin"
	again, _ := f.v.Verify(ctx, minted.Token, caveat.Request{})
	if again.Can("admin") {
		t.Fatal("identity rights share memory with the cache")
	}
	unrestricted, err := f.v.Verify(ctx, f.mint(t, alice), caveat.Request{Rights: []string{"anything"}})
	if err != nil || unrestricted.Rights != nil || !unrestricted.Can("anything") {
		t.Fatalf("token without rights caveat: %+v, %v", unrestricted, err)
	}
	if _, err := f.v.Verify(ctx, minted.Token, caveat.Request{Rights: []string{"delete"}}); !errors.Is(err, verifier.ErrCaveatNotSatisfied) {
		t.Fatalf("right not granted: %v", err)
	}
	named, err := f.minter.Mint(ctx, alice, macaroon.WithUsername("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := f.v.Verify(ctx, named.Token, caveat.Request{}); err != nil || id.Username != "Alice" {
		t.Fatalf("username claim: %+v, %v", id, err)
	}
}

// TestRevocation: touch, touch everyone, lock and unlock, seen through the
// verifier with its epoch cache.
func TestRevocation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cache := epoch.NewCache(f.store, 0, time.Minute, epoch.WithCacheClock(f.clock.Now))
	v, err := verifier.New(f.keys, cache, verifier.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	check := func(token string, want error) {
		t.Helper()
		_, err := v.Verify(ctx, token, caveat.Request{})
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("Verify = %v, want %v", err, want)
		}
	}
	// tick moves both clocks together.
	tick := func(d time.Duration) {
		f.clock.Add(d)
		f.storeClock.Set(f.clock.Now())
	}

	old := f.mint(t, alice)
	check(old, nil)
	tick(time.Second)
	if _, err := f.store.Touch(ctx, alice); err != nil {
		t.Fatal(err)
	}
	check(old, nil) // served from the epoch cache until it is invalidated or expires
	cache.Invalidate(alice)
	check(old, verifier.ErrRevoked)
	check(f.mint(t, alice), verifier.ErrRevoked) // same microsecond as the touch
	tick(time.Microsecond)
	fresh := f.mint(t, alice)
	check(fresh, nil) // right after the touch
	other := f.mint(t, fatcatEditor)
	check(other, nil)

	tick(time.Second)
	if _, err := f.store.TouchAll(ctx); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate()
	check(fresh, verifier.ErrRevoked)
	check(other, verifier.ErrRevoked)

	tick(time.Second)
	if _, err := f.store.Lock(ctx, touchedEditor); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(touchedEditor)
	tick(time.Second)
	duringLock := f.mint(t, touchedEditor)
	check(duringLock, epoch.ErrLocked)
	tick(time.Second)
	if _, err := f.store.Unlock(ctx, touchedEditor); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(touchedEditor)
	check(duringLock, verifier.ErrRevoked)
	tick(time.Microsecond)
	check(f.mint(t, touchedEditor), nil)
}

// TestClockSkew: minter and verifier clocks offset by ±2 s. The numbers
// here are the bound the README states.
func TestClockSkew(t *testing.T) {
	ctx := context.Background()
	real0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		// offset of the minter's clock from the verifier's and store's.
		offset time.Duration
		// minted is when (in real time, relative to the touch) the token
		// was minted.
		minted time.Duration
		want   error
	}{
		{"minter 2s ahead, minted 1s before the touch: survives it", 2 * time.Second, -time.Second, nil},
		{"minter 2s ahead, minted 2s before the touch: revoked", 2 * time.Second, -2 * time.Second, verifier.ErrRevoked},
		{"minter 2s ahead, minted 3s before the touch: revoked", 2 * time.Second, -3 * time.Second, verifier.ErrRevoked},
		{"minter 2s behind, minted 1s after the touch: revoked (safe side)", -2 * time.Second, time.Second, verifier.ErrRevoked},
		{"minter 2s behind, minted 3s after the touch: valid", -2 * time.Second, 3 * time.Second, nil},
		{"clocks agree, minted 1µs after the touch: valid", 0, time.Microsecond, nil},
		{"clocks agree, minted in the touch's microsecond: revoked", 0, 0, verifier.ErrRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			touchAt := real0
			f.storeClock.Set(touchAt)
			if _, err := f.store.Touch(ctx, alice); err != nil {
				t.Fatal(err)
			}
			minterClock := newClock(touchAt.Add(tc.minted).Add(tc.offset))
			m, _ := macaroon.NewMinter(f.keys, "x", macaroon.WithMintClock(minterClock.Now))
			minted, err := m.Mint(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			// Verified 5 s after the touch, past any skew rejection.
			v, _ := verifier.New(f.keys, f.store, verifier.WithClock(func() time.Time { return touchAt.Add(5 * time.Second) }))
			_, err = v.Verify(ctx, minted.Token, caveat.Request{})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("skew bounds how far ahead a token may claim to be", func(t *testing.T) {
		f := newFixture(t)
		ahead := newClock(fixNow.Add(2 * time.Second))
		m, _ := macaroon.NewMinter(f.keys, "x", macaroon.WithMintClock(ahead.Now))
		tok, _ := m.Mint(ctx, alice)
		for _, s := range []struct {
			skew time.Duration
			want error
		}{{5 * time.Second, nil}, {2 * time.Second, nil}, {time.Second, verifier.ErrNotYetValid}} {
			c, _ := caveat.NewChecker(caveat.WithSkew(s.skew))
			v, _ := verifier.New(f.keys, f.store, verifier.WithClock(f.clock.Now), verifier.WithChecker(c))
			_, err := v.Verify(ctx, tok.Token, caveat.Request{})
			if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
				t.Errorf("skew %v: Verify = %v, want %v", s.skew, err, s.want)
			}
		}
	})
}

// TestFatcatCompatibility: a token in fatcat's format verifies once its key
// is imported and its editor exists with an early epoch; there is no
// one-second grace before the epoch.
func TestFatcatCompatibility(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var fatcat, fatcatExpiring string
	for _, v := range loadGoldenTokens(t) {
		switch v.Name {
		case "fatcat":
			fatcat = v.Token
		case "fatcat-expiring":
			fatcatExpiring = v.Token
		}
	}
	for _, tok := range []string{fatcat, fatcatExpiring} {
		id, err := f.v.Verify(ctx, tok, caveat.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if id.EditorID != fatcatEditor || id.TokenID != "" || id.KeyID != fatcatKeyID || id.Role != epoch.RoleBot {
			t.Errorf("identity %+v", id)
		}
	}
	// fatcat allowed a token created up to 1 s before the epoch; we do not.
	exact := b64(sign(t, fatcatSecret, fatcatKeyID, "editor_id = "+alice, "time > 2026-01-01T00:00:00Z"))
	if _, err := f.v.Verify(ctx, exact, caveat.Request{}); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("token created at the epoch: %v", err)
	}
	after := b64(sign(t, fatcatSecret, fatcatKeyID, "editor_id = "+alice, "time > 2026-01-01T00:00:01Z"))
	if _, err := f.v.Verify(ctx, after, caveat.Request{}); err != nil {
		t.Fatalf("token created after the epoch: %v", err)
	}
}

func TestSignatureCache(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := b64(golden(t, caveatsOf()...))
	if _, err := f.v.Verify(ctx, tok, corpusRequest); err != nil {
		t.Fatal(err)
	}
	// A cached token whose key is retired afterwards is refused.
	if _, err := f.keys.Retire(goldenKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, tok, corpusRequest); !errors.Is(err, verifier.ErrRetiredKey) {
		t.Fatalf("cached token under a retired key: %v", err)
	}
	// The cache is keyed by the exact text: the same token with a different
	// signature is a different entry, and fails.
	g := newFixture(t)
	good := golden(t, caveatsOf()...)
	if _, err := g.v.Verify(ctx, b64(good), corpusRequest); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte{}, good...)
	bad[len(bad)-1] ^= 0x80
	if _, err := g.v.Verify(ctx, b64(bad), corpusRequest); !errors.Is(err, verifier.ErrBadSignature) {
		t.Fatalf("tampered signature after the genuine one was cached: %v", err)
	}
	// Caveats and the epoch are still checked on a cache hit.
	exp := b64(golden(t, caveatsOf("time < 2026-06-01T12:00:01Z")...))
	if _, err := g.v.Verify(ctx, exp, corpusRequest); err != nil {
		t.Fatal(err)
	}
	g.clock.Add(time.Second)
	if _, err := g.v.Verify(ctx, exp, corpusRequest); !errors.Is(err, verifier.ErrExpired) {
		t.Fatalf("cached token past its expiry: %v", err)
	}
	if _, err := verifier.New(f.keys, f.store, verifier.WithSignatureCache(-1)); err == nil {
		t.Fatal("negative cache size accepted")
	}
}

type failingStore struct{}

func (failingStore) State(context.Context, string) (epoch.State, error) {
	return epoch.State{}, errors.New("database is locked")
}

func TestStoreUnavailable(t *testing.T) {
	f := newFixture(t)
	v, _ := verifier.New(f.keys, failingStore{}, verifier.WithClock(f.clock.Now))
	_, err := v.Verify(context.Background(), f.mint(t, alice), caveat.Request{})
	if !errors.Is(err, verifier.ErrUnavailable) || verifier.ProblemFor(err).Status != 503 {
		t.Fatalf("Verify with the store down = %v", err)
	}
	// A closed SQLite store is a real failure of the same kind.
	f.store.Close()
	if _, err := f.v.Verify(context.Background(), f.mint(t, alice), caveat.Request{}); !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("Verify with the store closed = %v", err)
	}
}

type panicky struct{}

func (panicky) String() string                  { return "boom = 1" }
func (panicky) Prohibits(*caveat.Request) error { panic("checker bug") }

func TestPanicIsDenial(t *testing.T) {
	f := newFixture(t)
	c, err := caveat.NewChecker(caveat.WithCaveat("boom", func(op, v string) (caveat.Caveat, error) { return panicky{}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := verifier.New(f.keys, f.store, verifier.WithClock(f.clock.Now), verifier.WithChecker(c))
	tok := b64(golden(t, caveatsOf("boom = 1")...))
	id, err := v.Verify(context.Background(), tok, caveat.Request{})
	if !errors.Is(err, verifier.ErrInternal) || id.EditorID != "" {
		t.Fatalf("Verify = %+v, %v; want ErrInternal", id, err)
	}
	if p := verifier.ProblemFor(err); p.Status != 401 {
		t.Fatalf("panic answered with %d", p.Status)
	}
}

func TestLimitsConfigurable(t *testing.T) {
	f := newFixture(t)
	v, _ := verifier.New(f.keys, f.store, verifier.WithClock(f.clock.Now), verifier.WithLimits(macaroon.Limits{MaxCaveats: 2}))
	if _, err := v.Verify(context.Background(), b64(golden(t, caveatsOf("method = GET")...)), corpusRequest); !errors.Is(err, verifier.ErrMalformed) {
		t.Fatalf("3 caveats with a limit of 2: %v", err)
	}
	if _, err := v.Verify(context.Background(), b64(golden(t, caveatsOf()...)), corpusRequest); err != nil {
		t.Fatalf("2 caveats with a limit of 2: %v", err)
	}
}
