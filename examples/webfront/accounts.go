package main

import (
	"errors"
	"net/http"
	"strings"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
)

// devProviders are the providers the development login simulates: two, so
// that "add another account" can be tried without an OIDC provider.
var devProviders = []string{devProvider, "dev2"}

// devProviderOf reads the development login's provider field: "" is dev.
func devProviderOf(v string) (string, bool) {
	if v == "" {
		return devProvider, true
	}
	for _, p := range devProviders {
		if v == p {
			return p, true
		}
	}
	return "", false
}

// accountsPage is the accounts page's own data.
type accountsPage struct {
	Links        []epoch.Link
	DevProviders []string // the development providers not linked yet
	OIDCLinked   bool     // the OIDC provider is linked already
	// ByOperator: the user's role is not below the service token's (an
	// admin's), so amarettid links no identity to them for this frontend;
	// the operator does (amaretti editor link). No forms are shown.
	ByOperator bool
}

// handleAccounts: GET /accounts — the identities the user logs in with,
// and forms to add another (one per provider).
func (a *app) handleAccounts(w http.ResponseWriter, r *http.Request, u user, _ string) {
	a.renderAccounts(w, r, http.StatusOK, page{Title: "Accounts", User: &u, Notice: accountNotices[r.URL.Query().Get("m")]})
}

var accountNotices = map[string]string{
	"linked": "The account was linked: logging in with it reaches this editor.",
}

// renderAccounts fills the page from amarettid (one request: the editor's
// links) and renders it.
func (a *app) renderAccounts(w http.ResponseWriter, r *http.Request, status int, p page) {
	links, err := a.daemon.links(r.Context(), p.User.ID)
	if err != nil {
		a.log.Error("listing links failed", "editor_id", p.User.ID, "err", err)
		p.Error = firstNonEmpty(p.Error, "Your accounts cannot be listed right now. Try again in a moment.")
		status = max(status, http.StatusServiceUnavailable)
	}
	ap := &accountsPage{Links: links, ByOperator: !epoch.RoleAdmin.Outranks(p.User.Role)}
	linked := map[string]bool{}
	for _, l := range links {
		linked[l.Provider] = true
	}
	for _, prov := range devProviders {
		if a.dev && !linked[prov] && !ap.ByOperator {
			ap.DevProviders = append(ap.DevProviders, prov)
		}
	}
	ap.OIDCLinked = a.oidc != nil && linked[a.oidc.issuer]
	p.Accounts = ap
	a.render(w, r, status, "accounts", p)
}

// handleLinkDev: POST /accounts/link/dev {provider, username} — links a
// development identity to the logged-in editor (the development login's
// stand-in for signing in at a second provider).
func (a *app) handleLinkDev(w http.ResponseWriter, r *http.Request, u user, _ string) {
	if !a.dev {
		http.NotFound(w, r)
		return
	}
	p := page{Title: "Accounts", User: &u}
	name := strings.TrimSpace(r.PostFormValue("username"))
	provider, ok := devProviderOf(r.PostFormValue("provider"))
	if !ok || !caveat.ValidUsername(name) {
		p.Error = "Choose dev or dev2 and a username of 1 to 64 letters, digits, '_', '.' or '-'."
		a.renderAccounts(w, r, http.StatusBadRequest, p)
		return
	}
	a.linkIdentity(w, r, u, identity{Provider: provider, Subject: strings.ToLower(name), Username: name})
}

// handleLinkOIDCStart: POST /accounts/link/oidc — signs in at the OIDC
// provider to link that identity to the logged-in editor. It is a POST,
// which passes cross-origin protection, so that another site cannot start
// a flow that links the attacker's identity to the victim's editor; the
// callback links only for the session that started it (sessionBinding).
func (a *app) handleLinkOIDCStart(w http.ResponseWriter, r *http.Request, u user, token string) {
	if a.oidc == nil {
		http.NotFound(w, r)
		return
	}
	a.oidc.start(w, r, u.ID, token)
}

// linkIdentity has amarettid link id to the user's editor and says how it
// went: an identity already linked to someone else is refused.
func (a *app) linkIdentity(w http.ResponseWriter, r *http.Request, u user, id identity) {
	err := a.daemon.link(r.Context(), u.ID, id)
	p := page{Title: "Accounts", User: &u}
	var de *daemonError
	switch status := statusOf(err); {
	case err == nil:
		a.log.Info("identity linked", "editor_id", u.ID, "provider", id.Provider)
		http.Redirect(w, r, "/accounts?m=linked", http.StatusSeeOther)
		return
	case status == http.StatusConflict && asDaemonError(err, &de) && de.Code == errLinkedElsewhere:
		p.Error = "That " + providerLabel(a, id.Provider) + " account is already linked to another user, so it was not linked to yours. Log in with it and log out everywhere, or ask an administrator."
	case status == http.StatusConflict:
		p.Error = "You already have a " + providerLabel(a, id.Provider) + " account linked. One account per provider."
	case status == http.StatusForbidden && asDaemonError(err, &de) && de.Code == errRoleNotBelow:
		// The service token links identities only to editors below its
		// own role (admin): never to an administrator or a superuser.
		a.log.Info("link refused: the editor's role is not below the service token's", "editor_id", u.ID, "provider", id.Provider)
		p.Error = "Accounts of administrators are linked by an operator (amaretti editor link), not from this page."
	case status == http.StatusNotFound:
		a.endSession(w, r, "ended")
		return
	case status == http.StatusBadRequest:
		p.Error = "That account cannot be linked."
	default:
		a.log.Error("linking failed", "editor_id", u.ID, "provider", id.Provider, "err", err)
		p.Error = "The account could not be linked right now. Try again in a moment."
		a.renderAccounts(w, r, http.StatusServiceUnavailable, p)
		return
	}
	a.renderAccounts(w, r, statusOf(err), p)
}

// providerLabel names a provider for a message.
func providerLabel(a *app, provider string) string {
	if a.oidc != nil && provider == a.oidc.issuer {
		return a.oidc.label
	}
	return provider
}

// asDaemonError is errors.As for a *daemonError.
func asDaemonError(err error, de **daemonError) bool {
	return errors.As(err, de)
}
