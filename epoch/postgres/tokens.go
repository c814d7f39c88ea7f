package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/amaretti-auth/amaretti/epoch"
)

const tokenColumns = "token_id, editor_id, name, description, rights, endpoint, created, creator, expires, revoked, last_used, last_used_from, parents, " +
	"rotated_to, rotated_from, grace_until, last_attenuation, last_attenuation_id, caveats"

func scanToken(r pgx.Row) (epoch.APIToken, error) {
	var t epoch.APIToken
	var endpoint, from, rotatedTo, rotatedFrom, att, attID *string
	var expires, revoked, lastUsed, grace *time.Time
	if err := r.Scan(&t.TokenID, &t.EditorID, &t.Name, &t.Description, &t.Rights, &endpoint, &t.Created, &t.Creator, &expires, &revoked, &lastUsed, &from, &t.Parents,
		&rotatedTo, &rotatedFrom, &grace, &att, &attID, &t.Caveats); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return t, epoch.ErrTokenNotFound
		}
		return t, err
	}
	if t.Rights != nil && len(t.Rights) == 0 {
		t.Rights = []string{}
	}
	if len(t.Parents) == 0 {
		t.Parents = nil
	}
	if t.Caveats != nil && len(t.Caveats) == 0 {
		t.Caveats = []string{}
	}
	opt := func(v *time.Time) time.Time {
		if v == nil {
			return time.Time{}
		}
		return v.UTC()
	}
	if endpoint != nil {
		t.Endpoint = *endpoint
	}
	if from != nil {
		t.LastUsedFrom = *from
	}
	str := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	t.Created = t.Created.UTC()
	t.Expires, t.Revoked, t.LastUsed = opt(expires), opt(revoked), opt(lastUsed)
	t.RotatedTo, t.RotatedFrom, t.GraceUntil = str(rotatedTo), str(rotatedFrom), opt(grace)
	t.LastAttenuation, t.LastAttenuationID = str(att), str(attID)
	return t, nil
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// RegisterToken adds a registry row for a token just minted. It fails with
// epoch.ErrNameTaken when the editor has a live token of that name,
// epoch.ErrNotFound for an unknown editor, epoch.ErrInvalidToken for a bad
// row, and epoch.ErrTooManyTokens when the editor is at either limit of
// WithTokenLimits: the rules of sqlite.Store.RegisterToken.
//
// The transaction first locks the editor's row (FOR NO KEY UPDATE), so
// that concurrent registrations for one editor, from any host, run one
// after the other: the name check and the counts hold until the insert
// commits.
func (s *Store) RegisterToken(ctx context.Context, t epoch.APIToken) error {
	if err := t.Check(); err != nil {
		return err
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return s.insertToken(ctx, tx, t, "")
	})
}

// insertToken is RegisterToken inside tx, for a row already checked;
// rotatedFrom names the token it replaces ("" for none).
func (s *Store) insertToken(ctx context.Context, tx pgx.Tx, t epoch.APIToken, rotatedFrom string) error {
	var parents, rights any
	if len(t.Parents) > 0 {
		parents = t.Parents
	}
	if t.Rights != nil {
		rights = t.Rights
	}
	var endpoint any
	if t.Endpoint != "" {
		endpoint = t.Endpoint
	}
	var one int
	if err := tx.QueryRow(ctx, "SELECT 1 FROM editors WHERE id = $1 FOR NO KEY UPDATE", t.EditorID).Scan(&one); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return epoch.ErrNotFound
		}
		return err
	}
	e, err := s.editor(ctx, tx, "e.id = $1", t.EditorID)
	if err != nil {
		return err
	}
	if err := s.nameFree(ctx, tx, e, t.Name); err != nil {
		return err
	}
	var live, revoked int
	// Both counts stop at the limit; each reads the editor's index
	// entries created after its epoch.
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM api_tokens
		WHERE editor_id = $1 AND revoked IS NULL AND created > $2 AND (expires IS NULL OR expires > now()) LIMIT $3) l`,
		t.EditorID, e.AuthEpoch, s.maxLive).Scan(&live); err != nil {
		return err
	}
	if live >= s.maxLive {
		return fmt.Errorf("%w: the editor has %d live API tokens, the most it may have; revoke one first", epoch.ErrTooManyTokens, live)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM api_tokens
		WHERE editor_id = $1 AND revoked IS NOT NULL AND created > $2 AND (expires IS NULL OR expires > now()) LIMIT $3) r`,
		t.EditorID, e.AuthEpoch, s.maxRevoked).Scan(&revoked); err != nil {
		return err
	}
	if revoked >= s.maxRevoked {
		return fmt.Errorf("%w: the editor has %d revoked tokens that every verifier must list; touching the editor (\"log out everywhere\") clears the list", epoch.ErrTooManyTokens, revoked)
	}
	_, err = tx.Exec(ctx, "INSERT INTO api_tokens ("+tokenColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL, $10, NULL, $11, NULL, NULL, NULL, $12)",
		t.TokenID, t.EditorID, t.Name, t.Description, rights, endpoint, t.Created, t.Creator, nullTime(t.Expires), parents, nullText(rotatedFrom), caveatsArray(t.Caveats))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == uniqueViolation {
		return fmt.Errorf("%w: %s", epoch.ErrTokenExists, t.TokenID)
	}
	return err
}

// caveatsArray is APIToken.Caveats for the caveats column: NULL when they
// are unknown, and otherwise a text array (possibly empty).
func caveatsArray(c []string) any {
	if c == nil {
		return nil
	}
	return c
}

// nullText is NULL for "".
func nullText(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// uniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const uniqueViolation = "23505"

// nameFree fails with epoch.ErrNameTaken when editor e has a token named
// name that may still verify (see sqlite.Store.RegisterToken) and was not
// rotated (a rotated token leaves its name to its successor).
func (s *Store) nameFree(ctx context.Context, tx pgx.Tx, e epoch.Editor, name string) error {
	rows, err := tx.Query(ctx, "SELECT "+tokenColumns+` FROM api_tokens
		WHERE editor_id = $1 AND name = $2 AND revoked IS NULL AND rotated_to IS NULL AND created > $3 AND (expires IS NULL OR expires > now())`,
		e.ID, name, e.AuthEpoch)
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
	if !storable(tokenID) {
		return epoch.APIToken{}, epoch.ErrTokenNotFound
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	return scanToken(s.pool.QueryRow(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE token_id = $1", tokenID))
}

// Tokens lists the registry rows of one editor, or of every editor when
// editorID is "", oldest first.
func (s *Store) Tokens(ctx context.Context, editorID string) ([]epoch.APIToken, error) {
	if !storable(editorID) {
		return nil, nil
	}
	q := "SELECT " + tokenColumns + " FROM api_tokens"
	var args []any
	if editorID != "" {
		q += " WHERE editor_id = $1"
		args = append(args, editorID)
	}
	return s.queryTokens(ctx, q+" ORDER BY created, ord", args...)
}

// ExpiringTokens lists the tokens that expire within d from now, soonest
// first: only those that verify until then as far as the store knows (as
// sqlite.Store.ExpiringTokens).
func (s *Store) ExpiringTokens(ctx context.Context, d time.Duration) ([]epoch.APIToken, error) {
	return s.queryTokens(ctx, "SELECT "+prefixed("t.", tokenColumns)+` FROM api_tokens t JOIN editors e ON e.id = t.editor_id
		WHERE t.revoked IS NULL AND t.expires IS NOT NULL AND t.expires > now() AND t.expires <= now() + $1::interval
		  AND t.created > e.auth_epoch AND e.active
		ORDER BY t.expires, t.ord`, d)
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
	ctx, cancel := s.write(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, q, args...)
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

// RevokeToken revokes one token: its row records the time, and its
// editor's version grows (its state now lists the token), in one
// transaction. It returns the editor, to announce to verifiers, and the
// row.
func (s *Store) RevokeToken(ctx context.Context, tokenID string) (epoch.Editor, epoch.APIToken, error) {
	if !storable(tokenID) {
		return epoch.Editor{}, epoch.APIToken{}, epoch.ErrTokenNotFound
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	var e epoch.Editor
	var t epoch.APIToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE token_id = $1 FOR UPDATE", tokenID))
		if err != nil {
			return err
		}
		if !t.Revoked.IsZero() {
			return epoch.ErrAlreadyRevoked
		}
		var revoked time.Time
		if err := tx.QueryRow(ctx, "UPDATE api_tokens SET revoked = clock_timestamp() WHERE token_id = $1 RETURNING revoked", tokenID).Scan(&revoked); err != nil {
			return err
		}
		if _, err := s.change(ctx, tx, t.EditorID, false, "UPDATE editors SET version = version + 1 WHERE id = $1", t.EditorID); err != nil {
			return err
		}
		if e, err = s.editor(ctx, tx, "e.id = $1", t.EditorID); err != nil {
			return err
		}
		t.Revoked = revoked.UTC()
		return nil
	})
	switch {
	case errors.Is(err, epoch.ErrAlreadyRevoked):
		return epoch.Editor{}, t, err
	case err != nil:
		return epoch.Editor{}, epoch.APIToken{}, err
	}
	return e, t, nil
}

// RecordUses writes last-use times in one transaction. A use older than
// what a row holds is ignored; ids without a row change nothing. It changes
// no editor's state: no change-log row, no NOTIFY.
func (s *Store) RecordUses(ctx context.Context, uses []epoch.Use) error {
	if len(uses) == 0 {
		return nil
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, u := range uses {
			if !storable(u.TokenID) {
				continue // no row has that id
			}
			from := epoch.StoredUseFrom(u.From)
			att, attID := nullText(epoch.StoredAttenuation(u.Attenuation, epoch.MaxAttenuation)), nullText(epoch.StoredAttenuation(u.AttenuationID, epoch.MaxAttenuationID))
			b.Queue(`UPDATE api_tokens SET last_used = $1, last_used_from = $2, last_attenuation = $4, last_attenuation_id = $5
				WHERE token_id = $3 AND (last_used IS NULL OR last_used < $1)`,
				u.At, from, u.TokenID, att, attID)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// RotateToken registers successor in place of oldID and marks oldID as
// rotated to it, in one transaction that locks oldID's row first (as
// RevokeToken does, then the editor's), so that of two concurrent
// rotations one waits and then finds the token rotated (see
// epoch.Rotations).
func (s *Store) RotateToken(ctx context.Context, oldID string, successor epoch.APIToken, graceUntil time.Time) (epoch.APIToken, error) {
	if !storable(oldID) {
		return epoch.APIToken{}, epoch.ErrTokenNotFound
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	var old epoch.APIToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		old, err = scanToken(tx.QueryRow(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE token_id = $1 FOR UPDATE", oldID))
		if err != nil {
			return err
		}
		var expired bool
		if err := tx.QueryRow(ctx, "SELECT $1::timestamptz IS NOT NULL AND $1::timestamptz <= now()", nullTime(old.Expires)).Scan(&expired); err != nil {
			return err
		}
		switch {
		case !old.Revoked.IsZero():
			return epoch.ErrAlreadyRevoked
		case old.RotatedTo != "":
			return epoch.ErrAlreadyRotated
		case expired:
			return fmt.Errorf("%w: it has expired", epoch.ErrNotRotatable)
		}
		if err := epoch.CheckRotation(old, successor); err != nil {
			return err
		}
		var grace time.Time
		if err := tx.QueryRow(ctx, "UPDATE api_tokens SET rotated_to = $1, grace_until = $2 WHERE token_id = $3 RETURNING grace_until",
			successor.TokenID, graceUntil, oldID).Scan(&grace); err != nil {
			return err
		}
		if err := s.insertToken(ctx, tx, successor, oldID); err != nil {
			return err
		}
		old.RotatedTo, old.GraceUntil = successor.TokenID, grace.UTC()
		return nil
	})
	if err != nil {
		return old, err
	}
	return old, nil
}

// RetireRotated revokes the rotated tokens whose successor was used or
// revoked, or whose grace has ended (see epoch.Rotations), in one
// transaction; the rows are locked (FOR UPDATE) as RevokeToken locks them.
func (s *Store) RetireRotated(ctx context.Context) ([]epoch.Editor, []epoch.APIToken, error) {
	ctx, cancel := s.write(ctx)
	defer cancel()
	var editors []epoch.Editor
	var retired []epoch.APIToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		editors, retired = nil, nil
		for {
			rows, err := tx.Query(ctx, "SELECT "+prefixed("o.", tokenColumns)+` FROM api_tokens o
				WHERE o.revoked IS NULL AND o.rotated_to IS NOT NULL AND (o.grace_until <= now() OR EXISTS (SELECT 1 FROM api_tokens n
					WHERE n.token_id = o.rotated_to AND (n.last_used IS NOT NULL OR n.revoked IS NOT NULL)))
				ORDER BY o.created, o.ord FOR UPDATE OF o`)
			if err != nil {
				return err
			}
			var batch []epoch.APIToken
			for rows.Next() {
				t, err := scanToken(rows)
				if err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, t)
			}
			if rows.Close(); rows.Err() != nil {
				return rows.Err()
			}
			if len(batch) == 0 {
				break
			}
			for _, t := range batch {
				var revoked time.Time
				if err := tx.QueryRow(ctx, "UPDATE api_tokens SET revoked = clock_timestamp() WHERE token_id = $1 RETURNING revoked", t.TokenID).Scan(&revoked); err != nil {
					return err
				}
				t.Revoked = revoked.UTC()
				retired = append(retired, t)
			}
		}
		seen := map[string]bool{}
		for _, t := range retired {
			if seen[t.EditorID] {
				continue
			}
			seen[t.EditorID] = true
			if _, err := s.change(ctx, tx, t.EditorID, false, "UPDATE editors SET version = version + 1 WHERE id = $1", t.EditorID); err != nil {
				return err
			}
			e, err := s.editor(ctx, tx, "e.id = $1", t.EditorID)
			if err != nil {
				return err
			}
			editors = append(editors, e)
		}
		events := make([]epoch.AuditEvent, len(retired))
		for i, t := range retired {
			events[i] = epoch.RotationRetired(t, t.Revoked)
		}
		return insertAudit(ctx, tx, events...)
	})
	if err != nil {
		return nil, nil, err
	}
	return editors, retired, nil
}
