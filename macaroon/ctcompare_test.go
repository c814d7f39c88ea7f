package macaroon_test

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The signature check compares all 32 bytes in constant time: Key.Verify
// calls subtle.ConstantTimeCompare or hmac.Equal on the whole computed and
// presented signatures, and no code of the package compares a signature
// with ==, != or bytes.Equal. (verifier.TestSignatureEveryByte flips each
// byte.)
func TestSignatureComparedInConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	src := func(n ast.Node) string {
		var b strings.Builder
		printer.Fprint(&b, fset, n)
		return b.String()
	}
	// mentionsSig reports whether n refers to a signature: a field or
	// variable named sig or sum, or a Signature() call.
	mentionsSig := func(n ast.Node) bool {
		found := false
		ast.Inspect(n, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				if f := src(x.Fun); f == "subtle.ConstantTimeCompare" || f == "hmac.Equal" {
					return false // its result is not a signature
				}
			case *ast.Ident:
				found = found || x.Name == "sig" || x.Name == "sum" || x.Name == "Signature"
			}
			return !found
		})
		return found
	}
	var ctCalls []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		var inVerify *ast.FuncDecl
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.FuncDecl:
				inVerify = nil
				if x.Name.Name == "Verify" && x.Recv != nil && len(x.Recv.List) == 1 && src(x.Recv.List[0].Type) == "*Key" {
					inVerify = x
				}
			case *ast.BinaryExpr:
				if (x.Op == token.EQL || x.Op == token.NEQ) && (mentionsSig(x.X) || mentionsSig(x.Y)) {
					t.Errorf("%s: signature compared with %s: %s", fset.Position(x.Pos()), x.Op, src(x))
				}
			case *ast.CallExpr:
				fn := src(x.Fun)
				switch fn {
				case "bytes.Equal", "slices.Equal", "reflect.DeepEqual", "bytes.Compare":
					for _, a := range x.Args {
						if mentionsSig(a) {
							t.Errorf("%s: signature compared with %s", fset.Position(x.Pos()), fn)
						}
					}
				case "subtle.ConstantTimeCompare", "hmac.Equal":
					if inVerify == nil || len(x.Args) != 2 {
						break
					}
					args := src(x.Args[0]) + " " + src(x.Args[1])
					whole := true
					for _, a := range x.Args {
						s, ok := a.(*ast.SliceExpr)
						whole = whole && ok && s.Low == nil && s.High == nil
					}
					if whole && strings.Contains(args, "sum") && strings.Contains(args, "sig") {
						ctCalls = append(ctCalls, fn+"("+args+")")
					}
				}
			}
			return true
		})
	}
	if len(ctCalls) != 1 {
		t.Fatalf("Key.Verify must compare the whole computed and presented signatures with subtle.ConstantTimeCompare or hmac.Equal; found %v", ctCalls)
	}
}
