package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// Mint a token, verify it, revoke it by touching the editor's epoch.
func Example() {
	dir, _ := os.MkdirTemp("", "amaretti")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	keys, _, _ := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	store, _ := sqlite.Open(ctx, filepath.Join(dir, "amaretti.db"))
	defer store.Close()
	alice, _ := store.Create(ctx, sqlite.NewEditor{Username: "alice"})

	minter, _ := macaroon.NewMinter(keys, "api.example.org")
	minted, _ := minter.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour))

	v, _ := verifier.New(keys, store)
	id, err := v.Verify(ctx, minted.Token, caveat.Request{})
	fmt.Println(id.EditorID == alice.ID, id.Role, err)

	store.Touch(ctx, alice.ID)
	_, err = v.Verify(ctx, minted.Token, caveat.Request{})
	fmt.Println(errors.Is(err, verifier.ErrRevoked), err)
	// Output:
	// true editor <nil>
	// true token revoked
}

func ExampleVerifier_Middleware() {
	dir, _ := os.MkdirTemp("", "amaretti")
	defer os.RemoveAll(dir)
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "amaretti.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	// Cache epochs in-process for at most 2 s.
	v, err := verifier.New(keys, epoch.NewCache(store, 0, 2*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verifier.FromContext(r.Context())
		fmt.Fprintln(w, id.EditorID)
	})
	http.Handle("GET /v1/whoami", v.Middleware()(whoami))
	fmt.Println("routes registered")
	// Output: routes registered
}
