package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"

	"github.com/amaretti-auth/amaretti/epoch"
)

// LinkedEditor returns the editor linked to the provider's subject, or
// epoch.ErrNotFound.
func (s *Store) LinkedEditor(ctx context.Context, provider, subject string) (epoch.Editor, error) {
	return s.linked(ctx, s.db, provider, subject)
}

func (s *Store) linked(ctx context.Context, q querier, provider, subject string) (epoch.Editor, error) {
	var id string
	err := q.QueryRowContext(ctx, "SELECT editor_id FROM editor_links WHERE provider = ? AND subject = ?", provider, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return epoch.Editor{}, epoch.ErrNotFound
	}
	if err != nil {
		return epoch.Editor{}, err
	}
	return s.editor(ctx, q, "id = :arg", id)
}

// Link links an existing editor to the provider's subject. It fails with
// epoch.ErrLinked when the subject is linked already or the editor has another
// identity at that provider, and with epoch.ErrNotFound for an unknown
// editor.
func (s *Store) Link(ctx context.Context, editorID, provider, subject string) (epoch.Link, error) {
	if err := epoch.CheckLink(provider, subject); err != nil {
		return epoch.Link{}, err
	}
	if _, err := s.Editor(ctx, editorID); err != nil {
		return epoch.Link{}, err
	}
	l := epoch.Link{Provider: provider, Subject: subject, EditorID: editorID, Created: fromMicros(micros(s.now()))}
	return l, s.link(ctx, s.db, l)
}

func (s *Store) link(ctx context.Context, x execer, l epoch.Link) error {
	_, err := x.ExecContext(ctx, "INSERT INTO editor_links (provider, subject, editor_id, created) VALUES (?, ?, ?, ?)",
		l.Provider, l.Subject, l.EditorID, micros(l.Created))
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("%w: %s at %s", epoch.ErrLinked, l.EditorID, l.Provider)
	}
	return err
}

// Links returns the login identities of an editor.
func (s *Store) Links(ctx context.Context, editorID string) ([]epoch.Link, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT provider, subject, editor_id, created FROM editor_links WHERE editor_id = ? ORDER BY provider", editorID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []epoch.Link
	for rows.Next() {
		var l epoch.Link
		var created int64
		if err := rows.Scan(&l.Provider, &l.Subject, &l.EditorID, &created); err != nil {
			return nil, err
		}
		l.Created = fromMicros(created)
		out = append(out, l)
	}
	return out, rows.Err()
}

// Login returns the editor linked to the provider's subject. On the first
// login it creates one, with a username made from preferred (the name the
// provider suggests; a suffix "-2", "-3", … when it is taken, since it may
// belong to someone else), and links it, in one transaction. created
// reports whether the editor is new. The caller decides whether a locked or
// inactive editor may log in; Login only finds it.
func (s *Store) Login(ctx context.Context, provider, subject, preferred string) (e epoch.Editor, created bool, err error) {
	if err := epoch.CheckLink(provider, subject); err != nil {
		return epoch.Editor{}, false, err
	}
	tx, err := s.db.BeginTx(ctx, nil) // immediate: _txlock=immediate
	if err != nil {
		return epoch.Editor{}, false, err
	}
	defer tx.Rollback()
	e, err = s.linked(ctx, tx, provider, subject)
	if err == nil {
		return e, false, tx.Commit()
	}
	if !errors.Is(err, epoch.ErrNotFound) {
		return epoch.Editor{}, false, err
	}
	base := epoch.UsernameFrom(preferred)
	for i := 1; ; i++ {
		n, err := s.prepare(epoch.NewEditor{Username: epoch.LoginUsername(base, i)})
		if err != nil {
			return epoch.Editor{}, false, err
		}
		err = s.insert(ctx, tx, n)
		if errors.Is(err, epoch.ErrExists) && i < epoch.MaxLoginAttempts {
			continue
		}
		if err != nil {
			return epoch.Editor{}, false, err
		}
		if err := s.link(ctx, tx, epoch.Link{Provider: provider, Subject: subject, EditorID: n.ID, Created: fromMicros(micros(s.now()))}); err != nil {
			return epoch.Editor{}, false, err
		}
		if e, err = s.editor(ctx, tx, "id = :arg", n.ID); err != nil {
			return epoch.Editor{}, false, err
		}
		return e, true, tx.Commit()
	}
}

// Unlink removes the editor's login identity at provider and returns it, so
// the next login through that provider no longer finds the editor (it makes
// a new one). Tokens already minted are untouched: touch the editor to end
// its sessions. It fails with epoch.ErrNotFound when the editor has no
// identity at provider.
func (s *Store) Unlink(ctx context.Context, editorID, provider string) (epoch.Link, error) {
	var l epoch.Link
	var created int64
	err := s.db.QueryRowContext(ctx,
		"DELETE FROM editor_links WHERE editor_id = ? AND provider = ? RETURNING provider, subject, editor_id, created",
		editorID, provider).Scan(&l.Provider, &l.Subject, &l.EditorID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return epoch.Link{}, fmt.Errorf("%w: no identity of %s at %s", epoch.ErrNotFound, editorID, provider)
	}
	if err != nil {
		return epoch.Link{}, err
	}
	l.Created = fromMicros(created)
	return l, nil
}
