package testpg

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func query(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, sql).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestServer: a fresh server answers, gives each test an empty database
// of its own, survives a stop, a restart and a kill with its data, and
// leaves nothing behind when closed.
func TestServer(t *testing.T) {
	s := Start(t)
	a, b := s.NewDatabase(t), s.NewDatabase(t)
	if a == b {
		t.Fatal("two databases with one URL")
	}
	if n := query(t, a, "SELECT count(*)::text FROM pg_tables WHERE schemaname = 'public'"); n != "0" {
		t.Fatalf("a new database has %s tables", n)
	}
	for _, tc := range []struct{ name, sql, want string }{
		{"fsync off", "SHOW fsync", "off"},
		{"loopback only", "SHOW listen_addresses", "127.0.0.1"},
		{"UTF8", "SHOW server_encoding", "UTF8"},
		{"C collation", "SELECT datcollate FROM pg_database WHERE datname = current_database()", "C"},
		{"max_connections", "SHOW max_connections", "200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := query(t, a, tc.sql); got != tc.want {
				t.Fatalf("%s = %q, want %q", tc.sql, got, tc.want)
			}
		})
	}
	if err := s.Exec(context.Background(), "postgres", "CREATE TABLE kept (x int)"); err != nil {
		t.Fatal(err)
	}
	for _, restart := range []struct {
		name string
		stop func()
	}{{"stop", s.Stop}, {"kill", s.Kill}} {
		t.Run(restart.name, func(t *testing.T) {
			restart.stop()
			if _, err := pgx.Connect(context.Background(), a); err == nil {
				t.Fatal("connected to a stopped server")
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			if got := query(t, s.URL("postgres"), "SELECT count(*)::text FROM kept"); got != "0" {
				t.Fatalf("table after restart: %s", got)
			}
		})
	}
	dir := s.dir
	s.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory left after Close: %v", err)
	}
	s.Close() // twice is fine
}

// TestPasswordRoles: roles other than the superuser need their password.
func TestPasswordRoles(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	if err := s.Exec(ctx, "postgres", "CREATE ROLE alice LOGIN PASSWORD 'right-password'"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		password string
		ok       bool
	}{{"right-password", true}, {"wrong-password", false}} {
		t.Run(tc.password, func(t *testing.T) {
			c, err := pgx.Connect(ctx, s.URLAs("postgres", "alice", tc.password))
			if err == nil {
				c.Close(ctx)
			}
			if (err == nil) != tc.ok {
				t.Fatalf("connect: %v", err)
			}
		})
	}
}

func TestBinDir(t *testing.T) {
	dir, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(dir + "/" + f); err != nil {
			t.Fatal(err)
		}
	}
}
