// Package cliflag turns the flag parsing errors urfave/cli passes to an
// OnUsageError hook into one line that names the flag and the fix, for
// amaretti and amarettid alike. urfave/cli's own reaction prints the whole
// help, and the flag package reduces a duration without a unit to "parse
// error" (it drops time.ParseDuration's message).
//
// What the user typed is repeated only when it is short and cannot be a
// secret: a value given to the wrong flag may be a token, a password or a
// URL holding one (a forgotten flag value takes the next argument), so a
// value is quoted only when it is at most MaxShown bytes without "/", "@"
// or anything unprintable, and a flag name only up to its first character
// that no flag name has.
package cliflag

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
)

// MaxShown is the longest value an error repeats.
const MaxShown = 32

// The messages of the flag package (Go 1.26) and of urfave/cli v2's
// environment variables. (?s): a typed name or value may hold a newline.
var (
	reUndefined  = regexp.MustCompile(`(?s)^flag provided but not defined: -+(.*)$`)
	reBadValue   = regexp.MustCompile(`(?s)^invalid value "(.*)" for flag -+([^:]*): (.*)$`)
	reBadBool    = regexp.MustCompile(`(?s)^invalid boolean value "(.*)" for -+([^:]*): `)
	reNeedsValue = regexp.MustCompile(`(?s)^flag needs an argument: -+(.*)$`)
	reBadSyntax  = regexp.MustCompile(`(?s)^bad flag syntax: (.*)$`)
	reBadEnv     = regexp.MustCompile(`(?s)^could not parse "(.*)" as [\w ]+ value from environment variable "([^"]*)" for flag ([^:]*): (.*)$`)
)

// Problem rewrites err, a flag parsing error raised while c parsed its
// flags, as one line: where is its prefix (the command, as "token mint: ",
// or ""), help the command that shows the help ("amaretti token mint
// --help"). Errors it does not recognise keep their text, on one line.
func Problem(c *cli.Context, err error, where, help string) string {
	msg := err.Error()
	if m := reUndefined.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%sunknown flag %s (see %s)", where, flag(m[1]), help)
	}
	if m := reNeedsValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s%s needs a value (see %s)", where, flag(m[1]), help)
	}
	if m := reBadSyntax.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%san argument of %d bytes starting with - is not a flag (see %s)", where, len(m[1]), help)
	}
	if m := reBadBool.FindStringSubmatch(msg); m != nil {
		f := flag(m[2])
		return fmt.Sprintf("%s%s %s is not a boolean: use %s (true) or %s=false (see %s)", where, f, value(unquote(m[1])), f, f, help)
	}
	if m := reBadValue.FindStringSubmatch(msg); m != nil {
		return where + badValue(c, flag(m[2]), m[2], unquote(m[1]), m[3], help)
	}
	if m := reBadEnv.FindStringSubmatch(msg); m != nil {
		return where + badValue(c, escape(m[2])+" ("+flag(m[3])+")", m[3], unquote(m[1]), m[4], help)
	}
	return fmt.Sprintf("%s%s (see %s)", where, escape(strings.ReplaceAll(msg, "\n", "; ")), help)
}

// badValue says why a value, given to the flag name as what (the flag, or
// its environment variable), is refused: by the kind of flag, else by the
// parser's own reason.
func badValue(c *cli.Context, what, name, v, reason, help string) string {
	switch lookup(c, name).(type) {
	case *cli.DurationFlag:
		return fmt.Sprintf("%s %s is not a duration: use a number with h, m or s, e.g. 15m, 24h, or 720h for 30 days (there is no d)", what, value(v))
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		if strings.Contains(reason, "out of range") {
			return fmt.Sprintf("%s %s is out of range (see %s)", what, value(v), help)
		}
		return fmt.Sprintf("%s %s is not a whole number (see %s)", what, value(v), help)
	case *cli.BoolFlag:
		return fmt.Sprintf("%s %s is not a boolean: use true or false (see %s)", what, value(v), help)
	}
	return fmt.Sprintf("%s %s: %s (see %s)", what, value(v), escape(strings.TrimSpace(reason)), help)
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

// flag writes a typed flag name with its dashes (one for a one-letter
// name), up to the first character no flag name holds: what follows
// ("--db:postgres://…") may be a value, and is left out ("…").
func flag(typed string) string {
	end := strings.IndexFunc(typed, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	})
	name, more := typed, ""
	if end >= 0 {
		name, more = typed[:end], "…"
	}
	if len(name) == 1 && more == "" {
		return "-" + name
	}
	return "--" + name + more
}

// value quotes a typed value when it is short and cannot be a secret,
// else says how long it is.
func value(v string) string {
	if len(v) <= MaxShown && !strings.ContainsAny(v, "/@") && printable(v) {
		return strconv.Quote(v)
	}
	return fmt.Sprintf("(a value of %d bytes, not repeated)", len(v))
}

// printable reports whether s is valid UTF-8 of printable characters
// (strconv.IsPrint: no control, format or line separator characters).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// unquote returns the value the flag package quoted (%q) in its message.
func unquote(quoted string) string {
	if s, err := strconv.Unquote(`"` + quoted + `"`); err == nil {
		return s
	}
	return quoted
}

// escape writes what in s is not printable as Go escapes, so that a
// message stays one line and shows what is there.
func escape(s string) string {
	if printable(s) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
