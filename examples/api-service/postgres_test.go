package main

import (
	"context"
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

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/examples/internal/pgtest"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// bound is how long a change made elsewhere may take to reach the service
// in these tests: the poll interval they set (1 s) plus room for a loaded
// machine. With PostgreSQL's NOTIFY it is milliseconds.
const (
	testPoll = time.Second
	bound    = testPoll + 4*time.Second
)

// whoami asks the service at base for GET /v1/whoami with token and returns
// the status and body.
func whoami(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually asks until the service answers want (with body containing
// wantBody) and returns how long that took; it fails the test after bound.
func eventually(t *testing.T, what, base, token string, want int, wantBody string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		status, body := whoami(t, base, token)
		if status == want && strings.Contains(body, wantBody) {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("%s: still %d %s after %v, want %d %q", what, status, body, bound, want, wantBody)
		}
		time.Sleep(10 * time.Millisecond) // polling for an outcome, not for readiness
	}
}

// TestPostgresProcess runs the service as a process on PostgreSQL (one
// flag: --db postgres://…) with its root keys in the database (--keys db,
// --key-encryption-key-file), while another host — this test, through the
// same database — touches an editor, rotates the keys and retires the old
// one: each reaches the running service through the change log within the
// poll interval, without a restart or a SIGHUP. The database password never
// appears in its log.
func TestPostgresProcess(t *testing.T) {
	ctx := context.Background()
	db := pg.Database(t)
	kek := pgtest.KEKFile(t)
	// The other host: "amaretti init" on the same database, keys in it.
	store, err := setup.Store(ctx, db, setup.StoreOptions{ReadTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keyOpts := setup.KeyOptions{Keys: "db", DB: db, KEKFile: kek}
	keys, created, err := setup.InitKeys(ctx, keyOpts, store)
	if err != nil || !created {
		t.Fatalf("init keys: %v %v", created, err)
	}
	first, _ := keys.Current()
	minter, err := macaroon.NewMinter(keys, "api.example.org")
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Second)})
	bob, _ := store.Create(ctx, epoch.NewEditor{Username: "bob", Epoch: time.Now().Add(-time.Second)})
	mint := func(id string) string {
		t.Helper()
		m, err := minter.Mint(ctx, id, macaroon.ExpiresIn(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return m.Token
	}
	aliceTok, bobOld := mint(alice.ID), mint(bob.ID)

	dir := t.TempDir()
	addr := testproc.FreeAddr(t)
	env := []string{"PATH=" + os.Getenv("PATH"), "AMARETTI_DB=" + db, "AMARETTI_KEYS=db",
		setup.KEKFileEnv + "=" + kek, "AMARETTI_POLL=" + testPoll.String(),
		"AMARETTI_KEYS_RELOAD=0",    // keys reach it through the change log only
		"AMARETTI_STORE_TIMEOUT=5s"} // a loaded CI machine is no gateway: see cmd/amarettid's tests
	p := testproc.Start(t, dir, bin, addr, "/v1/hello", []string{"--listen", addr}, env)
	defer func() {
		log := p.Log()
		if strings.Contains(log, pgtest.Password) {
			t.Errorf("the database password is in the service's log:\n%s", log)
		}
		if !strings.Contains(log, `"db":"`+setup.Redact(db)+`"`) || !strings.Contains(log, `"keys":"the database `+setup.Redact(db)+`"`) {
			t.Errorf("the startup line does not name the store and keys (redacted):\n%s", log)
		}
	}()

	for _, tok := range []string{aliceTok, bobOld} {
		if status, body := whoami(t, p.URL, tok); status != 200 {
			t.Fatalf("a valid token: %d %s", status, body)
		}
	}
	steps := []struct {
		name   string
		change func(t *testing.T) (token string)
		want   int
		body   string
	}{
		{"touch", func(t *testing.T) string {
			if _, err := store.Touch(ctx, alice.ID); err != nil {
				t.Fatal(err)
			}
			return aliceTok
		}, 401, "token revoked"},
		{"rotate: a token under the new key verifies", func(t *testing.T) string {
			if _, err := keys.RotateContext(ctx); err != nil {
				t.Fatal(err)
			}
			tok := mint(bob.ID)
			if m, _ := macaroon.Parse(tok, macaroon.Limits{}); m == nil || m.KeyID() == first.ID() {
				t.Fatal("minted under the old key after the rotation")
			}
			return tok
		}, 200, bob.ID},
		{"rotate: a token under the old key still verifies", func(t *testing.T) string { return bobOld }, 200, bob.ID},
		{"retire the old key", func(t *testing.T) string {
			if _, err := keys.RetireContext(ctx, first.ID()); err != nil {
				t.Fatal(err)
			}
			return bobOld
		}, 401, "invalid_token"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			tok := s.change(t)
			took := eventually(t, s.name, p.URL, tok, s.want, s.body)
			t.Logf("%s reached the service in %v", s.name, took.Round(time.Millisecond))
		})
	}
}

// TestKeyDirectoryReload: with a key directory, a rotation reaches the
// running service on SIGHUP (and every --keys-reload).
func TestKeyDirectoryReload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, keyDir := filepath.Join(dir, "amaretti.db"), filepath.Join(dir, "keys")
	keys, _, err := macaroon.InitKeyStore(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := setup.Store(ctx, db, setup.StoreOptions{Create: true, ReadTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	alice, _ := store.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Second)})
	addr := testproc.FreeAddr(t)
	p := testproc.Start(t, dir, bin, addr, "/v1/hello", []string{"--listen", addr, "--keys-reload", "0"},
		[]string{"PATH=" + os.Getenv("PATH"), "AMARETTI_DB=" + db, "AMARETTI_KEYS=" + keyDir, "AMARETTI_STORE_TIMEOUT=5s"})
	if _, err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	minter, _ := macaroon.NewMinter(keys, "")
	m, _ := minter.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour))
	if status, _ := whoami(t, p.URL, m.Token); status != 401 {
		t.Fatalf("a key the service has not loaded yet: %d", status)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SIGHUP", p.URL, m.Token, 200, alice.ID)
}

// TestStartupFailures: the service refuses to start, saying why, and never
// with the database password.
func TestStartupFailures(t *testing.T) {
	db := pg.Database(t)
	sqliteDB := filepath.Join(t.TempDir(), "amaretti.db")
	if s, err := setup.Store(context.Background(), sqliteDB, setup.StoreOptions{Create: true}); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	const wrong = "Wr0ng-pw-never-shown"
	// A port another process holds: the service exits at once, not after
	// a signal (it used to wait for one, its tracker never told to stop).
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no-migrate on an empty database", []string{"AMARETTI_DB=" + pg.Database(t), "AMARETTI_KEYS=db", setup.KEKFileEnv + "=" + pgtest.KEKFile(t)}, []string{"--no-migrate"}, "amaretti migrate"},
		{"AMARETTI_NO_MIGRATE", []string{"AMARETTI_DB=" + pg.Database(t), "AMARETTI_NO_MIGRATE=1", "AMARETTI_KEYS=db", setup.KEKFileEnv + "=" + pgtest.KEKFile(t)}, nil, "amaretti migrate"},
		{"wrong password", []string{"AMARETTI_DB=" + strings.Replace(db, pgtest.Password, wrong, 1), "AMARETTI_KEYS=db", setup.KEKFileEnv + "=" + pgtest.KEKFile(t)}, nil, setup.Redact(db)},
		{"address taken", []string{"AMARETTI_DB=" + db, "AMARETTI_KEYS=db", setup.KEKFileEnv + "=" + pgtest.KEKFile(t), "API_LISTEN=" + taken.Addr().String()}, nil, "address already in use"},
		{"keys in the database without a key-encryption key", []string{"AMARETTI_DB=" + db, "AMARETTI_KEYS=db"}, nil, "no key-encryption key"},
		{"keys in a SQLite database", []string{"AMARETTI_DB=" + sqliteDB, "AMARETTI_KEYS=db", setup.KEKFileEnv + "=" + pgtest.KEKFile(t)}, nil, "only when --db is a PostgreSQL URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.Contains(strings.Join(tc.env, " "), "API_LISTEN=") {
				args = append([]string{"--listen", testproc.FreeAddr(t)}, args...)
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
				t.Fatalf("exit %d (%v), want 1:\n%s", code, err, out)
			}
			if !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "listening") {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), pgtest.Password) || strings.Contains(string(out), wrong) {
				t.Errorf("a password in the output:\n%s", out)
			}
		})
	}
}
