package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/internal/cliflag"
)

// The command-line contract: a usage error is one line on stderr, naming
// the command and the fix, and exit status 2. urfave/cli's own reactions
// (the whole help and exit 1 for a bad flag value, "No help topic for …"
// and exit 1 for an unknown command) are replaced here.

// withUsageErrors sets OnUsageError on every command below cmds, so a flag
// error in any command becomes a usageError, and checks their required
// flags itself: urfave/cli prints the whole help on stdout when one is
// missing.
func withUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		if required := unrequire(c.Flags); len(required) > 0 {
			before := c.Before
			c.Before = func(ctx *cli.Context) error {
				for _, name := range required {
					if !ctx.IsSet(name) {
						where, help := here(ctx)
						return usagef("%s--%s is required (see %s)", where, name, help)
					}
				}
				if before != nil {
					return before(ctx)
				}
				return nil
			}
		}
		withUsageErrors(c.Subcommands)
	}
}

// unrequire clears Required on flags and returns their names.
func unrequire(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		var required *bool
		switch f := f.(type) {
		case *cli.StringFlag:
			required = &f.Required
		case *cli.DurationFlag:
			required = &f.Required
		case *cli.IntFlag:
			required = &f.Required
		case *cli.Int64Flag:
			required = &f.Required
		case *cli.BoolFlag:
			required = &f.Required
		case *cli.StringSliceFlag:
			required = &f.Required
		default: // TestRequiredFlags fails for a required flag of another type
			continue
		}
		if *required {
			*required = false
			names = append(names, f.Names()[0])
		}
	}
	return names
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError{flagProblem(c, err)}
}

// flagProblem rewrites a flag parsing error from the flag package as one
// line that names the command and what to type instead.
func flagProblem(c *cli.Context, err error) string {
	where, help := here(c)
	return cliflag.Problem(c, err, where, help)
}

// here returns the prefix naming the running command in a message ("token
// mint: ", or "" for amaretti itself) and where its help is.
func here(c *cli.Context) (prefix, help string) {
	p := commandPath(c)
	if p == "" {
		return "", "amaretti --help"
	}
	return p + ": ", "amaretti " + p + " --help"
}

// commandNotFound is urfave/cli's hook for a word that is not a command: it
// cannot return an error, so it records one for run to report.
func (e *env) commandNotFound(c *cli.Context, name string) {
	where, help := here(c)
	var names []string
	for _, sub := range c.Command.Subcommands {
		if !sub.Hidden && sub.Name != "help" {
			names = append(names, sub.Name)
		}
	}
	if len(names) == 0 {
		for _, sub := range c.App.Commands {
			if !sub.Hidden {
				names = append(names, sub.Name)
			}
		}
	}
	e.usage = usagef("%sunknown command %q (commands: %s; see %s)", where, name, strings.Join(names, ", "), help)
}
