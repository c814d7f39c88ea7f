package setup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/amaretti-auth/amaretti/macaroon"
)

// Keys opens the key store in dir.
func Keys(dir string) (*macaroon.KeyStore, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s (run \"amaretti init\", or set --keys / AMARETTI_KEYS)", ErrNoKeyStore, dir)
	}
	return macaroon.OpenKeyStore(dir)
}
