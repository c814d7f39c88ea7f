package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/internal/testproc"
)

// TestNginxAuthRequest runs a real nginx with examples/proxies/nginx.conf
// (ports substituted) in front of examples/api-service, asking a real
// amarettid through auth_request.
func TestNginxAuthRequest(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	// Each component is awaited by its own readiness signal before nginx
	// sends it anything: amarettid's /readyz, the API service's listening
	// line and /v1/hello, then nginx's pid file and an answer from nginx.
	a := d.start("--cache-ttl", "50ms")
	apiAddr := freePort(t)
	testproc.Start(t, d.dir, filepath.Join(bin, "api-service"), apiAddr, "/v1/hello",
		[]string{"--listen", apiAddr, "--trust-proxy-headers"}, d.env())

	base := "http://" + startExampleNginx(t, a.url, apiAddr)
	// Every component is ready: the first answer through nginx is already
	// amarettid's (no token: 401).
	resp, err := client.Get(base + "/v1/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token through nginx: %d, want 401", resp.StatusCode)
	}

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
}
