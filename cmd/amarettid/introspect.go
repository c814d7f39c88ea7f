package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/verifier"
)

// introspectRight is the right a service token needs to call
// /v1/introspect (an admin: right, so held only by admin and superuser
// editors' tokens).
const introspectRight = "admin:introspect"

// Errors of the introspection endpoint and its client file.
var (
	// errIntrospectCaller: the caller of /v1/introspect did not
	// authenticate (no credentials, unknown client, wrong secret).
	errIntrospectCaller = errors.New("introspection caller not authenticated")
	// errIntrospectRequest: the introspection request itself is
	// malformed (not a form, no token, a parameter repeated, a query).
	errIntrospectRequest = errors.New("malformed introspection request")
	// errClientFile: --introspect-client-file cannot be used.
	errClientFile = errors.New("--introspect-client-file")
	// errInsecureClientFile: the client file is readable by group or
	// others.
	errInsecureClientFile = errors.New("insecure introspection client file permissions")
)

// introspectFlags are the flags of RFC 7662 token introspection.
func introspectFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "introspect-client-file", EnvVars: []string{"AMARETTI_INTROSPECT_CLIENT_FILE"},
			Usage: "`FILE` (mode 0600) of ID:SECRET lines: the clients that may call POST /v1/introspect with HTTP Basic (absent: only service tokens with " + introspectRight + ")"},
	}
}

// introspectClient is one Basic client of /v1/introspect, kept as digests
// so that every comparison takes the same time whatever the input.
type introspectClient struct {
	id     string
	idSum  [sha256.Size]byte
	secret [sha256.Size]byte
}

// introspectClients are the configured Basic clients (none: Basic is
// refused).
type introspectClients []introspectClient

// readIntrospectClients reads a client file: one ID:SECRET per line (split
// at the first ":"), blank lines and lines starting with "#" ignored, each
// id once. The file must be a regular file no one but its owner can read or
// write. Errors name the line, never its content.
func readIntrospectClients(path string) (introspectClients, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errClientFile, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errClientFile, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", errClientFile, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %w: %s is accessible by group or others (mode %04o); chmod 600 it", errClientFile, errInsecureClientFile, path, perm)
	}
	var clients introspectClients
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, secret, ok := strings.Cut(line, ":")
		switch {
		case !ok || id == "" || secret == "":
			return nil, fmt.Errorf("%w: %s line %d: not ID:SECRET with both non-empty", errClientFile, path, n)
		case seen[id]:
			return nil, fmt.Errorf("%w: %s line %d: a client id listed twice", errClientFile, path, n)
		}
		seen[id] = true
		clients = append(clients, introspectClient{id: id, idSum: sha256.Sum256([]byte(id)), secret: sha256.Sum256([]byte(secret))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errClientFile, path, err)
	}
	if len(clients) == 0 {
		return nil, fmt.Errorf("%w: %s lists no client", errClientFile, path)
	}
	return clients, nil
}

// match returns the id of the client id and secret name, comparing every
// configured client in constant time.
func (cs introspectClients) match(id, secret string) (string, bool) {
	idSum, secretSum := sha256.Sum256([]byte(id)), sha256.Sum256([]byte(secret))
	found := -1
	for i := range cs {
		if subtle.ConstantTimeCompare(cs[i].idSum[:], idSum[:])&subtle.ConstantTimeCompare(cs[i].secret[:], secretSum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return cs[found].id, true
}

// authenticate checks HTTP Basic credentials: as RFC 6749 §2.3.1 sends
// them (each form-urlencoded), or as sent raw by clients that do not
// encode.
func (cs introspectClients) authenticate(id, secret string) (string, bool) {
	if who, ok := cs.match(id, secret); ok {
		return who, true
	}
	uid, err1 := url.QueryUnescape(id)
	usecret, err2 := url.QueryUnescape(secret)
	if err1 != nil || err2 != nil || uid == id && usecret == secret {
		return "", false
	}
	return cs.match(uid, usecret)
}

// introspection is the RFC 7662 §2.2 answer. Only Active is sent for an
// inactive token.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Jti       string `json:"jti,omitempty"`
	// Extensions (RFC 7662 §2.2 allows them): what X-Amaretti-Role and
	// X-Amaretti-Kind say in forward auth.
	Role string `json:"amaretti_role,omitempty"`
	Kind string `json:"amaretti_kind,omitempty"`
}

// introspectionOf is the answer for a token that verified as id.
func introspectionOf(id verifier.Identity) introspection {
	scope := unrestricted
	if id.Rights != nil {
		scope = strings.Join(id.Rights, " ")
	}
	in := introspection{Active: true, Scope: scope, Username: id.Username, TokenType: "Bearer",
		Iat: id.Created.Unix(), Sub: id.EditorID, Jti: id.TokenID, Role: string(id.Role), Kind: string(id.Kind)}
	if !id.Expires.IsZero() {
		in.Exp = id.Expires.Unix()
	}
	return in
}

// handleIntrospect is RFC 7662 token introspection: POST /v1/introspect,
// form-encoded token (and an optional token_type_hint, which is ignored:
// amaretti has one kind of token). The caller authenticates with HTTP
// Basic (--introspect-client-file) or a service token holding
// admin:introspect; otherwise 401. Any token that does not verify is
// {"active": false}, with 200 and no reason — also one restricted to
// methods, paths or endpoints, which an introspection answer could not
// carry to the resource server. A store that cannot answer is 503 (not
// "inactive", which a resource server could cache as the truth).
func (s *server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.latency.WithLabelValues("introspect").Observe(time.Since(start).Seconds()) }()
	if !s.introspectCaller(w, r) {
		return
	}
	token, err := introspectForm(r)
	if err != nil {
		s.deny(w, r, "introspect", err, badRequest(strings.TrimPrefix(err.Error(), errIntrospectRequest.Error()+": ")))
		return
	}
	id, err := s.v.Verify(r.Context(), token, caveat.Request{})
	if err != nil {
		p := verifier.ProblemFor(err)
		if p.Status == http.StatusServiceUnavailable {
			s.deny(w, r, "introspect", err, p)
			return
		}
		// Logged and counted like any denial, answered without a reason.
		s.m.verifications.WithLabelValues("introspect", "inactive").Inc()
		attrs := []any{"handler", "introspect", "reason", reasonOf(err)}
		var d *verifier.Denial
		if errors.As(err, &d) {
			attrs = append(attrs, "token_id", d.TokenID, "editor_id", d.EditorID)
			s.refused(r, err) // a refused use of a registered API token is audited
		}
		s.log.Info("token inactive", attrs...)
		writeIntrospection(w, introspection{}, noStore)
		return
	}
	s.m.verifications.WithLabelValues("introspect", "active").Inc()
	s.tracker.Seen(id.TokenID, s.clientAddr(r))
	writeIntrospection(w, introspectionOf(id), cacheControl(s.authCacheMaxAge, id, time.Now()))
}

// introspectCaller authenticates the caller of /v1/introspect, answering
// 401 (403 for a service token without the right, 503 when the store
// cannot say) when it does not.
func (s *server) introspectCaller(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Values("Authorization")
	if len(auth) == 1 {
		if id, secret, ok := r.BasicAuth(); ok {
			who, ok := s.introspectClients.authenticate(id, secret)
			if !ok {
				s.unauthenticated(w, r, "invalid_client", "client authentication failed")
				return false
			}
			s.log.Debug("introspection caller", "client_id", who)
			return true
		}
	}
	token, err := verifier.BearerToken(r)
	if err != nil {
		s.unauthenticated(w, r, "", "")
		return false
	}
	_, err = s.v.Verify(r.Context(), token, caveat.Request{Method: verifier.RequestMethod(r), Path: r.URL.Path, Rights: []string{introspectRight}})
	if err != nil {
		s.deny(w, r, "introspect", err, verifier.ProblemFor(err))
		return false
	}
	return true
}

// unauthenticated answers 401 with a challenge for each way in: Basic when
// clients are configured, and Bearer. code is "" when no credentials came.
func (s *server) unauthenticated(w http.ResponseWriter, r *http.Request, code, desc string) {
	outcome := code
	if outcome == "" {
		outcome = "no_credentials"
	}
	s.m.verifications.WithLabelValues("introspect", outcome).Inc()
	s.log.Info("request denied", "handler", "introspect", "status", http.StatusUnauthorized, "reason", errIntrospectCaller.Error())
	h := w.Header()
	if len(s.introspectClients) > 0 {
		h.Add("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
	}
	h.Add("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	body := map[string]string{"error": "invalid_client", "error_description": "authenticate with HTTP Basic client credentials or a service token holding " + introspectRight}
	if code != "" {
		body = map[string]string{"error": code, "error_description": desc}
	}
	writeJSON(w, http.StatusUnauthorized, body)
}

// introspectForm reads the token of an introspection request: a POST body
// of type application/x-www-form-urlencoded, with token exactly once and
// token_type_hint at most once (other parameters are ignored, as RFC 7662
// allows), and no query string — a token is never read from a URL.
func introspectForm(r *http.Request) (string, error) {
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		return "", fmt.Errorf("%w: send the token in the body, not the query", errIntrospectRequest)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", fmt.Errorf("%w: the body must be application/x-www-form-urlencoded", errIntrospectRequest)
	}
	raw, err := readBody(r)
	if err != nil {
		return "", fmt.Errorf("%w: the body could not be read or is over the size limit", errIntrospectRequest)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return "", fmt.Errorf("%w: the body is not a readable form", errIntrospectRequest)
	}
	if len(form["token_type_hint"]) > 1 {
		return "", fmt.Errorf("%w: token_type_hint is repeated", errIntrospectRequest)
	}
	switch toks := form["token"]; {
	case len(toks) == 0 || toks[0] == "":
		return "", fmt.Errorf("%w: the token parameter is missing", errIntrospectRequest)
	case len(toks) > 1:
		return "", fmt.Errorf("%w: the token parameter is repeated", errIntrospectRequest)
	default:
		return toks[0], nil
	}
}

// writeIntrospection answers 200 with in and the given Cache-Control.
func writeIntrospection(w http.ResponseWriter, in introspection, cacheControl string) {
	body, _ := json.Marshal(in) // strings and numbers only: cannot fail
	body = append(body, '\n')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{cacheControl}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
