// Package setup opens what amaretti's programs share — the root key store
// and the database that "amaretti init" makes — and, when one is missing,
// says so in the same words in every program: where it looked and how to
// make it. A missing database is never created empty by a program that
// only reads it, next to a key store it does not belong to.
package setup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// Errors that name what to do.
var (
	// ErrNoKeyStore means the key directory does not exist.
	ErrNoKeyStore = errors.New("no key store")
	// ErrNoDatabase means the database file does not exist.
	ErrNoDatabase = errors.New("no database")
)

// Keys opens the key store in dir.
func Keys(dir string) (*macaroon.KeyStore, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s (run \"amaretti init\", or set --keys / AMARETTI_KEYS)", ErrNoKeyStore, dir)
	}
	return macaroon.OpenKeyStore(dir)
}

// Store opens the existing database at path.
func Store(ctx context.Context, path string, opts ...sqlite.Option) (*sqlite.Store, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s (run \"amaretti init\", or set --db / AMARETTI_DB)", ErrNoDatabase, path)
	}
	return sqlite.Open(ctx, path, opts...)
}
