// Package cliflag turns the flag parsing errors urfave/cli passes to an
// OnUsageError hook into one line that names the flag and the fix, for
// amaretti and amarettid alike. urfave/cli's own reaction prints the whole
// help, and the flag package reduces a duration without a unit to "parse
// error" (it drops time.ParseDuration's message).
package cliflag

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/urfave/cli/v2"
)

var (
	reUndefined  = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	reBadValue   = regexp.MustCompile(`^invalid value "(.*)" for flag -+([^:]+): `)
	reBadBool    = regexp.MustCompile(`^invalid boolean value "(.*)" for -+([^:]+): `)
	reNeedsValue = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
	reBadEnv     = regexp.MustCompile(`^could not parse "(.*)" as \w+ value from environment variable "([^"]+)" for flag ([^:]+): `)
)

// Problem rewrites err, a flag parsing error raised while c parsed its
// flags, as one line: where is its prefix (the command, as "token mint: ",
// or ""), help the command that shows the help ("amaretti token mint
// --help"). Errors it does not recognise keep their text, on one line.
func Problem(c *cli.Context, err error, where, help string) string {
	msg := err.Error()
	if m := reUndefined.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%sunknown flag --%s (see %s)", where, escape(m[1]), help)
	}
	if m := reNeedsValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s--%s needs a value (see %s)", where, escape(m[1]), help)
	}
	if m := reBadBool.FindStringSubmatch(msg); m != nil {
		name := escape(m[2])
		return fmt.Sprintf("%s--%s %q is not a boolean: use --%s (true) or --%s=false (see %s)", where, name, unquote(m[1]), name, name, help)
	}
	if m := reBadValue.FindStringSubmatch(msg); m != nil {
		name := escape(m[2])
		return where + badValue(c, "--"+name, name, unquote(m[1]), msg[len(m[0]):], help)
	}
	if m := reBadEnv.FindStringSubmatch(msg); m != nil {
		name := escape(m[3])
		return where + badValue(c, escape(m[2])+" (--"+name+")", name, unquote(m[1]), msg[len(m[0]):], help)
	}
	return fmt.Sprintf("%s%s (see %s)", where, escape(strings.ReplaceAll(msg, "\n", "; ")), help)
}

// unquote returns the value the flag package quoted (%q) in its message,
// so that it is quoted once in ours.
func unquote(quoted string) string {
	if s, err := strconv.Unquote(`"` + quoted + `"`); err == nil {
		return s
	}
	return quoted
}

// escape writes the control characters of s (a flag's name or value as
// typed) as Go escapes, so that the message stays one line.
func escape(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// badValue says why value, given to the flag name as what (the flag, or
// the environment variable), is refused: by the kind of flag, else by the
// parser's own reason.
func badValue(c *cli.Context, what, name, value, reason, help string) string {
	switch lookup(c, name).(type) {
	case *cli.DurationFlag:
		return fmt.Sprintf("%s %q is not a duration: use a number with h, m or s, e.g. 15m, 24h, or 720h for 30 days (there is no d)", what, value)
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		return fmt.Sprintf("%s %q is not a whole number (see %s)", what, value, help)
	case *cli.BoolFlag:
		return fmt.Sprintf("%s %q is not a boolean: use true or false (see %s)", what, value, help)
	}
	return fmt.Sprintf("%s %q: %s (see %s)", what, value, escape(strings.TrimSpace(reason)), help)
}

// lookup returns the flag the running command (or the app) defines as
// name, or nil.
func lookup(c *cli.Context, name string) cli.Flag {
	var flags []cli.Flag
	if c.Command != nil {
		flags = append(flags, c.Command.Flags...)
	}
	if c.App != nil {
		flags = append(flags, c.App.Flags...)
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}
