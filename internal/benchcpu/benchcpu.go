// Package benchcpu reports a benchmark's CPU time per operation.
//
// On a machine whose cores other work also uses, ns/op of a parallel
// benchmark says how much of the cores it got; the process's CPU time per
// operation says what each operation cost. Equal cpu-ns/op alone (-cpu 1)
// and in parallel (-cpu 2, …) means the cores did not slow each other
// down: no cache line that one writes and another reads.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Report starts counting the process's CPU time; the function it returns
// reports it per b.N operation as "cpu-ns/op":
//
//	defer benchcpu.Report(b)()
func Report(b *testing.B) func() {
	start := Used()
	return func() { b.ReportMetric(float64(Used()-start)/float64(b.N), "cpu-ns/op") }
}

// Used is the CPU time the process has used so far (user and system), or
// 0 when the system cannot say.
func Used() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
