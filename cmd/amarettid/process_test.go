package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// bin holds the amarettid and amaretti binaries built for the process tests.
var bin string

func TestMain(m *testing.M) { testproc.Main(m, &bin, ".", "../amaretti", "../../examples/api-service") }

func freePort(t testing.TB) string { return testproc.FreeAddr(t) }

// deployment is a store made by the CLI, shared by the daemons of a test.
type deployment struct {
	t        testing.TB
	dir      string
	redisURL string
	// db is the store's --db: the SQLite file in dir, or a PostgreSQL URL.
	db string
}

func (d *deployment) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"AMARETTI_DB=" + d.db,
		"AMARETTI_KEYS=" + filepath.Join(d.dir, "keys"),
		"AMARETTI_REDIS=" + d.redisURL,
	}
}

// cli runs the amaretti binary and returns its trimmed stdout.
func (d *deployment) cli(args ...string) string {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(bin, "amaretti"), args...)
	cmd.Env = d.env()
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		d.t.Fatalf("amaretti %s: %v %s", testproc.Args(args), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// jsonCLI runs the CLI with --json and decodes its output into v.
func (d *deployment) jsonCLI(v any, args ...string) {
	d.t.Helper()
	if err := json.Unmarshal([]byte(d.cli(append([]string{"--json"}, args...)...)), v); err != nil {
		d.t.Fatal(err)
	}
}

func newDeployment(t testing.TB, redisURL string) *deployment {
	dir := t.TempDir()
	return newDeploymentOn(t, redisURL, filepath.Join(dir, "amaretti.db"), dir)
}

// newDeploymentOn makes a deployment on the store db names, with its keys
// in dir.
func newDeploymentOn(t testing.TB, redisURL, db, dir string) *deployment {
	d := &deployment{t: t, dir: dir, redisURL: redisURL, db: db}
	d.cli("init")
	return d
}

// daemon is a running amarettid process.
type daemon struct {
	*testproc.Process
	url string
}

func (d *deployment) start(extra ...string) *daemon {
	d.t.Helper()
	addr := freePort(d.t)
	if strings.HasPrefix(d.db, "postgres") && !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "--store-timeout") }) {
		// The production default (100 ms a state read) is a latency
		// promise a CI machine loaded to 15 cannot keep: a read that
		// waits longer denies with 503, and a test about something else
		// (propagation, locks, logins) would fail on it. The tests of the
		// timeout itself set --store-timeout.
		extra = append([]string{"--store-timeout", "5s"}, extra...)
	}
	p := testproc.Start(d.t, d.dir, filepath.Join(bin, "amarettid"), addr, "/readyz", append([]string{"--listen", addr}, extra...), d.env())
	return &daemon{Process: p, url: p.URL}
}

var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// status asks the daemon to verify tok and returns the HTTP status.
func (dm *daemon) status(t testing.TB, tok string) int {
	req, _ := http.NewRequest("GET", dm.url+"/v1/verify", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("verify: %v", err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (dm *daemon) metric(t testing.TB, name string) string {
	resp, err := client.Get(dm.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

func (d *deployment) minter() *macaroon.Minter {
	keys, err := macaroon.OpenKeyStore(filepath.Join(d.dir, "keys"))
	if err != nil {
		d.t.Fatal(err)
	}
	m, err := macaroon.NewMinter(keys, "api.example.org")
	if err != nil {
		d.t.Fatal(err)
	}
	return m
}

func (d *deployment) mint(m *macaroon.Minter, editor string) string {
	d.t.Helper()
	time.Sleep(10 * time.Microsecond) // after any touch's microsecond
	tok, err := m.Mint(context.Background(), editor)
	if err != nil {
		d.t.Fatal(err)
	}
	return tok.Token
}

func (d *deployment) store() epoch.Store {
	s, err := setup.Store(context.Background(), d.db, setup.StoreOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { s.Close() })
	return s
}

func waitUntil(t testing.TB, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}
