// Package testredis runs a real redis-server for tests: on a free loopback
// port, without persistence unless asked (StartPersistent), killed when the
// test ends. scripts/test installs redis-server when it is absent.
package testredis

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	t    testing.TB
	port int
	dir  string
	// conf is a configuration file given first (a sentinel's), or "".
	conf    string
	persist []string
	cmd     *exec.Cmd
	// exited is closed when cmd has exited.
	exited chan struct{}
	// ns is the network namespace it runs in (nil: this process's), and
	// also are addresses it binds besides 127.0.0.1 (StartIn).
	ns   Namespace
	also []string
}

// A Namespace is a network namespace a server can run in (internal/netns's
// NS): Do runs a function with the calling thread inside it, so that a
// process forked there belongs to it, and DialContext opens a connection
// from inside it.
type Namespace interface {
	Do(fn func() error) error
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// StartIn starts a redis-server without persistence inside the network
// namespace ns, listening on 127.0.0.1 there and on the addresses also (with
// protected mode off, so that other hosts may connect without a password),
// and stops it when the test ends. Addr and the commands of Server reach it
// from inside ns.
func StartIn(t testing.TB, ns Namespace, also ...string) *Server {
	t.Helper()
	s := newServer(t, "--save", "", "--appendonly", "no", "--protected-mode", "no")
	s.ns, s.also = ns, also
	s.start()
	return s
}

// dial connects to the server, from inside its namespace if it has one.
func (s *Server) dial() (net.Conn, error) {
	if s.ns == nil {
		return net.DialTimeout("tcp", s.Addr(), time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.ns.DialContext(ctx, "tcp", s.Addr())
}

// Start starts a redis-server on a free port of 127.0.0.1 and stops it
// when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "--save", "", "--appendonly", "no")
}

// StartPersistent starts a redis-server that persists as stock Redis does
// with an RDB snapshot (a save point every hour, and SHUTDOWN SAVE) in a
// directory of its own; Shutdown and Restart then bring it back with what it
// had saved, as a restarted production Redis would.
func StartPersistent(t testing.TB) *Server {
	t.Helper()
	return start(t, "--save", "3600 1", "--appendonly", "no", "--dbfilename", "dump.rdb")
}

func start(t testing.TB, persist ...string) *Server {
	t.Helper()
	s := newServer(t, persist...)
	s.start()
	return s
}

// newServer makes a Server on a free port, not started, killed when the
// test ends.
func newServer(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: run scripts/test, which installs it")
	}
	s := &Server{t: t, port: freePort(t), dir: t.TempDir(), persist: args}
	t.Cleanup(s.Kill)
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr returns host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL returns the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) start() {
	s.t.Helper()
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(append(append(append(args, "--bind", "127.0.0.1"), s.also...), "--port", strconv.Itoa(s.port)), s.persist...)
	s.cmd = exec.Command("redis-server", append(args, "--dir", s.dir, "--daemonize", "no", "--loglevel", "warning")...)
	var out strings.Builder
	s.cmd.Stdout = &out
	s.cmd.Stderr = &out
	start := s.cmd.Start
	if s.ns != nil {
		start = func() error { return s.ns.Do(s.cmd.Start) }
	}
	if err := start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	exited := make(chan struct{})
	cmd := s.cmd
	go func() { cmd.Wait(); close(exited) }()
	s.exited = exited
	// Ready is this server answering: process_id in INFO is our child's pid,
	// so a redis-server of another test that took the port does not count.
	want := strconv.Itoa(s.cmd.Process.Pid)
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.t.Fatalf("redis-server on port %d exited before it was ready:\n%s", s.port, out.String())
		default:
		}
		pid, err := s.pid()
		if err == nil && pid == want {
			return
		}
		if err == nil {
			err = fmt.Errorf("port %d is answered by redis-server pid %s, not ours (%s)", s.port, pid, want)
		}
		last = err
		select {
		case <-exited:
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.t.Fatalf("redis-server on port %d not ready: %v", s.port, last)
}

// pid asks the server on the port for its process id (INFO server).
func (s *Server) pid() (string, error) {
	c, err := s.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(head, "$") {
		return "", fmt.Errorf("INFO answered %q", head)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strings.TrimSpace(v), nil
		}
		if strings.TrimSpace(line) == "" {
			return "", fmt.Errorf("INFO server without process_id")
		}
	}
}

// Do sends one command (arguments, not an inline line) to the server and
// returns its reply as text: a simple string, an integer, a bulk string,
// or an array's elements joined by newlines (nested arrays flattened); an
// error reply is returned as an error.
func (s *Server) Do(args ...string) (string, error) {
	c, err := s.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	var out []string
	if err := readReply(bufio.NewReader(c), &out); err != nil {
		return "", err
	}
	return strings.Join(out, "\n"), nil
}

// readReply reads one RESP2 reply, appending its strings to out.
func readReply(r *bufio.Reader, out *[]string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return fmt.Errorf("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		*out = append(*out, line[1:])
	case '-':
		return fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return err // nil bulk: nothing
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		*out = append(*out, string(buf[:n]))
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		for range max(n, 0) {
			if err := readReply(r, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// Info returns the field of an INFO section ("" when absent).
func (s *Server) Info(section, field string) (string, error) {
	v, err := s.Do("INFO", section)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(v, "\n") {
		if f, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return f, nil
		}
	}
	return "", nil
}

// Pid returns the server's process id, or 0 when it is not running.
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// command sends one inline command and returns the first line of the
// answer.
func (s *Server) command(cmd string) (string, error) {
	c, err := s.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// Shutdown stops the server as an operator would: SHUTDOWN, which saves an
// RDB snapshot when the server persists (StartPersistent). It waits for the
// process to exit.
func (s *Server) Shutdown() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	s.command("SHUTDOWN") // the connection closes without an answer when it works
	<-s.exited
	if !s.cmd.ProcessState.Success() {
		s.t.Errorf("redis-server exited: %v", s.cmd.ProcessState)
	}
	s.cmd = nil
}

// Start starts a stopped server again on the same port, with the same
// persistence and directory (so a persistent server loads its snapshot).
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd == nil {
		s.start()
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

// Restart kills the server and starts it again on the same port (empty
// unless it persists; Kill saves nothing).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}
