package postgres

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Redacted returns a connection URL fit for a log line or an error: a
// postgres:// URL's password replaced by "xxxxx" and its query (which may
// carry one) dropped, as setup.Redact does; in a key=value connection string
// the value of password= is replaced.
func Redacted(conn string) string {
	lower := strings.ToLower(conn)
	if !strings.HasPrefix(lower, "postgres://") && !strings.HasPrefix(lower, "postgresql://") {
		return kvPassword.ReplaceAllString(conn, "${1}xxxxx")
	}
	u, err := url.Parse(conn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	u.RawQuery = ""
	return u.Redacted()
}

// kvPassword matches password=... in a key=value connection string, quoted
// or not.
var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// urlSecrets returns the passwords a connection string spells out, as
// written and unescaped, for connErr to remove from error messages.
func urlSecrets(conn string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	if u, err := url.Parse(conn); err == nil && u.Scheme != "" {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		add(u.Query().Get("password"))
	}
	for _, m := range kvPassword.FindAllStringSubmatch(conn, -1) {
		add(strings.Trim(m[2], "'"))
	}
	// The raw userinfo, escaped as written.
	if _, rest, ok := strings.Cut(conn, "://"); ok {
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			if _, p, ok := strings.Cut(rest[:at], ":"); ok {
				add(p)
			}
		}
	}
	return out
}

// redactedError is an error whose message has no credentials in it; it
// unwraps to the original error for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// connErr wraps err, met while doing what, with the redacted URL, and
// removes every password of the connection string from its message (pgx
// errors may quote the connection string or its parts).
func (s *Store) connErr(what string, err error) error {
	msg := fmt.Sprintf("postgres %s: %s: %v", s.redacted, what, err)
	for _, p := range s.secrets {
		if len(p) > 0 {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return &redactedError{msg: msg, err: err}
}
