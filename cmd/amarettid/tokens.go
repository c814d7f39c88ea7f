package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/verifier"
)

// tokenRight is the right a token needs to manage API tokens, when it
// restricts rights at all.
const tokenRight = "tokens"

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
// for the given rights, answering the request itself when it fails.
func (s *server) caller(w http.ResponseWriter, r *http.Request, handler string, rights ...string) (verifier.Identity, string, bool) {
	token, err := s.requestToken(r, "")
	if err != nil {
		s.denyTokenless(w, r, handler, err, false)
		return verifier.Identity{}, "", false
	}
	id, err := s.v.Verify(r.Context(), token, caveat.Request{Method: r.Method, Path: r.URL.Path, Rights: rights})
	if err != nil {
		s.deny(w, r, handler, err, verifier.ProblemFor(err))
		return verifier.Identity{}, "", false
	}
	return id, token, true
}

func isAdmin(id verifier.Identity) bool {
	return id.Role == epoch.RoleAdmin || id.Role == epoch.RoleSuperuser
}

func decodeBody(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

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
		apiError(w, http.StatusBadRequest, "invalid_request", "the body must be JSON: name, description, rights, endpoint, expires_in")
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
	secret, row, err := s.issuer.Create(r.Context(), apitoken.Request{
		EditorID: caller.EditorID, Name: body.Name, Description: body.Description, Rights: body.Rights, Endpoint: body.Endpoint, TTL: ttl, NoExpiry: never,
		Creator: caller.EditorID, Parent: &apitoken.Parent{Token: token, Identity: caller},
	})
	switch {
	case errors.Is(err, sqlite.ErrNameTaken):
		apiError(w, http.StatusConflict, "conflict", "you already have a live token of that name")
		return
	case errors.Is(err, apitoken.ErrRightNotAllowed):
		apiError(w, http.StatusForbidden, "insufficient_scope", err.Error())
		return
	case errors.Is(err, apitoken.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case err != nil:
		s.log.Error("creating an api token failed", "editor_id", caller.EditorID, "err", err)
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token could not be created")
		return
	}
	s.log.Info("api token created", "editor_id", caller.EditorID, "token_id", row.TokenID, "name", row.Name)
	writeJSON(w, http.StatusCreated, struct {
		Token string `json:"token"`
		apitoken.Row
	}{secret, s.createdRow(caller, row)})
}

// handleListTokens: GET /v1/tokens — the caller's; an admin may ask for
// ?editor_id=ID or ?editor_id=* (everyone's).
func (s *server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "tokens", tokenRight)
	if !ok {
		return
	}
	editor := caller.EditorID
	if q := r.URL.Query().Get("editor_id"); q != "" && q != caller.EditorID {
		if !isAdmin(caller) {
			apiError(w, http.StatusForbidden, "insufficient_scope", "only admins list other editors' tokens")
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
// tokens that expire within the window (everyone's, for an admin), to warn
// their owners.
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
		if t.EditorID == caller.EditorID || isAdmin(caller) {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// handleRevokeToken: DELETE /v1/tokens/{id} — the caller's own, or any for
// an admin. Someone else's token is "not found" to a non-admin.
func (s *server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "tokens", tokenRight)
	if !ok {
		return
	}
	id := r.PathValue("id")
	row, err := s.store.Token(r.Context(), id)
	if errors.Is(err, sqlite.ErrTokenNotFound) || err == nil && row.EditorID != caller.EditorID && !isAdmin(caller) {
		apiError(w, http.StatusNotFound, "not_found", "no such token")
		return
	}
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not answer")
		return
	}
	ed, row, err := s.store.RevokeToken(r.Context(), id)
	switch {
	case errors.Is(err, sqlite.ErrAlreadyRevoked):
		apiError(w, http.StatusConflict, "conflict", "the token was already revoked")
		return
	case err != nil:
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not make the change")
		return
	}
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
		apiError(w, http.StatusBadRequest, "invalid_request", "the body must be JSON: rights, ttl")
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
		apiError(w, http.StatusForbidden, "insufficient_scope", err.Error())
		return
	case errors.Is(err, apitoken.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case err != nil:
		s.log.Error("exchange failed", "token_id", parent.TokenID, "err", err)
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "could not mint")
		return
	}
	s.tracker.Seen(parent.TokenID, clientAddr(r))
	writeJSON(w, http.StatusCreated, map[string]any{"token": m.Token, "token_id": m.TokenID, "expires": m.Expires, "parent_token_id": parent.TokenID})
}

// clientAddr is where a request came from, for last-use records: the
// address a proxy reports (X-Real-IP, then the first X-Forwarded-For), or
// the connection's peer.
func clientAddr(r *http.Request) string {
	if ip := r.Header.Get("X-Real-IP"); ip != "" {
		return ip
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		return strings.TrimSpace(first)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
