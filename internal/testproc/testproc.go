// Package testproc runs the repository's commands as real processes in
// tests: it builds them once per test binary, starts them on free loopback
// ports, waits until they answer, and stops them with SIGTERM.
package testproc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

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
// ago.
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
	Cmd *exec.Cmd
	// LogPath is the file that receives its standard error.
	LogPath string
}

// Start runs binary with args and env, its standard error going to a file
// in dir, and waits (up to 10 s) until GET URL+health answers. addr is the
// address the arguments make it listen on. The process is stopped when the
// test ends.
func Start(t testing.TB, dir, binary, addr, health string, args, env []string) *Process {
	t.Helper()
	logf, err := os.CreateTemp(dir, filepath.Base(binary)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{URL: "http://" + addr, Cmd: cmd, LogPath: logf.Name()}
	t.Cleanup(func() { p.Stop(); logf.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.URL + health); err == nil {
			resp.Body.Close()
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not come up:\n%s", binary, p.Log())
	return nil
}

// Stop sends SIGTERM and waits for the process to exit.
func (p *Process) Stop() {
	if p.Cmd.ProcessState == nil {
		p.Cmd.Process.Signal(syscall.SIGTERM)
		p.Cmd.Wait()
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
