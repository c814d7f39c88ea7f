// Package setup opens what amaretti's programs share — the root key store
// and the authoritative store that "amaretti init" makes — and, when one is
// missing, says so in the same words in every program: where it looked and
// how to make it. A missing database is never created empty by a program
// that only reads it, next to a key store it does not belong to.
//
// The store is chosen by the form of --db / AMARETTI_DB: a file path or a
// sqlite: URL opens SQLite (epoch/sqlite); a postgres:// or postgresql://
// URL opens PostgreSQL (epoch/postgres). Programs get an epoch.Store and
// never name the concrete type.
package setup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/postgres"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
)

// Errors that name what to do.
var (
	// ErrNoKeyStore means the key directory does not exist.
	ErrNoKeyStore = errors.New("no key store")
	// ErrNoDatabase means the database file does not exist.
	ErrNoDatabase = errors.New("no database")
)

// DefaultReadTimeout bounds each PostgreSQL read of the verify path unless
// StoreOptions.ReadTimeout says otherwise.
const DefaultReadTimeout = postgres.DefaultReadTimeout

// StoreOptions are the settings every store takes; zero values keep the
// stores' defaults.
type StoreOptions struct {
	// Now is the clock of a SQLite store (tests; PostgreSQL always uses
	// the database server's clock).
	Now func() time.Time
	// MaxLiveTokens and MaxRevokedTokens are the token limits.
	MaxLiveTokens, MaxRevokedTokens int
	// Create makes a SQLite file that does not exist yet (amaretti init);
	// otherwise a missing file is ErrNoDatabase.
	Create bool
	// NoMigrate refuses a store whose schema is older than this program
	// (--no-migrate) instead of upgrading it: the error wraps
	// sqlite.ErrSchemaOld or postgres.ErrSchemaOld and says to run
	// "amaretti migrate".
	NoMigrate bool
	// ReadTimeout bounds each read of the verify path (State, the change
	// log, Ping) on PostgreSQL (postgres.WithQueryTimeout; zero keeps
	// postgres.DefaultReadTimeout). SQLite ignores it: its reads are of a
	// local file in WAL mode, which writers never block.
	ReadTimeout time.Duration
	// Logger receives the store's own warnings (PostgreSQL: a lost
	// LISTEN connection and its reconnection); nil discards them.
	Logger *slog.Logger
}

// Kind is which store a --db value names.
type Kind int

// The stores.
const (
	SQLite Kind = iota
	PostgreSQL
)

// keyValue matches a libpq key=value connection string ("host=db
// dbname=amaretti …"), which postgres.Open takes: it is not a file name.
var keyValue = regexp.MustCompile(`(?i)^\s*(host|hostaddr|port|dbname|user|password|passfile|sslmode|service|connect_timeout|application_name)\s*=`)

// Parse tells which store db names and returns what that store opens: the
// file path for SQLite (a sqlite: prefix removed, and the // of
// sqlite:///abs/path), the URL itself for PostgreSQL.
func Parse(db string) (Kind, string) {
	lower := strings.ToLower(db)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"), keyValue.MatchString(db):
		return PostgreSQL, db
	case strings.HasPrefix(lower, "sqlite:"):
		path := db[len("sqlite:"):]
		if strings.HasPrefix(path, "//") {
			path = path[2:]
		}
		return SQLite, path
	}
	return SQLite, db
}

// Redact returns db fit for a log line or an error: postgres.Redacted (a
// URL's password replaced by "xxxxx", its query and fragment dropped; a
// key=value string's password replaced), so that every program shows a
// database the same way. A file path is shown as it is.
func Redact(db string) string {
	return postgres.Redacted(db)
}

// Migrate applies every pending schema migration to the existing store db
// names and returns the schema versions before and after.
func Migrate(ctx context.Context, db string) (from, to int, err error) {
	kind, target := Parse(db)
	if kind == PostgreSQL {
		return postgres.Migrate(ctx, target)
	}
	if _, err := os.Stat(target); errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("%w at %s (run \"amaretti init\", or set --db / AMARETTI_DB)", ErrNoDatabase, Redact(target))
	}
	return sqlite.Migrate(ctx, target)
}

// Store opens the authoritative store db names.
func Store(ctx context.Context, db string, o StoreOptions) (epoch.Store, error) {
	kind, target := Parse(db)
	if kind == PostgreSQL {
		var opts []postgres.Option
		if o.MaxLiveTokens > 0 || o.MaxRevokedTokens > 0 {
			opts = append(opts, postgres.WithTokenLimits(o.MaxLiveTokens, o.MaxRevokedTokens))
		}
		if o.NoMigrate {
			opts = append(opts, postgres.WithNoMigrate())
		}
		if o.ReadTimeout > 0 {
			opts = append(opts, postgres.WithQueryTimeout(o.ReadTimeout))
		}
		if o.Logger != nil {
			opts = append(opts, postgres.WithLogger(o.Logger))
		}
		// postgres.Open's errors name the database through Redacted, the
		// same redaction as Redact, and never carry its password.
		return postgres.Open(ctx, target, opts...)
	}
	if target == "" {
		return nil, fmt.Errorf("%w: --db is empty (set --db / AMARETTI_DB to a file or a postgres:// URL)", ErrNoDatabase)
	}
	if !o.Create {
		if _, err := os.Stat(target); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s (run \"amaretti init\", or set --db / AMARETTI_DB)", ErrNoDatabase, Redact(target))
		}
	}
	var opts []sqlite.Option
	if o.Now != nil {
		opts = append(opts, sqlite.WithClock(o.Now))
	}
	if o.MaxLiveTokens > 0 || o.MaxRevokedTokens > 0 {
		opts = append(opts, sqlite.WithTokenLimits(o.MaxLiveTokens, o.MaxRevokedTokens))
	}
	if o.NoMigrate {
		opts = append(opts, sqlite.WithNoMigrate())
	}
	return sqlite.Open(ctx, target, opts...)
}
