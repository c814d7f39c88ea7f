// Package postgres is amaretti's PostgreSQL authoritative store: editors and
// their auth_epoch, the API-token registry, login links and the change log
// in a PostgreSQL database that many hosts share. It implements epoch.Store
// with exactly the semantics of epoch/sqlite (epoch/storetest checks both).
//
// Times are timestamptz, at microsecond precision (the precision of the
// epoch rule), read by the database server's clock: every host that writes
// agrees on one clock. Schema migrations are versioned and applied on Open
// inside a transaction holding an advisory lock, so several daemons starting
// at once never race (WithNoMigrate refuses an old schema instead; Migrate
// applies them explicitly).
//
// Every change to what State returns appends a row to the change log in the
// same transaction and sends a NOTIFY on the channel amaretti_changes at
// commit; Watch turns those into wake-ups for an epoch.Follower.
//
// Credentials never appear in errors or logs: connection errors are
// rewritten without the password, and URLs are shown through Redacted.
package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/amaretti-auth/amaretti/epoch"
)

// Defaults of the options.
const (
	DefaultMaxLiveTokens    = epoch.DefaultMaxLiveTokens
	DefaultMaxRevokedTokens = epoch.DefaultMaxRevokedTokens
	DefaultChangeRetention  = epoch.DefaultChangeRetention
	// DefaultReadTimeout bounds each query of the verify path (State,
	// Changes, Head): well under Envoy's 200 ms, so that a slow database
	// makes a verification fail (and deny) rather than hang.
	DefaultReadTimeout = 100 * time.Millisecond
	// DefaultWriteTimeout bounds every other operation (connecting,
	// writes, lists).
	DefaultWriteTimeout = 5 * time.Second
	// DefaultMigrateTimeout bounds applying migrations, waiting for the
	// advisory lock another process holds while it migrates included:
	// schema changes are rare, may rewrite a large table, and failing a
	// start half way through one helps nobody.
	DefaultMigrateTimeout = 2 * time.Minute
)

// Channel is the NOTIFY channel of the change log: its payload is the new
// change's seq.
const Channel = "amaretti_changes"

// Advisory-lock keys (pg_advisory_xact_lock): arbitrary constants of this
// program ("amaretti" in ASCII, with a last byte of its own per use).
const (
	migrateLock = 0x616d617265747401 // held while migrations are applied
	changeLock  = 0x616d617265747402 // held by every change-log writer until it commits
)

// ErrSchemaOld means the database's schema is older than this program and
// WithNoMigrate forbade upgrading it.
var ErrSchemaOld = epoch.ErrSchemaOld

// ErrSchemaNew means the database's schema is newer than this program.
var ErrSchemaNew = errors.New("the database schema is newer than this program: upgrade amaretti")

// Store is a PostgreSQL authoritative store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// connConfig is the pool's connection configuration, for Watch's
	// dedicated connection.
	connConfig *pgx.ConnConfig
	// secrets are what connection errors must not show (the password).
	secrets  []string
	redacted string // the URL, fit for an error
	rand     io.Reader
	logger   *slog.Logger

	maxLive, maxRevoked       int           // see WithTokenLimits
	retention                 time.Duration // see WithChangeRetention
	noMigrate                 bool          // see WithNoMigrate
	skipSchema                bool          // Migrate: neither check nor migrate on Open
	readTimeout, writeTimeout time.Duration // see WithQueryTimeout, WithWriteTimeout
	migrateTimeout            time.Duration // see WithMigrateTimeout
}

// An Option configures a Store.
type Option func(*Store)

// WithTokenLimits sets how many live API tokens an editor may have
// (default DefaultMaxLiveTokens) and how many revoked tokens its state may
// list (default DefaultMaxRevokedTokens), as sqlite.WithTokenLimits does.
// Values ≤ 0 keep the defaults.
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
// DefaultChangeRetention).
func WithChangeRetention(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.retention = d
		}
	}
}

// WithNoMigrate makes Open refuse a database whose schema is older than
// this program (ErrSchemaOld) instead of upgrading it: the schema is then
// upgraded only by Migrate ("amaretti migrate").
func WithNoMigrate() Option { return func(s *Store) { s.noMigrate = true } }

// WithQueryTimeout bounds each query of the verify path — State, Changes,
// Head — (default DefaultReadTimeout): past it the query is abandoned and
// the call fails with an error wrapping context.DeadlineExceeded.
func WithQueryTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.readTimeout = d
		}
	}
}

// WithWriteTimeout bounds every other operation (default
// DefaultWriteTimeout).
func WithWriteTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.writeTimeout = d
		}
	}
}

// WithMigrateTimeout bounds applying migrations on Open and in Migrate
// (default DefaultMigrateTimeout).
func WithMigrateTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.migrateTimeout = d
		}
	}
}

// WithLogger sets where Watch reports lost connections (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.logger = l
		}
	}
}

// WithRandom sets the source of generated editor ids (default crypto/rand).
func WithRandom(r io.Reader) Option { return func(s *Store) { s.rand = r } }

// Open connects to the database at url (a postgres:// or postgresql:// URL,
// or a key=value connection string; pgxpool's pool_* parameters apply) and
// applies pending migrations (unless WithNoMigrate). It refuses a database
// whose schema is newer than this code (ErrSchemaNew).
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	s := &Store{
		rand: rand.Reader, logger: slog.New(slog.DiscardHandler),
		maxLive: DefaultMaxLiveTokens, maxRevoked: DefaultMaxRevokedTokens, retention: DefaultChangeRetention,
		readTimeout: DefaultReadTimeout, writeTimeout: DefaultWriteTimeout, migrateTimeout: DefaultMigrateTimeout,
		redacted: Redacted(url), secrets: urlSecrets(url),
	}
	for _, o := range opts {
		o(s)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, s.connErr("parsing the URL", err)
	}
	if cfg.ConnConfig.Password != "" {
		s.secrets = append(s.secrets, cfg.ConnConfig.Password)
	}
	s.connConfig = cfg.ConnConfig.Copy()
	cctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	s.pool, err = pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, s.connErr("connecting", err)
	}
	if err := s.pool.Ping(cctx); err != nil {
		s.pool.Close()
		return nil, s.connErr("connecting", err)
	}
	switch {
	case s.skipSchema:
	case s.noMigrate:
		err = s.checkSchema(cctx)
	default:
		mctx, cancel := context.WithTimeout(ctx, s.migrateTimeout)
		_, _, err = s.migrate(mctx, len(migrations))
		cancel()
	}
	if err != nil {
		s.pool.Close()
		return nil, s.connErr("schema", err)
	}
	return s, nil
}

// Migrate connects to the database at url, applies every pending migration
// under the advisory lock, and returns the schema versions before and
// after ("amaretti migrate").
func Migrate(ctx context.Context, url string) (from, to int, err error) {
	s, err := Open(ctx, url, withoutSchemaCheck())
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(ctx, s.migrateTimeout)
	defer cancel()
	from, to, err = s.migrate(ctx, len(migrations))
	if err != nil {
		return from, to, s.connErr("migrating", err)
	}
	return from, to, nil
}

// withoutSchemaCheck lets Migrate open a database of any schema.
func withoutSchemaCheck() Option {
	return func(s *Store) { s.skipSchema = true }
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	return s.pool.Ping(ctx)
}

// read bounds a verify-path query; write bounds any other operation.
func (s *Store) read(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.readTimeout)
}

func (s *Store) write(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.writeTimeout)
}

// editorColumns reads an editor (from editors e) with the ids of its tokens
// revoked one by one that still matter — created after the epoch and not
// expired — sorted bytewise (COLLATE "C", whatever the database's
// collation), comma-separated; and the change-log head, in the same
// statement and so the same snapshot (epoch.State.Seq). The revoked rows are
// found through api_tokens_editor_revoked, the head through the primary
// key of changes.
const editorColumns = `e.id, e.username, e.role, e.bot, e.active, e.auth_epoch, e.created, e.version,
	coalesce((SELECT string_agg(t.token_id, ',' ORDER BY t.token_id COLLATE "C") FROM api_tokens t
		WHERE t.editor_id = e.id AND t.revoked IS NOT NULL AND t.created > e.auth_epoch
		  AND (t.expires IS NULL OR t.expires > now())), ''),
	(SELECT coalesce(max(seq), 0) FROM changes)`

func scanEditor(r pgx.Row) (epoch.Editor, error) {
	var e epoch.Editor
	var role string
	if err := r.Scan(&e.ID, &e.Username, &role, &e.Bot, &e.Active, &e.AuthEpoch, &e.Created, &e.Version, &e.Revoked, &e.Seq); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return e, epoch.ErrNotFound
		}
		return e, err
	}
	e.Role, e.AuthEpoch, e.Created = epoch.Role(role), e.AuthEpoch.UTC(), e.Created.UTC()
	return e, nil
}

// querier is the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *Store) editor(ctx context.Context, q querier, where string, args ...any) (epoch.Editor, error) {
	if !storable(args...) {
		return epoch.Editor{}, epoch.ErrNotFound
	}
	return scanEditor(q.QueryRow(ctx, "SELECT "+editorColumns+" FROM editors e WHERE "+where, args...))
}

// State implements epoch.Source: one statement, bounded by the query
// timeout.
func (s *Store) State(ctx context.Context, editorID string) (epoch.State, error) {
	ctx, cancel := s.read(ctx)
	defer cancel()
	e, err := s.editor(ctx, s.pool, "e.id = $1", editorID)
	if err != nil {
		return epoch.State{}, err
	}
	return e.State(), nil
}

// Editor returns one editor's record, or epoch.ErrNotFound.
func (s *Store) Editor(ctx context.Context, id string) (epoch.Editor, error) {
	ctx, cancel := s.write(ctx)
	defer cancel()
	return s.editor(ctx, s.pool, "e.id = $1", id)
}

// EditorByUsername returns the editor with that username
// (case-insensitive), or epoch.ErrNotFound.
func (s *Store) EditorByUsername(ctx context.Context, username string) (epoch.Editor, error) {
	ctx, cancel := s.write(ctx)
	defer cancel()
	return s.editor(ctx, s.pool, "lower(e.username) = lower($1)", username)
}

// List returns every editor, in order of creation.
func (s *Store) List(ctx context.Context) ([]epoch.Editor, error) {
	ctx, cancel := s.write(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT "+editorColumns+" FROM editors e ORDER BY e.created, e.ord")
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

// Create adds an editor. It fails with epoch.ErrExists when the id or
// username is taken.
func (s *Store) Create(ctx context.Context, n epoch.NewEditor) (epoch.Editor, error) {
	n, err := n.Prepare(s.rand)
	if err != nil {
		return epoch.Editor{}, err
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	var e epoch.Editor
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.insert(ctx, tx, n); err != nil {
			return err
		}
		e, err = s.editor(ctx, tx, "e.id = $1", n.ID)
		return err
	})
	return e, err
}

// insert adds a prepared editor, in tx; epoch.ErrExists when its id or
// username is taken (ON CONFLICT DO NOTHING: a conflict does not abort the
// transaction, so Login can try another name).
func (s *Store) insert(ctx context.Context, tx pgx.Tx, n epoch.NewEditor) error {
	var ep any // NULL: the creation time
	if !n.Epoch.IsZero() {
		ep = n.Epoch
	}
	tag, err := s.change(ctx, tx, n.ID, false,
		`INSERT INTO editors (id, username, role, bot, active, auth_epoch, created, version)
		SELECT $1, $2, $3, $4, true, coalesce($5::timestamptz, now), now, 1 FROM (SELECT clock_timestamp() AS now) c
		ON CONFLICT DO NOTHING`,
		n.ID, n.Username, string(n.Role), n.Bot, ep)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: id %q or username %q", epoch.ErrExists, n.ID, n.Username)
	}
	return nil
}

// storable reports whether every string among args is text PostgreSQL
// can hold: valid UTF-8 without a NUL byte. PostgreSQL refuses anything
// else with an error (SQLSTATE 22021), where SQLite compares bytes and finds
// nothing; an id or a name from a request that no row can hold is unknown,
// on both stores, rather than a store failure (a daemon's 503). Writes
// validate their input before they get here.
func storable(args ...any) bool {
	for _, a := range args {
		if s, ok := a.(string); ok && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
			return false
		}
	}
	return true
}

// farFuture is epoch.FarFuture in SQL (a test checks they agree).
const farFuture = `'9999-12-31 23:59:59.999999+00'::timestamptz`

// touchSQL moves an epoch to greatest(now, epoch + 1 µs) by the database
// server's clock, leaving a locked editor locked, in one statement.
// clock_timestamp(), not now(): now() is when the transaction began, and a
// touch that waited for the row lock must still revoke every token minted
// before it took effect.
const touchSQL = `auth_epoch = CASE WHEN auth_epoch >= ` + farFuture + ` THEN auth_epoch
	ELSE greatest(date_trunc('microseconds', clock_timestamp()), auth_epoch + interval '1 microsecond') END,
	version = version + 1`

// Touch revokes every token of the editor created so far: the epoch becomes
// greatest(now, previous epoch + 1 µs), so epochs only grow. A locked
// editor stays locked.
func (s *Store) Touch(ctx context.Context, id string) (epoch.Editor, error) {
	return s.update(ctx, id, touchSQL)
}

// TouchAll touches every editor and returns how many it touched.
func (s *Store) TouchAll(ctx context.Context) (int64, error) {
	ctx, cancel := s.write(ctx)
	defer cancel()
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := s.change(ctx, tx, "", false, "UPDATE editors SET "+touchSQL)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// Lock sets the editor's epoch to epoch.FarFuture: no token, old or new,
// works until Unlock.
func (s *Store) Lock(ctx context.Context, id string) (epoch.Editor, error) {
	return s.update(ctx, id, "auth_epoch = "+farFuture+", version = version + 1")
}

// Unlock sets a locked editor's epoch to now, so tokens minted while it was
// locked stay invalid; on an editor that is not locked it is a Touch.
func (s *Store) Unlock(ctx context.Context, id string) (epoch.Editor, error) {
	return s.update(ctx, id, `auth_epoch = CASE WHEN auth_epoch >= `+farFuture+` THEN date_trunc('microseconds', clock_timestamp())
		ELSE greatest(date_trunc('microseconds', clock_timestamp()), auth_epoch + interval '1 microsecond') END,
		version = version + 1`)
}

// SetActive activates or deactivates an editor. A deactivated editor's
// tokens all fail until it is activated again.
func (s *Store) SetActive(ctx context.Context, id string, active bool) (epoch.Editor, error) {
	return s.update(ctx, id, "active = $2, version = version + 1", active)
}

// update changes one editor and reads it back, in one transaction. set may
// use $2… (args); $1 is the id.
func (s *Store) update(ctx context.Context, id, set string, args ...any) (epoch.Editor, error) {
	if !storable(id) {
		return epoch.Editor{}, epoch.ErrNotFound
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	var e epoch.Editor
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := s.change(ctx, tx, id, false, "UPDATE editors SET "+set+" WHERE id = $1", append([]any{id}, args...)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return epoch.ErrNotFound
		}
		e, err = s.editor(ctx, tx, "e.id = $1", id)
		return err
	})
	return e, err
}

// change runs a statement that changes what State returns for the editor
// editorID ("" for every editor, or for none when keys is set: the root
// keys changed) and appends the change-log row, in tx, so that the change
// and its row commit together, and queues a NOTIFY on Channel that
// PostgreSQL sends at commit. Every such statement goes through here: that
// is how no change escapes the log. A statement that changes no row appends
// nothing. It bumps no version: the statement does.
//
// Ordering (epoch.ChangeLog): a follower must never see seq N after having
// read a seq above N. Seqs come from an identity sequence, which hands out
// numbers at insert time, not at commit: two writers could take 10 and 11
// and commit 11 first, and a follower reading in between would skip 10 for
// good. So every writer first takes the transaction-level advisory lock
// changeLock, held until it commits (PostgreSQL makes a commit visible
// before it releases the transaction's locks): seqs are then handed out in
// commit order. The lock is taken before the statement runs, so that a
// writer never holds it while waiting for a row lock another writer holds
// (every editor row is changed under it): no deadlock. Taking it again in
// one transaction is allowed (it is counted).
func (s *Store) change(ctx context.Context, tx pgx.Tx, editorID string, keys bool, query string, args ...any) (pgconn.CommandTag, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(changeLock)); err != nil {
		return pgconn.CommandTag{}, fmt.Errorf("change log: %w", err)
	}
	tag, err := tx.Exec(ctx, query, args...)
	if err != nil || tag.RowsAffected() == 0 {
		return tag, err
	}
	var seq int64
	var id any
	if editorID != "" {
		id = editorID
	}
	err = tx.QueryRow(ctx, `WITH c AS (
			INSERT INTO changes (editor_id, version, at, keys)
			SELECT $1::text, (SELECT version FROM editors WHERE id = $1::text), clock_timestamp(), $2
			RETURNING seq)
		SELECT c.seq FROM c, pg_notify('`+Channel+`', c.seq::text)`, id, keys).Scan(&seq)
	if err != nil {
		return pgconn.CommandTag{}, fmt.Errorf("change log: %w", err)
	}
	if seq%pruneEvery == 0 {
		// Opportunistic pruning keeps the table bounded; the newest row
		// always stays, so the head never goes back.
		if _, err := tx.Exec(ctx, "DELETE FROM changes WHERE at < clock_timestamp() - $1::interval AND seq < $2", s.retention, seq); err != nil {
			return pgconn.CommandTag{}, fmt.Errorf("change log: %w", err)
		}
	}
	return tag, nil
}

// pruneEvery: the change log is pruned on every pruneEvery-th change.
const pruneEvery = 64

// Changes implements epoch.ChangeLog: up to limit changes after afterSeq,
// oldest first, bounded by the query timeout. Writers hold changeLock until
// they commit, so a seq never appears after a greater one has been read.
func (s *Store) Changes(ctx context.Context, afterSeq int64, limit int) ([]epoch.Change, error) {
	if limit <= 0 {
		limit = 1000
	}
	ctx, cancel := s.read(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT seq, coalesce(editor_id, ''), coalesce(version, 0), at, keys FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2", afterSeq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []epoch.Change
	for rows.Next() {
		var c epoch.Change
		if err := rows.Scan(&c.Seq, &c.EditorID, &c.Version, &c.At, &c.Keys); err != nil {
			return nil, err
		}
		c.At = c.At.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// Head implements epoch.ChangeLog, in one statement.
func (s *Store) Head(ctx context.Context) (epoch.Head, error) {
	ctx, cancel := s.read(ctx)
	defer cancel()
	var h epoch.Head
	// The store id names the database as well as its content: a database
	// restored from a dump (pg_restore into a database made for it) has
	// the dumped store_meta row but another oid, so followers see another
	// store and drop what they cached.
	err := s.pool.QueryRow(ctx, `SELECT (SELECT store_id FROM store_meta) || '.' || (SELECT oid FROM pg_database WHERE datname = current_database()),
		(SELECT coalesce(max(seq), 0) FROM changes), (SELECT coalesce(min(seq), 0) FROM changes)`).Scan(&h.StoreID, &h.Seq, &h.Oldest)
	if err != nil {
		return h, err
	}
	if h.Oldest == 0 {
		h.Oldest = h.Seq + 1
	}
	return h, nil
}

var _ epoch.Store = (*Store)(nil)
