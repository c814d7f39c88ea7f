// Package modgraph checks the library's go.mod: a service that imports
// amaretti must not pull the examples' browser driver and OIDC client, or the
// benchmarks' JWT library, into its module graph, nor an old
// golang.org/x/crypto. Its test applies Check to the repository's go.mod,
// and CheckLibraryDeps to the library packages' dependencies (gRPC and
// Envoy's protos are the daemon's alone).
package modgraph

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// forbidden lists the module path prefixes the library's go.mod must not
// name: they belong to the examples module (chromedp, go-oidc, go-jose,
// oauth2) and the bench module (golang-jwt).
var forbidden = [...]string{
	"github.com/chromedp/",
	"github.com/coreos/go-oidc",
	"github.com/go-jose/",
	"golang.org/x/oauth2",
	"github.com/golang-jwt/",
}

// Crypto is golang.org/x/crypto, which macaroon-bakery alone would pin at a
// 2019 pseudo-version.
const Crypto = "golang.org/x/crypto"

// cryptoMinor is the first golang.org/x/crypto release of 2024 (v0.18.0,
// January 2024); cryptoSince is the oldest pseudo-version date accepted.
const cryptoMinor = 18

var cryptoSince = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Errors Check wraps.
var (
	// ErrForbidden is a module of the examples or bench module named in
	// the library's go.mod.
	ErrForbidden = errors.New("module belongs in the examples or bench module")
	// ErrOldCrypto is a golang.org/x/crypto version older than 2024.
	ErrOldCrypto = errors.New("golang.org/x/crypto older than 2024")
	// ErrMalformed is a go.mod line Check cannot read.
	ErrMalformed = errors.New("malformed go.mod line")
)

// Check reads a go.mod and returns every problem found, joined: chromedp,
// go-oidc, go-jose, oauth2 or golang-jwt in a require or replace directive,
// or golang.org/x/crypto required or replaced at a version older than 2024.
// It returns nil when there is none.
func Check(gomod []byte) error {
	var errs []error
	block := "" // the directive of the open "(" block
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "//")
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case block != "" && f[0] == ")":
			block = ""
			continue
		case block == "" && len(f) == 2 && f[1] == "(":
			block = f[0]
			continue
		}
		verb := block
		if verb == "" {
			verb, f = f[0], f[1:]
		}
		var mods [][2]string // path and version (empty when none)
		switch verb {
		case "require":
			if len(f) != 2 {
				errs = append(errs, fmt.Errorf("line %d: %w", n, ErrMalformed))
				continue
			}
			mods = append(mods, [2]string{unquote(f[0]), f[1]})
		case "replace":
			arrow := -1
			for i, s := range f {
				if s == "=>" {
					arrow = i
				}
			}
			if arrow < 1 || arrow > 2 || len(f)-arrow-1 < 1 || len(f)-arrow-1 > 2 {
				errs = append(errs, fmt.Errorf("line %d: %w", n, ErrMalformed))
				continue
			}
			mods = append(mods, [2]string{unquote(f[0]), ""})
			newMod := [2]string{unquote(f[arrow+1]), ""}
			if len(f) == arrow+3 {
				newMod[1] = f[arrow+2]
			}
			mods = append(mods, newMod)
		default:
			continue
		}
		for _, m := range mods {
			for _, p := range forbidden {
				if strings.HasPrefix(m[0], p) {
					errs = append(errs, fmt.Errorf("line %d: %s: %w", n, m[0], ErrForbidden))
				}
			}
			if m[0] == Crypto && m[1] != "" && !cryptoCurrent(m[1]) {
				errs = append(errs, fmt.Errorf("line %d: %s %s: %w", n, m[0], m[1], ErrOldCrypto))
			}
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// pseudo matches the date of a pseudo-version (vX.Y.Z-yyyymmddhhmmss-hash,
// vX.Y.Z-pre.0.yyyymmddhhmmss-hash, vX.Y.(Z+1)-0.yyyymmddhhmmss-hash).
var pseudo = regexp.MustCompile(`[-.](\d{14})-[0-9a-f]{12}$`)

// tagged matches a release version's major and minor.
var tagged = regexp.MustCompile(`^v(\d+)\.(\d+)\.\d+`)

// cryptoCurrent reports whether v, a golang.org/x/crypto version, is from
// 2024 or later: a pseudo-version dated then, or a release from v0.18.0 on.
func cryptoCurrent(v string) bool {
	if m := pseudo.FindStringSubmatch(v); m != nil {
		t, err := time.Parse("20060102150405", m[1])
		return err == nil && !t.Before(cryptoSince)
	}
	m := tagged.FindStringSubmatch(v)
	if m == nil {
		return false
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 0 || minor >= cryptoMinor
}

// daemonOnly lists the import path prefixes only the daemon
// (cmd/amarettid) may import: gRPC and Envoy's protos, for ext_authz. A
// service that imports the library's packages compiles none of them.
var daemonOnly = [...]string{
	"google.golang.org/grpc",
	"github.com/envoyproxy/",
	"github.com/cncf/xds/",
	"google.golang.org/genproto/",
}

// ErrDaemonOnly is a library package that depends on a package only the
// daemon may import.
var ErrDaemonOnly = errors.New("package belongs to the daemon only")

// CheckLibraryDeps reads the output of "go list -deps" for the library's
// packages (one import path a line) and returns every daemon-only package
// found, joined, or nil.
func CheckLibraryDeps(deps []byte) error {
	var errs []error
	for _, p := range strings.Fields(string(deps)) {
		for _, prefix := range daemonOnly {
			if p == strings.TrimSuffix(prefix, "/") || strings.HasSuffix(prefix, "/") && strings.HasPrefix(p, prefix) || strings.HasPrefix(p, prefix+"/") {
				errs = append(errs, fmt.Errorf("%s: %w", p, ErrDaemonOnly))
				break
			}
		}
	}
	return errors.Join(errs...)
}
