package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amaretti-auth/amaretti/epoch"
)

const auditColumns = "id, at, action, actor, actor_editor_id, actor_token_id, os_user, from_addr, editor_id, token_id, key_id, detail, count"

// RecordAudit appends events to the audit trail in one transaction
// (epoch.Audit). An invalid event records nothing (epoch.ErrInvalidAudit).
func (s *Store) RecordAudit(ctx context.Context, events ...epoch.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	for _, e := range events {
		if err := e.Check(); err != nil {
			return err
		}
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return insertAudit(ctx, tx, events...) })
}

func insertAudit(ctx context.Context, tx pgx.Tx, events ...epoch.AuditEvent) error {
	b := &pgx.Batch{}
	for _, e := range events {
		count := e.Count
		if count == 0 {
			count = 1
		}
		b.Queue(`INSERT INTO audit_events (at, action, actor, actor_editor_id, actor_token_id, os_user, from_addr, editor_id, token_id, key_id, detail, count)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			e.At, string(e.Action), e.Actor, e.ActorEditorID, e.ActorTokenID, e.OSUser, e.From, e.EditorID, e.TokenID, e.KeyID, e.Detail, count)
	}
	return tx.SendBatch(ctx, b).Close()
}

// AuditEvents returns the events f selects, newest first, and the cursor of
// the next page (0: none) (epoch.Audit).
func (s *Store) AuditEvents(ctx context.Context, f epoch.AuditFilter) ([]epoch.AuditEvent, int64, error) {
	if !storable(f.EditorID, f.TokenID, string(f.Action)) {
		return nil, 0, nil // no row holds such text
	}
	q := "SELECT " + auditColumns + " FROM audit_events WHERE true"
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.EditorID != "" {
		p := arg(f.EditorID)
		q += " AND (editor_id = " + p + " OR actor_editor_id = " + p + ")"
	}
	if f.TokenID != "" {
		p := arg(f.TokenID)
		q += " AND (token_id = " + p + " OR actor_token_id = " + p + ")"
	}
	if f.Action != "" {
		q += " AND action = " + arg(string(f.Action))
	}
	if !f.Since.IsZero() {
		q += " AND at >= " + arg(f.Since)
	}
	if f.Before > 0 {
		q += " AND id < " + arg(f.Before)
	}
	limit := f.PageLimit()
	q += " ORDER BY id DESC LIMIT " + arg(limit+1)
	ctx, cancel := s.write(ctx)
	defer cancel()
	out, err := scanAuditRows(s.pool.Query(ctx, q, args...))
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// scanAuditRows reads the rows of a query of auditColumns.
func scanAuditRows(rows pgx.Rows, err error) ([]epoch.AuditEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []epoch.AuditEvent
	for rows.Next() {
		var e epoch.AuditEvent
		var action string
		if err := rows.Scan(&e.ID, &e.At, &action, &e.Actor, &e.ActorEditorID, &e.ActorTokenID, &e.OSUser, &e.From, &e.EditorID, &e.TokenID, &e.KeyID, &e.Detail, &e.Count); err != nil {
			return nil, err
		}
		e.At, e.Action = e.At.UTC(), epoch.AuditAction(action)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneAudit deletes the events older than before and records an
// epoch.AuditPruned event with the count, in one transaction
// (epoch.Audit). Nothing is recorded when nothing was pruned.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, actor epoch.AuditEvent) (int64, error) {
	actor.Action, actor.Count = epoch.AuditPruned, 0
	if actor.At.IsZero() {
		actor.At = time.Now()
	}
	if err := actor.Check(); err != nil {
		return 0, err
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM audit_events WHERE at < $1", before)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		actor.Count = n
		actor.Detail = "events before " + before.UTC().Format(time.RFC3339)
		return insertAudit(ctx, tx, actor)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ClaimNotification claims a notification (epoch.Notifications): an
// insert, or the update of a released or abandoned claim, in one
// statement.
func (s *Store) ClaimNotification(ctx context.Context, tokenID, event string, now time.Time, lease time.Duration) (bool, error) {
	if !storable(tokenID, event) {
		return false, fmt.Errorf("%w: unstorable notification key", epoch.ErrInvalidToken)
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO notifications (token_id, event, claimed, sent) VALUES ($1, $2, $3, NULL)
		ON CONFLICT (token_id, event) DO UPDATE SET claimed = excluded.claimed
		WHERE notifications.sent IS NULL AND notifications.claimed <= $4`,
		tokenID, event, now, now.Add(-lease))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// NotificationSent marks a notification sent (epoch.Notifications).
func (s *Store) NotificationSent(ctx context.Context, tokenID, event string, at time.Time) error {
	ctx, cancel := s.write(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, "UPDATE notifications SET sent = $1 WHERE token_id = $2 AND event = $3", at, tokenID, event)
	return err
}

// ReleaseNotification gives a claim up (epoch.Notifications).
func (s *Store) ReleaseNotification(ctx context.Context, tokenID, event string) error {
	ctx, cancel := s.write(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, "UPDATE notifications SET claimed = '-infinity' WHERE token_id = $1 AND event = $2 AND sent IS NULL", tokenID, event)
	return err
}

var _ epoch.Audit = (*Store)(nil)
var _ epoch.Notifications = (*Store)(nil)
