package main

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// discard is the least a ResponseWriter can be: a fresh header map per
// request, as net/http gives each one, and nothing written anywhere.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(status int)      { d.status = status }

// BenchmarkHandler is the handlers' own cost per request, without the
// network or Go's HTTP server: /v1/auth and /v1/verify against the bare
// handler scripts/bench compares amarettid with (200 and a small JSON
// body), in the same run:
//
//	go test ./cmd/amarettid -run '^$' -bench Handler -benchmem
//
// What scripts/bench measures from outside is this plus Go's HTTP server,
// which the bare handler pays too.
func BenchmarkHandler(b *testing.B) {
	h, tok := benchDaemon(b)
	body := []byte(`{"editor_id":"aaaaaaaaaaaaaaaaaaaaaaaaaa","role":"user","key_id":"k1"}` + "\n")
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
	for _, c := range []struct {
		name string
		h    http.Handler
		path string
	}{
		{"bare", bare, "/"},
		{"auth", h, "/v1/auth"},
		{"verify", h, "/v1/verify"},
	} {
		request := func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, c.path, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			r.RemoteAddr = "127.0.0.1:40000"
			return r
		}
		b.Run(c.name, func(b *testing.B) {
			r, w := request(), &discard{}
			b.ReportAllocs()
			for b.Loop() {
				w.h = make(http.Header)
				w.status = 0
				c.h.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
		// The same on every core (-cpu 1,2,…): a hit path that writes
		// memory other cores read scales worse than the bare handler.
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r, w := request(), &discard{}
				for pb.Next() {
					w.h = make(http.Header)
					w.status = 0
					c.h.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Errorf("status %d", w.status)
						return
					}
				}
			})
		})
	}
}
