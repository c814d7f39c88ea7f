package setup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/macaroon"
)

func TestKeysInDatabase(t *testing.T) {
	for _, tc := range []struct {
		keys string
		want bool
	}{
		{"db", true},
		{"DB", true},
		{"database", true},
		{"database:", true},
		{"./db", false},
		{"./keys", false},
		{"/var/lib/amaretti/keys", false},
		{"", false},
		{"postgres://h/db", false},
	} {
		t.Run(tc.keys, func(t *testing.T) {
			if got := setup.KeysInDatabase(tc.keys); got != tc.want {
				t.Errorf("KeysInDatabase(%q) = %v", tc.keys, got)
			}
		})
	}
}

func TestReadKEK(t *testing.T) {
	dir := t.TempDir()
	text, err := macaroon.NewKeyEncryptionKeyText(nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "kek")
	if err := macaroon.WriteKeyEncryptionKeyFile(file, text); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		o       setup.KeyOptions
		want    error // nil: success
		message string
	}{
		{"file", setup.KeyOptions{KEKFile: file}, nil, ""},
		{"environment", setup.KeyOptions{KEK: text + "\n"}, nil, ""},
		{"none", setup.KeyOptions{}, setup.ErrNoKEK, "amaretti keys new-kek"},
		{"both", setup.KeyOptions{KEKFile: file, KEK: text}, nil, "set only one"},
		{"file readable by others", setup.KeyOptions{KEKFile: loose}, macaroon.ErrInsecure, "chmod 600"},
		{"bad text", setup.KeyOptions{KEK: text[:40]}, macaroon.ErrBadKEK, setup.KEKEnv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kek, err := setup.ReadKEK(tc.o)
			if tc.message == "" {
				if err != nil || kek == nil {
					t.Fatalf("ReadKEK = %v", err)
				}
				return
			}
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("ReadKEK = %v, want %v saying %q", err, tc.want, tc.message)
			}
			if strings.Contains(err.Error(), text[:40]) {
				t.Fatalf("error holds the key: %v", err)
			}
		})
	}
}

// TestKeysInSQLite: --keys db with a SQLite --db is refused, saying what
// to do, and creates nothing.
func TestKeysInSQLite(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "amaretti.db")
	store, err := setup.Store(ctx, db, setup.StoreOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	o := setup.KeyOptions{Keys: "db", DB: db, KEK: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	if _, err := setup.OpenKeys(ctx, o, store); !errors.Is(err, setup.ErrKeysNeedPostgres) || !strings.Contains(err.Error(), "--keys DIR") {
		t.Fatalf("OpenKeys = %v, want ErrKeysNeedPostgres", err)
	}
	if _, _, err := setup.InitKeys(ctx, o, store); !errors.Is(err, setup.ErrKeysNeedPostgres) {
		t.Fatalf("InitKeys = %v, want ErrKeysNeedPostgres", err)
	}
	if _, err := setup.OpenKeys(ctx, o, nil); !errors.Is(err, setup.ErrKeysNeedPostgres) {
		t.Fatalf("OpenKeys without a store = %v, want ErrKeysNeedPostgres", err)
	}
}

func TestKeysInDirectory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	o := setup.KeyOptions{Keys: dir}
	if _, err := setup.OpenKeys(ctx, o, nil); !errors.Is(err, setup.ErrNoKeyStore) {
		t.Fatalf("OpenKeys before init = %v", err)
	}
	keys, created, err := setup.InitKeys(ctx, o, nil)
	if err != nil || !created || keys.Dir() != dir {
		t.Fatalf("InitKeys = %v, %v", created, err)
	}
	again, err := setup.OpenKeys(ctx, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := keys.Current()
	b, _ := again.Current()
	if a.ID() != b.ID() {
		t.Fatal("reopened store has another current key")
	}
	if got := setup.KeysWhere(o); got != dir {
		t.Errorf("KeysWhere = %q", got)
	}
	if got := setup.KeysWhere(setup.KeyOptions{Keys: "db", DB: "postgres://u:s3cret@h/a"}); got != "the database postgres://u:xxxxx@h/a" {
		t.Errorf("KeysWhere(db) = %q", got)
	}
}

// TestKeysInPostgres: --keys db on a PostgreSQL --db makes, opens and
// refuses as it should, against a real server.
func TestKeysInPostgres(t *testing.T) {
	ctx := context.Background()
	url := testpg.Start(t).NewDatabase(t)
	store, err := setup.Store(ctx, url, setup.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, ok := store.(setup.KeyBackender); !ok {
		t.Fatal("the PostgreSQL store keeps no keys")
	}
	dir := t.TempDir()
	kekText, _ := macaroon.NewKeyEncryptionKeyText(nil)
	kekFile := filepath.Join(dir, "kek")
	if err := macaroon.WriteKeyEncryptionKeyFile(kekFile, kekText); err != nil {
		t.Fatal(err)
	}
	otherText, _ := macaroon.NewKeyEncryptionKeyText(nil)
	o := setup.KeyOptions{Keys: "db", DB: url, KEKFile: kekFile}

	if _, _, err := setup.InitKeys(ctx, setup.KeyOptions{Keys: "db", DB: url}, store); !errors.Is(err, setup.ErrNoKEK) {
		t.Fatalf("InitKeys without a key-encryption key = %v, want ErrNoKEK", err)
	}
	keys, created, err := setup.InitKeys(ctx, o, store)
	if err != nil || !created {
		t.Fatalf("InitKeys = %v, %v", created, err)
	}
	if _, created, err := setup.InitKeys(ctx, o, store); err != nil || created {
		t.Fatalf("second InitKeys = %v, %v", created, err)
	}
	cur, _ := keys.Current()
	for _, tc := range []struct {
		name string
		o    setup.KeyOptions
		want error
	}{
		{"the key file", o, nil},
		{"the key in the environment", setup.KeyOptions{Keys: "database", DB: url, KEK: kekText}, nil},
		{"another key", setup.KeyOptions{Keys: "db", DB: url, KEK: otherText}, macaroon.ErrWrongKEK},
		{"no key", setup.KeyOptions{Keys: "db", DB: url}, setup.ErrNoKEK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := setup.OpenKeys(ctx, tc.o, store)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("OpenKeys = %v, want %v", err, tc.want)
				}
				for _, secret := range []string{kekText, otherText, cur.ExportSecret()} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error holds key material: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k, _ := ks.Current(); k.ID() != cur.ID() || k.ExportSecret() != cur.ExportSecret() {
				t.Fatalf("current key %v, want %v", k, cur)
			}
			if ks.Dir() != "" {
				t.Errorf("Dir = %q for keys in the database", ks.Dir())
			}
		})
	}
}
