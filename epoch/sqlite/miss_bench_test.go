package sqlite

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// BenchmarkCacheMiss is what an epoch.Cache miss costs on top of the store
// read it makes: "store" reads directly, "cache" through a cache whose
// entries have always expired (its clock moves an hour per lookup).
func BenchmarkCacheMiss(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "a.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	e, err := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.State(ctx, e.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache", func(b *testing.B) {
		var hours atomic.Int64
		now := func() time.Time { return time.Unix(0, 0).Add(time.Duration(hours.Add(1)) * time.Hour) }
		c := epoch.NewCache(s, 0, time.Minute, epoch.WithCacheClock(now))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.State(ctx, e.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
