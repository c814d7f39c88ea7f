package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/verifier"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// Interoperability with pymacaroons, an implementation nobody here wrote
// (Debian's python3-pymacaroons; scripts/test installs it).
const python = "/usr/bin/python3"

func pymac(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing: run scripts/test, which installs python3-pymacaroons", python)
	}
	script, _ := filepath.Abs("../../testdata/interop/pymac.py")
	out, err := exec.Command(python, append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("pymac.py %s: %v\n%s\n(run scripts/test, which installs python3-pymacaroons)", args[0], err, out)
	}
	return strings.TrimSpace(string(out))
}

type pyInspect struct {
	Identifier  string   `json:"identifier"`
	Location    string   `json:"location"`
	Caveats     []string `json:"caveats"`
	SignatureOK bool     `json:"signature_ok"`
}

func TestInteropPymacaroons(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	var keys []keyJSON
	c.jsonOut(&keys, "keys", "list")
	keyID := keys[0].ID
	secret := c.ok("", "keys", "export", keyID)

	t.Run("pymacaroons reads and verifies our token", func(t *testing.T) {
		tok := c.ok("", "token", "mint", alice, "--expires", "1h", "--right", "read")
		var ours struct {
			Location   string   `json:"location"`
			Identifier string   `json:"identifier"`
			Caveats    []string `json:"caveats"`
		}
		c.jsonOut(&ours, "token", "inspect", tok)
		var py pyInspect
		if err := json.Unmarshal([]byte(pymac(t, "inspect", tok, secret)), &py); err != nil {
			t.Fatal(err)
		}
		if !py.SignatureOK || py.Identifier != ours.Identifier || py.Location != "api.example.org" || strings.Join(py.Caveats, "|") != strings.Join(ours.Caveats, "|") {
			t.Fatalf("pymacaroons sees %+v; we see %+v", py, ours)
		}
		var wrong pyInspect
		json.Unmarshal([]byte(pymac(t, "inspect", tok, base64.StdEncoding.EncodeToString(make([]byte, 32)))), &wrong)
		if wrong.SignatureOK {
			t.Fatal("pymacaroons verified our token under the wrong key")
		}
	})

	t.Run("pymacaroons reads an API token once its prefix and checksum are stripped", func(t *testing.T) {
		var created struct {
			Token string `json:"token"`
		}
		c.jsonOut(&created, "tokens", "create", alice, "--name", "interop", "--right", "read")
		plain, formatted, err := macaroon.StripAPIFormat(created.Token)
		if err != nil || !formatted {
			t.Fatalf("tokens create wrote %v, %v", formatted, err)
		}
		var ours struct {
			Identifier string   `json:"identifier"`
			Caveats    []string `json:"caveats"`
		}
		c.jsonOut(&ours, "token", "inspect", created.Token)
		var py pyInspect
		if err := json.Unmarshal([]byte(pymac(t, "inspect", plain, secret)), &py); err != nil {
			t.Fatal(err)
		}
		if !py.SignatureOK || py.Identifier != ours.Identifier || strings.Join(py.Caveats, "|") != strings.Join(ours.Caveats, "|") {
			t.Fatalf("pymacaroons sees %+v; we see %+v", py, ours)
		}
		// The stripped macaroon verifies here too, as does the text
		// written back in the format.
		c.ok("", "token", "verify", plain, "--right", "read")
		c.ok("", "token", "verify", macaroon.FormatAPI(plain), "--right", "read")
	})

	t.Run("our verifier accepts a pymacaroons token in our format", func(t *testing.T) {
		id := keyID + ":0F0E0D0C-0B0A-4908-8706-050403020100"
		created := caveat.FormatTime(time.Now())
		tok := pymac(t, "mint", secret, id, "api.example.org", "url",
			"editor_id = "+alice, "time > "+created, "time < "+caveat.FormatTime(time.Now().Add(time.Hour)), "method = GET")
		var got verifier.Identity
		c.jsonOut(&got, "token", "verify", tok, "--method", "GET")
		if got.EditorID != alice || got.TokenID != "0F0E0D0C-0B0A-4908-8706-050403020100" || got.KeyID != keyID {
			t.Fatalf("identity %+v", got)
		}
		c.fail("method = GET", "", "token", "verify", tok, "--method", "DELETE")
		bad := pymac(t, "mint", secret, id, "api.example.org", "url", "editor_id = "+alice, "time > "+created, "colour = red")
		c.fail("unknown caveat", "", "token", "verify", bad)
		// Empty location: pymacaroons writes an empty location field.
		noLoc := pymac(t, "mint", secret, id, "", "url", "editor_id = "+alice, "time > "+created)
		c.ok("", "token", "verify", noLoc)
	})

	t.Run("fatcat-format token with an imported key", func(t *testing.T) {
		// fatcat's AUTH_KEY_IDENT and AUTH_SECRET_KEY (its dummy test key).
		const fatcatKey = "ZHVtbXkta2V5LWEtb25lLXR3by10aHJlZS1hLWxhISE="
		c.ok(fatcatKey+"\n", "keys", "import", "dummy")
		fatcatEditor := c.ok("", "editor", "create", "fatcat-admin", "--id", "aaaaaaaaaaaaaaaaaaaaaaaaae", "--role", "admin", "--epoch", "2019-01-01T00:00:00Z")
		tok := pymac(t, "mint", fatcatKey, "dummy", "fatcat.wiki", "std",
			"editor_id = "+fatcatEditor, "time > 2019-06-01T12:00:00Z")
		if _, err := base64.StdEncoding.DecodeString(tok); err != nil {
			t.Fatalf("not standard padded base64: %v", err)
		}
		var got verifier.Identity
		c.jsonOut(&got, "token", "verify", tok)
		if got.EditorID != fatcatEditor || got.Role != "admin" || got.KeyID != "dummy" || got.TokenID != "" {
			t.Fatalf("identity %+v", got)
		}
		// No one-second grace: a token created exactly at the epoch fails.
		atEpoch := pymac(t, "mint", fatcatKey, "dummy", "fatcat.wiki", "std",
			"editor_id = "+fatcatEditor, "time > 2019-01-01T00:00:00Z")
		c.fail("token revoked", "", "token", "verify", atEpoch)
		// Touching the imported editor revokes fatcat's tokens too.
		c.ok("", "editor", "touch", fatcatEditor)
		c.fail("token revoked", "", "token", "verify", tok)
	})
}
