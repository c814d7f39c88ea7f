package main

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/epoch"
)

// handleRotateToken: POST /v1/tokens/{id}/rotate {grace} — replaces one of
// the caller's own API tokens (apitoken.Issuer.Rotate): a new token with
// the same name, rights, endpoint and expiry, created under the rules of
// POST /v1/tokens from the caller's token; the old one works until the new
// one is first used or the grace (default 24h) ends. The new token keeps
// every caveat the old one recorded; the old token may rotate itself (its
// successor does not die with it). Another editor's token is "not found",
// as for DELETE.
func (s *server) handleRotateToken(w http.ResponseWriter, r *http.Request) {
	caller, token, ok := s.caller(w, r, "tokens", tokenRight)
	if !ok {
		return
	}
	var body struct {
		Grace string `json:"grace"`
	}
	if err := decodeBody(r, &body); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", bodyProblem(err)+" (the body is JSON: grace)")
		return
	}
	grace, ok := positiveDuration(body.Grace)
	if !ok || grace > apitoken.MaxGrace {
		apiError(w, http.StatusBadRequest, "invalid_request", "grace must be a positive duration such as 24h, at most "+apitoken.MaxGrace.String())
		return
	}
	id := r.PathValue("id")
	row, err := s.store.Token(r.Context(), id)
	if errors.Is(err, epoch.ErrTokenNotFound) || err == nil && row.EditorID != caller.EditorID {
		apiError(w, http.StatusNotFound, "not_found", "no such token")
		return
	}
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not answer")
		return
	}
	secret, row, old, err := s.issuer.Rotate(r.Context(), apitoken.RotateRequest{
		TokenID: id, Grace: grace, Creator: caller.EditorID, Parent: &apitoken.Parent{Token: token, Identity: caller},
	})
	switch {
	case errors.Is(err, epoch.ErrAlreadyRotated):
		apiError(w, http.StatusConflict, "conflict", "the token was already rotated")
		return
	case errors.Is(err, apitoken.ErrCaveatsUnknown):
		apiError(w, http.StatusConflict, "conflict", "the token predates the recording of its restrictions: rotate it with the token itself, or create a new one")
		return
	case errors.Is(err, apitoken.ErrNotRotatable):
		apiError(w, http.StatusConflict, "conflict", "only a live token is rotated")
		return
	case errors.Is(err, epoch.ErrTooManyTokens):
		apiError(w, http.StatusConflict, "too_many_tokens", strings.TrimPrefix(err.Error(), epoch.ErrTooManyTokens.Error()+": "))
		return
	case errors.Is(err, apitoken.ErrRightNotAllowed):
		apiError(w, http.StatusForbidden, "insufficient_scope", "the token's rights are not all allowed to the calling token")
		return
	case errors.Is(err, apitoken.ErrPolicy):
		apiError(w, http.StatusBadRequest, "invalid_request", policyProblem(err))
		return
	case errors.Is(err, apitoken.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", "the token cannot be rotated by this caller")
		return
	case err != nil:
		s.log.Error("rotating an api token failed", "editor_id", caller.EditorID, "token_id", id, "err", err)
		apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token could not be rotated")
		return
	}
	s.log.Info("api token rotated", "editor_id", caller.EditorID, "token_id", old.TokenID, "successor", row.TokenID)
	if err := s.store.RecordAudit(r.Context(), audit.TokenRotated(audit.Caller(caller.EditorID, caller.TokenID, s.clientAddr(r)), old, row.TokenID, old.GraceUntil, time.Now())); err != nil {
		s.log.Error("action done but not recorded in the audit trail", "action", string(epoch.AuditTokenRotated), "editor_id", old.EditorID, "token_id", old.TokenID, "err", err)
	}
	writeJSON(w, http.StatusCreated, struct {
		Token string `json:"token"`
		apitoken.Row
		Old apitoken.Row `json:"old"`
	}{secret, s.createdRow(caller, row), apitoken.NewRow(old, epoch.Editor{ID: caller.EditorID, Role: caller.Role, Active: true}, s.issuer.Policy(), time.Now())})
}
