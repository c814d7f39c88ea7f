package session_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/amaretti-auth/amaretti/session"
)

func ExampleSet() {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "https://www.example.org/login/callback", nil) // TLS
	session.Set(w, r, session.Cookie{Token: "AgEPYXBpLmV4YW1wbGUub3Jn", Expires: now.Add(8 * time.Hour)}, now)
	fmt.Println(w.Header().Get("Set-Cookie"))
	// Output:
	// amaretti_session=AgEPYXBpLmV4YW1wbGUub3Jn; Path=/; Expires=Mon, 01 Jun 2026 20:00:00 GMT; Max-Age=28800; HttpOnly; Secure; SameSite=Lax
}
