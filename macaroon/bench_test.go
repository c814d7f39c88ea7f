package macaroon

import (
	"context"
	"testing"
	"time"
)

// benchToken is a token shaped like a session: a token id and the three
// caveats every token carries.
func benchToken(b *testing.B) (string, *Key) {
	key, err := NewKey("k1", StateCurrent, time.Time{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewMinter(staticKeys{key}, "")
	if err != nil {
		b.Fatal(err)
	}
	got, err := m.Mint(context.Background(), "aaaaaaaaaaaaaaaaaaaaaaaaaa", ExpiresIn(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	return got.Token, key
}

// BenchmarkKeyVerify is the HMAC chain of a decoded token, as the verifier
// runs it on a cold verification.
func BenchmarkKeyVerify(b *testing.B) {
	s, key := benchToken(b)
	tok, err := Parse(s, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := key.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is base64 decoding and canonical parsing into a reused
// buffer, as the verifier runs them on a cold verification.
func BenchmarkDecode(b *testing.B) {
	s, _ := benchToken(b)
	scratch := make([]byte, 3072)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(s, Limits{}, scratch); err != nil {
			b.Fatal(err)
		}
	}
}
