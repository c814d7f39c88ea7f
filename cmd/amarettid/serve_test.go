package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/testredis"
)

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runApp runs amarettid's command in process with args, returning a stop
// function that cancels it and returns its error.
func runApp(t *testing.T, args ...string) (func() error, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- app(logs, logs, slog.New(slog.NewJSONHandler(logs, nil))).RunContext(ctx, append([]string{"amarettid"}, args...))
	}()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("amarettid did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop, logs
}

// TestServeInProcess runs the daemon's command in process (the process
// tests run the binary, which coverage does not see): flags, the store, the
// keys, Redis, the listener, readiness and a clean shutdown.
func TestServeInProcess(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	rs := testredis.Start(t)
	addr := freePort(t)
	stop, logs := runApp(t, "--listen", addr, "--db", filepath.Join(d.dir, "amaretti.db"), "--keys", filepath.Join(d.dir, "keys"),
		"--redis", rs.URL(), "--trusted-proxies", "127.0.0.1", "--cookie", "session", "--keys-reload", "0")
	base := "http://" + addr
	waitUntil(t, "amarettid ready", 10*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	tok := d.mint(d.minter(), alice)
	resp, body := getWith(t, base+"/v1/verify", "Bearer "+tok)
	if resp != 200 {
		t.Fatalf("verify: %d %s", resp, body)
	}
	if resp, body := getWith(t, base+"/readyz", ""); resp != 200 || !strings.Contains(body, `"redis":"ok"`) {
		t.Fatalf("readyz: %d %s", resp, body)
	}
	if resp, body := getWith(t, base+"/metrics", ""); resp != 200 || !strings.Contains(body, `amaretti_epoch_cache_hits_total{layer="redis"}`) {
		t.Fatalf("metrics with Redis: %d", resp)
	}
	// A change is announced through Redis.
	req, _ := http.NewRequest("POST", base+"/v1/me/touch", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("me/touch: %v %v", resp, err)
	}
	if resp, _ := getWith(t, base+"/v1/verify", "Bearer "+tok); resp != 401 {
		t.Fatalf("touched token: %d", resp)
	}
	rs.Kill()
	if resp, body := getWith(t, base+"/readyz", ""); resp != 200 || !strings.Contains(body, "unreachable") {
		t.Fatalf("readyz with Redis down: %d %s", resp, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), "amarettid listening") || !strings.Contains(logs.String(), "shutting down") {
		t.Fatalf("logs:\n%s", logs)
	}
}

// TestServeRefuses: configuration errors stop the daemon with a message
// before it listens.
func TestServeRefuses(t *testing.T) {
	d := newDeployment(t, "")
	db, keys := filepath.Join(d.dir, "amaretti.db"), filepath.Join(d.dir, "keys")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no key store", []string{"--db", db, "--keys", filepath.Join(d.dir, "nokeys")}, "nokeys"},
		{"no database", []string{"--db", filepath.Join(d.dir, "none.db"), "--keys", keys}, "amaretti init"},
		{"bad trusted proxy", []string{"--db", db, "--keys", keys, "--trusted-proxies", "example.org"}, "--trusted-proxies"},
		{"bad redis URL", []string{"--db", db, "--keys", keys, "--redis", "http://x"}, "--redis"},
		{"address in use", []string{"--db", db, "--keys", keys, "--listen", busy.Addr().String()}, "address already in use"},
		{"negative skew", []string{"--db", db, "--keys", keys, "--skew", "-1s"}, "skew"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := app(&out, &out, slog.New(slog.NewJSONHandler(&out, nil))).RunContext(context.Background(), append([]string{"amarettid"}, tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func getWith(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}
