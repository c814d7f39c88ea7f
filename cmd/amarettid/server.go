package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

const realm = "amaretti"

// server holds the daemon's HTTP handlers.
type server struct {
	v       *verifier.Verifier
	keys    *macaroon.KeyStore
	store   epoch.Store
	cache   *epoch.Cache
	layer   *rediscache.Layer // nil without Redis
	issuer  *apitoken.Issuer
	tracker *apitoken.Tracker
	// refusals records refused uses of API tokens in the audit trail
	// (nil: not recorded, as in tests that build a server by hand).
	refusals *audit.Refusals
	m        *metrics
	log      *slog.Logger
	cookie   string
	maxBody  int64
	// trusted are the proxies whose X-Real-IP / X-Forwarded-For are
	// believed (--trusted-proxies); none by default.
	trusted []netip.Prefix
	// csrf guards state-changing requests authenticated by the cookie.
	csrf *http.CrossOriginProtection
	// authCacheMaxAge bounds how long a proxy may cache an allow from
	// forward auth or introspection (--auth-cache-max-age; 0: no-store).
	authCacheMaxAge time.Duration
	// introspectClients may call /v1/introspect with HTTP Basic
	// (--introspect-client-file; none by default).
	introspectClients introspectClients
	// bufs holds *[]byte buffers for /v1/verify's body (writeIdentity).
	bufs sync.Pool
}

// routes is every endpoint on one handler, as served without --admin-listen
// (see handlers in listen.go for the split).
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	s.publicRoutes(mux)
	s.adminRoutes(mux)
	s.healthRoutes(mux)
	return s.limits(mux, true)
}

// publicRoutes registers the endpoints for callers: verification, forward
// auth, the caller's own tokens and logout.
func (s *server) publicRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/verify", s.handleVerify)
	mux.HandleFunc("POST /v1/verify", s.handleVerify)
	// Forward auth (/v1/auth and below, any method: proxies send the
	// original one, or GET) is routed in limits, before the mux, on the
	// public listener only.
	mux.HandleFunc("POST /v1/me/touch", s.handleTouchSelf)
	mux.HandleFunc("POST /v1/tokens", s.handleCreateToken)
	mux.HandleFunc("GET /v1/tokens", s.handleListTokens)
	mux.HandleFunc("GET /v1/tokens/expiring", s.handleExpiring)
	mux.HandleFunc("DELETE /v1/tokens/{id}", s.handleRevokeToken)
	mux.HandleFunc("POST /v1/tokens/{id}/rotate", s.handleRotateToken)
	mux.HandleFunc("POST /v1/tokens/exchange", s.handleExchange)
	mux.HandleFunc("POST /v1/introspect", s.handleIntrospect) // introspect.go
}

// adminRoutes registers the operators' endpoints: /v1/admin/... and
// outranks answers 403 unless the caller's role is above that of editor
// id (404 for an unknown editor, 503 when the store cannot say): handler
// names the endpoint family in metrics and logs, fix what to do instead.
func (s *server) outranks(w http.ResponseWriter, r *http.Request, handler, action string, caller verifier.Identity, id, fix string) bool {
	e, err := s.store.Editor(r.Context(), id)
	switch {
	case errors.Is(err, epoch.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", "unknown editor")
		return false
	case err != nil:
		s.storeFailed(w, action, err)
		return false
	case !caller.Role.Outranks(e.Role):
		s.m.verifications.WithLabelValues(handler, "insufficient_scope").Inc()
		s.log.Info("request denied", "handler", handler, "status", http.StatusForbidden, "reason", errRoleNotBelow,
			"action", action, "by", caller.EditorID, "token_id", caller.TokenID, "editor_id", id)
		apiError(w, http.StatusForbidden, errRoleNotBelow, fix)
		return false
	}
	return true
}

// /metrics, served only on the admin listener when there is one.
func (s *server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/editors/{id}/touch", s.admin("touch", "admin:touch", func(ctx context.Context, id string) ([]epoch.Editor, error) {
		e, err := s.store.Touch(ctx, id)
		return []epoch.Editor{e}, err
	}))
	mux.HandleFunc("POST /v1/admin/editors/{id}/lock", s.admin("lock", "admin:lock", func(ctx context.Context, id string) ([]epoch.Editor, error) {
		e, err := s.store.Lock(ctx, id)
		return []epoch.Editor{e}, err
	}))
	mux.HandleFunc("POST /v1/admin/editors/{id}/unlock", s.admin("unlock", "admin:lock", func(ctx context.Context, id string) ([]epoch.Editor, error) {
		e, err := s.store.Unlock(ctx, id)
		return []epoch.Editor{e}, err
	}))
	mux.HandleFunc("GET /v1/admin/audit", s.handleAudit) // audit.go
	mux.HandleFunc("POST /v1/admin/touch-all", s.admin("touch all", "admin:touch", func(ctx context.Context, _ string) ([]epoch.Editor, error) {
		if _, err := s.store.TouchAll(ctx); err != nil {
			return nil, err
		}
		return s.store.List(ctx)
	}))
	s.loginRoutes(mux) // logins.go
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
// Forward auth is dispatched here, before the mux would clean the path, on
// the listener that serves callers (forwardAuth).
func (s *server) limits(next http.Handler, forwardAuth bool) http.Handler {
	if s.csrf == nil {
		s.csrf = http.NewCrossOriginProtection()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				// Neither the path nor the panic value: both may hold
				// what the client sent.
				s.log.Error("handler panicked")
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal_error"})
			}
		}()
		if r.Body != http.NoBody {
			// (A request without a body has http.NoBody: nothing to cap.)
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		if forwardAuth && isAuthPath(r.URL.EscapedPath()) {
			s.handleAuth(w, r)
			return
		}
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

var errNoToken = verifier.ErrNoToken

// errContextTwice: /v1/verify named the request's context in the query and
// in the body.
var errContextTwice = errors.New("request context in the query and the body")

// requestToken finds the token of a request in the Authorization header or
// the configured cookie, and (for /v1/verify) the JSON body, and says
// whether it came from the cookie. More than one is
// verifier.ErrSeveralTokens; an unreadable Authorization header
// verifier.ErrMalformedAuthorization.
func (s *server) requestToken(r *http.Request, body string) (string, bool, error) {
	// n counts the tokens found; tok is the last, the one when n is 1.
	n := 0
	tok, err := verifier.BearerToken(r)
	switch {
	case err == nil:
		n++
	case !errors.Is(err, errNoToken):
		return "", false, err
	}
	fromCookie := false
	if s.cookie != "" {
		for _, c := range r.Cookies() {
			if c.Name == s.cookie {
				tok, fromCookie = c.Value, true
				n++
			}
		}
	}
	if body != "" {
		tok = body
		n++
	}
	switch n {
	case 0:
		return "", false, errNoToken
	case 1:
		return tok, fromCookie, nil
	}
	return "", false, verifier.ErrSeveralTokens
}

// verifyQuery reads /v1/verify's context from the query: endpoint, method
// and path at most once each, right any number of times, nothing else (a
// token is never read from a URL).
func verifyQuery(raw string) (verifyBody, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return verifyBody{}, fmt.Errorf("%w: the query is not readable", errBadBody)
	}
	for k, vs := range q {
		switch {
		case k == "right":
		case k == "endpoint" || k == "method" || k == "path":
			if len(vs) > 1 {
				return verifyBody{}, fmt.Errorf("%w: a query parameter is repeated", errBadBody)
			}
		default:
			return verifyBody{}, fmt.Errorf("%w: unknown query parameter (the query takes endpoint, method, path, right)", errBadBody)
		}
	}
	return verifyBody{Endpoint: q.Get("endpoint"), Method: q.Get("method"), Path: q.Get("path"), Rights: q["right"]}, nil
}

func (s *server) handleVerify(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.verifyLatency.Observe(time.Since(start).Seconds()) }()
	var body verifyBody
	var raw []byte
	var err error
	if r.Method == http.MethodPost {
		raw, err = readBody(r)
	}
	switch {
	case err != nil:
	case len(raw) > 0 && r.URL.RawQuery != "":
		s.deny(w, r, "verify", errContextTwice, badRequest("name the request's context in the query or in the body, not both"))
		return
	case len(raw) > 0:
		err = decodeStrict(raw, &body)
	case r.URL.RawQuery != "":
		body, err = verifyQuery(r.URL.RawQuery)
	}
	if err != nil {
		s.deny(w, r, "verify", err, badRequest(bodyProblem(err)))
		return
	}
	token, _, err := s.requestToken(r, body.Token)
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
	s.seen(r, id, token)
	identityHeaders(w, id)
	s.writeIdentity(w, id)
}

// writeIdentity is writeJSON(w, http.StatusOK, id) without reflection: the
// body is appended into a pooled buffer (Identity.AppendJSON). It follows
// identityHeaders, which has set Cache-Control.
func (s *server) writeIdentity(w http.ResponseWriter, id verifier.Identity) {
	buf, _ := s.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	defer s.bufs.Put(buf)
	body, err := id.AppendJSON((*buf)[:0])
	if err != nil {
		writeJSON(w, http.StatusOK, id) // the same failure, answered the same way
		return
	}
	body = append(body, '\n')
	*buf = body
	// No Content-Length: Go's server sets it for a body written whole
	// before the handler returns (it buffers up to 2 KiB), and an eighth
	// header would cost a larger map, here and in the server's copy.
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// bodyProblem is the client's description of an errBadBody: its fixed text.
func bodyProblem(err error) string {
	return strings.TrimPrefix(err.Error(), errBadBody.Error()+": ")
}

// unrestricted is the X-Amaretti-Rights value of a token whose caveats do
// not restrict rights (its editor's role still bounds them). The header is
// always sent on allow, so that its absence never means "all rights".
const unrestricted = "*"

// identityHeaders are the X-Amaretti-* headers of an allowed request, every
// one always sent (empty when the identity has no such field), so that a
// proxy copying them replaces whatever a client sent. Keys in canonical
// form, assigned directly: Header.Set would canonicalise each on every
// request.
func identityHeaders(w http.ResponseWriter, id verifier.Identity) {
	rights := unrestricted
	if id.Rights != nil {
		rights = strings.Join(id.Rights, ",")
	}
	// One allocation for every value: each header gets a one-element,
	// full-capacity slice of it (an append to one never reaches the next).
	v := [...]string{id.EditorID, id.Username, string(id.Role), id.TokenID, rights, string(id.Kind), "no-store"}
	vals := v[:]
	h := w.Header()
	h["X-Amaretti-Editor-Id"] = vals[0:1:1]
	h["X-Amaretti-Username"] = vals[1:2:2]
	h["X-Amaretti-Role"] = vals[2:3:3]
	h["X-Amaretti-Token-Id"] = vals[3:4:4]
	h["X-Amaretti-Rights"] = vals[4:5:5]
	h["X-Amaretti-Kind"] = vals[5:6:6]
	h["Cache-Control"] = vals[6:7:7]
}

func badRequest(desc string) verifier.Problem {
	return verifier.Problem{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc}
}

// denyTokenless answers a request whose token could not be read: 401 with
// a bare challenge when there is none, 400 (401 for forward auth) when the
// request carries two tokens or a malformed Authorization header.
func (s *server) denyTokenless(w http.ResponseWriter, r *http.Request, handler string, err error, forward bool) {
	verifier.WriteProblem(w, realm, s.tokenlessDenial(r, handler, err, forward))
}

// tokenlessDenial counts (and, but for a missing token, logs) the denial
// of a request whose token could not be read, and returns its problem:
// denyTokenless without the answer.
func (s *server) tokenlessDenial(r *http.Request, handler string, err error, forward bool) verifier.Problem {
	if errors.Is(err, errNoToken) {
		s.m.verifications.WithLabelValues(handler, "no_token").Inc()
		return verifier.Problem{Status: http.StatusUnauthorized}
	}
	p := badRequest(`the Authorization header must be "Bearer", one or more spaces and the token`)
	if errors.Is(err, verifier.ErrSeveralTokens) {
		p = badRequest("two tokens: send one, in the Authorization header, the cookie or the body")
	}
	if forward {
		p.Status = http.StatusUnauthorized
	}
	s.denied(r, handler, err, p)
	return p
}

// reasons are the sentinels a denial is logged by, most specific first.
// Their texts are fixed: a denial's full error may repeat what the client
// sent (a right, a path, an endpoint), which never reaches a log line.
// (verifier.Reason covers the verifier's own.)
var reasons = []error{errContext, errContextTwice, errCrossOrigin, errNotJSON, errIntrospectRequest}

// reasonOf is the fixed text a denial is logged with.
func reasonOf(err error) string {
	if r := verifier.Reason(err); r != "" {
		return r
	}
	for _, r := range reasons {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	if errors.Is(err, errBadBody) {
		return err.Error() // fixed sentences by construction
	}
	return "denied"
}

// deny answers a refused request and logs one line: the handler, the
// status, the reason (a fixed text), and the token and editor ids when
// they are known — never what the client sent.
func (s *server) deny(w http.ResponseWriter, r *http.Request, handler string, err error, p verifier.Problem) {
	s.denied(r, handler, err, p)
	verifier.WriteProblem(w, realm, p)
}

// denied counts and logs a denial: deny without the answer.
func (s *server) denied(r *http.Request, handler string, err error, p verifier.Problem) {
	outcome := p.Code
	if outcome == "" {
		outcome = "denied"
	}
	s.m.verifications.WithLabelValues(handler, outcome).Inc()
	attrs := []slog.Attr{slog.String("handler", handler), slog.Int("status", p.Status), slog.String("reason", reasonOf(err))}
	var d *verifier.Denial
	if errors.As(err, &d) {
		attrs = append(attrs, slog.String("token_id", d.TokenID), slog.String("editor_id", d.EditorID))
		s.refused(r, err)
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request denied", attrs...)
}

// admin wraps an epoch change that needs right, an "admin:" right: only
// admin and superuser editors hold those (epoch.Role.Permits), and a token
// that restricts rights must list it. A change to one editor needs a
// caller whose role is above the editor's (outranks): an admin touches,
// locks and unlocks editors and bots, a superuser admins too; nobody
// locks a peer or a superior through the API (the operator's CLI does).
// Touch-all, the emergency "log out everyone", touches every role.
func (s *server) admin(action, right string, change func(ctx context.Context, id string) ([]epoch.Editor, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, _, ok := s.caller(w, r, "admin", right)
		if !ok {
			return
		}
		target := r.PathValue("id")
		if target != "" && !s.outranks(w, r, "admin", action, caller, target,
			"an editor whose role is not below the caller's is touched, locked and unlocked by an operator (amaretti editor touch, lock, unlock)") {
			return
		}
		editors, err := change(r.Context(), target)
		switch {
		case errors.Is(err, epoch.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "unknown editor"})
			return
		case err != nil:
			s.log.Error("admin change failed", "action", right, "by", caller.EditorID, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": "the store could not make the change"})
			return
		}
		s.m.verifications.WithLabelValues("admin", "allowed").Inc()
		if target != "" {
			s.record(r, caller, adminActions[action], audit.Target{EditorID: editors[0].ID})
		} else {
			s.record(r, caller, epoch.AuditEditorTouchedAll, audit.Target{Detail: fmt.Sprintf("%d editors", len(editors))})
		}
		s.announce(r.Context(), target, editors)
		attrs := []any{"action", action, "by", caller.EditorID, "token_id", caller.TokenID, "editors", len(editors)}
		if target != "" {
			attrs = append(attrs, "editor_id", editors[0].ID) // the store's, not the path's
		}
		s.log.Info("epoch changed", attrs...)
		if target != "" {
			writeJSON(w, http.StatusOK, editorJSON(editors[0]))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"touched": len(editors)})
	}
}

// adminActions are the audit actions of the admin endpoints on one editor.
var adminActions = map[string]epoch.AuditAction{"touch": epoch.AuditEditorTouched, "lock": epoch.AuditEditorLocked, "unlock": epoch.AuditEditorUnlocked}

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
	s.record(r, caller, epoch.AuditEditorTouched, audit.Target{EditorID: e.ID, Detail: "self"})
	s.announce(r.Context(), e.ID, []epoch.Editor{e})
	s.log.Info("epoch changed", "action", "self touch", "by", caller.EditorID, "token_id", caller.TokenID, "editors", 1)
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
			s.log.Warn("change saved but not announced; verifiers see it within their poll interval (--poll)", "err", err)
		}
	}
}

func (s *server) handleReady(w http.ResponseWriter, r *http.Request) {
	status, ready := s.readiness(r.Context())
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, status)
}

// readiness is /readyz's report: each part's state, and whether the daemon
// can verify (keys loaded, store reachable; Redis down is still ready).
func (s *server) readiness(ctx context.Context) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
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
	return status, ready
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
