// Command benchtool is scripts/bench's helper: the bare net/http handler
// amarettid is compared with, and the distinct tokens of the
// many-tokens load.
//
//	benchtool bare 127.0.0.1:8080   # 200 with a small JSON body, any path
//	benchtool tokens N < token      # N distinct valid attenuations, one a line
package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/macaroon"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func run(args []string, in io.Reader, out io.Writer) error {
	switch {
	case len(args) == 2 && args[0] == "bare":
		return http.ListenAndServe(args[1], bare())
	case len(args) == 2 && args[0] == "tokens":
		n, err := strconv.Atoi(args[1])
		if err != nil || n <= 0 {
			return fmt.Errorf("tokens: %q is not a positive count", args[1])
		}
		raw, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		return tokens(strings.TrimSpace(string(raw)), n, time.Now(), out)
	}
	return fmt.Errorf("usage: benchtool bare ADDR | benchtool tokens N < token")
}

// body is what the bare handler answers: about the size of amarettid's
// /v1/verify identity.
var body = []byte(`{"editor_id":"aaaaaaaaaaaaaaaaaaaaaaaaaa","role":"user","key_id":"k1"}` + "\n")

// bare is the handler amarettid is measured against: Go's HTTP server and
// nothing else.
func bare() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
}

// tokens writes n distinct valid tokens: token, each attenuated with an
// expiry of its own, an hour or more from now.
func tokens(token string, n int, now time.Time, out io.Writer) error {
	w := bufio.NewWriter(out)
	base := now.Add(time.Hour)
	for i := range n {
		t, err := macaroon.Attenuate(token, caveat.ExpiresAt(base.Add(time.Duration(i)*time.Millisecond)))
		if err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		w.WriteString(t)
		w.WriteByte('\n')
	}
	return w.Flush()
}
