package verifier_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestReadmeExample: README.md's "Use it from Go" block is the body of
// Example (example_test.go) but for its Output comment, whitespace
// normalised, so the README shows code that compiles and does what it says.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const head = "## Use it from Go\n\n```go\n"
	_, block, ok := strings.Cut(string(readme), head)
	if !ok {
		t.Fatalf("README.md has no %q", head)
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatal("README.md: unterminated Go block")
	}

	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var body string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Example" && fn.Recv == nil {
			body = string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
		}
	}
	body, _, ok = strings.Cut(body, "// Output:")
	if !ok {
		t.Fatal("Example has no Output comment, so go test would not run it")
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if norm(block) != norm(body) {
		t.Fatalf("README.md's \"Use it from Go\" and Example differ:\nREADME:\n%s\nExample:\n%s", block, body)
	}
}
