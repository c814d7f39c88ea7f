// Command benchtool is scripts/bench's helper: the bare net/http handler
// amarettid is compared with, and the distinct tokens of the
// many-tokens load.
//
//	benchtool bare 127.0.0.1:8080   # 200 with a small JSON body, any path
//	benchtool answer 127.0.0.1:8080 # amarettid's answers, with no verification
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
	case len(args) == 2 && args[0] == "answer":
		srv := answerServer(args[1])
		return srv.ListenAndServe()
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
	return fmt.Errorf("usage: benchtool bare ADDR | benchtool answer ADDR | benchtool tokens N < token")
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

// answerServer serves answer() the way amarettid serves its handlers: the
// same server timeouts and header limit (cmd/amarettid/listen.go's
// newServer), the costs of which are the server's, not the handler's.
func answerServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           answer(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}

// identity is what answer() says of every request: the shape of an
// amarettid identity, fixed.
var identity = struct {
	editorID, username, role, tokenID, rights, kind string
	body                                            []byte
}{
	editorID: "kfz2benqp64qunpbnhqupcpuvu", role: "editor", tokenID: "C774E54D-EFC6-4E96-8245-0646854CF5CC", rights: "*", kind: "cli",
	body: []byte(`{"editor_id":"kfz2benqp64qunpbnhqupcpuvu","kind":"cli","role":"editor","token_id":"C774E54D-EFC6-4E96-8245-0646854CF5CC","key_id":"20261130-9371a301","created":"2026-11-30T20:20:08.277305Z","expires":"2026-12-01T20:20:08.277305Z"}` + "\n"),
}

// answer is amarettid's allowed answer without the work of deciding it:
// /v1/auth the six X-Amaretti-* identity headers and Cache-Control,
// /v1/verify the same and the identity's JSON body, anything else the
// bare answer. scripts/bench measures it beside bare and amarettid, so
// that the gap between bare and amarettid splits into what amarettid's
// answer costs Go's HTTP server and what amarettid's own code costs.
func answer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/auth" && r.URL.Path != "/v1/verify" {
			bare().ServeHTTP(w, r)
			return
		}
		v := [...]string{identity.editorID, identity.username, identity.role, identity.tokenID, identity.rights, identity.kind, "no-store", "application/json"}
		h := w.Header()
		h["X-Amaretti-Editor-Id"] = v[0:1:1]
		h["X-Amaretti-Username"] = v[1:2:2]
		h["X-Amaretti-Role"] = v[2:3:3]
		h["X-Amaretti-Token-Id"] = v[3:4:4]
		h["X-Amaretti-Rights"] = v[4:5:5]
		h["X-Amaretti-Kind"] = v[5:6:6]
		h["Cache-Control"] = v[6:7:7]
		if r.URL.Path == "/v1/verify" {
			h["Content-Type"] = v[7:8:8]
		}
		w.WriteHeader(http.StatusOK)
		if r.URL.Path == "/v1/verify" {
			w.Write(identity.body)
		}
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
