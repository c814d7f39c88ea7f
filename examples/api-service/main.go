// Command api-service is a small HTTP API protected by amaretti's verifier
// middleware, verifying tokens in-process against a store made by the
// amaretti CLI. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/amaretti-auth/amaretti/internal/setup"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/buildinfo"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

func main() {
	listen := flag.String("listen", envOr("API_LISTEN", "127.0.0.1:8081"), "address to listen on")
	db := flag.String("db", envOr("AMARETTI_DB", "./amaretti.db"), "SQLite database made by amaretti init")
	keyDir := flag.String("keys", envOr("AMARETTI_KEYS", "./keys"), "key directory made by amaretti init")
	trustProxy := flag.Bool("trust-proxy-headers", os.Getenv("API_TRUST_PROXY_HEADERS") == "1",
		"serve GET /v1/proxied/whoami from the X-Amaretti-* headers a forward-auth proxy sets; only when the API is reachable through that proxy alone")
	lastUse := flag.Duration("last-use-interval", time.Minute, "record API tokens' last use (shown on the web frontend's tokens page) at most this often per token")
	policy := apitoken.DefaultPolicy()
	flag.DurationVar(&policy.MaxAPI, "max-api-token-lifetime", envDuration("AMARETTI_MAX_API_TOKEN_LIFETIME", policy.MaxAPI),
		"refuse API tokens that live longer than this (the lifetime policy amarettid enforces)")
	flag.BoolVar(&policy.AllowNoExpiry, "allow-no-expiry", os.Getenv("AMARETTI_ALLOW_NO_EXPIRY") == "true" || os.Getenv("AMARETTI_ALLOW_NO_EXPIRY") == "1",
		"accept API tokens that never expire")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println("api-service version", buildinfo.Version())
		return
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := serve(*listen, *db, *keyDir, *trustProxy, *lastUse, policy, log); err != nil {
		log.Error("api-service stopped", "err", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envDuration reads a duration from the environment, or def.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// newVerifier verifies with keys against store's epochs under the lifetime
// policy. The epoch cache bounds how stale a revocation can be: 2 s here.
func newVerifier(keys *macaroon.KeyStore, store epoch.Source, policy apitoken.Policy) (*verifier.Verifier, error) {
	return verifier.New(keys, epoch.NewCache(store, 0, 2*time.Second), policy.VerifierOptions()...)
}

func serve(listen, db, keyDir string, trustProxy bool, lastUse time.Duration, policy apitoken.Policy, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	keys, err := setup.Keys(keyDir)
	if err != nil {
		return err
	}
	store, err := setup.Store(ctx, db, setup.StoreOptions{})
	if err != nil {
		return err
	}
	defer store.Close()
	v, err := newVerifier(keys, store, policy)
	if err != nil {
		return err
	}
	tracker := apitoken.NewTracker(store, lastUse, log)
	trackerDone := make(chan struct{})
	go func() { tracker.Run(ctx); close(trackerDone) }()
	defer func() { <-trackerDone }() // the last batch is written before the store closes
	srv := &http.Server{
		Addr:              listen,
		Handler:           newServer(v, tracker, trustProxy, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	// Listen first, then say so: the "listening" line is the readiness
	// signal (tests and supervisors wait for it).
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Info("api-service listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newServer routes the API:
//
//	GET  /v1/whoami  the caller's identity (token required)
//	GET  /v1/hello   public; greets the caller by editor id when a token is sent
//	POST /v1/things  needs the "edit" right
//	GET  /v1/proxied/whoami  the identity a forward-auth proxy put in
//	                 X-Amaretti-* headers (only with trustProxy)
//
// Every verified request notes its token's use in tracker (nil: none).
func newServer(v *verifier.Verifier, tracker *apitoken.Tracker, trustProxy bool, log *slog.Logger) http.Handler {
	track := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id, ok := verifier.FromContext(r.Context()); ok && tracker != nil {
				from, _, _ := net.SplitHostPort(r.RemoteAddr)
				tracker.Seen(id.TokenID, from)
			}
			next.ServeHTTP(w, r)
		})
	}
	withTracking := func(m func(http.Handler) http.Handler) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler { return m(track(h)) }
	}
	required := withTracking(v.Middleware(verifier.WithLogger(log)))
	optional := withTracking(v.Middleware(verifier.Optional(), verifier.WithLogger(log)))
	mux := http.NewServeMux()
	mux.Handle("GET /v1/whoami", required(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verifier.FromContext(r.Context())
		writeJSON(w, http.StatusOK, map[string]any{
			"editor_id": id.EditorID, "role": id.Role, "token_id": id.TokenID, "rights": id.Rights,
		})
	})))
	mux.Handle("GET /v1/hello", optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := verifier.FromContext(r.Context()); ok {
			writeJSON(w, http.StatusOK, map[string]string{"hello": id.EditorID})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"hello": "anonymous"})
	})))
	editing := withTracking(v.Middleware(verifier.WithLogger(log), verifier.RequireRights("edit")))
	mux.Handle("POST /v1/things", editing(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verifier.FromContext(r.Context())
		writeJSON(w, http.StatusCreated, map[string]string{"created_by": id.EditorID})
	})))
	if trustProxy {
		mux.HandleFunc("GET /v1/proxied/whoami", func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Amaretti-Editor-Id")
			if id == "" {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no identity from the proxy"})
				return
			}
			// X-Amaretti-Rights is always set by amarettid: "*" means the
			// token does not restrict rights (the role still bounds them).
			writeJSON(w, http.StatusOK, map[string]string{
				"editor_id": id, "username": r.Header.Get("X-Amaretti-Username"), "role": r.Header.Get("X-Amaretti-Role"),
				"token_id": r.Header.Get("X-Amaretti-Token-Id"), "rights": r.Header.Get("X-Amaretti-Rights"),
			})
		})
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
