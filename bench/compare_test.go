// Package bench compares amaretti's verification with what users pick
// instead, golang-jwt HS256, and with the physical floor, the raw HMAC-SHA256
// chain, in one run. It is its own module so that the library's go.mod does
// not require golang-jwt:
//
//	cd bench && go test -run '^$' -bench . -benchmem
package bench

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

const (
	keyID    = "bench-2026"
	secret   = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31
	editor   = "aaaaaaaaaaaaaaaaaaaaaaaaaa"
	location = "api.example.org"
	tokenID  = "3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE"
)

// contender verifies one token of its own kind; every contender checks a
// typical token: editor, created, expiry.
type contender struct {
	name string
	// verify verifies the token and returns nil only when it is valid.
	verify func(token string) error
	// token is a valid token; tampered the same with its signature changed.
	token, tampered string
}

// contenders builds the verifiers compared: amaretti cold (signature cache
// off: decode, key lookup, HMAC chain, caveats, epoch from the in-process
// cache) and warm (the same token again), and golang-jwt v5 HS256 parsing
// and verifying comparable registered claims.
func contenders(tb testing.TB) []contender {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return created.Add(time.Second) }
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := keys.Import(keyID, secret); err != nil {
		tb.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "amaretti.db"), sqlite.WithClock(func() time.Time { return created.Add(-time.Hour) }))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	if _, err := store.Create(ctx, epoch.NewEditor{ID: editor, Username: "alice"}); err != nil {
		tb.Fatal(err)
	}
	minter, err := macaroon.NewMinter(keys, location, macaroon.WithMintClock(func() time.Time { return created }))
	if err != nil {
		tb.Fatal(err)
	}
	minted, err := minter.Mint(ctx, editor, macaroon.ExpiresIn(time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	amaretti := func(opts ...verifier.Option) func(string) error {
		cache := epoch.NewCache(store, 0, time.Hour, epoch.WithCacheClock(now))
		v, err := verifier.New(keys, cache, append([]verifier.Option{verifier.WithClock(now)}, opts...)...)
		if err != nil {
			tb.Fatal(err)
		}
		return func(token string) error {
			_, err := v.Verify(ctx, token, caveat.Request{})
			return err
		}
	}

	jwtKey := []byte("0123456789abcdef0123456789abcdef")
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: editor, IssuedAt: jwt.NewNumericDate(created), ExpiresAt: jwt.NewNumericDate(created.Add(time.Hour)),
		ID: tokenID, Issuer: location,
	}).SignedString(jwtKey)
	if err != nil {
		tb.Fatal(err)
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(now))
	keyFunc := func(*jwt.Token) (any, error) { return jwtKey, nil }

	return []contender{
		{name: "amaretti-verify-cold", verify: amaretti(verifier.WithSignatureCache(0)), token: minted.Token, tampered: tamper(minted.Token)},
		{name: "amaretti-verify-warm", verify: amaretti(), token: minted.Token, tampered: tamper(minted.Token)},
		{name: "golang-jwt-hs256", verify: func(token string) error {
			var claims jwt.RegisteredClaims
			_, err := parser.ParseWithClaims(token, &claims, keyFunc)
			return err
		}, token: signed, tampered: tamper(signed)},
	}
}

// tamperAt is where tamper changes a token: the fifth base64url character
// from the end lies in the signature of both a macaroon and a JWT, and all
// six of its bits are data (the last character's low bits may be padding).
const tamperAt = 5

// tamper changes the token's signature by one base64url character.
func tamper(token string) string {
	i := len(token) - tamperAt
	swap := byte('A')
	if token[i] == 'A' {
		swap = 'B'
	}
	return token[:i] + string(swap) + token[i+1:]
}

// TestContenders pins that every benchmarked contender really verifies: it
// accepts its valid token and refuses the tampered one, so the benchmark
// compares work of the same kind.
func TestContenders(t *testing.T) {
	for _, c := range contenders(t) {
		t.Run(c.name, func(t *testing.T) {
			if err := c.verify(c.token); err != nil {
				t.Fatalf("valid token refused: %v", err)
			}
			if len(c.tampered) != len(c.token) || c.tampered == c.token {
				t.Fatal("tamper did not change the token")
			}
			if err := c.verify(c.tampered); err == nil {
				t.Fatal("tampered token accepted")
			}
		})
	}
}

// BenchmarkCompare runs every contender and the raw HMAC chain on the same
// token shape in one run: compare each row with hmac-chain, the floor.
func BenchmarkCompare(b *testing.B) {
	cs := contenders(b)
	b.Run("hmac-chain", func(b *testing.B) { benchmarkHMACChain(b, cs[0].token) })
	for _, c := range cs {
		b.Run(c.name, func(b *testing.B) {
			if err := c.verify(c.token); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := c.verify(c.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchmarkHMACChain is the floor: 1 + n HMAC-SHA256 over the identifier
// and caveats of token, the one amaretti verifies, starting from a derived
// key, with reused hash states and no allocation. No decoding, no parsing,
// no lookups.
func benchmarkHMACChain(b *testing.B, token string) {
	tok, err := macaroon.Parse(token, macaroon.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	id := []byte(tok.Identifier())
	cavs := tok.AppendCaveats(nil)
	if len(cavs) != 3 {
		b.Fatalf("token has %d caveats, want 3 (editor, created, expiry)", len(cavs))
	}
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
	if !hmac.Equal(want.Sum(nil), sum[:]) {
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
