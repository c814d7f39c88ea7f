package benchcpu

import (
	"crypto/sha256"
	"testing"
)

// TestUsedGrows: work done shows in Used.
func TestUsedGrows(t *testing.T) {
	before := Used()
	if before <= 0 {
		t.Fatalf("Used = %v before any work; want the time the test binary already used", before)
	}
	buf := make([]byte, 1<<20)
	for Used()-before < 5e6 { // 5 ms of CPU
		buf[0]++
		sha256.Sum256(buf)
	}
}

func BenchmarkReport(b *testing.B) {
	defer Report(b)()
	for b.Loop() {
		sha256.Sum256([]byte("x"))
	}
}
