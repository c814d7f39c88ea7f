//go:build !cgo

package sqlite

// The SQLite store is github.com/mattn/go-sqlite3, which is C code built with
// cgo. Without a C compiler the go command turns cgo off and that package
// compiles to a stub; the line below then makes the build fail with a message
// that names the fix, before the stub's own "undefined: sqlite3.Error".
var _ int = "amaretti's SQLite store needs cgo: install gcc (apt-get install gcc) or build with CGO_ENABLED=1"
