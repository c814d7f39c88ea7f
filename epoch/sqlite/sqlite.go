// Package sqlite is amaretti's embedded epoch store: editors and their
// auth_epoch in a SQLite file (WAL, busy timeout, versioned schema migrations
// applied on open). It implements epoch.Source for the verify path and the
// operations operators run: create, list, touch, touch everyone, lock,
// unlock, deactivate.
//
// Times are stored as integer microseconds since the Unix epoch (UTC), the
// precision of the epoch rule.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/amaretti-auth/amaretti/epoch"
)

// migrations are applied in order; PRAGMA user_version records how many
// have run. Append only: never edit a migration that has shipped.
var migrations = []string{
	`CREATE TABLE editors (
		id         TEXT PRIMARY KEY,
		username   TEXT NOT NULL UNIQUE COLLATE NOCASE,
		role       TEXT NOT NULL CHECK (role IN ('editor', 'bot', 'admin', 'superuser')),
		active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
		auth_epoch INTEGER NOT NULL, -- microseconds since 1970-01-01 UTC
		created    INTEGER NOT NULL, -- microseconds since 1970-01-01 UTC
		version    INTEGER NOT NULL DEFAULT 1
	) STRICT`,
	// 2: API tokens. Rows are never deleted, so a token id is never reused.
	`ALTER TABLE editors ADD COLUMN bot INTEGER NOT NULL DEFAULT 0 CHECK (bot IN (0, 1));
	CREATE TABLE api_tokens (
		token_id       TEXT PRIMARY KEY,
		editor_id      TEXT NOT NULL REFERENCES editors(id),
		name           TEXT NOT NULL,
		description    TEXT NOT NULL DEFAULT '',
		rights         TEXT,    -- comma-separated; NULL: unrestricted
		endpoint       TEXT,    -- NULL: any endpoint
		created        INTEGER NOT NULL,
		creator        TEXT NOT NULL,
		expires        INTEGER, -- NULL: never
		revoked        INTEGER, -- NULL: live
		last_used      INTEGER,
		last_used_from TEXT
	) STRICT;
	CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(editor_id, name) WHERE revoked IS NULL;
	CREATE INDEX api_tokens_expires ON api_tokens(expires) WHERE revoked IS NULL AND expires IS NOT NULL;`,
	// 3: login identities. A provider's subject names one editor, and an
	// editor has at most one identity per provider.
	`CREATE TABLE editor_links (
		provider  TEXT NOT NULL, -- an OIDC issuer URL, or "dev"
		subject   TEXT NOT NULL, -- the provider's stable id of the user ("sub")
		editor_id TEXT NOT NULL REFERENCES editors(id),
		created   INTEGER NOT NULL,
		PRIMARY KEY (provider, subject),
		UNIQUE (editor_id, provider)
	) STRICT;`,
	// 4: the change log verifiers follow (see epoch.ChangeLog), and the
	// store's identity. Every change to what State returns appends a row in
	// the same transaction (Store.change). AUTOINCREMENT: a seq is never
	// reused, even after pruning. The first row ("every editor changed")
	// gives states read before any later change a non-zero seq.
	`CREATE TABLE changes (
		seq       INTEGER PRIMARY KEY AUTOINCREMENT,
		editor_id TEXT,    -- NULL: every editor
		version   INTEGER, -- the editor's version after the change; NULL for every editor
		at        INTEGER NOT NULL -- microseconds since 1970-01-01 UTC, the store's clock
	) STRICT;
	CREATE INDEX changes_at ON changes(at);
	CREATE TABLE store_meta (
		one      INTEGER PRIMARY KEY CHECK (one = 1),
		store_id TEXT NOT NULL
	) STRICT;
	INSERT INTO store_meta (one, store_id) VALUES (1, lower(hex(randomblob(16))));
	INSERT INTO changes (editor_id, version, at) VALUES (NULL, NULL, CAST(unixepoch('subsec') * 1000000 AS INTEGER));`,
	// 5: the revoked-token subquery of a state read searches one editor's
	// revoked rows by creation time instead of scanning the table.
	`CREATE INDEX api_tokens_editor_revoked ON api_tokens(editor_id, created) WHERE revoked IS NOT NULL;`,
	// 6: a name is free again once its token is dead for good (revoked,
	// expired, revoked by a touch or with its parent), not only once it is
	// revoked: RegisterToken checks names among live tokens in its
	// transaction, through a plain index. parents lists the token ids a
	// token was derived from (its parent_token caveats), so that the
	// registry knows when revoking a parent revoked it.
	`DROP INDEX api_tokens_live_name;
	CREATE INDEX api_tokens_editor_name ON api_tokens(editor_id, name);
	CREATE INDEX api_tokens_editor_live ON api_tokens(editor_id, created) WHERE revoked IS NULL;
	ALTER TABLE api_tokens ADD COLUMN parents TEXT; -- comma-separated token ids; NULL: none`,
	// Rotation with overlap (epoch.Rotations) and the attenuation of the
	// last use: a rotated token names its successor and the end of its
	// grace, the successor its predecessor; RetireRotated finds the
	// rotated tokens still pending through their index. caveats records
	// what a rotation must carry over (epoch.APIToken.Caveats).
	`ALTER TABLE api_tokens ADD COLUMN rotated_to TEXT;
	ALTER TABLE api_tokens ADD COLUMN rotated_from TEXT;
	ALTER TABLE api_tokens ADD COLUMN grace_until INTEGER; -- microseconds since 1970-01-01 UTC
	ALTER TABLE api_tokens ADD COLUMN last_attenuation TEXT;
	ALTER TABLE api_tokens ADD COLUMN last_attenuation_id TEXT;
	ALTER TABLE api_tokens ADD COLUMN caveats TEXT; -- a JSON array of caveat texts; NULL: unknown (registered before this column)
	CREATE INDEX api_tokens_rotating ON api_tokens(grace_until) WHERE revoked IS NULL AND rotated_to IS NOT NULL;`,
	// The audit trail (epoch.Audit): append-only — a trigger refuses any
	// update, and rows are deleted only by PruneAudit, oldest first. And
	// the expiry notifier's claims (epoch.Notifications): one row per
	// (token, event).
	`CREATE TABLE audit_events (
		id              INTEGER PRIMARY KEY AUTOINCREMENT,
		at              INTEGER NOT NULL, -- microseconds since 1970-01-01 UTC
		action          TEXT NOT NULL,
		actor           TEXT NOT NULL,
		actor_editor_id TEXT NOT NULL DEFAULT '',
		actor_token_id  TEXT NOT NULL DEFAULT '',
		os_user         TEXT NOT NULL DEFAULT '',
		from_addr       TEXT NOT NULL DEFAULT '',
		editor_id       TEXT NOT NULL DEFAULT '',
		token_id        TEXT NOT NULL DEFAULT '',
		key_id          TEXT NOT NULL DEFAULT '',
		detail          TEXT NOT NULL DEFAULT '',
		count           INTEGER NOT NULL DEFAULT 1
	) STRICT;
	CREATE INDEX audit_events_at ON audit_events(at);
	CREATE INDEX audit_events_editor ON audit_events(editor_id, id);
	CREATE INDEX audit_events_actor_editor ON audit_events(actor_editor_id, id);
	CREATE INDEX audit_events_token ON audit_events(token_id, id);
	CREATE INDEX audit_events_actor_token ON audit_events(actor_token_id, id);
	CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
	BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
	CREATE TABLE notifications (
		token_id TEXT NOT NULL,
		event    TEXT NOT NULL,   -- e.g. expiring:168h, expired_unused
		claimed  INTEGER NOT NULL, -- microseconds; 0: released
		sent     INTEGER,          -- NULL: not sent (yet)
		PRIMARY KEY (token_id, event)
	) STRICT;`,
}

// Store is a SQLite epoch store. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	now  func() time.Time
	rand io.Reader
	// byID is the editor query by id, prepared once: State runs it on
	// every cache miss, and SQLite's parsing and planning of it cost more
	// than running it.
	byID *sql.Stmt

	maxLive, maxRevoked int           // see WithTokenLimits
	retention           time.Duration // see WithChangeRetention
	noMigrate           bool          // see WithNoMigrate
}

// ErrSchemaOld means the database's schema is older than this program and
// WithNoMigrate forbade upgrading it.
var ErrSchemaOld = epoch.ErrSchemaOld

// WithNoMigrate makes Open refuse a database whose schema is older than
// this program (ErrSchemaOld) instead of upgrading it. A brand-new empty
// file (no tables yet) is still initialised.
func WithNoMigrate() Option { return func(s *Store) { s.noMigrate = true } }

// Defaults of WithTokenLimits and WithChangeRetention.
const (
	DefaultMaxLiveTokens    = epoch.DefaultMaxLiveTokens
	DefaultMaxRevokedTokens = epoch.DefaultMaxRevokedTokens
	DefaultChangeRetention  = epoch.DefaultChangeRetention
)

// WithTokenLimits sets how many live API tokens an editor may have
// (default DefaultMaxLiveTokens) and how many revoked tokens its state may
// list (revoked one by one, created after its epoch, not expired; default
// DefaultMaxRevokedTokens): RegisterToken refuses a token beyond either with
// ErrTooManyTokens. Revoking is never refused, so a state lists at most
// maxRevoked + maxLive ids. Values ≤ 0 keep the defaults.
func WithTokenLimits(maxLive, maxRevoked int) Option {
	return func(s *Store) {
		if maxLive > 0 {
			s.maxLive = maxLive
		}
		if maxRevoked > 0 {
			s.maxRevoked = maxRevoked
		}
	}
}

// WithChangeRetention sets how long the change log keeps rows (default
// DefaultChangeRetention). A verifier that stops reading the log for longer
// finds a gap and drops its caches.
func WithChangeRetention(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.retention = d
		}
	}
}

// An Option configures a Store.
type Option func(*Store)

// WithClock sets the store's clock, used for touch, unlock and creation
// (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithRandom sets the source of generated editor ids (default crypto/rand).
func WithRandom(r io.Reader) Option { return func(s *Store) { s.rand = r } }

// Open opens (creating if needed) the database at path and applies pending
// migrations. It refuses a database whose schema is newer than this code.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	s := &Store{now: time.Now, rand: rand.Reader, maxLive: DefaultMaxLiveTokens, maxRevoked: DefaultMaxRevokedTokens, retention: DefaultChangeRetention}
	for _, o := range opts {
		o(s)
	}
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("epoch store %s: %w", path, err)
	}
	// URI escaping for the characters SQLite's URI parser treats specially.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	dsn := "file:" + esc + "?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate&_synchronous=NORMAL"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("epoch store %s: %w", path, err)
	}
	s.db = db
	// Keep as many idle connections as are likely busy at once: the
	// default, 2, closes and reopens connections (and re-reads the schema)
	// whenever more readers than that come and go.
	db.SetMaxIdleConns(maxIdleConns)
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("epoch store %s: %w", path, err)
	}
	if s.byID, err = db.PrepareContext(ctx, editorQuery+"id = :arg"); err != nil {
		db.Close()
		return nil, fmt.Errorf("epoch store %s: %w", path, err)
	}
	// SQLite gives the WAL and shared-memory files the database's mode;
	// make sure of it whatever the umask or an older version did.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("epoch store %s: %w", path, err)
		}
	}
	return s, nil
}

// createPrivate creates the database file 0600 (whatever the umask) when it
// does not exist yet, so that SQLite opens a private file and gives its
// WAL and shared-memory files the same mode. An existing file is left as it
// is.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Close closes the database.
func (s *Store) Close() error {
	s.byID.Close()
	return s.db.Close()
}

// maxIdleConns is the connections the pool keeps open while idle.
const maxIdleConns = 16

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d); upgrade amaretti", version, len(migrations))
	}
	if s.noMigrate && version < len(migrations) {
		var tables int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
			return err
		}
		if version > 0 || tables > 0 {
			return fmt.Errorf("%w (schema version %d, this program needs %d)", ErrSchemaOld, version, len(migrations))
		}
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if version < len(migrations) {
		// PRAGMA takes no bound parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Migrate opens the database at path, which must exist, applies every
// pending migration and returns the schema versions before and after
// ("amaretti migrate").
func Migrate(ctx context.Context, path string, opts ...Option) (from, to int, err error) {
	if _, err := os.Stat(path); err != nil {
		return 0, 0, fmt.Errorf("epoch store %s: %w", path, err)
	}
	s, err := Open(ctx, path, append(opts, WithNoMigrate())...)
	if err == nil {
		v, err := s.SchemaVersion(ctx)
		s.Close()
		return v, v, err
	}
	if !errors.Is(err, ErrSchemaOld) {
		return 0, 0, err
	}
	db, err := sql.Open("sqlite3", "file:"+strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)+"?mode=ro")
	if err != nil {
		return 0, 0, fmt.Errorf("epoch store %s: %w", path, err)
	}
	err = db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&from)
	db.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("epoch store %s: %w", path, err)
	}
	s, err = Open(ctx, path, opts...)
	if err != nil {
		return from, 0, err
	}
	defer s.Close()
	to, err = s.SchemaVersion(ctx)
	return from, to, err
}

// SchemaVersion returns the number of migrations applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func micros(t time.Time) int64      { return t.UnixMicro() }
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

var farFuture = micros(epoch.FarFuture)

// editorColumns reads an editor with the ids of its tokens revoked one by
// one that still matter: created after the epoch and not expired (the first
// parameter is now), sorted; and the change-log head, in the same statement
// and so the same snapshot (epoch.State.Seq). The revoked rows are found
// through api_tokens_editor_revoked (migration 5), not by a scan.
const editorColumns = `id, username, role, bot, active, auth_epoch, created, version,
	coalesce((SELECT group_concat(token_id, ',') FROM (
		SELECT token_id FROM api_tokens t
		WHERE t.editor_id = editors.id AND t.revoked IS NOT NULL AND t.created > editors.auth_epoch
		  AND (t.expires IS NULL OR t.expires > :now)
		ORDER BY token_id)), ''),
	(SELECT coalesce(max(seq), 0) FROM changes)`

type scanner interface{ Scan(dest ...any) error }

func scanEditor(r scanner) (epoch.Editor, error) {
	var e epoch.Editor
	var role string
	var epochUS, createdUS int64
	if err := r.Scan(&e.ID, &e.Username, &role, &e.Bot, &e.Active, &epochUS, &createdUS, &e.Version, &e.Revoked, &e.Seq); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return e, epoch.ErrNotFound
		}
		return e, err
	}
	e.Role, e.AuthEpoch, e.Created = epoch.Role(role), fromMicros(epochUS), fromMicros(createdUS)
	return e, nil
}

// State implements epoch.Source.
func (s *Store) State(ctx context.Context, editorID string) (epoch.State, error) {
	e, err := s.Editor(ctx, editorID)
	if err != nil {
		return epoch.State{}, err
	}
	return e.State(), nil
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// editorQuery selects editors; the condition follows.
const editorQuery = "SELECT " + editorColumns + " FROM editors WHERE "

func (s *Store) editor(ctx context.Context, q querier, where string, arg any) (epoch.Editor, error) {
	return scanEditor(q.QueryRowContext(ctx, editorQuery+where,
		sql.Named("now", micros(s.now())), sql.Named("arg", arg)))
}

// Editor returns one editor's record, or epoch.ErrNotFound.
func (s *Store) Editor(ctx context.Context, id string) (epoch.Editor, error) {
	return scanEditor(s.byID.QueryRowContext(ctx, sql.Named("now", micros(s.now())), sql.Named("arg", id)))
}

// EditorByUsername returns the editor with that username (case-insensitive),
// or epoch.ErrNotFound.
func (s *Store) EditorByUsername(ctx context.Context, username string) (epoch.Editor, error) {
	return s.editor(ctx, s.db, "username = :arg", username)
}

// List returns every editor, in order of creation.
func (s *Store) List(ctx context.Context) ([]epoch.Editor, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+editorColumns+" FROM editors ORDER BY created, rowid", sql.Named("now", micros(s.now())))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []epoch.Editor
	for rows.Next() {
		e, err := scanEditor(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Create adds an editor. It fails with epoch.ErrExists when the id or username is
// taken.
func (s *Store) Create(ctx context.Context, n epoch.NewEditor) (epoch.Editor, error) {
	n, err := s.prepare(n)
	if err != nil {
		return epoch.Editor{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return epoch.Editor{}, err
	}
	defer tx.Rollback()
	if err := s.insert(ctx, tx, n); err != nil {
		return epoch.Editor{}, err
	}
	e, err := s.editor(ctx, tx, "id = :arg", n.ID)
	if err != nil {
		return epoch.Editor{}, err
	}
	return e, tx.Commit()
}

// prepare validates a new editor and fills in its defaults.
func (s *Store) prepare(n epoch.NewEditor) (epoch.NewEditor, error) { return n.Prepare(s.rand) }

// insert adds a prepared editor, in tx; epoch.ErrExists when its id or username
// is taken.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, n epoch.NewEditor) error {
	now := micros(s.now())
	ep := now
	if !n.Epoch.IsZero() {
		ep = micros(n.Epoch)
	}
	_, err := s.change(ctx, tx, n.ID,
		"INSERT INTO editors (id, username, role, bot, active, auth_epoch, created, version) VALUES (?, ?, ?, ?, 1, ?, ?, 1)",
		n.ID, n.Username, string(n.Role), n.Bot, ep, now)
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("%w: id %q or username %q", epoch.ErrExists, n.ID, n.Username)
	}
	return err
}

// touchSQL moves an epoch to max(now, epoch + 1 µs), leaving a locked
// editor locked. One statement, so it is atomic.
const touchSQL = "auth_epoch = CASE WHEN auth_epoch >= :far THEN auth_epoch ELSE max(:now, auth_epoch + 1) END, version = version + 1"

// Touch revokes every token of the editor created so far: the epoch becomes
// max(now, previous epoch + 1 µs), so epochs only grow. A locked editor stays
// locked.
func (s *Store) Touch(ctx context.Context, id string) (epoch.Editor, error) {
	return s.update(ctx, id, touchSQL)
}

// TouchAll touches every editor and returns how many it touched.
func (s *Store) TouchAll(ctx context.Context) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := s.change(ctx, tx, "", "UPDATE editors SET "+touchSQL,
		sql.Named("far", farFuture), sql.Named("now", micros(s.now())))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// Lock sets the editor's epoch to epoch.FarFuture: no token, old or new,
// works until Unlock.
func (s *Store) Lock(ctx context.Context, id string) (epoch.Editor, error) {
	return s.update(ctx, id, "auth_epoch = :far, version = version + 1")
}

// Unlock sets a locked editor's epoch to now, so tokens minted while it was
// locked stay invalid; on an editor that is not locked it is a Touch.
func (s *Store) Unlock(ctx context.Context, id string) (epoch.Editor, error) {
	return s.update(ctx, id, "auth_epoch = CASE WHEN auth_epoch >= :far THEN :now ELSE max(:now, auth_epoch + 1) END, version = version + 1")
}

// SetActive activates or deactivates an editor. A deactivated editor's
// tokens all fail until it is activated again.
func (s *Store) SetActive(ctx context.Context, id string, active bool) (epoch.Editor, error) {
	return s.update(ctx, id, "active = :active, version = version + 1", sql.Named("active", active))
}

// update changes one editor and reads it back, in one transaction.
func (s *Store) update(ctx context.Context, id, set string, args ...any) (epoch.Editor, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return epoch.Editor{}, err
	}
	defer tx.Rollback()
	args = append(args, sql.Named("far", farFuture), sql.Named("now", micros(s.now())), sql.Named("id", id))
	res, err := s.change(ctx, tx, id, "UPDATE editors SET "+set+" WHERE id = :id", args...)
	if err != nil {
		return epoch.Editor{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return epoch.Editor{}, err
	} else if n == 0 {
		return epoch.Editor{}, epoch.ErrNotFound
	}
	e, err := s.editor(ctx, tx, "id = :arg", id)
	if err != nil {
		return epoch.Editor{}, err
	}
	return e, tx.Commit()
}

// change runs a statement that changes what State returns for the editor
// editorID ("" for every editor) and appends the change-log row, in tx, so
// that the change and its row commit together. Every such statement goes
// through here: that is how no change escapes the log (a test checks each
// operation). A statement that changes no row appends nothing. It bumps no
// version: the statement does.
func (s *Store) change(ctx context.Context, tx *sql.Tx, editorID, query string, args ...any) (sql.Result, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return res, err
	}
	now := micros(s.now())
	var ins sql.Result
	if editorID == "" {
		ins, err = tx.ExecContext(ctx, "INSERT INTO changes (editor_id, version, at) VALUES (NULL, NULL, ?)", now)
	} else {
		ins, err = tx.ExecContext(ctx, "INSERT INTO changes (editor_id, version, at) SELECT id, version, ? FROM editors WHERE id = ?", now, editorID)
	}
	if err != nil {
		return nil, fmt.Errorf("change log: %w", err)
	}
	seq, err := ins.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("change log: %w", err)
	}
	if seq%pruneEvery == 0 {
		// Opportunistic pruning keeps the table bounded; the newest row
		// always stays, so the head never goes back.
		if _, err := tx.ExecContext(ctx, "DELETE FROM changes WHERE at < ? AND seq < ?", now-s.retention.Microseconds(), seq); err != nil {
			return nil, fmt.Errorf("change log: %w", err)
		}
	}
	return res, nil
}

// pruneEvery: the change log is pruned on every pruneEvery-th change.
const pruneEvery = 64

// Changes implements epoch.ChangeLog: up to limit changes after afterSeq,
// oldest first. Writers are serialised (immediate transactions), so a seq
// never appears after a greater one has been read.
func (s *Store) Changes(ctx context.Context, afterSeq int64, limit int) ([]epoch.Change, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, "SELECT seq, coalesce(editor_id, ''), coalesce(version, 0), at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []epoch.Change
	for rows.Next() {
		var c epoch.Change
		var at int64
		if err := rows.Scan(&c.Seq, &c.EditorID, &c.Version, &at); err != nil {
			return nil, err
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Head implements epoch.ChangeLog, in one statement.
func (s *Store) Head(ctx context.Context) (epoch.Head, error) {
	var h epoch.Head
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT store_id FROM store_meta),
		(SELECT coalesce(max(seq), 0) FROM changes), (SELECT coalesce(min(seq), 0) FROM changes)`).Scan(&h.StoreID, &h.Seq, &h.Oldest)
	if err != nil {
		return h, err
	}
	if h.Oldest == 0 {
		h.Oldest = h.Seq + 1
	}
	return h, nil
}

var (
	_ epoch.Source    = (*Store)(nil)
	_ epoch.ChangeLog = (*Store)(nil)
)
var _ epoch.Store = (*Store)(nil)

// SchemaVersions is the number of migrations this program knows: the
// schema version Open leaves a database at.
func SchemaVersions() int { return len(migrations) }
