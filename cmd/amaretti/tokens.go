package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

func (e *env) issuer(c *cli.Context, store epoch.Store) (*apitoken.Issuer, error) {
	keys, err := e.openKeys(c)
	if err != nil {
		return nil, err
	}
	minter, err := macaroon.NewMinter(keys, c.String("location"), macaroon.WithMintClock(e.now))
	if err != nil {
		return nil, err
	}
	checker, err := caveat.NewChecker()
	if err != nil {
		return nil, err
	}
	p, err := e.policy(c)
	if err != nil {
		return nil, err
	}
	return apitoken.NewIssuer(store, minter, checker, apitoken.WithClock(e.now), apitoken.WithPolicy(p))
}

// printTokens prints registry rows with their status (apitoken.StatusOf).
func (e *env) printTokens(c *cli.Context, rows []apitoken.Row) error {
	if c.Bool("json") {
		if rows == nil {
			rows = []apitoken.Row{}
		}
		return e.printJSON(rows)
	}
	table := make([][]string, 0, len(rows))
	for _, t := range rows {
		rights := "(all)"
		if t.Rights != nil {
			rights = strings.Join(t.Rights, ",")
		}
		if t.Endpoint != "" {
			rights += " @" + t.Endpoint
		}
		last := "never"
		if !t.LastUsed.IsZero() {
			last = formatTime(t.LastUsed) + " from " + t.LastUsedFrom
			if t.LastAttenuation != "" {
				last += ", attenuated to " + escapeText(t.LastAttenuation)
			}
		}
		status := string(t.Status)
		if t.RotatedTo != "" && t.Revoked.IsZero() {
			status += ", rotated to " + t.RotatedTo + " until " + formatTime(t.GraceUntil)
		}
		expires := formatTime(t.Expires)
		if t.Expires.IsZero() {
			expires = "never"
		}
		table = append(table, []string{t.TokenID, t.EditorID, t.Name, rights, formatTime(t.Created), expires, last, status})
	}
	return e.table("TOKEN_ID\tEDITOR_ID\tNAME\tRIGHTS\tCREATED\tEXPIRES\tLAST_USED\tSTATUS", table)
}

func (e *env) tokensCommand() *cli.Command {
	return &cli.Command{
		Name:  "tokens",
		Usage: "manage API tokens: named, registered, revocable one by one",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create an API token and print it (this is the only time it is shown)",
				ArgsUsage: "EDITOR_ID",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Required: true, Usage: "`NAME` of the token, e.g. laptop (unique among the editor's live tokens)"},
					&cli.StringFlag{Name: "description", Usage: "what the token is for"},
					&cli.StringSliceFlag{Name: "right", Usage: "allow only this `RIGHT` (repeatable; default: unrestricted)"},
					&cli.StringFlag{Name: "endpoint", Usage: "allow only requests naming endpoint `NAME`"},
					expiresFlag(caveat.KindAPI),
					noExpiryFlag,
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					a, err := args(c, "editor_id")
					if err != nil {
						return err
					}
					iss, err := e.issuer(c, s)
					if err != nil {
						return err
					}
					ttl, never, err := e.lifetime(c, iss.Policy(), caveat.KindAPI)
					if err != nil {
						return err
					}
					var rights []string
					if c.IsSet("right") {
						rights = c.StringSlice("right")
					}
					target, err := findEditor(c, s, a[0])
					if err != nil {
						return err
					}
					secret, row, err := iss.Create(c.Context, apitoken.Request{
						EditorID: target.ID, Name: c.String("name"), Description: c.String("description"),
						Rights: rights, Endpoint: c.String("endpoint"), TTL: ttl, NoExpiry: never, Creator: "cli",
					})
					if errors.Is(err, epoch.ErrNotFound) {
						return fmt.Errorf("unknown editor %s", shown(a[0]))
					}
					if err != nil {
						return err
					}
					e.record(c, s, epoch.AuditTokenCreated, audit.Target{EditorID: row.EditorID, TokenID: row.TokenID, Detail: "name " + row.Name})
					if c.Bool("json") {
						return e.printJSON(struct {
							Token string `json:"token"`
							epoch.APIToken
						}{secret, row})
					}
					fmt.Fprintln(e.stdout, secret)
					return nil
				}),
			},
			{
				Name:      "list",
				Usage:     "list API tokens (of one editor, or everyone's); never their secrets",
				ArgsUsage: "[EDITOR_ID]",
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					if c.NArg() > 1 {
						return usagef("usage: amaretti tokens list [EDITOR_ID]")
					}
					p, err := e.policy(c)
					if err != nil {
						return err
					}
					rows, err := apitoken.List(c.Context, s, c.Args().First(), p, e.now())
					if err != nil {
						return err
					}
					return e.printTokens(c, rows)
				}),
			},
			{
				Name:      "revoke",
				Usage:     "revoke one API token (the editor's other tokens keep working)",
				ArgsUsage: "TOKEN_ID|TOKEN|-",
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					a, err := args(c, "token_id")
					if err != nil {
						return err
					}
					id, err := e.tokenIDArg(a[0])
					if err != nil {
						return err
					}
					ed, row, err := s.RevokeToken(c.Context, id)
					if errors.Is(err, epoch.ErrTokenNotFound) {
						return fmt.Errorf("revoke %s: %w (only API tokens are revoked one by one: touch the editor to revoke its other tokens)", id, err)
					}
					if err != nil {
						return fmt.Errorf("revoke %s: %w", id, err)
					}
					e.record(c, s, epoch.AuditTokenRevoked, audit.Target{EditorID: row.EditorID, TokenID: row.TokenID})
					if err := e.announce(c, s, ed); err != nil {
						return err
					}
					if c.Bool("json") {
						return e.printJSON(row)
					}
					fmt.Fprintf(e.stdout, "revoked %s (%q of %s)\n", row.TokenID, row.Name, row.EditorID)
					return nil
				}),
			},
			{
				Name:      "rotate",
				Usage:     "replace an API token with a new one (same name, rights, endpoint, expiry); the old one works until the new one is first used or the grace ends, then is revoked by itself",
				ArgsUsage: "TOKEN_ID|TOKEN|-",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "grace", Value: apitoken.DefaultGrace, Usage: "how long the old token keeps working at most (`DURATION`)"},
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					a, err := args(c, "token_id")
					if err != nil {
						return err
					}
					id, err := e.tokenIDArg(a[0])
					if err != nil {
						return err
					}
					if c.Duration("grace") <= 0 {
						return usagef("--grace must be positive")
					}
					iss, err := e.issuer(c, s)
					if err != nil {
						return err
					}
					// Rotations already due are retired first, so that what
					// is rotated is what verifiers accept.
					if eds, _, err := s.RetireRotated(c.Context); err != nil {
						return err
					} else if err := e.announce(c, s, eds...); err != nil {
						return err
					}
					secret, row, old, err := iss.Rotate(c.Context, apitoken.RotateRequest{TokenID: id, Grace: c.Duration("grace"), Creator: "cli"})
					if err != nil {
						return fmt.Errorf("rotate %s: %w", id, err)
					}
					if err := s.RecordAudit(c.Context, audit.TokenRotated(audit.CLI(), old, row.TokenID, old.GraceUntil, e.now())); err != nil {
						fmt.Fprintf(e.stderr, "amaretti: warning: done, but not recorded in the audit trail: %s\n", oneLine(err.Error()))
					}
					if c.Bool("json") {
						return e.printJSON(struct {
							Token string `json:"token"`
							epoch.APIToken
							Old epoch.APIToken `json:"old"`
						}{secret, row, old})
					}
					fmt.Fprintln(e.stdout, secret)
					fmt.Fprintf(e.stderr, "rotated %s to %s; the old token works until the new one is first used or %s\n", old.TokenID, row.TokenID, formatTime(old.GraceUntil))
					return nil
				}),
			},
			{
				Name:  "expiring",
				Usage: "list live tokens (status live) that expire within a window, to warn their owners",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "within", Value: 7 * 24 * time.Hour, Usage: "the `WINDOW`"},
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					if _, err := args(c); err != nil {
						return err
					}
					if c.Duration("within") <= 0 {
						return usagef("--within must be positive")
					}
					p, err := e.policy(c)
					if err != nil {
						return err
					}
					rows, err := apitoken.Expiring(c.Context, s, c.Duration("within"), p, e.now())
					if err != nil {
						return err
					}
					return e.printTokens(c, rows)
				}),
			},
		},
	}
}

// bootstrapEditors are created by "amaretti bootstrap", as in fatcat's
// deploy notes.
var bootstrapEditors = []struct {
	username string
	role     epoch.Role
	bot      bool
	// rights limit the editor's token (nil: its role's); variable is the
	// environment variable its env file sets.
	rights   []string
	variable string
}{
	{"root", epoch.RoleSuperuser, false, nil, "AMARETTI_TOKEN"},
	{"import-bot", epoch.RoleAdmin, true, nil, "AMARETTI_TOKEN"},
	{"demo-user", epoch.RoleEditor, false, nil, "AMARETTI_TOKEN"},
	// The web frontend's service token: it finds, creates and links the
	// editors who log in (fatcat's "special editor that can create editor
	// accounts via API"), and nothing else.
	{"webfront", epoch.RoleAdmin, true, []string{"admin:logins"}, "WEBFRONT_SERVICE_TOKEN"},
}

func (e *env) bootstrapCommand() *cli.Command {
	return &cli.Command{
		Name:  "bootstrap",
		Usage: "create the root, import-bot, demo-user and webfront editors if missing, and write a token for each to DIR/<name>.env (0600; webfront's is limited to admin:logins, as WEBFRONT_SERVICE_TOKEN)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "env-dir", Required: true, Usage: "`DIR` for the .env files"},
			expiresFlag(caveat.KindBootstrap),
			noExpiryFlag,
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c); err != nil {
				return err
			}
			s, err := e.openStore(c)
			if err != nil {
				return err
			}
			defer s.Close()
			iss, err := e.issuer(c, s)
			if err != nil {
				return err
			}
			ttl, never, err := e.lifetime(c, iss.Policy(), caveat.KindBootstrap)
			if err != nil {
				return err
			}
			dir := c.String("env-dir")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			for _, b := range bootstrapEditors {
				ed, err := s.EditorByUsername(c.Context, b.username)
				switch {
				case errors.Is(err, epoch.ErrNotFound):
					if ed, err = s.Create(c.Context, epoch.NewEditor{Username: b.username, Role: b.role, Bot: b.bot}); err != nil {
						return err
					}
					e.record(c, s, epoch.AuditEditorCreated, audit.Target{EditorID: ed.ID, Detail: "role " + string(ed.Role) + " (bootstrap)"})
					fmt.Fprintf(e.stdout, "created editor %s (%s) %s\n", b.username, b.role, ed.ID)
				case err != nil:
					return err
				default:
					fmt.Fprintf(e.stdout, "editor %s exists: %s\n", b.username, ed.ID)
					if ed.Role != b.role {
						fmt.Fprintf(e.stderr, "warning: editor %s has role %s, not %s as bootstrap makes it; its token can do only what a %s may (change the role, or use another editor)\n", b.username, ed.Role, b.role, ed.Role)
					}
				}
				path := filepath.Join(dir, b.username+".env")
				if _, err := os.Stat(path); err == nil {
					fmt.Fprintf(e.stdout, "  %s exists: unchanged\n", path)
					continue
				}
				// The file is gone, so the old bootstrap token's secret is lost:
				// revoke it and make a new one.
				if rows, err := s.Tokens(c.Context, ed.ID); err == nil {
					for _, t := range rows {
						if t.Name == "bootstrap" && t.Revoked.IsZero() {
							revoked, _, err := s.RevokeToken(c.Context, t.TokenID)
							if err != nil {
								return err
							}
							e.record(c, s, epoch.AuditTokenRevoked, audit.Target{EditorID: t.EditorID, TokenID: t.TokenID, Detail: "bootstrap: its env file was gone"})
							if err := e.announce(c, s, revoked); err != nil {
								return err
							}
							fmt.Fprintf(e.stdout, "  %s was gone: revoked its token %s\n", path, t.TokenID)
						}
					}
				}
				secret, row, err := iss.Create(c.Context, apitoken.Request{EditorID: ed.ID, Name: "bootstrap", Description: "written by amaretti bootstrap to " + path,
					Creator: "cli", Kind: caveat.KindBootstrap, TTL: ttl, NoExpiry: never, Rights: b.rights})
				if err != nil {
					return err
				}
				e.record(c, s, epoch.AuditTokenCreated, audit.Target{EditorID: ed.ID, TokenID: row.TokenID, Detail: "name bootstrap"})
				content := fmt.Sprintf("# %s (%s), editor %s\n%s=%s\n", b.username, b.role, ed.ID, b.variable, secret)
				if err := writePrivate(path, []byte(content)); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "  wrote %s\n", path)
			}
			return nil
		},
	}
}

// writePrivate writes a 0600 file atomically.
func writePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// tokenIDArg reads the token "tokens revoke" names: its id (an upper-case
// UUID, as "tokens list" shows it), or the token itself (as "tokens create"
// printed it; "-" reads it from stdin), whose id it takes. The token is
// never echoed.
func (e *env) tokenIDArg(arg string) (string, error) {
	if caveat.ValidTokenID(arg) {
		return arg, nil
	}
	if strings.EqualFold(arg, strings.ToUpper(arg)) && caveat.ValidTokenID(strings.ToUpper(arg)) {
		return strings.ToUpper(arg), nil
	}
	text, err := e.readToken(arg)
	if err != nil {
		return "", err
	}
	tok, err := macaroon.Parse(text, macaroon.Limits{})
	if err != nil {
		return "", usagef("%s is neither a token id (an upper-case UUID, as \"tokens list\" shows) nor a token", shown(arg))
	}
	if tok.TokenID() == "" {
		return "", usagef("the token has no token id: only API tokens are revoked one by one (touch the editor to revoke its other tokens)")
	}
	return tok.TokenID(), nil
}
