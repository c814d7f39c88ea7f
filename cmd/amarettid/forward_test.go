package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// rawCall sends a request whose request-target is exactly target (no
// client-side cleaning or re-encoding).
func (f *fixture) rawCall(t *testing.T, method, target string, h map[string][]string) (*http.Response, string) {
	t.Helper()
	u, _ := url.Parse(f.srv.URL)
	path, query, _ := strings.Cut(target, "?")
	req := &http.Request{Method: method, URL: &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: path, RawQuery: query}, Header: http.Header{}, Host: u.Host}
	for k, vs := range h {
		req.Header[http.CanonicalHeaderKey(k)] = append(req.Header[http.CanonicalHeaderKey(k)], vs...)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// headers builds a header map from name/value pairs.
func headers(kv ...string) map[string][]string {
	h := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

// TestForwardAuthFamilies: every integration endpoint reads its own header
// family only; headers of every other family, which a client can send
// through the proxy, change nothing (issue 10, H1). The generic /v1/auth
// refuses more than one family, and the Envoy forms refuse (legacy) or
// ignore (/v1/auth/envoy) context headers. Never 400.
func TestForwardAuthFamilies(t *testing.T) {
	f := newFixture(t)
	scoped := f.mint(t, f.alice.ID, caveat.Methods{"GET"}, caveat.PathPrefix("/api/public"))
	const allowedURI, forbiddenURI = "/api/public/x", "/api/admin/users/1"
	original := func(method, uri string) []string { return []string{"X-Original-Method", method, "X-Original-URI", uri} }
	forwarded := func(method, uri string) []string {
		return []string{"X-Forwarded-Method", method, "X-Forwarded-Uri", uri}
	}
	type endpoint struct {
		name string
		// real returns the target and headers by which the proxy describes
		// the original request.
		real    func(method, uri string) (string, string, []string)
		spoofed map[string]func(method, uri string) []string
	}
	headerEndpoint := func(path string, fam func(string, string) []string) func(string, string) (string, string, []string) {
		return func(method, uri string) (string, string, []string) { return "GET", path, fam(method, uri) }
	}
	endpoints := []endpoint{
		{"nginx", headerEndpoint("/v1/auth/nginx", original), map[string]func(string, string) []string{"X-Forwarded-*": forwarded}},
		{"traefik", headerEndpoint("/v1/auth/traefik", forwarded), map[string]func(string, string) []string{"X-Original-*": original}},
		{"caddy", headerEndpoint("/v1/auth/caddy", forwarded), map[string]func(string, string) []string{"X-Original-*": original}},
		{"envoy", func(method, uri string) (string, string, []string) { return method, "/v1/auth/envoy" + uri, nil },
			map[string]func(string, string) []string{"X-Original-*": original, "X-Forwarded-*": forwarded}},
	}
	for _, ep := range endpoints {
		for spoofName, spoof := range ep.spoofed {
			for _, tc := range []struct {
				name                 string
				realMethod, realURI  string
				spoofMethod, spoofed string
				want                 int
			}{
				{"forbidden request, allowed spoof", "DELETE", forbiddenURI, "GET", allowedURI, 403},
				{"forbidden path, allowed spoof", "GET", forbiddenURI, "GET", allowedURI, 403},
				{"allowed request, forbidden spoof", "GET", allowedURI, "DELETE", forbiddenURI, 200},
			} {
				t.Run(ep.name+"/"+spoofName+"/"+tc.name, func(t *testing.T) {
					method, target, h := ep.real(tc.realMethod, tc.realURI)
					all := append(append([]string{"Authorization", "Bearer " + scoped}, h...), spoof(tc.spoofMethod, tc.spoofed)...)
					resp, body := f.rawCall(t, method, target, headers(all...))
					if resp.StatusCode != tc.want {
						t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
					}
				})
			}
		}
	}

	for _, tc := range []struct {
		name, method, target string
		h                    []string
		want                 int
	}{
		{"generic: nginx family", "GET", "/v1/auth", original("GET", allowedURI), 200},
		{"generic: traefik family", "GET", "/v1/auth", forwarded("GET", allowedURI), 200},
		{"generic: two families that agree", "GET", "/v1/auth", append(original("GET", allowedURI), forwarded("GET", allowedURI)...), 403},
		{"generic: two families, the spoof allowed", "GET", "/v1/auth", append(original("GET", allowedURI), forwarded("DELETE", forbiddenURI)...), 403},
		{"generic: one header of each family", "GET", "/v1/auth", []string{"X-Original-Method", "GET", "X-Forwarded-Uri", allowedURI}, 403},
		{"generic: URI sent twice", "GET", "/v1/auth", append(original("GET", allowedURI), "X-Original-URI", forbiddenURI), 403},
		{"generic: method sent twice", "GET", "/v1/auth", append(forwarded("GET", allowedURI), "X-Forwarded-Method", "DELETE"), 403},
		{"nginx: URI sent twice", "GET", "/v1/auth/nginx", append(original("GET", allowedURI), "X-Original-URI", allowedURI), 403},
		{"traefik: method sent twice", "GET", "/v1/auth/traefik", append(forwarded("GET", allowedURI), "X-Forwarded-Method", "GET"), 403},
		{"nginx: no context", "GET", "/v1/auth/nginx", nil, 403},
		{"nginx: method only", "GET", "/v1/auth/nginx", []string{"X-Original-Method", "GET"}, 403},
		{"nginx: absolute-form URI", "GET", "/v1/auth/nginx", original("GET", "http://evil.example/api/public/x"), 403},
		{"nginx: invalid escape", "GET", "/v1/auth/nginx", original("GET", "/api/public/%zz"), 403},
		{"nginx: fragment", "GET", "/v1/auth/nginx", original("GET", "/api/public/x#y"), 403},
		{"nginx: lower-case method is not GET", "GET", "/v1/auth/nginx", original("get", allowedURI), 403},
		{"legacy envoy form", "GET", "/v1/auth/api/public/x", nil, 200},
		{"legacy envoy form with nginx headers", "GET", "/v1/auth/api/public/x", original("GET", allowedURI), 403},
		{"legacy envoy form with traefik headers", "GET", "/v1/auth/api/public/x", forwarded("GET", allowedURI), 403},
		{"legacy envoy form, forbidden method", "POST", "/v1/auth/api/public/x", nil, 403},
		{"envoy with no path", "GET", "/v1/auth/envoy", nil, 403},
		{"envoy prefix is a whole segment", "GET", "/v1/auth/envoyx/api/public/x", nil, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.rawCall(t, tc.method, tc.target, headers(append([]string{"Authorization", "Bearer " + scoped}, tc.h...)...))
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
}

// TestForwardAuthPathDecoding: the original path is decoded exactly once;
// %3F, %23 and %2F are path bytes, never separators; dot segments in any
// encoding, and bytes back ends resolve their own way, are refused for a
// path-restricted token (issue 10, M3 and L1) — in the Envoy path forms
// and in X-Original-URI / X-Forwarded-Uri alike.
func TestForwardAuthPathDecoding(t *testing.T) {
	f := newFixture(t)
	scoped := f.mint(t, f.alice.ID, caveat.PathPrefix("/api/public"))
	open := f.mint(t, f.alice.ID)
	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"plain", "/api/public/x", 200},
		{"query is not the path", "/api/public/x?next=/../../admin", 200},
		{"encoded ? cuts nothing", "/api/public%3F/%2e%2e/%2e%2e/admin", 403},
		{"encoded ? in the last segment", "/api/public%3Fx", 403},
		{"encoded # in the last segment", "/api/public%23x", 403},
		{"encoded # inside the prefix", "/api/public/x%23y", 200},
		{"encoded dot dot", "/api/public/%2e%2e/admin", 403},
		{"mixed-case encoded dot dot", "/api/public/.%2E/admin", 403},
		{"half-encoded dot dot", "/api/public/%2E./admin", 403},
		{"encoded single dot", "/api/public/%2e/x", 403},
		{"encoded slash", "/api/public%2F..%2Fadmin", 403},
		{"encoded slash inside the prefix", "/api%2Fpublic/x", 403},
		{"double-encoded dot dot", "/api/public/%252e%252e/admin", 403},
		{"tomcat path parameter", "/api/public/..;/admin", 403},
		{"encoded backslash", "/api/public/..%5Cadmin", 403},
		{"encoded NUL", "/api/public/x%00", 403},
		{"raw dot dot", "/api/public/../admin", 403},
		{"encoded letters decode once", "/api/%70ublic/x", 200},
	} {
		for _, form := range []struct {
			name string
			call func(tok string) (string, string, []string)
		}{
			{"envoy", func(tok string) (string, string, []string) {
				return "GET", "/v1/auth/envoy" + tc.path, []string{"Authorization", "Bearer " + tok}
			}},
			{"legacy envoy", func(tok string) (string, string, []string) {
				return "GET", "/v1/auth" + tc.path, []string{"Authorization", "Bearer " + tok}
			}},
			{"nginx", func(tok string) (string, string, []string) {
				return "GET", "/v1/auth/nginx", []string{"Authorization", "Bearer " + tok, "X-Original-Method", "GET", "X-Original-URI", tc.path}
			}},
			{"traefik", func(tok string) (string, string, []string) {
				return "GET", "/v1/auth/traefik", []string{"Authorization", "Bearer " + tok, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", tc.path}
			}},
		} {
			t.Run(form.name+"/"+tc.name, func(t *testing.T) {
				method, target, h := form.call(scoped)
				if form.name == "legacy envoy" && strings.HasPrefix(tc.path, "/api/public/../") {
					target = "/v1/auth" + tc.path // sent raw: the server does not clean it
				}
				resp, body := f.rawCall(t, method, target, headers(h...))
				if resp.StatusCode != tc.want {
					t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
				}
				// A token without a path caveat is allowed whatever the path,
				// if the path can be read at all.
				method, target, h = form.call(open)
				if resp, body := f.rawCall(t, method, target, headers(h...)); resp.StatusCode != 200 {
					t.Fatalf("unrestricted token: %d %s", resp.StatusCode, body)
				}
			})
		}
	}
}

// TestForwardAuthMethodOverride: a method-restricted token refuses an
// original request carrying a method override, in the headers the proxy
// passes on or the original query (issue 10, L1).
func TestForwardAuthMethodOverride(t *testing.T) {
	f := newFixture(t)
	getOnly := f.mint(t, f.alice.ID, caveat.Methods{"GET"})
	open := f.mint(t, f.alice.ID)
	for _, tc := range []struct {
		name, target string
		h            []string
		want         int
	}{
		{"nginx, no override", "/v1/auth/nginx", []string{"X-Original-Method", "GET", "X-Original-URI", "/x"}, 200},
		{"nginx, _method in the original query", "/v1/auth/nginx", []string{"X-Original-Method", "GET", "X-Original-URI", "/x?_method=DELETE"}, 403},
		{"nginx, override header", "/v1/auth/nginx", []string{"X-Original-Method", "GET", "X-Original-URI", "/x", "X-HTTP-Method-Override", "DELETE"}, 403},
		{"traefik, X-HTTP-Method", "/v1/auth/traefik", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/x", "X-HTTP-Method", "DELETE"}, 403},
		{"generic, X-Method-Override", "/v1/auth", []string{"X-Original-Method", "GET", "X-Original-URI", "/x", "X-Method-Override", "DELETE"}, 403},
		{"generic, override without context", "/v1/auth", []string{"X-HTTP-Method-Override", "DELETE"}, 403},
		{"envoy, _method in the query", "/v1/auth/envoy/x?_method=DELETE", nil, 403},
		{"envoy, override header", "/v1/auth/envoy/x", []string{"X-HTTP-Method-Override", "DELETE"}, 403},
		{"envoy, override header with underscores", "/v1/auth/envoy/x", []string{"X_HTTP_Method_Override", "DELETE"}, 403},
		{"traefik, X_HTTP_METHOD", "/v1/auth/traefik", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/x", "X_HTTP_METHOD", "DELETE"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.rawCall(t, "GET", tc.target, headers(append([]string{"Authorization", "Bearer " + getOnly}, tc.h...)...))
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
			if resp, body := f.rawCall(t, "GET", tc.target, headers(append([]string{"Authorization", "Bearer " + open}, tc.h...)...)); resp.StatusCode != 200 {
				t.Fatalf("unrestricted token: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestIdentityHeaders: every identity header on allow, X-Amaretti-Rights
// always — "*" for a token that does not restrict rights (issue 10, M4).
func TestIdentityHeaders(t *testing.T) {
	f := newFixture(t)
	named, err := f.minter.Mint(context.Background(), f.alice.ID, macaroon.WithUsername("alice"), macaroon.WithKind(caveat.KindSession))
	if err != nil {
		t.Fatal(err)
	}
	readOnly := f.mint(t, f.alice.ID, caveat.Rights{"read", "edit"})
	for _, tc := range []struct {
		name, tok, rights, username, kind string
	}{
		{"unrestricted", named.Token, "*", "alice", "session"},
		{"restricted", readOnly, "read,edit", "", ""},
	} {
		for _, path := range []string{"/v1/auth", "/v1/verify"} {
			t.Run(tc.name+path, func(t *testing.T) {
				resp, body := f.do(t, call{"GET", path, bearer(tc.tok), ""})
				h := resp.Header
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				for k, want := range map[string]string{
					"X-Amaretti-Editor-Id": f.alice.ID, "X-Amaretti-Role": "editor", "X-Amaretti-Rights": tc.rights, "X-Amaretti-Username": tc.username,
					"X-Amaretti-Kind": tc.kind,
				} {
					if vs, ok := h[k]; !ok || len(vs) != 1 || vs[0] != want {
						t.Errorf("%s = %q (present %v), want %q", k, vs, ok, want)
					}
				}
				if h.Get("X-Amaretti-Token-Id") == "" {
					t.Error("no X-Amaretti-Token-Id")
				}
			})
		}
	}
}
