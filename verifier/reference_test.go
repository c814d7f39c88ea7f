package verifier_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/refimpl"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// Never more permissive than the references: every token of a generated
// corpus (valid tokens, every byte flipped and every truncation of them,
// trailing bytes, holder-appended caveats, unsigned caveat edits, other
// base64 forms, every case of testdata/bad and the pymacaroons golden
// tokens) that amaretti's signature check accepts is accepted by
// libmacaroons 0.3.0 (C, v1 format: re-encoded) and by pymacaroons, with the
// same key, the same identifier and the same caveats; and so is every token
// the verifier accepts. The cases where amaretti is stricter are logged.
func TestReferenceImplementations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	lm := refimpl.StartLibmacaroons(t)
	py := refimpl.StartPymacaroons(t)

	secrets := map[string]string{goldenKeyID: goldenSecret, fatcatKeyID: fatcatSecret, retiredKeyID: retiredSecret}
	cur, err := f.keys.Current()
	if err != nil {
		t.Fatal(err)
	}
	if secrets[cur.ID()], err = f.keys.Export(cur.ID()); err != nil {
		t.Fatal(err)
	}
	cases := referenceCorpus(t, f)

	type stricter struct {
		n       int
		example string
		refs    map[string]bool
	}
	amarettiStricter, referenceStricter := map[string]*stricter{}, map[string]*stricter{}
	digits := regexp.MustCompile(`[0-9]+`)
	note := func(summary map[string]*stricter, reason, example string, refs ...string) {
		if len(refs) == 0 {
			return
		}
		reason = digits.ReplaceAllString(reason, "N")
		s := summary[reason]
		if s == nil {
			s = &stricter{example: example, refs: map[string]bool{}}
			summary[reason] = s
		}
		s.n++
		for _, r := range refs {
			s.refs[r] = true
		}
	}
	report := func(summary map[string]*stricter) string {
		var lines []string
		for reason, s := range summary {
			refs := slices.Sorted(maps.Keys(s.refs))
			lines = append(lines, fmt.Sprintf("  %5d  %s (%s; e.g. %s)", s.n, reason, strings.Join(refs, " and "), s.example))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	var accepted, verified, compared int
	for _, c := range cases {
		// amaretti: the signature layer, and the verifier's decision.
		var sigErr error
		var tok *macaroon.Token
		tok, sigErr = macaroon.Parse(c.text, macaroon.Limits{})
		if sigErr == nil {
			var k *macaroon.Key
			if k, sigErr = f.keys.Key(tok.KeyID()); sigErr == nil {
				sigErr = k.Verify(tok)
			}
		}
		_, verr := f.v.Verify(ctx, c.text, corpusRequest)
		if verr == nil && sigErr != nil {
			t.Errorf("%s: the verifier accepts what the signature check refuses (%v)", c.name, sigErr)
		}

		// The references, on the bytes of the text however encoded.
		bin, ok := decodeAny(c.text)
		if !ok {
			if sigErr == nil {
				t.Errorf("%s: accepted, but its text is not base64", c.name)
			}
			continue
		}
		secret := secrets[c.keyID]
		if sigErr == nil {
			secret = secrets[tok.KeyID()]
		}
		verdicts := map[string]refimpl.Verdict{"pymacaroons": py.Verify(secret, refimpl.V2(bin))}
		if v1, err := refimpl.V1(bin); err == nil {
			verdicts["libmacaroons"] = lm.Verify(secret, v1)
		} else {
			verdicts["libmacaroons"] = refimpl.Verdict{Detail: "macaroon.v2 cannot re-encode it as v1: " + err.Error()}
		}
		compared++
		if sigErr == nil {
			accepted++
			if verr == nil {
				verified++
			}
			for name, v := range verdicts {
				switch {
				case v.OK && (v.Identifier != tok.Identifier() || !slices.Equal(v.Caveats, tok.Caveats())):
					t.Errorf("%s: %s verified identifier %q caveats %q; amaretti %q %q", c.name, name, v.Identifier, v.Caveats, tok.Identifier(), tok.Caveats())
				case v.OK:
				case verr == nil || name == "libmacaroons":
					t.Errorf("%s: amaretti accepts, %s refuses: %s", c.name, name, v.Detail)
				default:
					// pymacaroons cannot check a caveat that is not UTF-8;
					// the verifier refuses it too (printable ASCII only).
					note(referenceStricter, name+" refuses: "+v.Detail+"; amaretti's signature check accepts, its verifier refuses: "+verr.Error(), c.name, name)
				}
			}
			continue
		}
		var refs []string
		for name, v := range verdicts {
			if v.OK {
				refs = append(refs, name)
			}
		}
		note(amarettiStricter, sigErr.Error(), c.name, refs...)
	}
	if accepted < 50 || verified < 20 || compared < 3000 {
		t.Fatalf("corpus too weak: %d compared, %d accepted by the signature check, %d by the verifier", compared, accepted, verified)
	}
	t.Logf("%d tokens (%d generated) compared with libmacaroons and pymacaroons: %d pass amaretti's signature check, %d the verifier; every one the verifier accepts passes both references with the same identifier and caveats.\n"+
		"Where amaretti is stricter (it refuses, the references named accept):\n%s\nWhere a reference is stricter than amaretti's signature check alone:\n%s",
		compared, len(cases), accepted, verified, report(amarettiStricter), report(referenceStricter))
}

type refCase struct {
	name, text string
	// keyID names the key the case was signed with, for the references
	// when amaretti cannot read the identifier.
	keyID string
}

// decodeAny decodes base64 in any alphabet, padded or not, ignoring
// nothing: the bytes a lenient implementation would see.
func decodeAny(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) > 0 {
			return b, true
		}
	}
	return nil, false
}

// appendCaveat appends a first-party caveat to a v2 binary token the way a
// holder does: the packet before the end of the caveats, the signature
// chained over it.
func appendCaveat(bin []byte, cav string) []byte {
	head, sig := bin[:len(bin)-35], bin[len(bin)-32:]
	mac := hmac.New(sha256.New, sig)
	mac.Write([]byte(cav))
	b := append(append([]byte{}, head...), 2)
	b = binary.AppendUvarint(b, uint64(len(cav)))
	b = append(append(b, cav...), 0, 0, 6, 32)
	return mac.Sum(b)
}

func referenceCorpus(t *testing.T, f *fixture) []refCase {
	var cases []refCase
	add := func(name, text, keyID string) { cases = append(cases, refCase{name, text, keyID}) }
	type base struct {
		name, keyID string
		bin         []byte
	}
	minted := f.mint(t, alice)
	mintedBin, _ := base64.RawURLEncoding.DecodeString(minted)
	mintedTok, err := macaroon.Parse(minted, macaroon.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	bases := []base{
		{"golden", goldenKeyID, golden(t, caveatsOf()...)},
		{"golden, method and path", goldenKeyID, golden(t, caveatsOf("method = GET,HEAD", "path_prefix = /api/v1")...)},
		{"golden, rights", goldenKeyID, golden(t, caveatsOf("rights = read,edit", "time < 2026-07-01T00:00:00Z")...)},
		{"fatcat", fatcatKeyID, sign(t, fatcatSecret, fatcatKeyID, "editor_id = "+alice, "time > 2026-01-01T00:00:01Z")},
		{"minted", mintedTok.KeyID(), mintedBin},
	}
	for _, g := range loadGoldenTokens(t) {
		add("pymacaroons golden "+g.Name, g.Token, g.KeyID)
	}
	for _, c := range loadCorpus(t).Cases {
		add("testdata/bad "+c.Name, c.Token, goldenKeyID)
	}
	holderCaveats := []string{
		"method = GET", "time < 2027-01-01T00:00:00Z", "path_prefix = /api/v1/things", "rights = read",
		"", "x", "method = GET\x00", "method = GET\n", "\xff\xfe", "method  = GET", "username = root",
		"time > 2026-06-01T11:00:00Z", "editor_id = " + fatcatEditor, strings.Repeat("a", 600),
		"path_prefix = /" + strings.Repeat("b", 300),
	}
	for _, b := range bases {
		text := b64(b.bin)
		add(b.name, text, b.keyID)
		add(b.name+", standard padded base64", base64.StdEncoding.EncodeToString(b.bin), b.keyID)
		add(b.name+", padded base64url", base64.URLEncoding.EncodeToString(b.bin), b.keyID)
		add(b.name+", unpadded standard base64", base64.RawStdEncoding.EncodeToString(b.bin), b.keyID)
		for i := range b.bin {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				m := append([]byte{}, b.bin...)
				m[i] ^= x
				add(fmt.Sprintf("%s, byte %d ^ %#x", b.name, i, x), b64(m), b.keyID)
			}
			add(fmt.Sprintf("%s, truncated to %d", b.name, i), b64(b.bin[:i]), b.keyID)
		}
		for _, tail := range [][]byte{{0}, {0, 0}, {6, 0}, append([]byte{6, 32}, b.bin[len(b.bin)-32:]...)} {
			add(fmt.Sprintf("%s, trailing %x", b.name, tail[:min(len(tail), 2)]), b64(append(append([]byte{}, b.bin...), tail...)), b.keyID)
		}
		for _, c := range holderCaveats {
			add(fmt.Sprintf("%s, holder appended %q", b.name, c[:min(len(c), 30)]), b64(appendCaveat(b.bin, c)), b.keyID)
			// The same caveat without re-signing, and re-signed then edited.
			unsigned := appendCaveat(b.bin, c)
			copy(unsigned[len(unsigned)-32:], b.bin[len(b.bin)-32:])
			add(fmt.Sprintf("%s, appended %q unsigned", b.name, c[:min(len(c), 30)]), b64(unsigned), b.keyID)
		}
		twice := appendCaveat(appendCaveat(b.bin, "method = GET"), "time < 2026-12-01T00:00:00Z")
		add(b.name+", two holder caveats", b64(twice), b.keyID)
		edited := append([]byte{}, twice...)
		edited[len(edited)-38] ^= 0x01 // inside the last caveat's text
		add(b.name+", holder caveat edited", b64(edited), b.keyID)
		noLoc := append([]byte{2}, b.bin[1+2+int(b.bin[2]):]...) // without the location field
		if b.bin[1] == 1 {
			add(b.name+", location removed", b64(noLoc), b.keyID)
			add(b.name+", location repeated", b64(append(append([]byte{}, b.bin[:3+int(b.bin[2])]...), b.bin[1:]...)), b.keyID)
		}
		add(b.name+", v1 serialization", func() string {
			v1, err := refimpl.V1(b.bin)
			if err != nil {
				t.Fatal(err)
			}
			return v1
		}(), b.keyID)
	}
	return cases
}
