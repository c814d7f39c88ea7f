//go:build linux

package e2e

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/netns"
	"github.com/amaretti-auth/amaretti/internal/testproc"
)

// bin holds amarettid, amaretti and webfront, built once.
var bin string

// TestMain builds the programs, removes the namespaces (and their
// processes) that an earlier run of this test left behind when it was
// killed, and — since a test binary killed by -timeout runs no t.Cleanup —
// sweeps this run's namespaces itself shortly before that timeout, and
// once more after the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	if err := netns.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the end-to-end test builds network namespaces: %v; run it as root on Linux with iproute2 (CI does)\n", err)
		os.Exit(1)
	}
	if removed, err := netns.Sweep(false); err != nil || len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: removed leftovers of an earlier run: %v %v\n", removed, err)
	}
	timer := time.AfterFunc(time.Duration(1<<63-1), func() {})
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > time.Minute {
			timer = time.AfterFunc(d-30*time.Second, func() {
				removed, err := netns.Sweep(true)
				fmt.Fprintf(os.Stderr, "e2e: the test timeout is 30 s away: removed every namespace and process of this run: %v %v\n", removed, err)
			})
		}
	}
	dir, err := testproc.Build("github.com/amaretti-auth/amaretti/cmd/amarettid",
		"github.com/amaretti-auth/amaretti/cmd/amaretti",
		"github.com/amaretti-auth/amaretti/examples/webfront")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	timer.Stop()
	if removed, err := netns.Sweep(true); err != nil || len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: namespaces left after the tests (removed now): %v %v\n", removed, err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
