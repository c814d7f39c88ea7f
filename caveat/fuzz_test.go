package caveat

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: the parser never panics, accepts only printable ASCII, and
// whatever it accepts prints to a text that parses to the same caveat.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"editor_id = aaaaaaaaaaaaaaaaaaaaaaaaaa",
		"time > 2026-11-22T10:00:00.123456Z",
		"time < 2027-01-01T00:00:00Z",
		"time-before 2027-01-01T00:00:00.5Z",
		"endpoint = create_editgroup",
		"rights = read,edit",
		"method = GET,HEAD",
		"path_prefix = /api/v1",
		"time > 2026-02-29T00:00:00Z",
		"editor_id  = a",
	} {
		f.Add(s)
	}
	c, err := NewChecker()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cav, err := c.Parse(text)
		if err != nil {
			return
		}
		for i := 0; i < len(text); i++ {
			if text[i] < 0x20 || text[i] > 0x7e {
				t.Fatalf("accepted non-printable byte in %q", text)
			}
		}
		again, err := c.Parse(cav.String())
		if err != nil {
			t.Fatalf("%q parsed, but its String() %q does not: %v", text, cav.String(), err)
		}
		if again.String() != cav.String() {
			t.Fatalf("String not stable: %q -> %q", cav.String(), again.String())
		}
	})
}

// FuzzClaims: parsing a token's caveats never panics, and accepted claims
// always have exactly the two claims set.
func FuzzClaims(f *testing.F) {
	f.Add("editor_id = a", "time > 2026-01-01T00:00:00Z", "rights = read")
	f.Add("editor_id = a", "time > 2026-01-01T00:00:00Z", "editor_id = a")
	c, err := NewChecker()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b, d string) {
		cl, err := c.Claims([][]byte{[]byte(a), []byte(b), []byte(d)})
		if err != nil {
			return
		}
		if cl.EditorID == "" || cl.Created.IsZero() {
			t.Fatalf("claims accepted without editor or created: %+v", cl)
		}
	})
}

// claimsFastPathSeeds are caveat lists on the edges of parseClaims' fast
// path: valid claims, claims the fast path must leave to the general path
// (repeated, oddly spaced, invalid values), and other caveats.
var claimsFastPathSeeds = [][3]string{
	{"editor_id = a", "time > 2026-01-01T00:00:00Z", "time < 2027-01-01T00:00:00.5Z"},
	{"editor_id = a", "editor_id = b", "time > 2026-01-01T00:00:00Z"},
	{"editor_id = a", "time > 2026-01-01T00:00:00Z", "time > 2026-01-01T00:00:00Z"},
	{"editor_id =  a", "time > 2026-01-01T00:00:00Z", "rights = read"},
	{"editor_id = A", "time > 2026-01-01T00:00:00Z", "kind = api"},
	{"editor_id = a b", "time >  2026-01-01T00:00:00Z", "time < 2027-01-01T00:00:00Z "},
	{"editor_id = a", "time > 2026-02-30T00:00:00Z", "time < 2027-01-01T24:00:00Z"},
	{"editor_id = a", "time > 2026-01-01T00:00:00.1234567890Z", "time-before 2027-01-01T00:00:00Z"},
	{"editor_id = a\x00", "time > 2026-01-01T00:00:00Z\n", "time < +026-01-01T00:00:00Z"},
	{"username = u", "editor_id = a", "time > 2026-01-01T00:00:00Z"},
	{"time > 2026-01-01T00:00:00Z", "username = u", "editor_id = a"},
	{"editor_id = a", "time < 2027-01-01T00:00:00Z", "time < 2026-06-01T00:00:00Z"},
	{"editor_id = a", "time > 2026-01-01T00:00:00Z", "parent_token = 6F1C2A9E-0B7D-4E3A-9C51-2D8F7A6B4E10"},
	{"editor_id = " + strings.Repeat("a", 65), "time > 2026-01-01T00:00:00Z", "endpoint = x"},
	{"editor_id = a", "time = 2026-01-01T00:00:00Z", "time<2027-01-01T00:00:00Z"},
	{"username = Al.ice-1", "kind = session", "time > 2026-01-01T00:00:00Z"},
	{"kind = api", "kind = api", "username = a"},
	{"username = a", "username = b", "kind = sessions"},
	{"editor_id = a", "time > 2026-01-01T00:00:00Z", "kind = api"},
	{"username = .a", "kind =  api", "username = a b"},
	{"time >", "time > ", "time"},
	{"time  > 2026-01-01T00:00:00Z", "time >2026-01-01T00:00:00Z", "e"},
	{"kind = cli", "username = " + strings.Repeat("A", 64), "username = " + strings.Repeat("A", 65)},
}

// checkClaimsPaths fails when the fast path, the general path and the
// string form disagree on caveats, in the result or in the error text.
func checkClaimsPaths(t *testing.T, c *Checker, caveats []string) {
	t.Helper()
	var bs [][]byte
	for _, s := range caveats {
		bs = append(bs, []byte(s))
	}
	var general, fast, str Claims
	errGeneral := parseClaims(c, &general, bs, false)
	errFast := parseClaims(c, &fast, bs, true)
	errStr := c.ParseClaimStrings(&str, caveats)
	text := func(err error) string {
		if err == nil {
			return "<nil>"
		}
		return err.Error()
	}
	if text(errFast) != text(errGeneral) || text(errStr) != text(errGeneral) {
		t.Fatalf("%q: errors differ: general %v, fast %v, strings %v", caveats, errGeneral, errFast, errStr)
	}
	if errGeneral != nil {
		return
	}
	if !reflect.DeepEqual(fast, general) || !reflect.DeepEqual(str, general) {
		t.Fatalf("%q: claims differ:\ngeneral %+v\nfast    %+v\nstrings %+v", caveats, general, fast, str)
	}
}

// TestClaimsFastPathAgrees: on the edge cases of the fast path, ParseClaims
// gives exactly what the general path (split, then validate) gives.
func TestClaimsFastPathAgrees(t *testing.T) {
	c, err := NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	for i, seed := range claimsFastPathSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkClaimsPaths(t, c, seed[:])
			checkClaimsPaths(t, c, seed[:2])
			checkClaimsPaths(t, c, seed[1:])
		})
	}
}

// FuzzClaimsFastPath: the fast path of parseClaims, the general path and
// ParseClaimStrings agree on every input, accepted or refused.
func FuzzClaimsFastPath(f *testing.F) {
	for _, s := range claimsFastPathSeeds {
		f.Add(s[0], s[1], s[2])
	}
	c, err := NewChecker()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b, d string) {
		checkClaimsPaths(t, c, []string{a, b, d})
	})
}
