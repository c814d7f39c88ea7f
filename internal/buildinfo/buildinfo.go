// Package buildinfo says which build of amaretti is running, for the
// --version flag of every command: the main module's version and the VCS
// revision it was built from, as the go command recorded them.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Version returns the running binary's version, for example
// "v0.3.0 (rev 1a2b3c4d5e6f)", "v0.0.0-20261130101105-1a2b3c4d5e6f+dirty
// (rev 1a2b3c4d5e6f, modified)" or "(devel)" when the go command recorded
// neither (go run in a directory outside version control).
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo formats bi as Version does.
func FromBuildInfo(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	var b strings.Builder
	b.WriteString(v)
	b.WriteString(" (rev ")
	b.WriteString(rev)
	if modified {
		b.WriteString(", modified")
	}
	b.WriteString(")")
	return b.String()
}
