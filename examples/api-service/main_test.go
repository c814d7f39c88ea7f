package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/examples/internal/pgtest"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// bin holds the api-service binary, built once.
var bin string

// pg is the PostgreSQL server of the tests that need one.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	dir, err := testproc.Build(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "api-service")
	code := m.Run()
	pg.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// backends are the stores the service is tested on, as --db names them.
var backends = []struct {
	name string
	db   func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "amaretti.db") }},
	{"postgres", func(t *testing.T) string { return pg.Database(t) }},
}

// newKeysAndStore makes what "amaretti init" makes, in a test directory:
// a key directory and the store db names.
func newKeysAndStore(t *testing.T, db string) (*macaroon.KeyStore, epoch.Store) {
	t.Helper()
	keys, _, err := macaroon.InitKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := setup.Store(context.Background(), db, setup.StoreOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return keys, store
}

// TestAPIService runs the service's routes on each store: valid tokens
// accepted, a touched editor's token and a revoked API token refused.
func TestAPIService(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testAPIService(t, b.db(t)) })
	}
}

func testAPIService(t *testing.T, db string) {
	ctx := context.Background()
	keys, store := newKeysAndStore(t, db)
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice"})
	bob, _ := store.Create(ctx, epoch.NewEditor{Username: "bob"})
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
	bobTok, bobRow, err := issuer.Create(ctx, apitoken.Request{EditorID: bob.ID, Name: "cron", Creator: bob.ID})
	if err != nil {
		t.Fatal(err)
	}
	// Bob's holder narrows his token offline before using it.
	bobNarrow, err := macaroon.Attenuate(bobTok, caveat.Methods{"GET"})
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
		{"GET", "/v1/whoami", bobNarrow, 200, bobRow.TokenID},
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
	// The registry knows how each was used: as minted, or narrowed.
	if used, _ := store.Token(ctx, row.TokenID); used.LastAttenuation != "" {
		t.Errorf("alice's token used as minted, recorded as attenuated to %q", used.LastAttenuation)
	}
	if used, _ := store.Token(ctx, bobRow.TokenID); used.LastAttenuation != "GET" || used.LastAttenuationID == "" {
		t.Errorf("bob's narrowed token: last attenuation %q (%q)", used.LastAttenuation, used.LastAttenuationID)
	}
	// Log out everywhere: touch, and the API refuses the token.
	if _, err := store.Touch(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(alice.ID)
	// One API token revoked: that one refused, the editor's others not.
	if _, _, err := store.RevokeToken(ctx, bobRow.TokenID); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(bob.ID)
	for _, tc := range []struct {
		name, token string
		status      int
		body        string
	}{
		{"session of a touched editor", full.Token, 401, "token revoked"},
		{"api token of a touched editor", apiTok, 401, "token revoked"},
		{"revoked api token", bobTok, 401, "token revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := call("GET", "/v1/whoami", tc.token); status != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("%d %s, want %d with %q", status, body, tc.status, tc.body)
			}
		})
	}
	later, _ := minter.Mint(ctx, bob.ID, macaroon.ExpiresIn(time.Hour))
	if status, body := call("GET", "/v1/whoami", later.Token); status != 200 {
		t.Errorf("bob's session after the revocation of one API token: %d %s", status, body)
	}
}

// TestLifetimePolicy: the service refuses API tokens that outlive the
// policy amarettid enforces, with their own reason; other kinds are not
// affected.
func TestLifetimePolicy(t *testing.T) {
	ctx := context.Background()
	keys, store := newKeysAndStore(t, filepath.Join(t.TempDir(), "amaretti.db"))
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Second)})
	policy := apitoken.DefaultPolicy()
	policy.MaxAPI, policy.API, policy.Bootstrap = 24*time.Hour, 24*time.Hour, 24*time.Hour
	v, err := newVerifier(keys, epoch.NewCache(store, 0, cacheTTL), policy)
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
