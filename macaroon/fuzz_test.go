package macaroon

import (
	"bytes"
	"encoding/base64"
	"testing"

	mv2 "gopkg.in/macaroon.v2"
)

// FuzzParse is a differential test against gopkg.in/macaroon.v2: every
// token Parse accepts, macaroon.v2 accepts too, with the same fields, and
// re-encodes to the same bytes (but for an empty location field, which it
// drops). Parse never panics.
func FuzzParse(f *testing.F) {
	for _, v := range loadGolden(f) {
		f.Add(v.Token)
	}
	f.Add("")
	f.Add("AgEA")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s, Limits{})
		if err != nil {
			return
		}
		var m mv2.Macaroon
		if err := m.UnmarshalBinary(tok.raw); err != nil {
			t.Fatalf("we accept, macaroon.v2 rejects: %v", err)
		}
		if !bytes.Equal(m.Id(), tok.bytes(tok.id)) || m.Location() != tok.Location() || !bytes.Equal(m.Signature(), tok.sig[:]) {
			t.Fatal("fields differ from macaroon.v2's")
		}
		cavs := m.Caveats()
		if len(cavs) != tok.NumCaveats() {
			t.Fatalf("%d caveats, macaroon.v2 sees %d", tok.NumCaveats(), len(cavs))
		}
		for i, c := range cavs {
			if !bytes.Equal(c.Id, tok.caveat(i)) || c.VerificationId != nil || c.Location != "" {
				t.Fatalf("caveat %d differs", i)
			}
		}
		re, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := tok.raw
		if tok.hasLoc && tok.location.off == tok.location.end {
			want = append([]byte{2}, tok.raw[3:]...) // drop the empty location packet
		}
		if !bytes.Equal(re, want) {
			t.Fatalf("not canonical:\nours %x\nv2   %x", want, re)
		}
		if err := checkSignedText(tok); err != nil {
			t.Fatal(err)
		}
		if tok.Encode() != base64.RawURLEncoding.EncodeToString(tok.raw) {
			t.Fatal("Encode does not give back the decoded bytes")
		}
	})
}
