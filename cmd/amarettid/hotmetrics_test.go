package main

import (
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestHotHistogramMatchesPrometheus: the per-processor histogram exposes
// what client_golang's own would for the same observations, observed from
// many goroutines at once.
func TestHotHistogramMatchesPrometheus(t *testing.T) {
	obs := []float64{0, 10e-6, 25e-6, 26e-6, 1e-3, 0.0999, 0.1, 0.4096, 0.41, 3, math.SmallestNonzeroFloat64}
	want := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: latencyBuckets})
	var got hotHistogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				v := obs[(g+i)%len(obs)]
				got.Observe(v)
				want.Observe(v)
			}
		}()
	}
	wg.Wait()
	var m dto.Metric
	if err := want.Write(&m); err != nil {
		t.Fatal(err)
	}
	n, sum, buckets := got.snapshot()
	h := m.GetHistogram()
	if n != h.GetSampleCount() || math.Abs(sum-h.GetSampleSum()) > 1e-9 {
		t.Fatalf("count %d sum %g, want %d %g", n, sum, h.GetSampleCount(), h.GetSampleSum())
	}
	if len(buckets) != len(h.GetBucket()) {
		t.Fatalf("%d buckets, want %d", len(buckets), len(h.GetBucket()))
	}
	for _, b := range h.GetBucket() {
		if buckets[b.GetUpperBound()] != b.GetCumulativeCount() {
			t.Errorf("le=%g: %d, want %d", b.GetUpperBound(), buckets[b.GetUpperBound()], b.GetCumulativeCount())
		}
	}
}

// TestHotMetricsExposed: allowed verifications and their latencies reach
// /metrics under the metrics' names, beside the vectors' series, and the
// registry gathers without a duplicate.
func TestHotMetricsExposed(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, f.alice.ID)
	for range 3 {
		f.do(t, call{"GET", "/v1/verify", bearer(tok), ""})
	}
	for range 2 {
		f.do(t, call{"GET", "/v1/auth", bearer(tok), ""})
	}
	f.do(t, call{"GET", "/v1/verify", bearer("nope"), ""})
	if _, err := f.s.m.reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	_, metrics := f.do(t, call{"GET", "/metrics", nil, ""})
	for _, want := range []string{
		`amaretti_verifications_total{handler="verify",outcome="allowed"} 3`,
		`amaretti_verifications_total{handler="auth",outcome="allowed"} 2`,
		`amaretti_verifications_total{handler="grpc_ext_authz",outcome="allowed"} 0`,
		`amaretti_verifications_total{handler="verify",outcome="invalid_token"} 1`,
		`amaretti_verification_duration_seconds_count{handler="verify"} 4`,
		`amaretti_verification_duration_seconds_count{handler="auth"} 2`,
		`amaretti_verification_duration_seconds_bucket{handler="auth",le="+Inf"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
