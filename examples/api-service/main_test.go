package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// newKeysAndStore makes what "amaretti init" makes, in a test directory.
func newKeysAndStore(t *testing.T) (*macaroon.KeyStore, *sqlite.Store) {
	t.Helper()
	dir := t.TempDir()
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "amaretti.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return keys, store
}

func TestAPIService(t *testing.T) {
	ctx := context.Background()
	keys, store := newKeysAndStore(t)
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice"})
	cache := epoch.NewCache(store, 0, time.Minute)
	v, _ := verifier.New(keys, cache)
	tracker := apitoken.NewTracker(store, time.Hour, nil)
	srv := httptest.NewServer(newServer(v, tracker, false, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	minter, _ := macaroon.NewMinter(keys, "api.example.org")
	checker, _ := caveat.NewChecker()
	issuer, err := apitoken.NewIssuer(store, minter, checker)
	if err != nil {
		t.Fatal(err)
	}
	apiTok, row, err := issuer.Create(ctx, apitoken.Request{EditorID: alice.ID, Name: "cron", Creator: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := minter.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour))
	readOnly, _ := minter.Mint(ctx, alice.ID, macaroon.WithCaveats(caveat.Rights{"read"}))

	call := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method, path, token string
		status              int
		body                string
	}{
		{"GET", "/v1/whoami", full.Token, 200, alice.ID},
		{"GET", "/v1/whoami", apiTok, 200, row.TokenID},
		{"GET", "/v1/whoami", "", 401, "unauthorized"},
		{"GET", "/v1/hello", "", 200, "anonymous"},
		{"GET", "/v1/hello", full.Token, 200, alice.ID},
		{"GET", "/v1/hello", "garbage", 401, "invalid_token"},
		{"POST", "/v1/things", full.Token, 201, alice.ID},
		{"POST", "/v1/things", readOnly.Token, 403, "insufficient_scope"},
	} {
		status, body := call(tc.method, tc.path, tc.token)
		if status != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, status, body, tc.status, tc.body)
		}
	}
	// The API token's use reaches the registry, with where it came from.
	if err := tracker.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if used, err := store.Token(ctx, row.TokenID); err != nil || used.LastUsed.IsZero() || used.LastUsedFrom != "127.0.0.1" {
		t.Errorf("last use of the API token: %+v %v", used, err)
	}
	// Log out everywhere: touch, and the API refuses the token.
	if _, err := store.Touch(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(alice.ID)
	if status, body := call("GET", "/v1/whoami", full.Token); status != 401 || !strings.Contains(body, "token revoked") {
		t.Errorf("after touch: %d %s", status, body)
	}
}

// TestLifetimePolicy: the service refuses API tokens that outlive the
// policy amarettid enforces, with their own reason; other kinds are not
// affected.
func TestLifetimePolicy(t *testing.T) {
	ctx := context.Background()
	keys, store := newKeysAndStore(t)
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Second)})
	policy := apitoken.DefaultPolicy()
	policy.MaxAPI, policy.API, policy.Bootstrap = 24*time.Hour, 24*time.Hour, 24*time.Hour
	v, err := newVerifier(keys, store, policy)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newServer(v, apitoken.NewTracker(store, time.Hour, nil), false, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	minter, _ := macaroon.NewMinter(keys, "api.example.org")
	for _, tc := range []struct {
		name string
		opts []macaroon.MintOption
		want int
	}{
		{"api token within the policy", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(time.Hour)}, 200},
		{"api token over the policy", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI), macaroon.ExpiresIn(48 * time.Hour)}, 401},
		{"api token that never expires", []macaroon.MintOption{macaroon.WithKind(caveat.KindAPI)}, 401},
		{"cli token is not an api token", []macaroon.MintOption{macaroon.WithKind(caveat.KindCLI), macaroon.ExpiresIn(48 * time.Hour)}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := minter.Mint(ctx, alice.ID, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", srv.URL+"/v1/whoami", nil)
			req.Header.Set("Authorization", "Bearer "+m.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || tc.want == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "lifetime exceeds the policy") {
				t.Fatalf("%d %q, want %d", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.want)
			}
		})
	}
}
