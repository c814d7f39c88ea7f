package main

import (
	"math"
	"sort"
	"sync/atomic"

	"github.com/amaretti-auth/amaretti/internal/percpu"
	"github.com/prometheus/client_golang/prometheus"
)

// The hot path's metrics — allowed verifications and their latency, of
// /v1/verify, /v1/auth and gRPC ext_authz — are counted per processor
// (internal/percpu): a prometheus.Counter or Histogram is one set of
// atomics every core writes, and cores then take turns owning its cache
// lines on every request. /metrics adds the cells up. client_golang has no
// such metric, hence these few lines; the series are the same ones, under
// the same names, as the CounterVec and HistogramVec that count everything
// else.

// hotCounter is a counter of the hot path.
type hotCounter struct{ percpu.Counter }

// Inc adds one.
func (c *hotCounter) Inc() { c.Add(1) }

// latencyBuckets are the latency histograms' upper bounds: 25 µs … 400 ms.
var latencyBuckets = prometheus.ExponentialBuckets(25e-6, 2, latencyBucketCount)

const latencyBucketCount = 15

// hotHistogram is a latency histogram (latencyBuckets) counted per
// processor.
type hotHistogram struct {
	cells percpu.Cells[histogramCell]
}

// histogramCell is one processor's share of a histogram.
type histogramCell struct {
	counts [latencyBucketCount + 1]atomic.Uint64 // the last: above every bound
	sum    atomic.Uint64                         // float64 bits
}

// Observe records one latency in seconds.
func (h *hotHistogram) Observe(v float64) {
	x := h.cells.Get()
	x.V.counts[sort.SearchFloat64s(latencyBuckets, v)].Add(1)
	for {
		old := x.V.sum.Load()
		if x.V.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			break
		}
	}
	h.cells.Put(x)
}

// snapshot is the histogram's count, sum and cumulative bucket counts.
func (h *hotHistogram) snapshot() (uint64, float64, map[float64]uint64) {
	var counts [latencyBucketCount + 1]uint64
	var sum float64
	h.cells.Each(func(c *histogramCell) {
		for b := range counts {
			counts[b] += c.counts[b].Load()
		}
		sum += math.Float64frombits(c.sum.Load())
	})
	buckets := make(map[float64]uint64, latencyBucketCount)
	var n uint64
	for b, upper := range latencyBuckets {
		n += counts[b]
		buckets[upper] = n
	}
	return n + counts[latencyBucketCount], sum, buckets
}

// hotMetrics are the per-processor series of the hot handlers, collected with
// the vectors that hold every other series of the same metrics. No code
// may ask those vectors for a hot series: it would be gathered twice.
type hotMetrics struct {
	verifications *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	countDesc     *prometheus.Desc
	latencyDesc   *prometheus.Desc
	allowed       map[string]*hotCounter   // by handler: outcome "allowed"
	latencies     map[string]*hotHistogram // by handler
}

func newHotMetrics(verifications *prometheus.CounterVec, latency *prometheus.HistogramVec, countDesc, latencyDesc *prometheus.Desc, handlers ...string) *hotMetrics {
	h := &hotMetrics{verifications: verifications, latency: latency, countDesc: countDesc, latencyDesc: latencyDesc,
		allowed: map[string]*hotCounter{}, latencies: map[string]*hotHistogram{}}
	for _, name := range handlers {
		h.allowed[name] = new(hotCounter)
		h.latencies[name] = new(hotHistogram)
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
		ch <- prometheus.MustNewConstMetric(h.countDesc, prometheus.CounterValue, float64(c.Load()), name, "allowed")
	}
	for name, l := range h.latencies {
		n, sum, buckets := l.snapshot()
		ch <- prometheus.MustNewConstHistogram(h.latencyDesc, n, sum, buckets, name)
	}
}
