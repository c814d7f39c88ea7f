//go:build linux

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/netns"
	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/internal/testredis"
)

// The test's private addresses: one /24 per network, in 10.213.0.0/16,
// which only exists inside the test's namespaces.
var (
	nets = []netns.Net{
		{Name: "db", CIDR: "10.213.1.0/24"},    // PostgreSQL and who talks to it
		{Name: "cache", CIDR: "10.213.2.0/24"}, // Redis and the verifiers
		{Name: "app", CIDR: "10.213.3.0/24"},   // the verifiers, the frontend, the client
	}
	hosts = []netns.HostSpec{
		{Name: "pg", Addrs: map[string]string{"db": "10.213.1.2"}},
		{Name: "redis", Addrs: map[string]string{"cache": "10.213.2.3"}},
		{Name: "v1", Addrs: map[string]string{"db": "10.213.1.11", "cache": "10.213.2.11", "app": "10.213.3.11"}},
		{Name: "v2", Addrs: map[string]string{"db": "10.213.1.12", "cache": "10.213.2.12", "app": "10.213.3.12"}},
		{Name: "front", Addrs: map[string]string{"app": "10.213.3.20"}},
		{Name: "client", Addrs: map[string]string{"db": "10.213.1.30", "app": "10.213.3.30"}},
	}
)

const (
	daemonPort = "8080"
	frontPort  = "8082"
	// wait bounds every "must happen" of the test: generous, for a loaded
	// 2-core machine; the figures logged are what matters.
	wait = 15 * time.Second
)

// cluster is the running deployment.
type cluster struct {
	t    *testing.T
	topo *netns.Topology
	dir  string // per-host directories under it
	db   string // the store's URL as the hosts reach it (with its password)
	// redisURL is the Redis URL as the verifiers reach it.
	redisURL string
	v        map[string]*verifier
	front    *testproc.Process
	// frontURL is the frontend as the client reaches it.
	frontURL string
	client   *http.Client
	// service is the frontend's service editor's id.
	service string
	// secrets must never reach a log.
	mu      sync.Mutex
	secrets []string
}

// verifier is one amarettid.
type verifier struct {
	host *netns.Host
	p    *testproc.Process
	url  string // as the client reaches it
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (c *cluster) secret(s string) string {
	c.mu.Lock()
	c.secrets = append(c.secrets, s)
	c.mu.Unlock()
	return s
}

func (c *cluster) hostDir(h string) string { return filepath.Join(c.dir, h) }

// cli runs the amaretti CLI on host with the store's URL (no Redis) and
// the host's key directory, and returns its trimmed standard output.
func (c *cluster) cli(host string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(bin, "amaretti"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AMARETTI_DB=" + c.db, "AMARETTI_KEYS=" + filepath.Join(c.hostDir(host), "keys")}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := c.topo.Hosts[host].Run(cmd); err != nil {
		c.t.Fatalf("amaretti %s on %s: %v\n%s", args[0], host, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// copyKeys copies the key directory of host from to host to, replacing
// what to had (as a deployment tool would).
func (c *cluster) copyKeys(from, to string) {
	c.t.Helper()
	src, dst := filepath.Join(c.hostDir(from), "keys"), filepath.Join(c.hostDir(to), "keys")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		c.t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			c.t.Fatal(err)
		}
		info, _ := e.Info()
		tmp := filepath.Join(dst, "."+e.Name()+".tmp")
		if err := os.WriteFile(tmp, b, info.Mode().Perm()); err != nil {
			c.t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dst, e.Name())); err != nil {
			c.t.Fatal(err)
		}
	}
}

// startVerifier starts (or restarts) amarettid on host.
func (c *cluster) startVerifier(host string) *verifier {
	c.t.Helper()
	h := c.topo.Hosts[host]
	addr := net.JoinHostPort(h.Addr("app"), daemonPort)
	env := []string{"PATH=" + os.Getenv("PATH"), "AMARETTI_DB=" + c.db, "AMARETTI_KEYS=" + filepath.Join(c.hostDir(host), "keys"), "AMARETTI_REDIS=" + c.redisURL}
	p := testproc.StartIn(c.t, h.NS, c.hostDir(host), filepath.Join(bin, "amarettid"), addr, "/readyz",
		[]string{"--listen", addr, "--poll", "1s", "--keys-reload", "2s", "--max-revoked-tokens", "100000",
			// A state read may take longer than the production 100 ms on a
			// loaded CI machine (a login's token creation met a 503); a
			// cut link still fails a read within a second.
			"--store-timeout", "1s"}, env)
	v := &verifier{host: h, p: p, url: "http://" + addr}
	c.v[host] = v
	return v
}

// relay forwards connections to addr (on the front host's address) to the
// frontend on the front host's loopback, inside the front host: the
// development login only runs on a loopback address, so this plays the
// reverse proxy a real frontend host has.
func (c *cluster) relay(listen, to string) {
	c.t.Helper()
	front := c.topo.Hosts["front"]
	l, err := front.Listen("tcp", listen)
	if err != nil {
		c.t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	track := func(conn net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			open[conn] = true
		} else {
			delete(open, conn)
		}
	}
	c.t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for conn := range open {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			track(in, true)
			go func() {
				defer wg.Done()
				defer track(in, false)
				defer in.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				out, err := front.DialContext(ctx, "tcp", to)
				cancel()
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{})
				go func() { io.Copy(out, in); out.(*net.TCPConn).CloseWrite(); close(done) }()
				io.Copy(in, out)
				in.(*net.TCPConn).CloseWrite()
				<-done
			}()
		}
	}()
}

// verify asks verifier v for tok from the client host and returns the
// status (0 and the error when the request failed).
func (c *cluster) verify(v *verifier, tok string) (int, error) {
	req, _ := http.NewRequest("GET", v.url+"/v1/verify", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// status is verify that fails the test on a failed request or a 5xx
// other than 503.
func (c *cluster) status(v *verifier, tok string) int {
	c.t.Helper()
	s, err := c.verify(v, tok)
	if err != nil {
		c.t.Fatalf("verify at %s: %v", v.host.Short, err)
	}
	if s >= 500 && s != http.StatusServiceUnavailable {
		c.t.Fatalf("verify at %s: %d", v.host.Short, s)
	}
	return s
}

// waitStatus waits until v answers want for tok and returns how long that
// took.
func (c *cluster) waitStatus(v *verifier, tok string, want int) time.Duration {
	c.t.Helper()
	start := time.Now()
	last := 0
	for time.Since(start) < wait {
		if last = c.status(v, tok); last == want {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	c.t.Fatalf("%s still answers %d after %v, not %d", v.host.Short, last, wait, want)
	return 0
}

// settle waits until v answers want for tok, accepting only 503 (a
// fail-closed refusal while v cannot reach its store) on the way: any other
// answer fails the test at once.
func (c *cluster) settle(v *verifier, tok string, want int) {
	c.t.Helper()
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		st := c.status(v, tok)
		if st == want {
			return
		}
		if st != http.StatusServiceUnavailable || time.Since(start) > wait {
			c.t.Fatalf("%s answers %d, want %d", v.host.Short, st, want)
		}
	}
}

// metric reads one metric of v.
func (c *cluster) metric(v *verifier, name string) string {
	c.t.Helper()
	resp, err := c.client.Get(v.url + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// waitUntil waits until cond holds and returns how long it took.
func (c *cluster) waitUntil(what string, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > wait {
			c.t.Fatalf("%s: not within %v", what, wait)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// front does one request at the frontend as a browser on the client host
// would: a form post carries the page's own Origin and Sec-Fetch-Site
// same-origin (the frontend's cross-origin protection wants them).
func (c *cluster) frontDo(method, path, session string, form url.Values) (int, string, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.frontURL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != "GET" {
		req.Header.Set("Origin", c.frontURL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "amaretti_session", Value: session})
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s at the frontend: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, rc := range resp.Cookies() {
		if rc.Name == "amaretti_session" && rc.Value != "" {
			return resp.StatusCode, c.secret(rc.Value), string(b)
		}
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// login logs name in with the development login and returns the session.
func (c *cluster) login(name string) string {
	c.t.Helper()
	status, session, body := c.frontDo("POST", "/login/dev", "", url.Values{"username": {name}})
	if status != http.StatusSeeOther || strings.HasPrefix(session, "/") || session == "" {
		c.t.Fatalf("dev login of %s: %d %s", name, status, body)
	}
	return session
}

var (
	newTokenRE = regexp.MustCompile(`id="new-token" readonly value="([A-Za-z0-9_-]+)"`)
)

// createToken creates an API token on the tokens page and returns its
// secret and id.
func (c *cluster) createToken(session, name string) (secret, id string) {
	c.t.Helper()
	status, _, body := c.frontDo("POST", "/tokens", session, url.Values{"name": {name}, "expires_in": {"720h"}})
	m := newTokenRE.FindStringSubmatch(body)
	if status != http.StatusCreated || m == nil {
		c.t.Fatalf("create token %s: %d %s", name, status, body)
	}
	secret = c.secret(m[1])
	idRE := regexp.MustCompile(`data-token-id="([^"]+)"[^>]*>\s*<td class="name">` + regexp.QuoteMeta(name) + `</td>`)
	if m := idRE.FindStringSubmatch(body); m != nil {
		return secret, m[1]
	}
	_, _, list := c.frontDo("GET", "/tokens", session, nil)
	if m := idRE.FindStringSubmatch(list); m != nil {
		return secret, m[1]
	}
	c.t.Fatalf("token %s is not listed on the tokens page", name)
	return "", ""
}

// revokeToken revokes a token on the tokens page.
func (c *cluster) revokeToken(session, id string) {
	c.t.Helper()
	if status, loc, body := c.frontDo("POST", "/tokens/"+id+"/revoke", session, nil); status != http.StatusSeeOther || !strings.Contains(loc, "revoked") {
		c.t.Fatalf("revoke %s: %d %s %s", id, status, loc, body)
	}
}

// percentiles returns p50 and p99 of ds.
func percentiles(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return at(0.50), at(0.99)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}

// newCluster builds the topology and starts every program on its host.
func newCluster(t *testing.T) *cluster {
	began := time.Now()
	step := func(what string) { t.Logf("setup: %s at %s", what, ms(time.Since(began))) }
	if err := netns.Check(); err != nil {
		t.Fatalf("the end-to-end test builds network namespaces: %v; run it as root on Linux with iproute2 (scripts/test does in CI)", err)
	}
	topo, err := netns.New(nets, hosts)
	if err != nil {
		t.Fatalf("building the network: %v", err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("removing the network: %v", err)
		}
	})
	step("network built")
	c := &cluster{t: t, topo: topo, dir: t.TempDir(), v: map[string]*verifier{}}
	for _, h := range hosts {
		if err := os.Mkdir(c.hostDir(h.Name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c.client = &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext: topo.Hosts["client"].DialContext, MaxIdleConnsPerHost: 16}}
	t.Cleanup(c.client.CloseIdleConnections)

	// PostgreSQL on pg: the superuser only on pg's loopback, a password
	// role for the hosts of the db network.
	pgHost := topo.Hosts["pg"]
	pg := testpg.StartIn(t, testpg.Options{Netns: pgHost.NS, ListenAlso: []string{pgHost.Addr("db")},
		HBA: []string{"host all all 10.213.1.0/24 scram-sha-256"}})
	step("PostgreSQL ready")
	password := c.secret(randHex(t, 16))
	ctx := context.Background()
	if err := pg.Exec(ctx, "postgres", "CREATE ROLE amaretti LOGIN PASSWORD '"+password+"'"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", "CREATE DATABASE amaretti OWNER amaretti"); err != nil {
		t.Fatal(err)
	}
	c.db = (&url.URL{Scheme: "postgres", User: url.UserPassword("amaretti", password),
		Host: net.JoinHostPort(pgHost.Addr("db"), strconv.Itoa(pg.Port())), Path: "/amaretti", RawQuery: "sslmode=disable"}).String()

	// Redis on redis.
	rd := testredis.StartIn(t, topo.Hosts["redis"].NS, topo.Hosts["redis"].Addr("cache"))
	c.redisURL = "redis://" + net.JoinHostPort(topo.Hosts["redis"].Addr("cache"), strconv.Itoa(rd.Port())) + "/0"

	step("Redis ready")
	// The store and the keys, made from the client host; the key
	// directory copied to the hosts that need it.
	c.cli("client", "init")
	for _, h := range []string{"v1", "v2", "front"} {
		c.copyKeys("client", h)
	}
	c.service = c.cli("client", "editor", "create", "webfront", "--role", "admin")
	serviceToken := c.secret(c.cli("client", "token", "mint", c.service, "--right", "admin:logins", "--expires", "1h"))
	tokenFile := filepath.Join(c.hostDir("front"), "service.token")
	if err := os.WriteFile(tokenFile, []byte(serviceToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	step("store initialised")
	c.startVerifier("v1")
	c.startVerifier("v2")
	step("verifiers ready")

	front := topo.Hosts["front"]
	local := "127.0.0.1:" + frontPort
	c.frontURL = "http://" + net.JoinHostPort(front.Addr("app"), frontPort)
	c.front = testproc.StartIn(t, front.NS, c.hostDir("front"), filepath.Join(bin, "webfront"), local, "/healthz",
		[]string{"--dev-login", "--listen", local, "--public-url", c.frontURL},
		[]string{"PATH=" + os.Getenv("PATH"), "AMARETTI_KEYS=" + filepath.Join(c.hostDir("front"), "keys"),
			"WEBFRONT_SERVICE_TOKEN_FILE=" + tokenFile, "WEBFRONT_DAEMON=" + c.v["v1"].url,
			"AMARETTI_DB=/nonexistent/must-not-be-opened.db"})
	c.relay(net.JoinHostPort(front.Addr("app"), frontPort), local)
	step("frontend ready")

	t.Cleanup(func() {
		logs := map[string]string{"webfront": c.front.Log()}
		for name, v := range c.v {
			logs[name] = v.p.Log()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for name, log := range logs {
			for _, s := range c.secrets {
				if strings.Contains(log, s) {
					t.Errorf("a secret reached the log of %s", name)
				}
			}
		}
	})
	return c
}

// scenario runs one scenario of TestE2E, naming it in the log. The
// scenarios share the deployment and its processes (a verifier restarted
// in one serves in the next), so they are not subtests: the first failure
// ends the test.
func scenario(t *testing.T, name string, run func()) {
	t.Helper()
	t.Logf("== %s", name)
	start := time.Now()
	run()
	t.Logf("== %s: done in %s", name, ms(time.Since(start)))
}

// TestE2E runs the deployment across six hosts, each a network namespace
// (pg, redis, v1, v2, front, client), and the scenarios of issue 13 part 3
// in order on it.
func TestE2E(t *testing.T) {
	c := newCluster(t)
	v1, v2 := c.v["v1"], c.v["v2"]
	alice := c.login("alice")
	if s := c.status(v1, alice); s != http.StatusOK {
		t.Fatalf("alice's session at v1: %d", s)
	}

	scenario(t, "frontend token revoked reaches both verifiers", func() {
		const rounds = 100
		var rounds_, toV1, toV2 []time.Duration
		for i := range rounds {
			start := time.Now()
			tok, id := c.createToken(alice, fmt.Sprintf("r%03d", i))
			for _, v := range []*verifier{v1, v2} {
				if s := c.status(v, tok); s != http.StatusOK {
					t.Fatalf("round %d: new token at %s: %d", i, v.host.Short, s)
				}
			}
			c.revokeToken(alice, id)
			toV1 = append(toV1, c.waitStatus(v1, tok, http.StatusUnauthorized))
			toV2 = append(toV2, c.waitStatus(v2, tok, http.StatusUnauthorized))
			rounds_ = append(rounds_, time.Since(start))
		}
		p50, p99 := percentiles(toV1)
		t.Logf("revoked on the frontend → refused at v1 (the frontend's verifier): p50 %s p99 %s over %d rounds", ms(p50), ms(p99), rounds)
		p50, p99 = percentiles(toV2)
		t.Logf("revoked on the frontend → refused at v2 (after v1): p50 %s p99 %s", ms(p50), ms(p99))
		p50, p99 = percentiles(rounds_)
		t.Logf("one round (create on the page, verify at both, revoke on the page, both refuse): p50 %s p99 %s", ms(p50), ms(p99))
	})

	scenario(t, "editor touch from the client host reaches both verifiers", func() {
		const rounds = 30
		var both []time.Duration
		for i := range rounds {
			bob := c.login("bob")
			for _, v := range []*verifier{v1, v2} {
				// A login right after a touch may be minted within the
				// epoch's resolution of it: wait for it to work.
				c.waitStatus(v, bob, http.StatusOK)
			}
			c.cli("client", "editor", "touch", "bob")
			start := time.Now()
			c.waitStatus(v1, bob, http.StatusUnauthorized)
			c.waitStatus(v2, bob, http.StatusUnauthorized)
			both = append(both, time.Since(start))
			_ = i
		}
		p50, p99 := percentiles(both)
		t.Logf("amaretti editor touch on the client host (PostgreSQL only) → refused at v1 and v2: p50 %s p99 %s over %d rounds", ms(p50), ms(p99), rounds)
	})

	scenario(t, "v1 cut from Redis", func() {
		tokA, _ := c.createToken(alice, "redis-cut-a")
		tokB, idB := c.createToken(alice, "redis-cut-b")
		tokC, idC := c.createToken(alice, "redis-cut-c")
		for _, tok := range []string{tokA, tokB, tokC} {
			c.waitStatus(v1, tok, http.StatusOK)
			c.waitStatus(v2, tok, http.StatusOK)
		}
		if err := c.topo.SetLink("v1", "cache", false); err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		restored := false
		defer func() {
			if !restored {
				c.topo.SetLink("v1", "cache", true)
			}
		}()
		// Verification on v1 goes on, from PostgreSQL.
		var lat []time.Duration
		for range 20 {
			s := time.Now()
			if st := c.status(v1, tokA); st != http.StatusOK {
				t.Fatalf("valid token at v1 without Redis: %d", st)
			}
			lat = append(lat, time.Since(s))
		}
		p50, p99 := percentiles(lat)
		t.Logf("v1 without Redis: valid token accepted, latency p50 %s p99 %s (20 requests)", ms(p50), ms(p99))
		// A revocation made on the frontend (through v1) and one made by
		// the CLI on the client host both land at v1 and v2.
		c.revokeToken(alice, idB)
		t.Logf("v1 without Redis: revoked on the frontend → v1 %s, v2 %s", ms(c.waitStatus(v1, tokB, http.StatusUnauthorized)), ms(c.waitStatus(v2, tokB, http.StatusUnauthorized)))
		c.cli("client", "tokens", "revoke", idC)
		start := time.Now()
		c.waitStatus(v1, tokC, http.StatusUnauthorized)
		d1 := time.Since(start)
		c.waitStatus(v2, tokC, http.StatusUnauthorized)
		t.Logf("v1 without Redis: revoked by the CLI on the client host → v1 %s, v2 %s", ms(d1), ms(time.Since(start)))
		feed := c.waitUntil("v1's Redis feed down", func() bool { return c.metric(v1, "amaretti_invalidation_feed_up") == "0" })
		t.Logf("v1's amaretti_invalidation_feed_up went to 0 %s after the cut (%s of waiting); Redis fallbacks so far: %s",
			ms(time.Since(cut)), ms(feed), c.metric(v1, "amaretti_redis_fallbacks_total"))

		if err := c.topo.SetLink("v1", "cache", true); err != nil {
			t.Fatal(err)
		}
		restored = true
		back := c.waitUntil("v1's Redis feed up again", func() bool { return c.metric(v1, "amaretti_invalidation_feed_up") == "1" })
		t.Logf("link restored → v1's Redis feed up again after %s", ms(back))
		tokD, idD := c.createToken(alice, "redis-back")
		c.waitStatus(v2, tokD, http.StatusOK)
		c.cli("client", "tokens", "revoke", idD)
		start = time.Now()
		c.waitStatus(v1, tokD, http.StatusUnauthorized)
		c.waitStatus(v2, tokD, http.StatusUnauthorized)
		t.Logf("back to normal: revoked by the CLI → refused at both after %s", ms(time.Since(start)))
	})

	var revokedDuringCut, valid string
	scenario(t, "v1 cut from PostgreSQL", func() {
		tokA, _ := c.createToken(alice, "pg-cut-a")
		tokB, idB := c.createToken(alice, "pg-cut-b")
		valid = tokA
		for _, tok := range []string{tokA, tokB} {
			c.waitStatus(v1, tok, http.StatusOK) // now cached at v1
			c.waitStatus(v2, tok, http.StatusOK)
		}
		if err := c.topo.SetLink("v1", "db", false); err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		restored := false
		defer func() {
			if !restored {
				c.topo.SetLink("v1", "db", true)
			}
		}()
		// Cached answers, then 503 once a poll of the change log fails.
		var lastOK time.Duration
		oks := 0
		for {
			st := c.status(v1, tokA)
			if st == http.StatusServiceUnavailable {
				break
			}
			if st != http.StatusOK {
				t.Fatalf("valid token at v1 cut from PostgreSQL: %d", st)
			}
			oks++
			lastOK = time.Since(cut)
			if time.Since(cut) > wait {
				t.Fatalf("v1 cut from PostgreSQL still answers from its cache after %v", wait)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("v1 cut from PostgreSQL: cached answers (200) for %s (%d requests), then 503 from %s", ms(lastOK), oks, ms(time.Since(cut)))
		// Revoked during the cut (by the CLI on the client host).
		c.cli("client", "tokens", "revoke", idB)
		revokedDuringCut = tokB
		c.waitStatus(v2, tokB, http.StatusUnauthorized)
		for range 20 {
			if st := c.status(v1, tokB); st == http.StatusOK {
				t.Fatal("v1, cut from PostgreSQL, accepted a token revoked during the cut")
			}
			if st := c.status(v1, tokA); st != http.StatusServiceUnavailable {
				t.Fatalf("v1 cut from PostgreSQL answers %d, not 503", st)
			}
		}
		if err := c.topo.SetLink("v1", "db", true); err != nil {
			t.Fatal(err)
		}
		restored = true
		up := time.Now()
		for {
			if st := c.status(v1, tokB); st == http.StatusOK {
				t.Fatal("v1 accepted, after the link returned, a token revoked during the cut")
			}
			st := c.status(v1, tokA)
			if st == http.StatusOK {
				break
			}
			if time.Since(up) > wait {
				t.Fatalf("v1 still answers %d %v after the link to PostgreSQL returned", st, wait)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("link to PostgreSQL restored → v1 serves again after %s; the token revoked during the cut was never accepted", ms(time.Since(up)))
		// Connections of v1's pool that were mid-query when the link went
		// down may still time out once or twice (503, fail-closed) while
		// the pool replaces them; the revoked token is never accepted, and
		// is refused as revoked (401) from then on.
		flaps := 0
		c.settle(v1, tokB, http.StatusUnauthorized)
		for range 50 {
			switch st := c.status(v1, tokB); st {
			case http.StatusUnauthorized:
			case http.StatusServiceUnavailable:
				flaps++
			default:
				t.Fatalf("the token revoked during the cut: %d at v1 after the link returned", st)
			}
		}
		t.Logf("after the link returned: %d of 50 answers 503 (fail-closed while the pool replaced its connections), the rest 401", flaps)
	})

	scenario(t, "v2 restarted", func() {
		start := time.Now()
		v2.p.Stop()
		// v1 serves meanwhile (after a 503 or two, fail-closed, should its
		// pool still be replacing connections the cut above broke).
		c.settle(v1, valid, http.StatusOK)
		nv2 := c.startVerifier("v2")
		ready := time.Since(start)
		if st := c.status(nv2, revokedDuringCut); st != http.StatusUnauthorized {
			t.Fatalf("restarted v2's first answer to a revoked token: %d", st)
		}
		if st := c.status(nv2, valid); st != http.StatusOK {
			t.Fatalf("restarted v2's first answer to a valid token: %d", st)
		}
		c.t.Logf("v2 stopped and started again: ready (/readyz) %s after the stop; its first answers right (revoked 401, valid 200)", ms(ready))
		v2 = nv2
	})

	scenario(t, "key rotation on v1", func() {
		rotated := c.cli("v1", "keys", "rotate")
		m := regexp.MustCompile(`new current key (\S+)`).FindStringSubmatch(rotated)
		if m == nil {
			t.Fatalf("amaretti keys rotate said %q", rotated)
		}
		newKey := m[1]
		if err := v1.p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		tok := c.secret(c.cli("v1", "token", "mint", c.service, "--expires", "10m"))
		if !strings.Contains(c.cli("v1", "token", "inspect", tok), newKey) {
			t.Fatal("the token minted on v1 after the rotation does not name the new key")
		}
		t.Logf("v1 (SIGHUP) accepts it after %s", ms(c.waitStatus(v1, tok, http.StatusOK)))
		if st := c.status(v2, tok); st != http.StatusUnauthorized {
			t.Fatalf("v2, without the new key, answers %d", st)
		}
		// The new key directory goes to the other hosts; v2 re-reads its
		// directory every 2 s (--keys-reload) and is not signalled.
		c.copyKeys("v1", "v2")
		c.copyKeys("v1", "front")
		t.Logf("key directory copied → v2 (--keys-reload 2s, no signal) accepts the new key's token after %s", ms(c.waitStatus(v2, tok, http.StatusOK)))
		if err := c.front.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		session := c.login("carol")
		if !strings.Contains(c.cli("client", "token", "inspect", session), newKey) {
			t.Fatal("the frontend's session minted after its SIGHUP does not name the new key")
		}
		for _, v := range []*verifier{v1, v2} {
			if st := c.status(v, session); st != http.StatusOK {
				t.Fatalf("the frontend's new session at %s: %d", v.host.Short, st)
			}
		}
	})
}
