package verifier_test

import (
	"context"
	"strings"
	"testing"
	"unsafe"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// TestIdentityDoesNotPinToken: the strings of an Identity lie in one
// block of their own, exactly as long as they are together, and not in the
// token's text: a caller keeping an editor id keeps a few bytes, not a
// token of several KiB. Cold and warm (from the signature cache) alike.
func TestIdentityDoesNotPinToken(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("/abcdefgh", 27) // path prefixes hold at most 256 bytes
	cavs := []caveat.Caveat{caveat.Rights{"read", "edit"}}
	for range 6 {
		cavs = append(cavs, caveat.PathPrefix(long))
	}
	token := f.mint(t, alice, macaroon.WithCaveats(cavs...), macaroon.WithUsername("alice"), macaroon.WithKind(caveat.KindSession))
	attenuated, err := macaroon.Attenuate(token, caveat.PathPrefix(long+"/y"), caveat.PathPrefix(long+"/y"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		token string
	}{{"minted", token}, {"attenuated", attenuated}} {
		for _, round := range []string{"cold", "warm"} {
			t.Run(tc.name+"/"+round, func(t *testing.T) {
				id, err := f.v.Verify(context.Background(), tc.token, caveat.Request{Path: long + "/y/z"})
				if err != nil {
					t.Fatal(err)
				}
				strs := append([]string{id.EditorID, id.TokenID, id.KeyID, id.Username, string(id.Kind)}, id.Rights...)
				lo, hi, total := uintptr(0), uintptr(0), uintptr(0)
				for i, s := range strs {
					if s == "" {
						t.Fatalf("string %d empty in %+v", i, id)
					}
					p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
					if i == 0 || p < lo {
						lo = p
					}
					hi = max(hi, p+uintptr(len(s)))
					total += uintptr(len(s))
				}
				if hi-lo != total {
					t.Fatalf("the identity's %d bytes of strings span %d bytes: substrings of something larger", total, hi-lo)
				}
			})
		}
	}
}
