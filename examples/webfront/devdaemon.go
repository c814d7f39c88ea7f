package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// daemonPackage is what --with-daemon builds when it finds no amarettid.
const daemonPackage = "github.com/amaretti-auth/amaretti/cmd/amarettid"

var (
	// errDaemonStart: --with-daemon could not start amarettid.
	errDaemonStart = errors.New("--with-daemon: amarettid did not start")
	// errDaemonExited: the amarettid of --with-daemon ended on its own.
	errDaemonExited = errors.New("amarettid exited")
)

// localDaemonAddr is the address amarettid listens on for --with-daemon:
// the --daemon URL's, which must be plain HTTP on a loopback address (it is
// for local use).
func localDaemonAddr(daemon string) (string, error) {
	u, err := url.Parse(daemon)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("--with-daemon needs --daemon to be http://HOST:PORT, not %q", daemon)
	}
	addr := net.JoinHostPort(u.Hostname(), firstNonEmpty(u.Port(), "80"))
	if !loopback(addr) {
		return "", fmt.Errorf("--with-daemon is for local use: --daemon must be a loopback address, not %s", addr)
	}
	return addr, nil
}

// childDaemon is the amarettid that --with-daemon runs.
type childDaemon struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // how it exited; read after done is closed
	tmp  string        // directory of a binary built for this run, or ""
}

// daemonBinary finds amarettid: explicit, else next to this program, else
// on PATH, else built with "go build" into a temporary directory (returned
// as tmp, to be removed).
func daemonBinary(ctx context.Context, explicit string, log *slog.Logger) (bin, tmp string, err error) {
	if explicit != "" {
		return explicit, "", nil
	}
	if exe, err := os.Executable(); err == nil {
		next := filepath.Join(filepath.Dir(exe), "amarettid")
		if fi, err := os.Stat(next); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return next, "", nil
		}
	}
	if p, err := exec.LookPath("amarettid"); err == nil {
		return p, "", nil
	}
	tmp, err = os.MkdirTemp("", "webfront-amarettid-")
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", errDaemonStart, err)
	}
	log.Info("building amarettid: none next to webfront or on PATH", "package", daemonPackage)
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp, daemonPackage)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(tmp)
		return "", "", fmt.Errorf("%w: none next to webfront or on PATH, and go build %s failed (run from the repository, or set --daemon-bin): %w", errDaemonStart, daemonPackage, err)
	}
	return filepath.Join(tmp, "amarettid"), tmp, nil
}

// startDaemon starts amarettid on addr with the frontend's store, keys and
// location, its output on the frontend's standard error. It is in the
// frontend's process group (Ctrl-C reaches both), gets SIGTERM when the
// frontend dies (Linux), and is stopped by stop otherwise.
func startDaemon(ctx context.Context, o options, addr string, log *slog.Logger) (*childDaemon, error) {
	// A daemon already on the address would answer the readiness check
	// for ours, which then fails to listen.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is taken (is an amarettid already running?): %w", errDaemonStart, addr, err)
	}
	ln.Close()
	bin, tmp, err := daemonBinary(ctx, o.daemonBin, log)
	if err != nil {
		return nil, err
	}
	d := &childDaemon{tmp: tmp, done: make(chan struct{})}
	d.cmd = exec.Command(bin, "--listen", addr, "--location", o.location,
		"--max-api-token-lifetime", o.policy.MaxAPI.String(), fmt.Sprintf("--allow-no-expiry=%t", o.policy.AllowNoExpiry),
		fmt.Sprintf("--no-migrate=%t", o.noMigrate))
	d.cmd.Env = daemonEnv(os.Environ(), o)
	d.cmd.Stdout, d.cmd.Stderr = os.Stderr, os.Stderr
	d.cmd.SysProcAttr = childAttr()
	started := make(chan error, 1)
	go func() {
		// The parent-death signal follows the thread that forked the
		// child: keep this goroutine on it until the child exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := d.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	if err := <-started; err != nil {
		d.removeTmp()
		return nil, fmt.Errorf("%w: %w", errDaemonStart, err)
	}
	log.Info("amarettid started", "pid", d.cmd.Process.Pid, "binary", bin, "addr", addr)
	return d, nil
}

// daemonEnv is the environment of the amarettid of --with-daemon: the
// frontend's own, with the store and the key directory. They go in the
// environment, not on the command line, where anyone on the host could
// read a postgres:// URL's password (ps); the later value of a variable
// wins.
func daemonEnv(environ []string, o options) []string {
	return append(environ[:len(environ):len(environ)], "AMARETTI_DB="+o.db, "AMARETTI_KEYS="+o.keys)
}

// exitError is errDaemonExited with how it exited; call after done.
func (d *childDaemon) exitError() error {
	return fmt.Errorf("%w (%s; its own error is above)", errDaemonExited, d.how())
}

// stoppedCleanly reports whether amarettid has exited with status 0, as it
// does after SIGINT or SIGTERM.
func (d *childDaemon) stoppedCleanly() bool {
	select {
	case <-d.done:
		return d.err == nil
	default:
		return false
	}
}

// how says how amarettid exited; call after done.
func (d *childDaemon) how() string {
	if d.err == nil {
		return "exit status 0"
	}
	return d.err.Error()
}

// waitReady waits until GET base/readyz answers 200. It fails when
// amarettid exits first, when ctx ends, or after timeout.
func (d *childDaemon) waitReady(ctx context.Context, base string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	ready := base + "/readyz"
	if strings.HasSuffix(base, "/") {
		ready = base + "readyz"
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ready, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-d.done:
			return fmt.Errorf("%w: it exited before it was ready (%s; its own error is above)", errDaemonStart, d.how())
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%w: %s not ready after %s", errDaemonStart, ready, timeout)
		case <-poll.C:
		}
	}
}

// stop sends amarettid SIGTERM (it drains its requests), waits for it to
// exit, killing it if it takes longer than its own drain limit, and removes
// a binary built for this run.
func (d *childDaemon) stop(log *slog.Logger) {
	defer d.removeTmp()
	select {
	case <-d.done:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		limit := time.NewTimer(35 * time.Second)
		defer limit.Stop()
		select {
		case <-d.done:
		case <-limit.C:
			log.Error("amarettid did not stop after SIGTERM; killing it", "pid", d.cmd.Process.Pid)
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	log.Info("amarettid stopped", "pid", d.cmd.Process.Pid, "exit", d.how())
}

func (d *childDaemon) removeTmp() {
	if d.tmp != "" {
		os.RemoveAll(d.tmp)
	}
}
