package epoch

import (
	"sync"
	"testing"
)

// TestCounter: a striped counter loses no addition made concurrently.
func TestCounter(t *testing.T) {
	tests := []struct {
		name       string
		goroutines int
		adds       int
	}{
		{"one", 1, 1},
		{"serial", 1, 10_000},
		{"concurrent", 8, 10_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			var wg sync.WaitGroup
			for range tt.goroutines {
				wg.Go(func() {
					for range tt.adds {
						c.Add(1)
					}
				})
			}
			wg.Wait()
			if got, want := c.Load(), int64(tt.goroutines*tt.adds); got != want {
				t.Fatalf("Load = %d, want %d", got, want)
			}
		})
	}
}
