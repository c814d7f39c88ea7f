// Command amarettid is amaretti's verifier daemon, for services that are not
// written in Go and for proxies in front of any service:
//
//	GET|POST /v1/verify                     verify a token; 200 + identity JSON
//	/v1/auth                                forward auth (nginx auth_request, Traefik forwardAuth, Envoy ext_authz)
//	gRPC Authorization/Check (--grpc-listen)  Envoy ext_authz over gRPC (extauthz.go)
//	POST /v1/introspect                     RFC 7662 token introspection (introspect.go)
//	POST /v1/admin/editors/{id}/touch       admin and superuser tokens only; also lock, unlock
//	POST /v1/admin/touch-all
//	/v1/admin/logins, /v1/admin/editors/{id}/links   a web frontend's logins (admin:logins; logins.go)
//	GET /v1/admin/audit                     the audit trail, newest first (admin:audit; audit.go)
//	GET /healthz, /readyz, /metrics
//
// With --tls-cert and --tls-key it serves HTTPS, re-reading the pair on
// SIGHUP; with --admin-listen, /metrics and /v1/admin/... move to a second
// listener (see listen.go).
//
// Configuration is by flags or AMARETTI_* environment variables; see
// amarettid --help. Logs are JSON on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/notify"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/internal/buildinfo"
	"github.com/amaretti-auth/amaretti/internal/cliflag"
	"github.com/amaretti-auth/amaretti/internal/redislog"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	// go-redis logs through a package-level logger of its own, as plain
	// "redis: <date> pool.go:770: ..." lines on stderr. It is global state
	// of go-redis, so it is set here, once, before anything dials Redis:
	// its lines become JSON records at warn level, with URL credentials
	// redacted (see internal/redislog).
	redis.SetLogger(redislog.New(log))
	err := app(os.Stdout, os.Stderr, log).RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "amarettid: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// app is the command line; log receives the daemon's JSON logs.
func app(stdout, stderr io.Writer, log *slog.Logger) *cli.App {
	return &cli.App{
		Name:            "amarettid",
		Version:         buildinfo.Version(),
		Usage:           "verify amaretti tokens over HTTP, as an API and as a forward-auth backend for proxies",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		// A flag error is one line on stderr and exit status 2, not the
		// whole help and "parse error" for a duration without a unit.
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w: %s", errUsage, cliflag.Problem(c, err, "", "amarettid --help"))
		},
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", EnvVars: []string{"AMARETTI_LISTEN"}, Usage: "`ADDR` to listen on"},
			&cli.StringFlag{Name: "db", Value: "./amaretti.db", EnvVars: []string{"AMARETTI_DB"}, Usage: "the store: a SQLite database `FILE` made by amaretti init (or sqlite:FILE), or a postgres:// URL (pgxpool's pool_* parameters and application_name apply; the password never reaches a log)"},
			&cli.DurationFlag{Name: "store-timeout", Value: setup.DefaultReadTimeout, EnvVars: []string{"AMARETTI_STORE_TIMEOUT"}, Usage: "bound on each PostgreSQL read of the verify path (editor state, change log): past it the verification answers 503; SQLite ignores it (its reads never wait on writers)"},
			&cli.BoolFlag{Name: "notify", Value: true, EnvVars: []string{"AMARETTI_NOTIFY"}, Usage: "on PostgreSQL, read the change log at once on LISTEN/NOTIFY wake-ups (one dedicated connection); --notify=false behind PgBouncer in transaction pooling, where LISTEN does not work: the --poll remains"},
			&cli.BoolFlag{Name: "no-migrate", EnvVars: []string{"AMARETTI_NO_MIGRATE"}, Usage: "refuse to start on a database whose schema is older than this program (run \"amaretti migrate\" first) instead of upgrading it"},
			&cli.StringFlag{Name: "keys", Value: "./keys", EnvVars: []string{"AMARETTI_KEYS"}, Usage: "root key `DIR`ectory, or \"db\" for keys kept (sealed) in the PostgreSQL database --db names, reloaded through its change log"},
			&cli.StringFlag{Name: "key-encryption-key-file", EnvVars: []string{setup.KEKFileEnv}, Usage: "`FILE` (mode 0600) holding the key-encryption key of keys kept in the database (--keys db); or set " + setup.KEKEnv + " to the key itself"},
			&cli.StringFlag{Name: "location", EnvVars: []string{"AMARETTI_LOCATION"}, Usage: "location written into tokens the daemon mints (API tokens, exchanges)"},
			&cli.StringFlag{Name: "redis", EnvVars: []string{"AMARETTI_REDIS"}, Usage: "redis:// `URL` shared with other verifiers, as a cache and wake-up channel (absent: no Redis, the store's change log alone)"},
			&cli.StringFlag{Name: "trusted-proxies", EnvVars: []string{"AMARETTI_TRUSTED_PROXIES"}, Usage: "comma-separated `CIDR`s (or addresses) of proxies whose X-Real-IP / X-Forwarded-For are believed for last-use records (default none: the peer address)"},
			&cli.StringFlag{Name: "cookie", EnvVars: []string{"AMARETTI_COOKIE"}, Usage: "also read the token from the cookie `NAME`"},
			&cli.DurationFlag{Name: "cache-ttl", Value: epoch.DefaultCacheTTL, EnvVars: []string{"AMARETTI_CACHE_TTL"}, Usage: "how long editor states are cached in process: the staleness bound when an invalidation is lost"},
			&cli.IntFlag{Name: "cache-size", Value: epoch.DefaultCacheSize, EnvVars: []string{"AMARETTI_CACHE_SIZE"}, Usage: "most editor states cached in process"},
			&cli.DurationFlag{Name: "redis-ttl", Value: rediscache.DefaultTTL, EnvVars: []string{"AMARETTI_REDIS_TTL"}, Usage: "how long Redis keeps an editor state"},
			&cli.DurationFlag{Name: "poll", Value: epoch.DefaultPollInterval, EnvVars: []string{"AMARETTI_POLL"}, Usage: "read the store's change log this often (and at once on a Redis message): the bound on how late any change reaches this daemon when messages are lost or Redis is wrong"},
			&cli.DurationFlag{Name: "skew", Value: caveat.DefaultSkew, EnvVars: []string{"AMARETTI_SKEW"}, Usage: "how far in the future a token's creation time may lie"},
			&cli.Int64Flag{Name: "max-body", Value: 64 << 10, EnvVars: []string{"AMARETTI_MAX_BODY"}, Usage: "largest request body, in bytes"},
			&cli.DurationFlag{Name: "last-use-interval", Value: time.Minute, EnvVars: []string{"AMARETTI_LAST_USE_INTERVAL"}, Usage: "record API tokens' last use at most this often per token, in one batch (a crash loses at most this much)"},
			&cli.IntFlag{Name: "max-live-tokens", Value: epoch.DefaultMaxLiveTokens, EnvVars: []string{"AMARETTI_MAX_LIVE_TOKENS"}, Usage: "most live API tokens one editor may hold; creating another is refused (409)"},
			&cli.IntFlag{Name: "max-revoked-tokens", Value: epoch.DefaultMaxRevokedTokens, EnvVars: []string{"AMARETTI_MAX_REVOKED_TOKENS"}, Usage: "most revoked, unexpired API tokens an editor's state lists; at the limit, creating tokens is refused until a touch clears the list (revoking is never refused)"},
			&cli.DurationFlag{Name: "audit-retention", EnvVars: []string{"AMARETTI_AUDIT_RETENTION"}, Usage: "prune audit events older than this `PERIOD` every hour (e.g. 8760h); 0 keeps them forever"},
			&cli.DurationFlag{Name: "refused-interval", Value: time.Minute, EnvVars: []string{"AMARETTI_REFUSED_INTERVAL"}, Usage: "record refused uses of API tokens in the audit trail at most once per token per `INTERVAL`, with a count, in one batch"},
			&cli.StringFlag{Name: "notify-webhook", EnvVars: []string{"AMARETTI_NOTIFY_WEBHOOK"}, Usage: "POST token lifecycle events (expiring, expired unused, auto-revoked) to this `URL`, signed with --notify-secret-file (absent: no notifications)"},
			&cli.StringFlag{Name: "notify-secret-file", EnvVars: []string{"AMARETTI_NOTIFY_SECRET_FILE"}, Usage: "`FILE` (mode 0600) holding the HMAC-SHA256 key of the X-Amaretti-Signature header (at least 16 bytes)"},
			&cli.StringFlag{Name: "notify-thresholds", Value: "30d,7d,1d", EnvVars: []string{"AMARETTI_NOTIFY_THRESHOLDS"}, Usage: "warn this long before a token expires: comma-separated days (30d) or durations (48h)"},
			&cli.DurationFlag{Name: "notify-interval", Value: 5 * time.Minute, EnvVars: []string{"AMARETTI_NOTIFY_INTERVAL"}, Usage: "scan the registry for notifications this often"},
			&cli.DurationFlag{Name: "keys-reload", Value: 30 * time.Second, EnvVars: []string{"AMARETTI_KEYS_RELOAD"}, Usage: "re-read the key directory this often (and on SIGHUP), to pick up rotations and retirements; 0 for SIGHUP only"},
		}, append(append(listenFlags(), policyFlags()...), append(cacheFlags(), introspectFlags()...)...)...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("%w: %s", errUsage, extraArgs(c.Args().Slice()))
			}
			return serve(c, log)
		},
	}
}

// extraArgs says why arguments that are not flags are refused: amarettid
// takes none, and "--notify false" would otherwise leave --notify on. The
// arguments themselves are not repeated (one may be a secret).
func extraArgs(args []string) string {
	msg := fmt.Sprintf("amarettid takes flags only, got %d other argument", len(args))
	if len(args) > 1 {
		msg += "s"
	}
	if slices.ContainsFunc(args, func(a string) bool { _, err := strconv.ParseBool(a); return err == nil }) {
		msg += `; a boolean flag takes its value after "=": --notify=false`
	}
	return msg + " (see amarettid --help)"
}

func serve(c *cli.Context, log *slog.Logger) error {
	ctx := c.Context
	policy, err := policyFrom(c)
	if err != nil {
		return err
	}
	cert, err := tlsOptions(c)
	if err != nil {
		return err
	}
	// The gateway flags are checked before anything is opened or started.
	maxAge, err := cacheMaxAge(c)
	if err != nil {
		return err
	}
	var clients introspectClients
	if path := c.String("introspect-client-file"); path != "" {
		if clients, err = readIntrospectClients(path); err != nil {
			return err
		}
	}
	// A key directory is opened first (its absence is said first); keys
	// in the database once the store is open.
	keyOpts := setup.KeyOptions{Keys: c.String("keys"), DB: c.String("db"), KEKFile: c.String("key-encryption-key-file"), KEK: os.Getenv(setup.KEKEnv)}
	var keys *macaroon.KeyStore
	if !setup.KeysInDatabase(keyOpts.Keys) {
		if keys, err = openKeys(ctx, keyOpts, nil); err != nil {
			return err
		}
	}
	if c.Int("max-live-tokens") <= 0 || c.Int("max-revoked-tokens") <= 0 {
		return fmt.Errorf("--max-live-tokens and --max-revoked-tokens must be positive")
	}
	if c.Duration("store-timeout") <= 0 {
		return fmt.Errorf("--store-timeout must be positive")
	}
	store, err := openStore(ctx, c.String("db"), setup.StoreOptions{MaxLiveTokens: c.Int("max-live-tokens"), MaxRevokedTokens: c.Int("max-revoked-tokens"),
		NoMigrate: c.Bool("no-migrate"), ReadTimeout: c.Duration("store-timeout"), Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	if keys == nil {
		if keys, err = openKeys(ctx, keyOpts, store); err != nil {
			return err
		}
	}

	if c.Duration("poll") <= 0 {
		return fmt.Errorf("--poll must be positive")
	}
	// The follower reads the store's change log: it keeps the in-process
	// cache and Redis from outliving any change by more than --poll. It
	// remembers changes for the Redis TTL + 5 s (see package rediscache).
	followOpts := []epoch.FollowerOption{epoch.WithPollInterval(c.Duration("poll")),
		epoch.WithWindow(c.Duration("redis-ttl") + 5*time.Second), epoch.WithFollowerLogger(log)}
	if setup.KeysInDatabase(keyOpts.Keys) {
		// A rotation, retirement or import on any host appends a key
		// change to the log: keys are reloaded within --poll.
		followOpts = append(followOpts, epoch.WithKeysChanged(keys.Reloader(log)))
	}
	follower := epoch.NewFollower(store, followOpts...)
	var src epoch.Source = store
	var layer *rediscache.Layer
	if url := c.String("redis"); url != "" {
		rdb, err := rediscache.NewClient(url)
		if err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		defer rdb.Close()
		layer = rediscache.New(rdb, store, rediscache.WithTTL(c.Duration("redis-ttl")), rediscache.WithLogger(log), rediscache.WithFollower(follower), rediscache.WithKeys(keys))
		src = layer
	}
	cache := epoch.NewCache(src, c.Int("cache-size"), c.Duration("cache-ttl"))
	cache.SetBypass(true) // until the follower's first catch-up
	checker, err := caveat.NewChecker(caveat.WithSkew(c.Duration("skew")))
	if err != nil {
		return err
	}
	v, err := verifier.New(keys, cache, append(policy.VerifierOptions(), verifier.WithChecker(checker))...)
	if err != nil {
		return err
	}
	m := newMetrics(cache, layer)
	m.follow(follower)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	followerDone := make(chan struct{})
	go func() { follower.Run(watchCtx, cache); close(followerDone) }()
	defer func() { stopWatch(); <-followerDone }()
	if w, ok := store.(watcher); ok && c.Bool("notify") {
		// PostgreSQL NOTIFY wakes the follower at once; the poll stays the
		// backstop when notifications are lost.
		watchDone := make(chan struct{})
		go func() {
			// A lost LISTEN connection is often a lost database: read the
			// log at once, so that a failing read turns the caches off now
			// rather than at the next poll. Watch wakes the follower again
			// once it listens anew, to catch up on what it missed.
			state := func(up bool) {
				m.notifyState(up)
				if !up {
					follower.Wake()
				}
			}
			if err := w.Watch(watchCtx, follower.Wake, state); err != nil && watchCtx.Err() == nil {
				log.Warn("change notifications stopped; the change log is still polled", "err", err)
			}
			close(watchDone)
		}()
		defer func() { stopWatch(); <-watchDone }()
	}
	if layer != nil {
		go layer.Watch(watchCtx, cache, time.Second, func(up bool) {
			if up {
				m.feedUp.Set(1)
			} else {
				m.feedUp.Set(0)
			}
		})
	}
	minter, err := macaroon.NewMinter(keys, c.String("location"), macaroon.WithMintChecker(checker))
	if err != nil {
		return err
	}
	// Each batch of last uses is followed by the retirement of rotated
	// tokens now due, announced as a revocation is.
	var s *server
	tracker := apitoken.NewTracker(store, c.Duration("last-use-interval"), log, apitoken.WithRetirement(store, func(ctx context.Context, eds []epoch.Editor) {
		for _, e := range eds {
			s.announce(ctx, e.ID, []epoch.Editor{e})
		}
	}))
	issuer, err := apitoken.NewIssuer(store, minter, checker, apitoken.WithPolicy(policy))
	if err != nil {
		return err
	}
	trusted, err := parseTrustedProxies(c.String("trusted-proxies"))
	if err != nil {
		return err
	}
	if c.Duration("audit-retention") < 0 || c.Duration("refused-interval") <= 0 {
		return fmt.Errorf("--audit-retention must not be negative, --refused-interval must be positive")
	}
	refusals := audit.NewRefusals(store, c.Duration("refused-interval"), log)
	refusalsDone := make(chan struct{})
	go func() { refusals.Run(watchCtx); close(refusalsDone) }()
	defer func() { stopWatch(); <-refusalsDone }() // the last batch is written before the store closes
	s = &server{trusted: trusted, v: v, keys: keys, store: store, cache: cache, layer: layer, m: m, log: log, cookie: c.String("cookie"), maxBody: c.Int64("max-body"),
		issuer: issuer, tracker: tracker, refusals: refusals, authCacheMaxAge: maxAge, introspectClients: clients}
	trackerDone := make(chan struct{})
	go func() { tracker.Run(watchCtx); close(trackerDone) }()
	defer func() { stopWatch(); <-trackerDone }() // the last batch is written before the store closes
	pruneDone := make(chan struct{})
	go func() { s.pruneAudit(watchCtx, c.Duration("audit-retention"), time.Hour); close(pruneDone) }()
	defer func() { stopWatch(); <-pruneDone }()
	if hook := c.String("notify-webhook"); hook != "" {
		n, err := notifier(c, store, policy, log)
		if err != nil {
			return err
		}
		notifyDone := make(chan struct{})
		go func() { n.Run(watchCtx); close(notifyDone) }()
		defer func() { stopWatch(); <-notifyDone }()
	} else if c.String("notify-secret-file") != "" {
		return fmt.Errorf("--notify-secret-file without --notify-webhook")
	}
	// SIGHUP re-reads the key store and the TLS certificate: the signal
	// package delivers it to each channel.
	keysHUP := make(chan os.Signal, 1)
	signal.Notify(keysHUP, syscall.SIGHUP)
	defer signal.Stop(keysHUP)
	go keys.KeepLoaded(watchCtx, c.Duration("keys-reload"), keysHUP, log)
	if cert != nil {
		tlsHUP := make(chan os.Signal, 1)
		signal.Notify(tlsHUP, syscall.SIGHUP)
		defer signal.Stop(tlsHUP)
		go cert.keepLoaded(watchCtx, tlsHUP, log)
	}

	ls, err := s.listeners(c, cert, log)
	if err != nil {
		return err
	}
	attrs := []any{"addr", ls[0].ln.Addr().String(), "tls", ls[0].tls}
	for _, l := range ls[1:] {
		attrs = append(attrs, l.name+"_addr", l.ln.Addr().String(), l.name+"_tls", l.tls)
	}
	kind, _ := setup.Parse(c.String("db"))
	storeAttrs := []any{"store", "sqlite", "db", setup.Redact(c.String("db"))}
	if kind == setup.PostgreSQL {
		storeAttrs[1] = "postgresql"
		_, notify := store.(watcher)
		storeAttrs = append(storeAttrs, "notify", notify && c.Bool("notify"), "store_timeout", c.Duration("store-timeout").String())
	}
	log.Info("amarettid listening", append(append(attrs, storeAttrs...), "redis", layer != nil, "cache_ttl", c.Duration("cache-ttl").String(), "poll", c.Duration("poll").String())...)
	return serveAll(ctx, ls, log)
}

// notifier builds the token lifecycle notifier of --notify-webhook.
func notifier(c *cli.Context, store epoch.Store, policy apitoken.Policy, log *slog.Logger) (*notify.Notifier, error) {
	if c.String("notify-secret-file") == "" {
		return nil, fmt.Errorf("--notify-webhook needs --notify-secret-file (the key of the signature header)")
	}
	secret, err := notify.ReadSecretFile(c.String("notify-secret-file"))
	if err != nil {
		return nil, fmt.Errorf("--notify-secret-file: %w", err)
	}
	thresholds, err := notify.ParseThresholds(c.String("notify-thresholds"))
	if err != nil {
		return nil, fmt.Errorf("--notify-thresholds: %w", err)
	}
	if c.Duration("notify-interval") <= 0 {
		return nil, fmt.Errorf("--notify-interval must be positive")
	}
	n, err := notify.New(store, notify.Config{URL: c.String("notify-webhook"), Secret: secret, Thresholds: thresholds,
		Interval: c.Duration("notify-interval"), Policy: policy, Log: log})
	if err != nil {
		return nil, fmt.Errorf("--notify-webhook: %w", err)
	}
	return n, nil
}

// watcher is a store that notifies changes as they commit (PostgreSQL
// LISTEN/NOTIFY): Watch calls wake on each, and after every reconnection,
// until ctx ends. It is a wake-up hint: the follower still reads the log.
type watcher interface {
	Watch(ctx context.Context, wake func(), state func(up bool)) error
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
