package verifier_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// BenchmarkVerifyDistinct verifies 50,000 distinct valid tokens of one
// editor in turn, as a daemon facing that many active clients does, with
// signature caches of several sizes (entries: the former default, the
// default, none; no byte bound). It reports the signature cache's hit rate and the heap each
// cached token holds (measured: the live heap after filling, over the
// entries kept).
//
//	go test ./verifier -run '^$' -bench VerifyDistinct -benchmem
func BenchmarkVerifyDistinct(b *testing.B) {
	const distinct = 50_000
	f := newFixture(b)
	f.clock.Add(time.Second)
	tokens := make([]string, distinct)
	for i := range tokens {
		tokens[i] = f.mint(b, alice, macaroon.ExpiresIn(time.Hour+time.Duration(i)*time.Millisecond))
	}
	ctx := context.Background()
	for _, size := range []int{10_000, verifier.DefaultSignatureCacheSize, 0} {
		b.Run(fmt.Sprintf("cache=%d", size), func(b *testing.B) {
			cache := epoch.NewCache(f.store, 0, time.Hour, epoch.WithCacheClock(f.clock.Now))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			v, err := verifier.New(f.keys, cache, verifier.WithClock(f.clock.Now), verifier.WithSignatureCache(size),
				verifier.WithSignatureCacheBytes(1<<30))
			if err != nil {
				b.Fatal(err)
			}
			for _, tok := range tokens { // fill
				if _, err := v.Verify(ctx, tok, caveat.Request{}); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			entries, counted := v.SignatureCacheSize()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := v.Verify(ctx, tokens[i%distinct], caveat.Request{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if entries > 0 { // (after the loop: ResetTimer drops metrics)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(entries), "heapB/entry")
				b.ReportMetric(float64(counted)/float64(entries), "countedB/entry")
			}
		})
	}
}

// TestDefaultSignatureCacheHolds50k: with its defaults, a verifier keeps
// 50,000 typical session tokens in use (the former defaults held about
// 6,000: the cache thrashed). One token is verified and what it counts
// scaled (verifying 50,000 under the race detector takes minutes;
// BenchmarkVerifyDistinct does it).
func TestDefaultSignatureCacheHolds50k(t *testing.T) {
	const distinct = 50_000
	f := newFixture(t)
	f.clock.Add(time.Second)
	v, err := verifier.New(f.keys, epoch.NewCache(f.store, 0, time.Hour, epoch.WithCacheClock(f.clock.Now)), verifier.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	tok := f.mint(t, alice, macaroon.ExpiresIn(time.Hour), macaroon.WithKind(caveat.KindSession), macaroon.WithUsername("alice"))
	if _, err := v.Verify(context.Background(), tok, caveat.Request{}); err != nil {
		t.Fatal(err)
	}
	entries, counted := v.SignatureCacheSize()
	if entries != 1 || verifier.DefaultSignatureCacheSize < distinct || counted*distinct > verifier.DefaultSignatureCacheBytes {
		t.Fatalf("a typical token counts %d bytes (%d entries); the defaults (%d entries, %d bytes) must hold %d of them",
			counted, entries, verifier.DefaultSignatureCacheSize, verifier.DefaultSignatureCacheBytes, distinct)
	}
}
