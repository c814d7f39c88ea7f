package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/mattn/go-sqlite3"
)

// ErrLinked means a login identity is already linked: the provider's
// subject to another editor, or the editor to another subject of the same
// provider.
var ErrLinked = errors.New("identity already linked")

// A Link ties an editor to a login identity: a provider (an OIDC issuer
// URL, or "dev" for the development login) and that provider's stable id of
// the user (its "sub").
type Link struct {
	Provider string    `json:"provider"`
	Subject  string    `json:"subject"`
	EditorID string    `json:"editor_id"`
	Created  time.Time `json:"created"`
}

// maxLinkField bounds provider and subject (OIDC allows subjects of up to
// 255 ASCII characters).
const maxLinkField = 255

func checkLink(provider, subject string) error {
	for _, f := range []struct{ name, v string }{{"provider", provider}, {"subject", subject}} {
		if f.v == "" || len(f.v) > maxLinkField {
			return fmt.Errorf("%w: %s must be 1 to %d bytes", ErrInvalidLink, f.name, maxLinkField)
		}
		for _, r := range f.v {
			if r < 0x21 || r > 0x7e {
				return fmt.Errorf("%w: %s must be printable ASCII without spaces", ErrInvalidLink, f.name)
			}
		}
	}
	return nil
}

// ErrInvalidLink means a provider or subject is empty, too long, or not
// printable ASCII.
var ErrInvalidLink = errors.New("invalid login identity")

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
// ErrLinked when the subject is linked already or the editor has another
// identity at that provider, and with epoch.ErrNotFound for an unknown
// editor.
func (s *Store) Link(ctx context.Context, editorID, provider, subject string) (Link, error) {
	if err := checkLink(provider, subject); err != nil {
		return Link{}, err
	}
	if _, err := s.Editor(ctx, editorID); err != nil {
		return Link{}, err
	}
	l := Link{Provider: provider, Subject: subject, EditorID: editorID, Created: fromMicros(micros(s.now()))}
	return l, s.link(ctx, s.db, l)
}

func (s *Store) link(ctx context.Context, x execer, l Link) error {
	_, err := x.ExecContext(ctx, "INSERT INTO editor_links (provider, subject, editor_id, created) VALUES (?, ?, ?, ?)",
		l.Provider, l.Subject, l.EditorID, micros(l.Created))
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("%w: %s at %s", ErrLinked, l.EditorID, l.Provider)
	}
	return err
}

// Links returns the login identities of an editor.
func (s *Store) Links(ctx context.Context, editorID string) ([]Link, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT provider, subject, editor_id, created FROM editor_links WHERE editor_id = ? ORDER BY provider", editorID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		var l Link
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
	if err := checkLink(provider, subject); err != nil {
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
	base := UsernameFrom(preferred)
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			suffix := "-" + strconv.Itoa(i)
			name = base[:min(len(base), 64-len(suffix))] + suffix
		}
		n, err := s.prepare(NewEditor{Username: name})
		if err != nil {
			return epoch.Editor{}, false, err
		}
		err = s.insert(ctx, tx, n)
		if errors.Is(err, ErrExists) && i < 100 {
			continue
		}
		if err != nil {
			return epoch.Editor{}, false, err
		}
		if err := s.link(ctx, tx, Link{Provider: provider, Subject: subject, EditorID: n.ID, Created: fromMicros(micros(s.now()))}); err != nil {
			return epoch.Editor{}, false, err
		}
		if e, err = s.editor(ctx, tx, "id = :arg", n.ID); err != nil {
			return epoch.Editor{}, false, err
		}
		return e, true, tx.Commit()
	}
}

// UsernameFrom turns a name a login provider suggests (a preferred_username,
// an e-mail address) into a valid username: the part before any "@", other
// characters than [A-Za-z0-9_.-] replaced by "-", leading punctuation
// dropped, at most 64 characters; "user" when nothing is left.
func UsernameFrom(preferred string) string {
	preferred, _, _ = strings.Cut(preferred, "@")
	var b strings.Builder
	for _, r := range preferred {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case b.Len() == 0:
			continue
		case r == '_' || r == '.' || r == '-':
		default:
			r = '-'
		}
		b.WriteRune(r)
		if b.Len() == 64 {
			break
		}
	}
	if name := b.String(); caveat.ValidUsername(name) {
		return name
	}
	return "user"
}

// Unlink removes the editor's login identity at provider and returns it, so
// the next login through that provider no longer finds the editor (it makes
// a new one). Tokens already minted are untouched: touch the editor to end
// its sessions. It fails with epoch.ErrNotFound when the editor has no
// identity at provider.
func (s *Store) Unlink(ctx context.Context, editorID, provider string) (Link, error) {
	var l Link
	var created int64
	err := s.db.QueryRowContext(ctx,
		"DELETE FROM editor_links WHERE editor_id = ? AND provider = ? RETURNING provider, subject, editor_id, created",
		editorID, provider).Scan(&l.Provider, &l.Subject, &l.EditorID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Link{}, fmt.Errorf("%w: no identity of %s at %s", epoch.ErrNotFound, editorID, provider)
	}
	if err != nil {
		return Link{}, err
	}
	l.Created = fromMicros(created)
	return l, nil
}
