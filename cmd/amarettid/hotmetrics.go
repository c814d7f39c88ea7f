package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The hot path's metrics — allowed verifications and their latency, of
// /v1/verify, /v1/auth and gRPC ext_authz — are counted in stripes: a
// prometheus.Counter or Histogram is one set of atomics every core writes,
// and cores then take turns owning its cache lines on every request. A
// stripe is chosen per observation by the runtime's per-thread random
// generator (math/rand/v2's top-level functions), and /metrics adds the
// stripes up. client_golang has no such metric, hence these few lines;
// the series are the same ones, under the same names, as the CounterVec and
// HistogramVec that count everything else.

// stripes is how many cache lines each hot metric spreads over.
const stripes = 16

// stripedCounter is a counter no two cores often write at once.
type stripedCounter struct {
	s [stripes]struct {
		n atomic.Uint64
		_ [56]byte // a cache line each
	}
}

// Inc adds one.
func (c *stripedCounter) Inc() { c.s[rand.Uint32()%stripes].n.Add(1) }

func (c *stripedCounter) value() uint64 {
	var n uint64
	for i := range c.s {
		n += c.s[i].n.Load()
	}
	return n
}

// latencyBuckets are the latency histograms' upper bounds: 25 µs … 400 ms.
var latencyBuckets = prometheus.ExponentialBuckets(25e-6, 2, latencyBucketCount)

const latencyBucketCount = 15

// stripedHistogram is a latency histogram (latencyBuckets) no two cores
// often write at once.
type stripedHistogram struct {
	s [stripes]struct {
		counts [latencyBucketCount + 1]atomic.Uint64 // the last: above every bound
		sum    atomic.Uint64                         // float64 bits
		_      [56]byte
	}
}

// Observe records one latency in seconds.
func (h *stripedHistogram) Observe(v float64) {
	st := &h.s[rand.Uint32()%stripes]
	st.counts[sort.SearchFloat64s(latencyBuckets, v)].Add(1)
	for {
		old := st.sum.Load()
		if st.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// snapshot is the histogram's count, sum and cumulative bucket counts.
func (h *stripedHistogram) snapshot() (uint64, float64, map[float64]uint64) {
	var counts [latencyBucketCount + 1]uint64
	var sum float64
	for i := range h.s {
		for b := range counts {
			counts[b] += h.s[i].counts[b].Load()
		}
		sum += math.Float64frombits(h.s[i].sum.Load())
	}
	buckets := make(map[float64]uint64, latencyBucketCount)
	var n uint64
	for b, upper := range latencyBuckets {
		n += counts[b]
		buckets[upper] = n
	}
	return n + counts[latencyBucketCount], sum, buckets
}

// hotMetrics are the striped series of the hot handlers, collected with
// the vectors that hold every other series of the same metrics. No code
// may ask those vectors for a hot series: it would be gathered twice.
type hotMetrics struct {
	verifications *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	countDesc     *prometheus.Desc
	latencyDesc   *prometheus.Desc
	allowed       map[string]*stripedCounter   // by handler: outcome "allowed"
	latencies     map[string]*stripedHistogram // by handler
}

func newHotMetrics(verifications *prometheus.CounterVec, latency *prometheus.HistogramVec, countDesc, latencyDesc *prometheus.Desc, handlers ...string) *hotMetrics {
	h := &hotMetrics{verifications: verifications, latency: latency, countDesc: countDesc, latencyDesc: latencyDesc,
		allowed: map[string]*stripedCounter{}, latencies: map[string]*stripedHistogram{}}
	for _, name := range handlers {
		h.allowed[name] = new(stripedCounter)
		h.latencies[name] = new(stripedHistogram)
	}
	return h
}

// Describe implements prometheus.Collector: the vectors' descriptions,
// which the hot series share.
func (h *hotMetrics) Describe(ch chan<- *prometheus.Desc) {
	h.verifications.Describe(ch)
	h.latency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (h *hotMetrics) Collect(ch chan<- prometheus.Metric) {
	h.verifications.Collect(ch)
	h.latency.Collect(ch)
	for name, c := range h.allowed {
		ch <- prometheus.MustNewConstMetric(h.countDesc, prometheus.CounterValue, float64(c.value()), name, "allowed")
	}
	for name, l := range h.latencies {
		n, sum, buckets := l.snapshot()
		ch <- prometheus.MustNewConstHistogram(h.latencyDesc, n, sum, buckets, name)
	}
}
