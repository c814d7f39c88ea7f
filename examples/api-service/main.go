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
	"sync"
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
	var o options
	flag.StringVar(&o.listen, "listen", envOr("API_LISTEN", "127.0.0.1:8081"), "address to listen on")
	flag.StringVar(&o.db, "db", envOr("AMARETTI_DB", "./amaretti.db"), "the store: a SQLite database file made by amaretti init (or sqlite:FILE), or a postgres:// URL (env AMARETTI_DB; keep a password out of ps: set it there, or in PGPASSWORD or ~/.pgpass)")
	flag.BoolVar(&o.noMigrate, "no-migrate", envBool("AMARETTI_NO_MIGRATE"), "refuse to start on a database whose schema is older than this program (run \"amaretti migrate\" first) instead of upgrading it (env AMARETTI_NO_MIGRATE)")
	flag.StringVar(&o.keys.Keys, "keys", envOr("AMARETTI_KEYS", "./keys"), "root key directory made by amaretti init, or \"db\" for keys kept (sealed) in the PostgreSQL database --db names")
	flag.StringVar(&o.keys.KEKFile, "key-encryption-key-file", os.Getenv(setup.KEKFileEnv), "file (mode 0600) holding the key-encryption key of keys kept in the database (--keys db; env "+setup.KEKFileEnv+"); or set "+setup.KEKEnv+" to the key itself")
	flag.DurationVar(&o.poll, "poll", envDuration("AMARETTI_POLL", epoch.DefaultPollInterval), "read the store's change log this often (PostgreSQL also wakes it at once with NOTIFY): the bound on how late a touch, a revocation or, with --keys db, a key rotation reaches this service (env AMARETTI_POLL)")
	flag.DurationVar(&o.storeTimeout, "store-timeout", envDuration("AMARETTI_STORE_TIMEOUT", setup.DefaultReadTimeout), "bound on each PostgreSQL read of the verify path (editor state, change log): past it the request is denied with 503, as amarettid's --store-timeout; SQLite ignores it (env AMARETTI_STORE_TIMEOUT)")
	flag.DurationVar(&o.keysReload, "keys-reload", envDuration("AMARETTI_KEYS_RELOAD", 30*time.Second), "also re-read the root keys this often (and on SIGHUP); with a key directory this is how a rotation reaches the service; 0 for SIGHUP only (env AMARETTI_KEYS_RELOAD)")
	flag.BoolVar(&o.trustProxy, "trust-proxy-headers", os.Getenv("API_TRUST_PROXY_HEADERS") == "1",
		"serve GET /v1/proxied/whoami from the X-Amaretti-* headers a forward-auth proxy sets; only when the API is reachable through that proxy alone")
	flag.DurationVar(&o.lastUse, "last-use-interval", time.Minute, "record API tokens' last use (shown on the web frontend's tokens page) at most this often per token")
	o.policy = apitoken.DefaultPolicy()
	flag.DurationVar(&o.policy.MaxAPI, "max-api-token-lifetime", envDuration("AMARETTI_MAX_API_TOKEN_LIFETIME", o.policy.MaxAPI),
		"refuse API tokens that live longer than this (the lifetime policy amarettid enforces)")
	flag.BoolVar(&o.policy.AllowNoExpiry, "allow-no-expiry", envBool("AMARETTI_ALLOW_NO_EXPIRY"),
		"accept API tokens that never expire")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println("api-service version", buildinfo.Version())
		return
	}
	o.keys.DB, o.keys.KEK = o.db, os.Getenv(setup.KEKEnv) // the key itself only from the environment: never in ps output
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := serve(o, log); err != nil {
		// setup's errors name a PostgreSQL database as setup.Redact does,
		// never with its password.
		log.Error("api-service stopped", "err", err)
		os.Exit(1)
	}
}

// options are the service's settings.
type options struct {
	listen, db       string
	noMigrate        bool
	keys             setup.KeyOptions // Keys, KEKFile, KEK; DB is db
	poll, keysReload time.Duration
	storeTimeout     time.Duration
	trustProxy       bool
	lastUse          time.Duration
	policy           apitoken.Policy
}

// envBool reads a boolean from the environment: "1" or "true".
func envBool(name string) bool {
	v := os.Getenv(name)
	return v == "1" || v == "true"
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

// cacheTTL is how long the service caches an editor's state. The change
// log follower drops an entry as soon as it reads a change to it, so the
// TTL only bounds staleness if the follower itself goes wrong.
const cacheTTL = 2 * time.Second

// newVerifier verifies with keys against cache under the lifetime policy.
func newVerifier(keys *macaroon.KeyStore, cache *epoch.Cache, policy apitoken.Policy) (*verifier.Verifier, error) {
	return verifier.New(keys, cache, policy.VerifierOptions()...)
}

// watcher is a store that notifies changes as they commit (PostgreSQL
// LISTEN/NOTIFY): Watch calls wake on each, and after every reconnection,
// until ctx ends. It is a wake-up hint: the follower still reads the log.
type watcher interface {
	Watch(ctx context.Context, wake func(), state func(up bool)) error
}

// follow keeps cache and keys up to date with the store's change log until
// ctx ends, as amarettid does: every change to an editor drops its cached
// state, and, with keys in the database, a rotation, retirement or import
// made on any host reloads the keys, within poll (at once when PostgreSQL's
// NOTIFY arrives). The cache is bypassed until the first catch-up and
// whenever the log cannot be read. The returned function waits for the
// goroutines to end (after ctx).
func follow(ctx context.Context, store epoch.Store, cache *epoch.Cache, keys *macaroon.KeyStore, keysInDB bool, poll time.Duration, log *slog.Logger) (wait func()) {
	opts := []epoch.FollowerOption{epoch.WithPollInterval(poll), epoch.WithFollowerLogger(log)}
	if keysInDB {
		opts = append(opts, epoch.WithKeysChanged(keys.Reloader(log)))
	}
	f := epoch.NewFollower(store, opts...)
	cache.SetBypass(true) // until the follower's first catch-up
	var wg sync.WaitGroup
	wg.Go(func() { f.Run(ctx, cache) })
	if w, ok := store.(watcher); ok {
		wg.Go(func() {
			if err := w.Watch(ctx, f.Wake, nil); err != nil && ctx.Err() == nil {
				log.Warn("change notifications stopped; the change log is still polled", "err", err)
			}
		})
	}
	return wg.Wait
}

func serve(o options, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.storeTimeout <= 0 {
		return errors.New("--store-timeout must be positive")
	}
	if o.poll <= 0 {
		return errors.New("--poll must be positive")
	}
	inDB := setup.KeysInDatabase(o.keys.Keys)
	// A key directory is opened first (its absence is said first); keys
	// in the database once the store is open.
	var keys *macaroon.KeyStore
	var err error
	if !inDB {
		if keys, err = setup.OpenKeys(ctx, o.keys, nil); err != nil {
			return err
		}
	}
	store, err := setup.Store(ctx, o.db, setup.StoreOptions{NoMigrate: o.noMigrate, ReadTimeout: o.storeTimeout})
	if err != nil {
		return err
	}
	defer store.Close()
	if inDB {
		if keys, err = setup.OpenKeys(ctx, o.keys, store); err != nil {
			return err
		}
	}
	cache := epoch.NewCache(store, 0, cacheTTL)
	v, err := newVerifier(keys, cache, o.policy)
	if err != nil {
		return err
	}
	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
	waitFollow := follow(bg, store, cache, keys, inDB, o.poll, log)
	defer func() { stopBg(); waitFollow() }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go keys.KeepLoaded(bg, o.keysReload, hup, log)
	// Rotations its uses end are retired after each batch; the cache
	// learns of them from the change log it follows.
	tracker := apitoken.NewTracker(store, o.lastUse, log, apitoken.WithRetirement(store, nil))
	trackerDone := make(chan struct{})
	go func() { tracker.Run(bg); close(trackerDone) }()
	// The last batch is written before the store closes; stopBg first, so
	// that an error before the server ran (a taken port) does not wait
	// for a signal.
	defer func() { stopBg(); <-trackerDone }()
	srv := &http.Server{
		Addr:              o.listen,
		Handler:           newServer(v, tracker, o.trustProxy, log),
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
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	log.Info("api-service listening", "addr", ln.Addr().String(), "db", setup.Redact(o.db), "keys", setup.KeysWhere(o.keys), "poll", o.poll.String())
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
				// The token as presented, for the attenuation its holder
				// added (read again only when the use is noted).
				tok, _ := verifier.BearerToken(r)
				tracker.SeenToken(id.TokenID, from, tok)
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
