package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/verifier"
)

// tokenRight is the right a token needs to manage API tokens, when it
// restricts rights at all.
const tokenRight = "tokens"

// adminTokensRight is the right a token needs, besides an admin role, to
// reach other editors' tokens (list, revoke, warn about expiry), when it
// restricts rights at all.
const adminTokensRight = "admin:tokens"

var (
	// errCrossOrigin: a state-changing request authenticated by the cookie
	// came from another origin (http.CrossOriginProtection).
	errCrossOrigin = errors.New("cross-origin request with the cookie")
	// errNotJSON: a cookie-authenticated request with a body that is not
	// declared application/json (a form a browser could send cross-site).
	errNotJSON = errors.New("cookie-authenticated body is not application/json")
)

// positiveDuration parses an optional duration field: "" gives 0.
func positiveDuration(v string) (time.Duration, bool) {
	if v == "" {
		return 0, true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil && d > 0
}

func apiError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// caller verifies the token of a request to the handler (a metrics label)
// for the given rights, answering the request itself when it fails. A
// state-changing request authenticated by the cookie must come from the
// daemon's own origin (http.CrossOriginProtection) and declare any body
// application/json: a browser cannot send either cross-site without CORS.
func (s *server) caller(w http.ResponseWriter, r *http.Request, handler string, rights ...string) (verifier.Identity, string, bool) {
	token, fromCookie, err := s.requestToken(r, "")
	if err != nil {
		s.denyTokenless(w, r, handler, err, false)
		return verifier.Identity{}, "", false
	}
	if fromCookie {
		if err := s.csrf.Check(r); err != nil {
			s.deny(w, r, handler, errCrossOrigin, verifier.Problem{Status: http.StatusForbidden, Code: "invalid_request", Description: "cross-origin request refused"})
			return verifier.Identity{}, "", false
		}
		if r.ContentLength != 0 && r.Method != http.MethodGet && r.Method != http.MethodHead && !isJSON(r) {
			s.deny(w, r, handler, errNotJSON, verifier.Problem{Status: http.StatusUnsupportedMediaType, Code: "invalid_request", Description: "the body must be application/json"})
			return verifier.Identity{}, "", false
		}
	}
	id, err := s.v.Verify(r.Context(), token, caveat.Request{Method: verifier.RequestMethod(r), Path: r.URL.Path, Rights: rights})
	if err != nil {
		s.deny(w, r, handler, err, verifier.ProblemFor(err))
		return verifier.Identity{}, "", false
	}
	return id, token, true
}

func isAdmin(id verifier.Identity) bool {
	return id.Role == epoch.RoleAdmin || id.Role == epoch.RoleSuperuser
}

// crossEditor reports whether the caller may reach other editors' tokens:
// an admin (or superuser) editor, with admin:tokens when the token
// restricts rights.
func crossEditor(id verifier.Identity) bool {
	return isAdmin(id) && id.Can(adminTokensRight)
}

// decodeBody decodes a request's JSON body, if any, into v strictly
// (decodeStrict). Its errors wrap errBadBody.
func decodeBody(r *http.Request, v any) error {
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeStrict(raw, v)
}

// validRights: every right is a right name (caveat.ValidRight).
func validRights(rights []string) bool {
	for _, r := range rights {
		if !caveat.ValidRight(r) {
			return false
		}
	}
	return true
}

const badRights = "rights must be names of lower-case letters, digits, and _ . : - (at most 64 characters)"

// handleCreateToken: POST /v1/tokens {name, description, rights, expires_in}.
func (s *server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	caller, token, ok := s.caller(w, r, "tokens", tokenRight)
	if !ok {
		return
	}
	var body struct {
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Rights      []string `json:"rights"`
		Endpoint    string   `json:"endpoint"`
		ExpiresIn   string   `json:"expires_in"`
	}
	if err := decodeBody(r, &body); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", bodyProblem(err)+" (the body is JSON: name, description, rights, endpoint, expires_in)")
		return
	}
	// "never" asks for no expiry, which the lifetime policy must allow.
	never, ttl, ok := body.ExpiresIn == "never", time.Duration(0), true
	if !never {
		ttl, ok = positiveDuration(body.ExpiresIn)
	}
	if !ok {
		apiError(w, http.StatusBadRequest, "invalid_request", `expires_in must be a positive duration such as 720h, or "never"`)
		return
	}
	if !validRights(body.Rights) {
		apiError(w, http.StatusBadRequest, "invalid_request", badRights)
		return
	}
	if err := epoch.CheckTokenText(body.Name, body.Description); err != nil {
		// Its messages are fixed sentences: they state the rule, not the value.
		apiError(w, http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), epoch.ErrInvalidToken.Error()+": "))
		return
	}
	secret, row, err := s.issuer.Create(r.Context(), apitoken.Request{
		EditorID: caller.EditorID, Name: body.Name, Description: body.Description, Rights: body.Rights, Endpoint: body.Endpoint, TTL: ttl, NoExpiry: never,
		Creator: caller.EditorID, Parent: &apitoken.Parent{Token: token, Identity: caller},
	})
	switch {
	case errors.Is(err, epoch.ErrNameTaken):
		apiError(w, http.StatusConflict, "conflict", "you already have a live token of that name")
		return
	case errors.Is(err, epoch.ErrTooManyTokens):
		// Fixed sentences of the store, naming counts and the remedy only.
		apiError(w, http.StatusConflict, "too_many_tokens", strings.TrimPrefix(err.Error(), epoch.ErrTooManyTokens.Error()+": "))
		return
	case errors.Is(err, apitoken.ErrRightNotAllowed):
		apiError(w, http.StatusForbidden, "insufficient_scope", "a right asked for is not allowed to this editor or token")
		return
	case errors.Is(err, apitoken.ErrPolicy):
		apiError(w, http.StatusBadRequest, "invalid_request", policyProblem(err))
		return
	case errors.Is(err, apitoken.ErrInvalid):
		// Its message may repeat a value the client sent: not answered,
		// not logged.
		apiError(w, http.StatusBadRequest, "invalid_request", "the name, description, rights, endpoint or lifetime is not valid")
		return
	case err != nil:
		s.log.Error("creating an api token failed", "editor_id", caller.EditorID, "err", err)
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token could not be created")
		return
	}
	s.log.Info("api token created", "editor_id", caller.EditorID, "token_id", row.TokenID)
	s.record(r, caller, epoch.AuditTokenCreated, audit.Target{EditorID: row.EditorID, TokenID: row.TokenID, Detail: "name " + row.Name})
	writeJSON(w, http.StatusCreated, struct {
		Token string `json:"token"`
		apitoken.Row
	}{secret, s.createdRow(caller, row)})
}

// handleListTokens: GET /v1/tokens — the caller's; an admin (with
// admin:tokens when the token restricts rights) may ask for ?editor_id=ID or
// ?editor_id=* (everyone's).
func (s *server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "tokens", tokenRight)
	if !ok {
		return
	}
	editor := caller.EditorID
	if q := r.URL.Query().Get("editor_id"); q != "" && q != caller.EditorID {
		if !crossEditor(caller) {
			apiError(w, http.StatusForbidden, "insufficient_scope", "listing other editors' tokens needs an admin and, for a token that restricts rights, admin:tokens")
			return
		}
		editor = q
		if q == "*" {
			editor = ""
		}
	}
	rows, err := s.store.Tokens(r.Context(), editor)
	var out []apitoken.Row
	if err == nil {
		out, err = s.tokenRows(r.Context(), rows)
	}
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not answer")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// handleExpiring: GET /v1/tokens/expiring?within=168h — the caller's live
// tokens that expire within the window (everyone's, for an admin with
// admin:tokens when the token restricts rights), to warn their owners.
func (s *server) handleExpiring(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "tokens", tokenRight)
	if !ok {
		return
	}
	within, ok := positiveDuration(r.URL.Query().Get("within"))
	if !ok {
		apiError(w, http.StatusBadRequest, "invalid_request", "within must be a positive duration such as 168h")
		return
	}
	if within == 0 {
		within = 7 * 24 * time.Hour
	}
	rows, err := apitoken.Expiring(r.Context(), s.store, within, s.issuer.Policy(), time.Now())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not answer")
		return
	}
	out := []apitoken.Row{}
	for _, t := range rows {
		if t.EditorID == caller.EditorID || crossEditor(caller) {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// handleRevokeToken: DELETE /v1/tokens/{id} — the caller's own, or any for
// an admin (with admin:tokens when the token restricts rights). Someone
// else's token is "not found" to anyone else.
func (s *server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "tokens", tokenRight)
	if !ok {
		return
	}
	id := r.PathValue("id")
	row, err := s.store.Token(r.Context(), id)
	if errors.Is(err, epoch.ErrTokenNotFound) || err == nil && row.EditorID != caller.EditorID && !crossEditor(caller) {
		apiError(w, http.StatusNotFound, "not_found", "no such token")
		return
	}
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not answer")
		return
	}
	ed, row, err := s.store.RevokeToken(r.Context(), id)
	switch {
	case errors.Is(err, epoch.ErrAlreadyRevoked):
		apiError(w, http.StatusConflict, "conflict", "the token was already revoked")
		return
	case err != nil:
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not make the change")
		return
	}
	s.record(r, caller, epoch.AuditTokenRevoked, audit.Target{EditorID: ed.ID, TokenID: row.TokenID})
	s.announce(r.Context(), ed.ID, []epoch.Editor{ed})
	s.log.Info("api token revoked", "by", caller.EditorID, "token_id", id, "editor_id", ed.ID)
	writeJSON(w, http.StatusOK, apitoken.NewRow(row, ed, s.issuer.Policy(), time.Now()))
}

// handleExchange: POST /v1/tokens/exchange {rights, ttl} — a short-lived
// token for the holder of a long-lived one.
func (s *server) handleExchange(w http.ResponseWriter, r *http.Request) {
	parent, token, ok := s.caller(w, r, "tokens")
	if !ok {
		return
	}
	var body struct {
		Rights []string `json:"rights"`
		TTL    string   `json:"ttl"`
	}
	if err := decodeBody(r, &body); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", bodyProblem(err)+" (the body is JSON: rights, ttl)")
		return
	}
	if !validRights(body.Rights) {
		apiError(w, http.StatusBadRequest, "invalid_request", badRights)
		return
	}
	ttl, ok := positiveDuration(body.TTL)
	if !ok {
		apiError(w, http.StatusBadRequest, "invalid_request", "ttl must be a positive duration such as 15m")
		return
	}
	m, err := s.issuer.Exchange(r.Context(), apitoken.Parent{Token: token, Identity: parent}, body.Rights, ttl)
	switch {
	case errors.Is(err, apitoken.ErrRightNotAllowed):
		apiError(w, http.StatusForbidden, "insufficient_scope", "a right asked for is not allowed to the token")
		return
	case errors.Is(err, apitoken.ErrPolicy):
		apiError(w, http.StatusBadRequest, "invalid_request", policyProblem(err))
		return
	case errors.Is(err, apitoken.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", "the rights or lifetime asked for are not valid")
		return
	case err != nil:
		s.log.Error("exchange failed", "token_id", parent.TokenID, "err", err)
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "could not mint")
		return
	}
	s.tracker.SeenToken(parent.TokenID, s.clientAddr(r), token)
	s.record(r, parent, epoch.AuditTokenExchanged, audit.Target{EditorID: parent.EditorID, TokenID: parent.TokenID,
		Detail: "for token " + m.TokenID + " until " + m.Expires.UTC().Format(time.RFC3339)})
	writeJSON(w, http.StatusCreated, map[string]any{"token": m.Token, "token_id": m.TokenID, "expires": m.Expires, "parent_token_id": parent.TokenID})
}

// seen notes an allowed use of the token id (presented as token) for its
// last use: the client address is worked out only when the tracker will
// note it, once per token per interval, not on every request.
func (s *server) seen(r *http.Request, id verifier.Identity, token string) {
	if s.tracker.Due(id.TokenID) {
		s.tracker.SeenToken(id.TokenID, s.clientAddr(r), token)
	}
}

// clientAddr is where a request came from, for last-use records: a
// validated IP address, never text a client chose. The connection's peer,
// unless the peer is a trusted proxy (--trusted-proxies): then the address
// it reports in X-Real-IP, or else the nearest untrusted address of
// X-Forwarded-For (read from the right: entries to the left of a trusted
// proxy's are the client's to write). Anything unreadable gives the peer.
func (s *server) clientAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return "" // not a TCP peer (tests); nothing trustworthy to record
	}
	peer := ap.Addr().Unmap()
	if !s.trustedProxy(peer) {
		return peer.String()
	}
	if vals := r.Header.Values("X-Real-Ip"); len(vals) > 0 {
		if ip, ok := parseIP(strings.TrimSpace(vals[0])); ok && len(vals) == 1 {
			return ip.String()
		}
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		ip, ok := parseIP(strings.TrimSpace(hops[i]))
		if !ok {
			return peer.String()
		}
		if !s.trustedProxy(ip) {
			return ip.String()
		}
	}
	return peer.String()
}

// parseIP accepts a plain IPv4 or IPv6 address (no zone, no port).
func parseIP(v string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(v)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

func (s *server) trustedProxy(ip netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseTrustedProxies reads --trusted-proxies: a comma-separated list of
// CIDR prefixes or single addresses ("" for none).
func parseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			ip, ok := parseIP(f)
			if !ok {
				return nil, fmt.Errorf("%w: %q is not an IP address or CIDR prefix", errBadProxy, f)
			}
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%w: %q is not an IP address or CIDR prefix", errBadProxy, f)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// errBadProxy: --trusted-proxies holds something that is not an address or
// a prefix.
var errBadProxy = errors.New("--trusted-proxies")

// policyProblem is what a client is told when the lifetime policy refuses a
// request: the policy's own sentence, which names the rule and its limits,
// never a value the client sent.
func policyProblem(err error) string {
	_, rule, ok := strings.Cut(err.Error(), apitoken.ErrPolicy.Error()+": ")
	if !ok {
		return apitoken.ErrPolicy.Error()
	}
	return rule
}
