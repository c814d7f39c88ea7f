package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/epoch"
)

// record appends the audit event of a CLI action that has just committed,
// as the operator's CLI with the OS user. The action is done whatever
// happens here: a failure to record is said on stderr (the exit status
// stays 0, so that a token just created is not lost to a script's error
// path).
func (e *env) record(c *cli.Context, s audit.Recorder, action epoch.AuditAction, t audit.Target) {
	if err := s.RecordAudit(c.Context, audit.CLI().Event(action, t, e.now())); err != nil {
		fmt.Fprintf(e.stderr, "amaretti: warning: done, but not recorded in the audit trail: %s\n", oneLine(err.Error()))
	}
}

// recordKeys records a key action: keys may live in a directory, so the
// store is opened for the record alone.
func (e *env) recordKeys(c *cli.Context, action epoch.AuditAction, keyID string) {
	s, err := e.openStore(c)
	if err != nil {
		fmt.Fprintf(e.stderr, "amaretti: warning: done, but not recorded in the audit trail: %s\n", oneLine(err.Error()))
		return
	}
	defer s.Close()
	e.record(c, s, action, audit.Target{KeyID: keyID})
}

// parseSince reads --since: an RFC 3339 time, or a duration back from now.
func (e *env) parseSince(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return e.now().Add(-d), nil
	}
	return time.Time{}, usagef("--since %q is neither an RFC 3339 time nor a positive duration such as 24h", v)
}

// actorText is who did it, as "audit list" shows it.
func actorText(ev epoch.AuditEvent) string {
	switch ev.Actor {
	case epoch.ActorCLI:
		return "cli:" + ev.OSUser
	case epoch.ActorToken:
		if ev.ActorTokenID != "" {
			return ev.ActorEditorID + "/" + ev.ActorTokenID
		}
		return ev.ActorEditorID
	}
	return ev.Actor
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (e *env) auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "read the audit trail: every management action and refused uses of API tokens (append-only)",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list audit events, newest first",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "editor", Usage: "events done by or to editor `ID`"},
					&cli.StringFlag{Name: "token", Usage: "events done with or to token `ID`"},
					&cli.StringFlag{Name: "action", Usage: "events of one `ACTION` (editor.touched, token.refused, …)"},
					&cli.StringFlag{Name: "since", Usage: "events at or after `T`: an RFC 3339 time, or a duration back from now (24h)"},
					&cli.IntFlag{Name: "limit", Value: 100, Usage: "at most `N` events (1 to 1000)"},
					&cli.Int64Flag{Name: "before", Usage: "the `CURSOR` a previous page ended with: events older than it"},
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					if _, err := args(c); err != nil {
						return err
					}
					since, err := e.parseSince(c.String("since"))
					if err != nil {
						return err
					}
					if n := c.Int("limit"); n < 1 || n > epoch.MaxAuditPage {
						return usagef("--limit must be 1 to %d", epoch.MaxAuditPage)
					}
					if c.Int64("before") < 0 {
						return usagef("--before must be a cursor printed by a previous page")
					}
					events, next, err := s.AuditEvents(c.Context, epoch.AuditFilter{EditorID: c.String("editor"), TokenID: c.String("token"),
						Action: epoch.AuditAction(c.String("action")), Since: since, Before: c.Int64("before"), Limit: c.Int("limit")})
					if err != nil {
						return err
					}
					if c.Bool("json") {
						if events == nil {
							events = []epoch.AuditEvent{}
						}
						out := map[string]any{"events": events}
						if next != 0 {
							out["next"] = strconv.FormatInt(next, 10)
						}
						return e.printJSON(out)
					}
					rows := make([][]string, 0, len(events))
					for _, ev := range events {
						rows = append(rows, []string{strconv.FormatInt(ev.ID, 10), formatTime(ev.At), string(ev.Action), actorText(ev), dash(ev.From),
							dash(ev.EditorID), dash(ev.TokenID), dash(ev.KeyID), strconv.FormatInt(ev.Count, 10), dash(strings.ReplaceAll(ev.Detail, "\t", " "))})
					}
					if err := e.table("ID\tAT\tACTION\tBY\tFROM\tEDITOR\tTOKEN\tKEY\tCOUNT\tDETAIL", rows); err != nil {
						return err
					}
					if next != 0 {
						fmt.Fprintf(e.stderr, "more: amaretti audit list --before %d\n", next)
					}
					return nil
				}),
			},
			{
				Name:  "prune",
				Usage: "delete audit events older than a retention period (the only deletion there is; it is itself recorded)",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "older-than", Required: true, Usage: "the retention `PERIOD`, e.g. 8760h for a year"},
				},
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					if _, err := args(c); err != nil {
						return err
					}
					d := c.Duration("older-than")
					if d <= 0 {
						return usagef("--older-than must be positive")
					}
					now := e.now()
					n, err := s.PruneAudit(c.Context, now.Add(-d), audit.CLI().Event(epoch.AuditPruned, audit.Target{}, now))
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return e.printJSON(map[string]int64{"pruned": n})
					}
					fmt.Fprintf(e.stdout, "pruned %d audit events older than %s\n", n, formatTime(now.Add(-d)))
					return nil
				}),
			},
		},
	}
}
