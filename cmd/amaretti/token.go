package main

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// restrictionFlags are the caveats mint and attenuate can add, with the
// expires flag given.
func restrictionFlags(expires cli.Flag) []cli.Flag {
	return []cli.Flag{
		expires,
		&cli.StringSliceFlag{Name: "right", Usage: "allow only this `RIGHT` (repeatable; all listed rights are allowed)"},
		&cli.StringFlag{Name: "endpoint", Usage: "allow only requests naming endpoint `NAME`"},
		&cli.StringSliceFlag{Name: "method", Usage: "allow only this HTTP `METHOD` (repeatable)"},
		&cli.StringFlag{Name: "path-prefix", Usage: "allow only this `PATH` and paths below it"},
	}
}

// restrictions builds the caveats the restriction flags ask for (expiry
// excluded) and checks that each is well formed.
func restrictions(c *cli.Context) ([]caveat.Caveat, error) {
	var out []caveat.Caveat
	if r := c.StringSlice("right"); len(r) > 0 {
		out = append(out, caveat.Rights(r))
	}
	if v := c.String("endpoint"); v != "" {
		out = append(out, caveat.Endpoint(v))
	}
	if m := c.StringSlice("method"); len(m) > 0 {
		up := make([]string, len(m))
		for i, x := range m {
			up[i] = strings.ToUpper(x)
		}
		out = append(out, caveat.Methods(up))
	}
	if v := c.String("path-prefix"); v != "" {
		out = append(out, caveat.PathPrefix(v))
	}
	checker, err := caveat.NewChecker()
	if err != nil {
		return nil, err
	}
	for _, cv := range out {
		if _, err := checker.Parse(cv.String()); err != nil {
			return nil, usagef("%v", err)
		}
	}
	return out, nil
}

func (e *env) printIdentity(id verifier.Identity) {
	w := func(k, v string) { fmt.Fprintf(e.stdout, "%-10s %s\n", k, v) }
	w("editor_id", id.EditorID)
	w("role", string(id.Role))
	if id.TokenID != "" {
		w("token_id", id.TokenID)
	}
	w("key_id", id.KeyID)
	w("created", formatTime(id.Created))
	w("expires", expiresText(id.Expires))
	if id.Rights != nil {
		w("rights", strings.Join(id.Rights, ","))
	}
}

func (e *env) newVerifier(c *cli.Context) (*verifier.Verifier, func(), error) {
	keys, err := e.openKeys(c)
	if err != nil {
		return nil, nil, err
	}
	p, err := e.policy(c)
	if err != nil {
		return nil, nil, err
	}
	store, err := e.openStore(c)
	if err != nil {
		return nil, nil, err
	}
	// Verified as amarettid does, under the lifetime policy.
	v, err := verifier.New(keys, store, append(p.VerifierOptions(), verifier.WithClock(e.now), verifier.WithSignatureCache(0))...)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return v, func() { store.Close() }, nil
}

func (e *env) tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "mint, inspect, attenuate and verify tokens (a TOKEN argument of - reads it from stdin)",
		Subcommands: []*cli.Command{
			{
				Name:      "mint",
				Usage:     "mint a token for an editor and print it",
				ArgsUsage: "EDITOR_ID",
				Flags: append(restrictionFlags(expiresFlag(caveat.KindCLI)), noExpiryFlag,
					&cli.BoolFlag{Name: "env-format", Usage: "print a line a shell can source: NAME=token"},
					&cli.StringFlag{Name: "env-name", Value: "AMARETTI_TOKEN", Usage: "variable `NAME` for --env-format"},
				),
				Action: e.mint,
			},
			{
				Name:      "inspect",
				Usage:     "show a token's location, key, id and caveats, and whether it verifies now",
				ArgsUsage: "TOKEN",
				Action:    e.inspect,
			},
			{
				Name:      "check",
				Usage:     "check an API token's format and checksum offline, with no key or database (for leak reports)",
				ArgsUsage: "TOKEN",
				Action:    e.check,
			},
			{
				Name:      "attenuate",
				Usage:     "print a weaker token with more caveats (needs no key or database)",
				ArgsUsage: "TOKEN",
				Flags: restrictionFlags(&cli.DurationFlag{Name: "expires", DefaultText: "no expiry added",
					Usage: "expire after `DURATION` (e.g. 15m, 24h)"}),
				Action: e.attenuate,
			},
			{
				Name:      "verify",
				Usage:     "verify a token (exit status 0 and the identity, or non-zero and the reason)",
				ArgsUsage: "TOKEN",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "endpoint", Usage: "the endpoint the request names"},
					&cli.StringFlag{Name: "method", Usage: "the request's HTTP method"},
					&cli.StringFlag{Name: "path", Usage: "the request's URL path"},
					&cli.StringSliceFlag{Name: "right", Usage: "a right the request exercises (repeatable)"},
				},
				Action: e.verify,
			},
		},
	}
}

func (e *env) mint(c *cli.Context) error {
	a, err := args(c, "editor_id")
	if err != nil {
		return err
	}
	cavs, err := restrictions(c)
	if err != nil {
		return err
	}
	p, err := e.policy(c)
	if err != nil {
		return err
	}
	ttl, never, err := e.lifetime(c, p, caveat.KindCLI)
	if err != nil {
		return err
	}
	keys, err := e.openKeys(c)
	if err != nil {
		return err
	}
	store, err := e.openStore(c)
	if err != nil {
		return err
	}
	defer store.Close()
	// Minting for an editor that cannot use the token helps nobody.
	ed, err := findEditor(c, store, a[0])
	switch {
	case err != nil:
		return err
	case ed.Locked():
		return fmt.Errorf("editor %s is locked; unlock it first", ed.ID)
	case !ed.Active:
		return fmt.Errorf("editor %s is deactivated; activate it first", ed.ID)
	}
	minter, err := macaroon.NewMinter(keys, c.String("location"), macaroon.WithMintClock(e.now))
	if err != nil {
		return err
	}
	opts := []macaroon.MintOption{macaroon.WithKind(caveat.KindCLI), macaroon.WithCaveats(cavs...)}
	if !never {
		if ttl == 0 {
			ttl = p.CLI
		}
		opts = append(opts, macaroon.ExpiresIn(ttl))
	}
	m, err := minter.Mint(c.Context, ed.ID, opts...)
	if err != nil {
		return err
	}
	e.record(c, store, epoch.AuditTokenMinted, audit.Target{EditorID: ed.ID, TokenID: m.TokenID, KeyID: m.KeyID, Detail: "kind cli"})
	switch {
	case c.Bool("json"):
		j := map[string]any{"token": m.Token, "token_id": m.TokenID, "key_id": m.KeyID, "editor_id": ed.ID, "created": m.Created}
		if !m.Expires.IsZero() {
			j["expires"] = m.Expires
		}
		return e.printJSON(j)
	case c.Bool("env-format"):
		name := c.String("env-name")
		if !validEnvName(name) {
			return usagef("--env-name %q is not a shell variable name", name)
		}
		fmt.Fprintf(e.stdout, "%s=%s\n", name, m.Token)
	default:
		fmt.Fprintln(e.stdout, m.Token)
	}
	return nil
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// tokenArg returns the command's only argument, a token or "-" for stdin.
func (e *env) tokenArg(c *cli.Context) (string, error) {
	a, err := args(c, "token")
	if err != nil {
		return "", err
	}
	return e.readToken(a[0])
}

func (e *env) inspect(c *cli.Context) error {
	text, err := e.tokenArg(c)
	if err != nil {
		return err
	}
	tok, err := macaroon.Parse(text, macaroon.Limits{})
	if err != nil {
		return err
	}
	cl := claimsOf(tok)
	// Whether it verifies now, for no particular request: caveats that
	// restrict requests are reported, not counted as failures.
	status, reason := "unknown", ""
	var id verifier.Identity
	v, closeStore, err := e.newVerifier(c)
	if err != nil {
		reason = err.Error()
	} else {
		defer closeStore()
		id, err = v.Verify(c.Context, text, caveat.Request{})
		switch {
		case err == nil:
			status = "yes"
		case errors.Is(err, verifier.ErrCaveatNotSatisfied) && verifier.ProblemFor(err).Status == 403:
			status, reason = "yes, for requests its caveats allow", err.Error()
		default:
			status, reason = "no", err.Error()
		}
	}
	if c.Bool("json") {
		// printJSON escapes every control, format and other non-printable
		// character, so the unsigned location and the caveats reach a
		// terminal as data.
		j := map[string]any{
			"location": tok.Location(), "location_signed": false, "identifier": tok.Identifier(), "key_id": tok.KeyID(),
			"token_id": tok.TokenID(), "caveats": tok.Caveats(), "verifies": status,
		}
		if cl != nil {
			j["never_expires"] = cl.Expires.IsZero()
			if !cl.Expires.IsZero() {
				j["expires"] = cl.Expires
			}
		}
		if reason != "" {
			j["reason"] = reason
		}
		if status == "yes" {
			j["identity"] = id
		}
		return e.printJSON(j)
	}
	// Everything taken from the token is escaped (escapeText): a crafted
	// location or caveat cannot add lines, move the cursor or reorder text.
	w := func(k, v string) { fmt.Fprintf(e.stdout, "%-10s %s\n", k, escapeText(v)) }
	w("location", "(unsigned, decides nothing): "+tok.Location())
	w("key_id", tok.KeyID())
	if tok.TokenID() == "" {
		w("token_id", "- (fatcat format: the identifier names only the key)")
	} else {
		w("token_id", tok.TokenID())
	}
	if cl != nil {
		w("expires", expiresText(cl.Expires))
	}
	for i, cv := range tok.Caveats() {
		k := ""
		if i == 0 {
			k = "caveats"
		}
		w(k, cv)
	}
	if reason != "" {
		w("verifies", status+": "+reason)
	} else {
		w("verifies", status)
	}
	return nil
}

// escapeText makes s safe to print on a terminal line: C0 controls, DEL and
// bytes that are not UTF-8 become \xNN, other non-printable characters (C1
// controls such as U+009B CSI, bidirectional controls, format characters,
// spaces other than ' ') become \uXXXX or \UXXXXXXXX, and a backslash
// becomes \\, so every escape is unambiguous.
func escapeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1, r < 0x20, r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r == '\\':
			b.WriteString("\\\\")
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		case r <= 0xffff:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			fmt.Fprintf(&b, "\\U%08x", r)
		}
		i += n
	}
	return b.String()
}

// escapeJSON rewrites encoding/json output so that it holds only printable
// characters: encoding/json writes C1 controls (U+0080 to U+009F),
// bidirectional and other format characters raw, and a terminal obeys
// them. Each becomes a \uXXXX escape (a surrogate pair above U+FFFF), which
// decodes to the same string. Such characters only occur inside JSON
// strings, where the escape is valid.
func escapeJSON(data []byte) []byte {
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r < 0x7f || r == utf8.RuneError && n == 1 || r > 0x7f && unicode.IsPrint(r) {
			out = append(out, data[i:i+n]...)
		} else if r <= 0xffff {
			out = fmt.Appendf(out, "\\u%04x", r)
		} else {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, "\\u%04x\\u%04x", r1, r2)
		}
		i += n
	}
	return out
}

func (e *env) attenuate(c *cli.Context) error {
	text, err := e.tokenArg(c)
	if err != nil {
		return err
	}
	cavs, err := restrictions(c)
	if err != nil {
		return err
	}
	if d := c.Duration("expires"); d != 0 {
		if d < 0 {
			return usagef("--expires must be positive")
		}
		cavs = append(cavs, caveat.ExpiresAt(e.now().Add(d)))
	}
	if len(cavs) == 0 {
		return usagef("attenuate needs at least one of --expires, --right, --endpoint, --method, --path-prefix")
	}
	out, err := macaroon.Attenuate(text, cavs...)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return e.printJSON(map[string]string{"token": out})
	}
	fmt.Fprintln(e.stdout, out)
	return nil
}

func (e *env) verify(c *cli.Context) error {
	text, err := e.tokenArg(c)
	if err != nil {
		return err
	}
	v, closeStore, err := e.newVerifier(c)
	if err != nil {
		return err
	}
	defer closeStore()
	req := caveat.Request{
		Endpoint: c.String("endpoint"),
		Method:   strings.ToUpper(c.String("method")),
		Path:     c.String("path"),
		Rights:   c.StringSlice("right"),
	}
	id, err := v.Verify(c.Context, text, req)
	if err != nil {
		return fmt.Errorf("token rejected: %w", err)
	}
	if c.Bool("json") {
		return e.printJSON(id)
	}
	e.printIdentity(id)
	return nil
}

// check validates an API token's format offline (macaroon.CheckAPIFormat):
// the prefix, the checksum and the macaroon inside. It needs no key, so it
// says nothing of the signature; it prints the ids a leak report needs to
// find and revoke the token, never the token.
func (e *env) check(c *cli.Context) error {
	text, err := e.tokenArg(c)
	if err != nil {
		return err
	}
	tok, err := macaroon.CheckAPIFormat(text)
	if err != nil {
		// The error never repeats the token (CheckAPIFormat's contract).
		return fmt.Errorf("not a well-formed API token: %w", err)
	}
	if c.Bool("json") {
		return e.printJSON(map[string]any{"format": "api", "checksum": "ok", "key_id": tok.KeyID(), "token_id": tok.TokenID(), "caveats": tok.NumCaveats()})
	}
	w := func(k, v string) { fmt.Fprintf(e.stdout, "%-10s %s\n", k, escapeText(v)) }
	w("format", "API token (prefix and checksum valid; the signature is not checked)")
	w("key_id", tok.KeyID())
	w("token_id", tok.TokenID())
	return nil
}
