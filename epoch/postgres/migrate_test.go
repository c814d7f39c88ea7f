package postgres

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/jackc/pgx/v5"
)

// openAt opens url with only the first k migrations applied, as an older
// amaretti would have left it.
func openAt(t *testing.T, url string, k int) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, url, withoutSchemaCheck())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, to, err := s.migrate(ctx, k); err != nil || to != k {
		t.Fatalf("migrating to %d: %d, %v", k, to, err)
	}
}

// TestUpgrade opens databases left at every earlier schema version, with
// data in them, and upgrades them on Open.
func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	for from := 1; from < len(migrations); from++ {
		t.Run(fmt.Sprintf("from %d", from), func(t *testing.T) {
			url := server.NewDatabase(t)
			openAt(t, url, from)
			if err := server.Exec(ctx, dbName(url), `INSERT INTO editors (id, username, role, auth_epoch, created)
				VALUES ('old', 'old', 'admin', '2020-01-01Z', '2020-01-01Z')`); err != nil {
				t.Fatal(err)
			}
			if err := server.Exec(ctx, dbName(url), `INSERT INTO api_tokens (token_id, editor_id, name, created, creator, revoked)
				VALUES ('`+tokenID(1)+`', 'old', 'laptop', '2021-01-01Z', 'cli', '2021-01-02Z')`); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(ctx, url, WithNoMigrate()); !errors.Is(err, ErrSchemaOld) || !strings.Contains(err.Error(), "amaretti migrate") {
				t.Fatalf("WithNoMigrate on schema %d: %v", from, err)
			}
			s := openURL(t, url)
			if v, _ := s.SchemaVersion(ctx); v != len(migrations) {
				t.Fatalf("schema version %d after upgrade", v)
			}
			e, err := s.Editor(ctx, "old")
			if err != nil || e.Role != epoch.RoleAdmin || e.Revoked != tokenID(1) {
				t.Fatalf("editor after upgrade: %+v %v", e, err)
			}
			if _, err := s.Link(ctx, "old", "dev", "old"); err != nil {
				t.Fatalf("link after upgrade: %v", err)
			}
			if _, err := s.Touch(ctx, "old"); err != nil {
				t.Fatal(err)
			}
			// WithNoMigrate accepts the current schema.
			openURL(t, url, WithNoMigrate())
		})
	}
}

// dbName is the database of a testpg URL.
func dbName(u string) string {
	p, err := neturl.Parse(u)
	if err != nil {
		panic(err)
	}
	return strings.TrimPrefix(p.Path, "/")
}

// TestParallelOpen: several stores opening one fresh database at once all
// succeed, with one schema, one store id and one first change.
func TestParallelOpen(t *testing.T) {
	ctx := context.Background()
	url := server.NewDatabase(t)
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, url, WithQueryTimeout(testReadTimeout)) })
	}
	wg.Wait()
	var id string
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
		h, err := stores[i].Head(ctx)
		if err != nil || h.Seq != 1 || h.Oldest != 1 || id != "" && h.StoreID != id {
			t.Fatalf("store %d: head %+v %v", i, h, err)
		}
		id = h.StoreID
		if v, _ := stores[i].SchemaVersion(ctx); v != len(migrations) {
			t.Fatalf("schema %d", v)
		}
	}
}

func TestNoMigrate(t *testing.T) {
	ctx := context.Background()
	url := server.NewDatabase(t)
	if _, err := Open(ctx, url, WithNoMigrate()); !errors.Is(err, ErrSchemaOld) {
		t.Fatalf("an empty database with WithNoMigrate: %v", err)
	}
	from, to, err := Migrate(ctx, url)
	if err != nil || from != 0 || to != len(migrations) || to != SchemaVersions() {
		t.Fatalf("Migrate = %d, %d, %v", from, to, err)
	}
	if from, to, err := Migrate(ctx, url); err != nil || from != to || to != len(migrations) {
		t.Fatalf("Migrate again = %d, %d, %v", from, to, err)
	}
	s := openURL(t, url, WithNoMigrate())
	if _, err := s.Create(ctx, epoch.NewEditor{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	// A newer schema is refused, migrating or not.
	if _, err := s.pool.Exec(ctx, "UPDATE amaretti_schema SET version = 99"); err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]Option{nil, {WithNoMigrate()}} {
		if _, err := Open(ctx, url, opts...); !errors.Is(err, ErrSchemaNew) {
			t.Fatalf("a newer schema: %v", err)
		}
	}
}

// TestFarFuture: the SQL literal of a locked epoch is epoch.FarFuture.
func TestFarFuture(t *testing.T) {
	s, _ := open(t)
	var got time.Time
	if err := s.pool.QueryRow(context.Background(), "SELECT "+farFuture).Scan(&got); err != nil || !got.Equal(epoch.FarFuture) {
		t.Fatalf("%v, %v", got, err)
	}
}

// TestMigrateTimeout: applying migrations is bounded by the migrate
// timeout, not by the write timeout: a start that waits for another
// process's migration (the advisory lock held here by hand) longer than
// the write timeout still succeeds, and one that waits longer than the
// migrate timeout fails with a deadline error instead of hanging.
func TestMigrateTimeout(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		migrate time.Duration
		ok      bool
	}{
		{"lock released within the migrate timeout", time.Minute, true},
		{"lock held past the migrate timeout", 300 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := server.NewDatabase(t)
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLock)); err != nil {
				t.Fatal(err)
			}
			type result struct {
				s   *Store
				err error
			}
			done := make(chan result, 1)
			go func() {
				s, err := Open(ctx, url, WithWriteTimeout(200*time.Millisecond), WithMigrateTimeout(tc.migrate))
				done <- result{s, err}
			}()
			var r result
			if tc.ok {
				// Hold the lock past the write timeout, then let go.
				select {
				case r = <-done:
					t.Fatalf("Open returned while the lock was held: %v", r.err)
				case <-time.After(time.Second):
				}
				if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock($1)", int64(migrateLock)); err != nil {
					t.Fatal(err)
				}
			}
			r = <-done
			if r.s != nil {
				defer r.s.Close()
			}
			switch {
			case tc.ok && r.err != nil:
				t.Fatalf("Open after the lock was released: %v", r.err)
			case !tc.ok && !errors.Is(r.err, context.DeadlineExceeded):
				t.Fatalf("Open with the lock held: %v, want a deadline error", r.err)
			}
		})
	}
}
