package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"
)

// Errors of the listeners' configuration.
var (
	// errUsage marks a wrong combination of flags (exit status 2).
	errUsage = errors.New("usage")
	// errInsecureTLSKey means the TLS key file is readable by others than
	// its owner.
	errInsecureTLSKey = errors.New("insecure TLS key permissions")
)

// listenFlags are the flags of the listeners, besides --listen.
func listenFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"AMARETTI_TLS_CERT"}, Usage: "serve HTTPS (TLS 1.2+) with the certificate (chain) in PEM `FILE`; re-read on SIGHUP"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"AMARETTI_TLS_KEY"}, Usage: "the private key of --tls-cert, in PEM `FILE` readable by its owner only; re-read on SIGHUP"},
		&cli.StringFlag{Name: "admin-listen", EnvVars: []string{"AMARETTI_ADMIN_LISTEN"}, Usage: "serve /metrics and /v1/admin/... on this `ADDR` only (404 on --listen); /healthz and /readyz on both (absent: all on --listen)"},
		&cli.StringFlag{Name: "grpc-listen", EnvVars: []string{"AMARETTI_GRPC_LISTEN"}, Usage: "serve Envoy's ext_authz over gRPC (envoy.service.auth.v3.Authorization/Check, and grpc.health.v1) on this `ADDR`, e.g. 127.0.0.1:9191; TLS as --listen (absent: no gRPC)"},
		&cli.BoolFlag{Name: "admin-tls", Value: true, EnvVars: []string{"AMARETTI_ADMIN_TLS"}, Usage: "with TLS on, serve --admin-listen with the same certificate; false for plain HTTP there (e.g. a loopback scrape)"},
	}
}

// listener is one server of the daemon and the socket it serves: an HTTP
// server, or (grpc set) the gRPC one.
type listener struct {
	name string // "public", "admin" or "grpc"
	ln   net.Listener
	srv  *http.Server
	grpc *grpcServer
	tls  bool
}

// listeners binds the public listener and, with --admin-listen, the admin
// one, with s's routes split between them, TLS when configured. cert is nil
// without TLS. On error nothing is left bound.
func (s *server) listeners(c *cli.Context, cert *certificate, log *slog.Logger) ([]*listener, error) {
	adminAddr := c.String("admin-listen")
	public, admin := s.handlers(adminAddr != "")
	var out []*listener
	add := func(name, addr string, h http.Handler, useTLS bool) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", name, err)
		}
		srv := newHTTPServer(h, log)
		if useTLS {
			srv.TLSConfig = cert.tlsConfig()
		}
		out = append(out, &listener{name: name, ln: ln, srv: srv, tls: useTLS})
		return nil
	}
	err := add("public", c.String("listen"), public, cert != nil)
	if err == nil && admin != nil {
		err = add("admin", adminAddr, admin, cert != nil && c.Bool("admin-tls"))
	}
	if addr := c.String("grpc-listen"); err == nil && addr != "" {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err != nil {
			err = fmt.Errorf("grpc listener: %w", err)
		} else {
			var conf *tls.Config
			if cert != nil {
				conf = cert.tlsConfig()
			}
			out = append(out, &listener{name: "grpc", ln: ln, grpc: s.newGRPCServer(conf), tls: cert != nil})
		}
	}
	if err != nil {
		for _, l := range out {
			l.ln.Close()
		}
		return nil, err
	}
	return out, nil
}

// handlers returns the public listener's handler and, when separateAdmin is
// set, the admin listener's: /metrics and /v1/admin/... are then served only
// there (the public one answers 404), /healthz and /readyz on both.
func (s *server) handlers(separateAdmin bool) (public, admin http.Handler) {
	if !separateAdmin {
		return s.routes(), nil
	}
	pub := http.NewServeMux()
	s.publicRoutes(pub)
	s.healthRoutes(pub)
	adm := http.NewServeMux()
	s.adminRoutes(adm)
	s.healthRoutes(adm)
	return s.limits(pub, true), s.limits(adm, false)
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveAll serves every listener until ctx ends (SIGTERM, SIGINT) or one of
// them fails, then shuts all of them down, draining in-flight requests for
// up to 30 s. It returns the first failure.
func serveAll(ctx context.Context, ls []*listener, log *slog.Logger) error {
	failed := make(chan error, len(ls))
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if l.grpc != nil {
				if err = l.grpc.serve(l.ln); err != nil {
					failed <- fmt.Errorf("%s listener: %w", l.name, err)
				}
				return
			}
			if l.tls {
				err = l.srv.ServeTLS(l.ln, "", "") // the certificate comes from TLSConfig.GetCertificate
			} else {
				err = l.srv.Serve(l.ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("%s listener: %w", l.name, err)
			}
		}()
	}
	var first error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests")
	case first = <-failed:
		log.Error("a listener failed; shutting down", "err", first)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var sw sync.WaitGroup
	for _, l := range ls {
		sw.Add(1)
		go func() {
			defer sw.Done()
			stop := l.srv.Shutdown
			if l.grpc != nil {
				stop = l.grpc.stop
			}
			if err := stop(shutdown); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s listener: shutdown: %w", l.name, err)
				}
				mu.Unlock()
			}
		}()
	}
	sw.Wait()
	wg.Wait()
	return first
}

// certificate is the TLS certificate pair the daemon serves. Handshakes read
// the loaded pair; reload replaces it only with a pair that loads whole, so
// a broken new pair leaves the old one serving.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// tlsOptions reads --tls-cert and --tls-key: both or neither. It returns nil
// without TLS.
func tlsOptions(c *cli.Context) (*certificate, error) {
	certFile, keyFile := c.String("tls-cert"), c.String("tls-key")
	switch {
	case certFile == "" && keyFile == "":
		if c.IsSet("admin-tls") {
			return nil, fmt.Errorf("%w: --admin-tls needs --tls-cert and --tls-key", errUsage)
		}
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together: set both, or neither", errUsage)
	}
	cert := &certificate{certFile: certFile, keyFile: keyFile}
	if err := cert.reload(); err != nil {
		return nil, err
	}
	return cert, nil
}

// reload reads the pair again and serves it from the next handshake on.
func (c *certificate) reload() error {
	pair, err := readKeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.cur.Store(pair)
	return nil
}

// tlsConfig is the configuration of a listener serving c: TLS 1.2 or
// later, with the pair loaded at the time of each handshake.
func (c *certificate) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// keepLoaded reloads the pair on every trigger (SIGHUP) until ctx ends,
// keeping the loaded pair when the new one does not load.
func (c *certificate) keepLoaded(ctx context.Context, trigger <-chan os.Signal, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		}
		if err := c.reload(); err != nil {
			log.Error("reloading the TLS certificate failed; keeping the loaded one", "cert", c.certFile, "key", c.keyFile, "err", err)
			continue
		}
		leaf := c.cur.Load().Leaf
		log.Info("TLS certificate reloaded", "cert", c.certFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

// readKeyPair loads a PEM certificate chain and its private key, refusing a
// key file that group or others may read, as the key store does.
func readKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	f, err := os.Open(keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("TLS key: %s is not a regular file", keyFile)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: TLS key file %s is accessible by group or others (mode %04o); chmod 600 it", errInsecureTLSKey, keyFile, perm)
	}
	keyPEM, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if pair.Leaf == nil { // set by X509KeyPair unless GODEBUG=x509keypairleaf=0
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", certFile, err)
		}
	}
	return &pair, nil
}
