package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amaretti-auth/amaretti/macaroon"
)

// KeyBackend returns a macaroon.KeyBackend that keeps root keys in the
// store's root_keys table, shared by every host using the database. Each
// secret is sealed with kek (macaroon.KeyEncryptionKey: AES-256-GCM, the key
// id as additional data), which is never stored in the database: every host
// reads it from its own file or environment.
//
// Every change (a rotation, a retirement, an import) appends a change with
// Keys set to the change log in the same transaction, so a Follower with
// epoch.WithKeysChanged on any host reloads its keys within its poll
// interval. Changes lock root_keys against each other: of two rotations at
// once, the one that commits last holds the current key.
func (s *Store) KeyBackend(kek *macaroon.KeyEncryptionKey) macaroon.KeyBackend {
	return &keyBackend{s: s, kek: kek}
}

type keyBackend struct {
	s   *Store
	kek *macaroon.KeyEncryptionKey
}

// String names the backend in messages.
func (b *keyBackend) String() string { return "the database (root_keys)" }

// lockKeys serialises changes of root keys; readers are not blocked.
const lockKeys = "LOCK TABLE root_keys IN SHARE ROW EXCLUSIVE MODE"

// Load reads and opens every key. A key the key-encryption key does not
// open fails the whole load with macaroon.ErrWrongKEK.
func (b *keyBackend) Load(ctx context.Context) ([]*macaroon.Key, error) {
	ctx, cancel := b.s.write(ctx)
	defer cancel()
	rows, err := b.s.pool.Query(ctx, `SELECT id, sealed, created, retired IS NOT NULL, current FROM root_keys ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("root keys: %w", err)
	}
	defer rows.Close()
	var keys []*macaroon.Key
	for rows.Next() {
		var (
			id               string
			sealed           []byte
			created          time.Time
			retired, current bool
		)
		if err := rows.Scan(&id, &sealed, &created, &retired, &current); err != nil {
			return nil, fmt.Errorf("root keys: %w", err)
		}
		k, err := b.kek.OpenKey(id, keyState(retired, current), created, sealed)
		if err != nil {
			return nil, fmt.Errorf("root keys in the database: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("root keys: %w", err)
	}
	return keys, nil
}

func keyState(retired, current bool) macaroon.KeyState {
	switch {
	case retired:
		return macaroon.StateRetired
	case current:
		return macaroon.StateCurrent
	}
	return macaroon.StateVerifyOnly
}

// Add inserts k sealed; a current k demotes the other current key in the
// same statement. It refuses a key-encryption key that does not open the
// keys already stored, so that keys sealed under two different ones never
// mix.
func (b *keyBackend) Add(ctx context.Context, k *macaroon.Key) error {
	if k.State() == macaroon.StateRetired {
		return fmt.Errorf("root keys: adding key %s: a new key cannot be retired", k.ID())
	}
	sealed, err := b.kek.SealKey(k)
	if err != nil {
		return err
	}
	ctx, cancel := b.s.write(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, b.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockKeys); err != nil {
			return fmt.Errorf("root keys: %w", err)
		}
		if err := b.checkKEK(ctx, tx); err != nil {
			return err
		}
		current := k.State() == macaroon.StateCurrent
		tag, err := b.s.change(ctx, tx, "", true, `WITH demoted AS (UPDATE root_keys SET current = false WHERE current AND $4)
			INSERT INTO root_keys (id, sealed, created, current) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
			k.ID(), sealed, k.Created(), current)
		if err != nil {
			return fmt.Errorf("root keys: adding key %s: %w", k.ID(), err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s", macaroon.ErrKeyExists, k.ID()) // rolls the demotion back
		}
		return nil
	})
}

// checkKEK opens the newest stored key, if any, with the backend's
// key-encryption key.
func (b *keyBackend) checkKEK(ctx context.Context, tx pgx.Tx) error {
	var (
		id      string
		sealed  []byte
		created time.Time
	)
	err := tx.QueryRow(ctx, `SELECT id, sealed, created FROM root_keys ORDER BY created DESC, id DESC LIMIT 1`).Scan(&id, &sealed, &created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("root keys: %w", err)
	}
	if _, err := b.kek.OpenKey(id, macaroon.StateVerifyOnly, created, sealed); err != nil {
		return fmt.Errorf("root keys in the database: %w", err)
	}
	return nil
}

// Retire marks key id retired unless it is current.
func (b *keyBackend) Retire(ctx context.Context, id string) error {
	ctx, cancel := b.s.write(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, b.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockKeys); err != nil {
			return fmt.Errorf("root keys: %w", err)
		}
		tag, err := b.s.change(ctx, tx, "", true, `UPDATE root_keys SET retired = now() WHERE id = $1 AND NOT current AND retired IS NULL`, id)
		if err != nil {
			return fmt.Errorf("root keys: retiring key %s: %w", id, err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var current, retired bool
		err = tx.QueryRow(ctx, `SELECT current, retired IS NOT NULL FROM root_keys WHERE id = $1`, id).Scan(&current, &retired)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: %q", macaroon.ErrUnknownKey, id)
		case err != nil:
			return fmt.Errorf("root keys: %w", err)
		case current:
			return fmt.Errorf("key %s: %w", id, macaroon.ErrCurrentKey)
		}
		return nil // already retired
	})
}

var _ macaroon.KeyBackend = (*keyBackend)(nil)
