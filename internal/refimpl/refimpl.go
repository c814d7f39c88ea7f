// Package refimpl runs the reference implementations of macaroons for
// amaretti's differential tests: libmacaroons (C, through a harness built
// with gcc into the test's temporary directory) and pymacaroons (Python).
// Each runs as one process for a whole corpus, reading a token per line.
// It is for tests only: nothing outside _test files may import it.
package refimpl

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	mv2 "gopkg.in/macaroon.v2"
)

// Python is the interpreter with Debian's python3-pymacaroons; the first
// python3 on PATH may lack it.
const Python = "/usr/bin/python3"

// A Verdict is what a reference implementation says of one token.
type Verdict struct {
	// OK: the token deserialized and its signature chain verified under
	// the key, every first-party caveat accepted.
	OK bool
	// Identifier and Caveats are what the implementation verified (OK
	// only), caveats in order.
	Identifier string
	Caveats    []string
	// Detail is the implementation's answer when not OK.
	Detail string
}

// A Ref is a running reference implementation.
type Ref struct {
	// Name names the implementation in messages.
	Name string
	t    testing.TB
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
}

func testdata(elem ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", "..", "testdata"}, elem...)...)
}

// StartLibmacaroons builds testdata/libmacaroons/verify.c against
// libmacaroons into t.TempDir() and starts it. It fails the test when gcc or
// libmacaroons-dev is missing.
func StartLibmacaroons(t testing.TB) *Ref {
	t.Helper()
	if _, err := os.Stat("/usr/include/macaroons.h"); err != nil {
		t.Fatal("libmacaroons is missing: install libmacaroons-dev (scripts/test does)")
	}
	bin := filepath.Join(t.TempDir(), "libmacaroons-verify")
	out, err := exec.Command("gcc", "-O1", "-Wall", "-o", bin, testdata("libmacaroons", "verify.c"), "-lmacaroons").CombinedOutput()
	if err != nil {
		t.Fatalf("building the libmacaroons harness: %v\n%s\n(install gcc and libmacaroons-dev; scripts/test does)", err, out)
	}
	return start(t, "libmacaroons", bin)
}

// StartPymacaroons starts testdata/interop/pyverify.py. It fails the test
// when /usr/bin/python3 or pymacaroons is missing.
func StartPymacaroons(t testing.TB) *Ref {
	t.Helper()
	if out, err := exec.Command(Python, "-c", "import pymacaroons").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import pymacaroons: %v\n%s\n(install python3-pymacaroons; scripts/test does)", Python, err, out)
	}
	return start(t, "pymacaroons", Python, testdata("interop", "pyverify.py"))
}

func start(t testing.TB, name, bin string, args ...string) *Ref {
	t.Helper()
	cmd := exec.Command(bin, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	r := &Ref{Name: name, t: t, cmd: cmd, in: in, out: bufio.NewScanner(stdout)}
	r.out.Buffer(make([]byte, 1<<20), 1<<22)
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	return r
}

// Verify asks for the verdict on token (in the form this implementation
// reads: see V1 and V2) under the root secret keyB64 (standard padded
// base64).
func (r *Ref) Verify(keyB64, token string) Verdict {
	r.t.Helper()
	if strings.ContainsAny(token, " \r\n") || token == "" {
		return Verdict{Detail: "not sent: empty or holds a line break or space"}
	}
	if _, err := fmt.Fprintf(r.in, "%s %s\n", keyB64, token); err != nil {
		r.t.Fatalf("%s: %v", r.Name, err)
	}
	if !r.out.Scan() {
		r.t.Fatalf("%s stopped answering: %v", r.Name, r.out.Err())
	}
	fields := strings.SplitN(r.out.Text(), " ", 3)
	if fields[0] != "ok" {
		return Verdict{Detail: r.out.Text()}
	}
	if len(fields) != 3 {
		r.t.Fatalf("%s: bad answer %q", r.Name, r.out.Text())
	}
	v := Verdict{OK: true, Identifier: unhex(r.t, fields[1])}
	if fields[2] != "" {
		for _, c := range strings.Split(fields[2], ",") {
			v.Caveats = append(v.Caveats, unhex(r.t, strings.TrimSuffix(c, "-")))
		}
	}
	return v
}

func unhex(t testing.TB, s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("reference answer: %v", err)
	}
	return string(b)
}

// V2 is a binary macaroon in the form pymacaroons reads: base64url.
func V2(bin []byte) string { return base64.RawURLEncoding.EncodeToString(bin) }

// V1 re-encodes a binary macaroon (v1 or v2) in the v1 serialization
// libmacaroons 0.3.0 reads: it is decoded by gopkg.in/macaroon.v2 and
// written as v1 packets ("XXXXkey value\n", XXXX the packet length in hex),
// base64url. It fails when macaroon.v2 cannot decode it or a field is too
// long for a v1 packet.
func V1(bin []byte) (string, error) {
	var m mv2.Macaroon
	if err := m.UnmarshalBinary(bin); err != nil {
		return "", err
	}
	var out []byte
	var err error
	packet := func(key string, value []byte) {
		n := 4 + len(key) + 1 + len(value) + 1
		if n > 0xffff {
			err = fmt.Errorf("%s is too long for a v1 packet", key)
			return
		}
		out = fmt.Appendf(out, "%04x%s ", n, key)
		out = append(append(out, value...), '\n')
	}
	packet("location", []byte(m.Location()))
	packet("identifier", m.Id())
	for _, c := range m.Caveats() {
		packet("cid", c.Id)
		if len(c.VerificationId) > 0 {
			packet("vid", c.VerificationId)
			packet("cl", []byte(c.Location))
		}
	}
	packet("signature", m.Signature())
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(out), nil
}
