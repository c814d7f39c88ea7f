package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/amaretti-auth/amaretti/epoch"
)

// Export reads the whole store in one snapshot (a read transaction): every
// editor, registry row and login link, for "amaretti store copy".
func (s *Store) Export(ctx context.Context) (*epoch.Snapshot, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	snap := &epoch.Snapshot{}
	rows, err := tx.QueryContext(ctx, "SELECT id, username, role, bot, active, auth_epoch, created, version FROM editors ORDER BY created, rowid")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var e epoch.Editor
		var role string
		var ep, created int64
		if err := rows.Scan(&e.ID, &e.Username, &role, &e.Bot, &e.Active, &ep, &created, &e.Version); err != nil {
			rows.Close()
			return nil, err
		}
		e.Role, e.AuthEpoch, e.Created = epoch.Role(role), fromMicros(ep), fromMicros(created)
		snap.Editors = append(snap.Editors, e)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, "SELECT "+tokenColumns+" FROM api_tokens ORDER BY created, rowid")
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
	if err := rows.Close(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, "SELECT provider, subject, editor_id, created FROM editor_links ORDER BY created, provider, subject")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var l epoch.Link
		var created int64
		if err := rows.Scan(&l.Provider, &l.Subject, &l.EditorID, &created); err != nil {
			return nil, err
		}
		l.Created = fromMicros(created)
		snap.Links = append(snap.Links, l)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if snap.Audit, err = scanAuditRows(tx.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit_events ORDER BY id")); err != nil {
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	rows, err = tx.QueryContext(ctx, "SELECT token_id, event, sent FROM notifications WHERE sent IS NOT NULL ORDER BY token_id, event")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n epoch.SentNotification
		var at int64
		if err := rows.Scan(&n.TokenID, &n.Event, &at); err != nil {
			return nil, err
		}
		n.At = fromMicros(at)
		snap.Sent = append(snap.Sent, n)
	}
	return snap, rows.Err()
}

// Import writes a snapshot into the store in one transaction, keeping ids,
// epochs, versions and registry rows as they are. It fails with
// epoch.ErrNotEmpty when the store holds editors, tokens or links, unless
// replace is set: then what it holds is deleted first, in the same
// transaction. It appends one "every editor changed" row to the change log,
// so that verifiers following this store drop what they cached.
func (s *Store) Import(ctx context.Context, snap *epoch.Snapshot, replace bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM editors) + (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM editor_links)").Scan(&n); err != nil {
		return err
	}
	if n > 0 && !replace {
		return fmt.Errorf("%w: it holds %d editors, tokens and links", epoch.ErrNotEmpty, n)
	}
	if n > 0 {
		if _, err := tx.ExecContext(ctx, "DELETE FROM editor_links; DELETE FROM api_tokens; DELETE FROM editors;"); err != nil {
			return err
		}
	}
	for _, e := range snap.Editors {
		if e.ID == "" {
			return fmt.Errorf("an editor without an id (%q)", e.Username)
		}
		if _, err := (epoch.NewEditor{ID: e.ID, Username: e.Username, Role: e.Role}).Prepare(s.rand); err != nil {
			return fmt.Errorf("editor %s: %w", e.ID, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO editors (id, username, role, bot, active, auth_epoch, created, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			e.ID, e.Username, string(e.Role), e.Bot, e.Active, micros(e.AuthEpoch), micros(e.Created), e.Version); err != nil {
			return fmt.Errorf("editor %s: %w", e.ID, err)
		}
	}
	for _, t := range snap.Tokens {
		if err := t.Check(); err != nil {
			return fmt.Errorf("token %s: %w", t.TokenID, err)
		}
		var rights, endpoint, parents any
		if t.Rights != nil {
			rights = strings.Join(t.Rights, ",")
		}
		if t.Endpoint != "" {
			endpoint = t.Endpoint
		}
		if len(t.Parents) > 0 {
			parents = strings.Join(t.Parents, ",")
		}
		var from any
		if t.LastUsedFrom != "" {
			from = t.LastUsedFrom
		}
		cavs, err := caveatsText(t.Caveats)
		if err != nil {
			return fmt.Errorf("token %s: %w", t.TokenID, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO api_tokens ("+tokenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			t.TokenID, t.EditorID, t.Name, t.Description, rights, endpoint, micros(t.Created), t.Creator,
			nullMicros(t.Expires), nullMicros(t.Revoked), nullMicros(t.LastUsed), from, parents,
			nullText(t.RotatedTo), nullText(t.RotatedFrom), nullMicros(t.GraceUntil), nullText(t.LastAttenuation), nullText(t.LastAttenuationID), cavs); err != nil {
			return fmt.Errorf("token %s: %w", t.TokenID, err)
		}
	}
	for _, l := range snap.Links {
		if err := epoch.CheckLink(l.Provider, l.Subject); err != nil {
			return err
		}
		if err := s.link(ctx, tx, l); err != nil {
			return err
		}
	}
	if err := insertAudit(ctx, tx, snap.Audit...); err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	for _, n := range snap.Sent {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notifications (token_id, event, claimed, sent) VALUES (?, ?, ?, ?)
			ON CONFLICT (token_id, event) DO UPDATE SET sent = excluded.sent WHERE notifications.sent IS NULL`,
			n.TokenID, n.Event, micros(n.At), micros(n.At)); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO changes (editor_id, version, at) VALUES (NULL, NULL, ?)", micros(s.now())); err != nil {
		return fmt.Errorf("change log: %w", err)
	}
	return tx.Commit()
}
