// Package testproc runs the repository's commands as real processes in
// tests: it builds them once per test binary, starts them on free loopback
// ports, waits until each is ready by its own signal, and stops them with
// SIGTERM.
package testproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartTimeout is how long Start waits for a process to become ready.
const StartTimeout = 20 * time.Second

// ErrExited is returned by Ready when the process exited before it was ready.
var ErrExited = errors.New("exited before it was ready")

// Build builds the commands of pkgs (paths as "go build" takes them) into a
// new temporary directory and returns it. Call it from TestMain and remove
// the directory when m.Run returns.
func Build(pkgs ...string) (string, error) {
	dir, err := os.MkdirTemp("", "amaretti-bin-")
	if err != nil {
		return "", err
	}
	for _, pkg := range pkgs {
		build := exec.Command("go", "build", "-o", dir, pkg)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("building %s: %w", pkg, err)
		}
	}
	return dir, nil
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago. Another process may take it before the command binds it; Start then
// fails with the command's own "address already in use" instead of talking
// to whoever holds the port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A Process is a started command.
type Process struct {
	// URL is http:// and the address it listens on.
	URL string
	// Cmd is the command. Use Signal, Wait and Stop rather than Cmd.Wait,
	// which Process calls itself to notice an early exit.
	Cmd *exec.Cmd
	// LogPath is the file that receives its standard error.
	LogPath string

	addr    string
	exited  chan struct{}
	waitErr error
	// client asks for readiness (readinessClient unless in a namespace).
	client *http.Client
}

// A Namespace is a network namespace a process can run in (internal/netns's
// NS): Do runs a function with the calling thread inside it, so that a
// process forked there belongs to it, and DialContext opens a connection
// from inside it.
type Namespace interface {
	Do(fn func() error) error
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// readinessClient never waits long for one answer: a process that accepts
// and hangs is asked again, until the deadline.
var readinessClient = &http.Client{Timeout: 2 * time.Second}

// Start runs binary with args and env, its standard error going to a file
// in dir, and waits (up to StartTimeout) until the process is ready by its
// own signals: its log has a "listening" line naming addr (so this process,
// not another one, holds the port), and GET URL+health answers 2xx. It fails
// the test at once, with the log, when the process exits first. addr is the
// address the arguments make it listen on. The process is stopped when the
// test ends.
func Start(t testing.TB, dir, binary, addr, health string, args, env []string) *Process {
	t.Helper()
	return StartIn(t, nil, dir, binary, addr, health, args, env)
}

// StartIn is Start with the process inside the network namespace ns (nil:
// this process's own), its readiness asked over connections made there.
func StartIn(t testing.TB, ns Namespace, dir, binary, addr, health string, args, env []string) *Process {
	t.Helper()
	p := launch(t, ns, dir, binary, addr, args, env)
	if err := p.Ready(health, StartTimeout); err != nil {
		t.Fatalf("%s did not come up: %v\n%s", filepath.Base(binary), err, p.Log())
	}
	return p
}

// launch starts the process and arranges for it to be stopped when the
// test ends, without waiting for it to be ready.
func launch(t testing.TB, ns Namespace, dir, binary, addr string, args, env []string) *Process {
	t.Helper()
	logf, err := os.CreateTemp(dir, filepath.Base(binary)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	cmd.Stderr = logf
	client := readinessClient
	start := cmd.Start
	if ns != nil {
		start = func() error { return ns.Do(cmd.Start) }
		client = &http.Client{Timeout: readinessClient.Timeout, Transport: &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true}}
	}
	if err := start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	p := &Process{URL: "http://" + addr, Cmd: cmd, LogPath: logf.Name(), addr: addr, exited: make(chan struct{}), client: client}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.Stop(); logf.Close() })
	return p
}

// Ready waits until the process has logged that it listens on its address
// and GET URL+health answers 2xx, or returns why not within limit
// (ErrExited when the process exited).
func (p *Process) Ready(health string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := "no \"listening\" line naming " + p.addr + " in its log"
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%w (%v)", ErrExited, p.waitErr)
		default:
		}
		if p.loggedListening() {
			resp, err := p.client.Get(p.URL + health)
			if err != nil {
				last = err.Error()
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					return nil
				}
				last = "GET " + health + ": " + resp.Status
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v: %s", limit, last)
		}
		select {
		case <-p.exited:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// loggedListening reports whether the log has a line with "listening" and
// the process's address as a JSON "addr" (slog) or after "listening on ".
func (p *Process) loggedListening() bool {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "listening") &&
			(strings.Contains(line, `"addr":"`+p.addr+`"`) || strings.Contains(line, "listening on "+p.addr)) {
			return true
		}
	}
	return false
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to exit and returns what exec.Cmd.Wait did.
func (p *Process) Wait() error {
	<-p.exited
	return p.waitErr
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 10 s).
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.Cmd.Process.Kill()
		<-p.exited
	}
}

// Log returns what the process has written to standard error so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Main is a TestMain for tests of processes: it builds pkgs, sets *bin to
// the directory holding them, runs the tests, removes the binaries and
// exits with the tests' status.
func Main(m *testing.M, bin *string, pkgs ...string) {
	dir, err := Build(pkgs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Args is a command line as a test may print it when the command fails:
// an argument longer than 40 characters without a space (a token, a
// macaroon, a key) is shown by its length only, so that failure output
// in a CI log never holds a secret.
func Args(args []string) string {
	shown := make([]string, len(args))
	for i, a := range args {
		if len(a) > 40 && !strings.ContainsAny(a, " \t\n") {
			a = fmt.Sprintf("<%d characters>", len(a))
		}
		shown[i] = a
	}
	return strings.Join(shown, " ")
}
