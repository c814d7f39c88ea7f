package main

import "testing"

// TestOneLine: an error message of several lines is printed as one, with
// no tab or empty item left from pgx's indented list of the addresses it
// tried.
func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"one line", "unknown editor", "unknown editor"},
		{"two lines", "first\nsecond", "first; second"},
		{"pgx connect", "connecting: failed to connect to `user=a database=b`:\n\t127.0.0.1:5432 (127.0.0.1): tls error: server refused TLS connection\n\t127.0.0.1:5432 (127.0.0.1): failed SASL auth: FATAL: password authentication failed for user \"a\" (SQLSTATE 28P01)",
			"connecting: failed to connect to `user=a database=b`: 127.0.0.1:5432 (127.0.0.1): tls error: server refused TLS connection; 127.0.0.1:5432 (127.0.0.1): failed SASL auth: FATAL: password authentication failed for user \"a\" (SQLSTATE 28P01)"},
		{"trailing newline", "done\n", "done"},
		{"blank lines", "a\n\n  \nb", "a; b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := oneLine(tc.in); got != tc.want {
				t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
