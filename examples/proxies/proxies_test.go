package proxies

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// identityHeaders are every X-Amaretti-* header amarettid answers an allow
// with (cmd/amarettid's identityHeaders): a proxy must copy each, so that a
// client's own copy never reaches the back end.
var identityHeaders = []string{"X-Amaretti-Editor-Id", "X-Amaretti-Username", "X-Amaretti-Role", "X-Amaretti-Token-Id", "X-Amaretti-Rights", "X-Amaretti-Kind"}

// traefikConfig is the part of Traefik's dynamic configuration the example
// must get right.
type traefikConfig struct {
	HTTP struct {
		Routers map[string]struct {
			Middlewares []string `yaml:"middlewares"`
			Service     string   `yaml:"service"`
		} `yaml:"routers"`
		Middlewares map[string]struct {
			ForwardAuth *struct {
				Address             string   `yaml:"address"`
				TrustForwardHeader  *bool    `yaml:"trustForwardHeader"`
				AuthRequestHeaders  []string `yaml:"authRequestHeaders"`
				AuthResponseHeaders []string `yaml:"authResponseHeaders"`
			} `yaml:"forwardAuth"`
			Headers *struct {
				CustomRequestHeaders map[string]string `yaml:"customRequestHeaders"`
			} `yaml:"headers"`
		} `yaml:"middlewares"`
	} `yaml:"http"`
}

// TestTraefikExample parses examples/proxies/traefik.yml (a misspelt key
// leaves its field empty, which fails) and checks the forwardAuth
// middleware: amarettid's Traefik endpoint, trustForwardHeader
// false, exactly the request headers the endpoint reads, every identity
// header copied back, and a strip middleware that runs first and clears a
// client's identity and override headers.
func TestTraefikExample(t *testing.T) {
	raw, err := os.ReadFile("traefik.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c traefikConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	auth := c.HTTP.Middlewares["amaretti-auth"].ForwardAuth
	strip := c.HTTP.Middlewares["amaretti-strip"].Headers
	if auth == nil || strip == nil {
		t.Fatalf("no amaretti-auth forwardAuth or amaretti-strip headers middleware: %+v", c.HTTP.Middlewares)
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"address is the Traefik endpoint", auth.Address == "http://127.0.0.1:8080/v1/auth/traefik"},
		{"trustForwardHeader is false", auth.TrustForwardHeader != nil && !*auth.TrustForwardHeader},
		{"authRequestHeaders are what the endpoint reads", slices.Equal(auth.AuthRequestHeaders,
			[]string{"Authorization", "Cookie", "X-Forwarded-Method", "X-Forwarded-Uri", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"})},
		{"authResponseHeaders are every identity header", slices.Equal(auth.AuthResponseHeaders, identityHeaders)},
		{"the router strips, then asks amarettid", slices.Equal(c.HTTP.Routers["api"].Middlewares, []string{"amaretti-strip", "amaretti-auth"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("%+v", auth)
			}
		})
	}
	t.Run("the strip middleware clears identity and override headers", func(t *testing.T) {
		for _, h := range append(slices.Clone(identityHeaders), "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-Url", "X-Rewrite-Url") {
			if v, ok := strip.CustomRequestHeaders[h]; !ok || v != "" {
				t.Errorf("%s not cleared", h)
			}
		}
	})
}

// TestCaddyExample adapts examples/proxies/Caddyfile, unchanged, with the
// real Caddy (which validates it), and checks the JSON it becomes: inside
// one route, a client's X-Amaretti-* headers (both spellings) are deleted
// before forward_auth asks /v1/auth/caddy and copies every identity header,
// and the back end comes last.
func TestCaddyExample(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatal("caddy is not installed: run scripts/test, which installs Debian's caddy")
	}
	dir := t.TempDir()
	cmd := exec.Command(caddy, "adapt", "--config", "Caddyfile", "--adapter", "caddyfile", "--validate")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("caddy adapt: %v\n%s", err, stderr)
	}
	// The handlers in the order a request meets them, flattened.
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var handlers []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if h, ok := v["handler"].(string); ok && h != "subroute" {
				handlers = append(handlers, v)
				return
			}
			for _, k := range []string{"apps", "http", "servers", "srv0", "routes", "handle"} {
				if c, ok := v[k]; ok {
					walk(c)
				}
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(cfg)
	deleted, authAt, backAt := map[string]int{}, -1, -1
	var copied []string
	for i, h := range handlers {
		switch h["handler"] {
		case "headers":
			req, _ := h["request"].(map[string]any)
			dels, _ := req["delete"].([]any)
			for _, d := range dels {
				deleted[d.(string)] = i
			}
		case "reverse_proxy":
			rw, _ := h["rewrite"].(map[string]any)
			if rw["uri"] == "/v1/auth/caddy" {
				authAt = i
				b, _ := json.Marshal(h["handle_response"])
				for _, name := range identityHeaders {
					if strings.Contains(string(b), `"`+name+`":["{http.reverse_proxy.header.`+name+`}"]`) {
						copied = append(copied, name)
					}
				}
			} else {
				backAt = i
			}
		}
	}
	if authAt < 0 || backAt < authAt {
		t.Fatalf("no forward_auth to /v1/auth/caddy before the back end: %s", out)
	}
	if !slices.Equal(copied, identityHeaders) {
		t.Errorf("forward_auth copies %v, want every identity header %v", copied, identityHeaders)
	}
	for _, name := range []string{"X-Amaretti-*", "X_Amaretti_*", "X-HTTP-Method-Override", "X-Original-Uri", "X-Forwarded-Method", "X-Forwarded-Uri", "X-Envoy-*"} {
		if at, ok := deleted[name]; !ok || at > authAt {
			t.Errorf("%s is not deleted before forward_auth", name)
		}
	}
}
