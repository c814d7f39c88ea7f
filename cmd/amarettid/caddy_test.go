package main

import (
	"context"
	"encoding/json"
	"io"
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

// caddyBinary finds Caddy, which scripts/test installs (Debian's caddy).
func caddyBinary(t *testing.T) string {
	t.Helper()
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatal("caddy is not installed: run scripts/test, which installs Debian's caddy")
	}
	return caddy
}

// startExampleCaddy runs a real Caddy with examples/proxies/Caddyfile, its
// addresses replaced, under global options that keep it to a temporary
// directory (no HOME, XDG_* there, storage there, automatic HTTPS off) with
// its admin API on a free loopback port. It returns Caddy's address once
// Caddy itself is ready: it logged "serving initial configuration" (after
// its servers started), its pid file names this process, and its admin API
// — on a port only this process was told — serves the configuration with
// the address substituted.
func startExampleCaddy(t *testing.T, amarettidAddr, apiAddr string) string {
	t.Helper()
	caddy := caddyBinary(t)
	example, err := os.ReadFile("../../examples/proxies/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	addr, admin := freePort(t), freePort(t)
	replace := []string{
		"http://127.0.0.1:8000 {", "http://" + addr + " {",
		"forward_auth 127.0.0.1:8080 {", "forward_auth " + amarettidAddr + " {",
		"reverse_proxy 127.0.0.1:8081 {", "reverse_proxy " + apiAddr + " {",
	}
	for i := 0; i < len(replace); i += 2 {
		if strings.Count(string(example), replace[i]) != 1 {
			t.Fatalf("examples/proxies/Caddyfile no longer has %q once", replace[i])
		}
	}
	site := strings.NewReplacer(replace...).Replace(string(example))
	dir := t.TempDir()
	conf := "{\n\tadmin " + admin + "\n\tauto_https off\n\tstorage file_system " + filepath.Join(dir, "data") + "\n}\n" + site
	confPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "caddy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	pidPath := filepath.Join(dir, "caddy.pid")
	cmd := exec.Command(caddy, "run", "--config", confPath, "--adapter", "caddyfile", "--pidfile", pidPath)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "xdg-data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg-config")}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		logf.Close()
		if log, _ := os.ReadFile(logPath); strings.Contains(string(log), `"level":"error"`) {
			t.Errorf("caddy logged errors:\n%s", log)
		}
	})
	pid := strconv.Itoa(cmd.Process.Pid)
	adminClient := &http.Client{Timeout: time.Second}
	waitUntil(t, "caddy serving", 20*time.Second, func() bool {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("caddy exited:\n%s", log)
		default:
		}
		if log, _ := os.ReadFile(logPath); !strings.Contains(string(log), `"msg":"serving initial configuration"`) {
			return false
		}
		if b, err := os.ReadFile(pidPath); err != nil || strings.TrimSpace(string(b)) != pid {
			return false
		}
		resp, err := adminClient.Get("http://" + admin + "/config/apps/http/servers")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(b), strings.TrimPrefix(addr, "127.0.0.1"))
	})
	return addr
}

// TestCaddyForwardAuth runs a real Caddy with examples/proxies/Caddyfile in
// front of a back end that echoes the headers it receives, asking a real
// amarettid through forward_auth: a valid token passes with its identity, a
// touched one is refused with 401, method- and path-restricted tokens are
// refused outside their limits, every client-sent X-Amaretti-* header (any
// case, "_" for "-", repeated) is replaced or removed, and the context
// headers of the other families cannot change the decision.
func TestCaddyForwardAuth(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	a := d.start("--cache-ttl", "50ms")
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Echo-Method", r.Method)
		h.Set("X-Echo-Uri", r.RequestURI)
		json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(echo.Close)
	base := "http://" + startExampleCaddy(t, strings.TrimPrefix(a.url, "http://"), strings.TrimPrefix(echo.URL, "http://"))

	minter := d.minter()
	mint := func(cavs ...caveat.Caveat) string {
		time.Sleep(10 * time.Microsecond)
		m, err := minter.Mint(context.Background(), alice, macaroon.WithUsername("alice"), macaroon.WithCaveats(cavs...))
		if err != nil {
			t.Fatal(err)
		}
		return m.Token
	}
	send := func(method, target, tok string, h [][2]string) (int, http.Header, http.Header) {
		req, err := http.NewRequest(method, base+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if target != req.URL.RequestURI() { // keep escapes exactly as written
			req.URL.Opaque = strings.SplitN(target, "?", 2)[0]
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for _, kv := range h {
			// Raw keys: the spellings reach the wire as written.
			req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var got http.Header
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%s %s: %d %s", method, target, resp.StatusCode, body)
			}
		}
		return resp.StatusCode, resp.Header, got
	}

	// Every spelling of every identity header a client might send, in
	// several cases, with "_" for "-", and repeated.
	var spoofed [][2]string
	for _, name := range []string{"Editor-Id", "Username", "Role", "Token-Id", "Rights", "Kind", "Admin"} {
		for _, spell := range []string{"X-Amaretti-" + name, strings.ToLower("X-Amaretti-" + name), strings.ToUpper("X-Amaretti-" + name),
			"X_Amaretti_" + strings.ReplaceAll(name, "-", "_"), strings.ToLower("x_amaretti_" + strings.ReplaceAll(name, "-", "_"))} {
			spoofed = append(spoofed, [2]string{spell, "evil-1"}, [2]string{spell, "evil-2"})
		}
	}
	// Context headers of the other families, and this family's own pair,
	// all claiming the request is an allowed one.
	otherFamilies := [][2]string{
		{"X-Original-Method", "GET"}, {"X-Original-Uri", "/api/public/ok"}, {"X-Original-URL", "/api/public/ok"},
		{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/api/public/ok"},
		{"X-Envoy-Original-Path", "/api/public/ok"}, {"X-Envoy-Original-Method", "GET"},
		{"X-Rewrite-Url", "/api/public/ok"}, {"Forwarded", "for=192.0.2.66;host=evil.example"},
		{"X-HTTP-Method-Override", "GET"},
	}

	plain := mint()
	scoped := mint(caveat.Methods{"GET"}, caveat.PathPrefix("/api/public"), caveat.Rights{"read"})
	for _, tc := range []struct {
		name, method, target, tok string
		h                         [][2]string
		status                    int
		rights                    string // on 200: X-Amaretti-Rights at the back end
	}{
		{"valid token", "GET", "/v1/things", plain, nil, 200, "*"},
		{"valid token, spoofed identity", "POST", "/v1/things?a=b", plain, spoofed, 200, "*"},
		{"no token", "GET", "/v1/things", "", nil, 401, ""},
		{"garbage token", "GET", "/v1/things", "garbage", nil, 401, ""},
		{"no token, spoofed identity", "GET", "/v1/things", "", spoofed, 401, ""},
		{"restricted, inside its limits", "GET", "/api/public/x", scoped, spoofed, 200, "read"},
		{"restricted, another method", "POST", "/api/public/x", scoped, nil, 403, ""},
		{"restricted, another path", "GET", "/api/private/x", scoped, nil, 403, ""},
		{"restricted, dot segments", "GET", "/api/public/%2e%2e/private", scoped, nil, 403, ""},
		{"restricted, encoded slash", "GET", "/api/public%2Fx", scoped, nil, 403, ""},
		{"restricted, another method, other families say GET", "DELETE", "/api/public/x", scoped, otherFamilies, 403, ""},
		{"restricted, another path, other families say it is allowed", "GET", "/api/private/x", scoped, otherFamilies, 403, ""},
		{"unrestricted, other families' headers change nothing", "GET", "/v1/things", plain, otherFamilies, 200, "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, got := send(tc.method, tc.target, tc.tok, tc.h)
			if status != tc.status {
				t.Fatalf("%d, want %d", status, tc.status)
			}
			if status != 200 {
				if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), `Bearer realm="amaretti"`) {
					t.Errorf("WWW-Authenticate %q", hdr.Get("WWW-Authenticate"))
				}
				return
			}
			want := map[string]string{"X-Amaretti-Editor-Id": alice, "X-Amaretti-Username": "alice", "X-Amaretti-Role": "editor",
				"X-Amaretti-Rights": tc.rights, "X-Amaretti-Kind": "", "X-Echo-Method": tc.method, "X-Real-Ip": "127.0.0.1"}
			for k, v := range want {
				if vs := got[k]; len(vs) != 1 || vs[0] != v {
					t.Errorf("%s reached the back end as %q, want %q", k, vs, v)
				}
			}
			if vs := got["X-Amaretti-Token-Id"]; len(vs) != 1 || vs[0] == "" {
				t.Errorf("X-Amaretti-Token-Id %q", vs)
			}
			for k, vs := range got {
				lower := strings.ToLower(k)
				if strings.HasPrefix(lower, "x-amaretti-") && want[k] == "" && k != "X-Amaretti-Token-Id" && k != "X-Amaretti-Kind" {
					t.Errorf("%s: %q reached the back end", k, vs)
				}
				if strings.HasPrefix(lower, "x_amaretti") || strings.HasPrefix(lower, "x-envoy-") || strings.HasPrefix(lower, "x-original-") ||
					lower == "x-forwarded-method" || lower == "x-forwarded-uri" || lower == "x-rewrite-url" || lower == "forwarded" || lower == "x-http-method-override" {
					t.Errorf("%s: %q reached the back end", k, vs)
				}
				for _, v := range vs {
					if strings.Contains(v, "evil") || strings.Contains(v, "192.0.2.66") {
						t.Errorf("a client value reached the back end: %s: %s", k, v)
					}
				}
			}
		})
	}

	d.cli("editor", "touch", alice)
	waitUntil(t, "touched token refused through caddy", 3*time.Second, func() bool {
		status, hdr, _ := send("GET", "/v1/things", plain, nil)
		return status == 401 && strings.Contains(hdr.Get("WWW-Authenticate"), `error_description="token revoked"`)
	})
}
