package main

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/session"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

const (
	callbackPath = "/login/oidc/callback"
	// expiringSoon is how close to its expiry a token is flagged.
	expiringSoon = 7 * 24 * time.Hour
)

// app is the web frontend. It keeps no state and opens no database: who is
// logged in is the macaroon in the session cookie, which the app mints
// after a login (with the root key it reads from a key directory) and has
// amarettid verify on every request; editors are found, created and linked
// by amarettid, on the frontend's service token.
type app struct {
	minter *macaroon.Minter
	daemon *daemonClient // everything else: logins, verification, tokens
	oidc   *oidcLogin    // nil: not configured
	dev    bool          // the development login is on
	ttl    time.Duration
	policy apitoken.Policy // what the tokens page offers
	log    *slog.Logger
	pages  map[string]*template.Template
	now    func() time.Time
}

// config is what main hands to newApp.
type config struct {
	Minter    *macaroon.Minter
	DaemonURL string
	// ServiceToken is the frontend's token for amarettid's login
	// endpoints: an admin editor's, limited to rights = admin:logins.
	ServiceToken string
	OIDC         *oidcLogin
	DevLogin     bool
	SessionTTL   time.Duration
	// Policy is amarettid's lifetime policy, as far as the tokens page
	// needs it: the lifetimes it offers are at most MaxAPI, and "never"
	// only when AllowNoExpiry (amarettid refuses it otherwise). The zero
	// value is apitoken.DefaultPolicy().
	Policy apitoken.Policy
	// TrustedOrigins are origins besides the request's own host that may
	// post forms (the public origin, when a proxy rewrites Host).
	TrustedOrigins []string
	// AllowedHosts are the Host header values the frontend answers (see
	// allowedHosts), compared case-insensitively. Every other request is
	// refused with 421 before anything else reads it: a DNS rebinding
	// page, whose requests are same-origin in the browser's eyes, names
	// the attacker's host. It must not be empty.
	AllowedHosts []string
	Log          *slog.Logger
}

// errNoAllowedHosts: a frontend that answers no Host answers nothing.
var errNoAllowedHosts = errors.New("webfront: no allowed Host values")

func newApp(c config) (*app, http.Handler, error) {
	a := &app{minter: c.Minter, daemon: newDaemonClient(c.DaemonURL, c.ServiceToken),
		oidc: c.OIDC, dev: c.DevLogin, ttl: c.SessionTTL, policy: c.Policy, log: c.Log, now: time.Now}
	if a.policy == (apitoken.Policy{}) {
		a.policy = apitoken.DefaultPolicy()
	}
	if err := a.parseTemplates(); err != nil {
		return nil, nil, err
	}
	if len(c.AllowedHosts) == 0 {
		return nil, nil, errNoAllowedHosts
	}
	hosts := make(map[string]bool, len(c.AllowedHosts))
	for _, h := range c.AllowedHosts {
		hosts[strings.ToLower(h)] = true
	}
	// Every state-changing request (the forms are POSTs) must come from
	// this origin: Sec-Fetch-Site, or Origin against Host.
	cop := http.NewCrossOriginProtection()
	for _, o := range c.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, nil, err
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Client values are clipped and escaped (clip), and the path is
		// left out: a token pasted there would reach the log.
		a.log.Warn("cross-origin request refused", "method", clip(r.Method, 16),
			"origin", clip(r.Header.Get("Origin"), 64), "sec_fetch_site", clip(r.Header.Get("Sec-Fetch-Site"), 32))
		a.render(w, r, http.StatusForbidden, "error", page{Title: "Refused", Error: "This form was sent from another site, so it was refused."})
	}))
	// The Host check comes first: CrossOriginProtection compares Origin
	// with Host, so it only means something once Host is known to be ours.
	return a, a.logRequests(securityHeaders(a.checkHost(hosts, cop.Handler(a.routes())))), nil
}

// checkHost refuses, with 421 Misdirected Request, every request whose Host
// is not one of hosts (lower case). The refused value is logged clipped and
// escaped: it is the client's; the path is not logged.
func (a *app) checkHost(hosts map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hosts[strings.ToLower(r.Host)] {
			a.log.Warn("request refused: unknown Host", "method", clip(r.Method, 16), "host", clip(r.Host, 64))
			http.Error(w, "421 misdirected request: this server does not answer for that host name", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clip returns at most n bytes of s for a log line, each byte outside
// printable ASCII as '?', and "..." when s was longer.
func clip(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i == n {
			b.WriteString("...")
			break
		}
		if c := s[i]; c < 0x20 || c > 0x7e {
			b.WriteByte('?')
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", a.authed(a.handleHome))
	mux.HandleFunc("GET /login", a.handleLoginPage)
	mux.HandleFunc("POST /login/dev", a.handleDevLogin)
	mux.HandleFunc("GET /login/oidc", a.handleOIDCStart)
	mux.HandleFunc("GET "+callbackPath, a.handleOIDCCallback)
	mux.HandleFunc("POST /logout", a.handleLogout)
	mux.HandleFunc("POST /logout/everywhere", a.authed(a.handleLogoutEverywhere))
	mux.HandleFunc("GET /tokens", a.authed(a.handleTokens))
	mux.HandleFunc("POST /tokens", a.authed(a.handleCreateToken))
	mux.HandleFunc("POST /tokens/{id}/revoke", a.authed(a.handleRevokeToken))
	mux.HandleFunc("POST /tokens/{id}/rotate", a.authed(a.handleRotateToken))
	mux.HandleFunc("GET /accounts", a.authed(a.handleAccounts))
	mux.HandleFunc("POST /accounts/link/dev", a.authed(a.handleLinkDev))
	mux.HandleFunc("POST /accounts/link/oidc", a.authed(a.handleLinkOIDCStart))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

// securityHeaders: no inline script or style, no framing, no referrer
// (URLs never hold tokens, but there is no reason to leak paths either), and
// pages are never cached (they name the user; one shows a secret).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10) // the forms are small
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// logRequests logs method, path (never the query or any header: no token
// ever reaches a log line), status and duration.
func (a *app) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		// The route the request matched, never the path the client sent
		// (a token pasted into a URL would reach the log).
		route := r.Pattern
		if route == "" {
			route = "none"
		}
		a.log.Info("request", "method", clip(r.Method, 16), "route", route, "status", sw.status, "ms", time.Since(start).Milliseconds())
	})
}

// user is the logged-in editor as a page shows it: all of it from the
// session token, none from a database.
type user struct {
	ID       string
	Username string
	Role     epoch.Role
	Expires  time.Time
}

// page is what every template receives.
type page struct {
	Title    string
	User     *user
	Notice   string
	Error    string
	Dev      bool   // the development login is on
	OIDC     string // label of the OIDC login, "" when off
	Tokens   *tokensPage
	Created  *createdToken
	Accounts *accountsPage
}

// tokensPage is the tokens page's own data.
type tokensPage struct {
	Live     []tokenView
	Inactive []tokenView
	Expiring []tokenView
	Form     newToken
	Rights   string // the form's rights field as typed
	Expiry   string // the form's expiry choice
}

// tokenView is one row of the tokens table; its Status is amarettid's.
type tokenView struct {
	tokenRow
	ExpiresSoon bool
}

// authedHandler is a handler for a logged-in user; token is the session
// token, for calls to amarettid on the user's behalf.
type authedHandler func(w http.ResponseWriter, r *http.Request, u user, token string)

// authed verifies the session cookie and calls h, or sends the browser to
// the login page (clearing a cookie that no longer verifies).
func (a *app) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(session.DefaultName)
		if err != nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		id, err := a.daemon.verify(r.Context(), c.Value, r.Method, r.URL.Path)
		if err != nil {
			if status := statusOf(err); status == 0 || status >= 500 || status == http.StatusTooManyRequests {
				// Keep the cookie: the session may be fine once amarettid answers.
				a.log.Error("session not verified", "path", r.URL.Path, "err", err)
				a.render(w, r, http.StatusServiceUnavailable, "error", page{Title: "Unavailable", Error: "Sessions cannot be checked right now. Try again in a moment."})
				return
			}
			var de *daemonError
			errors.As(err, &de)
			a.log.Info("session refused", "path", r.URL.Path, "status", de.Status, "reason", de.Description)
			a.endSession(w, r, "ended")
			return
		}
		h(w, r, user{ID: id.EditorID, Username: firstNonEmpty(id.Username, id.EditorID), Role: id.Role, Expires: id.Expires}, c.Value)
	}
}

var notices = map[string]string{
	"out":        "You are logged out.",
	"everywhere": "You are logged out everywhere: every session and API token you had stopped working.",
	"ended":      "Your session has ended. Please log in again.",
	"revoked":    "The token was revoked. It no longer works anywhere.",
}

// loginPage is the login page with the providers that are on.
func (a *app) loginPage(notice, errMsg string) page {
	p := page{Title: "Log in", Notice: notice, Error: errMsg, Dev: a.dev}
	if a.oidc != nil {
		p.OIDC = a.oidc.label
	}
	return p
}

func (a *app) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "login", a.loginPage(notices[r.URL.Query().Get("m")], ""))
}

func (a *app) handleDevLogin(w http.ResponseWriter, r *http.Request) {
	if !a.dev {
		http.NotFound(w, r)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("username"))
	if !caveat.ValidUsername(name) {
		a.loginFailed(w, r, http.StatusBadRequest, "A username is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.")
		return
	}
	provider, ok := devProviderOf(r.PostFormValue("provider"))
	if !ok {
		a.loginFailed(w, r, http.StatusBadRequest, "The development login has the providers dev and dev2.")
		return
	}
	// One subject per name, whatever its case.
	a.completeLogin(w, r, identity{Provider: provider, Subject: strings.ToLower(name), Username: name})
}

func (a *app) handleOIDCStart(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		http.NotFound(w, r)
		return
	}
	a.oidc.start(w, r, "", "")
}

func (a *app) handleOIDCCallback(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		http.NotFound(w, r)
		return
	}
	id, linkTo, binding, err := a.oidc.callback(w, r)
	if err != nil {
		a.log.Warn("OIDC login failed", "err", err)
		a.loginFailed(w, r, http.StatusBadRequest, "Logging in failed: "+strings.TrimPrefix(err.Error(), errLoginFailed.Error()+": "))
		return
	}
	if linkTo != "" {
		// "Add another account": the flow was started from the accounts
		// page (a same-origin POST) by this very session, which must still
		// verify: the editor id alone is no secret, so a state cookie
		// planted by someone else could name it.
		a.authed(func(w http.ResponseWriter, r *http.Request, u user, token string) {
			if u.ID != linkTo || !boundTo(binding, token) {
				a.render(w, r, http.StatusForbidden, "error", page{Title: "Not linked", User: &u, Error: "This sign-in was started by another session, so nothing was linked."})
				return
			}
			a.linkIdentity(w, r, u, id)
		})(w, r)
		return
	}
	a.completeLogin(w, r, id)
}

func (a *app) loginFailed(w http.ResponseWriter, r *http.Request, status int, msg string) {
	a.render(w, r, status, "login", a.loginPage("", msg))
}

// completeLogin finds (or, the first time, creates and links) the editor of
// an identity, mints a session macaroon carrying the username, and sets it
// as the session cookie.
func (a *app) completeLogin(w http.ResponseWriter, r *http.Request, id identity) {
	ctx := r.Context()
	e, created, err := a.daemon.login(ctx, id)
	if err != nil {
		a.log.Error("login: amarettid", "provider", id.Provider, "err", err)
		if status := statusOf(err); status == http.StatusBadRequest {
			a.loginFailed(w, r, http.StatusBadRequest, "This login identity cannot be used.")
			return
		}
		a.loginFailed(w, r, http.StatusServiceUnavailable, "Logging in is not possible right now. Try again in a moment.")
		return
	}
	switch {
	case !e.Active:
		a.loginFailed(w, r, http.StatusForbidden, "This account is deactivated.")
		return
	case e.Locked:
		a.loginFailed(w, r, http.StatusForbidden, "This account is locked.")
		return
	}
	// A session: marked in the minter's part of the chain, so that, exactly
	// as minted, it may create API tokens that outlive it.
	m, err := a.minter.Mint(ctx, e.ID, macaroon.WithUsername(e.Username), macaroon.WithKind(caveat.KindSession), macaroon.ExpiresIn(a.ttl))
	if err != nil {
		a.log.Error("login: mint", "editor_id", e.ID, "err", err)
		a.loginFailed(w, r, http.StatusServiceUnavailable, "Logging in is not possible right now. Try again in a moment.")
		return
	}
	a.log.Info("logged in", "editor_id", e.ID, "username", e.Username, "provider", id.Provider, "new_editor", created, "token_id", m.TokenID)
	session.Set(w, r, session.Cookie{Token: m.Token, Expires: m.Expires}, a.now())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) handleHome(w http.ResponseWriter, r *http.Request, u user, _ string) {
	a.render(w, r, http.StatusOK, "home", page{Title: "Account", User: &u})
}

// handleLogout forgets this browser's session. The token itself stays
// valid until it expires; "log out everywhere" revokes it.
func (a *app) handleLogout(w http.ResponseWriter, r *http.Request) {
	a.endSession(w, r, "out")
}

// handleLogoutEverywhere touches the user's epoch through amarettid, which
// announces it to every verifier: every session and API token of the user
// created until now stops working, this one included.
func (a *app) handleLogoutEverywhere(w http.ResponseWriter, r *http.Request, u user, token string) {
	if err := a.daemon.touchSelf(r.Context(), token); err != nil {
		if statusOf(err) == http.StatusUnauthorized {
			a.endSession(w, r, "ended")
			return
		}
		a.log.Error("log out everywhere failed", "editor_id", u.ID, "err", err)
		a.render(w, r, http.StatusServiceUnavailable, "error", page{Title: "Not logged out", User: &u,
			Error: "Logging out everywhere did not work, so your sessions and tokens are still valid. Try again in a moment."})
		return
	}
	a.log.Info("logged out everywhere", "editor_id", u.ID)
	a.endSession(w, r, "everywhere")
}

// endSession clears the session cookie and sends the browser to the login
// page with a notice (a key of notices). Used for log out, log out
// everywhere, and a session that no longer verifies — here, or at amarettid
// when it was revoked after this frontend's cached check.
func (a *app) endSession(w http.ResponseWriter, r *http.Request, notice string) {
	session.Clear(w, r, "", "")
	http.Redirect(w, r, "/login?m="+notice, http.StatusSeeOther)
}

func (a *app) handleTokens(w http.ResponseWriter, r *http.Request, u user, token string) {
	p := page{Title: "API tokens", User: &u, Notice: notices[r.URL.Query().Get("m")], Tokens: &tokensPage{Expiry: a.defaultExpiry()}}
	a.renderTokens(w, r, http.StatusOK, token, p)
}

// renderTokens fills the token lists from amarettid and renders the page.
func (a *app) renderTokens(w http.ResponseWriter, r *http.Request, status int, token string, p page) {
	rows, err := a.daemon.tokens(r.Context(), token)
	switch {
	case statusOf(err) == http.StatusUnauthorized:
		a.endSession(w, r, "ended")
		return
	case statusOf(err) == http.StatusForbidden:
		p.Error = firstNonEmpty(p.Error, "This session may not manage API tokens.")
		status = max(status, http.StatusForbidden)
	case err != nil:
		a.log.Error("listing tokens failed", "editor_id", p.User.ID, "err", err)
		p.Error = firstNonEmpty(p.Error, "Your tokens cannot be listed right now. Try again in a moment.")
		status = max(status, http.StatusServiceUnavailable)
	}
	now := a.now()
	for _, t := range rows {
		v := tokenView{tokenRow: t}
		if t.Live && !t.Expires.IsZero() && t.Expires.Sub(now) < expiringSoon {
			v.ExpiresSoon = true
			p.Tokens.Expiring = append(p.Tokens.Expiring, v)
		}
		if t.Live {
			p.Tokens.Live = append(p.Tokens.Live, v)
		} else {
			p.Tokens.Inactive = append(p.Tokens.Inactive, v)
		}
	}
	a.render(w, r, status, "tokens", p)
}

// expiryChoices are the lifetimes the form offers: those within the
// policy's maximum, the maximum itself, and "never" only when the policy
// allows tokens that never expire.
// defaultExpiry is the choice the form starts with: 30 days, or the
// policy's maximum when that is shorter.
func (a *app) defaultExpiry() string {
	if 720*time.Hour <= a.policy.MaxAPI {
		return "720h"
	}
	return a.policy.MaxAPI.String()
}

func (a *app) expiryChoices() []string {
	var out []string
	maxOffered := false
	for _, c := range []string{"168h", "720h", "2160h", "8760h"} {
		if d, _ := time.ParseDuration(c); d <= a.policy.MaxAPI {
			out = append(out, c)
			maxOffered = d == a.policy.MaxAPI
		}
	}
	if !maxOffered {
		out = append(out, a.policy.MaxAPI.String())
	}
	if a.policy.AllowNoExpiry {
		out = append(out, "never")
	}
	return out
}

func (a *app) handleCreateToken(w http.ResponseWriter, r *http.Request, u user, token string) {
	form := newToken{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Description: strings.TrimSpace(r.PostFormValue("description")),
		ExpiresIn:   r.PostFormValue("expires_in"),
	}
	rightsText := r.PostFormValue("rights")
	form.Rights = strings.FieldsFunc(rightsText, func(c rune) bool { return c == ',' || c == ' ' })
	p := page{Title: "API tokens", User: &u, Tokens: &tokensPage{Form: form, Rights: rightsText, Expiry: form.ExpiresIn}}
	if !slices.Contains(a.expiryChoices(), form.ExpiresIn) {
		p.Error = "Choose one of the offered lifetimes."
		a.renderTokens(w, r, http.StatusBadRequest, token, p)
		return
	}
	created, err := a.daemon.createToken(r.Context(), token, form)
	if err != nil {
		status := statusOf(err)
		var de *daemonError
		switch {
		case status == http.StatusUnauthorized:
			a.endSession(w, r, "ended")
			return
		case status == http.StatusConflict:
			p.Error = "You already have a live token called " + strings.TrimSpace(form.Name) + "."
		case errors.As(err, &de) && status < 500:
			p.Error = "The token was not created: " + firstNonEmpty(de.Description, de.Code) + "."
		default:
			a.log.Error("creating a token failed", "editor_id", u.ID, "err", err)
			p.Error, status = "The token could not be created right now. Try again in a moment.", http.StatusServiceUnavailable
		}
		a.renderTokens(w, r, status, token, p)
		return
	}
	a.log.Info("api token created", "editor_id", u.ID, "token_id", created.TokenID)
	// The secret is in this answer only: not in a URL, a cookie or a log.
	p.Created = &created
	p.Tokens = &tokensPage{Expiry: a.defaultExpiry()}
	a.renderTokens(w, r, http.StatusCreated, token, p)
}

// handleRotateToken: the tokens page's Rotate button. The new secret is
// shown once, as a created token's is; the old token keeps working until
// the new one is first used or the grace ends.
func (a *app) handleRotateToken(w http.ResponseWriter, r *http.Request, u user, token string) {
	id := r.PathValue("id")
	if !caveat.ValidTokenID(id) {
		http.NotFound(w, r)
		return
	}
	rotated, err := a.daemon.rotateToken(r.Context(), token, id)
	p := page{Title: "API tokens", User: &u, Tokens: &tokensPage{Expiry: a.defaultExpiry()}}
	switch status := statusOf(err); {
	case err == nil:
		a.log.Info("api token rotated", "editor_id", u.ID, "token_id", id, "successor", rotated.TokenID)
		p.Created = &rotated
		a.renderTokens(w, r, http.StatusCreated, token, p)
	case status == http.StatusUnauthorized:
		a.endSession(w, r, "ended")
	case status == http.StatusNotFound:
		p.Error = "There is no such token."
		a.renderTokens(w, r, http.StatusNotFound, token, p)
	case status == http.StatusConflict:
		// The daemon says which conflict: already rotated, not live, or
		// restrictions not recorded (rotate with the token itself).
		p.Error = "Only a live token that was not rotated yet can be rotated."
		if de := (*daemonError)(nil); errors.As(err, &de) && de.Description != "" {
			p.Error = "The token was not rotated: " + de.Description + "."
		}
		a.renderTokens(w, r, http.StatusConflict, token, p)
	default:
		var de *daemonError
		if errors.As(err, &de) && status < 500 {
			p.Error = "The token was not rotated: " + firstNonEmpty(de.Description, de.Code) + "."
			a.renderTokens(w, r, status, token, p)
			return
		}
		a.log.Error("rotating a token failed", "editor_id", u.ID, "token_id", id, "err", err)
		p.Error = "The token could not be rotated right now; it still works. Try again in a moment."
		a.renderTokens(w, r, http.StatusServiceUnavailable, token, p)
	}
}

func (a *app) handleRevokeToken(w http.ResponseWriter, r *http.Request, u user, token string) {
	id := r.PathValue("id")
	if !caveat.ValidTokenID(id) {
		http.NotFound(w, r)
		return
	}
	err := a.daemon.revokeToken(r.Context(), token, id)
	p := page{Title: "API tokens", User: &u, Tokens: &tokensPage{Expiry: a.defaultExpiry()}}
	switch status := statusOf(err); {
	case err == nil:
		a.log.Info("api token revoked", "editor_id", u.ID, "token_id", id)
		http.Redirect(w, r, "/tokens?m=revoked", http.StatusSeeOther)
	case status == http.StatusUnauthorized:
		a.endSession(w, r, "ended")
	case status == http.StatusNotFound:
		p.Error = "There is no such token."
		a.renderTokens(w, r, http.StatusNotFound, token, p)
	case status == http.StatusConflict:
		p.Error = "That token was already revoked."
		a.renderTokens(w, r, http.StatusConflict, token, p)
	default:
		a.log.Error("revoking a token failed", "editor_id", u.ID, "token_id", id, "err", err)
		p.Error = "The token could not be revoked right now; it still works. Try again in a moment."
		a.renderTokens(w, r, http.StatusServiceUnavailable, token, p)
	}
}

func (a *app) parseTemplates() error {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"rights": func(r []string) string {
			switch {
			case r == nil:
				return "all of yours"
			case len(r) == 0:
				return "none"
			}
			return strings.Join(r, ", ")
		},
		"until": func(t time.Time) string { return humanDuration(t.Sub(a.now())) },
		"expiryLabel": func(v string) string {
			if v == "never" {
				return "never"
			}
			d, _ := time.ParseDuration(v)
			switch {
			case d == 365*24*time.Hour:
				return "1 year"
			case d%(24*time.Hour) == 0:
				return plural(int(d/(24*time.Hour)), "day")
			}
			return d.String()
		},
		"expiryChoices": a.expiryChoices,
		"statusLabel": func(s apitoken.Status) string {
			return map[apitoken.Status]string{
				apitoken.StatusRevoked:           "revoked",
				apitoken.StatusRevokedByParent:   "revoked with the token that created it",
				apitoken.StatusExpired:           "expired",
				apitoken.StatusEditorLocked:      "account locked",
				apitoken.StatusRevokedByTouch:    "revoked by log out everywhere",
				apitoken.StatusEditorDeactivated: "account deactivated",
				apitoken.StatusOverPolicy:        "lives longer than the lifetime policy allows",
			}[s]
		},
	}
	a.pages = map[string]*template.Template{}
	for _, name := range []string{"login", "home", "tokens", "accounts", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return err
		}
		a.pages[name] = t
	}
	return nil
}

func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "now"
	case d < time.Hour:
		return "in " + plural(int(d.Round(time.Minute)/time.Minute), "minute")
	case d < 48*time.Hour:
		return "in " + plural(int(d.Round(time.Hour)/time.Hour), "hour")
	}
	return "in " + plural(int(d.Round(24*time.Hour)/(24*time.Hour)), "day")
}

func plural(n int, unit string) string {
	s := strconv.Itoa(n) + " " + unit
	if n != 1 {
		s += "s"
	}
	return s
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		a.log.Error("template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}
