package verifier_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/benchcpu"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
	mv2 "gopkg.in/macaroon.v2"
)

// The benchmarks verify a typical token: editor_id, created, expiry (three
// caveats, so the chain is four HMACs), with the epoch in the in-process
// cache. Compare each against BenchmarkHMACChain, the physical floor, in the
// same run:
//
//	go test ./verifier -run '^$' -bench . -benchmem
//
// The comparison with golang-jwt HS256 is in the bench module (bench/), so
// that the library's go.mod does not require golang-jwt.

type benchEnv struct {
	f     *fixture
	token string
	tok   *macaroon.Token
}

func newBenchEnv(b *testing.B, opts ...verifier.Option) *benchEnv {
	f := newFixture(b)
	cache := epoch.NewCache(f.store, 0, time.Hour, epoch.WithCacheClock(f.clock.Now))
	v, err := verifier.New(f.keys, cache, append([]verifier.Option{verifier.WithClock(f.clock.Now)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	f.v = v
	f.clock.Add(time.Second)
	token := f.mint(b, alice, macaroon.ExpiresIn(time.Hour))
	tok, err := macaroon.Parse(token, macaroon.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), token, caveat.Request{}); err != nil {
		b.Fatal(err)
	}
	return &benchEnv{f: f, token: token, tok: tok}
}

// BenchmarkHMACChain is the floor: 1 + n HMAC-SHA256 over the identifier
// and caveats, starting from the derived key, with reused hash states and no
// allocation. No decoding, no parsing, no lookups.
func BenchmarkHMACChain(b *testing.B) {
	env := newBenchEnv(b)
	id := []byte(env.tok.Identifier())
	cavs := env.tok.AppendCaveats(nil)
	var key [32]byte // the derived key; its value does not change the cost
	inner, outer := sha256.New(), sha256.New()
	var pad [64]byte
	var sum [32]byte
	mac := func(h1, h2 hash.Hash, k *[32]byte, msg []byte) {
		for i := range pad {
			pad[i] = 0x36
			if i < 32 {
				pad[i] ^= k[i]
			}
		}
		h1.Reset()
		h1.Write(pad[:])
		h1.Write(msg)
		h1.Sum(sum[:0])
		for i := range pad {
			pad[i] ^= 0x36 ^ 0x5c
		}
		h2.Reset()
		h2.Write(pad[:])
		h2.Write(sum[:])
		h2.Sum(sum[:0])
	}
	// Pinned to crypto/hmac once, outside the timed loop.
	mac(inner, outer, &key, id)
	want := hmac.New(sha256.New, key[:])
	want.Write(id)
	if string(want.Sum(nil)) != string(sum[:]) {
		b.Fatal("benchmark HMAC disagrees with crypto/hmac")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		mac(inner, outer, &key, id)
		for _, c := range cavs {
			k := sum
			mac(inner, outer, &k, c)
		}
	}
}

// BenchmarkVerifyCold verifies a token never seen before: decode, key
// lookup, HMAC chain, caveat parsing and checks, epoch from the in-process
// cache. (The signature cache is off, so every iteration is cold.)
func BenchmarkVerifyCold(b *testing.B) {
	env := newBenchEnv(b, verifier.WithSignatureCache(0))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := env.f.v.Verify(ctx, env.token, caveat.Request{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyColdSession is BenchmarkVerifyCold for a session as a
// web frontend mints it: a username and a kind besides the editor, the
// creation time and the expiry (five caveats, six HMACs).
func BenchmarkVerifyColdSession(b *testing.B) {
	env := newBenchEnv(b, verifier.WithSignatureCache(0))
	token := env.f.mint(b, alice, macaroon.ExpiresIn(time.Hour), macaroon.WithUsername("alice"), macaroon.WithKind(caveat.KindSession))
	benchVerify(b, env, token)
}

// BenchmarkVerifyWarm verifies the same token again: the signature cache
// answers steps 2–5, and the key, caveats and epoch are still checked.
func BenchmarkVerifyWarm(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer benchcpu.Report(b)()
	for range b.N {
		if _, err := env.f.v.Verify(ctx, env.token, caveat.Request{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyWarmParallel(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer benchcpu.Report(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := env.f.v.Verify(ctx, env.token, caveat.Request{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMint(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := env.f.minter.Mint(ctx, alice, macaroon.ExpiresIn(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMacaroonV2Verify is what gopkg.in/macaroon.v2 costs for the same
// token: base64 decode, unmarshal, verify with a caveat callback (which here
// checks nothing, so it is a lower bound for a real verifier built on it).
func BenchmarkMacaroonV2Verify(b *testing.B) {
	env := newBenchEnv(b)
	secret, _ := base64.StdEncoding.DecodeString(goldenSecret)
	tok := b64(golden(b, "editor_id = "+alice, "time > 2026-05-01T00:00:00.000001Z", "time < 2027-01-01T00:00:00Z"))
	_ = env
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			b.Fatal(err)
		}
		var m mv2.Macaroon
		if err := m.UnmarshalBinary(raw); err != nil {
			b.Fatal(err)
		}
		if err := m.Verify(secret, func(string) error { return nil }, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWarmPolicy is BenchmarkVerifyWarm for an API token (a kind
// claim) under a lifetime policy, as amarettid verifies: the policy is
// decided when the signature is checked, not on every request.
func BenchmarkVerifyWarmPolicy(b *testing.B) {
	env := newBenchEnv(b, verifier.WithMaxLifetime(caveat.KindAPI, verifier.Lifetime{Max: 24 * time.Hour}))
	token := env.f.mint(b, alice, macaroon.ExpiresIn(time.Hour), macaroon.WithKind(caveat.KindAPI))
	benchVerify(b, env, token)
}
