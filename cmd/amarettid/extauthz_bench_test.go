package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// BenchmarkExtAuthz compares one Envoy ext_authz decision asked over gRPC
// (Authorization/Check) and over HTTP (/v1/auth/envoy/...), in the same run,
// each over keep-alive loopback with client and server in this process:
//
//	go test ./cmd/amarettid -run '^$' -bench ExtAuthz -benchtime 3s
//
// "serial" is one client, one request at a time (ns/op and allocs/op count
// client and server); "load" is 32 concurrent clients, reporting requests
// per second and the 50th and 99th percentile latency.
func BenchmarkExtAuthz(b *testing.B) {
	s, tok := benchServer(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: s.routes()}
	go srv.Serve(ln)
	defer srv.Close()
	const clients = 32
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + "/v1/auth/envoy/api/public/x?page=2"
	httpCheck := func(b *testing.B) func() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return func() {
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
			}
		}
	}
	c := startGRPC(b, s)
	grpcCheck := func(b *testing.B) func() {
		req := checkRequest("GET", "/api/public/x?page=2", false, "authorization", "Bearer "+tok)
		return func() {
			r, err := c.authz.Check(context.Background(), req)
			if err != nil {
				b.Error(err)
				return
			}
			if httpStatusOf(r) != 200 {
				b.Errorf("status %d", httpStatusOf(r))
			}
		}
	}
	for _, form := range []struct {
		name string
		one  func(*testing.B) func()
	}{{"http-envoy", httpCheck}, {"grpc-check", grpcCheck}} {
		b.Run("serial/"+form.name, func(b *testing.B) {
			call := form.one(b)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				call()
			}
		})
		b.Run("load/"+form.name, func(b *testing.B) { concurrentLoad(b, clients, form.one) })
	}
}

// concurrentLoad runs clients goroutines calling one() and reports
// requests per second and the 50th and 99th percentile latency.
func concurrentLoad(b *testing.B, clients int, one func(*testing.B) func()) {
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism((clients + 1) / 2) // × GOMAXPROCS (2 here)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		call := one(b)
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			call()
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// benchServer is a daemon on a fresh SQLite store, and a token of its
// editor valid for an hour.
func benchServer(b *testing.B) (*server, string) {
	ctx := context.Background()
	dir := b.TempDir()
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "amaretti.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	alice, err := store.Create(ctx, epoch.NewEditor{Username: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	cache := epoch.NewCache(store, 0, time.Minute)
	v, err := verifier.New(keys, cache)
	if err != nil {
		b.Fatal(err)
	}
	s := &server{v: v, keys: keys, store: store, cache: cache, m: newMetrics(cache, nil),
		log: slog.New(slog.NewJSONHandler(io.Discard, nil)), maxBody: 64 << 10,
		tracker: apitoken.NewTracker(store, time.Minute, nil)}
	m, err := macaroon.NewMinter(keys, "api.example.org")
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Millisecond) // the token is created after the editor's epoch
	minted, err := m.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	return s, minted.Token
}
