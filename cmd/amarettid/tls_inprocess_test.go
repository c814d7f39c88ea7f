package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeTLSInProcess runs the daemon's command in process with TLS and
// an admin listener (TestTLS runs the binary, which coverage does not see):
// the pair is served on both listeners, the admin endpoints only on the
// admin one, and forward auth only on the public one.
func TestServeTLSInProcess(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	first := newPair(t, "first")
	certFile, keyFile := filepath.Join(d.dir, "tls.crt"), filepath.Join(d.dir, "tls.key")
	install(t, certFile, keyFile, first.certPEM, first.keyPEM, 0o600)
	addr, admin := freePort(t), freePort(t)
	stop, logs := runApp(t, "--listen", addr, "--admin-listen", admin, "--db", filepath.Join(d.dir, "amaretti.db"), "--keys", filepath.Join(d.dir, "keys"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--keys-reload", "0")
	client, _ := tlsClient(first.cert)
	waitUntil(t, "amarettid ready over TLS", 30*time.Second, func() bool {
		resp, err := client.Get("https://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	tok := d.mint(d.minter(), alice)
	for _, tc := range []struct {
		name, url string
		want      int
	}{
		{"verify on the public listener", "https://" + addr + "/v1/verify", 200},
		{"forward auth on the public listener", "https://" + addr + "/v1/auth/envoy/api", 200},
		{"metrics not on the public listener", "https://" + addr + "/metrics", 404},
		{"metrics on the admin listener", "https://" + admin + "/metrics", 200},
		{"no forward auth on the admin listener", "https://" + admin + "/v1/auth/envoy/api", 404},
		{"no verify on the admin listener", "https://" + admin + "/v1/verify", 404},
		{"health on the admin listener", "https://" + admin + "/healthz", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := getStatus(t, client, "GET", tc.url, tok); got != tc.want {
				t.Errorf("%s: %d, want %d", tc.url, got, tc.want)
			}
		})
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, logs)
	}
}

// TestCertificateReload: keepLoaded serves a new pair after a trigger and
// keeps the loaded one when the new one does not load.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, second := newPair(t, "first"), newPair(t, "second")
	install(t, certFile, keyFile, first.certPEM, first.keyPEM, 0o600)
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		t.Fatal(err)
	}
	conf := c.tlsConfig()
	served := func() string {
		cert, err := conf.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.Subject.CommonName
	}
	if conf.MinVersion < 0x0303 || served() != "first" {
		t.Fatalf("min version %x, serving %q", conf.MinVersion, served())
	}
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	trigger := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.keepLoaded(ctx, trigger, log); close(done) }()
	reload := func() {
		trigger <- nil // received: the reload of the previous trigger is done
		trigger <- nil
	}
	install(t, certFile, keyFile, second.certPEM, second.keyPEM, 0o600)
	reload()
	if got := served(); got != "second" {
		t.Fatalf("after a reload of a good pair: serving %q", got)
	}
	for _, tc := range []struct {
		name     string
		cert     []byte
		key      []byte
		mode     os.FileMode
		wantErr  error
		wantText string
	}{
		{"not PEM", []byte("junk"), second.keyPEM, 0o600, nil, "TLS certificate"},
		{"key of another certificate", second.certPEM, first.keyPEM, 0o600, nil, "private key does not match"},
		{"key readable by others", second.certPEM, second.keyPEM, 0o644, errInsecureTLSKey, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			install(t, certFile, keyFile, tc.cert, tc.key, tc.mode)
			_, err := readKeyPair(certFile, keyFile)
			if err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("readKeyPair: %v, want %q", err, tc.wantText)
			}
			reload()
			if got := served(); got != "second" {
				t.Fatalf("a broken pair replaced the loaded one: serving %q", got)
			}
		})
	}
	if _, err := readKeyPair(certFile, filepath.Join(dir, "missing.key")); err == nil {
		t.Fatal("a missing key loaded")
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "keeping the loaded one") || strings.Contains(logs.String(), pemBody(second.keyPEM)) {
		t.Fatalf("reload log:\n%s", logs.String())
	}
}
