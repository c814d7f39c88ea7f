package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/amaretti-auth/amaretti/session"
)

// An identity is who a login provider says the user is.
type identity struct {
	// Provider names the provider in editor links: an OIDC issuer URL, or
	// devProvider.
	Provider string
	// Subject is the provider's stable id of the user (OIDC "sub").
	Subject string
	// Username is the name the provider suggests for a new editor.
	Username string
}

// devProvider is the provider name of the development login.
const devProvider = "dev"

// oidcLogin logs users in with an OpenID Connect provider: authorization
// code flow with PKCE, state and nonce, the ID token verified by go-oidc.
type oidcLogin struct {
	label    string // shown on the login button
	issuer   string
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
	client   *http.Client // talks to the provider
}

// stateCookie carries the state, nonce and PKCE verifier of one login
// attempt through the provider's redirect. It is scoped to the callback path
// and lives ten minutes.
const stateCookie = "amaretti_oidc"

func newOIDCLogin(ctx context.Context, issuer, clientID, clientSecret, redirectURL, label string) (*oidcLogin, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	ctx = oidc.ClientContext(ctx, client)
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery at %s: %w", issuer, err)
	}
	return &oidcLogin{
		label:  label,
		issuer: issuer,
		config: oauth2.Config{
			ClientID:     clientID,
			ClientSecret: clientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  redirectURL,
			Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
		client:   client,
	}, nil
}

// start sends the browser to the provider. linkTo is the editor that the
// identity is to be linked to ("add another account"), or "" for a login;
// sessionToken is then the session that started the flow. Both travel in
// the state cookie, the session as its sessionBinding: a cookie planted by
// someone else (from a sibling host, or over plain HTTP), with their own
// state, nonce and PKCE verifier and the victim's editor id (no secret),
// cannot name a session it does not know.
func (o *oidcLogin) start(w http.ResponseWriter, r *http.Request, linkTo, sessionToken string) {
	state, nonce, pkce := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	value := state + "." + nonce + "." + pkce
	if linkTo != "" {
		value += "." + linkTo + "." + sessionBinding(sessionToken) // an editor id, base64url: no dots
	}
	http.SetCookie(w, &http.Cookie{
		Name: stateCookie, Value: value,
		Path: callbackPath, MaxAge: 600, HttpOnly: true, Secure: session.OverTLS(r),
		SameSite: http.SameSiteLaxMode, // sent on the provider's top-level redirect back
	})
	http.Redirect(w, r, o.config.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce)), http.StatusSeeOther)
}

// errLoginFailed is a login that did not go through; its message is safe
// to show to the user.
var errLoginFailed = errors.New("login failed")

// sessionBinding is what a link flow's state cookie holds of the session
// that started it: a hash, so that the cookie never carries the token.
func sessionBinding(sessionToken string) string {
	sum := sha256.Sum256([]byte("amaretti webfront oidc link\x00" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// boundTo reports whether a link flow's binding is the session's.
func boundTo(binding, sessionToken string) bool {
	return sessionToken != "" && subtle.ConstantTimeCompare([]byte(binding), []byte(sessionBinding(sessionToken))) == 1
}

// callback completes the flow and returns who logged in, the editor the
// flow was started to link the identity to ("" for a login), and the
// sessionBinding of the session that started it.
func (o *oidcLogin) callback(w http.ResponseWriter, r *http.Request) (id identity, linkTo, binding string, err error) {
	id, err = o.complete(w, r)
	if err != nil {
		return identity{}, "", "", err
	}
	c, _ := r.Cookie(stateCookie) // complete read it
	parts := strings.Split(c.Value, ".")
	if len(parts) == 5 {
		return id, parts[3], parts[4], nil
	}
	return id, "", "", nil
}

func (o *oidcLogin) complete(w http.ResponseWriter, r *http.Request) (identity, error) {
	c, err := r.Cookie(stateCookie)
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: callbackPath, MaxAge: -1, HttpOnly: true})
	if err != nil {
		return identity{}, fmt.Errorf("%w: the login took too long or cookies are blocked; try again", errLoginFailed)
	}
	parts := strings.Split(c.Value, ".")
	q := r.URL.Query()
	if (len(parts) != 3 && len(parts) != 5) || subtle.ConstantTimeCompare([]byte(parts[0]), []byte(q.Get("state"))) != 1 {
		return identity{}, fmt.Errorf("%w: the login state does not match; try again", errLoginFailed)
	}
	if e := q.Get("error"); e != "" {
		return identity{}, fmt.Errorf("%w: the provider answered %q", errLoginFailed, e)
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), o.client), 15*time.Second)
	defer cancel()
	tok, err := o.config.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		return identity{}, fmt.Errorf("%w: exchanging the code: %w", errLoginFailed, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return identity{}, fmt.Errorf("%w: the provider sent no ID token", errLoginFailed)
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return identity{}, fmt.Errorf("%w: the ID token did not verify: %w", errLoginFailed, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(parts[1])) != 1 {
		return identity{}, fmt.Errorf("%w: the ID token's nonce does not match", errLoginFailed)
	}
	var claims struct {
		PreferredUsername string `json:"preferred_username"`
		Nickname          string `json:"nickname"`
		Email             string `json:"email"`
		Name              string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		return identity{}, fmt.Errorf("%w: unreadable ID token claims: %w", errLoginFailed, err)
	}
	return identity{
		Provider: idt.Issuer,
		Subject:  idt.Subject,
		Username: firstNonEmpty(claims.PreferredUsername, claims.Nickname, claims.Email, claims.Name),
	}, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
