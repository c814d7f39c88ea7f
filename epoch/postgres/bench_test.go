package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkState reads random editors' states (a verifier's cache miss)
// from a table of 1,000 and of 1,000,000 editors, each with one revoked
// token listed in its state: ns/op, and the p50 and p99 of single reads.
// The goal is flat. The editors are made by one INSERT … SELECT
// generate_series, not through Create.
func BenchmarkState(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("editors=%d", n), func(b *testing.B) {
			s, _ := open(b)
			for _, q := range []string{
				`INSERT INTO editors (id, username, role, auth_epoch, created)
					SELECT 'e' || i, 'u' || i, 'editor', '2020-01-01Z', '2020-01-01Z' FROM generate_series(1, $1) i`,
				`INSERT INTO api_tokens (token_id, editor_id, name, created, creator, revoked)
					SELECT upper(md5(i::text)::uuid::text), 'e' || i, 't', '2021-01-01Z', 'cli', '2021-01-02Z' FROM generate_series(1, $1) i`,
				`ANALYZE`,
			} {
				var args []any
				if q != "ANALYZE" {
					args = append(args, n)
				}
				ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
				_, err := s.pool.Exec(ctx, q, args...)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			var took []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				id := fmt.Sprint("e", 1+r.IntN(n))
				start := time.Now()
				st, err := s.State(ctx, id)
				took = append(took, time.Since(start))
				if err != nil || len(st.Revoked) != 36 {
					b.Fatalf("%s: %+v %v", id, st, err)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}
