// Package repocheck checks what the repository tracks: no file over a size
// limit and no executable binary (ELF, Mach-O or PE), so a built command
// committed by mistake fails the test suite instead of bloating every clone.
package repocheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MaxSize is the largest tracked file allowed, in bytes (1 MiB).
const MaxSize = 1 << 20

// ErrTooLarge and ErrBinary are the sentinels a Problem wraps.
var (
	ErrTooLarge = errors.New("over 1 MiB")
	ErrBinary   = errors.New("an executable binary")
)

// A Problem is a tracked file that should not be.
type Problem struct {
	// Path is the file's path relative to the repository root.
	Path string
	// Err says what is wrong: it wraps ErrTooLarge or ErrBinary.
	Err error
}

func (p Problem) String() string { return p.Path + ": " + p.Err.Error() }

// magics are the first bytes of executable formats: ELF, Mach-O (32 and
// 64 bits, both byte orders, and universal binaries) and PE ("MZ").
var magics = []struct {
	name  string
	magic []byte
}{
	{"ELF", []byte{0x7f, 'E', 'L', 'F'}},
	{"Mach-O", []byte{0xfe, 0xed, 0xfa, 0xce}},
	{"Mach-O", []byte{0xfe, 0xed, 0xfa, 0xcf}},
	{"Mach-O", []byte{0xce, 0xfa, 0xed, 0xfe}},
	{"Mach-O", []byte{0xcf, 0xfa, 0xed, 0xfe}},
	{"Mach-O universal", []byte{0xca, 0xfe, 0xba, 0xbe}},
	{"PE", []byte{'M', 'Z'}},
}

// CheckFile checks one file, path being where to read it and name how to
// report it.
func CheckFile(path, name string) ([]Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var problems []Problem
	if fi.Size() > MaxSize {
		problems = append(problems, Problem{name, fmt.Errorf("%w (%d bytes)", ErrTooLarge, fi.Size())})
	}
	head := make([]byte, 4)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	for _, m := range magics {
		if bytes.HasPrefix(head[:n], m.magic) {
			problems = append(problems, Problem{name, fmt.Errorf("%w (%s)", ErrBinary, m.name)})
			break
		}
	}
	return problems, nil
}

// Tracked checks every file git tracks in the work tree that holds dir (files
// deleted from the work tree but still tracked are skipped).
func Tracked(dir string) ([]Problem, error) {
	top := exec.Command("git", "rev-parse", "--show-toplevel")
	top.Dir = dir
	out, err := top.Output()
	if err != nil {
		return nil, fmt.Errorf("git rev-parse: %w", err)
	}
	root := strings.TrimSpace(string(out))
	ls := exec.Command("git", "ls-files", "-z") // from the top: every tracked file
	ls.Dir = root
	out, err = ls.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	var problems []Problem
	for _, name := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		path := filepath.Join(root, name)
		if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, a symlink or a submodule
		}
		p, err := CheckFile(path, name)
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
	}
	return problems, nil
}
