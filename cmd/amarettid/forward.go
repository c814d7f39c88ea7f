package main

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/verifier"
)

// A family is where a forward-auth endpoint learns the original request's
// method and URI. Each integration has its own endpoint, which reads its
// own family and ignores every other one: a proxy overwrites the headers it
// sets, but passes the others a client sent.
type family int

const (
	// familyAny is the generic /v1/auth: the one family the request
	// carries; more than one is refused.
	familyAny family = iota
	// familyOriginal: X-Original-Method and X-Original-URI (nginx
	// auth_request, /v1/auth/nginx).
	familyOriginal
	// familyForwarded: X-Forwarded-Method and X-Forwarded-Uri (Traefik
	// forwardAuth, Caddy forward_auth: /v1/auth/traefik, /v1/auth/caddy).
	familyForwarded
	// familyEnvoy: the request's own method and the path Envoy appended
	// to /v1/auth/envoy (ext_authz); every context header is ignored.
	familyEnvoy
	// familyLegacyEnvoy: the path appended to /v1/auth itself (the form
	// before /v1/auth/envoy): only when the request carries no context
	// header at all.
	familyLegacyEnvoy
)

const (
	authPrefix  = "/v1/auth"
	envoyPrefix = "/v1/auth/envoy"
)

// authEndpoint says which family an escaped request path under /v1/auth
// reads, and for the Envoy forms the escaped original path.
func authEndpoint(escaped string) (family, string) {
	switch escaped {
	case authPrefix:
		return familyAny, ""
	case authPrefix + "/nginx":
		return familyOriginal, ""
	case authPrefix + "/traefik", authPrefix + "/caddy":
		return familyForwarded, ""
	}
	if rest, ok := strings.CutPrefix(escaped, envoyPrefix); ok && (rest == "" || rest[0] == '/') {
		return familyEnvoy, rest
	}
	return familyLegacyEnvoy, strings.TrimPrefix(escaped, authPrefix)
}

// errContext: the request a proxy asks about cannot be told for certain —
// two header families, a header sent twice, context headers on the legacy
// Envoy form, or an unreadable URI. Forward auth denies it (403).
var errContext = errors.New("the original request is ambiguous or unreadable")

var contextProblem = verifier.Problem{Status: http.StatusForbidden, Code: "invalid_request", Description: "the proxy's description of the original request is ambiguous or unreadable"}

// contextHeaders are the header pairs of the two header families.
var (
	originalHeaders  = [2]string{"X-Original-Method", "X-Original-Uri"}
	forwardedHeaders = [2]string{"X-Forwarded-Method", "X-Forwarded-Uri"}
)

// headerPair reads a family's method and URI headers: each at most once.
func headerPair(h http.Header, names [2]string) (method, uri string, present bool, err error) {
	m, u := h[names[0]], h[names[1]]
	if len(m) > 1 || len(u) > 1 {
		return "", "", true, errContext
	}
	if len(m) == 1 {
		method = m[0]
	}
	if len(u) == 1 {
		uri = u[0]
	}
	return method, uri, len(m)+len(u) > 0, nil
}

// forwardedRequest is the original request a proxy asks about, read the
// way fam says. The method is "" (no method: a method-restricted token
// refuses) when the original request carries a method override
// (verifier.MethodOverridden); the path is decoded exactly once.
func forwardedRequest(r *http.Request, fam family, envoyPath string) (caveat.Request, error) {
	oMethod, oURI, oSent, oErr := headerPair(r.Header, originalHeaders)
	fMethod, fURI, fSent, fErr := headerPair(r.Header, forwardedHeaders)
	var method, uri string
	switch fam {
	case familyOriginal:
		method, uri = oMethod, oURI
		if oErr != nil {
			return caveat.Request{}, oErr
		}
	case familyForwarded:
		method, uri = fMethod, fURI
		if fErr != nil {
			return caveat.Request{}, fErr
		}
	case familyAny:
		switch {
		case oErr != nil || fErr != nil || oSent && fSent:
			return caveat.Request{}, errContext
		case oSent:
			method, uri = oMethod, oURI
		case fSent:
			method, uri = fMethod, fURI
		default:
			return caveat.Request{}, nil // no context: restricted tokens refuse
		}
	case familyLegacyEnvoy:
		if oSent || fSent {
			return caveat.Request{}, errContext
		}
		fallthrough
	case familyEnvoy:
		if envoyPath == "" {
			return caveat.Request{}, errContext
		}
		method, uri = r.Method, envoyPath
		if r.URL.RawQuery != "" || r.URL.ForceQuery {
			uri += "?" + r.URL.RawQuery
		}
	}
	req := caveat.Request{Method: method}
	if uri == "" {
		if verifier.MethodOverridden(r.Header, "") {
			req.Method = ""
		}
		return req, nil
	}
	escaped, query, _ := strings.Cut(uri, "?")
	path, ok := decodePath(escaped)
	if !ok {
		return caveat.Request{}, errContext
	}
	req.Path = path
	if verifier.MethodOverridden(r.Header, query) {
		req.Method = ""
	}
	return req, nil
}

// decodePath decodes an escaped absolute path exactly once. An encoded "/"
// stays encoded ("%2F"): it is a path byte, never a separator, and the "%"
// it leaves is refused by path caveats. "%3F" and "%23" decode to "?" and
// "#", bytes of a segment. A path that is not absolute, holds a raw "#" or
// an invalid escape is unreadable (false).
func decodePath(escaped string) (string, bool) {
	if !strings.HasPrefix(escaped, "/") {
		return "", false
	}
	if !strings.ContainsAny(escaped, "%#") {
		return escaped, true
	}
	b := make([]byte, 0, len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch c {
		case '#':
			return "", false
		case '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", false
			}
			v := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if v == '/' {
				b = append(b, "%2F"...)
			} else {
				b = append(b, v)
			}
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// handleAuth is forward auth for nginx auth_request, Traefik forwardAuth,
// Caddy forward_auth and Envoy ext_authz: 200 with X-Amaretti-* headers, or
// 401/403/503 — never 400, which nginx would turn into a 500. It is called
// for every path under /v1/auth before the mux (which would clean or
// redirect the Envoy forms' paths).
func (s *server) handleAuth(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.authLatency.Observe(time.Since(start).Seconds()) }()
	fam, envoyPath := authEndpoint(r.URL.EscapedPath())
	a := s.decideAuth(r, "auth", fam, envoyPath)
	if fam == familyOriginal {
		// nginx 1.22 will not cache a "private" answer: its cache obeys
		// X-Accel-Expires instead (0: never), see examples/proxies.
		w.Header()["X-Accel-Expires"] = []string{"0"}
	}
	if a.status == http.StatusOK {
		s.m.authAllowed.Inc()
		// A proxy may cache the allow for at most --auth-cache-max-age
		// (and never past the token's expiry); every denial is no-store.
		// (Without --auth-cache-max-age, identityHeaders's no-store
		// stands, and no clock is read for it.)
		if s.authCacheMaxAge > 0 {
			cc := cacheControl(s.authCacheMaxAge, a.id, time.Now())
			a.cache = cc
			if fam == familyOriginal && cc != noStore {
				w.Header()["X-Accel-Expires"] = []string{strings.TrimPrefix(cc, cacheablePrefix)}
			}
		}
	}
	a.write(w)
}

// authAnswer is forward auth's decision on one request, whichever protocol
// asked (HTTP forward auth, gRPC ext_authz: extauthz.go): both render it
// with write, so that they answer alike header for header.
type authAnswer struct {
	// status is 200, or the denial's 401, 403 or 503.
	status int
	// problem is the denial (none when status is 200).
	problem verifier.Problem
	// reason is the fixed text the denial was logged with ("" on allow).
	reason string
	// id is the identity allowed (status 200).
	id verifier.Identity
	// cache is the allow's Cache-Control ("": no-store).
	cache string
}

// write renders a as an HTTP answer: 200 with the X-Amaretti-* identity
// headers, or the problem with its RFC 6750 WWW-Authenticate challenge
// (401, 403), Retry-After (503) and JSON body.
func (a authAnswer) write(w http.ResponseWriter) {
	if a.status == http.StatusOK {
		identityHeaders(w, a.id)
		if a.cache != "" && a.cache != noStore {
			w.Header()["Cache-Control"] = []string{a.cache}
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	verifier.WriteProblem(w, realm, a.problem)
}

// decideAuth is forward auth's one decision: the token of r (Authorization
// header or the configured cookie), the original request read the way fam
// says (forwardedRequest), verified. A denial is counted and logged under
// handler (never with the token); an allowed request's last use is
// recorded, and the caller counts it. Any error denies.
func (s *server) decideAuth(r *http.Request, handler string, fam family, envoyPath string) authAnswer {
	ctx := r.Context()
	token, _, err := s.requestToken(r, "")
	if err != nil {
		p := s.tokenlessDenial(r, handler, err, true)
		return authAnswer{status: p.Status, problem: p, reason: reasonOf(err)}
	}
	req, err := forwardedRequest(r, fam, envoyPath)
	if err != nil {
		s.denied(r, handler, err, contextProblem)
		return authAnswer{status: contextProblem.Status, problem: contextProblem, reason: reasonOf(err)}
	}
	id, err := s.v.Verify(ctx, token, req)
	if err != nil {
		p := verifier.ProblemFor(err)
		s.denied(r, handler, err, p)
		return authAnswer{status: p.Status, problem: p, reason: reasonOf(err)}
	}
	s.seen(r, id, token)
	return authAnswer{status: http.StatusOK, id: id}
}

// isAuthPath: the escaped path is /v1/auth or below it.
func isAuthPath(escaped string) bool {
	return escaped == authPrefix || strings.HasPrefix(escaped, authPrefix+"/")
}
