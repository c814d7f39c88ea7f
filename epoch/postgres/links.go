package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/amaretti-auth/amaretti/epoch"
)

// LinkedEditor returns the editor linked to the provider's subject, or
// epoch.ErrNotFound.
func (s *Store) LinkedEditor(ctx context.Context, provider, subject string) (epoch.Editor, error) {
	ctx, cancel := s.write(ctx)
	defer cancel()
	return s.linked(ctx, s.pool, provider, subject)
}

func (s *Store) linked(ctx context.Context, q querier, provider, subject string) (epoch.Editor, error) {
	return s.editor(ctx, q, "e.id = (SELECT editor_id FROM editor_links WHERE provider = $1 AND subject = $2)", provider, subject)
}

// Link links an existing editor to the provider's subject. It fails with
// epoch.ErrLinked when the subject is linked already or the editor has
// another identity at that provider, and with epoch.ErrNotFound for an
// unknown editor.
func (s *Store) Link(ctx context.Context, editorID, provider, subject string) (epoch.Link, error) {
	if err := epoch.CheckLink(provider, subject); err != nil {
		return epoch.Link{}, err
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	if _, err := s.editor(ctx, s.pool, "e.id = $1", editorID); err != nil {
		return epoch.Link{}, err
	}
	return s.link(ctx, s.pool, editorID, provider, subject)
}

// link inserts a link; ON CONFLICT DO NOTHING, so that a conflict does not
// abort Login's transaction.
func (s *Store) link(ctx context.Context, q querier, editorID, provider, subject string) (epoch.Link, error) {
	l := epoch.Link{Provider: provider, Subject: subject, EditorID: editorID}
	err := q.QueryRow(ctx, `INSERT INTO editor_links (provider, subject, editor_id, created) VALUES ($1, $2, $3, clock_timestamp())
		ON CONFLICT DO NOTHING RETURNING created`, provider, subject, editorID).Scan(&l.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return epoch.Link{}, fmt.Errorf("%w: %s at %s", epoch.ErrLinked, editorID, provider)
	}
	if err != nil {
		return epoch.Link{}, err
	}
	l.Created = l.Created.UTC()
	return l, nil
}

// Links returns the login identities of an editor, by provider.
func (s *Store) Links(ctx context.Context, editorID string) ([]epoch.Link, error) {
	if !storable(editorID) {
		return nil, nil
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT provider, subject, editor_id, created FROM editor_links WHERE editor_id = $1 ORDER BY provider COLLATE "C"`, editorID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []epoch.Link
	for rows.Next() {
		var l epoch.Link
		if err := rows.Scan(&l.Provider, &l.Subject, &l.EditorID, &l.Created); err != nil {
			return nil, err
		}
		l.Created = l.Created.UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

// loginAttempts bounds Login's retries when a concurrent Link took the
// identity between its lookup and its insert.
const loginAttempts = 3

// Login returns the editor linked to the provider's subject. On the first
// login it creates one, with a username made from preferred (a suffix
// "-2", "-3", … when it is taken), and links it, in one transaction.
// created reports whether the editor is new.
//
// Concurrent first logins of one identity, from any number of hosts, make
// one editor: the transaction takes the change-log lock before it looks the
// identity up, so logins that create run one after the other and each sees
// the links the ones before it committed; and should a plain Link take the
// identity in between, the link's unique key refuses the second editor and
// Login starts again, finding it.
func (s *Store) Login(ctx context.Context, provider, subject, preferred string) (e epoch.Editor, created bool, err error) {
	if err := epoch.CheckLink(provider, subject); err != nil {
		return epoch.Editor{}, false, err
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	// Most logins find their editor: no lock, no transaction.
	if e, err := s.linked(ctx, s.pool, provider, subject); !errors.Is(err, epoch.ErrNotFound) {
		return e, false, err
	}
	for attempt := 1; ; attempt++ {
		e, created, err = s.login(ctx, provider, subject, preferred)
		if errors.Is(err, epoch.ErrLinked) && attempt < loginAttempts {
			continue
		}
		return e, created, err
	}
}

func (s *Store) login(ctx context.Context, provider, subject, preferred string) (e epoch.Editor, created bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(changeLock)); err != nil {
			return err
		}
		e, err = s.linked(ctx, tx, provider, subject)
		if err == nil || !errors.Is(err, epoch.ErrNotFound) {
			return err
		}
		base := epoch.UsernameFrom(preferred)
		for i := 1; ; i++ {
			n, err := epoch.NewEditor{Username: epoch.LoginUsername(base, i)}.Prepare(s.rand)
			if err != nil {
				return err
			}
			err = s.insert(ctx, tx, n)
			if errors.Is(err, epoch.ErrExists) && i < epoch.MaxLoginAttempts {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := s.link(ctx, tx, n.ID, provider, subject); err != nil {
				return err
			}
			created = true
			e, err = s.editor(ctx, tx, "e.id = $1", n.ID)
			return err
		}
	})
	if err != nil {
		return epoch.Editor{}, false, err
	}
	return e, created, nil
}

// Unlink removes the editor's login identity at provider and returns it.
// Tokens already minted are untouched. It fails with epoch.ErrNotFound when
// the editor has no identity at provider.
func (s *Store) Unlink(ctx context.Context, editorID, provider string) (epoch.Link, error) {
	if !storable(editorID, provider) {
		return epoch.Link{}, fmt.Errorf("%w: no identity of that editor at that provider", epoch.ErrNotFound)
	}
	ctx, cancel := s.write(ctx)
	defer cancel()
	var l epoch.Link
	err := s.pool.QueryRow(ctx,
		"DELETE FROM editor_links WHERE editor_id = $1 AND provider = $2 RETURNING provider, subject, editor_id, created",
		editorID, provider).Scan(&l.Provider, &l.Subject, &l.EditorID, &l.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return epoch.Link{}, fmt.Errorf("%w: no identity of %s at %s", epoch.ErrNotFound, editorID, provider)
	}
	if err != nil {
		return epoch.Link{}, err
	}
	l.Created = l.Created.UTC()
	return l, nil
}
