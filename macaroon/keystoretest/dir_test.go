package keystoretest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/macaroon/keystoretest"
)

// TestDirBackend runs the suite on a key directory shared by two stores,
// as by two processes on one host.
func TestDirBackend(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) (a, b macaroon.KeyBackend) {
		dir := filepath.Join(t.TempDir(), "keys")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		return macaroon.NewDirBackend(dir), macaroon.NewDirBackend(dir)
	})
}
