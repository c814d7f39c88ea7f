package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed lets flags follow positional arguments, as in
// "amaretti token mint EDITOR_ID --expires 1h". urfave/cli v2 stops parsing
// flags at the first positional argument (urfave/cli#976, fixed only in
// v3), so the invoked command's own flags, with their values, are moved
// in front of its positional arguments. "--" ends flags as usual; "-" is
// a positional argument (read the token from stdin).
func interspersed(app *cli.App, argv []string) []string {
	if len(argv) < 2 {
		return argv
	}
	out := []string{argv[0]}
	rest := argv[1:]
	// Global flags come before the command.
	for len(rest) > 0 && isFlag(rest[0]) {
		n := flagWidth(app.Flags, rest)
		out = append(out, rest[:n]...)
		rest = rest[n:]
	}
	// Descend to the leaf command.
	cmds := app.Commands
	var leaf *cli.Command
	for len(rest) > 0 {
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(rest[0]) {
				next = c
			}
		}
		if next == nil {
			break
		}
		leaf, cmds = next, next.Subcommands
		out = append(out, rest[0])
		rest = rest[1:]
	}
	if leaf == nil || len(leaf.Subcommands) > 0 {
		return append(out, rest...)
	}
	var global, flags, positional, trailing []string
	for len(rest) > 0 {
		switch {
		case rest[0] == "--":
			positional = append(positional, rest...)
			rest = nil
		case isFlag(rest[0]) && !defines(leaf.Flags, rest[0]) && defines(app.Flags, rest[0]):
			// A global flag typed after the command ("editor list --json").
			n := flagWidth(app.Flags, rest)
			global = append(global, rest[:n]...)
			rest = rest[n:]
		case isFlag(rest[0]) && len(rest) == 1 && takesValue(leaf.Flags, rest[0]):
			// A last flag without its value must not take a positional
			// argument as its value.
			trailing = rest
			rest = nil
		case isFlag(rest[0]):
			n := flagWidth(leaf.Flags, rest)
			flags = append(flags, rest[:n]...)
			rest = rest[n:]
		default:
			positional = append(positional, rest[0])
			rest = rest[1:]
		}
	}
	cmd := out[:1:1]
	cmd = append(cmd, global...)
	cmd = append(cmd, out[1:]...)
	if trailing != nil {
		// The parser then stops at that flag: "flag needs an argument".
		return append(append(cmd, flags...), trailing...)
	}
	return append(append(cmd, flags...), positional...)
}

// takesValue reports whether arg is a flag of flags that takes a value and
// is written without one ("--expires", not "--expires=1h").
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				tv, ok := f.(interface{ TakesValue() bool })
				return ok && tv.TakesValue()
			}
		}
	}
	return false
}

// defines reports whether flags has the flag written as arg.
func defines(flags []cli.Flag, arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

func isFlag(s string) bool { return len(s) > 1 && s[0] == '-' && s != "--" }

// flagWidth returns how many arguments the flag at args[0] uses: two for a
// known flag that takes a value given as the next argument, else one.
func flagWidth(flags []cli.Flag, args []string) int {
	name := strings.TrimLeft(args[0], "-")
	if strings.Contains(name, "=") || len(args) < 2 {
		return 1
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if tv, ok := f.(interface{ TakesValue() bool }); ok && tv.TakesValue() {
				return 2
			}
			return 1
		}
	}
	return 1
}
