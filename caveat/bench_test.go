package caveat

import "testing"

// BenchmarkParseClaims parses the caveats every session carries, as the
// verifier does on a cold verification.
func BenchmarkParseClaims(b *testing.B) {
	c, err := NewChecker()
	if err != nil {
		b.Fatal(err)
	}
	caveats := []string{"editor_id = aaaaaaaaaaaaaaaaaaaaaaaaaa", "time > 2026-05-01T00:00:00.000001Z", "time < 2027-01-01T00:00:00Z"}
	var cl Claims
	b.ReportAllocs()
	for b.Loop() {
		if err := c.ParseClaimStrings(&cl, caveats); err != nil {
			b.Fatal(err)
		}
	}
}
