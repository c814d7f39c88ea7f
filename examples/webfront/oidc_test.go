package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/session"
)

// fakeIssuer is a minimal OpenID Connect provider: discovery, JWKS, an
// authorization endpoint that logs the user in at once, and a token
// endpoint that checks the client secret and the PKCE verifier.
type fakeIssuer struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	otherKey *rsa.PrivateKey // signs when badSignature is set
	clientID string
	secret   string

	mu sync.Mutex
	// what the next login says about the user, and how it misbehaves
	subject, username        string
	deny, wrongNonce, badSig bool
	codes                    map[string]authRequest
}

type authRequest struct{ nonce, challenge, redirect string }

func newFakeIssuer(t *testing.T) *fakeIssuer {
	f := &fakeIssuer{clientID: "webfront", secret: "client-secret", codes: map[string]authRequest{}}
	var err error
	if f.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/authorize", "token_endpoint": f.srv.URL + "/token",
			"jwks_uri": f.srv.URL + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back, _ := url.Parse(q.Get("redirect_uri"))
		v := url.Values{"state": {q.Get("state")}}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.deny {
			v.Set("error", "access_denied")
		} else if q.Get("client_id") != f.clientID || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
			v.Set("error", "invalid_request")
		} else {
			code := rand.Text()
			f.codes[code] = authRequest{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
			v.Set("code", code)
		}
		back.RawQuery = v.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		f.mu.Lock()
		req, known := f.codes[r.PostFormValue("code")]
		delete(f.codes, r.PostFormValue("code"))
		f.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		switch {
		case id != f.clientID || secret != f.secret:
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		case !known || r.PostFormValue("redirect_uri") != req.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge:
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": f.idToken(t, req.nonce)})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) idToken(t *testing.T, nonce string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.wrongNonce {
		nonce = "not-the-nonce"
	}
	key := f.key
	if f.badSig {
		key = f.otherKey
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": f.srv.URL, "sub": f.subject, "aud": f.clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": nonce, "preferred_username": f.username,
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Error(err)
		return ""
	}
	obj, err := signer.Sign(claims)
	if err != nil {
		t.Error(err)
		return ""
	}
	raw, _ := obj.CompactSerialize()
	return raw
}

// oidcLogin walks a browser through the flow: the frontend's start, the
// provider's authorization endpoint, the frontend's callback. tamper may
// change the callback URL. It returns the callback's answer.
func (d *deployment) oidcLogin(t *testing.T, withStateCookie bool, tamper func(*url.URL)) answer {
	t.Helper()
	start := d.do(t, "GET", "/login/oidc", "", nil)
	state := start.cookie(stateCookie)
	if start.status != http.StatusSeeOther || state == nil || state.Path != callbackPath || !state.HttpOnly || state.SameSite != http.SameSiteLaxMode {
		t.Fatalf("start: %d %v", start.status, start.cookies)
	}
	resp, err := noRedirects.Get(start.location)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(back.String(), d.srv.URL+callbackPath) {
		t.Fatalf("provider redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if tamper != nil {
		tamper(back)
	}
	path := strings.TrimPrefix(back.String(), d.srv.URL)
	if withStateCookie {
		return d.do(t, "GET", path, "", nil, "Cookie", stateCookie+"="+state.Value)
	}
	return d.do(t, "GET", path, "", nil)
}

func TestOIDCLogin(t *testing.T) {
	d := newDeployment(t)
	idp := newFakeIssuer(t)
	login, err := newOIDCLogin(context.Background(), idp.srv.URL, idp.clientID, idp.secret, d.srv.URL+callbackPath, "Example ID")
	if err != nil {
		t.Fatal(err)
	}
	d.app.oidc = login
	if page := d.do(t, "GET", "/login", "", nil); !strings.Contains(page.body, "Continue with Example ID") {
		t.Fatal("no OIDC button on the login page")
	}

	idp.subject, idp.username = "248289761001", "jane.doe"
	ok := d.oidcLogin(t, true, nil)
	c := ok.cookie(session.DefaultName)
	if ok.status != http.StatusSeeOther || ok.location != "/" || c == nil {
		t.Fatalf("callback: %d %s", ok.status, ok.body)
	}
	d.secrets = append(d.secrets, c.Value)
	if cleared := ok.cookie(stateCookie); cleared == nil || cleared.MaxAge >= 0 {
		t.Error("the state cookie outlives the login")
	}
	e, err := d.store.LinkedEditor(context.Background(), idp.srv.URL, "248289761001")
	if err != nil || e.Username != "jane.doe" {
		t.Fatalf("editor of the OIDC subject: %+v %v", e, err)
	}
	tok, _ := macaroon.Parse(c.Value, macaroon.Limits{})
	if !strings.Contains(strings.Join(tok.Caveats(), "|"), "editor_id = "+e.ID+"|username = jane.doe|") {
		t.Errorf("session caveats %q", tok.Caveats())
	}
	// The provider's name for the user changes; the subject still finds
	// the same editor.
	idp.username = "jane"
	if again := d.oidcLogin(t, true, nil); again.status != http.StatusSeeOther {
		t.Fatalf("second login: %d %s", again.status, again.body)
	}
	if editors, _ := d.store.List(context.Background()); len(editors) != 2 { // the user and the frontend's service editor
		t.Fatalf("%d editors after two logins of one subject", len(editors))
	}

	for _, tc := range []struct {
		name   string
		setup  func()
		cookie bool
		tamper func(*url.URL)
		want   string
	}{
		{"provider denies", func() { idp.deny = true }, true, nil, `the provider answered &#34;access_denied&#34;`},
		{"state does not match", nil, true, func(u *url.URL) {
			q := u.Query()
			q.Set("state", "forged")
			u.RawQuery = q.Encode()
		}, "state does not match"},
		{"no state cookie", nil, false, nil, "cookies are blocked"},
		{"code replayed by an attacker", nil, true, func(u *url.URL) {
			q := u.Query()
			q.Set("code", "stolen")
			u.RawQuery = q.Encode()
		}, "exchanging the code"},
		{"wrong nonce", func() { idp.wrongNonce = true }, true, nil, "nonce does not match"},
		{"signed by another key", func() { idp.badSig = true }, true, nil, "did not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp.mu.Lock()
			idp.deny, idp.wrongNonce, idp.badSig = false, false, false
			idp.subject = "attacker"
			idp.mu.Unlock()
			if tc.setup != nil {
				idp.mu.Lock()
				tc.setup()
				idp.mu.Unlock()
			}
			a := d.oidcLogin(t, tc.cookie, tc.tamper)
			if a.status != http.StatusBadRequest || !strings.Contains(a.body, tc.want) || a.cookie(session.DefaultName) != nil {
				t.Fatalf("%d, want 400 with %q: %s", a.status, tc.want, a.body)
			}
		})
	}
	if _, err := d.store.LinkedEditor(context.Background(), idp.srv.URL, "attacker"); err == nil {
		t.Error("a failed login created an editor")
	}
}

// TestOIDCLinkBoundToSession: "add another account" with the OIDC
// provider links the identity to the editor of the session that started
// the flow, and only for that very session. A state cookie is only the
// frontend's to set, but one planted from a sibling host or over plain
// HTTP (cookie tossing), carrying the attacker's own state, nonce and PKCE
// verifier and the victim's editor id (which is no secret), must not make
// the victim's browser link the attacker's identity to the victim: the
// attacker would then log in as the victim.
func TestOIDCLinkBoundToSession(t *testing.T) {
	d := newDeployment(t)
	idp := newFakeIssuer(t)
	login, err := newOIDCLogin(context.Background(), idp.srv.URL, idp.clientID, idp.secret, d.srv.URL+callbackPath, "Example ID")
	if err != nil {
		t.Fatal(err)
	}
	d.app.oidc = login
	ctx := context.Background()
	alice, mallory := d.loginAs(t, "dev", "alice"), d.loginAs(t, "dev", "mallory")
	aliceEd, err := d.store.LinkedEditor(ctx, "dev", "alice")
	if err != nil {
		t.Fatal(err)
	}
	// flow starts a link from session and walks the provider's side; it
	// returns the state cookie's value and the callback path.
	flow := func(t *testing.T, session, subject string) (string, string) {
		t.Helper()
		idp.mu.Lock()
		idp.subject, idp.username = subject, subject
		idp.mu.Unlock()
		start := d.do(t, "POST", "/accounts/link/oidc", session, url.Values{})
		state := start.cookie(stateCookie)
		if start.status != http.StatusSeeOther || state == nil {
			t.Fatalf("start: %d %s", start.status, start.body)
		}
		resp, err := noRedirects.Get(start.location)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return state.Value, strings.TrimPrefix(resp.Header.Get("Location"), d.srv.URL)
	}
	t.Run("a planted state naming the victim's editor", func(t *testing.T) {
		value, callback := flow(t, mallory, "mallory-sub")
		parts := strings.Split(value, ".")
		if len(parts) < 4 {
			t.Fatalf("a link flow's state cookie: %q", value)
		}
		// The attacker's state, nonce and verifier; the victim's editor.
		planted := strings.Join(append(parts[:3:3], aliceEd.ID), ".")
		a := d.do(t, "GET", callback, alice, nil, "Cookie", stateCookie+"="+planted)
		if a.status == http.StatusSeeOther && strings.Contains(a.location, "linked") {
			t.Fatalf("linked: %d %s", a.status, a.location)
		}
		if e, err := d.store.LinkedEditor(ctx, idp.srv.URL, "mallory-sub"); err == nil {
			t.Fatalf("the attacker's identity is linked to %s", e.Username)
		}
	})
	t.Run("another session's flow", func(t *testing.T) {
		value, callback := flow(t, mallory, "mallory-sub2")
		a := d.do(t, "GET", callback, alice, nil, "Cookie", stateCookie+"="+value)
		if a.status != http.StatusForbidden {
			t.Fatalf("%d %s", a.status, a.location)
		}
		if _, err := d.store.LinkedEditor(ctx, idp.srv.URL, "mallory-sub2"); err == nil {
			t.Fatal("linked")
		}
	})
	t.Run("the session that started it", func(t *testing.T) {
		value, callback := flow(t, alice, "alice-sub")
		a := d.do(t, "GET", callback, alice, nil, "Cookie", stateCookie+"="+value)
		if a.status != http.StatusSeeOther || a.location != "/accounts?m=linked" {
			t.Fatalf("%d %s %s", a.status, a.location, a.body)
		}
		if e, err := d.store.LinkedEditor(ctx, idp.srv.URL, "alice-sub"); err != nil || e.ID != aliceEd.ID {
			t.Fatalf("%+v %v", e, err)
		}
	})
	if logs := d.logs.String(); strings.Contains(logs, "mallory-sub") || strings.Contains(logs, "alice-sub") {
		t.Error("a subject reached the log")
	}
}
