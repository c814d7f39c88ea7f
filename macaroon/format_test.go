package macaroon

import (
	"context"
	"errors"
	"hash/crc32"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	mv2 "gopkg.in/macaroon.v2"
)

// formatted mints n API-format tokens with different ids and caveats.
func formatted(t testing.TB, n int) []string {
	t.Helper()
	key, err := NewKey("k1", StateCurrent, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMinter(staticKeys{key}, "api.example.org")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range n {
		opts := []MintOption{WithKind(caveat.KindAPI), ExpiresIn(time.Duration(i+1) * time.Hour)}
		if i%2 == 1 {
			opts = append(opts, WithCaveats(caveat.Rights{"read"}, caveat.Endpoint("e"+strings.Repeat("x", i))))
		}
		tok, err := m.Mint(context.Background(), "aaaaaaaaaaaaaaaaaaaaaaaaaa", opts...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, FormatAPI(tok.Token))
	}
	return out
}

func TestFormatAPI(t *testing.T) {
	golden := loadGolden(t)[0].Token
	f := FormatAPI(golden)
	if !strings.HasPrefix(f, APIPrefix+golden+"_") || len(f) != len(APIPrefix)+len(golden)+1+ChecksumLen {
		t.Fatalf("FormatAPI = %q", f)
	}
	if FormatAPI(f) != f {
		t.Error("formatting twice changes the token")
	}
	// The checksum is the CRC-32 of the text before the last "_", in
	// base62, fixed width: recomputed here by hand.
	c := crc32.ChecksumIEEE([]byte(APIPrefix + golden))
	var want []byte
	for range ChecksumLen {
		want = append([]byte{base62[c%62]}, want...)
		c /= 62
	}
	if got := f[len(f)-ChecksumLen:]; got != string(want) {
		t.Errorf("checksum %q, want %q", got, want)
	}
	mac, ok, err := StripAPIFormat(f)
	if mac != golden || !ok || err != nil {
		t.Errorf("StripAPIFormat = %q, %v, %v", mac, ok, err)
	}
	// The standard macaroon inside is what other libraries read.
	tok, err := Parse(f, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var m mv2.Macaroon
	if err := m.UnmarshalBinary(tok.Binary()); err != nil {
		t.Fatal(err)
	}
	if string(m.Id()) != loadGolden(t)[0].Identifier {
		t.Errorf("identifier %q", m.Id())
	}
}

// TestStripAPIFormat: damaged API tokens fail with ErrChecksum (which is
// also ErrMalformed) before decoding; text without the prefix passes
// through untouched.
func TestStripAPIFormat(t *testing.T) {
	golden := loadGolden(t)[0].Token
	f := FormatAPI(golden)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, text string
		err        error
	}{
		{"formatted", f, nil},
		{"plain macaroon", golden, nil},
		{"fatcat-style padded base64", strings.TrimRight(golden, "=") + "==", nil},
		{"typo in the macaroon", flip(f, 20), ErrChecksum},
		{"typo in the checksum", flip(f, len(f)-1), ErrChecksum},
		{"truncated", f[:len(f)-1], ErrChecksum},
		{"truncated in the macaroon", f[:len(f)-30], ErrChecksum},
		{"extended", f + "0", ErrChecksum},
		{"no separator", f[:len(f)-ChecksumLen-1] + "A" + f[len(f)-ChecksumLen:], ErrChecksum},
		{"prefix only", APIPrefix, ErrChecksum},
		{"prefix and checksum", APIPrefix + "_000000", ErrChecksum},
		{"empty body", APIPrefix + "_" + f[len(f)-ChecksumLen:], ErrChecksum},
		{"wrapped twice", func() string {
			body := APIPrefix + f
			var crc [ChecksumLen]byte
			checksum(&crc, body)
			return body + "_" + string(crc[:])
		}(), ErrChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mac, ok, err := StripAPIFormat(tc.text)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				if !errors.Is(err, ErrMalformed) || mac != "" {
					t.Errorf("%q, %v: not malformed or not empty", mac, err)
				}
				if strings.Contains(err.Error(), golden[:20]) {
					t.Error("the error repeats the token")
				}
				_, perr := Parse(tc.text, Limits{})
				if !errors.Is(perr, ErrChecksum) {
					t.Errorf("Parse: %v, want ErrChecksum", perr)
				}
				return
			}
			if ok != strings.HasPrefix(tc.text, APIPrefix) || ok && mac != golden || !ok && mac != tc.text {
				t.Errorf("= %q, %v", mac, ok)
			}
		})
	}
}

// TestAPITokenPattern: the published regular expression finds every
// generated token inside surrounding text, exactly, and no near miss.
func TestAPITokenPattern(t *testing.T) {
	re := regexp.MustCompile(APITokenPattern)
	for i, tok := range formatted(t, 8) {
		for _, ctx := range []string{"%s", "Authorization: Bearer %s\n", "AMARETTI_TOKEN=%s", `{"token":"%s"}`, "'%s'", "x %s. y"} {
			text := strings.Replace(ctx, "%s", tok, 1)
			if got := re.FindString(text); got != tok {
				t.Errorf("token %d in %q: found %q", i, ctx, got)
			}
		}
		if _, err := CheckAPIFormat(re.FindString(tok)); err != nil {
			t.Errorf("token %d: %v", i, err)
		}
	}
	tok := formatted(t, 1)[0]
	body := tok[len(APIPrefix) : len(tok)-ChecksumLen-1]
	for _, tc := range []struct{ name, text string }{
		{"plain macaroon", body},
		{"other prefix", "amx_" + tok[len(APIPrefix):]},
		{"upper-case prefix", "AMT_" + tok[len(APIPrefix):]},
		{"short checksum", tok[:len(tok)-1]},
		{"checksum with a dash", tok[:len(tok)-1] + "-"},
		{"no checksum separator", APIPrefix + body},
		{"too short", APIPrefix + "A" + strings.Repeat("b", 20) + "_abcdef"},
		{"not a v2 macaroon", APIPrefix + "B" + body[1:] + tok[len(tok)-ChecksumLen-1:]},
		{"ghp token", "ghp_" + strings.Repeat("a", 36)},
		{"word continues", tok + "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m := re.FindString(tc.text); m != "" && m == tc.text {
				t.Errorf("matches %q", m)
			}
			if tc.name == "word continues" || tc.name == "short checksum" {
				// Nothing, not even a shorter piece, is found.
				if m := re.FindString(tc.text); m != "" {
					t.Errorf("finds %q", m)
				}
			}
		})
	}
}

// TestAttenuateKeepsFormat: attenuating an API token gives an API token;
// a plain macaroon stays plain.
func TestAttenuateKeepsFormat(t *testing.T) {
	f := formatted(t, 1)[0]
	att, err := Attenuate(f, caveat.Methods{"GET"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckAPIFormat(att); err != nil {
		t.Errorf("attenuated: %v", err)
	}
	mac, _, _ := StripAPIFormat(f)
	plain, err := Attenuate(mac, caveat.Methods{"GET"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(plain, APIPrefix) || FormatAPI(plain) != att {
		t.Errorf("plain attenuation %q", plain)
	}
}

// FuzzStripAPIFormat: the format parser never panics, accepts only what
// FormatAPI writes, and gives back the macaroon it was given.
func FuzzStripAPIFormat(f *testing.F) {
	for _, v := range loadGolden(f) {
		f.Add(v.Token)
		f.Add(FormatAPI(v.Token))
	}
	f.Add(APIPrefix)
	f.Add(APIPrefix + "_000000")
	f.Add("amt_A_000000")
	f.Fuzz(func(t *testing.T, s string) {
		mac, ok, err := StripAPIFormat(s)
		if ok != strings.HasPrefix(s, APIPrefix) {
			t.Fatalf("formatted = %v", ok)
		}
		switch {
		case !ok:
			if err != nil || mac != s {
				t.Fatalf("plain text changed: %q, %v", mac, err)
			}
		case err != nil:
			if !errors.Is(err, ErrChecksum) || mac != "" {
				t.Fatalf("%q, %v", mac, err)
			}
		default:
			if FormatAPI(mac) != s || strings.HasPrefix(mac, APIPrefix) {
				t.Fatalf("accepted %q, which FormatAPI writes as %q", s, FormatAPI(mac))
			}
		}
	})
}

// BenchmarkStripAPIFormat is the cost the format adds before decoding a
// token (nanoseconds, no allocation).
func BenchmarkStripAPIFormat(b *testing.B) {
	f := formatted(b, 1)[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := StripAPIFormat(f); err != nil {
			b.Fatal(err)
		}
	}
}
