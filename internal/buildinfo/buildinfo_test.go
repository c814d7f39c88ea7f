package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	rev := "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"
	for _, tc := range []struct {
		name     string
		version  string
		settings map[string]string
		want     string
	}{
		{"release", "v0.3.0", map[string]string{"vcs.revision": rev, "vcs.modified": "false"}, "v0.3.0 (rev 1a2b3c4d5e6f)"},
		{"modified tree", "v0.0.0-20261130101105-1a2b3c4d5e6f+dirty", map[string]string{"vcs.revision": rev, "vcs.modified": "true"},
			"v0.0.0-20261130101105-1a2b3c4d5e6f+dirty (rev 1a2b3c4d5e6f, modified)"},
		{"no vcs", "(devel)", nil, "(devel)"},
		{"no version at all", "", nil, "(devel)"},
		{"short revision", "(devel)", map[string]string{"vcs.revision": "abc"}, "(devel) (rev abc)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/amaretti-auth/amaretti", Version: tc.version}}
			for k, v := range tc.settings {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
			}
			if got := FromBuildInfo(bi); got != tc.want {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	if v := Version(); v == "" || strings.Contains(v, "\n") {
		t.Fatalf("Version() = %q", v)
	}
}
