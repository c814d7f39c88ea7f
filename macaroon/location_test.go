package macaroon_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/amaretti-auth/amaretti/macaroon"
	mv2 "gopkg.in/macaroon.v2"
)

// The location is unsigned and decides nothing, but one that is not UTF-8
// is malformed: pymacaroons cannot decode such a token, and amaretti
// accepts nothing a reference implementation refuses
// (verifier.TestReferenceImplementations).
func TestLocationMustBeUTF8(t *testing.T) {
	for _, tc := range []struct {
		name, location string
		ok             bool
	}{
		{"ASCII", "api.example.org", true},
		{"empty", "", true},
		{"UTF-8", "api.exämple.org", true},
		{"invalid byte", "api.example.org\xff", false},
		{"lone continuation byte", "\x80", false},
		{"truncated sequence", "api.ex\xc3", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mv2.New(make([]byte, 32), []byte("k:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE"), tc.location, mv2.V2)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.AddFirstPartyCaveat([]byte("a = b")); err != nil {
				t.Fatal(err)
			}
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := macaroon.Parse(base64.RawURLEncoding.EncodeToString(b), macaroon.Limits{})
			if tc.ok && (err != nil || tok.Location() != tc.location) {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.ok && !errors.Is(err, macaroon.ErrMalformed) {
				t.Fatalf("Parse = %v, want malformed", err)
			}
		})
	}
}
