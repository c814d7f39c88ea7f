package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/verifier"
)

// errDaemonUnavailable means amarettid could not be reached or did not
// answer sensibly.
var errDaemonUnavailable = errors.New("the token service (amarettid) is unavailable")

// daemonError is an answer of amarettid other than 2xx.
type daemonError struct {
	Status      int
	Code        string // "error" of the JSON body, when there is one
	Description string // "error_description"
}

func (e *daemonError) Error() string {
	return fmt.Sprintf("amarettid answered %d %s: %s", e.Status, e.Code, e.Description)
}

// statusOf returns the status of a daemonError, or 0.
func statusOf(err error) int {
	var de *daemonError
	if errors.As(err, &de) {
		return de.Status
	}
	return 0
}

// daemonClient calls amarettid: on behalf of a logged-in user, with the
// user's own session token as the bearer (the daemon decides what the user
// may do, and announces every revocation to all verifiers), and, for
// logins, with the frontend's service token (rights = admin:logins).
type daemonClient struct {
	base    string
	service string // the service token; never logged
	http    *http.Client
}

func newDaemonClient(base, service string) *daemonClient {
	return &daemonClient{base: base, service: service, http: &http.Client{Timeout: 10 * time.Second}}
}

// verify asks amarettid whether a session token is good for a request of
// this frontend (its method and path, which the token's caveats may
// restrict), and who it is. Every revocation amarettid knows of applies at
// once: it follows the store, and this frontend keeps nothing.
func (d *daemonClient) verify(ctx context.Context, session, method, path string) (verifier.Identity, error) {
	var id verifier.Identity
	err := d.do(ctx, http.MethodPost, "/v1/verify", session, map[string]string{"method": method, "path": path}, &id)
	if err == nil && id.EditorID == "" {
		err = fmt.Errorf("%w: the identity names no editor", errDaemonUnavailable)
	}
	return id, err
}

// checkService asks amarettid whether the service token is good for the
// login endpoints (it verifies with the right admin:logins), so that a
// wrong token fails at start rather than at the first login. A
// *daemonError is a refusal; errDaemonUnavailable, amarettid not answering.
func (d *daemonClient) checkService(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := d.do(ctx, http.MethodPost, "/v1/verify", d.service, map[string][]string{"rights": {"admin:logins"}}, nil)
	if de := (*daemonError)(nil); errors.As(err, &de) && de.Status < 500 {
		return fmt.Errorf("%w: amarettid refuses it for admin:logins (%w); mint one for an admin editor with --right admin:logins", errServiceToken, de)
	}
	return err
}

// loginEditor is an editor as amarettid's login endpoints answer it.
type loginEditor struct {
	ID       string     `json:"id"`
	Username string     `json:"username"`
	Role     epoch.Role `json:"role"`
	Active   bool       `json:"active"`
	Locked   bool       `json:"locked"`
}

// login finds the editor of an identity or, on its first login, has
// amarettid create and link one (in one transaction of the store: one
// editor however many first logins race).
func (d *daemonClient) login(ctx context.Context, id identity) (loginEditor, bool, error) {
	var out struct {
		Editor  loginEditor `json:"editor"`
		Created bool        `json:"created"`
	}
	err := d.do(ctx, http.MethodPost, "/v1/admin/logins", d.service,
		map[string]string{"provider": id.Provider, "subject": id.Subject, "username": id.Username}, &out)
	if err == nil && out.Editor.ID == "" {
		err = fmt.Errorf("%w: the answer names no editor", errDaemonUnavailable)
	}
	return out.Editor, out.Created, err
}

// link links another identity to an editor ("add another account"). A
// *daemonError with Code errLinkedElsewhere, errProviderLinked or
// errRoleNotBelow says why it was refused.
func (d *daemonClient) link(ctx context.Context, editorID string, id identity) error {
	return d.do(ctx, http.MethodPost, "/v1/admin/editors/"+url.PathEscape(editorID)+"/links", d.service,
		map[string]string{"provider": id.Provider, "subject": id.Subject}, nil)
}

// links lists an editor's identities.
func (d *daemonClient) links(ctx context.Context, editorID string) ([]epoch.Link, error) {
	var out struct {
		Links []epoch.Link `json:"links"`
	}
	err := d.do(ctx, http.MethodGet, "/v1/admin/editors/"+url.PathEscape(editorID)+"/links", d.service, nil, &out)
	return out.Links, err
}

// The codes of amarettid's 409 answers to a link, and of its 403 for an
// editor whose role is not below the service token's (an admin or a
// superuser: their identities are the operator's).
const (
	errLinkedElsewhere = "linked_to_another_editor"
	errProviderLinked  = "provider_already_linked"
	errRoleNotBelow    = "editor_role_not_below_caller"
)

// tokenRow is an API token as amarettid lists it: the registry row (never
// the secret) with its status under amarettid's lifetime policy.
type tokenRow = apitoken.Row

// createdToken is amarettid's answer to creating (or rotating) a token:
// the secret, once; for a rotation, Old is the replaced token's row.
type createdToken struct {
	Token string `json:"token"`
	tokenRow
	Old *tokenRow `json:"old,omitempty"`
}

// newToken is what the token form asks amarettid for.
type newToken struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Rights      []string `json:"rights,omitempty"`
	ExpiresIn   string   `json:"expires_in,omitempty"`
}

func (d *daemonClient) tokens(ctx context.Context, session string) ([]tokenRow, error) {
	var out struct {
		Tokens []tokenRow `json:"tokens"`
	}
	err := d.do(ctx, http.MethodGet, "/v1/tokens", session, nil, &out)
	return out.Tokens, err
}

func (d *daemonClient) createToken(ctx context.Context, session string, t newToken) (createdToken, error) {
	var out createdToken
	err := d.do(ctx, http.MethodPost, "/v1/tokens", session, t, &out)
	return out, err
}

// rotateToken asks amarettid to rotate one of the session's editor's
// tokens (POST /v1/tokens/{id}/rotate, the default grace); the answer
// holds the new secret, once.
func (d *daemonClient) rotateToken(ctx context.Context, session, id string) (createdToken, error) {
	var out createdToken
	err := d.do(ctx, http.MethodPost, "/v1/tokens/"+url.PathEscape(id)+"/rotate", session, struct{}{}, &out)
	return out, err
}

// revokeToken revokes one token; id must be a valid token id (it goes into
// the URL path).
func (d *daemonClient) revokeToken(ctx context.Context, session, id string) error {
	return d.do(ctx, http.MethodDelete, "/v1/tokens/"+id, session, nil, nil)
}

// touchSelf is "log out everywhere": the user's epoch moves to now.
func (d *daemonClient) touchSelf(ctx context.Context, session string) error {
	return d.do(ctx, http.MethodPost, "/v1/me/touch", session, nil, nil)
}

// do sends one request with bearer as the token and decodes the answer
// into out.
func (d *daemonClient) do(ctx context.Context, method, path, bearer string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, body)
	if err != nil {
		return fmt.Errorf("%w: %v", errDaemonUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		// The error names the URL, which holds no token.
		return fmt.Errorf("%w: %v", errDaemonUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %v", errDaemonUnavailable, err)
	}
	if resp.StatusCode/100 != 2 {
		de := &daemonError{Status: resp.StatusCode}
		var e struct {
			Code        string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(raw, &e) == nil {
			de.Code, de.Description = e.Code, e.Description
		}
		if resp.StatusCode >= 500 {
			return fmt.Errorf("%w: %w", errDaemonUnavailable, de)
		}
		return de
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: unreadable answer: %v", errDaemonUnavailable, err)
		}
	}
	return nil
}
