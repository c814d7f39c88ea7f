package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/amaretti-auth/amaretti/epoch"
)

const tokenColumns = "token_id, editor_id, name, description, rights, endpoint, created, creator, expires, revoked, last_used, last_used_from, parents, " +
	"rotated_to, rotated_from, grace_until, last_attenuation, last_attenuation_id, caveats"

func scanToken(r scanner) (epoch.APIToken, error) {
	var t epoch.APIToken
	var rights, endpoint, from, parents, rotatedTo, rotatedFrom, att, attID, cavs sql.NullString
	var created int64
	var expires, revoked, lastUsed, grace sql.NullInt64
	if err := r.Scan(&t.TokenID, &t.EditorID, &t.Name, &t.Description, &rights, &endpoint, &created, &t.Creator, &expires, &revoked, &lastUsed, &from, &parents,
		&rotatedTo, &rotatedFrom, &grace, &att, &attID, &cavs); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return t, epoch.ErrTokenNotFound
		}
		return t, err
	}
	if rights.Valid {
		t.Rights = []string{}
		if rights.String != "" {
			t.Rights = strings.Split(rights.String, ",")
		}
	}
	t.Endpoint = endpoint.String
	if parents.String != "" {
		t.Parents = strings.Split(parents.String, ",")
	}
	t.Created = fromMicros(created)
	opt := func(v sql.NullInt64) time.Time {
		if !v.Valid {
			return time.Time{}
		}
		return fromMicros(v.Int64)
	}
	t.Expires, t.Revoked, t.LastUsed, t.LastUsedFrom = opt(expires), opt(revoked), opt(lastUsed), from.String
	t.RotatedTo, t.RotatedFrom, t.GraceUntil = rotatedTo.String, rotatedFrom.String, opt(grace)
	t.LastAttenuation, t.LastAttenuationID = att.String, attID.String
	if cavs.Valid {
		if err := json.Unmarshal([]byte(cavs.String), &t.Caveats); err != nil {
			return t, fmt.Errorf("token %s: its recorded caveats do not decode: %w", t.TokenID, err)
		}
		if t.Caveats == nil {
			t.Caveats = []string{}
		}
	}
	return t, nil
}

// caveatsText encodes APIToken.Caveats for the caveats column: a JSON
// array, or NULL when they are unknown.
func caveatsText(c []string) (any, error) {
	if c == nil {
		return nil, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// RegisterToken adds a registry row for a token just minted. It fails with
// epoch.ErrNameTaken when the editor has a live token of that name,
// epoch.ErrNotFound for an unknown editor, epoch.ErrInvalidToken for an id that is
// not an upper-case UUID, and epoch.ErrTooManyTokens when the editor is at either
// limit of WithTokenLimits.
//
// A name is taken by a token that may still verify: not revoked, not
// expired, created after the editor's epoch (so not revoked by a touch or
// a lock), and no parent revoked. A token that is dead for good frees its
// name. A token of a deactivated editor, or over the lifetime policy, keeps
// its name: activating the editor or loosening the policy revives it. The
// check and the insert are one immediate transaction, so two concurrent
// registrations cannot both take a name.
func (s *Store) RegisterToken(ctx context.Context, t epoch.APIToken) error {
	if err := t.Check(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil) // immediate: the counts hold until the insert
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.insertToken(ctx, tx, t, ""); err != nil {
		return err
	}
	return tx.Commit()
}

// insertToken is RegisterToken inside tx, for a row already checked;
// rotatedFrom names the token it replaces ("" for none).
func (s *Store) insertToken(ctx context.Context, tx *sql.Tx, t epoch.APIToken, rotatedFrom string) error {
	var parents any
	if len(t.Parents) > 0 {
		parents = strings.Join(t.Parents, ",")
	}
	var rights any
	if t.Rights != nil {
		rights = strings.Join(t.Rights, ",")
	}
	var endpoint any
	if t.Endpoint != "" {
		endpoint = t.Endpoint
	}
	cavs, err := caveatsText(t.Caveats)
	if err != nil {
		return err
	}
	var from any
	if rotatedFrom != "" {
		from = rotatedFrom
	}
	e, err := s.editor(ctx, tx, "id = :arg", t.EditorID)
	if err != nil {
		return err
	}
	now := micros(s.now())
	if err := s.nameFree(ctx, tx, e, t.Name, now); err != nil {
		return err
	}
	var live, revoked int
	// Both counts stop at the limit; each reads the editor's index entries
	// created after its epoch (api_tokens_editor_live,
	// api_tokens_editor_revoked).
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM api_tokens
		WHERE editor_id = ? AND revoked IS NULL AND created > ? AND (expires IS NULL OR expires > ?) LIMIT ?)`,
		t.EditorID, micros(e.AuthEpoch), now, s.maxLive).Scan(&live); err != nil {
		return err
	}
	if live >= s.maxLive {
		return fmt.Errorf("%w: the editor has %d live API tokens, the most it may have; revoke one first", epoch.ErrTooManyTokens, live)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM api_tokens
		WHERE editor_id = ? AND revoked IS NOT NULL AND created > ? AND (expires IS NULL OR expires > ?) LIMIT ?)`,
		t.EditorID, micros(e.AuthEpoch), now, s.maxRevoked).Scan(&revoked); err != nil {
		return err
	}
	if revoked >= s.maxRevoked {
		return fmt.Errorf("%w: the editor has %d revoked tokens that every verifier must list; touching the editor (\"log out everywhere\") clears the list", epoch.ErrTooManyTokens, revoked)
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO api_tokens ("+tokenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, NULL, ?, NULL, NULL, NULL, ?)",
		t.TokenID, t.EditorID, t.Name, t.Description, rights, endpoint, micros(t.Created), t.Creator, nullMicros(t.Expires), parents, from, cavs)
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("%w: %s", epoch.ErrTokenExists, t.TokenID)
	}
	return err
}

// nameFree fails with epoch.ErrNameTaken when editor e has a token named name
// that may still verify (see RegisterToken) and was not rotated (a rotated
// token leaves its name to its successor). It runs inside RegisterToken's
// immediate transaction, which holds the write lock until the insert.
func (s *Store) nameFree(ctx context.Context, tx *sql.Tx, e epoch.Editor, name string, now int64) error {
	rows, err := tx.QueryContext(ctx, "SELECT "+tokenColumns+` FROM api_tokens
		WHERE editor_id = ? AND name = ? AND revoked IS NULL AND rotated_to IS NULL AND created > ? AND (expires IS NULL OR expires > ?)`,
		e.ID, name, micros(e.AuthEpoch), now)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return err
		}
		if touched, parent := t.RevokedBy(e); !touched && !parent {
			return fmt.Errorf("%w: %q", epoch.ErrNameTaken, name)
		}
	}
	return rows.Err()
}

// Token returns one registry row, or epoch.ErrTokenNotFound.
func (s *Store) Token(ctx context.Context, tokenID string) (epoch.APIToken, error) {
	return scanToken(s.db.QueryRowContext(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE token_id = ?", tokenID))
}

// Tokens lists the registry rows of one editor, or of every editor when
// editorID is "", oldest first.
func (s *Store) Tokens(ctx context.Context, editorID string) ([]epoch.APIToken, error) {
	q := "SELECT " + tokenColumns + " FROM api_tokens"
	var args []any
	if editorID != "" {
		q += " WHERE editor_id = ?"
		args = append(args, editorID)
	}
	return s.queryTokens(ctx, q+" ORDER BY created, rowid", args...)
}

// ExpiringTokens lists the tokens that expire within d from now, soonest
// first, for warning their owners: only those that verify until then as
// far as the store knows (not revoked, created after the editor's epoch, so
// not touched or locked, the editor active). Tokens revoked with a parent
// and tokens over the lifetime policy are left to the caller
// (apitoken.Expiring, which leaves them out).
func (s *Store) ExpiringTokens(ctx context.Context, d time.Duration) ([]epoch.APIToken, error) {
	now := s.now()
	return s.queryTokens(ctx, "SELECT "+prefixed("t.", tokenColumns)+` FROM api_tokens t JOIN editors e ON e.id = t.editor_id
		WHERE t.revoked IS NULL AND t.expires IS NOT NULL AND t.expires > ? AND t.expires <= ?
		  AND t.created > e.auth_epoch AND e.active = 1
		ORDER BY t.expires, t.rowid`,
		micros(now), micros(now.Add(d)))
}

// prefixed qualifies each of a comma-separated list of columns.
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}

func (s *Store) queryTokens(ctx context.Context, q string, args ...any) ([]epoch.APIToken, error) {
	return scanTokens(s.db.QueryContext(ctx, q, args...))
}

// scanTokens reads the rows of a query of tokenColumns.
func scanTokens(rows *sql.Rows, err error) ([]epoch.APIToken, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []epoch.APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes one token: its row records the time, and its editor's
// version grows (its state now lists the token), in one transaction. It
// returns the editor, to announce to verifiers, and the row.
func (s *Store) RevokeToken(ctx context.Context, tokenID string) (epoch.Editor, epoch.APIToken, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return epoch.Editor{}, epoch.APIToken{}, err
	}
	defer tx.Rollback()
	t, err := scanToken(tx.QueryRowContext(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE token_id = ?", tokenID))
	if err != nil {
		return epoch.Editor{}, epoch.APIToken{}, err
	}
	if !t.Revoked.IsZero() {
		return epoch.Editor{}, t, epoch.ErrAlreadyRevoked
	}
	now := micros(s.now())
	if _, err := tx.ExecContext(ctx, "UPDATE api_tokens SET revoked = ? WHERE token_id = ?", now, tokenID); err != nil {
		return epoch.Editor{}, epoch.APIToken{}, err
	}
	if _, err := s.change(ctx, tx, t.EditorID, "UPDATE editors SET version = version + 1 WHERE id = ?", t.EditorID); err != nil {
		return epoch.Editor{}, epoch.APIToken{}, err
	}
	e, err := s.editor(ctx, tx, "id = :arg", t.EditorID)
	if err != nil {
		return epoch.Editor{}, epoch.APIToken{}, err
	}
	t.Revoked = fromMicros(now)
	return e, t, tx.Commit()
}

// RecordUses writes last-use times in one transaction. A use older than
// what a row holds is ignored; ids without a row (tokens that are not API
// tokens) change nothing.
func (s *Store) RecordUses(ctx context.Context, uses []epoch.Use) error {
	if len(uses) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE api_tokens SET last_used = ?, last_used_from = ?, last_attenuation = ?, last_attenuation_id = ?
		WHERE token_id = ? AND (last_used IS NULL OR last_used < ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, u := range uses {
		from := epoch.StoredUseFrom(u.From)
		att, attID := nullText(epoch.StoredAttenuation(u.Attenuation, epoch.MaxAttenuation)), nullText(epoch.StoredAttenuation(u.AttenuationID, epoch.MaxAttenuationID))
		if _, err := stmt.ExecContext(ctx, micros(u.At), from, att, attID, u.TokenID, micros(u.At)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// nullText is NULL for "".
func nullText(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// RotateToken registers successor in place of oldID and marks oldID as
// rotated to it, in one immediate transaction (see epoch.Rotations).
func (s *Store) RotateToken(ctx context.Context, oldID string, successor epoch.APIToken, graceUntil time.Time) (epoch.APIToken, error) {
	tx, err := s.db.BeginTx(ctx, nil) // immediate: one rotation of a token at a time
	if err != nil {
		return epoch.APIToken{}, err
	}
	defer tx.Rollback()
	old, err := scanToken(tx.QueryRowContext(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE token_id = ?", oldID))
	if err != nil {
		return epoch.APIToken{}, err
	}
	now := s.now()
	switch {
	case !old.Revoked.IsZero():
		return old, epoch.ErrAlreadyRevoked
	case old.RotatedTo != "":
		return old, epoch.ErrAlreadyRotated
	case !old.Expires.IsZero() && !now.Before(old.Expires):
		return old, fmt.Errorf("%w: it has expired", epoch.ErrNotRotatable)
	}
	if err := epoch.CheckRotation(old, successor); err != nil {
		return old, err
	}
	// Marked first, so that its name is free for the successor.
	grace := micros(graceUntil)
	if _, err := tx.ExecContext(ctx, "UPDATE api_tokens SET rotated_to = ?, grace_until = ? WHERE token_id = ?", successor.TokenID, grace, oldID); err != nil {
		return epoch.APIToken{}, err
	}
	if err := s.insertToken(ctx, tx, successor, oldID); err != nil {
		return old, err
	}
	old.RotatedTo, old.GraceUntil = successor.TokenID, fromMicros(grace)
	return old, tx.Commit()
}

// RetireRotated revokes the rotated tokens whose successor was used or
// revoked, or whose grace has ended (see epoch.Rotations), in one
// transaction.
func (s *Store) RetireRotated(ctx context.Context) ([]epoch.Editor, []epoch.APIToken, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	now := micros(s.now())
	var retired []epoch.APIToken
	// Each pass revokes the tokens whose successor is now used or
	// revoked: a chain of rotations retires from its newest end.
	for {
		rows, err := s.queryTokensTx(ctx, tx, "SELECT "+prefixed("o.", tokenColumns)+` FROM api_tokens o
			WHERE o.revoked IS NULL AND o.rotated_to IS NOT NULL AND (o.grace_until <= ? OR EXISTS (SELECT 1 FROM api_tokens n
				WHERE n.token_id = o.rotated_to AND (n.last_used IS NOT NULL OR n.revoked IS NOT NULL)))
			ORDER BY o.created, o.rowid`, now)
		if err != nil {
			return nil, nil, err
		}
		if len(rows) == 0 {
			break
		}
		for _, t := range rows {
			if _, err := tx.ExecContext(ctx, "UPDATE api_tokens SET revoked = ? WHERE token_id = ?", now, t.TokenID); err != nil {
				return nil, nil, err
			}
			t.Revoked = fromMicros(now)
			retired = append(retired, t)
		}
	}
	var editors []epoch.Editor
	seen := map[string]bool{}
	for _, t := range retired {
		if seen[t.EditorID] {
			continue
		}
		seen[t.EditorID] = true
		if _, err := s.change(ctx, tx, t.EditorID, "UPDATE editors SET version = version + 1 WHERE id = ?", t.EditorID); err != nil {
			return nil, nil, err
		}
		e, err := s.editor(ctx, tx, "id = :arg", t.EditorID)
		if err != nil {
			return nil, nil, err
		}
		editors = append(editors, e)
	}
	if len(retired) == 0 {
		return nil, nil, nil
	}
	events := make([]epoch.AuditEvent, len(retired))
	for i, t := range retired {
		events[i] = epoch.RotationRetired(t, fromMicros(now))
	}
	if err := insertAudit(ctx, tx, events...); err != nil {
		return nil, nil, err
	}
	return editors, retired, tx.Commit()
}

func (s *Store) queryTokensTx(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]epoch.APIToken, error) {
	return scanTokens(tx.QueryContext(ctx, q, args...))
}
