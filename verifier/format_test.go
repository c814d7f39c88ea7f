package verifier_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// TestAPITokenFormat: a token in the API token format verifies as the
// macaroon inside it does; a damaged one is refused with its own reason,
// ErrChecksum, before decoding (no key or token id was learned), and the
// same text without the prefix still verifies.
func TestAPITokenFormat(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.clock.Add(time.Second)
	plain := f.mint(t, alice, macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(time.Hour))
	api := macaroon.FormatAPI(plain)
	want, err := f.v.Verify(ctx, plain, caveat.Request{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.v.Verify(ctx, api, caveat.Request{})
	if err != nil || got.TokenID != want.TokenID || got.EditorID != alice {
		t.Fatalf("formatted: %+v, %v", got, err)
	}
	other := macaroon.FormatAPI(f.mint(t, alice))
	damage := func(i int) string {
		b := []byte(api)
		b[i] ^= 1
		return string(b)
	}
	for _, tc := range []struct{ name, tok string }{
		{"typo in the macaroon", damage(len(macaroon.APIPrefix) + 40)},
		{"typo in the checksum", damage(len(api) - 2)},
		{"truncated", api[:len(api)-3]},
		{"checksum of another token", api[:len(api)-macaroon.ChecksumLen] + other[len(other)-macaroon.ChecksumLen:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(ctx, tc.tok, caveat.Request{})
			if !errors.Is(err, verifier.ErrChecksum) || !errors.Is(err, verifier.ErrMalformed) {
				t.Fatalf("err = %v", err)
			}
			if r := verifier.Reason(err); r != "token checksum mismatch" {
				t.Errorf("Reason = %q", r)
			}
			if p := verifier.ProblemFor(err); p.Status != http.StatusUnauthorized || p.Description != "token checksum mismatch: mistyped or truncated" {
				t.Errorf("ProblemFor = %+v", p)
			}
			var d *verifier.Denial
			if !errors.As(err, &d) || d.KeyID != "" || d.TokenID != "" {
				t.Errorf("denial %+v: decoded before the checksum", d)
			}
		})
	}
}

// BenchmarkVerifyWarmAPIFormat is BenchmarkVerifyWarm with the token in the
// API token format; BenchmarkVerifyColdAPIFormat is BenchmarkVerifyCold's.
func BenchmarkVerifyWarmAPIFormat(b *testing.B) {
	env := newBenchEnv(b)
	benchVerify(b, env, macaroon.FormatAPI(env.token))
}

func BenchmarkVerifyColdAPIFormat(b *testing.B) {
	env := newBenchEnv(b, verifier.WithSignatureCache(0))
	benchVerify(b, env, macaroon.FormatAPI(env.token))
}

// benchVerify verifies token once outside the timer (a signature cache,
// when there is one, then holds it), then b.N times.
func benchVerify(b *testing.B, env *benchEnv, token string) {
	ctx := context.Background()
	if _, err := env.f.v.Verify(ctx, token, caveat.Request{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := env.f.v.Verify(ctx, token, caveat.Request{}); err != nil {
			b.Fatal(err)
		}
	}
}
