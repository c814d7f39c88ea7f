package repocheck

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestTrackedFiles is the check scripts/test runs: the repository tracks no
// file over 1 MiB and no executable binary.
func TestTrackedFiles(t *testing.T) {
	problems, err := Tracked(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("tracked file %s: remove it with git rm --cached (and add it to .gitignore)", p)
	}
}

func TestCheckFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content []byte
		want    []error
	}{
		{"source", []byte("package main\n"), nil},
		{"empty", nil, nil},
		{"one byte", []byte{0x7f}, nil},
		{"ELF", append([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1}, make([]byte, 100)...), []error{ErrBinary}},
		{"Mach-O 64", []byte{0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1}, []error{ErrBinary}},
		{"Mach-O universal", []byte{0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2}, []error{ErrBinary}},
		{"PE", []byte("MZ\x90\x00\x03\x00"), []error{ErrBinary}},
		{"exactly 1 MiB", bytes.Repeat([]byte("a"), MaxSize), nil},
		{"over 1 MiB", bytes.Repeat([]byte("a"), MaxSize+1), []error{ErrTooLarge}},
		{"big ELF", append([]byte{0x7f, 'E', 'L', 'F'}, make([]byte, MaxSize)...), []error{ErrTooLarge, ErrBinary}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := CheckFile(path, "f")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %v, want %v", got, tc.want)
			}
			for i, want := range tc.want {
				if !errors.Is(got[i].Err, want) {
					t.Errorf("problem %d: %v, want %v", i, got[i].Err, want)
				}
			}
		})
	}
}

// TestTrackedInARepository: a binary committed at the root of a repository
// is found, with its path, when asked from a subdirectory (as go test runs);
// an ignored one is not.
func TestTrackedInARepository(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	git("init", "-q")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("# x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "x.go"), []byte("package x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "amarettid"), []byte{0x7f, 'E', 'L', 'F', 2}, 0o755)
	os.WriteFile(filepath.Join(dir, "ignored"), []byte{0x7f, 'E', 'L', 'F', 2}, 0o755)
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("/ignored\n"), 0o644)
	git("add", ".")
	git("commit", "-qm", "x")
	problems, err := Tracked(filepath.Join(dir, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0].Path != "amarettid" || !errors.Is(problems[0].Err, ErrBinary) {
		t.Fatalf("problems: %v", problems)
	}
}
