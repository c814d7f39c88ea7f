package testproc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The test binary doubles as the command under test: with TESTPROC_CHILD
// set it runs as a small server instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TESTPROC_CHILD"); mode != "" {
		child(mode, os.Getenv("TESTPROC_ADDR"))
		return
	}
	os.Exit(m.Run())
}

// child modes:
//
//	ok            listen, log "child listening" with the address, answer 200
//	unready-first listen and log at once, but answer 503 for the first 300 ms
//	log-first     log the listening line 300 ms before it listens
//	exit          complain on stderr and exit 3
func child(mode, addr string) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if mode == "exit" {
		fmt.Fprintln(os.Stderr, "child: no key store")
		os.Exit(3)
	}
	if mode == "log-first" {
		log.Info("child listening", "addr", addr)
		time.Sleep(300 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	start := time.Now()
	if mode != "log-first" {
		log.Info("child listening", "addr", ln.Addr().String())
	}
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode == "unready-first" && time.Since(start) < 300*time.Millisecond {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
}

func launchChild(t *testing.T, mode, addr string) *Process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return launch(t, nil, t.TempDir(), self, addr, nil, []string{"TESTPROC_CHILD=" + mode, "TESTPROC_ADDR=" + addr})
}

// TestReady: Start returns only when this very process is ready, and fails
// at once with the reason when it cannot be.
func TestReady(t *testing.T) {
	for _, tc := range []struct {
		mode string
		// taken: another server already answers 200 on the port.
		taken   bool
		wantErr error
		wantLog string
	}{
		{mode: "ok"},
		{mode: "unready-first"}, // a 503 is an answer, not readiness
		{mode: "log-first"},     // a log line is not a listening socket
		{mode: "exit", wantErr: ErrExited, wantLog: "no key store"},
		{mode: "ok", taken: true, wantErr: ErrExited, wantLog: "address already in use"},
	} {
		name := tc.mode
		if tc.taken {
			name += "/port taken"
		}
		t.Run(name, func(t *testing.T) {
			addr := FreeAddr(t)
			var otherHits atomic.Int64
			if tc.taken {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) })}
				go srv.Serve(ln)
				t.Cleanup(func() { srv.Close() })
			}
			p := launchChild(t, tc.mode, addr)
			err := p.Ready("/healthz", 10*time.Second)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Ready: %v, want %v\n%s", err, tc.wantErr, p.Log())
			}
			if tc.wantLog != "" && !strings.Contains(err.Error()+p.Log(), tc.wantLog) {
				t.Fatalf("the reason %q is not in %v / %s", tc.wantLog, err, p.Log())
			}
			if err != nil {
				return
			}
			// Ready means ready: the very next request succeeds.
			resp, err := http.Get(p.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("after Ready: %s", resp.Status)
			}
			p.Stop()
			select {
			case <-p.Exited():
			default:
				t.Fatal("Stop returned before the process exited")
			}
		})
	}
}

func TestArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"editor", "create", "alice"}, "editor create alice"},
		{[]string{"token", "verify", strings.Repeat("A", 41)}, "token verify <41 characters>"},
		{[]string{"--db", "postgres://u@h/db?sslmode=disable&application_name=x"}, "--db <52 characters>"},
		{[]string{"a long sentence with spaces that is over forty characters"}, "a long sentence with spaces that is over forty characters"},
		{nil, ""},
	} {
		if got := Args(tc.args); got != tc.want {
			t.Errorf("Args(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
