package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/prometheus/client_golang/prometheus"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Envoy's external authorization over gRPC (--grpc-listen): the service
// envoy.service.auth.v3.Authorization, whose Check decides exactly as
// /v1/auth/envoy does (decideAuth), and grpc.health.v1 reporting /readyz.

// grpcHandler labels the gRPC Check in metrics and logs.
const grpcHandler = "grpc_ext_authz"

// authzService is the ext_authz service's name, as health checks name it.
const authzService = "envoy.service.auth.v3.Authorization"

// Limits of the gRPC listener. A CheckRequest carries the original
// request's headers (Envoy's own limit is 60 KiB by default) and no body
// (with_request_body off): 128 KiB leaves room and refuses anything larger
// before it is decoded (RESOURCE_EXHAUSTED, which Envoy with
// failure_mode_allow: false denies).
const (
	grpcMaxRecv        = 128 << 10
	grpcMaxHeaderList  = 32 << 10 // gRPC metadata: Envoy sends a few short headers
	grpcConnTimeout    = 5 * time.Second
	grpcHealthInterval = 5 * time.Second // how often Watch streams see readiness change
)

// identityPrefix starts every identity header, lower-cased as Envoy keys
// them.
const identityPrefix = "x-amaretti-"

// extAuthz serves Check for one server.
type extAuthz struct {
	authv3.UnimplementedAuthorizationServer
	s       *server
	allowed interface{ Inc() }
	expired prometheus.Counter
	latency prometheus.Observer
}

// grpcServer is the daemon's gRPC listener: ext_authz and health.
type grpcServer struct {
	gs     *grpc.Server
	health *readyHealth
	once   sync.Once
}

// newGRPCServer builds the gRPC server of s, with TLS when tlsConf is not
// nil (the public listener's certificate).
func (s *server) newGRPCServer(tlsConf *tls.Config) *grpcServer {
	e := &extAuthz{s: s,
		allowed: s.m.grpcAllowed,
		expired: s.m.verifications.WithLabelValues(grpcHandler, "deadline_exceeded"),
		latency: s.m.grpcLatency,
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(grpcMaxRecv),
		grpc.MaxHeaderListSize(grpcMaxHeaderList),
		grpc.ConnectionTimeout(grpcConnTimeout),
		grpc.ChainUnaryInterceptor(s.recoverGRPC),
	}
	if tlsConf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	g := &grpcServer{gs: grpc.NewServer(opts...), health: &readyHealth{Server: health.NewServer(), s: s, done: make(chan struct{})}}
	authv3.RegisterAuthorizationServer(g.gs, e)
	healthpb.RegisterHealthServer(g.gs, g.health)
	return g
}

// serve serves ln until stop; it returns nil once stopped.
func (g *grpcServer) serve(ln net.Listener) error {
	go g.health.follow()
	err := g.gs.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// stop reports NOT_SERVING and ends health Watch streams, then lets
// in-flight calls finish until ctx ends, when the remaining connections are
// closed.
func (g *grpcServer) stop(ctx context.Context) error {
	g.health.Shutdown()
	g.once.Do(func() { close(g.health.done) })
	stopped := make(chan struct{})
	go func() { g.gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		g.gs.Stop()
		<-stopped
		return ctx.Err()
	}
}

// recoverGRPC turns a panic in a handler into INTERNAL (which Envoy with
// failure_mode_allow: false denies) rather than a crashed daemon. Nothing
// of the request reaches the log.
func (s *server) recoverGRPC(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("gRPC handler panicked")
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	return h(ctx, req)
}

// Check answers Envoy's ext_authz: OK with the identity headers to set
// upstream, and every other client-sent x-amaretti-* header to remove; or
// a denied response (401, 403, 503) with the very headers and body
// /v1/auth/envoy answers. A call whose deadline has passed, or passes
// while it is decided, is never allowed: it fails with DEADLINE_EXCEEDED
// (CANCELLED when Envoy gave up).
func (e *extAuthz) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	defer func() { e.latency.Observe(time.Since(start).Seconds()) }()
	if err := ctx.Err(); err != nil {
		e.expired.Inc()
		return nil, status.FromContextError(err).Err()
	}
	r, envoyPath := checkHTTPRequest(ctx, req)
	a := e.s.decideAuth(r, grpcHandler, familyEnvoy, envoyPath)
	if err := ctx.Err(); err != nil {
		if a.status == http.StatusOK {
			e.expired.Inc()
		}
		return nil, status.FromContextError(err).Err()
	}
	if a.status == http.StatusOK {
		e.allowed.Inc()
	}
	return checkResponse(a, r.Header), nil
}

// checkHTTPRequest is the original request a CheckRequest describes, as an
// HTTP request to /v1/auth/envoy carries it: Envoy's method, its headers
// (header_map when Envoy sends raw headers, otherwise headers; pseudo
// headers left out), the peer (Envoy) as the remote address; and the
// escaped path, without its query, which goes to URL.RawQuery.
func checkHTTPRequest(ctx context.Context, req *authv3.CheckRequest) (*http.Request, string) {
	hr := req.GetAttributes().GetRequest().GetHttp()
	h := make(http.Header, len(hr.GetHeaders()))
	add := func(k, v string) {
		if k == "" || k[0] == ':' {
			return
		}
		k = textproto.CanonicalMIMEHeaderKey(k)
		h[k] = append(h[k], v)
	}
	if raw := hr.GetHeaderMap().GetHeaders(); len(raw) > 0 {
		for _, hv := range raw {
			v := hv.GetValue()
			if rv := hv.GetRawValue(); len(rv) > 0 {
				v = string(rv)
			}
			add(hv.GetKey(), v)
		}
	} else {
		for k, v := range hr.GetHeaders() {
			add(k, v)
		}
	}
	path, query, hasQuery := strings.Cut(hr.GetPath(), "?")
	r := &http.Request{
		Method: hr.GetMethod(),
		URL:    &url.URL{RawQuery: query, ForceQuery: hasQuery && query == ""},
		Header: h,
		Host:   hr.GetHost(),
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		r.RemoteAddr = p.Addr.String()
	}
	return r.WithContext(ctx), path
}

// checkResponse renders a as Envoy's CheckResponse. The answer is written
// by authAnswer.write, as for HTTP, and read back: the same headers, the
// same challenge, the same body. sent are the client's headers, whose
// x-amaretti-* the OK response removes unless it sets them.
func checkResponse(a authAnswer, sent http.Header) *authv3.CheckResponse {
	var w capture
	a.write(&w)
	if a.status == http.StatusOK {
		ok := &authv3.OkHttpResponse{}
		set := make(map[string]bool, len(w.h))
		for k, vs := range w.h {
			lk := strings.ToLower(k)
			if !strings.HasPrefix(lk, identityPrefix) {
				continue // Cache-Control: an answer header, not the upstream's
			}
			set[lk] = true
			ok.Headers = append(ok.Headers, headerOption(lk, vs[0]))
		}
		for k := range sent {
			// x_amaretti_role too: CGI, PHP and WSGI back ends read an
			// underscore as a hyphen.
			lk := strings.ToLower(k)
			if strings.HasPrefix(strings.ReplaceAll(lk, "_", "-"), identityPrefix) && !set[lk] {
				ok.HeadersToRemove = append(ok.HeadersToRemove, lk)
			}
		}
		slices.SortFunc(ok.Headers, func(x, y *corev3.HeaderValueOption) int { return strings.Compare(x.Header.Key, y.Header.Key) })
		slices.Sort(ok.HeadersToRemove)
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}
	}
	denied := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(a.status)}, Body: w.body.String()}
	for k, vs := range w.h {
		for _, v := range vs {
			denied.Headers = append(denied.Headers, headerOption(strings.ToLower(k), v))
		}
	}
	slices.SortFunc(denied.Headers, func(x, y *corev3.HeaderValueOption) int { return strings.Compare(x.Header.Key, y.Header.Key) })
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(deniedCode(a.status))}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied}}
}

// headerOption sets header k to v, replacing any value the request had.
func headerOption(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
}

// deniedCode is the CheckResponse status of a denial (Envoy denies on any
// code but OK, and answers the denied response).
func deniedCode(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.PermissionDenied
}

// capture is an http.ResponseWriter that keeps what is written.
type capture struct {
	h      http.Header
	status int
	body   strings.Builder
}

func (c *capture) Header() http.Header {
	if c.h == nil {
		c.h = http.Header{}
	}
	return c.h
}

func (c *capture) Write(b []byte) (int, error) { return c.body.Write(b) }

func (c *capture) WriteHeader(status int) { c.status = status }

// readyHealth is grpc.health.v1 reporting the daemon's readiness (/readyz)
// for the whole server ("") and for the ext_authz service: Check reads it
// at once, Watch streams follow it every grpcHealthInterval. After
// Shutdown every service is NOT_SERVING.
type readyHealth struct {
	*health.Server
	s    *server
	done chan struct{} // closed on stop: ends follow and every Watch
}

// Check reads readiness now, then answers as the health server does (an
// unknown service is NOT_FOUND).
func (h *readyHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.update(ctx)
	return h.Server.Check(ctx, req)
}

// update sets every service's status from readiness.
func (h *readyHealth) update(ctx context.Context) {
	_, ready := h.s.readiness(ctx)
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.SetServingStatus("", st)
	h.SetServingStatus(authzService, st)
}

// follow updates readiness until done is closed.
func (h *readyHealth) follow() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-h.done; cancel() }()
	t := time.NewTicker(grpcHealthInterval)
	defer t.Stop()
	for {
		h.update(ctx)
		select {
		case <-h.done:
			return
		case <-t.C:
		}
	}
}

// Watch streams the status as the health server does, until the client
// leaves or the server stops (which GracefulStop would otherwise wait for).
func (h *readyHealth) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return h.Server.Watch(req, watchStream{stream, ctx})
}

// watchStream is a Watch stream whose context also ends on stop.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w watchStream) Context() context.Context { return w.ctx }
