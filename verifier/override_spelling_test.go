package verifier_test

import (
	"net/http"
	"testing"

	"github.com/amaretti-auth/amaretti/verifier"
)

// TestMethodOverriddenSpellings: a back end behind a proxy that passes
// headers with underscores (Envoy and Traefik do by default) may read
// X_HTTP_Method_Override as X-HTTP-Method-Override: CGI, PHP and WSGI
// servers map both "-" and "_" to "_" in HTTP_X_HTTP_METHOD_OVERRIDE. Every
// such spelling is an override.
func TestMethodOverriddenSpellings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		query  string
		want   bool
	}{
		{"none", "", "", false},
		{"canonical", "X-Http-Method-Override", "", true},
		{"underscores", "X_HTTP_Method_Override", "", true},
		{"mixed", "X-HTTP_METHOD-override", "", true},
		{"x-http-method with underscores", "X_HTTP_METHOD", "", true},
		{"x-method-override with underscores", "x_method_override", "", true},
		{"an unrelated header", "X_Request_Id", "", false},
		{"query, any case", "", "_METHOD=DELETE", true},
		{"query, encoded", "", "%5Fmethod=DELETE", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h[tc.header] = []string{"DELETE"} // as Go's server keeps a non-token-canonical name
			}
			if got := verifier.MethodOverridden(h, tc.query); got != tc.want {
				t.Fatalf("MethodOverridden = %v, want %v", got, tc.want)
			}
		})
	}
}
