package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/session"
)

// loginAs logs in with a development provider and returns the session.
func (d *deployment) loginAs(t *testing.T, provider, username string) string {
	t.Helper()
	a := d.do(t, "POST", "/login/dev", "", url.Values{"username": {username}, "provider": {provider}})
	c := a.cookie(session.DefaultName)
	if a.status != http.StatusSeeOther || c == nil || c.Value == "" {
		t.Fatalf("login as %s at %s: %d %s", username, provider, a.status, a.body)
	}
	d.secrets = append(d.secrets, c.Value)
	return c.Value
}

// TestAddAnotherAccount: a logged-in user links a second provider's
// identity to their editor from the accounts page; logging in with either
// reaches the same editor; an identity already linked to someone else is
// refused with a clear message; the form refuses cross-site posts.
func TestAddAnotherAccount(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testAddAnotherAccount(t, newDeploymentOn(t, b)) })
	}
}

func testAddAnotherAccount(t *testing.T, d *deployment) {
	ctx := context.Background()
	alice := d.loginAs(t, "dev", "alice")
	page := d.do(t, "GET", "/accounts", alice, nil)
	if page.status != 200 || !strings.Contains(page.body, "<td>dev</td><td>alice</td>") || !strings.Contains(page.body, "<option>dev2</option>") {
		t.Fatalf("accounts page: %d %s", page.status, page.body)
	}
	t.Run("cross-site post refused", func(t *testing.T) {
		a := d.do(t, "POST", "/accounts/link/dev", alice, url.Values{"provider": {"dev2"}, "username": {"mallory"}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		if a.status != http.StatusForbidden {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if _, err := d.store.LinkedEditor(ctx, "dev2", "mallory"); err == nil {
			t.Fatal("a cross-site post linked an identity")
		}
	})
	a := d.do(t, "POST", "/accounts/link/dev", alice, url.Values{"provider": {"dev2"}, "username": {"Ally"}})
	if a.status != http.StatusSeeOther || a.location != "/accounts?m=linked" {
		t.Fatalf("link: %d %s", a.status, a.body)
	}
	after := d.do(t, "GET", "/accounts?m=linked", alice, nil)
	if !strings.Contains(after.body, "The account was linked") || !strings.Contains(after.body, "<td>dev2</td><td>ally</td>") || strings.Contains(after.body, "<option>dev2</option>") {
		t.Fatalf("accounts after linking: %s", after.body)
	}
	// Logging in with either reaches alice's editor.
	want, err := d.store.LinkedEditor(ctx, "dev", "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range [][2]string{{"dev", "alice"}, {"dev2", "Ally"}} {
		tok := d.loginAs(t, id[0], id[1])
		home := d.do(t, "GET", "/", tok, nil)
		if !strings.Contains(home.body, "<strong>alice</strong>") {
			t.Errorf("login as %v: %s", id, home.body)
		}
		if got, err := d.store.LinkedEditor(ctx, id[0], strings.ToLower(id[1])); err != nil || got.ID != want.ID {
			t.Errorf("%v is linked to %+v (%v), want %s", id, got, err, want.ID)
		}
	}
	t.Run("identity of someone else", func(t *testing.T) {
		d.loginAs(t, "dev2", "bob") // bob's own editor
		a := d.do(t, "POST", "/accounts/link/dev", alice, url.Values{"provider": {"dev2"}, "username": {"bob"}})
		if a.status != http.StatusConflict || !strings.Contains(a.body, "already linked to another user") {
			t.Fatalf("%d %s", a.status, a.body)
		}
		bob, _ := d.store.LinkedEditor(ctx, "dev2", "bob")
		if bob.ID == want.ID {
			t.Fatal("bob's identity moved to alice")
		}
	})
	t.Run("second identity at a provider", func(t *testing.T) {
		a := d.do(t, "POST", "/accounts/link/dev", alice, url.Values{"provider": {"dev"}, "username": {"alice2"}})
		if a.status != http.StatusConflict || !strings.Contains(a.body, "already have a dev account linked") {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, form := range []url.Values{{"provider": {"github"}, "username": {"x"}}, {"provider": {"dev2"}, "username": {"a b"}}} {
			if a := d.do(t, "POST", "/accounts/link/dev", alice, form); a.status != http.StatusBadRequest {
				t.Errorf("%v: %d", form, a.status)
			}
		}
		if a := d.do(t, "POST", "/login/dev", "", url.Values{"provider": {"github"}, "username": {"x"}}); a.status != http.StatusBadRequest {
			t.Errorf("dev login at an unknown provider: %d", a.status)
		}
	})
	t.Run("an administrator's identities are the operator's", func(t *testing.T) {
		// The service token is an admin's: it links identities only to
		// editors below it, so an admin who logs in here cannot add an
		// account from the page (the operator links it), and is told so.
		adm, err := d.store.Create(ctx, epoch.NewEditor{Username: "boss", Role: epoch.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.store.Link(ctx, adm.ID, "dev", "boss"); err != nil {
			t.Fatal(err)
		}
		boss := d.loginAs(t, "dev", "boss")
		page := d.do(t, "GET", "/accounts", boss, nil)
		if page.status != 200 || !strings.Contains(page.body, "<td>dev</td><td>boss</td>") || strings.Contains(page.body, `action="/accounts/link/dev"`) || !strings.Contains(page.body, "amaretti editor link") {
			t.Fatalf("an administrator's accounts page: %d %s", page.status, page.body)
		}
		a := d.do(t, "POST", "/accounts/link/dev", boss, url.Values{"provider": {"dev2"}, "username": {"bossy"}})
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "administrator") {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if _, err := d.store.LinkedEditor(ctx, "dev2", "bossy"); err == nil {
			t.Fatal("an identity was linked to an admin through the frontend")
		}
	})
	t.Run("not logged in", func(t *testing.T) {
		if a := d.do(t, "POST", "/accounts/link/dev", "", url.Values{"provider": {"dev2"}, "username": {"z"}}); a.status != http.StatusSeeOther || a.location != "/login" {
			t.Fatalf("%d %s", a.status, a.location)
		}
	})
}
