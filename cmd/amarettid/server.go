package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const realm = "amaretti"

// server holds the daemon's HTTP handlers.
type server struct {
	v       *verifier.Verifier
	keys    *macaroon.KeyStore
	store   *sqlite.Store
	cache   *epoch.Cache
	layer   *rediscache.Layer // nil without Redis
	issuer  *apitoken.Issuer
	tracker *apitoken.Tracker
	m       *metrics
	log     *slog.Logger
	cookie  string
	maxBody int64
}

// routes is every endpoint on one handler, as served without --admin-listen
// (see handlers in listen.go for the split).
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	s.publicRoutes(mux)
	s.adminRoutes(mux)
	s.healthRoutes(mux)
	return s.limits(mux)
}

// publicRoutes registers the endpoints for callers: verification, forward
// auth, the caller's own tokens and logout.
func (s *server) publicRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/verify", s.handleVerify)
	mux.HandleFunc("POST /v1/verify", s.handleVerify)
	// Forward auth answers any method: proxies send the original one, or GET.
	mux.HandleFunc("/v1/auth", s.handleAuth)
	mux.HandleFunc("/v1/auth/", s.handleAuth) // Envoy ext_authz appends the original path
	mux.HandleFunc("POST /v1/me/touch", s.handleTouchSelf)
	mux.HandleFunc("POST /v1/tokens", s.handleCreateToken)
	mux.HandleFunc("GET /v1/tokens", s.handleListTokens)
	mux.HandleFunc("GET /v1/tokens/expiring", s.handleExpiring)
	mux.HandleFunc("DELETE /v1/tokens/{id}", s.handleRevokeToken)
	mux.HandleFunc("POST /v1/tokens/exchange", s.handleExchange)
}

// adminRoutes registers the operators' endpoints: /v1/admin/... and
// /metrics, served only on the admin listener when there is one.
func (s *server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/editors/{id}/touch", s.admin("admin:touch", func(ctx context.Context, id string) ([]epoch.Editor, error) {
		e, err := s.store.Touch(ctx, id)
		return []epoch.Editor{e}, err
	}))
	mux.HandleFunc("POST /v1/admin/editors/{id}/lock", s.admin("admin:lock", func(ctx context.Context, id string) ([]epoch.Editor, error) {
		e, err := s.store.Lock(ctx, id)
		return []epoch.Editor{e}, err
	}))
	mux.HandleFunc("POST /v1/admin/editors/{id}/unlock", s.admin("admin:lock", func(ctx context.Context, id string) ([]epoch.Editor, error) {
		e, err := s.store.Unlock(ctx, id)
		return []epoch.Editor{e}, err
	}))
	mux.HandleFunc("POST /v1/admin/touch-all", s.admin("admin:touch", func(ctx context.Context, _ string) ([]epoch.Editor, error) {
		if _, err := s.store.TouchAll(ctx); err != nil {
			return nil, err
		}
		return s.store.List(ctx)
	}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
}

// healthRoutes registers /healthz and /readyz, served on every listener.
func (s *server) healthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
}

// limits caps request bodies and turns a handler panic into a 500 rather
// than a dropped connection. (Verify recovers its own panics as denials.)
func (s *server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal_error"})
			}
		}()
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		next.ServeHTTP(w, r)
	})
}

// verifyBody is the JSON a client may POST to /v1/verify.
type verifyBody struct {
	Token    string   `json:"token"`
	Endpoint string   `json:"endpoint"`
	Method   string   `json:"method"`
	Path     string   `json:"path"`
	Rights   []string `json:"rights"`
}

var (
	errNoToken   = verifier.ErrNoToken
	errTwoTokens = errors.New("more than one token in the request")
)

// requestToken finds the token of a request in the Authorization header or
// the configured cookie, and (for /v1/verify) the JSON body. More than one
// is a malformed request.
func (s *server) requestToken(r *http.Request, body string) (string, error) {
	var found []string
	tok, err := verifier.BearerToken(r)
	switch {
	case err == nil:
		found = append(found, tok)
	case !errors.Is(err, errNoToken):
		return "", err
	}
	if s.cookie != "" {
		for _, c := range r.Cookies() {
			if c.Name == s.cookie {
				found = append(found, c.Value)
			}
		}
	}
	if body != "" {
		found = append(found, body)
	}
	switch len(found) {
	case 0:
		return "", errNoToken
	case 1:
		return found[0], nil
	}
	return "", errTwoTokens
}

func (s *server) handleVerify(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.verifyLatency.Observe(time.Since(start).Seconds()) }()
	var body verifyBody
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		body = verifyBody{Endpoint: q.Get("endpoint"), Method: q.Get("method"), Path: q.Get("path"), Rights: q["right"]}
	}
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		body = verifyBody{}
		if err := dec.Decode(&body); err != nil || dec.More() {
			s.deny(w, r, "verify", fmt.Errorf("unreadable JSON body: %v", err), badRequest("the body must be one JSON object: token, endpoint, method, path, rights"))
			return
		}
	}
	token, err := s.requestToken(r, body.Token)
	if err != nil {
		s.denyTokenless(w, r, "verify", err, false)
		return
	}
	req := caveat.Request{Endpoint: body.Endpoint, Method: strings.ToUpper(body.Method), Path: body.Path, Rights: body.Rights}
	id, err := s.v.Verify(r.Context(), token, req)
	if err != nil {
		s.deny(w, r, "verify", err, verifier.ProblemFor(err))
		return
	}
	s.m.verifyAllowed.Inc()
	s.tracker.Seen(id.TokenID, clientAddr(r))
	identityHeaders(w, id)
	writeJSON(w, http.StatusOK, id)
}

// handleAuth is forward auth for nginx auth_request, Traefik forwardAuth and
// Envoy ext_authz: 200 with X-Amaretti-* headers, or 401/403/503 — never
// 400, which nginx would turn into a 500.
func (s *server) handleAuth(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.authLatency.Observe(time.Since(start).Seconds()) }()
	token, err := s.requestToken(r, "")
	if err != nil {
		s.denyTokenless(w, r, "auth", err, true)
		return
	}
	id, err := s.v.Verify(r.Context(), token, forwardedRequest(r))
	if err != nil {
		s.deny(w, r, "auth", err, verifier.ProblemFor(err))
		return
	}
	s.m.authAllowed.Inc()
	s.tracker.Seen(id.TokenID, clientAddr(r))
	identityHeaders(w, id)
	w.WriteHeader(http.StatusOK)
}

// forwardedRequest is the original request a proxy asks about: nginx sets
// X-Original-Method and X-Original-URI (in its configuration), Traefik
// X-Forwarded-Method and X-Forwarded-Uri, and Envoy sends the original method
// and appends the original path to /v1/auth. Proxies must set these headers
// themselves, overriding any a client sent.
func forwardedRequest(r *http.Request) caveat.Request {
	method := first(r.Header.Get("X-Original-Method"), r.Header.Get("X-Forwarded-Method"))
	uri := first(r.Header.Get("X-Original-URI"), r.Header.Get("X-Forwarded-Uri"))
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/auth/"); ok && uri == "" {
		uri, method = "/"+rest, first(method, r.Method)
	}
	path := ""
	if uri != "" {
		if u, err := url.ParseRequestURI(uri); err == nil {
			path = u.Path
		} else {
			path = "\x00" // unparsable: no path caveat can allow it
		}
	}
	return caveat.Request{Method: strings.ToUpper(method), Path: path}
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func identityHeaders(w http.ResponseWriter, id verifier.Identity) {
	// Keys in canonical form, assigned directly: Header.Set would
	// canonicalise each on every request.
	h := w.Header()
	h["X-Amaretti-Editor-Id"] = []string{id.EditorID}
	h["X-Amaretti-Role"] = []string{string(id.Role)}
	h["X-Amaretti-Token-Id"] = []string{id.TokenID}
	if id.Rights != nil {
		h["X-Amaretti-Rights"] = []string{strings.Join(id.Rights, ",")}
	}
	h["Cache-Control"] = []string{"no-store"}
}

func badRequest(desc string) verifier.Problem {
	return verifier.Problem{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc}
}

// denyTokenless answers a request whose token could not be read: 401 with
// a bare challenge when there is none, 400 (401 for forward auth) when the
// request is ambiguous.
func (s *server) denyTokenless(w http.ResponseWriter, r *http.Request, handler string, err error, forward bool) {
	if errors.Is(err, errNoToken) {
		s.m.verifications.WithLabelValues(handler, "no_token").Inc()
		verifier.WriteProblem(w, realm, verifier.Problem{Status: http.StatusUnauthorized})
		return
	}
	p := badRequest("send one bearer token, in the Authorization header, the cookie or the body")
	if forward {
		p.Status = http.StatusUnauthorized
	}
	s.deny(w, r, handler, err, p)
}

func (s *server) deny(w http.ResponseWriter, r *http.Request, handler string, err error, p verifier.Problem) {
	outcome := p.Code
	if outcome == "" {
		outcome = "denied"
	}
	s.m.verifications.WithLabelValues(handler, outcome).Inc()
	attrs := []slog.Attr{slog.String("handler", handler), slog.Int("status", p.Status), slog.String("reason", err.Error())}
	var d *verifier.Denial
	if errors.As(err, &d) {
		attrs = append(attrs, slog.String("token_id", d.TokenID), slog.String("editor_id", d.EditorID))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request denied", attrs...)
	verifier.WriteProblem(w, realm, p)
}

// admin wraps an epoch change that needs right, an "admin:" right: only
// admin and superuser editors hold those (epoch.Role.Permits), and a token
// that restricts rights must list it.
func (s *server) admin(right string, change func(ctx context.Context, id string) ([]epoch.Editor, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, _, ok := s.caller(w, r, "admin", right)
		if !ok {
			return
		}
		target := r.PathValue("id")
		editors, err := change(r.Context(), target)
		switch {
		case errors.Is(err, epoch.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "unknown editor"})
			return
		case err != nil:
			s.log.Error("admin change failed", "editor_id", target, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": "the store could not make the change"})
			return
		}
		s.m.verifications.WithLabelValues("admin", "allowed").Inc()
		s.announce(r.Context(), target, editors)
		s.log.Info("epoch changed", "path", r.URL.Path, "by", caller.EditorID, "token_id", caller.TokenID, "editors", len(editors))
		if target != "" {
			writeJSON(w, http.StatusOK, editorJSON(editors[0]))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"touched": len(editors)})
	}
}

func editorJSON(e epoch.Editor) map[string]any {
	return map[string]any{"id": e.ID, "username": e.Username, "role": e.Role, "active": e.Active, "locked": e.Locked(), "auth_epoch": e.AuthEpoch, "version": e.Version}
}

// handleTouchSelf: POST /v1/me/touch — "log out everywhere": the caller
// touches their own epoch, revoking every session and API token of theirs
// created so far, the calling one included. A token that restricts rights
// must list "tokens", as for managing API tokens.
func (s *server) handleTouchSelf(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "self", tokenRight)
	if !ok {
		return
	}
	e, err := s.store.Touch(r.Context(), caller.EditorID)
	if err != nil {
		s.log.Error("self touch failed", "editor_id", caller.EditorID, "err", err)
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not make the change")
		return
	}
	s.m.verifications.WithLabelValues("self", "allowed").Inc()
	s.announce(r.Context(), e.ID, []epoch.Editor{e})
	s.log.Info("epoch changed", "path", r.URL.Path, "by", caller.EditorID, "token_id", caller.TokenID, "editors", 1)
	writeJSON(w, http.StatusOK, editorJSON(e))
}

// announce drops changed editors from this daemon's cache and tells every
// other verifier through Redis.
func (s *server) announce(ctx context.Context, target string, editors []epoch.Editor) {
	if target == "" {
		s.cache.Invalidate()
	} else {
		s.cache.Invalidate(target)
	}
	if s.layer != nil {
		if err := s.layer.Announce(ctx, editors...); err != nil {
			s.log.Warn("change saved but not announced; verifiers see it within their cache TTL", "err", err)
		}
	}
}

func (s *server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	ready := true
	if len(s.keys.Keys()) == 0 {
		status["keys"], ready = "no keys loaded", false
	} else {
		status["keys"] = "ok"
	}
	if err := s.store.Ping(ctx); err != nil {
		status["store"], ready = err.Error(), false
	} else {
		status["store"] = "ok"
	}
	if s.layer != nil {
		// Redis down is not unready: verification goes on from the store.
		if err := s.layer.Ping(ctx); err != nil {
			status["redis"] = "unreachable (serving from the store): " + err.Error()
		} else {
			status["redis"] = "ok"
		}
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal_error"}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))} // not chunked
	w.WriteHeader(status)
	w.Write(body)
}
