package modgraph_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// TestLibraryDeps fails when a package of the library (any package of the
// root module outside cmd/ and internal/) depends, directly or not, on gRPC
// or Envoy's protos, which only amarettid's ext_authz uses.
func TestLibraryDeps(t *testing.T) {
	list := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list"}, args...)...)
		cmd.Dir = filepath.Join("..", "..")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		return out
	}
	var lib []string
	for _, p := range strings.Fields(string(list("./..."))) {
		if !strings.Contains(p, "/cmd/") && !strings.Contains(p, "/internal/") {
			lib = append(lib, p)
		}
	}
	if !slices.Contains(lib, "github.com/amaretti-auth/amaretti/verifier") {
		t.Fatalf("the library's packages are not listed: %v", lib)
	}
	if err := modgraph.CheckLibraryDeps(list(append([]string{"-deps"}, lib...)...)); err != nil {
		t.Fatal(err)
	}
	// The daemon does import them: the rule can fail.
	if err := modgraph.CheckLibraryDeps(list("-deps", "./cmd/amarettid")); !errors.Is(err, modgraph.ErrDaemonOnly) {
		t.Fatalf("amarettid's dependencies: %v, want %v", err, modgraph.ErrDaemonOnly)
	}
}

// TestCheckLibraryDeps pins what CheckLibraryDeps refuses.
func TestCheckLibraryDeps(t *testing.T) {
	for _, tc := range []struct {
		name, deps string
		bad        bool
	}{
		{"standard library and the module's own", "fmt\nnet/http\ngithub.com/amaretti-auth/amaretti/verifier\n", false},
		{"protobuf", "google.golang.org/protobuf/proto\n", false},
		{"a module whose name starts like grpc", "google.golang.org/grpcx/y\n", false},
		{"grpc", "google.golang.org/grpc\n", true},
		{"a grpc package", "google.golang.org/grpc/codes\n", true},
		{"envoy's protos", "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3\n", true},
		{"genproto", "google.golang.org/genproto/googleapis/rpc/status\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := modgraph.CheckLibraryDeps([]byte(tc.deps))
			if bad := errors.Is(err, modgraph.ErrDaemonOnly); bad != tc.bad {
				t.Fatalf("%v, want refused %v", err, tc.bad)
			}
		})
	}
}
