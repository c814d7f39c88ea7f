package percpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/benchcpu"
)

// TestCounter: no addition is lost, whether made concurrently, before or
// after collections that empty the pool.
func TestCounter(t *testing.T) {
	tests := []struct {
		name       string
		goroutines int
		gcEvery    int // run a collection every this many additions (0: never)
	}{
		{"one", 1, 0},
		{"many", 16, 0},
		{"many with collections", 16, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Counter
			var wg sync.WaitGroup
			for range tc.goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 2000 {
						c.Add(2)
						if tc.gcEvery > 0 && i%tc.gcEvery == 0 {
							runtime.GC()
						}
					}
				}()
			}
			wg.Wait()
			if got, want := c.Load(), int64(tc.goroutines*2000*2); got != want {
				t.Fatalf("Load = %d, want %d", got, want)
			}
		})
	}
}

// TestCellsBounded: however often collections empty the pool, the cells
// stay at most MaxCells, and a shared cell loses nothing.
func TestCellsBounded(t *testing.T) {
	var c Counter
	for range 3 * MaxCells {
		x := c.cells.Get()
		x.V.Add(1)
		// Not put back: the next Get makes or shares another cell.
	}
	c.cells.mu.Lock()
	n := len(c.cells.all)
	c.cells.mu.Unlock()
	if n > MaxCells {
		t.Fatalf("%d cells, want at most %d", n, MaxCells)
	}
	if got := c.Load(); got != 3*MaxCells {
		t.Fatalf("Load = %d, want %d", got, 3*MaxCells)
	}
}

// BenchmarkCounter reports the CPU time per addition, alone (-cpu 1) and
// on every core at once: equal figures mean the cores did not share the
// cells' cache lines. Compare the single atomic of BenchmarkAtomic.
//
//	go test ./internal/percpu -run '^$' -bench . -cpu 1,2
func BenchmarkCounter(b *testing.B) {
	var c Counter
	defer benchcpu.Report(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
}

func BenchmarkAtomic(b *testing.B) {
	var c atomic.Int64
	defer benchcpu.Report(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
}
