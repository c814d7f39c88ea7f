package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
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

// daemonClient calls amarettid on behalf of a logged-in user, with the
// user's own session token as the bearer: the daemon decides what the user
// may do, and announces every revocation to all verifiers.
type daemonClient struct {
	base string
	http *http.Client
}

func newDaemonClient(base string) *daemonClient {
	return &daemonClient{base: base, http: &http.Client{Timeout: 10 * time.Second}}
}

// tokenRow is an API token as amarettid lists it: the registry row (never
// the secret) with its status under amarettid's lifetime policy.
type tokenRow = apitoken.Row

// createdToken is amarettid's answer to creating a token: the secret, once.
type createdToken struct {
	Token string `json:"token"`
	tokenRow
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

// revokeToken revokes one token; id must be a valid token id (it goes into
// the URL path).
func (d *daemonClient) revokeToken(ctx context.Context, session, id string) error {
	return d.do(ctx, http.MethodDelete, "/v1/tokens/"+id, session, nil, nil)
}

// touchSelf is "log out everywhere": the user's epoch moves to now.
func (d *daemonClient) touchSelf(ctx context.Context, session string) error {
	return d.do(ctx, http.MethodPost, "/v1/me/touch", session, nil, nil)
}

func (d *daemonClient) do(ctx context.Context, method, path, session string, in, out any) error {
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
	req.Header.Set("Authorization", "Bearer "+session)
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
