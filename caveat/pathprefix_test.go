package caveat

import (
	"errors"
	"strings"
	"testing"
)

// TestPathPrefixRefusesAmbiguousBytes: a path-restricted token refuses
// decoded paths that a back end may resolve outside the prefix (issue 10,
// L1), and its error never repeats the path.
func TestPathPrefixRefusesAmbiguousBytes(t *testing.T) {
	c := PathPrefix("/api/public")
	for _, tc := range []struct {
		name, path string
		ok         bool
	}{
		{"plain", "/api/public/x", true},
		{"prefix itself", "/api/public", true},
		{"query-looking byte is a path byte", "/api/public/a?b", true},
		{"tomcat path parameter", "/api/public/..;/admin", false},
		{"semicolon in a segment", "/api/public/x;jsessionid=1", false},
		{"iis backslash", "/api/public/..\\admin", false},
		{"double-encoded dot dot", "/api/public/%2e%2e/admin", false},
		{"encoded slash left encoded", "/api/public%2Fx", false},
		{"percent alone", "/api/public/100%", false},
		{"space", "/api/public/a b", false},
		{"tab", "/api/public/a\tb", false},
		{"NUL", "/api/public/a\x00", false},
		{"DEL", "/api/public/a\x7f", false},
		{"non-ASCII", "/api/public/caf\xc3\xa9", false},
		{"dot dot", "/api/public/../admin", false},
		{"outside", "/api/admin", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Prohibits(&Request{Path: tc.path})
			if (err == nil) != tc.ok {
				t.Fatalf("Prohibits(%q) = %v, want ok %v", tc.path, err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrProhibited) {
					t.Fatalf("error %v does not wrap ErrProhibited", err)
				}
				if tc.path != "/api/admin" && strings.Contains(err.Error(), tc.path) || strings.Contains(err.Error(), "admin") {
					t.Fatalf("error %q repeats the request path", err)
				}
			}
		})
	}
}
