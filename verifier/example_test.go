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

// Mint a token, verify it, revoke it by touching the editor's epoch. The
// body of this function is README.md's "Use it from Go" (TestReadmeExample
// keeps them identical).
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "amaretti") // your data directory
	defer os.RemoveAll(dir)
	keys, _, _ := macaroon.InitKeyStore(filepath.Join(dir, "keys")) // dir 0700, one 0600 file per key
	store, _ := sqlite.Open(ctx, filepath.Join(dir, "amaretti.db")) // WAL, migrations applied
	defer store.Close()
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice"})

	minter, _ := macaroon.NewMinter(keys, "api.example.org")
	minted, _ := minter.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour),
		macaroon.WithCaveats(caveat.Rights{"read"}))

	states := epoch.NewCache(store, 0, 2*time.Second) // epochs cached in-process for at most 2 s
	v, _ := verifier.New(keys, states)
	req := caveat.Request{Method: "GET", Path: "/api/things"}
	id, err := v.Verify(ctx, minted.Token, req)
	fmt.Println(id.EditorID == alice.ID, id.Role, id.Rights, err) // true editor [read] <nil>

	store.Touch(ctx, alice.ID)  // every token of alice minted so far is now revoked,
	states.Invalidate(alice.ID) // and this verifier knows it now, not in up to 2 s
	_, err = v.Verify(ctx, minted.Token, req)
	fmt.Println(errors.Is(err, verifier.ErrRevoked), err) // true token revoked
	// Output:
	// true editor [read] <nil>
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
