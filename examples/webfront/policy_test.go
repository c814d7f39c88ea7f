package main

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
)

// TestTokensPagePolicy: the page offers lifetimes within amarettid's
// policy and "never" only when the policy allows it, and a token left dead
// by "log out everywhere" shows as such, its name free again. Before, the
// page always offered "never" (which made a one-year token) and showed a
// touched token as live.
func TestTokensPagePolicy(t *testing.T) {
	never := regexp.MustCompile(`<option value="never"`)
	t.Run("default policy", func(t *testing.T) {
		d := newDeployment(t)
		tok := d.login(t, "alice")
		page := d.do(t, "GET", "/tokens", tok, nil)
		if never.MatchString(page.body) || !strings.Contains(page.body, `<option value="8760h"`) || !strings.Contains(page.body, `<option value="720h" selected`) {
			t.Fatalf("choices:\n%s", page.body)
		}
		if a := d.do(t, "POST", "/tokens", tok, url.Values{"name": {"x"}, "expires_in": {"never"}}); a.status != 400 || !strings.Contains(a.body, "offered lifetimes") {
			t.Fatalf("never: %d", a.status)
		}
		// A token, then log out everywhere: it is dead, and says why.
		if a := d.do(t, "POST", "/tokens", tok, url.Values{"name": {"ci"}, "expires_in": {"720h"}}); a.status != 201 {
			t.Fatalf("create: %d %s", a.status, a.body)
		}
		if a := d.do(t, "POST", "/logout/everywhere", tok, nil); a.status != 303 {
			t.Fatalf("log out everywhere: %d", a.status)
		}
		tok = d.login(t, "alice")
		page = d.do(t, "GET", "/tokens", tok, nil)
		if !regexp.MustCompile(`(?s)id="inactive".*>ci<.*data-status="revoked_by_touch">revoked by log out everywhere`).MatchString(page.body) || !strings.Contains(page.body, `id="no-tokens"`) {
			t.Fatalf("after log out everywhere:\n%s", page.body)
		}
		if a := d.do(t, "POST", "/tokens", tok, url.Values{"name": {"ci"}, "expires_in": {"720h"}}); a.status != 201 {
			t.Fatalf("reusing the name of a dead token: %d %s", a.status, a.body)
		}
	})
	t.Run("no expiry allowed, a shorter maximum", func(t *testing.T) {
		p := apitoken.DefaultPolicy()
		p.AllowNoExpiry, p.MaxAPI, p.API, p.Bootstrap = true, 240*time.Hour, 240*time.Hour, 240*time.Hour
		d := newDeployment(t, p)
		tok := d.login(t, "alice")
		page := d.do(t, "GET", "/tokens", tok, nil)
		if !never.MatchString(page.body) || strings.Contains(page.body, `<option value="720h"`) || !strings.Contains(page.body, `<option value="240h0m0s" selected>10 days`) {
			t.Fatalf("choices:\n%s", page.body)
		}
		a := d.do(t, "POST", "/tokens", tok, url.Values{"name": {"forever"}, "expires_in": {"never"}})
		if a.status != 201 || !strings.Contains(a.body, "expires: never") {
			t.Fatalf("never: %d %s", a.status, a.body)
		}
	})
}
