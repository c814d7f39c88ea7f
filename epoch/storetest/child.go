package storetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Environment of a child process (see Main). The address is passed in the
// environment, never on the command line, and a child never prints it.
const (
	envChild   = "AMARETTI_STORETEST_CHILD" // the role: "touch"
	envAddr    = "AMARETTI_STORETEST_ADDR"
	envEditor  = "AMARETTI_STORETEST_EDITOR"
	envTouches = "AMARETTI_STORETEST_TOUCHES" // per worker
	envWorkers = "AMARETTI_STORETEST_WORKERS"
)

// Main is for a backend's TestMain: in a child process the suite started
// (its environment names a role) it plays that role with o and exits;
// otherwise it runs the tests (m.Run) and exits with their status. Set
// Opener.ChildProcesses so that Run starts children.
//
// The one role, "touch": open the store at the address given, print
// "ready", wait for a line on standard input, then touch the editor given
// from several goroutines, printing "touch <epoch µs> <version>" for each
// touch and "done" at the end; on an error, print "error <message>" and
// exit 1.
func Main(m *testing.M, o Opener) {
	Child(o)
	os.Exit(m.Run())
}

// Child is Main for a TestMain that does more around m.Run (starts a
// database server, say): when this process is a child the suite started,
// it plays its role with o and exits; otherwise it returns at once. Call it
// first, before any set-up a child does not need: a child only opens the
// store at the address it is given, with o.Open.
func Child(o Opener) {
	if os.Getenv(envChild) != "" {
		os.Exit(child(o, os.Stdin, os.Stdout))
	}
}

// child plays the role its environment names and returns the exit status.
func child(o Opener, in io.Reader, out io.Writer) int {
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	fail := func(err error) int { say("error %v", err); return 1 }
	if role := os.Getenv(envChild); role != "touch" {
		return fail(fmt.Errorf("unknown role %q", role))
	}
	touches, err1 := strconv.Atoi(os.Getenv(envTouches))
	workers, err2 := strconv.Atoi(os.Getenv(envWorkers))
	editorID := os.Getenv(envEditor)
	if err1 != nil || err2 != nil || touches <= 0 || workers <= 0 || editorID == "" {
		return fail(fmt.Errorf("bad child environment"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := o.Open(ctx, os.Getenv(envAddr))
	if err != nil {
		return fail(fmt.Errorf("open: %w", err))
	}
	defer st.Close()
	say("ready")
	if _, err := bufio.NewReader(in).ReadString('\n'); err != nil {
		return fail(fmt.Errorf("waiting for the start: %w", err))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range touches {
				e, err := st.Touch(ctx, editorID)
				if err != nil {
					errs <- err
					return
				}
				say("touch %d %d", e.AuthEpoch.UnixMicro(), e.Version)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fail(fmt.Errorf("touch: %w", err))
	}
	say("done")
	return 0
}

// touchResult is one touch seen by its caller.
type touchResult struct {
	epoch   time.Time
	version int64
}

// childProc is a running child process.
type childProc struct {
	cmd    *os.Process
	wait   func() error
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *syncBuffer
}

// syncBuffer collects a child's standard error.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	const max = 2000
	if len(b.buf) > max {
		return "…" + string(b.buf[len(b.buf)-max:])
	}
	return string(b.buf)
}
