package rediscache

import (
	"testing"
	"time"
)

// TestHeartbeatTokens: a heartbeat counts only if it is one this Watch
// sent, recent, and seen for the first time: another verifier's, a replay
// or a stale one proves nothing about the feed.
func TestHeartbeatTokens(t *testing.T) {
	const maxAge = 50 * time.Millisecond
	for _, tc := range []struct {
		name string
		run  func(h *heartbeats) bool
		want bool
	}{
		{"own, fresh", func(h *heartbeats) bool { return h.take(h.add(maxAge), maxAge) }, true},
		{"replayed", func(h *heartbeats) bool { tok := h.add(maxAge); h.take(tok, maxAge); return h.take(tok, maxAge) }, false},
		{"another verifier's", func(h *heartbeats) bool {
			h.add(maxAge)
			return h.take((&heartbeats{sent: map[string]time.Time{}}).add(maxAge), maxAge)
		}, false},
		{"forged", func(h *heartbeats) bool { h.add(maxAge); return h.take("00000000000000000000000000000000", maxAge) }, false},
		{"stale", func(h *heartbeats) bool {
			tok := h.add(maxAge)
			h.sent[tok] = time.Now().Add(-2 * maxAge)
			return h.take(tok, maxAge)
		}, false},
		{"forgotten once old", func(h *heartbeats) bool {
			tok := h.add(maxAge)
			h.sent[tok] = time.Now().Add(-2 * maxAge)
			h.add(maxAge)
			_, kept := h.sent[tok]
			return kept
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.run(&heartbeats{sent: map[string]time.Time{}}); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
