package sqlite

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildWithoutCgoNamesTheFix: on a machine without a C compiler the go
// command turns cgo off; building the store must then fail with a first
// error that says what to do, not go-sqlite3's "undefined: sqlite3.Error".
func TestBuildWithoutCgoNamesTheFix(t *testing.T) {
	cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the store built without cgo, so it would fail only at run time")
	}
	var first string
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			first = line
			break
		}
	}
	const want = "amaretti's SQLite store needs cgo: install gcc (apt-get install gcc) or build with CGO_ENABLED=1"
	if !strings.Contains(first, want) {
		t.Fatalf("first build error without cgo:\n%s\nwant it to contain %q; whole output:\n%s", first, want, out)
	}
}
