package macaroon_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

func ExampleMinter_Mint() {
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		log.Fatal(err)
	}
	minter, err := macaroon.NewMinter(keys, "api.example.org")
	if err != nil {
		log.Fatal(err)
	}
	minted, err := minter.Mint(context.Background(), "aaaaaaaaaaaaaaaaaaaaaaaaaa",
		macaroon.ExpiresIn(time.Hour), macaroon.WithCaveats(caveat.Rights{"read"}))
	if err != nil {
		log.Fatal(err)
	}
	tok, _ := macaroon.Parse(minted.Token, macaroon.Limits{})
	for _, c := range tok.Caveats() {
		name, op, _ := strings.Cut(c, " ")
		fmt.Println(name, op[:1])
	}
	fmt.Println(tok.KeyID() == minted.KeyID, tok.TokenID() == minted.TokenID)
	// Output:
	// editor_id =
	// time >
	// time <
	// rights =
	// true true
}

func ExampleAttenuate() {
	// Anyone holding a token can make a weaker one, without any key.
	const token = "AgEPYXBpLmV4YW1wbGUub3JnAjBnb2xkZW4tMjAyNjozRjI1MDRFMC00Rjg5LTQxRDMtOUQyQS0wQzA0RkUxQUJDREUAAiZlZGl0b3JfaWQgPSBhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYQACInRpbWUgPiAyMDI2LTAxLTAxVDAwOjAwOjAwLjAwMDAwMVoAAht0aW1lIDwgMjAyNy0wMS0wMVQwMDowMDowMFoAAAYg6O4T4MF4MljWkkRMDoqKwQsW9ozsu2mtNmriG2OtGRU"
	weaker, err := macaroon.Attenuate(token, caveat.Methods{"GET"}, caveat.PathPrefix("/api/v1"))
	if err != nil {
		log.Fatal(err)
	}
	tok, _ := macaroon.Parse(weaker, macaroon.Limits{})
	fmt.Println(tok.KeyID(), tok.TokenID())
	fmt.Println(tok.Caveats()[3:])
	// Output:
	// golden-2026 3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE
	// [method = GET path_prefix = /api/v1]
}
