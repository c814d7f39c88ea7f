package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
)

// BenchmarkState reads random editors' states (a verifier's cache miss)
// from SQLite and from PostgreSQL on loopback, with 1,000 and 1,000,000
// editors, each with one revoked token listed in its state: ns/op, and the
// p50 and p99 of single reads. The goal is flat. Both stores are filled
// the same way, by importing one snapshot (epoch.Snapshot), not through
// Create.
func BenchmarkState(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 1_000_000} {
		snap := benchSnapshot(n)
		stores := []struct {
			name string
			open func(b *testing.B) epoch.Store
		}{
			{"sqlite", func(b *testing.B) epoch.Store {
				s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "a.db"))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				return s
			}},
			{"postgres", func(b *testing.B) epoch.Store { s, _ := open(b); return s }},
		}
		for _, st := range stores {
			b.Run(fmt.Sprintf("store=%s/editors=%d", st.name, n), func(b *testing.B) {
				s := st.open(b)
				if err := s.(interface {
					Import(context.Context, *epoch.Snapshot, bool) error
				}).Import(ctx, snap, false); err != nil {
					b.Fatal(err)
				}
				if p, ok := s.(*Store); ok {
					if _, err := p.pool.Exec(ctx, "ANALYZE"); err != nil {
						b.Fatal(err)
					}
				}
				r := rand.New(rand.NewPCG(1, 2))
				var took []time.Duration
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					id := snap.Editors[r.IntN(n)].ID
					start := time.Now()
					state, err := s.State(ctx, id)
					took = append(took, time.Since(start))
					if err != nil || len(state.Revoked) != 36 {
						b.Fatalf("%s: %+v %v", id, state, err)
					}
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}

// benchSnapshot is n editors, each with one token revoked after its epoch.
func benchSnapshot(n int) *epoch.Snapshot {
	at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	snap := &epoch.Snapshot{Editors: make([]epoch.Editor, n), Tokens: make([]epoch.APIToken, n)}
	for i := range n {
		id := fmt.Sprintf("e%d", i)
		snap.Editors[i] = epoch.Editor{ID: id, Username: "u" + id, Role: epoch.RoleEditor, Active: true, AuthEpoch: at, Created: at, Version: 1}
		snap.Tokens[i] = epoch.APIToken{TokenID: fmt.Sprintf("%08X-0000-4000-8000-000000000000", i), EditorID: id, Name: "t",
			Created: at.Add(time.Hour), Creator: "cli", Revoked: at.Add(2 * time.Hour)}
	}
	return snap
}
