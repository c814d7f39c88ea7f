package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/verifier"
)

// auditRight is the right of GET /v1/admin/audit; like every "admin:"
// right, only admin and superuser editors hold it.
const auditRight = "admin:audit"

// record appends the audit event of an action a caller's request has just
// committed: by the caller's editor and token, from the request's validated
// address (clientAddr). The store commits the action first, so a failure
// here leaves it done and unrecorded: it is logged, never answered as an
// error.
func (s *server) record(r *http.Request, caller verifier.Identity, action epoch.AuditAction, t audit.Target) {
	s.recordAs(r.Context(), audit.Caller(caller.EditorID, caller.TokenID, s.clientAddr(r)), action, t)
}

func (s *server) recordAs(ctx context.Context, by audit.Actor, action epoch.AuditAction, t audit.Target) {
	if err := s.store.RecordAudit(ctx, by.Event(action, t, time.Now())); err != nil {
		s.log.Error("action done but not recorded in the audit trail", "action", string(action), "editor_id", t.EditorID, "token_id", t.TokenID, "err", err)
	}
}

// refused notes a refused use of a registered API token for the audit
// trail (audit.Refusals: batched, rate-limited per token, off the verify
// path's allowed branch).
func (s *server) refused(r *http.Request, err error) {
	if s.refusals == nil {
		return
	}
	if tokenID, editorID, reason, ok := audit.Refused(err); ok {
		s.refusals.Seen(tokenID, editorID, reason, s.clientAddr(r))
	}
}

// handleAudit: GET /v1/admin/audit?editor_id=&token_id=&action=&since=&before=&limit=
// — the audit trail, newest first, a page at a time: "next" is the
// before= of the next page (absent on the last). Admin and superuser
// editors only, with admin:audit when the token restricts rights.
func (s *server) handleAudit(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "audit", auditRight)
	if !ok {
		return
	}
	q, err := strictQuery(r.URL.RawQuery, "editor_id", "token_id", "action", "since", "before", "limit")
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	f := epoch.AuditFilter{EditorID: q.Get("editor_id"), TokenID: q.Get("token_id"), Action: epoch.AuditAction(q.Get("action")), Limit: 100}
	if v := q.Get("since"); v != "" {
		// An RFC 3339 time, or a duration back from now, as the CLI's
		// --since.
		if d, derr := time.ParseDuration(v); derr == nil && d > 0 {
			f.Since = time.Now().Add(-d)
		} else if f.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request", "since must be an RFC 3339 time or a positive duration such as 24h")
			return
		}
	}
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before <= 0 {
			apiError(w, http.StatusBadRequest, "invalid_request", "before must be the next cursor of a previous page")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > epoch.MaxAuditPage {
			apiError(w, http.StatusBadRequest, "invalid_request", "limit must be 1 to 1000")
			return
		}
	}
	if f.EditorID != "" && !caveat.ValidEditorID(f.EditorID) || f.TokenID != "" && len(f.TokenID) > 64 || len(f.Action) > 64 {
		writeJSON(w, http.StatusOK, map[string]any{"events": []epoch.AuditEvent{}})
		return
	}
	events, next, err := s.store.AuditEvents(r.Context(), f)
	if err != nil {
		s.storeFailed(w, "audit", err)
		return
	}
	if events == nil {
		events = []epoch.AuditEvent{}
	}
	s.m.verifications.WithLabelValues("audit", "allowed").Inc()
	s.log.Info("audit trail read", "by", caller.EditorID, "token_id", caller.TokenID, "events", len(events))
	out := map[string]any{"events": events}
	if next != 0 {
		out["next"] = strconv.FormatInt(next, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// pruneAudit deletes audit events older than retention every interval,
// until ctx ends (--audit-retention; 0 keeps them forever).
func (s *server) pruneAudit(ctx context.Context, retention, interval time.Duration) {
	if retention <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := time.Now()
		n, err := s.store.PruneAudit(ctx, now.Add(-retention), audit.Daemon().Event(epoch.AuditPruned, audit.Target{}, now))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("pruning the audit trail failed", "err", err)
		case n > 0:
			s.log.Info("audit trail pruned", "events", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
