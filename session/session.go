// Package session keeps a token in a browser cookie, for web frontends that
// mint a macaroon after their own login (fatcat-web's design: the frontend
// holds the root key and only mints; the API only verifies). The cookie is
// HttpOnly, SameSite=Lax, Secure when the request came over TLS, and lives as
// long as the token. Verifiers read it with verifier.WithCookie.
package session

import (
	"net/http"
	"strings"
	"time"
)

// DefaultName is the cookie name used when none is configured.
const DefaultName = "amaretti_session"

// Cookie describes a session cookie to set.
type Cookie struct {
	// Name defaults to DefaultName.
	Name string
	// Token is the macaroon, in its wire form.
	Token string
	// Expires is the token's expiry; the cookie lives until then. Zero
	// makes a browser-session cookie.
	Expires time.Time
	// Path defaults to "/".
	Path string
}

// OverTLS reports whether the request reached us over TLS, directly or
// through a proxy that says so (X-Forwarded-Proto: https): whether cookies
// set in the answer should be Secure.
func OverTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// Set writes the session cookie to w: HttpOnly, SameSite=Lax, Secure over
// TLS, Max-Age matching the token's expiry (relative to now).
func Set(w http.ResponseWriter, r *http.Request, c Cookie, now time.Time) {
	hc := &http.Cookie{
		Name:     orDefault(c.Name, DefaultName),
		Value:    c.Token,
		Path:     orDefault(c.Path, "/"),
		HttpOnly: true,
		Secure:   OverTLS(r),
		SameSite: http.SameSiteLaxMode,
	}
	if !c.Expires.IsZero() {
		hc.MaxAge = max(1, int(c.Expires.Sub(now).Seconds()))
		hc.Expires = c.Expires.UTC()
	}
	http.SetCookie(w, hc)
}

// Clear removes the session cookie (Max-Age=0), for "log out". It does not
// revoke the token: touch the editor's epoch for "log out everywhere".
func Clear(w http.ResponseWriter, r *http.Request, name, path string) {
	http.SetCookie(w, &http.Cookie{
		Name:     orDefault(name, DefaultName),
		Value:    "",
		Path:     orDefault(path, "/"),
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   OverTLS(r),
		SameSite: http.SameSiteLaxMode,
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
