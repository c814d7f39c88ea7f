package modgraph_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/modgraph"
)

// TestModuleGraph fails when the library's go.mod requires a module of the
// examples (chromedp, go-oidc, go-jose, oauth2) or of the benchmarks
// (golang-jwt), or a golang.org/x/crypto older than 2024.
func TestModuleGraph(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(gomod), "module github.com/amaretti-auth/amaretti\n") {
		t.Fatal("../../go.mod is not the library's go.mod")
	}
	if !strings.Contains(string(gomod), "\t"+modgraph.Crypto+" v") {
		t.Fatalf("go.mod does not require %s: macaroon-bakery's 2019 pin would be selected", modgraph.Crypto)
	}
	if err := modgraph.Check(gomod); err != nil {
		t.Fatalf("go.mod: %v", err)
	}
}

// TestCheck pins what Check refuses, so TestModuleGraph can fail.
func TestCheck(t *testing.T) {
	const head = "module github.com/amaretti-auth/amaretti\n\ngo 1.26.0\n\n"
	for _, tc := range []struct {
		name  string
		gomod string
		want  []error // nil: accepted
	}{
		{"tidy library", "require (\n\tgopkg.in/macaroon.v2 v2.1.0\n)\n\nrequire golang.org/x/crypto v0.59.0 // indirect\n", nil},
		{"crypto v0.18.0, January 2024", "require golang.org/x/crypto v0.18.0\n", nil},
		{"crypto pseudo-version of 2024", "require golang.org/x/crypto v0.17.1-0.20240105000000-0123456789ab\n", nil},
		{"comment naming a forbidden module", "// not github.com/chromedp/chromedp\nrequire gopkg.in/macaroon.v2 v2.1.0\n", nil},
		{"chromedp", "require (\n\tgithub.com/chromedp/chromedp v0.23.0\n)\n", []error{modgraph.ErrForbidden}},
		{"cdproto, indirect", "require (\n\tgithub.com/chromedp/cdproto v0.159.0 // indirect\n)\n", []error{modgraph.ErrForbidden}},
		{"go-oidc", "require github.com/coreos/go-oidc/v3 v3.21.0\n", []error{modgraph.ErrForbidden}},
		{"go-jose", "require (\n\tgithub.com/go-jose/go-jose/v4 v4.1.8\n)\n", []error{modgraph.ErrForbidden}},
		{"oauth2", "require (\n\tgolang.org/x/oauth2 v0.37.0\n)\n", []error{modgraph.ErrForbidden}},
		{"golang-jwt", "require (\n\tgithub.com/golang-jwt/jwt/v5 v5.3.1\n)\n", []error{modgraph.ErrForbidden}},
		{"forbidden module replaced", "replace github.com/golang-jwt/jwt/v5 => ../jwt\n", []error{modgraph.ErrForbidden}},
		{"crypto 2019 pseudo-version", "require (\n\tgolang.org/x/crypto v0.0.0-20190404164418-38d8ce5564a5 // indirect\n)\n", []error{modgraph.ErrOldCrypto}},
		{"crypto v0.17.0, December 2023", "require golang.org/x/crypto v0.17.0\n", []error{modgraph.ErrOldCrypto}},
		{"crypto replaced with an old version", "replace golang.org/x/crypto => golang.org/x/crypto v0.0.0-20231201000000-0123456789ab\n", []error{modgraph.ErrOldCrypto}},
		{"both", "require (\n\tgithub.com/golang-jwt/jwt/v5 v5.3.1\n\tgolang.org/x/crypto v0.1.0\n)\n", []error{modgraph.ErrForbidden, modgraph.ErrOldCrypto}},
		{"require without a version", "require golang.org/x/crypto\n", []error{modgraph.ErrMalformed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := modgraph.Check([]byte(head + tc.gomod))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q is not %v", err, w)
				}
			}
		})
	}
}
