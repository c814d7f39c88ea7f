// Command webfront is an example web frontend for amaretti: users log in
// (OpenID Connect, or a development login), get a macaroon in a session
// cookie minted by the frontend, and manage their API tokens through
// amarettid. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/amaretti-auth/amaretti/internal/buildinfo"
	"github.com/amaretti-auth/amaretti/internal/setup"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", envOr("WEBFRONT_LISTEN", "127.0.0.1:8082"), "address to listen on")
	flag.StringVar(&o.db, "db", envOr("AMARETTI_DB", "./amaretti.db"), "the store shared with amarettid: a SQLite database file made by amaretti init (or sqlite:FILE), or a postgres:// URL (env AMARETTI_DB; keep a password out of ps: set it there, or in PGPASSWORD or ~/.pgpass)")
	flag.BoolVar(&o.noMigrate, "no-migrate", envBool("AMARETTI_NO_MIGRATE"), "refuse to start on a database whose schema is older than this program (run \"amaretti migrate\" first) instead of upgrading it (env AMARETTI_NO_MIGRATE)")
	flag.StringVar(&o.keys, "keys", envOr("AMARETTI_KEYS", "./keys"), "root key directory made by amaretti init, or \"db\" for keys kept (sealed) in the PostgreSQL database --db names (shared with amarettid)")
	flag.StringVar(&o.kekFile, "key-encryption-key-file", os.Getenv(setup.KEKFileEnv), "file (mode 0600) holding the key-encryption key of keys kept in the database (--keys db; env "+setup.KEKFileEnv+"); or set "+setup.KEKEnv+" to the key itself")
	flag.DurationVar(&o.poll, "poll", envDuration("AMARETTI_POLL", epoch.DefaultPollInterval), "read the store's change log this often (PostgreSQL also wakes it at once with NOTIFY): the bound on how late a log out everywhere, a lock or, with --keys db, a key rotation made elsewhere reaches this frontend (env AMARETTI_POLL)")
	flag.StringVar(&o.location, "location", envOr("AMARETTI_LOCATION", ""), "location written into session tokens")
	flag.StringVar(&o.daemon, "daemon", envOr("WEBFRONT_DAEMON", "http://127.0.0.1:8080"), "base URL of amarettid")
	flag.StringVar(&o.publicURL, "public-url", envOr("WEBFRONT_PUBLIC_URL", ""), "URL users reach the frontend at (default http://LISTEN); the only Host answered besides loopback names, and the OIDC redirect is PUBLIC-URL/login/oidc/callback")
	o.policy = apitoken.DefaultPolicy()
	flag.DurationVar(&o.sessionTTL, "session-ttl", o.policy.Session, "lifetime of a session (the lifetime policy's session default)")
	flag.DurationVar(&o.policy.MaxAPI, "max-api-token-lifetime", envDuration("AMARETTI_MAX_API_TOKEN_LIFETIME", o.policy.MaxAPI),
		"longest API token lifetime the tokens page offers; amarettid's --max-api-token-lifetime decides (env AMARETTI_MAX_API_TOKEN_LIFETIME)")
	flag.BoolVar(&o.policy.AllowNoExpiry, "allow-no-expiry", os.Getenv("AMARETTI_ALLOW_NO_EXPIRY") == "true" || os.Getenv("AMARETTI_ALLOW_NO_EXPIRY") == "1",
		"offer API tokens that never expire on the tokens page; amarettid's --allow-no-expiry decides (env AMARETTI_ALLOW_NO_EXPIRY)")
	flag.DurationVar(&o.cacheTTL, "cache-ttl", epoch.DefaultCacheTTL, "how long an editor's epoch is cached; the change log follower (--poll) drops an entry as soon as it reads a change to it")
	flag.BoolVar(&o.dev, "dev-login", os.Getenv("WEBFRONT_DEV_LOGIN") == "1", "enable the development login: anyone logs in as any username, no password (loopback addresses only)")
	flag.BoolVar(&o.withDaemon, "with-daemon", os.Getenv("WEBFRONT_WITH_DAEMON") == "1", "for local use: run amarettid as a child process on the --daemon address (loopback only), with the same --db, --keys (and key-encryption key), --no-migrate and --location; it stops with the frontend")
	flag.StringVar(&o.daemonBin, "daemon-bin", envOr("WEBFRONT_DAEMON_BIN", ""), "amarettid binary for --with-daemon (default: next to webfront, else on PATH, else built with go build)")
	flag.StringVar(&o.issuer, "oidc-issuer", envOr("WEBFRONT_OIDC_ISSUER", ""), "OpenID Connect issuer URL (enables OIDC login)")
	flag.StringVar(&o.clientID, "oidc-client-id", envOr("WEBFRONT_OIDC_CLIENT_ID", ""), "OIDC client id")
	flag.StringVar(&o.label, "oidc-name", envOr("WEBFRONT_OIDC_NAME", "single sign-on"), "name of the OIDC provider on the login page")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println("webfront version", buildinfo.Version())
		return
	}
	o.clientSecret = os.Getenv("WEBFRONT_OIDC_CLIENT_SECRET") // only from the environment: never in ps output
	o.kek = os.Getenv(setup.KEKEnv)                           // likewise
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(o, log); err != nil {
		// One plain line, like amaretti and amarettid: it names the fix.
		fmt.Fprintf(os.Stderr, "webfront: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	listen, db, keys, location, daemon, publicURL string
	noMigrate                                     bool
	kekFile, kek                                  string // the key-encryption key of --keys db
	sessionTTL, cacheTTL, poll                    time.Duration
	policy                                        apitoken.Policy // MaxAPI and AllowNoExpiry, as amarettid's
	dev, withDaemon                               bool
	daemonBin                                     string
	issuer, clientID, clientSecret, label         string
}

// envDuration is a duration from the environment, or def when it is unset
// or not a duration (the flag's check then refuses nothing: run says).
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// envBool reads a boolean from the environment: "1" or "true".
func envBool(name string) bool {
	v := os.Getenv(name)
	return v == "1" || v == "true"
}

// keyOptions says where o's root keys live.
func (o options) keyOptions() setup.KeyOptions {
	return setup.KeyOptions{Keys: o.keys, DB: o.db, KEKFile: o.kekFile, KEK: o.kek}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Errors of starting up that name what to do, in the CLI's words.
var (
	errNoKeyStore = setup.ErrNoKeyStore
	errNoDatabase = setup.ErrNoDatabase
)

// openKeys and openStore open what "amaretti init" made, or say how to.
var (
	openKeys  = setup.OpenKeys
	openStore = setup.Store
)

// allowedHosts returns the Host values the frontend answers: the public
// URL's host, and, when local is set, the loopback names (localhost,
// 127.0.0.1, [::1]) with port, the port it listens on. A host on its
// scheme's default port is allowed with and without the port.
func allowedHosts(public *url.URL, port string, local bool) []string {
	var hosts []string
	add := func(name, port, defaultPort string) {
		hosts = append(hosts, net.JoinHostPort(name, port))
		if port == defaultPort {
			hosts = append(hosts, strings.TrimSuffix(net.JoinHostPort(name, port), ":"+port))
		}
	}
	defaultPort := map[string]string{"http": "80", "https": "443"}[public.Scheme]
	add(public.Hostname(), firstNonEmpty(public.Port(), defaultPort), defaultPort)
	if local {
		for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
			add(name, port, "80") // the frontend itself speaks plain HTTP
		}
	}
	return hosts
}

func run(o options, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case o.dev && !loopback(o.listen):
		return fmt.Errorf("--dev-login lets anyone log in as anyone; it only runs on a loopback address, not %s", o.listen)
	case !o.dev && o.issuer == "":
		return errors.New("no login provider: set --oidc-issuer (with --oidc-client-id and WEBFRONT_OIDC_CLIENT_SECRET), or --dev-login for local use")
	case o.sessionTTL <= 0:
		return errors.New("--session-ttl must be positive")
	}
	if o.policy == (apitoken.Policy{}) {
		o.policy = apitoken.DefaultPolicy()
	}
	if o.policy.MaxAPI <= 0 {
		return errors.New("--max-api-token-lifetime must be positive")
	}
	if o.publicURL == "" {
		// Only a named address says which Host browsers will send.
		if host, _, err := net.SplitHostPort(o.listen); err != nil || host == "" || net.ParseIP(host).IsUnspecified() {
			return fmt.Errorf("--listen %s names no host that users reach: set --public-url to the URL they use (only its Host is answered)", o.listen)
		}
		o.publicURL = "http://" + o.listen
	}
	public, err := url.Parse(o.publicURL)
	if err != nil || (public.Scheme != "http" && public.Scheme != "https") || public.Hostname() == "" {
		return fmt.Errorf("--public-url %q is not an absolute http:// or https:// URL", o.publicURL)
	}
	var daemonAddr string
	if o.withDaemon {
		if daemonAddr, err = localDaemonAddr(o.daemon); err != nil {
			return err
		}
	}
	if o.poll <= 0 {
		o.poll = epoch.DefaultPollInterval
	}
	// A key directory is opened first (its absence is said first); keys
	// in the database once the store is open.
	inDB := setup.KeysInDatabase(o.keys)
	var keys *macaroon.KeyStore
	if !inDB {
		if keys, err = openKeys(ctx, o.keyOptions(), nil); err != nil {
			return err
		}
	}
	store, err := openStore(ctx, o.db, setup.StoreOptions{NoMigrate: o.noMigrate})
	if err != nil {
		return err
	}
	defer store.Close()
	if inDB {
		if keys, err = openKeys(ctx, o.keyOptions(), store); err != nil {
			return err
		}
	}
	cache := epoch.NewCache(store, 0, o.cacheTTL)
	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
	waitFollow := follow(bg, store, cache, keys, inDB, o.poll, log)
	defer func() { stopBg(); waitFollow() }()
	v, err := verifier.New(keys, cache, o.policy.VerifierOptions()...)
	if err != nil {
		return err
	}
	minter, err := macaroon.NewMinter(keys, o.location)
	if err != nil {
		return err
	}
	var login *oidcLogin
	if o.issuer != "" {
		if o.clientID == "" {
			return errors.New("--oidc-issuer needs --oidc-client-id")
		}
		login, err = newOIDCLogin(ctx, o.issuer, o.clientID, o.clientSecret, public.Scheme+"://"+public.Host+callbackPath, o.label)
		if err != nil {
			return err
		}
	}
	// Listen before starting amarettid, so a taken port fails at once;
	// requests wait in the backlog until amarettid is ready.
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_, handler, err := newApp(config{Store: store, Minter: minter, Verifier: v, Cache: cache, DaemonURL: o.daemon,
		OIDC: login, DevLogin: o.dev, SessionTTL: o.sessionTTL, Policy: o.policy, TrustedOrigins: []string{public.Scheme + "://" + public.Host},
		AllowedHosts: allowedHosts(public, port, o.dev || loopback(o.listen)), Log: log})
	if err != nil {
		return err
	}
	var d *childDaemon
	var daemonExited <-chan struct{} // nil, never ready, without --with-daemon
	if o.withDaemon {
		if d, err = startDaemon(ctx, o, daemonAddr, log); err != nil {
			return err
		}
		defer d.stop(log)
		if err := d.waitReady(ctx, o.daemon, 30*time.Second); err != nil {
			if ctx.Err() != nil || d.stoppedCleanly() {
				return nil // Ctrl-C while amarettid was starting
			}
			return err
		}
		log.Info("amarettid ready", "url", o.daemon)
		daemonExited = d.done
	}
	if o.dev {
		log.Warn("DEVELOPMENT LOGIN ENABLED: anyone reaching this address can log in as any username")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go keys.KeepLoaded(bg, 30*time.Second, hup, log) // mint with the current key after a rotation (a key directory's; the follower reloads keys in the database at once)

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	stopped := make(chan error, 1)
	go func() {
		var cause error
		select {
		case <-ctx.Done():
		case <-daemonExited:
			// The frontend is no use without it. Exit status 0 is a
			// SIGINT or SIGTERM it got, as from Ctrl-C: stop quietly too.
			if !d.stoppedCleanly() {
				cause = d.exitError()
			}
		}
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
		stopped <- cause
	}()
	log.Info("webfront listening", "addr", ln.Addr().String(), "public_url", o.publicURL, "daemon", o.daemon, "dev_login", o.dev, "oidc", o.issuer, "with_daemon", o.withDaemon,
		"db", setup.Redact(o.db), "keys", setup.KeysWhere(o.keyOptions()), "poll", o.poll.String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Requests are drained before amarettid is stopped (deferred above).
	return <-stopped
}
