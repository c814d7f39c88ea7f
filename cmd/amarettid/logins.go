package main

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/verifier"
)

// loginsRight is the right of a web frontend's service token: it finds,
// creates and links the editors of the identities users log in with, and
// nothing else when the token lists only it (rights = admin:logins). Like
// every "admin:" right, only admin and superuser editors hold it.
const loginsRight = "admin:logins"

// The login endpoints are what a stateless web frontend asks amarettid for
// (it does OIDC itself, then an authenticated lookup here; fatcat-web's
// design). They are admin endpoints: with --admin-listen they are served
// there, and every one needs loginsRight.
//
//	GET    /v1/admin/logins?provider=P&subject=S   the editor linked to the identity (404: none)
//	POST   /v1/admin/logins {provider, subject, username}
//	                                               find the editor, or create and link one (201)
//	GET    /v1/admin/editors/{id}/links            the editor's identities
//	POST   /v1/admin/editors/{id}/links {provider, subject}
//	                                               link another identity (409: linked to someone else)
//	DELETE /v1/admin/editors/{id}/links?provider=P unlink the editor's identity at P
func (s *server) loginRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/admin/logins", s.handleLookupLogin)
	mux.HandleFunc("POST /v1/admin/logins", s.handleLogin)
	mux.HandleFunc("GET /v1/admin/editors/{id}/links", s.handleLinks)
	mux.HandleFunc("POST /v1/admin/editors/{id}/links", s.handleLink)
	mux.HandleFunc("DELETE /v1/admin/editors/{id}/links", s.handleUnlink)
}

// errLinkedElsewhere is the code of a 409: the identity is another editor's.
const errLinkedElsewhere = "linked_to_another_editor"

// errProviderLinked is the code of a 409: the editor already has another
// identity at that provider (one per provider per editor).
const errProviderLinked = "provider_already_linked"

// errRoleNotBelow is the code of a 403: the caller may link and unlink the
// identities only of editors whose role is below its own.
const errRoleNotBelow = "editor_role_not_below_caller"

// mayRelink answers whether the caller may link or unlink the login
// identities of editor id, answering the request itself when not: an
// unknown editor is a 404, a store error a 503, and an editor whose role
// is not below the caller's a 403. Nothing a token creates is more
// powerful than that token: an identity linked to an editor is a login as
// that editor through the frontend, so the frontend's service token (an
// admin's, limited to admin:logins) manages the identities of editors and
// bots only, never of an admin (its own editor included) or a superuser,
// and a superuser's those of admins too. The identities of admins and
// superusers are the operator's (amaretti editor link, unlink). Roles never
// change once an editor exists, so the check cannot go stale before the
// change it guards.
func (s *server) mayRelink(w http.ResponseWriter, r *http.Request, action string, caller verifier.Identity, id string) bool {
	return s.outranks(w, r, "logins", action, caller, id,
		"the identities of an editor whose role is not below the caller's are linked and unlinked by an operator (amaretti editor link, unlink)")
}

// strictQuery reads a query of exactly the names given, each once.
func strictQuery(raw string, names ...string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errors.New("the query is not readable")
	}
	for k, vs := range q {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		switch {
		case !known:
			return nil, errors.New("unknown query parameter (this endpoint takes " + strings.Join(names, ", ") + ")")
		case len(vs) > 1:
			return nil, errors.New("a query parameter is repeated")
		}
	}
	return q, nil
}

// linkProblem is the client's text of an epoch.ErrInvalidLink: the store's
// fixed sentence, naming the field and the rule, never the value.
func linkProblem(err error) string {
	return strings.TrimPrefix(err.Error(), epoch.ErrInvalidLink.Error()+": ")
}

// loginAllowed counts an allowed call and logs it: the action, the caller,
// the editor and the provider — never the subject (a user's id at the
// provider, which the log has no need for).
func (s *server) loginAllowed(_ *http.Request, action, by, tokenID, editorID, provider string, extra ...any) {
	s.m.verifications.WithLabelValues("logins", "allowed").Inc()
	s.log.Info("login link", append([]any{"action", action, "by", by, "token_id", tokenID, "editor_id", editorID, "provider", provider}, extra...)...)
}

// storeFailed answers 503 for a store error and logs it.
func (s *server) storeFailed(w http.ResponseWriter, action string, err error) {
	s.log.Error("store failed", "action", action, "err", err)
	apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store could not answer")
}

// handleLookupLogin: GET /v1/admin/logins?provider=P&subject=S.
func (s *server) handleLookupLogin(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "logins", loginsRight)
	if !ok {
		return
	}
	q, err := strictQuery(r.URL.RawQuery, "provider", "subject")
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	provider, subject := q.Get("provider"), q.Get("subject")
	if err := epoch.CheckLink(provider, subject); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", linkProblem(err))
		return
	}
	e, err := s.store.LinkedEditor(r.Context(), provider, subject)
	switch {
	case errors.Is(err, epoch.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", "no editor is linked to this identity")
		return
	case err != nil:
		s.storeFailed(w, "lookup", err)
		return
	}
	s.loginAllowed(r, "lookup", caller.EditorID, caller.TokenID, e.ID, provider)
	writeJSON(w, http.StatusOK, map[string]any{"editor": editorJSON(e)})
}

// handleLogin: POST /v1/admin/logins {provider, subject, username} — the
// editor linked to the identity or, on its first login, a new editor
// (username from the suggestion, with a suffix when taken) linked to it, in
// one transaction of the store: concurrent first logins of one identity
// make one editor. 201 when it was created, 200 when it existed. Whether a
// locked or deactivated editor may log in is the frontend's to decide
// (the answer says "locked" and "active").
func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "logins", loginsRight)
	if !ok {
		return
	}
	var body struct {
		Provider string `json:"provider"`
		Subject  string `json:"subject"`
		Username string `json:"username"`
	}
	if err := decodeBody(r, &body); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", bodyProblem(err)+" (the body is JSON: provider, subject, username)")
		return
	}
	if err := epoch.CheckLink(body.Provider, body.Subject); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", linkProblem(err))
		return
	}
	e, created, err := s.store.Login(r.Context(), body.Provider, body.Subject, body.Username)
	switch {
	case errors.Is(err, epoch.ErrInvalidLink):
		apiError(w, http.StatusBadRequest, "invalid_request", linkProblem(err))
		return
	case err != nil:
		s.storeFailed(w, "login", err)
		return
	}
	s.loginAllowed(r, "login", caller.EditorID, caller.TokenID, e.ID, body.Provider, "created", created)
	if created {
		// The store creates and links in one transaction; both are recorded.
		s.record(r, caller, epoch.AuditEditorCreated, audit.Target{EditorID: e.ID, Detail: "first login"})
		s.record(r, caller, epoch.AuditEditorLinked, audit.Target{EditorID: e.ID, Detail: "provider " + body.Provider})
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"editor": editorJSON(e), "created": created})
}

// editorPath reads the {id} of an editor path: an id that cannot be an
// editor's is unknown (404) without asking the store.
func editorPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !caveat.ValidEditorID(id) {
		apiError(w, http.StatusNotFound, "not_found", "unknown editor")
		return "", false
	}
	return id, true
}

// handleLinks: GET /v1/admin/editors/{id}/links — the editor's identities,
// by provider.
func (s *server) handleLinks(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "logins", loginsRight)
	if !ok {
		return
	}
	id, ok := editorPath(w, r)
	if !ok {
		return
	}
	if _, err := s.store.Editor(r.Context(), id); errors.Is(err, epoch.ErrNotFound) {
		apiError(w, http.StatusNotFound, "not_found", "unknown editor")
		return
	} else if err != nil {
		s.storeFailed(w, "links", err)
		return
	}
	links, err := s.store.Links(r.Context(), id)
	if err != nil {
		s.storeFailed(w, "links", err)
		return
	}
	if links == nil {
		links = []epoch.Link{}
	}
	s.loginAllowed(r, "links", caller.EditorID, caller.TokenID, id, "")
	writeJSON(w, http.StatusOK, map[string]any{"links": links})
}

// handleLink: POST /v1/admin/editors/{id}/links {provider, subject} — links
// another identity to an existing editor ("add another account"): 201 and
// the link; 200 when it is linked to this editor already; 409
// linked_to_another_editor when it is someone else's, 409
// provider_already_linked when the editor has another identity at that
// provider; 404 for an unknown editor.
func (s *server) handleLink(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "logins", loginsRight)
	if !ok {
		return
	}
	id, ok := editorPath(w, r)
	if !ok {
		return
	}
	var body struct {
		Provider string `json:"provider"`
		Subject  string `json:"subject"`
	}
	if err := decodeBody(r, &body); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", bodyProblem(err)+" (the body is JSON: provider, subject)")
		return
	}
	if err := epoch.CheckLink(body.Provider, body.Subject); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", linkProblem(err))
		return
	}
	if !s.mayRelink(w, r, "link", caller, id) {
		return
	}
	l, err := s.store.Link(r.Context(), id, body.Provider, body.Subject)
	switch {
	case err == nil:
		s.loginAllowed(r, "link", caller.EditorID, caller.TokenID, id, body.Provider)
		s.record(r, caller, epoch.AuditEditorLinked, audit.Target{EditorID: id, Detail: "provider " + body.Provider})
		writeJSON(w, http.StatusCreated, l)
		return
	case errors.Is(err, epoch.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", "unknown editor")
		return
	case errors.Is(err, epoch.ErrInvalidLink):
		apiError(w, http.StatusBadRequest, "invalid_request", linkProblem(err))
		return
	case !errors.Is(err, epoch.ErrLinked):
		s.storeFailed(w, "link", err)
		return
	}
	// Linked already: to whom?
	owner, err := s.store.LinkedEditor(r.Context(), body.Provider, body.Subject)
	switch {
	case err == nil && owner.ID == id:
		links, err := s.store.Links(r.Context(), id)
		if err != nil {
			s.storeFailed(w, "link", err)
			return
		}
		for _, l := range links {
			if l.Provider == body.Provider && l.Subject == body.Subject {
				writeJSON(w, http.StatusOK, l)
				return
			}
		}
		s.storeFailed(w, "link", errors.New("a link vanished while it was read"))
	case err == nil:
		apiError(w, http.StatusConflict, errLinkedElsewhere, "this identity is already linked to another editor")
	case errors.Is(err, epoch.ErrNotFound):
		apiError(w, http.StatusConflict, errProviderLinked, "the editor already has another identity at this provider (unlink it first)")
	default:
		s.storeFailed(w, "link", err)
	}
}

// handleUnlink: DELETE /v1/admin/editors/{id}/links?provider=P — removes the
// editor's identity at P (404 when there is none). Whether an editor may
// lose its last identity is the frontend's to decide.
func (s *server) handleUnlink(w http.ResponseWriter, r *http.Request) {
	caller, _, ok := s.caller(w, r, "logins", loginsRight)
	if !ok {
		return
	}
	id, ok := editorPath(w, r)
	if !ok {
		return
	}
	q, err := strictQuery(r.URL.RawQuery, "provider")
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	provider := q.Get("provider")
	if err := epoch.CheckLink(provider, "x"); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", linkProblem(err))
		return
	}
	if !s.mayRelink(w, r, "unlink", caller, id) {
		return
	}
	l, err := s.store.Unlink(r.Context(), id, provider)
	switch {
	case errors.Is(err, epoch.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", "the editor has no identity at this provider")
		return
	case err != nil:
		s.storeFailed(w, "unlink", err)
		return
	}
	s.loginAllowed(r, "unlink", caller.EditorID, caller.TokenID, id, provider)
	s.record(r, caller, epoch.AuditEditorUnlinked, audit.Target{EditorID: id, Detail: "provider " + provider})
	writeJSON(w, http.StatusOK, l)
}
