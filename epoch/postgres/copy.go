package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/amaretti-auth/amaretti/epoch"
)

// Export reads the whole store in one snapshot (a repeatable-read,
// read-only transaction): every editor, registry row and login link, for
// "amaretti store copy". It is bounded by ctx only.
func (s *Store) Export(ctx context.Context) (*epoch.Snapshot, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, s.connErr("export", err)
	}
	defer tx.Rollback(ctx)
	snap := &epoch.Snapshot{}
	rows, err := tx.Query(ctx, "SELECT id, username, role, bot, active, auth_epoch, created, version FROM editors ORDER BY created, ord")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var e epoch.Editor
		var role string
		if err := rows.Scan(&e.ID, &e.Username, &role, &e.Bot, &e.Active, &e.AuthEpoch, &e.Created, &e.Version); err != nil {
			rows.Close()
			return nil, err
		}
		e.Role, e.AuthEpoch, e.Created = epoch.Role(role), e.AuthEpoch.UTC(), e.Created.UTC()
		snap.Editors = append(snap.Editors, e)
	}
	if rows.Close(); rows.Err() != nil {
		return nil, rows.Err()
	}
	rows, err = tx.Query(ctx, "SELECT "+tokenColumns+" FROM api_tokens ORDER BY created, ord")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		snap.Tokens = append(snap.Tokens, t)
	}
	if rows.Close(); rows.Err() != nil {
		return nil, rows.Err()
	}
	rows, err = tx.Query(ctx, "SELECT provider, subject, editor_id, created FROM editor_links ORDER BY created, provider, subject")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var l epoch.Link
		if err := rows.Scan(&l.Provider, &l.Subject, &l.EditorID, &l.Created); err != nil {
			return nil, err
		}
		l.Created = l.Created.UTC()
		snap.Links = append(snap.Links, l)
	}
	if rows.Close(); rows.Err() != nil {
		return nil, rows.Err()
	}
	if snap.Audit, err = scanAuditRows(tx.Query(ctx, "SELECT "+auditColumns+" FROM audit_events ORDER BY id")); err != nil {
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	rows, err = tx.Query(ctx, "SELECT token_id, event, sent FROM notifications WHERE sent IS NOT NULL ORDER BY token_id, event")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n epoch.SentNotification
		if err := rows.Scan(&n.TokenID, &n.Event, &n.At); err != nil {
			return nil, err
		}
		n.At = n.At.UTC()
		snap.Sent = append(snap.Sent, n)
	}
	return snap, rows.Err()
}

// Import writes a snapshot into the store in one transaction (COPY),
// keeping ids, epochs, versions and registry rows as they are. It fails
// with epoch.ErrNotEmpty when the store holds editors, tokens or links,
// unless replace is set: then what it holds is deleted first, in the same
// transaction. It appends one "every editor changed" row to the change log
// and notifies it, so that verifiers following this store drop what they
// cached. Root keys are left alone. It is bounded by ctx only.
func (s *Store) Import(ctx context.Context, snap *epoch.Snapshot, replace bool) error {
	for _, e := range snap.Editors {
		if e.ID == "" {
			return fmt.Errorf("an editor without an id (%q)", e.Username)
		}
		if _, err := (epoch.NewEditor{ID: e.ID, Username: e.Username, Role: e.Role}).Prepare(s.rand); err != nil {
			return fmt.Errorf("editor %s: %w", e.ID, err)
		}
	}
	for _, t := range snap.Tokens {
		if err := t.Check(); err != nil {
			return fmt.Errorf("token %s: %w", t.TokenID, err)
		}
	}
	for _, l := range snap.Links {
		if err := epoch.CheckLink(l.Provider, l.Subject); err != nil {
			return err
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.connErr("import", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(changeLock)); err != nil {
		return fmt.Errorf("change log: %w", err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE editors, api_tokens, editor_links IN EXCLUSIVE MODE"); err != nil {
		return err
	}
	var n int64
	if err := tx.QueryRow(ctx, "SELECT (SELECT count(*) FROM editors) + (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM editor_links)").Scan(&n); err != nil {
		return err
	}
	if n > 0 && !replace {
		return fmt.Errorf("%w: it holds %d editors, tokens and links", epoch.ErrNotEmpty, n)
	}
	if n > 0 {
		if _, err := tx.Exec(ctx, "DELETE FROM editor_links; DELETE FROM api_tokens; DELETE FROM editors"); err != nil {
			return err
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"editors"},
		[]string{"id", "username", "role", "bot", "active", "auth_epoch", "created", "version"},
		pgx.CopyFromSlice(len(snap.Editors), func(i int) ([]any, error) {
			e := snap.Editors[i]
			return []any{e.ID, e.Username, string(e.Role), e.Bot, e.Active, e.AuthEpoch, e.Created, e.Version}, nil
		})); err != nil {
		return fmt.Errorf("editors: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"api_tokens"},
		[]string{"token_id", "editor_id", "name", "description", "rights", "endpoint", "created", "creator", "expires", "revoked", "last_used", "last_used_from", "parents",
			"rotated_to", "rotated_from", "grace_until", "last_attenuation", "last_attenuation_id", "caveats"},
		pgx.CopyFromSlice(len(snap.Tokens), func(i int) ([]any, error) {
			t := snap.Tokens[i]
			var endpoint, from any
			if t.Endpoint != "" {
				endpoint = t.Endpoint
			}
			if t.LastUsedFrom != "" {
				from = t.LastUsedFrom
			}
			var parents any
			if len(t.Parents) > 0 {
				parents = t.Parents
			}
			var rights any
			if t.Rights != nil {
				rights = t.Rights
			}
			return []any{t.TokenID, t.EditorID, t.Name, t.Description, rights, endpoint, t.Created, t.Creator,
				nullTime(t.Expires), nullTime(t.Revoked), nullTime(t.LastUsed), from, parents,
				nullText(t.RotatedTo), nullText(t.RotatedFrom), nullTime(t.GraceUntil), nullText(t.LastAttenuation), nullText(t.LastAttenuationID), caveatsArray(t.Caveats)}, nil
		})); err != nil {
		return fmt.Errorf("API tokens: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"editor_links"},
		[]string{"provider", "subject", "editor_id", "created"},
		pgx.CopyFromSlice(len(snap.Links), func(i int) ([]any, error) {
			l := snap.Links[i]
			return []any{l.Provider, l.Subject, l.EditorID, l.Created}, nil
		})); err != nil {
		return fmt.Errorf("login links: %w", err)
	}
	if err := insertAudit(ctx, tx, snap.Audit...); err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	if len(snap.Sent) > 0 {
		b := &pgx.Batch{}
		for _, n := range snap.Sent {
			b.Queue(`INSERT INTO notifications (token_id, event, claimed, sent) VALUES ($1, $2, $3, $3)
				ON CONFLICT (token_id, event) DO UPDATE SET sent = excluded.sent WHERE notifications.sent IS NULL`, n.TokenID, n.Event, n.At)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `WITH c AS (INSERT INTO changes (editor_id, version, at) VALUES (NULL, NULL, clock_timestamp()) RETURNING seq)
		SELECT pg_notify('`+Channel+`', c.seq::text) FROM c`); err != nil {
		return fmt.Errorf("change log: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.connErr("import", err)
	}
	return nil
}
