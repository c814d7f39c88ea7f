package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
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

	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/internal/testproc"
)

// pair is a self-signed certificate for 127.0.0.1 and its key, in PEM.
type pair struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

func newPair(t testing.TB, name string) pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pair{cert: cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
}

// install writes the certificate and key files as a certificate manager
// does: each replaced whole by a rename, the key with mode keyMode.
func install(t testing.TB, certFile, keyFile string, certPEM, keyPEM []byte, keyMode os.FileMode) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{certFile, certPEM, 0o644}, {keyFile, keyPEM, keyMode}} {
		tmp := f.path + ".new"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tmp, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsClient trusts the given certificates only.
func tlsClient(certs ...*x509.Certificate) (*http.Client, *tls.Config) {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	conf := &tls.Config{RootCAs: pool}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}, conf
}

// presented makes a new TLS connection to addr and returns the certificate
// the server presents.
func presented(addr string, conf *tls.Config) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// startWith starts amarettid with args and waits (up to 10 s) until ready
// says it answers, or fails the test with its log when it exits first.
func (d *deployment) startWith(ready func() bool, args ...string) *testproc.Process {
	d.t.Helper()
	logf, err := os.CreateTemp(d.dir, "amarettid-*.log")
	if err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "amarettid"), args...)
	cmd.Env = d.env()
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	p := &testproc.Process{Cmd: cmd, LogPath: logf.Name()}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		select {
		case <-exited:
			d.t.Fatalf("amarettid exited:\n%s", p.Log())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("amarettid did not come up:\n%s", p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func getStatus(t testing.TB, c *http.Client, method, url, tok string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTLS: amarettid serves HTTPS (TLS 1.2 and later) with the pair given,
// on the admin listener too; SIGHUP swaps in a new pair (and reloads the
// key store on the same signal); a new pair that does not load leaves the
// old one serving.
func TestTLS(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	tlsDir := t.TempDir()
	certFile, keyFile := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	first, second, third := newPair(t, "first"), newPair(t, "second"), newPair(t, "third")
	install(t, certFile, keyFile, first.certPEM, first.keyPEM, 0o600)
	httpsClient, conf := tlsClient(first.cert, second.cert, third.cert)

	addr, adminAddr := freePort(t), freePort(t)
	p := d.startWith(func() bool {
		resp, err := httpsClient.Get("https://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "--listen", addr, "--admin-listen", adminAddr, "--tls-cert", certFile, "--tls-key", keyFile, "--keys-reload", "0")

	serving := func(t *testing.T, want pair) {
		t.Helper()
		for _, a := range []string{addr, adminAddr} {
			got, err := presented(a, conf)
			if err != nil {
				t.Fatalf("handshake with %s: %v", a, err)
			}
			if !got.Equal(want.cert) {
				t.Fatalf("%s presents %q, want %q", a, got.Subject.CommonName, want.cert.Subject.CommonName)
			}
		}
	}
	hup := func(t *testing.T) {
		t.Helper()
		if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("HTTPS with the first pair", func(t *testing.T) {
		serving(t, first)
		tok := d.mint(d.minter(), alice)
		if got := getStatus(t, httpsClient, "GET", "https://"+addr+"/v1/verify", tok); got != 200 {
			t.Errorf("verify over HTTPS: %d", got)
		}
		if got := getStatus(t, httpsClient, "GET", "https://"+adminAddr+"/metrics", ""); got != 200 {
			t.Errorf("metrics over HTTPS on the admin listener: %d", got)
		}
	})
	t.Run("versions", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			max      uint16
			accepted bool
		}{{"TLS 1.0", tls.VersionTLS10, false}, {"TLS 1.1", tls.VersionTLS11, false}, {"TLS 1.2", tls.VersionTLS12, true}, {"TLS 1.3", tls.VersionTLS13, true}} {
			t.Run(tc.name, func(t *testing.T) {
				c := conf.Clone()
				c.MinVersion, c.MaxVersion = tls.VersionTLS10, tc.max
				_, err := presented(addr, c)
				if accepted := err == nil; accepted != tc.accepted {
					t.Errorf("accepted = %v (%v), want %v", accepted, err, tc.accepted)
				}
			})
		}
	})
	t.Run("plain HTTP refused", func(t *testing.T) {
		if got := getStatus(t, client, "GET", "http://"+addr+"/healthz", ""); got != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %d, want 400", got)
		}
	})
	t.Run("SIGHUP reloads the pair and the keys", func(t *testing.T) {
		d.cli("keys", "rotate")
		fresh := d.mint(d.minter(), alice)
		if got := getStatus(t, httpsClient, "GET", "https://"+addr+"/v1/verify", fresh); got != 401 {
			t.Fatalf("the daemon knew the new key before SIGHUP: %d", got)
		}
		install(t, certFile, keyFile, second.certPEM, second.keyPEM, 0o600)
		hup(t)
		waitUntil(t, "the second certificate after SIGHUP", 5*time.Second, func() bool {
			got, err := presented(addr, conf)
			return err == nil && got.Equal(second.cert)
		})
		serving(t, second)
		waitUntil(t, "the rotated key after the same SIGHUP", 5*time.Second, func() bool {
			return getStatus(t, httpsClient, "GET", "https://"+addr+"/v1/verify", fresh) == 200
		})
		if !strings.Contains(p.Log(), `"msg":"TLS certificate reloaded"`) {
			t.Errorf("no reload logged:\n%s", p.Log())
		}
	})
	t.Run("a broken pair keeps the loaded one", func(t *testing.T) {
		for _, tc := range []struct {
			name            string
			certPEM, keyPEM []byte
			keyMode         os.FileMode
			logged          string
		}{
			{"not PEM", []byte("not a certificate\n"), third.keyPEM, 0o600, "failed to find any PEM data in certificate input"},
			{"the key of another certificate", third.certPEM, first.keyPEM, 0o600, "private key does not match public key"},
			{"a key readable by the group", third.certPEM, third.keyPEM, 0o640, "insecure TLS key permissions"},
			{"an empty key", third.certPEM, nil, 0o600, "failed to find any PEM data in key input"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				failures := strings.Count(p.Log(), "reloading the TLS certificate failed")
				install(t, certFile, keyFile, tc.certPEM, tc.keyPEM, tc.keyMode)
				hup(t)
				waitUntil(t, "the failed reload logged", 5*time.Second, func() bool {
					return strings.Count(p.Log(), "reloading the TLS certificate failed") > failures
				})
				if !strings.Contains(p.Log(), tc.logged) {
					t.Errorf("the log does not say %q:\n%s", tc.logged, p.Log())
				}
				serving(t, second)
				if got := getStatus(t, httpsClient, "GET", "https://"+addr+"/healthz", ""); got != 200 {
					t.Errorf("healthz after a failed reload: %d", got)
				}
			})
		}
	})
	t.Run("a good pair after failures", func(t *testing.T) {
		install(t, certFile, keyFile, third.certPEM, third.keyPEM, 0o600)
		hup(t)
		waitUntil(t, "the third certificate after SIGHUP", 5*time.Second, func() bool {
			got, err := presented(addr, conf)
			return err == nil && got.Equal(third.cert)
		})
		serving(t, third)
	})
	t.Run("the log is JSON without key material", func(t *testing.T) {
		checkJSONLog(t, p.Log(), pemBody(first.keyPEM), pemBody(second.keyPEM), pemBody(third.keyPEM))
	})
}

// TestAdminTLSOff: with --admin-tls=false the admin listener speaks plain
// HTTP while the public one speaks TLS.
func TestAdminTLSOff(t *testing.T) {
	d := newDeployment(t, "")
	tlsDir := t.TempDir()
	certFile, keyFile := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	pr := newPair(t, "only")
	install(t, certFile, keyFile, pr.certPEM, pr.keyPEM, 0o600)
	httpsClient, _ := tlsClient(pr.cert)
	addr, adminAddr := freePort(t), freePort(t)
	d.startWith(func() bool {
		resp, err := client.Get("http://" + adminAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "--listen", addr, "--admin-listen", adminAddr, "--tls-cert", certFile, "--tls-key", keyFile, "--admin-tls=false")
	for _, tc := range []struct {
		name, url string
		c         *http.Client
		want      int
	}{
		{"metrics over plain HTTP on the admin listener", "http://" + adminAddr + "/metrics", client, 200},
		{"healthz over HTTPS on the public listener", "https://" + addr + "/healthz", httpsClient, 200},
		{"metrics not on the public listener", "https://" + addr + "/metrics", httpsClient, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := getStatus(t, tc.c, "GET", tc.url, ""); got != tc.want {
				t.Errorf("GET %s: %d, want %d", tc.url, got, tc.want)
			}
		})
	}
}

// TestAdminListener: with --admin-listen, /metrics and /v1/admin/... are
// served there only (404 on the public listener), the callers' endpoints on
// the public listener only, /healthz and /readyz on both.
func TestAdminListener(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	root := d.cli("editor", "create", "--role", "admin", "root")
	adminAddr := freePort(t)
	a := d.start("--admin-listen", adminAddr)
	admin := "http://" + adminAddr
	m := d.minter()
	rootTok := d.mint(m, root)
	aliceTok := d.mint(m, alice)
	if got := a.status(t, aliceTok); got != 200 {
		t.Fatalf("alice's token before the touch: %d", got)
	}
	for _, tc := range []struct {
		name, method, url, tok string
		want                   int
	}{
		{"metrics on the admin listener", "GET", admin + "/metrics", "", 200},
		{"metrics not on the public listener", "GET", a.url + "/metrics", "", 404},
		{"admin touch not on the public listener", "POST", a.url + "/v1/admin/editors/" + alice + "/touch", rootTok, 404},
		{"admin touch-all not on the public listener", "POST", a.url + "/v1/admin/touch-all", rootTok, 404},
		{"healthz on the public listener", "GET", a.url + "/healthz", "", 200},
		{"healthz on the admin listener", "GET", admin + "/healthz", "", 200},
		{"readyz on the public listener", "GET", a.url + "/readyz", "", 200},
		{"readyz on the admin listener", "GET", admin + "/readyz", "", 200},
		{"verify not on the admin listener", "GET", admin + "/v1/verify", rootTok, 404},
		{"verify on the public listener", "GET", a.url + "/v1/verify", rootTok, 200},
		{"admin touch on the admin listener", "POST", admin + "/v1/admin/editors/" + alice + "/touch", rootTok, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := getStatus(t, client, tc.method, tc.url, tc.tok); got != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.url, got, tc.want)
			}
		})
	}
	t.Run("the touch through the admin listener took effect", func(t *testing.T) {
		waitUntil(t, "alice's earlier token refused on the public listener", 5*time.Second, func() bool { return a.status(t, aliceTok) == 401 })
	})
	t.Run("both listeners drain and the process exits 0 on SIGTERM", func(t *testing.T) {
		a.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- a.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, a.Log())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no exit within 10 s of SIGTERM")
		}
		for _, u := range []string{a.url, admin} {
			if _, err := client.Get(u + "/healthz"); err == nil {
				t.Errorf("%s still answers after exit", u)
			}
		}
	})
}

// TestStartupErrors: amarettid refuses to start, with a message that names
// the fix, without a key store or database (the CLI's words), with a TLS key
// others may read, and with half the TLS flags (a usage error, status 2).
func TestStartupErrors(t *testing.T) {
	d := newDeployment(t, "")
	tlsDir := t.TempDir()
	good := newPair(t, "good")
	other := newPair(t, "other")
	write := func(name string, data []byte, mode os.FileMode) string {
		path := filepath.Join(tlsDir, name)
		if err := os.WriteFile(path, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cert := write("cert.pem", good.certPEM, 0o644)
	key := write("key.pem", good.keyPEM, 0o600)
	openKey := write("open-key.pem", good.keyPEM, 0o644)
	otherKey := write("other-key.pem", other.keyPEM, 0o600)
	empty := t.TempDir()
	old := oldDatabase(t)
	env := d.env()
	noKeysEnv := []string{"PATH=" + os.Getenv("PATH")}

	for _, tc := range []struct {
		name string
		env  []string
		dir  string
		args []string
		code int
		want string // the whole of stderr
	}{
		{"no key store at the default path", noKeysEnv, empty, nil, 1,
			"amarettid: no key store at ./keys (run \"amaretti init\", or set --keys / AMARETTI_KEYS)\n"},
		{"no key store at --keys", env, empty, []string{"--keys", "/nonexistent/keys"}, 1,
			"amarettid: no key store at /nonexistent/keys (run \"amaretti init\", or set --keys / AMARETTI_KEYS)\n"},
		{"no database", env, empty, []string{"--db", filepath.Join(empty, "other.db")}, 1,
			"amarettid: no database at " + filepath.Join(empty, "other.db") + " (run \"amaretti init\", or set --db / AMARETTI_DB)\n"},
		{"--no-migrate on an old schema", env, empty, []string{"--db", old, "--no-migrate"}, 1,
			"amarettid: epoch store " + old + ": the database schema is older than this program: run \"amaretti migrate\" (schema version 1, this program needs " + strconv.Itoa(sqlite.SchemaVersions()) + ")\n"},
		{"--tls-cert alone", env, empty, []string{"--tls-cert", cert}, 2,
			"amarettid: usage: --tls-cert and --tls-key go together: set both, or neither\n"},
		{"--tls-key alone", env, empty, []string{"--tls-key", key}, 2,
			"amarettid: usage: --tls-cert and --tls-key go together: set both, or neither\n"},
		{"--admin-tls without TLS", env, empty, []string{"--admin-tls"}, 2,
			"amarettid: usage: --admin-tls needs --tls-cert and --tls-key\n"},
		{"a TLS key others may read", env, empty, []string{"--tls-cert", cert, "--tls-key", openKey}, 1,
			"amarettid: insecure TLS key permissions: TLS key file " + openKey + " is accessible by group or others (mode 0644); chmod 600 it\n"},
		{"the key of another certificate", env, empty, []string{"--tls-cert", cert, "--tls-key", otherKey}, 1,
			"amarettid: TLS certificate " + cert + " and key " + otherKey + ": tls: private key does not match public key\n"},
		{"no certificate file", env, empty, []string{"--tls-cert", filepath.Join(tlsDir, "missing.pem"), "--tls-key", key}, 1,
			"amarettid: TLS certificate: open " + filepath.Join(tlsDir, "missing.pem") + ": no such file or directory\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "amarettid"), append([]string{"--listen", freePort(t)}, tc.args...)...)
			cmd.Env, cmd.Dir = tc.env, tc.dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || stderr.String() != tc.want {
				t.Errorf("exit %d, stderr:\n%q\nwant exit %d, stderr:\n%q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

// TestRedisLogsAreJSON: go-redis's own complaints (here: it cannot dial)
// reach stderr as JSON records like every other line, never as
// "redis: <date> pool.go:…" text, and never with the password of the URL.
func TestRedisLogsAreJSON(t *testing.T) {
	const password = "s3cret-pw-in-url"
	closed := freePort(t) // nothing listens there
	d := newDeployment(t, "redis://:"+password+"@"+closed+"/0")
	alice := d.cli("editor", "create", "alice")
	a := d.start()
	tok := d.mint(d.minter(), alice)
	if got := a.status(t, tok); got != 200 {
		t.Fatalf("verify with Redis down: %d", got)
	}
	// go-redis says so in either form: our JSON record or its own text.
	waitUntil(t, "go-redis's dial failure in the log", 10*time.Second, func() bool {
		return strings.Contains(a.Log(), "connection pool: failed to dial")
	})
	checkJSONLog(t, a.Log(), password)
	if !strings.Contains(a.Log(), `"level":"WARN","msg":"connection pool: failed to dial`) || !strings.Contains(a.Log(), `"component":"go-redis"`) {
		t.Errorf("go-redis's line is not a warn record of component go-redis:\n%s", a.Log())
	}
}

// checkJSONLog fails unless every line of log is a JSON object and none
// holds any of secrets.
func checkJSONLog(t *testing.T, log string, secrets ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("line %d is not JSON: %q", i+1, line)
		}
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log holds a secret:\n%s", log)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}

// pemBody is the first line of a PEM block's base64, enough to find it in
// a log.
func pemBody(b []byte) string { return strings.Split(string(b), "\n")[1] }

// oldDatabase writes a SQLite database at schema version 1, from the
// frozen fixture of the schema as it shipped.
func oldDatabase(t *testing.T) string {
	t.Helper()
	fixture, err := os.ReadFile("../../epoch/sqlite/testdata/schema-v1.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(string(fixture)); err != nil {
		t.Fatal(err)
	}
	return path
}
