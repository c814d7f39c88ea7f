package session_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/session"
	"github.com/amaretti-auth/amaretti/verifier"
)

// Example_frontend is the README's "Web frontends: the session cookie"
// snippet (verifier's TestReadmeGoBlocks keeps them equal), in a frontend
// that logs alice in, serves her with the cookie, and logs her out
// everywhere.
func Example_frontend() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "amaretti")
	defer os.RemoveAll(dir)
	keys, _, _ := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	store, _ := sqlite.Open(ctx, filepath.Join(dir, "amaretti.db"))
	defer store.Close()
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Second)})
	editorID := alice.ID
	minter, _ := macaroon.NewMinter(keys, "www.example.org")
	minted, _ := minter.Mint(ctx, editorID, macaroon.ExpiresIn(12*time.Hour),
		macaroon.WithUsername(alice.Username), macaroon.WithKind(caveat.KindSession))
	v, _ := verifier.New(keys, store) // no cache: every request reads the store
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "https://www.example.org/login/callback", nil)

	session.Set(w, r, session.Cookie{Token: minted.Token, Expires: minted.Expires}, time.Now())
	// HttpOnly, SameSite=Lax, Secure over TLS (or X-Forwarded-Proto: https), Max-Age = the token's lifetime
	session.Clear(w, r, "", "")                                   // log out (the token itself stays valid)
	store.Touch(ctx, editorID)                                    // log out everywhere: every token and cookie of the editor
	api := v.Middleware(verifier.WithCookie(session.DefaultName)) // read the token from the cookie (or a bearer header, not both)

	set := w.Result().Cookies()
	fmt.Println("set:", set[0].HttpOnly, set[0].Secure, set[0].SameSite == http.SameSiteLaxMode, set[0].MaxAge > 11*3600)
	fmt.Println("cleared:", set[1].MaxAge < 0)
	whoami := api(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verifier.FromContext(r.Context())
		fmt.Fprint(w, id.Username)
	}))
	req := httptest.NewRequest("GET", "https://www.example.org/me", nil)
	req.AddCookie(set[0])
	resp := httptest.NewRecorder()
	whoami.ServeHTTP(resp, req)
	fmt.Println("after log out everywhere:", resp.Code, strings.Contains(resp.Header().Get("WWW-Authenticate"), "invalid_token"))
	// Output:
	// set: true true true true
	// cleared: true
	// after log out everywhere: 401 true
}
