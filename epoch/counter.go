package epoch

import (
	"math/rand/v2"
	"sync/atomic"
)

// counterStripes is how many cells a counter spreads its additions over: a
// power of two, enough that cores adding at once rarely share one.
const counterStripes = 32

// A counter is a striped event counter: Add writes one of several cells,
// each on its own cache line, chosen at random (the runtime's per-thread
// generator, which writes no shared memory), so that cores counting at
// once do not bounce one cache line between them as a single atomic would.
// Load sums the cells; it is exact once the additions it should see have
// returned. The zero value is ready to use.
type counter struct {
	cells [counterStripes]struct {
		n atomic.Int64
		_ [56]byte // pads the cell to a 64-byte line
	}
}

// Add adds n.
func (c *counter) Add(n int64) {
	c.cells[rand.Uint32()%counterStripes].n.Add(n)
}

// Load returns the sum of every Add so far.
func (c *counter) Load() int64 {
	var sum int64
	for i := range c.cells {
		sum += c.cells[i].n.Load()
	}
	return sum
}
