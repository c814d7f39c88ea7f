package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// grpcConn is a gRPC client of a grpcServer serving on a loopback socket.
type grpcConn struct {
	g      *grpcServer
	authz  authv3.AuthorizationClient
	health healthpb.HealthClient
	addr   string
}

// startGRPC serves s's gRPC listener on a free loopback port and connects
// a real gRPC client to it, built from the same protos Envoy uses.
func startGRPC(t testing.TB, s *server) *grpcConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := s.newGRPCServer(nil)
	served := make(chan error, 1)
	go func() { served <- g.serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.stop(ctx); err != nil {
			t.Errorf("gRPC stop: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("gRPC serve: %v", err)
		}
	})
	return &grpcConn{g: g, authz: authv3.NewAuthorizationClient(conn), health: healthpb.NewHealthClient(conn), addr: ln.Addr().String()}
}

// checkRequest is the CheckRequest Envoy sends for method and path with
// the header pairs kv: in header_map (encode_raw_headers: every header as
// sent) when raw, otherwise in headers, where Envoy merges a repeated
// header into one value (joined by ",", or "; " for Cookie).
func checkRequest(method, path string, raw bool, kv ...string) *authv3.CheckRequest {
	hr := &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Host: "api.example.org", Scheme: "http", Protocol: "HTTP/1.1",
		Headers: map[string]string{":method": method, ":path": path, ":authority": "api.example.org"}}
	if raw {
		hr.Headers = nil
		hr.HeaderMap = &corev3.HeaderMap{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := strings.ToLower(kv[i]), kv[i+1]
		switch {
		case raw:
			hr.HeaderMap.Headers = append(hr.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		case hr.Headers[k] == "":
			hr.Headers[k] = v
		case k == "cookie":
			hr.Headers[k] += "; " + v
		default:
			hr.Headers[k] += "," + v
		}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: hr}}}
}

// repeats says whether a header name occurs twice in kv.
func repeats(kv []string) bool {
	seen := map[string]bool{}
	for i := 0; i+1 < len(kv); i += 2 {
		k := strings.ToLower(kv[i])
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

// TestExtAuthzMatchesHTTP: every case goes through the HTTP Envoy form
// (/v1/auth/envoy<path>) and the gRPC Check over a real socket, with the
// headers as Envoy sends them raw (header_map) and merged (headers); the
// answers must agree: status, the gRPC status code, WWW-Authenticate,
// Retry-After, Cache-Control, Content-Type and body on a denial, the
// identity headers on allow — and the gRPC OK removes every other
// client-sent x-amaretti-* header. (Merged headers lose the repetition of a
// repeated header: there only the status must agree.)
func TestExtAuthzMatchesHTTP(t *testing.T) {
	f := newFixture(t)
	c := startGRPC(t, f.s)
	ctx := context.Background()
	bob, _ := f.store.Create(ctx, epoch.NewEditor{Username: "bob"})
	carol, _ := f.store.Create(ctx, epoch.NewEditor{Username: "carol"})
	time.Sleep(time.Millisecond) // tokens are created after the editors' epochs
	open := f.mint(t, f.alice.ID)
	scoped := f.mint(t, f.alice.ID, caveat.Methods{"GET"}, caveat.PathPrefix("/api/public"))
	rights := f.mint(t, f.alice.ID, caveat.Rights{"read", "edit"})
	namedTok, err := f.minter.Mint(ctx, f.alice.ID, macaroon.WithUsername("alice"), macaroon.WithKind(caveat.KindSession))
	if err != nil {
		t.Fatal(err)
	}
	named := namedTok.Token
	revoked := f.mint(t, bob.ID)
	if _, err := f.store.Touch(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	f.s.cache.Invalidate(bob.ID)
	storeDown := f.mint(t, carol.ID) // never verified before the store closes
	mid := len(open) / 2
	tampered := open[:mid] + map[bool]string{true: "B", false: "A"}[open[mid] == 'A'] + open[mid+1:]
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	with := func(a []string, b ...string) []string { return append(append([]string(nil), a...), b...) }

	tests := []struct {
		name, method, path string
		h                  []string
		want               int
		closeStore         bool
	}{
		{"no token", "GET", "/api/public/x", nil, 401, false},
		{"bearer", "GET", "/x", auth(open), 200, false},
		{"lower-case scheme", "GET", "/x", []string{"Authorization", "bearer " + open}, 200, false},
		{"cookie", "GET", "/x", []string{"Cookie", "session=" + open}, 200, false},
		{"cookie among others", "GET", "/x", []string{"Cookie", "a=1; session=" + open + "; b=2"}, 200, false},
		{"header and cookie", "GET", "/x", with(auth(open), "Cookie", "session="+open), 401, false},
		{"two Authorization headers", "GET", "/x", with(auth(open), auth(open)...), 401, false},
		{"two cookie headers", "GET", "/x", []string{"Cookie", "session=" + open, "Cookie", "session=" + open}, 401, false},
		{"Basic credentials", "GET", "/x", []string{"Authorization", "Basic YWxpY2U6cHc="}, 401, false},
		{"empty bearer", "GET", "/x", []string{"Authorization", "Bearer "}, 401, false},
		{"garbage token", "GET", "/x", auth("nope"), 401, false},
		{"tampered token", "GET", "/x", auth(tampered), 401, false},
		{"revoked token", "GET", "/x", auth(revoked), 401, false},
		{"scoped: allowed", "GET", "/api/public/x", auth(scoped), 200, false},
		{"scoped: method refused", "POST", "/api/public/x", auth(scoped), 403, false},
		{"scoped: path refused", "GET", "/api/admin/users/1", auth(scoped), 403, false},
		{"scoped: encoded dot dot", "GET", "/api/public/%2e%2e/admin", auth(scoped), 403, false},
		{"scoped: encoded slash", "GET", "/api/public%2F..%2Fadmin", auth(scoped), 403, false},
		{"scoped: encoded ?", "GET", "/api/public%3Fx", auth(scoped), 403, false},
		{"scoped: double-encoded dot dot", "GET", "/api/public/%252e%252e/admin", auth(scoped), 403, false},
		{"scoped: letters decode once", "GET", "/api/%70ublic/x", auth(scoped), 200, false},
		{"scoped: the query is not the path", "GET", "/api/public/x?next=/../../admin", auth(scoped), 200, false},
		{"scoped: empty query", "GET", "/api/public/x?", auth(scoped), 200, false},
		{"scoped: _method in the query", "GET", "/api/public/x?_method=DELETE", auth(scoped), 403, false},
		{"scoped: override header", "GET", "/api/public/x", with(auth(scoped), "X-HTTP-Method-Override", "DELETE"), 403, false},
		{"scoped: override header with underscores", "GET", "/api/public/x", with(auth(scoped), "x_http_method_override", "DELETE"), 403, false},
		{"scoped: context headers are ignored", "POST", "/api/admin/x", with(auth(scoped), "X-Original-Method", "GET", "X-Original-URI", "/api/public/x", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/public/x"), 403, false},
		{"open: context headers are ignored", "GET", "/x", with(auth(open), "X-Original-Method", "GET", "X-Original-URI", "/y"), 200, false},
		{"spoofed identity headers", "GET", "/x", with(auth(open), "X-Amaretti-Editor-Id", "someone", "X-Amaretti-Role", "superuser", "X-Amaretti-Extra", "x", "x-amaretti-rights", "*"), 200, false},
		{"named session token", "GET", "/x", auth(named), 200, false},
		{"rights-restricted token", "GET", "/x", auth(rights), 200, false},
		{"no path", "GET", "", auth(open), 403, false},
		{"store down", "GET", "/x", auth(storeDown), 503, true},
	}
	for _, tc := range tests {
		if tc.closeStore {
			f.store.Close()
		}
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.rawCall(t, tc.method, "/v1/auth/envoy"+tc.path, headers(tc.h...))
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP: %d %s, want %d", resp.StatusCode, body, tc.want)
			}
			for _, raw := range []bool{true, false} {
				form := map[bool]string{true: "header_map", false: "headers"}[raw]
				got, err := c.authz.Check(ctx, checkRequest(tc.method, tc.path, raw, tc.h...))
				if err != nil {
					t.Fatalf("%s: %v", form, err)
				}
				if !raw && repeats(tc.h) {
					if st := httpStatusOf(got); st != tc.want {
						t.Errorf("%s: status %d, want %d", form, st, tc.want)
					}
					continue
				}
				compareAnswers(t, form, resp, body, got, tc.h)
			}
		})
	}
	for _, tok := range []string{open, scoped, rights, named, revoked, storeDown, tampered} {
		if leaks(f.logs.String(), tok) {
			t.Fatal("a token reached the log")
		}
	}
	if !strings.Contains(f.logs.String(), `"handler":"grpc_ext_authz"`) {
		t.Fatal("no denial logged under grpc_ext_authz")
	}
}

// httpStatusOf is the HTTP status a CheckResponse makes Envoy answer (200:
// forwarded upstream).
func httpStatusOf(r *authv3.CheckResponse) int {
	if d := r.GetDeniedResponse(); d != nil {
		return int(d.GetStatus().GetCode())
	}
	if r.GetOkResponse() != nil && r.GetStatus().GetCode() == int32(codes.OK) {
		return 200
	}
	return -1
}

// compareAnswers fails t unless the gRPC answer got says what the HTTP one
// (resp, body) does. sent are the client's header pairs.
func compareAnswers(t *testing.T, form string, resp *http.Response, body string, got *authv3.CheckResponse, sent []string) {
	t.Helper()
	if st := httpStatusOf(got); st != resp.StatusCode {
		t.Fatalf("%s: status %d, HTTP %d", form, st, resp.StatusCode)
	}
	if resp.StatusCode != 200 {
		if code := codes.Code(got.GetStatus().GetCode()); code != deniedCode(resp.StatusCode) || code == codes.OK {
			t.Errorf("%s: gRPC status %v for %d", form, code, resp.StatusCode)
		}
		d := got.GetDeniedResponse()
		if d.GetBody() != body {
			t.Errorf("%s: body %q, HTTP %q", form, d.GetBody(), body)
		}
		values := map[string][]string{}
		for _, o := range d.GetHeaders() {
			values[o.GetHeader().GetKey()] = append(values[o.GetHeader().GetKey()], o.GetHeader().GetValue())
		}
		for _, k := range []string{"Www-Authenticate", "Retry-After", "Cache-Control", "Content-Type"} {
			if want, have := resp.Header.Values(k), values[strings.ToLower(k)]; !slices.Equal(want, have) {
				t.Errorf("%s: %s = %q, HTTP %q", form, k, have, want)
			}
		}
		if resp.StatusCode != 503 && len(values["www-authenticate"]) != 1 {
			t.Errorf("%s: no WWW-Authenticate", form)
		}
		for k := range values {
			if resp.Header.Values(k) == nil {
				t.Errorf("%s: header %s, not in the HTTP answer", form, k)
			}
		}
		return
	}
	ok := got.GetOkResponse()
	set := map[string]string{}
	for _, o := range ok.GetHeaders() {
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("%s: %s appended, not overwritten", form, o.GetHeader().GetKey())
		}
		set[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	identity := 0
	for k, vs := range resp.Header {
		if !strings.HasPrefix(strings.ToLower(k), identityPrefix) {
			continue
		}
		identity++
		if v, present := set[strings.ToLower(k)]; !present || v != vs[0] {
			t.Errorf("%s: %s = %q (present %v), HTTP %q", form, k, v, present, vs[0])
		}
	}
	if identity != 6 || len(set) != identity {
		t.Errorf("%s: %d identity headers set, HTTP %d", form, len(set), identity)
	}
	var remove []string
	for i := 0; i+1 < len(sent); i += 2 {
		if k := strings.ToLower(sent[i]); strings.HasPrefix(k, identityPrefix) && set[k] == "" && !slices.Contains(remove, k) {
			if _, isSet := set[k]; !isSet {
				remove = append(remove, k)
			}
		}
	}
	slices.Sort(remove)
	if !slices.Equal(remove, ok.GetHeadersToRemove()) {
		t.Errorf("%s: headers_to_remove %q, want %q", form, ok.GetHeadersToRemove(), remove)
	}
}

// TestExtAuthzOddRequests: a CheckRequest without the HTTP attributes, or
// without a path, is denied, never an error or a panic.
func TestExtAuthzOddRequests(t *testing.T) {
	f := newFixture(t)
	c := startGRPC(t, f.s)
	open := f.mint(t, f.alice.ID)
	for _, tc := range []struct {
		name string
		req  *authv3.CheckRequest
		want int
	}{
		{"empty request", &authv3.CheckRequest{}, 401},
		{"no http attributes", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}}, 401},
		{"token, no path", checkRequest("GET", "", true, "authorization", "Bearer "+open), 403},
		{"token, relative path", checkRequest("GET", "x/y", true, "authorization", "Bearer "+open), 403},
		{"token, absolute-form path", checkRequest("GET", "http://evil.example/x", true, "authorization", "Bearer "+open), 403},
		{"token, raw fragment", checkRequest("GET", "/x#y", true, "authorization", "Bearer "+open), 403},
		{"token, invalid escape", checkRequest("GET", "/x/%zz", true, "authorization", "Bearer "+open), 403},
		{"token, path", checkRequest("GET", "/x", true, "authorization", "Bearer "+open), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.authz.Check(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if st := httpStatusOf(got); st != tc.want {
				t.Fatalf("status %d, want %d", st, tc.want)
			}
		})
	}
}

// TestExtAuthzDeadline: a Check whose deadline has passed, or which Envoy
// cancelled, is never allowed: DEADLINE_EXCEEDED (CANCELLED), counted.
func TestExtAuthzDeadline(t *testing.T) {
	f := newFixture(t)
	e := &extAuthz{s: f.s, allowed: f.s.m.grpcAllowed,
		expired: f.s.m.verifications.WithLabelValues(grpcHandler, "deadline_exceeded"), latency: f.s.m.grpcLatency}
	open := f.mint(t, f.alice.ID)
	req := checkRequest("GET", "/x", true, "authorization", "Bearer "+open)
	if got, err := e.Check(context.Background(), req); err != nil || httpStatusOf(got) != 200 {
		t.Fatalf("live call: %v %v", got, err)
	}
	past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"deadline passed", past, codes.DeadlineExceeded},
		{"cancelled", cancelled, codes.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Check(tc.ctx, req)
			if got != nil || status.Code(err) != tc.want {
				t.Fatalf("%v %v, want %v", got, err, tc.want)
			}
		})
	}
	_, body := f.do(t, call{"GET", "/metrics", nil, ""})
	for _, want := range []string{
		`amaretti_verifications_total{handler="grpc_ext_authz",outcome="deadline_exceeded"} 2`,
		`amaretti_verifications_total{handler="grpc_ext_authz",outcome="allowed"} 1`,
		`amaretti_verification_duration_seconds_count{handler="grpc_ext_authz"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestExtAuthzMetrics: Checks over the socket are counted by handler
// grpc_ext_authz and outcome, apart from the HTTP forms' "auth".
func TestExtAuthzMetrics(t *testing.T) {
	f := newFixture(t)
	c := startGRPC(t, f.s)
	open := f.mint(t, f.alice.ID)
	for _, h := range [][]string{{"authorization", "Bearer " + open}, {"authorization", "Bearer " + open}, {"authorization", "Bearer nope"}, nil} {
		if _, err := c.authz.Check(context.Background(), checkRequest("GET", "/x", true, h...)); err != nil {
			t.Fatal(err)
		}
	}
	_, body := f.do(t, call{"GET", "/metrics", nil, ""})
	for _, want := range []string{
		`amaretti_verifications_total{handler="grpc_ext_authz",outcome="allowed"} 2`,
		`amaretti_verifications_total{handler="grpc_ext_authz",outcome="invalid_token"} 1`,
		`amaretti_verifications_total{handler="grpc_ext_authz",outcome="no_token"} 1`,
		`amaretti_verification_duration_seconds_count{handler="grpc_ext_authz"} 4`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.Contains(line, `handler="auth"`) && !strings.HasSuffix(line, " 0") {
			t.Errorf("gRPC checks counted as the HTTP auth handler: %s", line)
		}
	}
}

// TestExtAuthzSizeLimit: a CheckRequest over grpcMaxRecv is refused before
// it is decoded (RESOURCE_EXHAUSTED, which Envoy denies); one under it is
// answered.
func TestExtAuthzSizeLimit(t *testing.T) {
	f := newFixture(t)
	c := startGRPC(t, f.s)
	open := f.mint(t, f.alice.ID)
	for _, tc := range []struct {
		name string
		pad  int
		want codes.Code
	}{
		{"under the limit", grpcMaxRecv / 2, codes.OK},
		{"over the limit", grpcMaxRecv + 1, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := checkRequest("GET", "/x", true, "authorization", "Bearer "+open, "x-pad", strings.Repeat("a", tc.pad))
			got, err := c.authz.Check(context.Background(), req)
			if status.Code(err) != tc.want {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if tc.want == codes.OK && httpStatusOf(got) != 200 {
				t.Fatalf("status %d", httpStatusOf(got))
			}
		})
	}
}

// TestGRPCHealth: grpc.health.v1 reports readiness as /readyz does, for
// the server and the ext_authz service (an unknown service is NOT_FOUND);
// stop reports NOT_SERVING and ends Watch streams, so that a graceful stop
// does not wait for them.
func TestGRPCHealth(t *testing.T) {
	f := newFixture(t)
	c := startGRPC(t, f.s)
	ctx := context.Background()
	check := func(service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
		r, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return r.GetStatus(), err
	}
	for _, svc := range []string{"", authzService} {
		if st, err := check(svc); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%q: %v %v, want SERVING", svc, st, err)
		}
	}
	if _, err := check("no.such.Service"); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown service: %v", err)
	}
	watch, err := c.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: authzService})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}
	f.store.Close() // /readyz: 503
	if resp, _ := f.do(t, call{"GET", "/readyz", nil, ""}); resp.StatusCode != 503 {
		t.Fatalf("/readyz %d with the store closed", resp.StatusCode)
	}
	for _, svc := range []string{"", authzService} {
		if st, err := check(svc); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("%q with the store closed: %v %v, want NOT_SERVING", svc, st, err)
		}
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch after the store closed: %v %v", r, err)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := c.g.stop(stopCtx); err != nil {
		t.Fatalf("stop: %v (a Watch stream held the graceful stop)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v", d)
	}
	for {
		if _, err := watch.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				t.Fatal("watch ended without a status")
			}
			break
		}
	}
}

// TestGRPCDaemon: the real amarettid with --grpc-listen answers Check and
// health on that port, logs the address, and exits 0 on SIGTERM while a
// health Watch stream is open.
func TestGRPCDaemon(t *testing.T) {
	d := newDeployment(t, "")
	alice := d.cli("editor", "create", "alice")
	grpcAddr := freePort(t)
	dm := d.start("--grpc-listen", grpcAddr)
	tok := d.mint(d.minter(), alice)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(conn)
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: authzService}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", r, err)
	}
	ac := authv3.NewAuthorizationClient(conn)
	for _, tc := range []struct {
		tok  string
		want int
	}{{tok, 200}, {tok + "x", 401}} {
		r, err := ac.Check(ctx, checkRequest("GET", "/x", false, "authorization", "Bearer "+tc.tok))
		if err != nil || httpStatusOf(r) != tc.want {
			t.Fatalf("check: %v %v, want %d", r, err, tc.want)
		}
	}
	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dm.Log(), `"grpc_addr":"`+grpcAddr+`"`) {
		t.Fatalf("the listening line lacks grpc_addr:\n%s", dm.Log())
	}
	dm.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- dm.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, dm.Log())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10 s of SIGTERM")
	}
	if leaks(dm.Log(), tok) {
		t.Fatal("a token reached the log")
	}
}

// TestExtAuthzRemovesClientIdentityHeaders: every identity header a client
// sent, in any spelling a back end may read as X-Amaretti-* (hyphens or
// underscores, any case), is set by amarettid or removed upstream.
func TestExtAuthzRemovesClientIdentityHeaders(t *testing.T) {
	for _, tc := range []struct {
		sent   string
		remove bool
	}{
		{"X-Amaretti-Role", false}, // set by amarettid, replacing the client's
		{"X-Amaretti-Other", true},
		{"X_amaretti_role", true},
		{"X_Amaretti_Editor_Id", true},
		{"x-amaretti_rights", true},
		{"X-Amaretti", false}, // not of the family
		{"X-Other", false},
	} {
		t.Run(tc.sent, func(t *testing.T) {
			sent := http.Header{tc.sent: {"superuser"}}
			ok := checkResponse(authAnswer{status: http.StatusOK, id: verifier.Identity{EditorID: "e", Role: "editor"}}, sent).GetOkResponse()
			removed := slices.Contains(ok.GetHeadersToRemove(), strings.ToLower(tc.sent))
			if removed != tc.remove {
				t.Fatalf("%s removed = %v (remove %q), want %v", tc.sent, removed, ok.GetHeadersToRemove(), tc.remove)
			}
		})
	}
}
