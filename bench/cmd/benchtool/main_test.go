package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// TestScriptParses keeps scripts/bench from rotting unnoticed: it is not
// run by scripts/test, but its syntax is checked here and the helper it
// builds is this package.
func TestScriptParses(t *testing.T) {
	out, err := exec.Command("bash", "-n", filepath.Join("..", "..", "..", "scripts", "bench")).CombinedOutput()
	if err != nil {
		t.Fatalf("bash -n scripts/bench: %v\n%s", err, out)
	}
}

func TestBare(t *testing.T) {
	for _, path := range []string{"/v1/auth", "/v1/verify"} {
		t.Run(path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			bare().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), body) {
				t.Fatalf("got %d %q", rec.Code, rec.Body.String())
			}
		})
	}
}

// TestAnswer: the reference answers carry what amarettid's allowed
// answers carry, header for header.
func TestAnswer(t *testing.T) {
	identityHeaders := []string{"X-Amaretti-Editor-Id", "X-Amaretti-Username", "X-Amaretti-Role", "X-Amaretti-Token-Id", "X-Amaretti-Rights", "X-Amaretti-Kind", "Cache-Control"}
	tests := []struct {
		path    string
		headers []string
		body    []byte
	}{
		{"/v1/auth", identityHeaders, nil},
		{"/v1/verify", append(identityHeaders, "Content-Type"), identity.body},
		{"/", []string{"Content-Type", "Content-Length"}, body},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			answer().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), tc.body) {
				t.Fatalf("got %d %q", rec.Code, rec.Body.String())
			}
			if len(rec.Header()) != len(tc.headers) {
				t.Fatalf("headers %v, want %v", rec.Header(), tc.headers)
			}
			for _, h := range tc.headers {
				if _, ok := rec.Header()[h]; !ok {
					t.Fatalf("no %s in %v", h, rec.Header())
				}
			}
		})
	}
}

// TestTokens: every token written is distinct and verifies.
func TestTokens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	alice, err := store.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	minter, err := macaroon.NewMinter(keys, "bench")
	if err != nil {
		t.Fatal(err)
	}
	m, err := minter.Mint(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(keys, store)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"three", []string{"tokens", "3"}, true},
		{"zero", []string{"tokens", "0"}, false},
		{"not a number", []string{"tokens", "x"}, false},
		{"no command", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(tt.args, strings.NewReader(m.Token+"\n"), &out)
			if (err == nil) != tt.ok {
				t.Fatalf("run: %v", err)
			}
			if !tt.ok {
				return
			}
			seen := map[string]bool{}
			for _, tok := range strings.Fields(out.String()) {
				if seen[tok] {
					t.Fatal("a token is repeated")
				}
				seen[tok] = true
				if _, err := v.Verify(ctx, tok, caveat.Request{}); err != nil {
					t.Fatalf("token %d does not verify: %v", len(seen), err)
				}
			}
			if len(seen) != 3 {
				t.Fatalf("%d tokens, want 3", len(seen))
			}
		})
	}
}
