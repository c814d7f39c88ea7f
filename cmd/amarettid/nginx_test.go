package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/testproc"
)

// TestNginxAuthRequest runs a real nginx with examples/proxies/nginx.conf
// (ports substituted) in front of examples/api-service, asking a real
// amarettid through auth_request.
func TestNginxAuthRequest(t *testing.T) {
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
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	// Each component is awaited by its own readiness signal before nginx
	// sends it anything: amarettid's /readyz, the API service's listening
	// line and /v1/hello, then nginx's pid file and an answer from nginx.
	a := d.start("--cache-ttl", "50ms")
	apiAddr := freePort(t)
	testproc.Start(t, d.dir, filepath.Join(bin, "api-service"), apiAddr, "/v1/hello",
		[]string{"--listen", apiAddr, "--trust-proxy-headers"}, d.env())

	example, err := os.ReadFile("../../examples/proxies/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	nginxAddr := freePort(t)
	server := strings.NewReplacer(
		"listen 127.0.0.1:8000", "listen "+nginxAddr,
		"http://127.0.0.1:8080", a.url,
		"http://127.0.0.1:8081", "http://"+apiAddr,
	).Replace(string(example))
	dir := t.TempDir()
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
	out, _ := os.Create(filepath.Join(dir, "stderr.log"))
	ngx.Stderr = out
	if err := ngx.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { ngx.Wait(); close(exited) }()
	t.Cleanup(func() { ngx.Process.Kill(); <-exited })
	base := "http://" + nginxAddr
	// nginx writes its pid file after it has bound its listening sockets;
	// our pid in it means this nginx, not another process, holds the port.
	pid := strconv.Itoa(ngx.Process.Pid)
	waitUntil(t, "nginx up", 20*time.Second, func() bool {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited:\n%s", log)
		default:
		}
		b, err := os.ReadFile(filepath.Join(dir, "nginx.pid"))
		if err != nil || strings.TrimSpace(string(b)) != pid {
			return false
		}
		resp, err := client.Get(base + "/v1/hello")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 401 // no token: nginx asks amarettid, which refuses
	})

	get := func(tok string, extra map[string]string) (int, http.Header, string) {
		req, _ := http.NewRequest("GET", base+"/v1/proxied/whoami", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for k, v := range extra {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	tok := d.mint(d.minter(), alice)
	status, _, body := get(tok, nil)
	var id map[string]string
	json.Unmarshal([]byte(body), &id)
	if status != 200 || id["editor_id"] != alice || id["role"] != "editor" || id["token_id"] == "" {
		t.Fatalf("valid token through nginx: %d %s", status, body)
	}
	// A client cannot forge the identity headers: nginx replaces them.
	_, _, body = get(tok, map[string]string{"X-Amaretti-Editor-Id": "someone-else"})
	if !strings.Contains(body, alice) {
		t.Fatalf("forged identity header reached the API: %s", body)
	}
	if status, hdr, _ := get("", nil); status != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %v", status, hdr)
	}
	if status, _, _ := get("garbage", nil); status != 401 {
		t.Fatalf("garbage token: %d", status)
	}
	d.cli("editor", "touch", alice)
	waitUntil(t, "touched token refused through nginx", 2*time.Second, func() bool {
		status, hdr, _ := get(tok, nil)
		return status == 401 && strings.Contains(hdr.Get("WWW-Authenticate"), `error_description="token revoked"`)
	})
	if log, _ := os.ReadFile(filepath.Join(dir, "error.log")); strings.Contains(string(log), "[error]") {
		t.Fatalf("nginx logged errors:\n%s", log)
	}
}
