package verifier_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeGoBlocks: every Go block of the README is part of an Example
// function of the library (compared with whitespace normalised), so the
// README's code compiles, runs, and checks its output under go test. The
// "Use it from Go" block is the whole of verifier's Example.
func TestReadmeGoBlocks(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := exampleBodies(t, "..")
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	blocks := goBlocks(t, string(readme))
	if len(blocks) < 2 {
		t.Fatalf("found %d Go blocks in README.md, want at least 2", len(blocks))
	}
	for _, b := range blocks {
		found := ""
		for name, body := range examples {
			if strings.Contains(norm(body), norm(b.code)) {
				found = name
			}
		}
		if found == "" {
			t.Errorf("README.md's Go block under %q is in no Example function:\n%s", b.heading, b.code)
		}
		if b.heading == "## Use it from Go" && norm(examples["verifier.Example"]) != norm(b.code) {
			t.Errorf("README.md's \"Use it from Go\" and verifier's Example differ:\nREADME:\n%s\nExample:\n%s", b.code, examples["verifier.Example"])
		}
	}
}

type goBlock struct{ heading, code string }

func goBlocks(t *testing.T, readme string) []goBlock {
	var out []goBlock
	heading := ""
	lines := strings.SplitAfter(readme, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "#") {
			heading = strings.TrimSpace(l)
		}
		if strings.TrimSpace(l) != "```go" {
			continue
		}
		var code strings.Builder
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			code.WriteString(lines[i])
		}
		if i == len(lines) {
			t.Fatalf("README.md: unterminated Go block under %q", heading)
		}
		out = append(out, goBlock{heading, code.String()})
	}
	return out
}

// exampleBodies returns the bodies of the module's Example functions that
// go test runs (they have an Output comment), up to that comment, by
// package.Name.
func exampleBodies(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir // another module, or not Go
			}
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Example") {
				continue
			}
			body := string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
			code, _, hasOutput := strings.Cut(body, "// Output:")
			if !hasOutput {
				continue // not run by go test
			}
			out[filepath.Base(filepath.Dir(path))+"."+fn.Name.Name] = code
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
