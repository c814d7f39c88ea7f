package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
)

// metrics are the daemon's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg           *prometheus.Registry
	verifications *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	feedUp        prometheus.Gauge
	notifyUp      prometheus.Gauge

	// The hot paths' series, counted per processor (hotmetrics.go).
	verifyAllowed, authAllowed, grpcAllowed interface{ Inc() }
	verifyLatency, authLatency, grpcLatency prometheus.Observer
}

// The verification metrics' names and help, shared by the vectors and the
// hot paths' striped series.
const (
	verificationsName = "amaretti_verifications_total"
	verificationsHelp = "Token verifications by handler (verify, auth, admin) and outcome."
	latencyName       = "amaretti_verification_duration_seconds"
	latencyHelp       = "Time to answer a verification request, by handler."
)

func newMetrics(cache *epoch.Cache, layer *rediscache.Layer) *metrics {
	m := &metrics{
		reg:           prometheus.NewRegistry(),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: verificationsName, Help: verificationsHelp}, []string{"handler", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    latencyName,
			Help:    latencyHelp,
			Buckets: latencyBuckets,
		}, []string{"handler"}),
		feedUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "amaretti_invalidation_feed_up",
			Help: "1 while the Redis invalidation feed delivers: subscribed and this daemon's own heartbeats come back (always 0 without Redis; while 0, every verification reads the store).",
		}),
		notifyUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "amaretti_changelog_notify_up",
			Help: "1 while the PostgreSQL LISTEN connection for change-log wake-ups is up (always 0 on SQLite or with --notify=false: the poll alone follows the log).",
		}),
	}
	hot := newHotMetrics(m.verifications, m.latency,
		prometheus.NewDesc(verificationsName, verificationsHelp, []string{"handler", "outcome"}, nil),
		prometheus.NewDesc(latencyName, latencyHelp, []string{"handler"}, nil),
		"verify", "auth", grpcHandler)
	m.verifyAllowed, m.verifyLatency = hot.allowed["verify"], hot.latencies["verify"]
	m.authAllowed, m.authLatency = hot.allowed["auth"], hot.latencies["auth"]
	m.grpcAllowed, m.grpcLatency = hot.allowed[grpcHandler], hot.latencies[grpcHandler]
	m.reg.MustRegister(hot, m.feedUp, m.notifyUp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, labels prometheus.Labels, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	counter("amaretti_epoch_cache_hits_total", "Editor state lookups answered by a cache layer.", prometheus.Labels{"layer": "process"},
		func() float64 { h, _ := cache.Stats(); return float64(h) })
	counter("amaretti_epoch_cache_misses_total", "Editor state lookups a cache layer passed on.", prometheus.Labels{"layer": "process"},
		func() float64 { _, mi := cache.Stats(); return float64(mi) })
	if layer != nil {
		counter("amaretti_epoch_cache_hits_total", "Editor state lookups answered by a cache layer.", prometheus.Labels{"layer": "redis"},
			func() float64 { return float64(layer.Stats().Hits) })
		counter("amaretti_epoch_cache_misses_total", "Editor state lookups a cache layer passed on.", prometheus.Labels{"layer": "redis"},
			func() float64 { return float64(layer.Stats().Misses) })
		counter("amaretti_redis_fallbacks_total", "Editor state reads that went to the store because Redis failed.", nil,
			func() float64 { return float64(layer.Stats().Fallbacks) })
		counter("amaretti_redis_errors_total", "Failed Redis operations.", nil,
			func() float64 { return float64(layer.Stats().RedisErrors) })
		counter("amaretti_invalidations_received_total", "Invalidation messages received from Redis.", nil,
			func() float64 { return float64(layer.Stats().Invalidations) })
	}
	return m
}

// follow exports the change-log follower's position and health.
func (m *metrics) follow(f *epoch.Follower) {
	gauge := func(name, help string, v func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, v))
	}
	counter := func(name, help string, v func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, v))
	}
	gauge("amaretti_changelog_current", "1 while the change log is followed (caches in use), 0 while caches are bypassed.", func() float64 {
		if f.Current() {
			return 1
		}
		return 0
	})
	gauge("amaretti_changelog_head", "The newest change-log position this daemon has read.", func() float64 { return float64(f.Stats().Head) })
	gauge("amaretti_changelog_window", "Changes remembered to judge shared-cache values (bounded by the change rate over --redis-ttl + 5s).", func() float64 { return float64(f.Stats().Window) })
	counter("amaretti_changelog_polls_total", "Reads of the change log.", func() float64 { return float64(f.Stats().Polls) })
	counter("amaretti_changelog_errors_total", "Failed reads of the change log.", func() float64 { return float64(f.Stats().Errors) })
}

// notifyState is the PostgreSQL watch's state callback.
func (m *metrics) notifyState(up bool) {
	if up {
		m.notifyUp.Set(1)
	} else {
		m.notifyUp.Set(0)
	}
}
