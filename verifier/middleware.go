package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
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

// errBadRequest means the request's credentials cannot be read (RFC 6750
// invalid_request): several Authorization headers, or a Bearer header
// without exactly one token after one space.
var errBadRequest = errors.New("malformed Authorization header")

// BearerToken returns the token of a request's "Authorization: Bearer"
// header. It returns ErrNoToken when there is no Authorization header or it
// uses another scheme, and an error when the request is ambiguous or
// malformed. Tokens are never read from the URL.
func BearerToken(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", errBadRequest
	}
	scheme, token, found := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoToken
	}
	if !found || token == "" || strings.ContainsAny(token, " \t") {
		return "", errBadRequest
	}
	return token, nil
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
		return "", errBadRequest
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
			req := caveat.Request{Method: r.Method, Path: r.URL.Path, Rights: m.rights}
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
		attrs := []slog.Attr{
			slog.Int("status", p.Status),
			slog.String("reason", err.Error()),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
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
