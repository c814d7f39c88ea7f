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
	"github.com/amaretti-auth/amaretti/macaroon"
)

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", envOr("WEBFRONT_LISTEN", "127.0.0.1:8082"), "address to listen on")
	flag.StringVar(&o.db, "db", envOr("AMARETTI_DB", "./amaretti.db"), "with --with-daemon only, the store amarettid opens (the frontend opens no database): a SQLite file or a postgres:// URL (env AMARETTI_DB; keep a password out of ps: set it there, or in PGPASSWORD or ~/.pgpass)")
	flag.BoolVar(&o.noMigrate, "no-migrate", envBool("AMARETTI_NO_MIGRATE"), "with --with-daemon: passed on to amarettid (env AMARETTI_NO_MIGRATE)")
	flag.StringVar(&o.keys, "keys", envOr("AMARETTI_KEYS", "./keys"), "root key directory (the one amarettid verifies with, or a copy): the frontend mints sessions with its current key; re-read every 30 s and on SIGHUP")
	flag.StringVar(&o.serviceTokenFile, "service-token-file", os.Getenv("WEBFRONT_SERVICE_TOKEN_FILE"), "file (mode 0600) holding the frontend's token for amarettid's login endpoints: an admin editor's, limited to admin:logins (env WEBFRONT_SERVICE_TOKEN_FILE; or the token itself in WEBFRONT_SERVICE_TOKEN)")
	flag.StringVar(&o.location, "location", envOr("AMARETTI_LOCATION", ""), "location written into session tokens")
	flag.StringVar(&o.daemon, "daemon", envOr("WEBFRONT_DAEMON", "http://127.0.0.1:8080"), "base URL of amarettid")
	flag.StringVar(&o.publicURL, "public-url", envOr("WEBFRONT_PUBLIC_URL", ""), "URL users reach the frontend at (default http://LISTEN); the only Host answered besides loopback names, and the OIDC redirect is PUBLIC-URL/login/oidc/callback")
	o.policy = apitoken.DefaultPolicy()
	flag.DurationVar(&o.sessionTTL, "session-ttl", o.policy.Session, "lifetime of a session (the lifetime policy's session default)")
	flag.DurationVar(&o.policy.MaxAPI, "max-api-token-lifetime", envDuration("AMARETTI_MAX_API_TOKEN_LIFETIME", o.policy.MaxAPI),
		"longest API token lifetime the tokens page offers; amarettid's --max-api-token-lifetime decides (env AMARETTI_MAX_API_TOKEN_LIFETIME)")
	flag.BoolVar(&o.policy.AllowNoExpiry, "allow-no-expiry", os.Getenv("AMARETTI_ALLOW_NO_EXPIRY") == "true" || os.Getenv("AMARETTI_ALLOW_NO_EXPIRY") == "1",
		"offer API tokens that never expire on the tokens page; amarettid's --allow-no-expiry decides (env AMARETTI_ALLOW_NO_EXPIRY)")
	flag.BoolVar(&o.dev, "dev-login", os.Getenv("WEBFRONT_DEV_LOGIN") == "1", "enable the development login: anyone logs in as any username, no password (loopback addresses only)")
	flag.BoolVar(&o.withDaemon, "with-daemon", os.Getenv("WEBFRONT_WITH_DAEMON") == "1", "for local use: run amarettid as a child process on the --daemon address (loopback only), with --db, the same --keys, --no-migrate and --location; it stops with the frontend")
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
	o.serviceToken = os.Getenv("WEBFRONT_SERVICE_TOKEN")      // likewise
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
	serviceTokenFile, serviceToken                string // the token for amarettid's login endpoints
	sessionTTL                                    time.Duration
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

// keyOptions says where o's root keys live: a directory.
func (o options) keyOptions() setup.KeyOptions {
	return setup.KeyOptions{Keys: o.keys}
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

// Errors of starting up that name what to do.
var (
	errNoKeyStore = setup.ErrNoKeyStore
	// errKeysInDatabase: --keys db, which needs the database the frontend
	// does not open.
	errKeysInDatabase = errors.New(`--keys db: the frontend opens no database; give it a key directory (the one amarettid verifies with, or a copy)`)
	// errNoServiceToken: no token for amarettid's login endpoints.
	errNoServiceToken = errors.New("no service token: set WEBFRONT_SERVICE_TOKEN_FILE (or --service-token-file) to a file holding a token of an admin editor limited to admin:logins, made with: amaretti token mint EDITOR_ID --right admin:logins --expires 8760h")
	// errServiceToken: the service token file cannot be used.
	errServiceToken = errors.New("service token")
)

// openKeys opens what "amaretti init" made, or says how to.
var openKeys = setup.OpenKeys

// readServiceToken reads the service token: from the environment, or from a
// file readable by its owner only. Errors never hold the token.
func (o options) readServiceToken() (string, error) {
	if o.serviceToken != "" {
		return strings.TrimSpace(o.serviceToken), nil
	}
	if o.serviceTokenFile == "" {
		return "", errNoServiceToken
	}
	fi, err := os.Stat(o.serviceTokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errServiceToken, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s is readable by others than its owner (chmod 600 it)", errServiceToken, o.serviceTokenFile)
	}
	raw, err := os.ReadFile(o.serviceTokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errServiceToken, err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%w: %s must hold one token and nothing else", errServiceToken, o.serviceTokenFile)
	}
	return tok, nil
}

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
	if setup.KeysInDatabase(o.keys) {
		return errKeysInDatabase
	}
	keys, err := openKeys(ctx, o.keyOptions(), nil)
	if err != nil {
		return err
	}
	service, err := o.readServiceToken()
	if err != nil {
		return err
	}
	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
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
	a, handler, err := newApp(config{Minter: minter, DaemonURL: o.daemon, ServiceToken: service,
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
	if err := a.daemon.checkService(ctx); err != nil {
		if statusOf(err) != 0 {
			return err // refused: a configuration error
		}
		// amarettid may start later (many hosts): pages say so meanwhile.
		log.Warn("the service token could not be checked", "err", err)
	}
	if o.dev {
		log.Warn("DEVELOPMENT LOGIN ENABLED: anyone reaching this address can log in as any username")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go keys.KeepLoaded(bg, 30*time.Second, hup, log) // mint with the current key after a rotation

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
		"keys", setup.KeysWhere(o.keyOptions()))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Requests are drained before amarettid is stopped (deferred above).
	return <-stopped
}
