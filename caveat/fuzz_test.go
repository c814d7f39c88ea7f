package caveat

import (
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
