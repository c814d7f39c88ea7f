package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrations are applied in order; the table amaretti_schema records how
// many have run. Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: everything the store keeps. Times are timestamptz (microseconds).
	// ord numbers rows in insertion order, SQLite's rowid: the tie-break of
	// lists "in order of creation".
	`CREATE TABLE editors (
		id         text PRIMARY KEY,
		username   text NOT NULL,
		role       text NOT NULL CHECK (role IN ('editor', 'bot', 'admin', 'superuser')),
		bot        boolean NOT NULL DEFAULT false,
		active     boolean NOT NULL DEFAULT true,
		auth_epoch timestamptz NOT NULL,
		created    timestamptz NOT NULL,
		version    bigint NOT NULL DEFAULT 1,
		ord        bigint GENERATED ALWAYS AS IDENTITY
	);
	-- Usernames are unique case-insensitively (they are ASCII).
	CREATE UNIQUE INDEX editors_username ON editors (lower(username));
	-- API tokens. Rows are never deleted, so a token id is never reused.
	CREATE TABLE api_tokens (
		token_id       text PRIMARY KEY,
		editor_id      text NOT NULL REFERENCES editors(id),
		name           text NOT NULL,
		description    text NOT NULL DEFAULT '',
		rights         text[],      -- NULL: unrestricted
		endpoint       text,        -- NULL: any endpoint
		created        timestamptz NOT NULL,
		creator        text NOT NULL,
		expires        timestamptz, -- NULL: never
		revoked        timestamptz, -- NULL: not revoked one by one
		last_used      timestamptz,
		last_used_from text,
		parents        text[],      -- the token ids it was derived from; NULL: none
		ord            bigint GENERATED ALWAYS AS IDENTITY
	);
	-- Login identities: a provider's subject names one editor, and an
	-- editor has at most one identity per provider.
	CREATE TABLE editor_links (
		provider  text NOT NULL, -- an OIDC issuer URL, or "dev"
		subject   text NOT NULL, -- the provider's stable id of the user ("sub")
		editor_id text NOT NULL REFERENCES editors(id),
		created   timestamptz NOT NULL,
		PRIMARY KEY (provider, subject),
		UNIQUE (editor_id, provider)
	);
	-- The change log verifiers follow (epoch.ChangeLog): every change to
	-- what State returns appends a row in the same transaction
	-- (Store.change). An identity never reuses a seq, even after pruning.
	-- The first row ("every editor changed") gives states read before any
	-- later change a non-zero seq.
	CREATE TABLE changes (
		seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		editor_id text,   -- NULL: every editor, or none (keys)
		version   bigint, -- the editor's version after the change
		at        timestamptz NOT NULL,
		keys      boolean NOT NULL DEFAULT false -- the root keys changed
	);
	-- The store's identity: a new database is another store.
	CREATE TABLE store_meta (
		one      integer PRIMARY KEY CHECK (one = 1),
		store_id text NOT NULL
	);
	INSERT INTO store_meta (one, store_id) VALUES (1, replace(gen_random_uuid()::text, '-', ''));
	INSERT INTO changes (editor_id, version, at) VALUES (NULL, NULL, clock_timestamp());
	-- Root keys shared by every host, sealed with a key-encryption key
	-- that is never stored here.
	CREATE TABLE root_keys (
		id      text PRIMARY KEY,
		sealed  bytea NOT NULL,
		created timestamptz NOT NULL,
		retired timestamptz,
		current boolean NOT NULL DEFAULT false
	);`,
	// 2: the indexes of the hot paths. The revoked-token subquery of a
	// state read searches one editor's revoked rows by creation time;
	// RegisterToken checks names and counts live tokens through the
	// editor's entries; lists of creation order, expiring tokens and the
	// change log's pruning have theirs.
	`CREATE INDEX api_tokens_editor_revoked ON api_tokens (editor_id, created) WHERE revoked IS NOT NULL;
	CREATE INDEX api_tokens_editor_live ON api_tokens (editor_id, created) WHERE revoked IS NULL;
	CREATE INDEX api_tokens_editor_name ON api_tokens (editor_id, name);
	CREATE INDEX api_tokens_created ON api_tokens (created, ord);
	CREATE INDEX api_tokens_expires ON api_tokens (expires) WHERE revoked IS NULL AND expires IS NOT NULL;
	CREATE INDEX editors_created ON editors (created, ord);
	CREATE INDEX changes_at ON changes (at);`,
	// Rotation with overlap (epoch.Rotations) and the attenuation of the
	// last use: a rotated token names its successor and the end of its
	// grace, the successor its predecessor; RetireRotated finds the
	// rotated tokens still pending through their index. caveats records
	// what a rotation must carry over (epoch.APIToken.Caveats).
	`ALTER TABLE api_tokens ADD COLUMN rotated_to text;
	ALTER TABLE api_tokens ADD COLUMN rotated_from text;
	ALTER TABLE api_tokens ADD COLUMN grace_until timestamptz;
	ALTER TABLE api_tokens ADD COLUMN last_attenuation text;
	ALTER TABLE api_tokens ADD COLUMN last_attenuation_id text;
	ALTER TABLE api_tokens ADD COLUMN caveats text[]; -- NULL: unknown (registered before this column)
	CREATE INDEX api_tokens_rotating ON api_tokens (grace_until) WHERE revoked IS NULL AND rotated_to IS NOT NULL;`,
	// The audit trail (epoch.Audit): append-only — a trigger refuses any
	// update, and rows are deleted only by PruneAudit, oldest first. And
	// the expiry notifier's claims (epoch.Notifications): one row per
	// (token, event).
	`CREATE TABLE audit_events (
		id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at              timestamptz NOT NULL,
		action          text NOT NULL,
		actor           text NOT NULL,
		actor_editor_id text NOT NULL DEFAULT '',
		actor_token_id  text NOT NULL DEFAULT '',
		os_user         text NOT NULL DEFAULT '',
		from_addr       text NOT NULL DEFAULT '',
		editor_id       text NOT NULL DEFAULT '',
		token_id        text NOT NULL DEFAULT '',
		key_id          text NOT NULL DEFAULT '',
		detail          text NOT NULL DEFAULT '',
		count           bigint NOT NULL DEFAULT 1
	);
	CREATE INDEX audit_events_at ON audit_events (at);
	CREATE INDEX audit_events_editor ON audit_events (editor_id, id);
	CREATE INDEX audit_events_actor_editor ON audit_events (actor_editor_id, id);
	CREATE INDEX audit_events_token ON audit_events (token_id, id);
	CREATE INDEX audit_events_actor_token ON audit_events (actor_token_id, id);
	CREATE FUNCTION amaretti_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
	$$ BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$;
	CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION amaretti_audit_append_only();
	CREATE TABLE notifications (
		token_id text NOT NULL,
		event    text NOT NULL,        -- e.g. expiring:168h, expired_unused
		claimed  timestamptz NOT NULL, -- '-infinity': released
		sent     timestamptz,          -- NULL: not sent (yet)
		PRIMARY KEY (token_id, event)
	);`,
}

// schemaTable records the number of migrations applied.
const schemaTable = `CREATE TABLE IF NOT EXISTS amaretti_schema (
	one     integer PRIMARY KEY CHECK (one = 1),
	version integer NOT NULL
)`

// migrate applies migrations up to upto (len(migrations) but in tests) in
// one transaction holding the advisory lock migrateLock, so that several
// processes opening one database at once apply each migration once.
func (s *Store) migrate(ctx context.Context, upto int) (from, to int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schemaTable); err != nil {
			return err
		}
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		from, to = v, v
		if v > len(migrations) {
			return fmt.Errorf("%w (schema version %d, this program knows %d)", ErrSchemaNew, v, len(migrations))
		}
		for i := v; i < upto; i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			to = i + 1
		}
		if to != from {
			_, err = tx.Exec(ctx, "INSERT INTO amaretti_schema (one, version) VALUES (1, $1) ON CONFLICT (one) DO UPDATE SET version = excluded.version", to)
		}
		return err
	})
	if err != nil {
		return from, from, err
	}
	return from, to, nil
}

// schemaVersion reads the number of migrations applied: 0 in a database
// without the table.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT version FROM amaretti_schema").Scan(&v)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
		return 0, nil
	}
	return v, err
}

// checkSchema is WithNoMigrate's check.
func (s *Store) checkSchema(ctx context.Context) error {
	v, err := schemaVersion(ctx, s.pool)
	switch {
	case err != nil:
		return err
	case v < len(migrations):
		return fmt.Errorf("%w (schema version %d, this program needs %d)", ErrSchemaOld, v, len(migrations))
	case v > len(migrations):
		return fmt.Errorf("%w (schema version %d, this program knows %d)", ErrSchemaNew, v, len(migrations))
	}
	return nil
}

// SchemaVersion returns the number of migrations applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	ctx, cancel := s.write(ctx)
	defer cancel()
	return schemaVersion(ctx, s.pool)
}

// SchemaVersions is the number of migrations this program knows: the
// schema version Open leaves a database at.
func SchemaVersions() int { return len(migrations) }
