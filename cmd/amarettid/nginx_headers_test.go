package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// startExampleNginx runs a real nginx with examples/proxies/nginx.conf, its
// amarettid and API addresses replaced, and returns its address once nginx
// itself is ready: its pid file names this process (nginx writes it after
// binding its sockets, so no other process holds the port) and the port
// accepts connections. nginx logging an error fails the test.
func startExampleNginx(t *testing.T, amarettidURL, apiAddr string) string {
	t.Helper()
	return startExampleNginxWith(t, amarettidURL, apiAddr, false)
}

// startExampleNginxWith is startExampleNginx, with the example's commented
// cache of amarettid's answers turned on when cache is set.
func startExampleNginxWith(t *testing.T, amarettidURL, apiAddr string, cache bool) string {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				nginx, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatal("nginx is not installed: run scripts/test, which installs nginx-light")
	}
	example, err := os.ReadFile("../../examples/proxies/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	server := strings.NewReplacer(
		"listen 127.0.0.1:8000", "listen "+addr,
		"http://127.0.0.1:8080", amarettidURL,
		"http://127.0.0.1:8081", "http://"+apiAddr,
	).Replace(string(example))
	dir := t.TempDir()
	if cache {
		if strings.Count(server, "        #proxy_") != 3 {
			t.Fatal("examples/proxies/nginx.conf no longer has its three commented cache lines")
		}
		server = "proxy_cache_path " + dir + "/cache keys_zone=amaretti_auth:1m;\n" + strings.ReplaceAll(server, "        #proxy_", "        proxy_")
	}
	conf := `daemon off;
master_process off;
worker_processes 1;
pid ` + dir + `/nginx.pid;
error_log ` + dir + `/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path ` + dir + `/body;
    proxy_temp_path ` + dir + `/proxy;
    fastcgi_temp_path ` + dir + `/fastcgi;
    uwsgi_temp_path ` + dir + `/uwsgi;
    scgi_temp_path ` + dir + `/scgi;
` + server + `
}
`
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ngx := exec.Command(nginx, "-c", confPath, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	if err := ngx.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { ngx.Wait(); close(exited) }()
	t.Cleanup(func() {
		ngx.Process.Kill()
		<-exited
		if log, _ := os.ReadFile(filepath.Join(dir, "error.log")); strings.Contains(string(log), "[error]") || strings.Contains(string(log), "[emerg]") {
			t.Errorf("nginx logged errors:\n%s", log)
		}
	})
	pid := strconv.Itoa(ngx.Process.Pid)
	waitUntil(t, "nginx listening", 20*time.Second, func() bool {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited:\n%s", log)
		default:
		}
		if b, err := os.ReadFile(filepath.Join(dir, "nginx.pid")); err != nil || strings.TrimSpace(string(b)) != pid {
			return false
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return addr
}

// TestNginxStripsClientHeaders runs the example nginx configuration in
// front of a back end that echoes every header it receives, with a real
// amarettid: every X-Amaretti-* header, context header, forwarding header
// and method override a client sends is replaced or removed before the back
// end (issue 10, M4).
func TestNginxStripsClientHeaders(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	a := d.start() // waits for amarettid's /healthz
	// The back end: a real listener, accepting as soon as it is created.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Echo-Method", r.Method)
		json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(echo.Close)
	addr := startExampleNginx(t, a.url, strings.TrimPrefix(echo.URL, "http://"))

	minter := d.minter()
	mint := func(cavs ...caveat.Caveat) string {
		time.Sleep(10 * time.Microsecond)
		m, err := minter.Mint(context.Background(), alice, macaroon.WithCaveats(cavs...))
		if err != nil {
			t.Fatal(err)
		}
		return m.Token
	}
	spoofed := map[string]string{
		"X-Amaretti-Editor-Id":   "evil-editor",
		"X-Amaretti-Username":    "evil-username",
		"X-Amaretti-Role":        "superuser",
		"X-Amaretti-Token-Id":    "evil-token-id",
		"X-Amaretti-Rights":      "read,edit,admin:touch",
		"X-Amaretti-Kind":        "evil-kind",
		"X-Real-Ip":              "192.0.2.66",
		"X-Forwarded-For":        "192.0.2.66",
		"X-Http-Method-Override": "DELETE",
		"X-Http-Method":          "DELETE",
		"X-Method-Override":      "DELETE",
		"X-Original-Uri":         "/evil-uri",
		"X-Original-Method":      "DELETE",
		"X-Forwarded-Method":     "DELETE",
		"X-Forwarded-Uri":        "/evil-uri",
		"X-Forwarded-Host":       "evil.example",
		"X-Forwarded-Proto":      "gopher",
		// Path overrides some frameworks honour (IIS URL Rewrite, older
		// Symfony and Zend), and the other forwarding headers.
		"X-Original-Url":     "/evil-url",
		"X-Rewrite-Url":      "/evil-url",
		"X-Forwarded-Prefix": "/evil-prefix",
		"X-Forwarded-Port":   "6666",
		"Forwarded":          "for=192.0.2.66;host=evil.example;proto=gopher",
	}
	for _, tc := range []struct {
		name, tok, rights string
	}{
		{"rights = read", mint(caveat.Rights{"read"}), "read"},
		{"unrestricted", mint(), "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+addr+"/v1/things", nil)
			req.Header.Set("Authorization", "Bearer "+tc.tok)
			for k, v := range spoofed {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var got http.Header
			if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			for k, want := range map[string]string{
				"X-Amaretti-Editor-Id": alice, "X-Amaretti-Role": "editor", "X-Amaretti-Rights": tc.rights,
				"X-Real-Ip": "127.0.0.1", "X-Forwarded-For": "127.0.0.1", "X-Echo-Method": "GET",
			} {
				if vs := got[k]; len(vs) != 1 || vs[0] != want {
					t.Errorf("%s reached the back end as %q, want %q", k, vs, want)
				}
			}
			if got.Get("X-Amaretti-Token-Id") == "" {
				t.Error("no X-Amaretti-Token-Id")
			}
			for k, v := range spoofed {
				for _, gv := range got[k] {
					if gv == v {
						t.Errorf("the client's %s: %s reached the back end", k, v)
					}
				}
			}
			for k, vs := range got {
				for _, v := range vs {
					if strings.Contains(v, "evil") || strings.Contains(v, "192.0.2.66") || strings.Contains(v, "DELETE") || strings.Contains(v, "admin:touch") {
						t.Errorf("a client value reached the back end: %s: %s", k, v)
					}
				}
			}
		})
	}
	// A method-restricted token refuses the override nginx passes to
	// amarettid in the auth subrequest.
	getOnly := mint(caveat.Methods{"GET"})
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/things", nil)
	req.Header.Set("Authorization", "Bearer "+getOnly)
	req.Header.Set("X-HTTP-Method-Override", "DELETE")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("GET-only token with a method override through nginx: %d, want 403", resp.StatusCode)
	}
}
