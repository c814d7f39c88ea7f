package caveat

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Built-in caveat names.
const (
	NameEditorID   = "editor_id"
	NameUsername   = "username"
	NameKind       = "kind"
	NameTime       = "time"
	NameTimeBefore = timeBefore
	NameEndpoint   = "endpoint"
	NameRights     = "rights"
	NameMethod     = "method"
	NamePathPrefix = "path_prefix"
	NameParent     = "parent_token"
)

// EditorID is the claim naming the editor a token acts for:
// "editor_id = <id>". A token carries exactly one.
type EditorID string

// String implements Caveat.
func (c EditorID) String() string { return NameEditorID + " = " + string(c) }

// Prohibits implements Caveat; a claim never prohibits.
func (EditorID) Prohibits(*Request) error { return nil }

// Username is the claim naming the editor's username when the token was
// minted: "username = <name>", so a web frontend can greet its user without
// a lookup. A token carries at most one, and it must come before the
// creation time: caveats before "time >" can only have been written by the
// minter, because holders can only append. A username after the creation
// time makes the token malformed.
type Username string

// String implements Caveat.
func (c Username) String() string { return NameUsername + " = " + string(c) }

// Prohibits implements Caveat; a claim never prohibits.
func (Username) Prohibits(*Request) error { return nil }

// Kind is the claim saying what kind of token the minter made:
// "kind = session". A token carries at most one, and, like Username, only
// before the creation time, so only the minter can write it. A minter that
// writes a kind writes every one of its caveats before "time >" and puts
// "time >" last (see Claims.Pristine). Tokens without a kind are older
// tokens or minted by code that does not say; nothing treats them as
// sessions.
type Kind string

// The kinds of token. Any other value of a kind caveat is malformed.
const (
	// KindSession is a login session as a web frontend minted it.
	KindSession Kind = "session"
	// KindAPI is a registered API token.
	KindAPI Kind = "api"
	// KindExchange is a short-lived token exchanged for another.
	KindExchange Kind = "exchange"
	// KindCLI is a token an operator minted with the CLI.
	KindCLI Kind = "cli"
	// KindBootstrap is the first token of an installation, written by
	// amaretti bootstrap.
	KindBootstrap Kind = "bootstrap"
)

// ValidKind reports whether s is one of the kinds above.
func ValidKind[T bytestring](s T) bool {
	switch Kind(s) {
	case KindSession, KindAPI, KindExchange, KindCLI, KindBootstrap:
		return true
	}
	return false
}

// String implements Caveat.
func (c Kind) String() string { return NameKind + " = " + string(c) }

// Prohibits implements Caveat; a claim never prohibits.
func (Kind) Prohibits(*Request) error { return nil }

// Created is the claim recording when a token was minted: "time > <t>". A
// token carries exactly one. The Checker rejects a token whose Created lies
// further in the future than its allowed clock skew.
type Created time.Time

// String implements Caveat. The time is written at microsecond precision.
func (c Created) String() string { return NameTime + " > " + FormatTime(time.Time(c)) }

// Prohibits implements Caveat; a claim never prohibits by itself.
func (Created) Prohibits(*Request) error { return nil }

// Expiry restricts a token to requests strictly before a time:
// "time < <t>", or bakery's "time-before <t>" when Bakery is set. A request at
// exactly the expiry is refused.
type Expiry struct {
	Time   time.Time
	Bakery bool
}

// ExpiresAt returns the expiry caveat "time < t".
func ExpiresAt(t time.Time) Expiry { return Expiry{Time: t.UTC().Truncate(time.Microsecond)} }

// String implements Caveat.
func (c Expiry) String() string {
	if c.Bakery {
		return NameTimeBefore + " " + c.Time.UTC().Format(time.RFC3339Nano)
	}
	return NameTime + " < " + formatExpiry(c.Time)
}

// Prohibits implements Caveat.
func (c Expiry) Prohibits(req *Request) error {
	if !req.Time.Before(c.Time) {
		return fmt.Errorf("%w at %s", ErrExpired, formatExpiry(c.Time))
	}
	return nil
}

// Endpoint restricts a token to requests naming one endpoint, as fatcat's
// "endpoint = <name>" did. A request that names no endpoint is refused.
type Endpoint string

// String implements Caveat.
func (c Endpoint) String() string { return NameEndpoint + " = " + string(c) }

// Prohibits implements Caveat.
func (c Endpoint) Prohibits(req *Request) error {
	if req.Endpoint != string(c) {
		if req.Endpoint == "" {
			return fmt.Errorf("%w: %s: request names no endpoint", ErrProhibited, c)
		}
		return fmt.Errorf("%w: %s: request is for endpoint %q", ErrProhibited, c, req.Endpoint)
	}
	return nil
}

// Rights restricts the rights a token may exercise: "rights = read,edit".
// A request is allowed when every right it names is listed.
type Rights []string

// String implements Caveat.
func (c Rights) String() string { return NameRights + " = " + strings.Join(c, ",") }

// Prohibits implements Caveat.
func (c Rights) Prohibits(req *Request) error {
	for _, r := range req.Rights {
		if !slices.Contains(c, r) {
			return fmt.Errorf("%w: %s: right %q not granted", ErrProhibited, c, r)
		}
	}
	return nil
}

// Methods restricts a token to HTTP methods: "method = GET,HEAD". A request
// that names no method is refused.
type Methods []string

// String implements Caveat.
func (c Methods) String() string { return NameMethod + " = " + strings.Join(c, ",") }

// Prohibits implements Caveat.
func (c Methods) Prohibits(req *Request) error {
	if !slices.Contains(c, req.Method) {
		if req.Method == "" {
			return fmt.Errorf("%w: %s: request names no method", ErrProhibited, c)
		}
		return fmt.Errorf("%w: %s: method %s not allowed", ErrProhibited, c, req.Method)
	}
	return nil
}

// PathPrefix restricts a token to a path and the paths below it:
// "path_prefix = /api/v1" allows /api/v1 and /api/v1/x but not /api/v10.
// The request path is the decoded path. One that is empty or not canonical
// (".", "..", "//" segments) is refused, so a prefix cannot be escaped with
// dot segments; so is one holding a byte back ends resolve in ways of their
// own — "\" (IIS), ";" (path parameters: Tomcat, Spring), "%" (a back end
// that decodes twice), a space, a control byte or a non-ASCII byte.
type PathPrefix string

// String implements Caveat.
func (c PathPrefix) String() string { return NamePathPrefix + " = " + string(c) }

// Prohibits implements Caveat. Its errors never repeat the request's path.
func (c PathPrefix) Prohibits(req *Request) error {
	p := req.Path
	if p == "" {
		return fmt.Errorf("%w: %s: request names no path", ErrProhibited, c)
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b <= ' ' || b >= 0x7f || b == '\\' || b == ';' || b == '%' {
			return fmt.Errorf("%w: %s: request path holds a character back ends may resolve outside the prefix", ErrProhibited, c)
		}
	}
	if !canonicalPath(p) {
		return fmt.Errorf("%w: %s: request path is not canonical", ErrProhibited, c)
	}
	prefix := string(c)
	if p == prefix || strings.HasPrefix(p, prefix) && (strings.HasSuffix(prefix, "/") || p[len(prefix)] == '/') {
		return nil
	}
	return fmt.Errorf("%w: %s: request path is outside the prefix", ErrProhibited, c)
}

// canonicalPath reports whether p is absolute and has no empty, "." or ".."
// segments; a single trailing slash is allowed.
func canonicalPath(p string) bool {
	if p == "/" {
		return true
	}
	return strings.HasPrefix(p, "/") && path.Clean(p) == strings.TrimSuffix(p, "/")
}

// validPathPrefix: canonical, and made of RFC 3986 path characters (no
// percent-encoding, no query or fragment).
func validPathPrefix[T bytestring](s T) bool {
	if len(s) == 0 || len(s) > 256 || s[0] != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if isLower(b) || isUpper(b) || isDigit(b) || strings.IndexByte("-._~!$&'()*+,;=:@/", b) >= 0 {
			continue
		}
		return false
	}
	return canonicalPath(string(s))
}

// ParentToken records the token a token was exchanged from:
// "parent_token = <token id>". Revoking the parent revokes the token too:
// the verifier checks every parent against the editor's revoked tokens. It
// may repeat (an exchange of an exchanged token); anyone appending one only
// adds a check.
type ParentToken string

// String implements Caveat.
func (c ParentToken) String() string { return NameParent + " = " + string(c) }

// Prohibits implements Caveat; the verifier checks parents against the
// revocation state, which a Request does not hold.
func (ParentToken) Prohibits(*Request) error { return nil }

func parseParent[T bytestring](op, v T) (ParentToken, error) {
	if string(op) != "=" {
		return "", fmt.Errorf("%w: parent_token takes =", ErrMalformed)
	}
	if !ValidTokenID(v) {
		return "", fmt.Errorf("%w: parent_token must be an upper-case UUID", ErrMalformed)
	}
	return ParentToken(v), nil
}

func parseEditorID[T bytestring](op, v T) (EditorID, error) {
	if string(op) != "=" {
		return "", fmt.Errorf("%w: editor_id takes =", ErrMalformed)
	}
	if !ValidEditorID(v) {
		return "", fmt.Errorf("%w: editor_id must match [a-z0-9][a-z0-9_-]{0,63}", ErrMalformed)
	}
	return EditorID(v), nil
}

func parseUsername[T bytestring](op, v T) (Username, error) {
	if string(op) != "=" {
		return "", fmt.Errorf("%w: username takes =", ErrMalformed)
	}
	if !ValidUsername(v) {
		return "", fmt.Errorf("%w: username must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", ErrMalformed)
	}
	return Username(v), nil
}

func parseKind[T bytestring](op, v T) (Kind, error) {
	if string(op) != "=" {
		return "", fmt.Errorf("%w: kind takes =", ErrMalformed)
	}
	if !ValidKind(v) {
		return "", fmt.Errorf("%w: kind must be one of session, api, exchange, cli, bootstrap", ErrMalformed)
	}
	return Kind(v), nil
}

func parseEndpoint[T bytestring](op, v T) (Caveat, error) {
	if string(op) != "=" {
		return nil, fmt.Errorf("%w: endpoint takes =", ErrMalformed)
	}
	if !validEndpoint(v) {
		return nil, fmt.Errorf("%w: endpoint must match [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", ErrMalformed)
	}
	return Endpoint(v), nil
}

func parseRights[T bytestring](op, v T) (Rights, error) {
	if string(op) != "=" {
		return nil, fmt.Errorf("%w: rights takes =", ErrMalformed)
	}
	return splitList(v, "right", ValidRight[T])
}

func parseMethods[T bytestring](op, v T) (Caveat, error) {
	if string(op) != "=" {
		return nil, fmt.Errorf("%w: method takes =", ErrMalformed)
	}
	l, err := splitList(v, "method", validMethod[T])
	return Methods(l), err
}

func parsePathPrefix[T bytestring](op, v T) (Caveat, error) {
	if string(op) != "=" {
		return nil, fmt.Errorf("%w: path_prefix takes =", ErrMalformed)
	}
	if !validPathPrefix(v) {
		return nil, fmt.Errorf("%w: path_prefix must be a canonical absolute path of RFC 3986 path characters", ErrMalformed)
	}
	return PathPrefix(v), nil
}
