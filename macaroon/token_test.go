package macaroon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/internal/testvectors"
	mv2 "gopkg.in/macaroon.v2"
)

type goldenVector = testvectors.Golden

func loadGolden(t testing.TB) []goldenVector {
	t.Helper()
	vs, err := testvectors.LoadGolden()
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestGolden pins decoding and the HMAC chain to tokens minted by
// pymacaroons (testdata/golden/make_golden.py).
func TestGolden(t *testing.T) {
	for _, v := range loadGolden(t) {
		t.Run(v.Name, func(t *testing.T) {
			tok, err := Parse(v.Token, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if tok.Location() != v.Location || tok.Identifier() != v.Identifier || tok.KeyID() != v.KeyID {
				t.Errorf("location, identifier, key id = %q, %q, %q", tok.Location(), tok.Identifier(), tok.KeyID())
			}
			if got := strings.Join(tok.Caveats(), "\n"); got != strings.Join(v.Caveats, "\n") {
				t.Errorf("caveats = %q", tok.Caveats())
			}
			sig := tok.Signature()
			if hex.EncodeToString(sig[:]) != v.SignatureHex {
				t.Errorf("signature = %x", sig)
			}
			if hex.EncodeToString(tok.Binary()) != v.BinaryHex {
				t.Errorf("binary = %x", tok.Binary())
			}
			key, err := KeyFromSecret(v.KeyID, StateVerifyOnly, time.Time{}, v.Secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := key.Verify(tok); err != nil {
				t.Errorf("Verify: %v", err)
			}
			other, _ := NewKey(v.KeyID, StateVerifyOnly, time.Time{}, nil)
			if err := other.Verify(tok); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify under another key = %v", err)
			}
			// macaroon.v2 reads the same token the same way.
			var m mv2.Macaroon
			if err := m.UnmarshalBinary(tok.Binary()); err != nil {
				t.Fatal(err)
			}
			secret, _ := base64.StdEncoding.DecodeString(v.Secret)
			if err := m.Verify(secret, func(string) error { return nil }, nil); err != nil {
				t.Errorf("macaroon.v2 Verify: %v", err)
			}
		})
	}
}

type fixedReader []byte

func (r fixedReader) Read(p []byte) (int, error) { return copy(p, r), nil }

// TestMintReproducesGolden: our minter, with the golden clock and random
// bytes, writes exactly pymacaroons' token.
func TestMintReproducesGolden(t *testing.T) {
	v := loadGolden(t)[0]
	key, err := KeyFromSecret(v.KeyID, StateCurrent, time.Time{}, v.Secret)
	if err != nil {
		t.Fatal(err)
	}
	uuid, _ := hex.DecodeString("3F2504E04F8941D39D2A0C04FE1ABCDE")
	created := time.Date(2026, 1, 1, 0, 0, 0, 1000, time.UTC)
	m, err := NewMinter(staticKeys{key}, v.Location, WithMintClock(func() time.Time { return created }), WithMintRandom(fixedReader(uuid)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Mint(context.Background(), "aaaaaaaaaaaaaaaaaaaaaaaaaa", ExpiresAt(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Token != v.Token {
		t.Errorf("minted\n%s\nwant\n%s", got.Token, v.Token)
	}
	if got.TokenID != "3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE" || got.KeyID != v.KeyID || !got.Created.Equal(created) {
		t.Errorf("Minted = %+v", got)
	}

	att, err := Attenuate(got.Token, caveat.Rights{"read"}, caveat.Methods{"GET"}, caveat.ExpiresAt(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	if want := loadGolden(t)[1].Token; att != want {
		t.Errorf("attenuated\n%s\nwant\n%s", att, want)
	}
}

type staticKeys struct{ k *Key }

func (s staticKeys) Current() (*Key, error) { return s.k, nil }

func goldenBinary(t testing.TB) []byte {
	b, err := hex.DecodeString(loadGolden(t)[0].BinaryHex)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestParseEncodings(t *testing.T) {
	var bin []byte
	for _, v := range loadGolden(t) {
		b, _ := hex.DecodeString(v.BinaryHex)
		if std := base64.StdEncoding.EncodeToString(b); strings.ContainsAny(std, "+/") && strings.HasSuffix(std, "=") {
			bin = b
			break
		}
	}
	// Make the binary's length need padding, and contain + / in std form.
	accepted := map[string]string{
		"base64url raw":    base64.RawURLEncoding.EncodeToString(bin),
		"base64url padded": base64.URLEncoding.EncodeToString(bin),
		"standard padded":  base64.StdEncoding.EncodeToString(bin),
	}
	for name, s := range accepted {
		t.Run(name, func(t *testing.T) {
			tok, err := Parse(s, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tok.Binary(), bin) || tok.Encode() != base64.RawURLEncoding.EncodeToString(bin) {
				t.Error("decoded differently")
			}
		})
	}
	std := base64.StdEncoding.EncodeToString(bin)
	if !strings.ContainsAny(std, "+/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("golden binary does not exercise the standard alphabet and padding: %s", std)
	}
	raw := accepted["base64url raw"]
	rejected := map[string]string{
		"standard unpadded": strings.TrimRight(std, "="),
		"mixed alphabets":   strings.Replace(raw, raw[10:11], "-", 1) + "+",
		"space":             raw[:20] + " " + raw[20:],
		"leading space":     " " + raw,
		"trailing newline":  raw + "\n",
		"CRLF":              raw[:20] + "\r\n" + raw[20:],
		"tab":               raw[:20] + "\t" + raw[20:],
		"NUL":               raw[:20] + "\x00" + raw[20:],
		"data after pad":    std + "AAAA",
		"wrong padding":     std + "==",
		"non-ASCII":         raw[:20] + "é" + raw[20:],
		"non-canonical bits": func() string {
			// Change the final character so unused low bits are set.
			s := []byte(raw)
			last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", s[len(s)-1])
			s[len(s)-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1]
			return string(s)
		}(),
	}
	for name, s := range rejected {
		t.Run("reject/"+name, func(t *testing.T) {
			if _, err := Parse(s, Limits{}); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseBinary(t *testing.T) {
	bin := goldenBinary(t)
	t.Run("truncated at every offset", func(t *testing.T) {
		for i := 0; i < len(bin); i++ {
			if _, err := Parse(enc(bin[:i]), Limits{}); !errors.Is(err, ErrMalformed) {
				t.Fatalf("truncated to %d bytes: %v", i, err)
			}
		}
	})
	cases := map[string][]byte{
		"v1 text":            []byte("MDAxY2xvY2F0aW9uIGh0dHA6Ly9leGFtcGxlLm9yZy8K"),
		"version 3":          append([]byte{3}, bin[1:]...),
		"trailing byte":      append(append([]byte{}, bin...), 0),
		"trailing packet":    append(append([]byte{}, bin...), 6, 1, 0),
		"signature 31 bytes": append(append(append([]byte{}, bin[:len(bin)-34]...), 6, 31), bin[len(bin)-32:len(bin)-1]...),
		"signature 33 bytes": append(append(append(append([]byte{}, bin[:len(bin)-34]...), 6, 33), bin[len(bin)-32:]...), 0),
		// The location length (0x0f) written as a two-byte varint.
		"overlong varint":    append([]byte{2, 1, 0x8f, 0x00}, bin[3:]...),
		"huge varint":        append([]byte{2, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, bin[3:]...),
		"overflowing varint": append([]byte{2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, bin[3:]...),
		"no identifier":      {2, 0, 0, 6, 32},
		"fields out of order": func() []byte {
			// Identifier before location.
			b := []byte{2, 2, 3, 'k', ':', 'x', 1, 1, 'l', 0, 0, 6, 32}
			return append(b, make([]byte, 32)...)
		}(),
		"caveat with unknown field": func() []byte {
			b := append([]byte{}, bin[:2+1+15+2+48+1]...)
			b = append(b, 3, 1, 'x', 0, 0, 6, 32)
			return append(b, make([]byte, 32)...)
		}(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(enc(b), Limits{}); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
		})
	}

	t.Run("third-party caveat", func(t *testing.T) {
		m, _ := mv2.New(make([]byte, 32), []byte("k1:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE"), "", mv2.V2)
		m.AddFirstPartyCaveat([]byte("editor_id = a"))
		if err := m.AddThirdPartyCaveat(make([]byte, 32), []byte("third"), "https://auth.example"); err != nil {
			t.Fatal(err)
		}
		b, _ := m.MarshalBinary()
		if _, err := Parse(enc(b), Limits{}); !errors.Is(err, ErrThirdParty) {
			t.Fatalf("Parse = %v, want ErrThirdParty", err)
		}
	})
}

func mintRaw(t testing.TB, id string, caveats ...string) string {
	t.Helper()
	m, err := mv2.New(make([]byte, 32), []byte(id), "loc", mv2.V2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return enc(b)
}

func TestLimits(t *testing.T) {
	id := "k1:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE"
	many := make([]string, 33)
	for i := range many {
		many[i] = "method = GET"
	}
	tests := []struct {
		name  string
		token string
		lim   Limits
		ok    bool
	}{
		{"32 caveats", mintRaw(t, id, many[:32]...), Limits{}, true},
		{"33 caveats", mintRaw(t, id, many...), Limits{}, false},
		{"caveats limit configurable", mintRaw(t, id, many[:5]...), Limits{MaxCaveats: 4}, false},
		{"512-byte caveat", mintRaw(t, id, strings.Repeat("a", 512)), Limits{}, true},
		{"513-byte caveat", mintRaw(t, id, strings.Repeat("a", 513)), Limits{}, false},
		{"caveat length configurable", mintRaw(t, id, strings.Repeat("a", 100)), Limits{MaxCaveatLen: 99}, false},
		{"over 4 KiB", mintRaw(t, id, many[:8]...) + strings.Repeat("A", 4096), Limits{}, false},
		{"size configurable", mintRaw(t, id, "editor_id = a"), Limits{MaxTokenSize: 64}, false},
		{"bad key id", mintRaw(t, "../etc/passwd", "editor_id = a"), Limits{}, false},
		{"lower-case token id", mintRaw(t, "k1:3f2504e0-4f89-41d3-9d2a-0c04fe1abcde", "editor_id = a"), Limits{}, false},
		{"two colons", mintRaw(t, "k1:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE:x", "editor_id = a"), Limits{}, false},
		{"fatcat identifier", mintRaw(t, "dummy", "editor_id = a"), Limits{}, true},
		{"no caveats parses (the checker rejects it)", mintRaw(t, id), Limits{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.token, tc.lim)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestTokenStringHidesSecret(t *testing.T) {
	v := loadGolden(t)[0]
	tok, err := Parse(v.Token, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{tok.String(), fmtV(tok)} {
		if strings.Contains(s, v.Token[:40]) || strings.Contains(s, v.SignatureHex[:16]) {
			t.Errorf("formatted token reveals it: %s", s)
		}
	}
}

func fmtV(v any) string { return strings.TrimSpace(strings.ReplaceAll(sprint(v), "\n", " ")) }

// checkSignedText compares SignedText with KeyID, TokenID and Caveats.
func checkSignedText(tok *Token) error {
	keyID, tokenID, cavs := tok.SignedText([]string{"kept"})
	if keyID != tok.KeyID() || tokenID != tok.TokenID() {
		return fmt.Errorf("SignedText ids = %q, %q; want %q, %q", keyID, tokenID, tok.KeyID(), tok.TokenID())
	}
	if want := append([]string{"kept"}, tok.Caveats()...); strings.Join(cavs, "\n") != strings.Join(want, "\n") || len(cavs) != len(want) {
		return fmt.Errorf("SignedText caveats = %q; want %q", cavs, want)
	}
	return nil
}

// TestSignedText: the strings SignedText shares are the token's ids and
// caveats, for both identifier forms, no caveats and more caveats than are
// kept inline, and they do not change when the decoded bytes are reused.
func TestSignedText(t *testing.T) {
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("caveat = %d", i)
	}
	for _, tc := range []struct {
		name, id string
		caveats  []string
	}{
		{"token id", "k1:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE", []string{"editor_id = a", "time > 2026-01-01T00:00:00Z", "time < 2027-01-01T00:00:00Z"}},
		{"fatcat form", "fatcat-key", []string{"editor_id = a"}},
		{"no caveats", "k1:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE", nil},
		{"beyond inline", "k1", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scratch := make([]byte, 4096)
			tok, err := Decode(mintRaw(t, tc.id, tc.caveats...), Limits{MaxCaveats: 64}, scratch)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkSignedText(&tok); err != nil {
				t.Fatal(err)
			}
			keyID, tokenID, cavs := tok.SignedText(nil)
			clear(scratch)
			if got := keyID + ":" + tokenID; tokenID != "" && got != tc.id || tokenID == "" && keyID != tc.id {
				t.Errorf("after reuse of the scratch: ids %q, %q", keyID, tokenID)
			}
			if strings.Join(cavs, "\n") != strings.Join(tc.caveats, "\n") {
				t.Errorf("after reuse of the scratch: caveats %q", cavs)
			}
		})
	}
}
