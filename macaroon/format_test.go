package macaroon

import (
	"context"
	"errors"
	"fmt"
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
// generated token inside surrounding text, exactly; it finds nothing in
// text that cannot hold a token; and whatever it finds in a near miss,
// CheckAPIFormat refuses. A regular expression cannot tell a damaged
// token from a whole one: base64url holds "_", so a macaroon that happens
// to end in "_" and six letters or digits looks like one with a checksum,
// and a shorter piece of a damaged token can look whole (about one token
// in 45). The checksum confirms, as the README tells scanners to.
func TestAPITokenPattern(t *testing.T) {
	re := regexp.MustCompile(APITokenPattern)
	toks := formatted(t, 8)
	for i, tok := range toks {
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
	// A body ending like a checksum, so that every near miss below which
	// the expression can match is matched at least once, whatever the
	// random tokens hold.
	lookalike := APIPrefix + "A" + strings.Repeat("b", 40) + "_abcdef"
	if re.FindString(lookalike) != lookalike {
		t.Fatalf("%q: the expression should match it", lookalike)
	}
	for i, tok := range append(toks, lookalike+"_"+strings.Repeat("0", ChecksumLen)) {
		body := tok[len(APIPrefix) : len(tok)-ChecksumLen-1]
		for _, tc := range []struct {
			name, text string
			never      bool // no match at all: the text cannot hold a token
		}{
			{"plain macaroon", body, true},
			{"other prefix", "amx_" + tok[len(APIPrefix):], true},
			{"upper-case prefix", "AMT_" + tok[len(APIPrefix):], true},
			{"too short", APIPrefix + "A" + strings.Repeat("b", 20) + "_abcdef", true},
			{"not a v2 macaroon", APIPrefix + "B" + body[1:] + tok[len(tok)-ChecksumLen-1:], true},
			{"ghp token", "ghp_" + strings.Repeat("a", 36), true},
			{"short checksum", tok[:len(tok)-1], false},
			{"checksum with a dash", tok[:len(tok)-1] + "-", false},
			{"no checksum separator", APIPrefix + body, false},
			{"word continues", tok + "x", false},
		} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, i), func(t *testing.T) {
				found := re.FindAllString(tc.text, -1)
				if tc.never && len(found) > 0 {
					t.Fatalf("finds %q", found)
				}
				for _, m := range found {
					if _, err := CheckAPIFormat(m); !errors.Is(err, ErrChecksum) {
						t.Errorf("finds %q, and CheckAPIFormat says %v, want ErrChecksum", m, err)
					}
				}
			})
		}
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
