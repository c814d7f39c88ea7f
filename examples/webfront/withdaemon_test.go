package main

import (
	debugbuildinfo "debug/buildinfo"

	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/buildinfo"

	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// initStore makes a key store and a database in a new directory, as
// "amaretti init" does, and returns the directory and an environment
// naming them.
func initStore(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	db, keys := filepath.Join(dir, "amaretti.db"), filepath.Join(dir, "keys")
	ks, _, err := macaroon.InitKeyStore(keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	minter, _ := macaroon.NewMinter(ks, "")
	tokenFile := filepath.Join(dir, "webfront.token")
	if err := os.WriteFile(tokenFile, []byte(serviceToken(t, s, minter)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, []string{"PATH=" + os.Getenv("PATH"), "AMARETTI_DB=" + db, "AMARETTI_KEYS=" + keys, "WEBFRONT_SERVICE_TOKEN_FILE=" + tokenFile}
}

// stack is "webfront --with-daemon" running as a process.
type stack struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd.Wait returned
	logPath string
}

// startStack starts webfront --dev-login --with-daemon in its own process
// group, as a shell starts a command, its standard error in a file.
func startStack(t *testing.T, dir string, env []string, front, daemon string, extra ...string) *stack {
	t.Helper()
	logf, err := os.CreateTemp(dir, "stack-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	args := append([]string{"--dev-login", "--with-daemon", "--listen", front, "--daemon", "http://" + daemon}, extra...)
	cmd := exec.Command(filepath.Join(bin, "webfront"), args...)
	cmd.Env, cmd.Dir, cmd.Stderr = env, dir, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &stack{cmd: cmd, exited: make(chan struct{}), logPath: logf.Name()}
	go func() { cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		// Whatever the test did: no process of ours stays behind.
		if pid := s.daemonPID(); pid != 0 && !gone(pid) {
			t.Errorf("amarettid (pid %d) still runs; killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-s.exited:
		default:
			cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

func (s *stack) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// daemonPID is the pid of the amarettid the webfront logged starting, or 0.
func (s *stack) daemonPID() int {
	sc := bufio.NewScanner(strings.NewReader(s.log()))
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			PID int    `json:"pid"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "amarettid started" {
			return line.PID
		}
	}
	return 0
}

// waitReady waits until amarettid's /readyz and the webfront's /healthz
// both answer 200, and fails the test if the webfront exits first.
func (s *stack) waitReady(t *testing.T, front, daemon string) {
	t.Helper()
	ok := func(u string) bool {
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	deadline := time.Now().Add(30 * time.Second)
	for !ok("http://"+daemon+"/readyz") || !ok("http://"+front+"/healthz") {
		select {
		case <-s.exited:
			t.Fatalf("webfront exited before it was ready:\n%s", s.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30 s:\n%s", s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the webfront to exit and returns its exit code.
func (s *stack) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		t.Fatalf("webfront did not exit:\n%s", s.log())
		return 0
	}
}

// gone reports whether process pid has exited (a zombie has).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// waitGone waits (up to 20 s) until process pid has exited.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// free fails the test unless addr can be listened on.
func free(t *testing.T, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is not free: %v", addr, err)
		}
		ln.Close()
	}
}

// TestWithDaemon: "webfront --dev-login --with-daemon" starts amarettid,
// serves only once amarettid is ready, and however it is stopped, leaves
// neither process running nor a port taken: the next start on the same
// ports works.
func TestWithDaemon(t *testing.T) {
	dir, env := initStore(t)
	front, daemon := testproc.FreeAddr(t), testproc.FreeAddr(t)
	for _, tc := range []struct {
		name     string
		stop     func(pid int) error
		wantCode int
		// graceful: the webfront stopped amarettid and waited for it, so
		// it is gone the moment the webfront is.
		graceful bool
	}{
		{"Ctrl-C: SIGINT to the process group", func(pid int) error { return syscall.Kill(-pid, syscall.SIGINT) }, 0, true},
		{"SIGINT to the webfront only", func(pid int) error { return syscall.Kill(pid, syscall.SIGINT) }, 0, true},
		{"SIGTERM to the webfront only", func(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }, 0, true},
		// Nothing runs in the webfront: the kernel's parent-death signal
		// stops amarettid.
		{"SIGKILL to the webfront", func(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }, -1, false},
		{"amarettid stopped on its own", nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStack(t, dir, env, front, daemon)
			s.waitReady(t, front, daemon)
			pid := s.daemonPID()
			if pid == 0 || gone(pid) {
				t.Fatalf("no amarettid child:\n%s", s.log())
			}
			log := s.log()
			if r, l := strings.Index(log, `"msg":"amarettid ready"`), strings.Index(log, `"msg":"webfront listening"`); r < 0 || l < r {
				t.Fatalf("the webfront served before amarettid was ready:\n%s", log)
			}
			// The two work together: a dev login, then the tokens page,
			// which the webfront fetches from amarettid.
			if resp, err := http.Get("http://" + front + "/login"); err != nil || resp.StatusCode != 200 {
				t.Fatalf("login page: %v", err)
			} else {
				resp.Body.Close()
			}
			stop := tc.stop
			if stop == nil {
				stop = func(int) error { return syscall.Kill(pid, syscall.SIGTERM) }
			}
			if err := stop(s.cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			if code := s.wait(t); code != tc.wantCode {
				t.Fatalf("webfront exit code %d, want %d:\n%s", code, tc.wantCode, s.log())
			}
			if tc.graceful && (!gone(pid) || !strings.Contains(s.log(), `"msg":"amarettid stopped"`)) {
				t.Fatalf("the webfront did not stop amarettid and wait for it:\n%s", s.log())
			}
			waitGone(t, pid)
			free(t, front, daemon)
		})
	}
}

// TestWithDaemonFails: when amarettid cannot start, the webfront exits
// with an error saying so, amarettid's own error above it, and leaves no
// port taken.
func TestWithDaemonFails(t *testing.T) {
	dir, env := initStore(t)
	front, daemon := testproc.FreeAddr(t), testproc.FreeAddr(t)
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		taken bool // something else listens on the daemon's address
		want  []string
	}{
		{"amarettid refuses its configuration", []string{"AMARETTI_CACHE_SIZE=many"}, nil, false,
			[]string{`amarettid: usage: AMARETTI_CACHE_SIZE (--cache-size) "many" is not a whole number`, "webfront: --with-daemon: amarettid did not start: it exited before it was ready (exit status 2"}},
		{"the daemon's address is taken", nil, nil, true,
			[]string{"webfront: --with-daemon: amarettid did not start: " + daemon + " is taken (is an amarettid already running?)"}},
		{"no such binary", nil, []string{"--daemon-bin", filepath.Join(dir, "nope")}, false,
			[]string{"webfront: --with-daemon: amarettid did not start: fork/exec " + filepath.Join(dir, "nope")}},
		{"daemon not on loopback", nil, []string{"--daemon", "http://192.0.2.1:8080"}, false,
			[]string{"webfront: --with-daemon is for local use: --daemon must be a loopback address, not 192.0.2.1:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.taken {
				ln, err := net.Listen("tcp", daemon)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			s := startStack(t, dir, append(env, tc.env...), front, daemon, tc.args...)
			if code := s.wait(t); code != 1 {
				t.Fatalf("exit code %d:\n%s", code, s.log())
			}
			for _, w := range tc.want {
				if !strings.Contains(s.log(), w) {
					t.Errorf("no %q in:\n%s", w, s.log())
				}
			}
			if pid := s.daemonPID(); pid != 0 {
				waitGone(t, pid)
			}
			if !tc.taken {
				free(t, daemon)
			}
			free(t, front)
		})
	}
}

// TestNoKeyStore (issue 11 §5): without a key store or a service token the
// webfront says where it looked and how to make one, in the CLI's words;
// it never opens a database.
func TestNoKeyStore(t *testing.T) {
	t.Run("process, default paths", func(t *testing.T) {
		dir := t.TempDir()
		cmd := exec.Command(filepath.Join(bin, "webfront"), "--dev-login", "--listen", testproc.FreeAddr(t))
		cmd.Env, cmd.Dir = []string{"PATH=" + os.Getenv("PATH")}, dir
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("exit: %v", err)
		}
		if want := "webfront: no key store at ./keys (run \"amaretti init\", or set --keys / AMARETTI_KEYS)\n"; string(out) != want {
			t.Fatalf("output %q, want %q", out, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "amaretti.db")); !errors.Is(err, os.ErrNotExist) {
			t.Error("a database was created")
		}
	})
	dir, _ := initStore(t)
	open := filepath.Join(dir, "open.token")
	if err := os.WriteFile(open, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two.token")
	if err := os.WriteFile(two, []byte("a b"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, token := filepath.Join(dir, "keys"), filepath.Join(dir, "webfront.token")
	for _, tc := range []struct {
		name            string
		keys, tokenFile string
		sentinel        error
		want            string
	}{
		{"no key store", "/nonexistent/keys", token, errNoKeyStore,
			`no key store at /nonexistent/keys (run "amaretti init", or set --keys / AMARETTI_KEYS)`},
		{"keys in the database", "db", token, errKeysInDatabase, errKeysInDatabase.Error()},
		{"no service token", keys, "", errNoServiceToken, errNoServiceToken.Error()},
		{"service token file missing", keys, filepath.Join(dir, "none"), errServiceToken, "service token: stat " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"service token file open to others", keys, open, errServiceToken, "service token: " + open + " is readable by others than its owner (chmod 600 it)"},
		{"two words in the file", keys, two, errServiceToken, "service token: " + two + " must hold one token and nothing else"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(options{listen: "127.0.0.1:0", dev: true, sessionTTL: time.Hour, keys: tc.keys, serviceTokenFile: tc.tokenFile, db: filepath.Join(dir, "other.db")}, slog.New(slog.DiscardHandler))
			if !errors.Is(err, tc.sentinel) || err.Error() != tc.want {
				t.Fatalf("run: %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "other.db")); !errors.Is(err, os.ErrNotExist) {
				t.Error("a database was created")
			}
		})
	}
}

// TestVersion: --version prints the module version and VCS revision
// recorded in the binary, and exits 0.
func TestVersion(t *testing.T) {
	path := filepath.Join(bin, "webfront")
	bi, err := debugbuildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		t.Fatalf("--version: %v", err)
	}
	if want := "webfront version " + buildinfo.FromBuildInfo(bi) + "\n"; string(out) != want {
		t.Fatalf("--version: %q, want %q", out, want)
	}
}
