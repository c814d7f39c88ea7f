package main

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
)

type editorJSON struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	Bot       bool      `json:"bot"`
	Active    bool      `json:"active"`
	Locked    bool      `json:"locked"`
	AuthEpoch time.Time `json:"auth_epoch"`
	Created   time.Time `json:"created"`
	Version   int64     `json:"version"`
}

func toJSON(ed epoch.Editor) editorJSON {
	return editorJSON{ed.ID, ed.Username, string(ed.Role), ed.Bot, ed.Active, ed.Locked(), ed.AuthEpoch, ed.Created, ed.Version}
}

func epochText(ed epoch.Editor) string {
	if ed.Locked() {
		return "locked"
	}
	return formatTime(ed.AuthEpoch)
}

// editorActions are the audit actions of oneEditor's verbs.
var editorActions = map[string]epoch.AuditAction{
	"locked": epoch.AuditEditorLocked, "unlocked": epoch.AuditEditorUnlocked,
	"activated": epoch.AuditEditorActivated, "deactivated": epoch.AuditEditorDeactivated,
}

func (e *env) editorCommand() *cli.Command {
	show := func(c *cli.Context, ed epoch.Editor) error {
		if c.Bool("json") {
			return e.printJSON(toJSON(ed))
		}
		w := func(k, v string) { fmt.Fprintf(e.stdout, "%-11s %s\n", k, v) }
		w("id", ed.ID)
		w("username", ed.Username)
		w("role", string(ed.Role))
		w("active", strconv.FormatBool(ed.Active))
		w("auth_epoch", epochText(ed))
		w("created", formatTime(ed.Created))
		return nil
	}
	// oneEditor runs an epoch change on the editor named by the only argument.
	oneEditor := func(verb string, f func(s epoch.Store) func(c *cli.Context, id string) (epoch.Editor, error)) cli.ActionFunc {
		return e.withStore(func(c *cli.Context, s epoch.Store) error {
			target, err := editorArg(c, s)
			if err != nil {
				return err
			}
			ed, err := f(s)(c, target.ID)
			if err != nil {
				return fmt.Errorf("%s: %w", target.ID, err)
			}
			e.record(c, s, editorActions[verb], audit.Target{EditorID: ed.ID})
			if err := e.announce(c, s, ed); err != nil {
				return err
			}
			if c.Bool("json") {
				return e.printJSON(toJSON(ed))
			}
			fmt.Fprintf(e.stdout, "%s %s (%s): auth_epoch %s\n", verb, ed.ID, ed.Username, epochText(ed))
			return nil
		})
	}
	return &cli.Command{
		Name:  "editor",
		Usage: "manage editors and their auth epochs",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create an editor and print its id",
				ArgsUsage: "USERNAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "id", Usage: "editor id (default: generated, 26 characters of base32)"},
					&cli.StringFlag{Name: "role", Value: "editor", Usage: "editor, bot, admin or superuser"},
					&cli.StringFlag{Name: "epoch", Usage: "initial auth_epoch, RFC 3339 (default now); an early epoch keeps tokens minted elsewhere valid, as when importing fatcat editors"},
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					a, err := args(c, "username")
					if err != nil {
						return err
					}
					n := epoch.NewEditor{ID: c.String("id"), Username: a[0], Role: epoch.Role(c.String("role"))}
					switch {
					case !n.Role.Valid():
						return usagef("editor create: --role %q is not a role: use editor, bot, admin or superuser", n.Role)
					case !caveat.ValidUsername(n.Username):
						return usagef("editor create: %q is not a valid username: 1 to 64 of A-Z a-z 0-9 _ . -, starting with a letter or digit", n.Username)
					case n.ID != "" && !caveat.ValidEditorID(n.ID):
						return usagef("editor create: --id %q is not a valid editor id: 1 to 64 of a-z 0-9 _ -, starting with a letter or digit", n.ID)
					}
					if v := c.String("epoch"); v != "" {
						if n.Epoch, err = time.Parse(time.RFC3339Nano, v); err != nil {
							return usagef("--epoch %q is not an RFC 3339 time (e.g. 2019-01-01T00:00:00Z)", v)
						}
					}
					ed, err := s.Create(c.Context, n)
					if errors.Is(err, epoch.ErrExists) && n.ID == "" {
						return fmt.Errorf("username %q is taken", n.Username)
					}
					if err != nil {
						return err
					}
					e.record(c, s, epoch.AuditEditorCreated, audit.Target{EditorID: ed.ID, Detail: "role " + string(ed.Role)})
					if c.Bool("json") {
						return e.printJSON(toJSON(ed))
					}
					fmt.Fprintln(e.stdout, ed.ID)
					return nil
				}),
			},
			{
				Name:  "list",
				Usage: "list editors",
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					if _, err := args(c); err != nil {
						return err
					}
					eds, err := s.List(c.Context)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						out := make([]editorJSON, 0, len(eds))
						for _, ed := range eds {
							out = append(out, toJSON(ed))
						}
						return e.printJSON(out)
					}
					rows := make([][]string, 0, len(eds))
					for _, ed := range eds {
						rows = append(rows, []string{ed.ID, ed.Username, string(ed.Role), strconv.FormatBool(ed.Active), epochText(ed)})
					}
					return e.table("ID\tUSERNAME\tROLE\tACTIVE\tAUTH_EPOCH", rows)
				}),
			},
			{
				Name:      "show",
				Usage:     "show one editor, by id or username",
				ArgsUsage: "EDITOR_ID|USERNAME",
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					ed, err := editorArg(c, s)
					if err != nil {
						return err
					}
					return show(c, ed)
				}),
			},
			{
				Name:      "links",
				Usage:     "list the login identities linked to an editor (by id or username)",
				ArgsUsage: "EDITOR_ID|USERNAME",
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					ed, err := editorArg(c, s)
					if err != nil {
						return err
					}
					links, err := s.Links(c.Context, ed.ID)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						if links == nil {
							links = []epoch.Link{}
						}
						return e.printJSON(links)
					}
					rows := make([][]string, 0, len(links))
					for _, l := range links {
						rows = append(rows, []string{l.Provider, l.Subject, formatTime(l.Created)})
					}
					return e.table("PROVIDER\tSUBJECT\tCREATED", rows)
				}),
			},
			{
				Name:      "unlink",
				Usage:     "remove an editor's login identity at a provider: its next login there no longer finds this editor (tokens already minted keep working until a touch)",
				ArgsUsage: "EDITOR_ID|USERNAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "provider", Required: true, Usage: "the OIDC issuer URL, or dev, as editor links shows it"},
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					ed, err := editorArg(c, s)
					if err != nil {
						return err
					}
					l, err := s.Unlink(c.Context, ed.ID, c.String("provider"))
					if errors.Is(err, epoch.ErrNotFound) {
						return fmt.Errorf("unlink: %s (%s) has no identity at %s (amaretti editor links %s shows its identities)", ed.ID, ed.Username, c.String("provider"), ed.ID)
					}
					if err != nil {
						return fmt.Errorf("unlink %s: %w", ed.ID, err)
					}
					e.record(c, s, epoch.AuditEditorUnlinked, audit.Target{EditorID: ed.ID, Detail: "provider " + l.Provider})
					if c.Bool("json") {
						return e.printJSON(l)
					}
					fmt.Fprintf(e.stdout, "unlinked %s (%s) from %s at %s; its tokens still work until \"amaretti editor touch %s\"\n", ed.ID, ed.Username, l.Subject, l.Provider, ed.ID)
					return nil
				}),
			},
			{
				Name:      "touch",
				Usage:     "revoke every token of an editor (or, with --all, of every editor) by moving its auth_epoch to now",
				ArgsUsage: "EDITOR_ID|USERNAME | --all",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "all", Usage: "touch every editor"},
					&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation with --all"},
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					if !c.Bool("all") {
						target, err := editorArg(c, s)
						if err != nil {
							return err
						}
						ed, err := s.Touch(c.Context, target.ID)
						if err != nil {
							return fmt.Errorf("touch %s: %w", target.ID, err)
						}
						e.record(c, s, epoch.AuditEditorTouched, audit.Target{EditorID: ed.ID})
						if err := e.announce(c, s, ed); err != nil {
							return err
						}
						if c.Bool("json") {
							return e.printJSON(toJSON(ed))
						}
						fmt.Fprintf(e.stdout, "touched %s (%s): tokens created up to %s are revoked\n", ed.ID, ed.Username, epochText(ed))
						return nil
					}
					if c.NArg() != 0 {
						return usagef("touch --all takes no editor id")
					}
					if !c.Bool("yes") {
						fmt.Fprint(e.stderr, "Touch every editor, revoking every token there is? [y/N] ")
						answer, err := bufio.NewReader(e.stdin).ReadString('\n')
						if err != nil {
							fmt.Fprintln(e.stderr)
						}
						if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
							return fmt.Errorf("not confirmed; nothing touched (use --yes to skip the question)")
						}
					}
					n, err := s.TouchAll(c.Context)
					if err != nil {
						return err
					}
					e.record(c, s, epoch.AuditEditorTouchedAll, audit.Target{Detail: fmt.Sprintf("%d editors", n)})
					if c.String("redis") != "" {
						all, err := s.List(c.Context)
						if err != nil {
							return err
						}
						if err := e.announce(c, s, all...); err != nil {
							return err
						}
					}
					if c.Bool("json") {
						return e.printJSON(map[string]int64{"touched": n})
					}
					fmt.Fprintf(e.stdout, "touched %d editors: every token created until now is revoked\n", n)
					return nil
				}),
			},
			{
				Name: "lock", Usage: "lock an editor: no token works, old or new, until unlocked", ArgsUsage: "EDITOR_ID|USERNAME",
				Action: oneEditor("locked", func(s epoch.Store) func(*cli.Context, string) (epoch.Editor, error) {
					return func(c *cli.Context, id string) (epoch.Editor, error) { return s.Lock(c.Context, id) }
				}),
			},
			{
				Name: "unlock", Usage: "unlock an editor: tokens minted from now on work", ArgsUsage: "EDITOR_ID|USERNAME",
				Action: oneEditor("unlocked", func(s epoch.Store) func(*cli.Context, string) (epoch.Editor, error) {
					return func(c *cli.Context, id string) (epoch.Editor, error) { return s.Unlock(c.Context, id) }
				}),
			},
			{
				Name:      "link",
				Usage:     "link an existing editor (by id or username) to a login identity, so its first login through that provider finds it instead of creating a new editor",
				ArgsUsage: "EDITOR_ID|USERNAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "provider", Required: true, Usage: "the OIDC issuer URL (exactly as the provider reports it), or dev"},
					&cli.StringFlag{Name: "subject", Required: true, Usage: "the provider's stable id of the user (OIDC sub)"},
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					ed, err := editorArg(c, s)
					if err != nil {
						return fmt.Errorf("link: %w", err)
					}
					l, err := s.Link(c.Context, ed.ID, c.String("provider"), c.String("subject"))
					if err != nil {
						return fmt.Errorf("link %s: %w", ed.ID, err)
					}
					e.record(c, s, epoch.AuditEditorLinked, audit.Target{EditorID: ed.ID, Detail: "provider " + l.Provider})
					if c.Bool("json") {
						return e.printJSON(l)
					}
					fmt.Fprintf(e.stdout, "linked %s to %s at %s\n", l.EditorID, l.Subject, l.Provider)
					return nil
				}),
			},
			{
				Name: "deactivate", Usage: "deactivate an editor: its tokens fail until it is activated", ArgsUsage: "EDITOR_ID|USERNAME",
				Action: oneEditor("deactivated", func(s epoch.Store) func(*cli.Context, string) (epoch.Editor, error) {
					return func(c *cli.Context, id string) (epoch.Editor, error) { return s.SetActive(c.Context, id, false) }
				}),
			},
			{
				Name: "activate", Usage: "activate a deactivated editor", ArgsUsage: "EDITOR_ID|USERNAME",
				Action: oneEditor("activated", func(s epoch.Store) func(*cli.Context, string) (epoch.Editor, error) {
					return func(c *cli.Context, id string) (epoch.Editor, error) { return s.SetActive(c.Context, id, true) }
				}),
			},
		},
	}
}

// editorArg finds the editor a command's only argument names, by id or
// username (findEditor).
func editorArg(c *cli.Context, s epoch.Store) (epoch.Editor, error) {
	a, err := args(c, "editor_id|username")
	if err != nil {
		return epoch.Editor{}, err
	}
	return findEditor(c, s, a[0])
}

// findEditor finds an editor by id or, failing that, by username. When
// neither matches it suggests editors whose id or username matches ignoring
// case or starts with what was typed.
func findEditor(c *cli.Context, s epoch.Store, arg string) (epoch.Editor, error) {
	ed, err := s.Editor(c.Context, arg)
	if !errors.Is(err, epoch.ErrNotFound) {
		return ed, err
	}
	ed, err = s.EditorByUsername(c.Context, arg)
	if !errors.Is(err, epoch.ErrNotFound) {
		return ed, err
	}
	all, err := s.List(c.Context)
	if err != nil {
		return epoch.Editor{}, err
	}
	var near []string
	low := strings.ToLower(arg)
	for _, ed := range all {
		u, id := strings.ToLower(ed.Username), strings.ToLower(ed.ID)
		if u == low || id == low || (len(low) >= 2 && (strings.HasPrefix(u, low) || strings.HasPrefix(id, low))) || (len(low) >= 4 && editDistance(u, low) <= 2) {
			near = append(near, fmt.Sprintf("%s (id %s)", ed.Username, ed.ID))
		}
	}
	if len(near) > 0 {
		if len(near) > 5 {
			near = append(near[:5], "…")
		}
		return epoch.Editor{}, fmt.Errorf("%w: %s is neither an editor id nor a username; did you mean %s?", epoch.ErrNotFound, shown(arg), strings.Join(near, ", "))
	}
	return epoch.Editor{}, fmt.Errorf("%w: %s is neither an editor id nor a username (amaretti editor list shows them)", epoch.ErrNotFound, shown(arg))
}

// editDistance is the Levenshtein distance between a and b, in bytes (ids
// and usernames are ASCII), for "did you mean" suggestions.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
