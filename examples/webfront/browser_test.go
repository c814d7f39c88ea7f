package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/amaretti-auth/amaretti/internal/testproc"
)

// chromium finds Debian's Chromium; scripts/test installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run scripts/test, which installs it (apt-get install chromium)")
	return ""
}

// TestBrowser drives headless Chromium through the frontend, running as
// the README runs it: amarettid, webfront --dev-login and api-service as
// processes on one store. Log in, create a token, see it listed without its
// secret, use it against the API (200), revoke it in the page, and see the
// API refuse it (401).
func TestBrowser(t *testing.T) {
	browser := chromium(t)
	d := newDeployment(t) // store, keys and a running amarettid
	front, api := testproc.FreeAddr(t), testproc.FreeAddr(t)
	web := testproc.Start(t, d.dir, filepath.Join(bin, "webfront"), front, "/healthz",
		[]string{"--listen", front, "--dev-login", "--daemon", d.daemon.URL}, append(d.env, "WEBFRONT_SERVICE_TOKEN="+d.service))
	apiSvc := testproc.Start(t, d.dir, filepath.Join(bin, "api-service"), api, "/v1/hello",
		[]string{"--listen", api, "--last-use-interval", "100ms"}, d.env)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// The first call starts the browser and must not carry a timeout (it
	// would stop the browser); each later step gets one.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", browser, err)
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(browserCtx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\nwebfront log:\n%s", what, err, web.Log())
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(browserCtx, 20*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}

	step("log in with the development provider",
		chromedp.Navigate(web.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("dev-login")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.Click(chromedp.ID("dev-login")),
		chromedp.WaitVisible(chromedp.ID("who")),
	)
	if who := get("header", chromedp.Text(chromedp.ID("who"))); who != "Signed in as alice" {
		t.Fatalf("header says %q", who)
	}

	step("create a token",
		chromedp.Navigate(web.URL+"/tokens"),
		chromedp.WaitVisible(chromedp.ID("create-token")),
		chromedp.SendKeys(chromedp.ID("token-name"), "ci"),
		chromedp.SendKeys(chromedp.ID("token-description"), "nightly build"),
		chromedp.SendKeys(chromedp.ID("token-rights"), "read"),
		chromedp.SetValue(chromedp.ID("token-expiry"), "168h"),
		chromedp.Click(chromedp.ID("create-token")),
		chromedp.WaitVisible(chromedp.ID("new-token")),
	)
	secret := get("secret", chromedp.Value(chromedp.ID("new-token")))
	d.secrets = append(d.secrets, secret)
	step("copy", chromedp.Click(chromedp.ID("copy")), chromedp.Sleep(100*time.Millisecond))
	if copied := get("copy button", chromedp.Text(chromedp.ID("copy"))); len(secret) < 100 || copied != "Copied" {
		t.Fatalf("secret %d bytes, copy button %q", len(secret), copied)
	}

	whoami := func() (int, string) {
		req, _ := http.NewRequest("GET", apiSvc.URL+"/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := whoami(); status != 200 || !strings.Contains(body, `"rights":["read"]`) {
		t.Fatalf("the new token at the API: %d %s", status, body)
	}

	// Listed without its secret; its use at the API shows up (the API
	// service records uses every 100 ms here).
	var html, row string
	deadline := time.Now().Add(5 * time.Second)
	for {
		step("list tokens", chromedp.Navigate(web.URL+"/tokens"), chromedp.WaitVisible(chromedp.ID("tokens")))
		html = get("page", chromedp.OuterHTML(chromedp.CSS("html")))
		row = get("row", chromedp.Text(chromedp.CSS("#tokens tbody tr")))
		if strings.Contains(row, "from 127.0.0.1") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(html, secret) {
		t.Fatal("the tokens page shows the secret again")
	}
	for _, want := range []string{"ci", "nightly build", "read", "from 127.0.0.1", "in 7 days"} {
		if !strings.Contains(row, want) {
			t.Errorf("token row %q lacks %q", row, want)
		}
	}
	if !strings.Contains(html, `id="expiring"`) {
		t.Error("no warning for a token that expires within 7 days")
	}
	ctxShot, cancelShot := context.WithTimeout(browserCtx, 20*time.Second)
	shot, err := chromedp.Run(ctxShot, chromedp.FullScreenshot(100))
	cancelShot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("tokens page: %s (%d bytes)", path, len(shot))
	if dir := os.Getenv("WEBFRONT_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, "tokens.png"), shot, 0o644)
	}

	step("revoke it in the page", chromedp.Click(chromedp.CSS("#tokens button.revoke")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if notice := get("notice", chromedp.Text(chromedp.CSS(".notice"))); !strings.Contains(notice, "revoked") {
		t.Fatalf("notice after revoking: %q", notice)
	}
	revoked := time.Now()
	// The API service verifies in process with a 2 s epoch cache and no
	// Redis: that cache is how late it can learn of the revocation.
	for {
		status, _ := whoami()
		if status == http.StatusUnauthorized {
			t.Logf("API refused the revoked token %v after the page answered", time.Since(revoked).Round(time.Millisecond))
			break
		}
		if status != 200 || time.Since(revoked) > 5*time.Second {
			t.Fatalf("the API answers %d %v after the revocation", status, time.Since(revoked))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, body := whoami(); status != 401 || !strings.Contains(body, "revoked") {
		t.Fatalf("API after revocation: %d %s", status, body)
	}
}
