package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/amaretti-auth/amaretti/caveat"
)

type identityKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity the middleware put in ctx, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// ErrNoToken means a request carries no bearer token.
var ErrNoToken = errors.New("no bearer token")

// ErrMalformedAuthorization means a request's Authorization header cannot
// be read (RFC 6750 invalid_request): "Bearer" without a token, or a token
// holding whitespace or control characters.
var ErrMalformedAuthorization = errors.New("malformed Authorization header")

// ErrSeveralTokens means a request carries more than one token: several
// Authorization headers, or a header and a cookie (RFC 6750 forbids more
// than one method).
var ErrSeveralTokens = errors.New("more than one token in the request")

// errBadRequest is what the middleware answers 400 for.
var errBadRequest = ErrMalformedAuthorization

// BearerToken returns the token of a request's "Authorization: Bearer"
// header: the scheme (any case), one or more spaces (RFC 6750 1*SP) and the
// token. It returns ErrNoToken when there is no Authorization header or it
// uses another scheme, ErrSeveralTokens for several Authorization headers,
// and ErrMalformedAuthorization for a Bearer header without a token or with
// whitespace or control characters in it. Tokens are never read from the URL.
func BearerToken(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", ErrSeveralTokens
	}
	scheme, token, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if len(scheme) > len("Bearer") && strings.EqualFold(scheme[:len("Bearer")], "Bearer") && !isTokenByte(scheme[len("Bearer")]) {
			return "", ErrMalformedAuthorization // "Bearer\tTOKEN" and the like
		}
		return "", ErrNoToken
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", ErrMalformedAuthorization
	}
	for i := 0; i < len(token); i++ {
		if !isTokenByte(token[i]) {
			return "", ErrMalformedAuthorization
		}
	}
	return token, nil
}

// isTokenByte: a visible ASCII character (no space, tab or control).
func isTokenByte(b byte) bool { return b > 0x20 && b < 0x7f }

// methodOverrideHeaders are the headers back-end frameworks read to replace
// a request's method.
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// MethodOverridden reports whether a request asks its back end to treat it
// as another method: any of the X-HTTP-Method-Override, X-HTTP-Method or
// X-Method-Override headers (also spelled with "_" for "-", in any case),
// or a "_method" parameter (any case, split on
// "&" or ";") in rawQuery. The method such a request really exercises is unknown, so the
// middleware and amarettid check it as naming no method: a token that
// restricts methods refuses it, and other tokens are unaffected.
func MethodOverridden(h http.Header, rawQuery string) bool {
	for _, k := range methodOverrideHeaders {
		if _, ok := h[k]; ok {
			return true
		}
	}
	// The same names spelled with "_" for "-", in any case: proxies such as
	// Envoy and Traefik pass them, and CGI, PHP and WSGI servers read both
	// as HTTP_X_HTTP_METHOD_OVERRIDE.
	for k := range h {
		if strings.IndexByte(k, '_') < 0 {
			continue
		}
		n := strings.ReplaceAll(k, "_", "-")
		for _, o := range methodOverrideHeaders {
			if strings.EqualFold(n, o) {
				return true
			}
		}
	}
	// Split on ";" as well as "&": some back ends still do.
	for _, kv := range strings.FieldsFunc(rawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
		k, _, _ := strings.Cut(kv, "=")
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		if strings.EqualFold(strings.TrimSpace(k), "_method") {
			return true
		}
	}
	return false
}

// RequestMethod is the method to check a request's caveats against: its
// own, or "" (no method) when MethodOverridden says a back end may run it
// as another.
func RequestMethod(r *http.Request) string {
	if MethodOverridden(r.Header, r.URL.RawQuery) {
		return ""
	}
	return r.Method
}

type middleware struct {
	v        *Verifier
	optional bool
	realm    string
	log      *slog.Logger
	endpoint func(*http.Request) string
	rights   []string
	cookie   string
}

// WithCookie also reads the token from the cookie of that name (see package
// session). A request carrying both a bearer token and the cookie is
// refused as ambiguous (400).
func WithCookie(name string) MiddlewareOption { return func(m *middleware) { m.cookie = name } }

// token finds the request's one token: the bearer header or the cookie.
func (m *middleware) token(r *http.Request) (string, error) {
	tok, err := BearerToken(r)
	if m.cookie == "" || err != nil && !errors.Is(err, ErrNoToken) {
		return tok, err
	}
	var cookies []string
	for _, c := range r.Cookies() {
		if c.Name == m.cookie {
			cookies = append(cookies, c.Value)
		}
	}
	switch {
	case len(cookies) == 0:
		return tok, err
	case len(cookies) > 1 || err == nil:
		return "", ErrSeveralTokens
	}
	return cookies[0], nil
}

// RequireRights makes every request through the middleware exercise these
// rights: a token whose rights caveats or whose editor's role do not allow
// them all is answered 403 insufficient_scope.
func RequireRights(rights ...string) MiddlewareOption {
	return func(m *middleware) { m.rights = append(m.rights, rights...) }
}

// A MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

// Optional lets requests without a token through with no identity, as
// fatcat's API did for public reads; a token that is sent must still verify.
func Optional() MiddlewareOption { return func(m *middleware) { m.optional = true } }

// WithRealm sets the realm of WWW-Authenticate challenges (default
// "amaretti").
func WithRealm(realm string) MiddlewareOption { return func(m *middleware) { m.realm = realm } }

// WithLogger logs one line per denied request, with the reason and the
// token id, never the token (default: no logging).
func WithLogger(l *slog.Logger) MiddlewareOption { return func(m *middleware) { m.log = l } }

// WithEndpoint names the endpoint of each request, for endpoint caveats.
func WithEndpoint(f func(*http.Request) string) MiddlewareOption {
	return func(m *middleware) { m.endpoint = f }
}

// Middleware returns net/http middleware that verifies the request's bearer
// token against the request's method, path and (with WithEndpoint) endpoint,
// puts the Identity into the request context (see FromContext) and calls
// next. It answers per RFC 6750: 401 with a WWW-Authenticate challenge when
// the token is missing or invalid, 403 when a valid token's caveats forbid
// the request, 400 for an unreadable Authorization header, 503 when the
// epoch store cannot answer.
func (v *Verifier) Middleware(opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := &middleware{v: v, realm: "amaretti"}
	for _, o := range opts {
		o(m)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, err := m.token(r)
			switch {
			case errors.Is(err, ErrNoToken) && m.optional:
				next.ServeHTTP(w, r)
				return
			case errors.Is(err, ErrNoToken):
				m.deny(w, r, err, Problem{Status: http.StatusUnauthorized})
				return
			case err != nil:
				m.deny(w, r, err, Problem{http.StatusBadRequest, "invalid_request", "send one bearer token, in one Authorization header or the cookie"})
				return
			}
			req := caveat.Request{Method: RequestMethod(r), Path: r.URL.Path, Rights: m.rights}
			if m.endpoint != nil {
				req.Endpoint = m.endpoint(r)
			}
			id, err := v.Verify(r.Context(), token, req)
			if err != nil {
				m.deny(w, r, err, ProblemFor(err))
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
		})
	}
}

func (m *middleware) deny(w http.ResponseWriter, r *http.Request, err error, p Problem) {
	if m.log != nil {
		// Fixed texts and ids only: the method, the path and the full
		// reason may hold whatever the client sent, a token included.
		reason := Reason(err)
		if reason == "" {
			reason = "denied"
		}
		attrs := []slog.Attr{
			slog.Int("status", p.Status),
			slog.String("reason", reason),
		}
		var d *Denial
		if errors.As(err, &d) {
			attrs = append(attrs, slog.String("token_id", d.TokenID), slog.String("key_id", d.KeyID), slog.String("editor_id", d.EditorID))
		}
		m.log.LogAttrs(r.Context(), slog.LevelInfo, "request denied", attrs...)
	}
	WriteProblem(w, m.realm, p)
}

// WriteProblem writes an RFC 6750 answer: the WWW-Authenticate challenge for
// 401 and 403, and a JSON body {"error": ..., "error_description": ...}.
// A Problem with no Code is a bare challenge (no token was sent).
func WriteProblem(w http.ResponseWriter, realm string, p Problem) {
	h := w.Header()
	if p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden {
		c := `Bearer realm="` + quoteSafe(realm) + `"`
		if p.Code != "" {
			c += `, error="` + p.Code + `", error_description="` + quoteSafe(p.Description) + `"`
		}
		h.Set("WWW-Authenticate", c)
	}
	if p.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(p.Status)
	body := map[string]string{"error": p.Code, "error_description": p.Description}
	if p.Code == "" {
		body = map[string]string{"error": "unauthorized", "error_description": "a bearer token is required"}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// quoteSafe keeps only the characters RFC 6750 allows in quoted values
// (%x20-21 / %x23-5B / %x5D-7E).
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
