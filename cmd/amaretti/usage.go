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
// error in any command becomes a usageError.
func withUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		withUsageErrors(c.Subcommands)
	}
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
