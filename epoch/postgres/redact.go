package postgres

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Redacted returns a connection URL fit for a log line or an error: a
// postgres:// URL's password replaced by "xxxxx" and its query and fragment
// (which may carry one) dropped, as setup.Redact does; in a key=value
// connection string the value of password= is replaced.
//
// The user information is everything before the URL's last "@", even when
// the password holds a character it should have escaped ("/", "?", "#"),
// which a URL parser reads as the end of the host: such a password is
// masked too. User information that is not "user:password" with a plain
// user is masked whole.
func Redacted(conn string) string {
	scheme, rest, ok := cutScheme(conn)
	if !ok {
		return kvPassword.ReplaceAllString(conn, "${1}xxxxx")
	}
	userinfo, hostpart, hasUser := splitUserinfo(rest)
	u, err := url.Parse("postgres://" + hostpart)
	if err != nil || u.User != nil {
		return "postgres://(unparsable URL)"
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	out := strings.TrimPrefix(u.String(), "postgres://")
	if hasUser {
		user, _, hasPassword := strings.Cut(userinfo, ":")
		switch {
		case strings.ContainsAny(user, "/?#"):
			userinfo = "xxxxx"
		case hasPassword:
			userinfo = user + ":xxxxx"
		}
		out = userinfo + "@" + out
	}
	return scheme + "://" + out
}

// cutScheme splits a postgres:// or postgresql:// URL (in any case) into
// its scheme and the rest.
func cutScheme(conn string) (scheme, rest string, ok bool) {
	scheme, rest, ok = strings.Cut(conn, "://")
	if !ok || !strings.EqualFold(scheme, "postgres") && !strings.EqualFold(scheme, "postgresql") {
		return "", "", false
	}
	return scheme, rest, true
}

// splitUserinfo splits what follows a URL's "://" at its last "@".
func splitUserinfo(rest string) (userinfo, hostpart string, ok bool) {
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return "", rest, false
	}
	return rest[:at], rest[at+1:], true
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
	// The raw userinfo, escaped as written, up to the last "@" (as
	// Redacted reads it).
	if _, rest, ok := cutScheme(conn); ok {
		if userinfo, _, ok := splitUserinfo(rest); ok {
			if _, p, ok := strings.Cut(userinfo, ":"); ok {
				add(p)
				if unescaped, err := url.PathUnescape(p); err == nil {
					add(unescaped)
				}
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
