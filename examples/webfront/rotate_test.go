package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// TestTokensPageRotate: the Rotate button shows a new secret once, in the
// API token format; both tokens work until the new one is used, then the
// old one is refused; the page shows the pending rotation, and how the
// new token was last used ("attenuated to GET /api/x").
func TestTokensPageRotate(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testTokensPageRotate(t, newDeploymentOn(t, b)) })
	}
}

func testTokensPageRotate(t *testing.T, d *deployment) {
	tok := d.login(t, "alice")
	secretRe := regexp.MustCompile(`id="new-token" readonly value="([A-Za-z0-9_-]+)"`)
	created := d.do(t, "POST", "/tokens", tok, url.Values{"name": {"deploy"}, "rights": {"read"}, "expires_in": {"720h"}})
	m := secretRe.FindStringSubmatch(created.body)
	if created.status != 201 || m == nil {
		t.Fatalf("create: %d", created.status)
	}
	oldSecret := m[1]
	d.secrets = append(d.secrets, oldSecret)
	if _, err := macaroon.CheckAPIFormat(oldSecret); err != nil {
		t.Fatalf("created token: %v", err)
	}
	id := regexp.MustCompile(`data-token-id="([0-9A-F-]{36})"`).FindStringSubmatch(created.body)
	if id == nil {
		t.Fatal("no row for the token")
	}

	if a := d.do(t, "POST", "/tokens/"+id[1]+"/rotate", d.login(t, "mallory"), nil); a.status != 404 || secretRe.MatchString(a.body) {
		t.Fatalf("someone else's rotation: %d", a.status)
	}
	if a := d.do(t, "POST", "/tokens/not-an-id/rotate", tok, nil); a.status != 404 {
		t.Fatalf("bad id: %d", a.status)
	}
	rotated := d.do(t, "POST", "/tokens/"+id[1]+"/rotate", tok, nil)
	m = secretRe.FindStringSubmatch(rotated.body)
	if rotated.status != 201 || m == nil || !strings.Contains(rotated.body, "Token “deploy” rotated") || !strings.Contains(rotated.body, "replaced; works until") {
		t.Fatalf("rotate: %d %s", rotated.status, rotated.body)
	}
	newSecret := m[1]
	d.secrets = append(d.secrets, newSecret)
	if rotated.header.Get("Cache-Control") != "no-store" {
		t.Error("the page with the secret may be cached")
	}
	// The daemon's reason is shown, not a guess at it.
	if again := d.do(t, "POST", "/tokens/"+id[1]+"/rotate", tok, nil); again.status != 409 || secretRe.MatchString(again.body) || !strings.Contains(again.body, "The token was not rotated: the token was already rotated.") {
		t.Fatalf("rotating twice: %d %s", again.status, again.body)
	}
	if d.daemonStatus(t, oldSecret) != 200 {
		t.Fatal("the old token during the grace")
	}

	// The holder narrows the new token offline and uses it.
	narrowed, err := macaroon.Attenuate(newSecret, caveat.Methods{"GET"}, caveat.PathPrefix("/api/x"))
	if err != nil {
		t.Fatal(err)
	}
	d.secrets = append(d.secrets, narrowed)
	req, _ := http.NewRequest("GET", d.daemon.URL+"/v1/verify?method=GET&path=/api/x/items", nil)
	req.Header.Set("Authorization", "Bearer "+narrowed)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("narrowed token: %d", resp.StatusCode)
	}
	eventually(t, "the old token refused after the new one's use", func() bool { return d.daemonStatus(t, oldSecret) == 401 })
	if d.daemonStatus(t, newSecret) != 200 {
		t.Fatal("the new token after the rotation ended")
	}
	eventually(t, "the page shows the attenuation", func() bool {
		page := d.do(t, "GET", "/tokens", tok, nil)
		return strings.Contains(page.body, "attenuated to <code>GET /api/x</code>")
	})
	page := d.do(t, "GET", "/tokens", tok, nil)
	for _, s := range []string{oldSecret, newSecret, narrowed} {
		if strings.Contains(page.body, s) {
			t.Fatal("the page shows a secret")
		}
	}
	if !regexp.MustCompile(`(?s)id="inactive".*>deploy<.*revoked 20`).MatchString(page.body) {
		t.Errorf("the old token is not listed as revoked: %s", page.body)
	}
}
