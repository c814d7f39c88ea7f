package setup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// Errors of keys kept in the database.
var (
	// ErrKeysNeedPostgres means --keys names the database but --db is not
	// a PostgreSQL store.
	ErrKeysNeedPostgres = errors.New("root keys can be kept in the database only when --db is a PostgreSQL URL")
	// ErrNoKEK means keys live in the database but no key-encryption key
	// was given.
	ErrNoKEK = errors.New("no key-encryption key")
)

// The environment variables that give a key-encryption key. KEKFileEnv is
// also the --key-encryption-key-file flag's; KEKEnv holds the key itself, as
// base64 text, and has no flag so that the key never appears in a command
// line.
const (
	KEKFileEnv = "AMARETTI_KEY_ENCRYPTION_KEY_FILE"
	KEKEnv     = "AMARETTI_KEY_ENCRYPTION_KEY"
)

// KeysInDatabase reports whether a --keys value names the database --db
// names rather than a directory: "db", "database" or "database:" (any
// case). A directory of that name is written ./db.
func KeysInDatabase(keys string) bool {
	switch strings.ToLower(strings.TrimSpace(keys)) {
	case "db", "database", "database:":
		return true
	}
	return false
}

// KeyOptions say where the root keys live.
type KeyOptions struct {
	// Keys is --keys / AMARETTI_KEYS: a directory, or "db" for the
	// PostgreSQL store --db names (see KeysInDatabase).
	Keys string
	// DB is --db / AMARETTI_DB, for messages.
	DB string
	// KEKFile is --key-encryption-key-file / AMARETTI_KEY_ENCRYPTION_KEY_FILE:
	// a file (mode 0600) holding the key-encryption key.
	KEKFile string
	// KEK is the key-encryption key as base64 text, from
	// AMARETTI_KEY_ENCRYPTION_KEY. Set at most one of KEKFile and KEK.
	KEK string
	// StoreOptions configure the key store (tests: its clock).
	StoreOptions []macaroon.StoreOption
}

// KeyBackender is a store that can keep root keys: epoch/postgres's Store,
// which seals them with kek.
type KeyBackender interface {
	KeyBackend(kek *macaroon.KeyEncryptionKey) macaroon.KeyBackend
}

// Keys opens the key store in dir.
func Keys(dir string) (*macaroon.KeyStore, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s (run \"amaretti init\", or set --keys / AMARETTI_KEYS)", ErrNoKeyStore, dir)
	}
	return macaroon.OpenKeyStore(dir)
}

// OpenKeys opens the key store o names: a directory, which must exist, or
// the database, through store (the store --db opened, which must be
// PostgreSQL; store is not used for a directory and may then be nil).
func OpenKeys(ctx context.Context, o KeyOptions, store epoch.Store) (*macaroon.KeyStore, error) {
	if !KeysInDatabase(o.Keys) {
		if _, err := os.Stat(o.Keys); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s (run \"amaretti init\", or set --keys / AMARETTI_KEYS)", ErrNoKeyStore, o.Keys)
		}
		return macaroon.OpenKeyStore(o.Keys, o.StoreOptions...)
	}
	b, err := databaseBackend(o, store)
	if err != nil {
		return nil, err
	}
	return macaroon.NewKeyStore(ctx, b, o.StoreOptions...)
}

// InitKeys opens the key store o names as OpenKeys does, making what is
// missing: the directory (0700) and, on any backend, a first current key
// when there is no key at all. created reports whether it made a key.
func InitKeys(ctx context.Context, o KeyOptions, store epoch.Store) (keys *macaroon.KeyStore, created bool, err error) {
	if !KeysInDatabase(o.Keys) {
		return macaroon.InitKeyStore(o.Keys, o.StoreOptions...)
	}
	b, err := databaseBackend(o, store)
	if err != nil {
		return nil, false, err
	}
	if keys, err = macaroon.NewKeyStore(ctx, b, o.StoreOptions...); err != nil {
		return nil, false, err
	}
	if created, err = keys.Init(ctx); err != nil {
		return nil, false, err
	}
	return keys, created, nil
}

// KeysWhere names where o's keys live, for messages: the directory, or
// "the database <redacted --db>".
func KeysWhere(o KeyOptions) string {
	if KeysInDatabase(o.Keys) {
		return "the database " + Redact(o.DB)
	}
	return o.Keys
}

func databaseBackend(o KeyOptions, store epoch.Store) (macaroon.KeyBackend, error) {
	kb, ok := store.(KeyBackender)
	if kind, _ := Parse(o.DB); kind != PostgreSQL || !ok {
		return nil, fmt.Errorf("%w (--keys %s, but --db is %s); keep the keys in a directory (--keys DIR) with SQLite", ErrKeysNeedPostgres, o.Keys, Redact(o.DB))
	}
	kek, err := ReadKEK(o)
	if err != nil {
		return nil, err
	}
	return kb.KeyBackend(kek), nil
}

// ReadKEK reads the key-encryption key o gives: from KEKFile (which must be
// mode 0600) or from KEK. Its errors never hold key material.
func ReadKEK(o KeyOptions) (*macaroon.KeyEncryptionKey, error) {
	switch {
	case o.KEKFile != "" && o.KEK != "":
		return nil, fmt.Errorf("both --key-encryption-key-file / %s and %s are set: set only one", KEKFileEnv, KEKEnv)
	case o.KEKFile != "":
		return macaroon.ReadKeyEncryptionKeyFile(o.KEKFile)
	case o.KEK != "":
		kek, err := macaroon.ParseKeyEncryptionKey(o.KEK)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KEKEnv, err)
		}
		return kek, nil
	}
	return nil, fmt.Errorf("%w: root keys in the database are sealed with a key-encryption key; set --key-encryption-key-file / %s to a file (mode 0600) holding it, or %s to the key itself (\"amaretti keys new-kek --out FILE\" makes one; every host needs the same)", ErrNoKEK, KEKFileEnv, KEKEnv)
}
