package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	mv2 "gopkg.in/macaroon.v2"
)

// L8: token inspect prints a crafted location or caveat as data: no byte
// of it can add a line, move the cursor or reorder text, in text or JSON;
// and the location is marked unsigned.
func TestInspectEscapesTokenText(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	alice := c.ok("", "editor", "create", "alice")
	var keys []keyJSON
	c.jsonOut(&keys, "keys", "list")
	secret, err := base64.StdEncoding.DecodeString(c.ok("", "keys", "export", keys[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	var genuine struct {
		Identifier string   `json:"identifier"`
		Caveats    []string `json:"caveats"`
	}
	c.jsonOut(&genuine, "token", "inspect", c.ok("", "token", "mint", alice, "--expires", "1h"))

	// A location must be UTF-8 (Parse refuses others); a caveat may hold
	// any byte.
	const evil = "x\n verifies   yes\r\x1b[2J\x1b]0;title\x07\u009b31m\u202egnp.\u2066\x7f\\x41"
	const evilBytes = evil + "\xff"
	craft := func(location string, extra ...string) string {
		m, err := mv2.New(secret, []byte(genuine.Identifier), location, mv2.V2)
		if err != nil {
			t.Fatal(err)
		}
		for _, cv := range append(append([]string{}, genuine.Caveats...), extra...) {
			if err := m.AddFirstPartyCaveat([]byte(cv)); err != nil {
				t.Fatal(err)
			}
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, tc := range []struct {
		name, token, location, verifies string
		caveat                          string // the last caveat, "" for none added
		escaped                         string // how the text form shows it
	}{
		{"location (signature still valid)", craft("api.example.org" + evil), "api.example.org" + evil, "yes", "",
			`x\x0a verifies   yes\x0d\x1b[2J\x1b]0;title\x07\u009b31m\u202egnp.\u2066\x7f\\x41`},
		{"caveat", craft("api.example.org", "method = GET"+evilBytes), "api.example.org", "no", "method = GET" + evilBytes,
			`x\x0a verifies   yes\x0d\x1b[2J\x1b]0;title\x07\u009b31m\u202egnp.\u2066\x7f\\x41\xff`},
	} {
		t.Run(tc.name+"/text", func(t *testing.T) {
			out := c.run("", "token", "inspect", tc.token)
			if out.code != 0 {
				t.Fatalf("exit %d: %s", out.code, out.stderr)
			}
			assertPrintable(t, out.stdout, true)
			lines := strings.Split(strings.TrimSuffix(out.stdout, "\n"), "\n")
			// An expires line when the caveats parse (here: when it verifies).
			expiresLine := map[bool]int{true: 1}[tc.verifies == "yes"]
			if want := 4 + expiresLine + len(genuine.Caveats) + len(strings.TrimSpace(tc.caveat[:min(len(tc.caveat), 1)])); len(lines) != want {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), want, out.stdout)
			}
			if !strings.HasPrefix(lines[0], "location   (unsigned, decides nothing): ") {
				t.Fatalf("location line %q", lines[0])
			}
			var verifies []string
			for _, l := range lines {
				if strings.HasPrefix(l, "verifies") {
					verifies = append(verifies, l)
				}
			}
			if len(verifies) != 1 || !strings.HasPrefix(verifies[0], "verifies   "+tc.verifies) {
				t.Fatalf("verifies lines %q, want one saying %q", verifies, tc.verifies)
			}
			if !strings.Contains(out.stdout, tc.escaped) {
				t.Fatalf("output lacks the escaped text %s:\n%s", tc.escaped, out.stdout)
			}
		})
		t.Run(tc.name+"/json", func(t *testing.T) {
			out := c.run("", "--json", "token", "inspect", tc.token)
			if out.code != 0 {
				t.Fatalf("exit %d: %s", out.code, out.stderr)
			}
			assertPrintable(t, out.stdout, false)
			if !strings.Contains(out.stdout, `\u009b`) || !strings.Contains(out.stdout, `\u202e`) || !strings.Contains(out.stdout, `\u2066`) {
				t.Fatalf("C1 and bidi controls not escaped as \\uXXXX:\n%s", out.stdout)
			}
			var j struct {
				Location       string   `json:"location"`
				LocationSigned *bool    `json:"location_signed"`
				Caveats        []string `json:"caveats"`
				Verifies       string   `json:"verifies"`
			}
			if err := json.Unmarshal([]byte(out.stdout), &j); err != nil {
				t.Fatal(err)
			}
			// The JSON decodes to the token's text (invalid UTF-8 becomes
			// U+FFFD, as encoding/json writes it).
			fix := func(s string) string { return strings.ToValidUTF8(s, "\ufffd") }
			if j.Location != fix(tc.location) || j.LocationSigned == nil || *j.LocationSigned || j.Verifies != tc.verifies {
				t.Fatalf("decoded %+v", j)
			}
			if tc.caveat != "" && j.Caveats[len(j.Caveats)-1] != fix(tc.caveat) {
				t.Fatalf("last caveat %q", j.Caveats[len(j.Caveats)-1])
			}
		})
	}
}

// assertPrintable fails unless out is UTF-8 of printable characters, with
// newlines only as the line ends of a text form or the layout of JSON.
func assertPrintable(t *testing.T, out string, text bool) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("output is not UTF-8: %q", out)
	}
	for i, r := range out {
		if r == '\n' || r >= 0x20 && r < 0x7f || r >= 0xa0 && unicode.IsPrint(r) {
			continue
		}
		t.Fatalf("output holds %U at byte %d: %q", r, i, out)
	}
}
