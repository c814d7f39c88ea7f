package sqlite

import (
	"context"
	"database/sql"
	"time"

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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := insertAudit(ctx, tx, events...); err != nil {
		return err
	}
	return tx.Commit()
}

func insertAudit(ctx context.Context, tx *sql.Tx, events ...epoch.AuditEvent) error {
	for _, e := range events {
		count := e.Count
		if count == 0 {
			count = 1
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (at, action, actor, actor_editor_id, actor_token_id, os_user, from_addr, editor_id, token_id, key_id, detail, count)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			micros(e.At), string(e.Action), e.Actor, e.ActorEditorID, e.ActorTokenID, e.OSUser, e.From, e.EditorID, e.TokenID, e.KeyID, e.Detail, count); err != nil {
			return err
		}
	}
	return nil
}

// AuditEvents returns the events f selects, newest first, and the cursor of
// the next page (0: none) (epoch.Audit).
func (s *Store) AuditEvents(ctx context.Context, f epoch.AuditFilter) ([]epoch.AuditEvent, int64, error) {
	q := "SELECT " + auditColumns + " FROM audit_events WHERE 1 = 1"
	var args []any
	if f.EditorID != "" {
		q += " AND (editor_id = ? OR actor_editor_id = ?)"
		args = append(args, f.EditorID, f.EditorID)
	}
	if f.TokenID != "" {
		q += " AND (token_id = ? OR actor_token_id = ?)"
		args = append(args, f.TokenID, f.TokenID)
	}
	if f.Action != "" {
		q += " AND action = ?"
		args = append(args, string(f.Action))
	}
	if !f.Since.IsZero() {
		q += " AND at >= ?"
		args = append(args, micros(f.Since))
	}
	if f.Before > 0 {
		q += " AND id < ?"
		args = append(args, f.Before)
	}
	limit := f.PageLimit()
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)
	out, err := scanAuditRows(s.db.QueryContext(ctx, q, args...))
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
func scanAuditRows(rows *sql.Rows, err error) ([]epoch.AuditEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []epoch.AuditEvent
	for rows.Next() {
		var e epoch.AuditEvent
		var at int64
		var action string
		if err := rows.Scan(&e.ID, &at, &action, &e.Actor, &e.ActorEditorID, &e.ActorTokenID, &e.OSUser, &e.From, &e.EditorID, &e.TokenID, &e.KeyID, &e.Detail, &e.Count); err != nil {
			return nil, err
		}
		e.At, e.Action = fromMicros(at), epoch.AuditAction(action)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneAudit deletes the events older than before and records an
// epoch.AuditPruned event (actor's who, from where) with the count, in one
// transaction (epoch.Audit). Nothing is recorded when nothing was pruned.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, actor epoch.AuditEvent) (int64, error) {
	actor.Action, actor.Count = epoch.AuditPruned, 0
	if actor.At.IsZero() {
		actor.At = s.now()
	}
	if err := actor.Check(); err != nil {
		return 0, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "DELETE FROM audit_events WHERE at < ?", micros(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	actor.Count = n
	actor.Detail = "events before " + before.UTC().Format(time.RFC3339)
	if err := insertAudit(ctx, tx, actor); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// ClaimNotification claims a notification (epoch.Notifications): an
// insert, or the update of a released or abandoned claim, in one
// statement.
func (s *Store) ClaimNotification(ctx context.Context, tokenID, event string, now time.Time, lease time.Duration) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO notifications (token_id, event, claimed, sent) VALUES (?, ?, ?, NULL)
		ON CONFLICT (token_id, event) DO UPDATE SET claimed = excluded.claimed
		WHERE notifications.sent IS NULL AND notifications.claimed <= ?`,
		tokenID, event, micros(now), micros(now.Add(-lease)))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// NotificationSent marks a notification sent (epoch.Notifications).
func (s *Store) NotificationSent(ctx context.Context, tokenID, event string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, "UPDATE notifications SET sent = ? WHERE token_id = ? AND event = ?", micros(at), tokenID, event)
	return err
}

// ReleaseNotification gives a claim up (epoch.Notifications).
func (s *Store) ReleaseNotification(ctx context.Context, tokenID, event string) error {
	_, err := s.db.ExecContext(ctx, "UPDATE notifications SET claimed = 0 WHERE token_id = ? AND event = ? AND sent IS NULL", tokenID, event)
	return err
}

var _ epoch.Audit = (*Store)(nil)
var _ epoch.Notifications = (*Store)(nil)
