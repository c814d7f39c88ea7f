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

// BenchmarkLoad measures /v1/verify under keep-alive load on loopback,
// beside a trivial net/http handler answering 204, in the same run and the
// same way (client and server in this process, 32 concurrent clients):
//
//	go test ./cmd/amarettid -run '^$' -bench Load -benchtime 5s
//
// It reports requests per second and the 50th and 99th percentile latency.
func BenchmarkLoad(b *testing.B) {
	// The trivial handler gets the very same request, token included.
	h, tok := benchDaemon(b)
	b.Run("trivial-204", func(b *testing.B) {
		load(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }), tok)
	})
	b.Run("verify", func(b *testing.B) { load(b, h, tok) })
	b.Run("auth", func(b *testing.B) { load(b, h, tok, "/v1/auth") })
}

func benchDaemon(b *testing.B) (http.Handler, string) {
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
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice"})
	cache := epoch.NewCache(store, 0, 0)
	v, _ := verifier.New(keys, cache)
	s := &server{v: v, keys: keys, store: store, cache: cache, m: newMetrics(cache, nil),
		log: slog.New(slog.NewJSONHandler(io.Discard, nil)), maxBody: 64 << 10,
		tracker: apitoken.NewTracker(store, time.Minute, nil)}
	m, _ := macaroon.NewMinter(keys, "api.example.org")
	time.Sleep(time.Millisecond)
	minted, err := m.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	return s.routes(), minted.Token
}

func load(b *testing.B, h http.Handler, token string, path ...string) {
	target := "/v1/verify"
	if len(path) > 0 {
		target = path[0]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + target
	const clients = 32
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(clients / 2) // × GOMAXPROCS (2 here): 32 client goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for pb.Next() {
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
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
