package verifier_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
	mv2 "gopkg.in/macaroon.v2"
)

// FuzzVerify: Verify never panics and never returns anything but an
// identity or a *Denial; and whatever it accepts, macaroon.v2 verifies with
// the same key (the signature really chains to a live key).
func FuzzVerify(f *testing.F) {
	for _, c := range loadCorpus(f).Cases {
		f.Add(c.Token)
	}
	for _, g := range loadGoldenTokens(f) {
		f.Add(g.Token)
	}
	fx := newFixture(f)
	secrets := map[string]string{goldenKeyID: goldenSecret, fatcatKeyID: fatcatSecret}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := fx.v.Verify(context.Background(), token, corpusRequest)
		if err != nil {
			var d *verifier.Denial
			if !errors.As(err, &d) {
				t.Fatalf("error %T is not a *Denial: %v", err, err)
			}
			return
		}
		tok, perr := macaroon.Parse(token, macaroon.Limits{})
		if perr != nil {
			t.Fatalf("accepted a token that does not parse: %v", perr)
		}
		secret, ok := secrets[id.KeyID]
		if !ok {
			t.Fatalf("accepted a token under key %q", id.KeyID)
		}
		raw, _ := base64.StdEncoding.DecodeString(secret)
		var m mv2.Macaroon
		if err := m.UnmarshalBinary(tok.Binary()); err != nil {
			t.Fatal(err)
		}
		if err := m.Verify(raw, func(string) error { return nil }, nil); err != nil {
			t.Fatalf("accepted, but macaroon.v2 says: %v", err)
		}
	})
}
