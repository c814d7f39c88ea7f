package main

import (
	"debug/buildinfo"
	"os/exec"
	"path/filepath"
	"testing"

	ibuildinfo "github.com/amaretti-auth/amaretti/internal/buildinfo"
)

// TestVersion: amarettid and the API service example print the module
// version and VCS revision recorded in their binaries, and exit 0.
func TestVersion(t *testing.T) {
	for _, name := range []string{"amarettid", "api-service"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(bin, name)
			bi, err := buildinfo.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(path, "--version").Output()
			if err != nil {
				t.Fatalf("%s --version: %v", name, err)
			}
			if want := name + " version " + ibuildinfo.FromBuildInfo(bi) + "\n"; string(out) != want {
				t.Fatalf("%s --version: %q, want %q", name, out, want)
			}
		})
	}
}
