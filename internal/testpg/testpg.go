// Package testpg runs a real PostgreSQL server for tests: a fresh initdb
// data directory in a temporary directory of its own, a postmaster on a free
// loopback port, and one empty database per test (NewDatabase). It never
// uses the packaged system service and never downloads anything: it runs the
// initdb and postgres of the installed Debian package (scripts/test installs
// postgresql when it is absent).
//
// PostgreSQL refuses to run as root. When the tests run as root (CI), initdb
// and postgres run as the postgres system user the Debian package creates,
// in a directory owned by it; otherwise they run as the current user.
//
// Authentication: the superuser "postgres" is trusted on the loopback
// interface and the server's own socket (the URLs this package returns carry
// no password); every other role must give its password (scram-sha-256), so
// tests can check what a wrong password does.
package testpg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartTimeout bounds how long a server may take to become ready.
const StartTimeout = 60 * time.Second

// Superuser is the role the URLs of this package connect as.
const Superuser = "postgres"

// Server is a PostgreSQL server started by a test. Its methods are safe for
// concurrent use, except that Stop, Start and Kill must not race each other.
type Server struct {
	bin  string // the directory of initdb and postgres
	dir  string // our directory: data/, the socket, removed by Close
	data string
	port int
	cred *syscall.Credential // nil: run as the current user

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncBuffer
	closed bool

	dbs atomic.Int64 // databases made by NewDatabase

	opts Options
}

// A Namespace is a network namespace a server can run in (internal/netns's
// NS): Do runs a function with the calling thread inside it, so that a
// process forked there belongs to it, and DialContext opens a connection
// from inside it.
type Namespace interface {
	Do(fn func() error) error
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Options run a server elsewhere than on this host's loopback (StartIn).
type Options struct {
	// Netns is the network namespace the server runs in; the URLs of the
	// server (127.0.0.1 there) are reached from inside it by Exec and the
	// readiness check.
	Netns Namespace
	// ListenAlso are addresses to listen on besides 127.0.0.1.
	ListenAlso []string
	// HBA are pg_hba.conf lines added after the default ones, such as
	// "host all all 10.0.0.0/24 scram-sha-256".
	HBA []string
}

// StartIn is Start with options: in a network namespace, listening on
// more addresses, with more pg_hba.conf lines.
func StartIn(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := startMain(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a server for the test and closes it (stopping it and removing
// its directory) when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartMain()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartMain starts a server outside of a test, for a TestMain: the caller
// must Close it when m.Run returns.
func StartMain() (*Server, error) { return startMain(Options{}) }

func startMain(opts Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, opts: opts}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("testpg: PostgreSQL refuses to run as root and there is no postgres user to run it as (%v): install the Debian postgresql package (scripts/test does)", err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("testpg: postgres user with uid %q gid %q", u.Uid, u.Gid)
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parents may be 0700 root, which the postgres
	// user cannot traverse. os.TempDir is world-traversable.
	s.dir, err = os.MkdirTemp("", "amaretti-pg-")
	if err != nil {
		return nil, fmt.Errorf("testpg: %w", err)
	}
	if err := s.init(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	if err := s.Start(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	return s, nil
}

// BinDir finds the directory of the installed PostgreSQL's initdb and
// postgres: pg_config --bindir, else the newest /usr/lib/postgresql/*/bin,
// else the directory of an initdb on $PATH.
func BinDir() (string, error) {
	has := func(dir string) bool {
		for _, f := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", errors.New("testpg: PostgreSQL is not installed (no initdb in pg_config --bindir, /usr/lib/postgresql/*/bin or $PATH): run scripts/test, which installs the Debian postgresql package")
}

// pgMajor is the version number in /usr/lib/postgresql/<n>/bin.
func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// command prepares one of PostgreSQL's programs, run as the postgres user
// when we are root, in its own process group (so Kill reaches every
// backend).
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	return cmd
}

// init makes the data directory with initdb and writes its pg_hba.conf.
func (s *Server) init() error {
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("testpg: %w", err)
		}
	}
	s.data = filepath.Join(s.dir, "data")
	cmd := s.command("initdb", "-D", s.data, "-U", Superuser, "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testpg: initdb: %v\n%s", err, out)
	}
	// Loopback and the socket only; only the superuser goes without a
	// password.
	hba := "local all all trust\n" +
		"host all " + Superuser + " 127.0.0.1/32 trust\n" +
		"host all all 127.0.0.1/32 scram-sha-256\n"
	for _, line := range s.opts.HBA {
		hba += line + "\n"
	}
	if err := os.WriteFile(filepath.Join(s.data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("testpg: %w", err)
	}
	if s.cred != nil {
		if err := os.Chown(filepath.Join(s.data, "pg_hba.conf"), int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("testpg: %w", err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("testpg: %w", err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	return nil
}

// Start starts the server (again, after Stop or Kill) on its data
// directory and port, and waits until it is ready. It is a no-op on a
// running server.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("testpg: Start on a closed server")
	}
	if s.cmd != nil {
		return nil
	}
	cmd := s.command("postgres", "-D", s.data,
		"-c", "listen_addresses="+strings.Join(append([]string{"127.0.0.1"}, s.opts.ListenAlso...), ","),
		"-c", "port="+strconv.Itoa(s.port),
		"-c", "unix_socket_directories="+s.dir,
		"-c", "max_connections=200",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "log_min_messages=warning",
		"-c", "timezone=UTC",
	)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	start := cmd.Start
	if s.opts.Netns != nil {
		start = func() error { return s.opts.Netns.Do(cmd.Start) }
	}
	if err := start(); err != nil {
		return fmt.Errorf("testpg: starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited, s.out = cmd, exited, out
	if err := s.waitReady(cmd.Process.Pid, exited); err != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		s.cmd = nil
		return fmt.Errorf("%w\n%s", err, out.String())
	}
	return nil
}

// waitReady waits for the server's own readiness signal: postmaster.pid
// names our process and says "ready" (the postmaster writes it once it
// accepts connections), then a connection on the TCP port works.
func (s *Server) waitReady(pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(StartTimeout)
	pidFile := filepath.Join(s.data, "postmaster.pid")
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("testpg: postgres on port %d exited before it was ready", s.port)
		default:
		}
		last = postmasterReady(pidFile, pid)
		if last == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var c *pgx.Conn
			c, last = s.connect(ctx, s.URL("postgres"))
			if last == nil {
				var got int
				last = c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&got)
				c.Close(ctx)
			}
			cancel()
			if last == nil {
				return nil
			}
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("testpg: postgres on port %d not ready after %v: %v", s.port, StartTimeout, last)
}

// postmasterReady reads the postmaster.pid file: its first line is the
// postmaster's pid and its eighth its status.
func postmasterReady(path string, pid int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 8 || lines[0] != strconv.Itoa(pid) {
		return fmt.Errorf("postmaster.pid not yet ours: %q", lines)
	}
	if lines[7] != "ready" {
		return fmt.Errorf("postmaster status %q", lines[7])
	}
	return nil
}

// connect connects to url, from inside the server's namespace if it has
// one.
func (s *Server) connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if s.opts.Netns != nil {
		cfg.DialFunc = s.opts.Netns.DialContext
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// Port returns the TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// URL returns a postgres:// URL of database db as the superuser.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, s.port, db)
}

// URLAs returns a postgres:// URL of database db as role with password
// (both URL-escaped).
func (s *Server) URLAs(db, role, password string) string {
	u := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", escape(role), escape(password), s.port, db)
	return u
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// NewDatabase creates a fresh empty database for the test and returns its
// URL. The database goes with the server.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs.Add(1))
	if err := s.Exec(context.Background(), "postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	return s.URL(name)
}

// Exec runs one statement in database db as the superuser.
func (s *Server) Exec(ctx context.Context, db, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := s.connect(ctx, s.URL(db))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql, args...)
	return err
}

// Stop stops the server with a fast shutdown (SIGINT: connections are
// closed, the data stays) and waits for it to exit. Start starts it again.
func (s *Server) Stop() {
	s.stop(syscall.SIGINT)
}

// Kill stops the server at once, every backend with it (SIGKILL to its
// process group), as a crash would; Start recovers it.
func (s *Server) Kill() {
	s.stop(syscall.SIGKILL)
}

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	if sig == syscall.SIGKILL {
		syscall.Kill(-pid, sig)
	} else {
		syscall.Kill(pid, sig)
	}
	select {
	case <-s.exited:
	case <-time.After(StartTimeout):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-s.exited
	}
	if sig == syscall.SIGKILL {
		// Backends notice their postmaster died; the group kill already
		// took them, and a new postmaster checks for leftovers itself.
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	s.cmd = nil
}

// Close stops the server and removes its directory. It is safe to call
// more than once.
func (s *Server) Close() {
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		os.RemoveAll(s.dir)
	}
}

// Log returns what the running (or last) server wrote to its standard
// error.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// syncBuffer is a bytes.Buffer safe for the server's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 { // keep the first MiB
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
