package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
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

var (
	reUndefined  = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	reBadValue   = regexp.MustCompile(`^invalid value "(.*)" for flag -+([^:]+): `)
	reNeedsValue = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
)

// flagProblem rewrites a flag parsing error from the flag package as one
// line that names the command and what to type instead.
func flagProblem(c *cli.Context, err error) string {
	where, help := here(c)
	msg := err.Error()
	if m := reUndefined.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%sunknown flag --%s (see %s)", where, m[1], help)
	}
	if m := reNeedsValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s--%s needs a value (see %s)", where, m[1], help)
	}
	if m := reBadValue.FindStringSubmatch(msg); m != nil {
		value, name := m[1], m[2]
		if isDurationFlag(c, name) {
			return fmt.Sprintf("%s--%s %q is not a duration: use a number with h, m or s, e.g. 15m, 24h, or 720h for 30 days (there is no d)", where, name, value)
		}
		return fmt.Sprintf("%s--%s %q: %s (see %s)", where, name, value, strings.TrimSpace(msg[len(m[0]):]), help)
	}
	return fmt.Sprintf("%s%s (see %s)", where, strings.ReplaceAll(msg, "\n", "; "), help)
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

// isDurationFlag reports whether the running command (or the app) defines
// name as a duration flag.
func isDurationFlag(c *cli.Context, name string) bool {
	var flags []cli.Flag
	if c.Command != nil {
		flags = append(flags, c.Command.Flags...)
	}
	flags = append(flags, c.App.Flags...)
	for _, f := range flags {
		if _, ok := f.(*cli.DurationFlag); ok {
			for _, n := range f.Names() {
				if n == name {
					return true
				}
			}
		}
	}
	return false
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
