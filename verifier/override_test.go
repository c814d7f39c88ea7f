package verifier_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// TestBearerToken: RFC 6750's "Bearer" 1*SP b64token, and errors that say
// whether two tokens were sent or the header is malformed.
func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth []string
		tok  string
		err  error
	}{
		{"one space", []string{"Bearer abc"}, "abc", nil},
		{"three spaces", []string{"Bearer   abc"}, "abc", nil},
		{"lower-case scheme", []string{"bearer abc"}, "abc", nil},
		{"none", nil, "", verifier.ErrNoToken},
		{"other scheme", []string{"Basic abc"}, "", verifier.ErrNoToken},
		{"scheme alone", []string{"Bearer"}, "", verifier.ErrMalformedAuthorization},
		{"scheme and spaces", []string{"Bearer  "}, "", verifier.ErrMalformedAuthorization},
		{"tab after the scheme", []string{"Bearer\tabc"}, "", verifier.ErrMalformedAuthorization},
		{"tab after a space", []string{"Bearer \tabc"}, "", verifier.ErrMalformedAuthorization},
		{"space inside", []string{"Bearer ab c"}, "", verifier.ErrMalformedAuthorization},
		{"control byte inside", []string{"Bearer ab\x01c"}, "", verifier.ErrMalformedAuthorization},
		{"two headers", []string{"Bearer abc", "Bearer def"}, "", verifier.ErrSeveralTokens},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			tok, err := verifier.BearerToken(r)
			if tok != tc.tok || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("BearerToken = %q, %v; want %q, %v", tok, err, tc.tok, tc.err)
			}
		})
	}
}

// TestMiddlewareMethodOverride: a token that restricts methods refuses a
// request carrying a method-override header or parameter; an unrestricted
// token is unaffected (issue 10, L1).
func TestMiddlewareMethodOverride(t *testing.T) {
	f := newFixture(t)
	valid := f.mint(t, touchedEditor)
	getOnly, _ := macaroon.Attenuate(valid, caveat.Methods{"GET"})
	srv := httptest.NewServer(f.v.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	for _, tc := range []struct {
		name, query, header string
		tok                 string
		want                int
	}{
		{"no override", "", "", getOnly, 200},
		{"X-HTTP-Method-Override", "", "X-HTTP-Method-Override", getOnly, 403},
		{"X-HTTP-Method", "", "X-HTTP-Method", getOnly, 403},
		{"X-Method-Override", "", "X-Method-Override", getOnly, 403},
		{"lower-case header", "", "x-http-method-override", getOnly, 403},
		{"_method parameter", "_method=DELETE", "", getOnly, 403},
		{"_METHOD parameter", "a=1&_METHOD=DELETE", "", getOnly, 403},
		{"encoded _method parameter", "%5Fmethod=DELETE", "", getOnly, 403},
		{"_method after a semicolon", "a=1;_method=DELETE", "", getOnly, 403},
		{"other parameter", "method=DELETE", "", getOnly, 200},
		{"unrestricted token with override", "_method=DELETE", "X-HTTP-Method-Override", valid, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := srv.URL + "/"
			if tc.query != "" {
				url += "?" + tc.query
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+tc.tok)
			if tc.header != "" {
				req.Header[tc.header] = []string{"DELETE"} // as sent, not canonicalised
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
