package postgres

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestCredentialsNotInErrors: whatever fails when opening — a wrong
// password, an unreachable host, a malformed URL — the error names the
// database without its password.
func TestCredentialsNotInErrors(t *testing.T) {
	ctx := context.Background()
	const password = "pw-s3cret-Xy9"
	if err := server.Exec(ctx, "postgres", "DO $$ BEGIN CREATE ROLE creds LOGIN PASSWORD 'the-right-one'; EXCEPTION WHEN duplicate_object THEN NULL; END $$"); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, tc := range []struct{ name, url string }{
		{"wrong password", server.URLAs("postgres", "creds", password)},
		{"wrong password in the query", fmt.Sprintf("postgres://creds@127.0.0.1:%d/postgres?sslmode=disable&password=%s", server.Port(), password)},
		{"wrong password, key=value", fmt.Sprintf("host=127.0.0.1 port=%d user=creds password=%s dbname=postgres sslmode=disable", server.Port(), password)},
		{"unreachable host", "postgres://creds:" + password + "@" + closed + "/postgres?sslmode=disable&connect_timeout=2"},
		{"unknown host", "postgres://creds:" + password + "@no-such-host.invalid/postgres?sslmode=disable&connect_timeout=2"},
		{"malformed port", "postgres://creds:" + password + "@127.0.0.1:notaport/postgres"},
		{"malformed option", "postgres://creds:" + password + "@127.0.0.1/postgres?pool_max_conns=many"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := Open(ctx, tc.url, WithWriteTimeout(5*time.Second))
			if err == nil {
				t.Fatal("opened")
			}
			t.Log(err)
			if strings.Contains(err.Error(), password) {
				t.Fatalf("the error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), "postgres") {
				t.Fatalf("the error does not say which store: %v", err)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://amaretti:s3cret@db.example:5432/amaretti", "postgres://amaretti:xxxxx@db.example:5432/amaretti"},
		{"postgres://db.example/amaretti?password=s3cret&sslmode=require", "postgres://db.example/amaretti"},
		{"postgresql://amaretti@db.example/amaretti", "postgresql://amaretti@db.example/amaretti"},
		{"postgres://u:s3cret@[::1/x", "postgres://(unparsable URL)"},
		{"host=db user=a password=s3cret dbname=x", "host=db user=a password=xxxxx dbname=x"},
		{"host=db password='s3 cret' dbname=x", "host=db password=xxxxx dbname=x"},
		// A password with a character the URL needed escaped: what Go
		// parses as a host and port (or a path, a query, a fragment)
		// must not show it.
		{"postgres://amaretti:123/s3cret@db.example/amaretti", "postgres://amaretti:xxxxx@db.example/amaretti"},
		{"postgres://amaretti:12?s3cret@db.example/amaretti", "postgres://amaretti:xxxxx@db.example/amaretti"},
		{"postgres://amaretti:12#s3cret@db.example/amaretti", "postgres://amaretti:xxxxx@db.example/amaretti"},
		{"postgres://amaretti:s3cret@db.example/amaretti#s3", "postgres://amaretti:xxxxx@db.example/amaretti"},
		{"postgres://amaretti:s3cret@[::1]:5432/amaretti", "postgres://amaretti:xxxxx@[::1]:5432/amaretti"},
		{"postgres://amaretti:p%40s3@db.example/amaretti", "postgres://amaretti:xxxxx@db.example/amaretti"},
		{"POSTGRESQL://:s3cret@db.example/amaretti", "POSTGRESQL://:xxxxx@db.example/amaretti"},
		{"postgres://db.example/amaretti?password=s3cret&application_name=a@b", "postgres://xxxxx@b"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := Redacted(tc.in); got != tc.want || strings.Contains(got, "s3") {
				t.Errorf("Redacted(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
