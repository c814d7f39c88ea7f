package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/amaretti-auth/amaretti/epoch"
)

const tokenColumns = "token_id, editor_id, name, description, rights, endpoint, created, creator, expires, revoked, last_used, last_used_from, parents"

func scanToken(r scanner) (epoch.APIToken, error) {
	var t epoch.APIToken
	var rights, endpoint, from, parents sql.NullString
	var created int64
	var expires, revoked, lastUsed sql.NullInt64
	if err := r.Scan(&t.TokenID, &t.EditorID, &t.Name, &t.Description, &rights, &endpoint, &created, &t.Creator, &expires, &revoked, &lastUsed, &from, &parents); err != nil {
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
	return t, nil
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
	tx, err := s.db.BeginTx(ctx, nil) // immediate: the counts hold until the insert
	if err != nil {
		return err
	}
	defer tx.Rollback()
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
	_, err = tx.ExecContext(ctx, "INSERT INTO api_tokens ("+tokenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?)",
		t.TokenID, t.EditorID, t.Name, t.Description, rights, endpoint, micros(t.Created), t.Creator, nullMicros(t.Expires), parents)
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("%w: %s", epoch.ErrTokenExists, t.TokenID)
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// nameFree fails with epoch.ErrNameTaken when editor e has a token named name
// that may still verify (see RegisterToken). It runs inside RegisterToken's
// immediate transaction, which holds the write lock until the insert.
func (s *Store) nameFree(ctx context.Context, tx *sql.Tx, e epoch.Editor, name string, now int64) error {
	rows, err := tx.QueryContext(ctx, "SELECT "+tokenColumns+` FROM api_tokens
		WHERE editor_id = ? AND name = ? AND revoked IS NULL AND created > ? AND (expires IS NULL OR expires > ?)`,
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
	rows, err := s.db.QueryContext(ctx, q, args...)
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
	stmt, err := tx.PrepareContext(ctx, "UPDATE api_tokens SET last_used = ?, last_used_from = ? WHERE token_id = ? AND (last_used IS NULL OR last_used < ?)")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, u := range uses {
		from := epoch.StoredUseFrom(u.From)
		if _, err := stmt.ExecContext(ctx, micros(u.At), from, u.TokenID, micros(u.At)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
