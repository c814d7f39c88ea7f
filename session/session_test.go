package session_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/session"
)

func TestSet(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		tls    bool
		proto  string
		secure bool
	}{
		{"plain http", false, "", false},
		{"tls", true, "", true},
		{"behind a TLS proxy", false, "https", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			w := httptest.NewRecorder()
			session.Set(w, r, session.Cookie{Token: "TOKEN", Expires: now.Add(time.Hour)}, now)
			cs := w.Result().Cookies()
			if len(cs) != 1 {
				t.Fatalf("%d cookies", len(cs))
			}
			c := cs[0]
			if c.Name != session.DefaultName || c.Value != "TOKEN" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
				c.Path != "/" || c.MaxAge != 3600 || c.Secure != tc.secure {
				t.Fatalf("cookie %+v", c)
			}
		})
	}
	w := httptest.NewRecorder()
	session.Set(w, httptest.NewRequest("GET", "/", nil), session.Cookie{Name: "s", Token: "T", Path: "/app"}, now)
	if c := w.Result().Cookies()[0]; c.MaxAge != 0 || c.Path != "/app" || c.Name != "s" {
		t.Fatalf("session cookie without expiry: %+v", c)
	}
}

func TestClear(t *testing.T) {
	w := httptest.NewRecorder()
	session.Clear(w, httptest.NewRequest("GET", "/", nil), "", "")
	c := w.Result().Cookies()[0]
	if c.Name != session.DefaultName || c.MaxAge >= 0 || c.Value != "" || !c.HttpOnly {
		t.Fatalf("cleared cookie %+v", c)
	}
}
