package main

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// TestKeysInDatabase: with --keys db, a rotation and a retirement made on
// another host reach the running daemon through the change log, with no
// signal and no key-directory reload (--keys-reload 0).
func TestKeysInDatabase(t *testing.T) {
	ctx := context.Background()
	url := testpg.Start(t).NewDatabase(t)
	kek := filepath.Join(t.TempDir(), "kek")
	text, _ := macaroon.NewKeyEncryptionKeyText(nil)
	if err := macaroon.WriteKeyEncryptionKeyFile(kek, text); err != nil {
		t.Fatal(err)
	}
	// The operator's host.
	store, err := setup.Store(ctx, url, setup.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, _, err := setup.InitKeys(ctx, setup.KeyOptions{Keys: "db", DB: url, KEKFile: kek}, store)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := store.Create(ctx, epoch.NewEditor{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	mint := func() string {
		t.Helper()
		m, err := macaroon.NewMinter(keys, "")
		if err != nil {
			t.Fatal(err)
		}
		minted, err := m.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return minted.Token
	}
	old := mint()
	oldKey, _ := keys.Current()

	addr := freePort(t)
	runApp(t, "--listen", addr, "--db", url, "--keys", "db", "--key-encryption-key-file", kek, "--poll", "100ms", "--keys-reload", "0", "--store-timeout", "5s")
	base := "http://" + addr
	waitUntil(t, "amarettid ready", 20*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if code, body := getWith(t, base+"/v1/verify", "Bearer "+old); code != 200 {
		t.Fatalf("verify: %d %s", code, body)
	}
	if _, err := keys.RotateContext(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := mint()
	took := waitUntil(t, "the rotation reaches the daemon", 20*time.Second, func() bool {
		code, _ := getWith(t, base+"/v1/verify", "Bearer "+fresh)
		return code == 200
	})
	t.Logf("rotation reached the daemon in %v (--poll 100ms)", took)
	if _, err := keys.RetireContext(ctx, oldKey.ID()); err != nil {
		t.Fatal(err)
	}
	took = waitUntil(t, "the retirement reaches the daemon", 20*time.Second, func() bool {
		code, _ := getWith(t, base+"/v1/verify", "Bearer "+old)
		return code == 401
	})
	t.Logf("retirement reached the daemon in %v (--poll 100ms)", took)
	if code, body := getWith(t, base+"/v1/verify", "Bearer "+fresh); code != 200 {
		t.Fatalf("token under the new key after the retirement: %d %s", code, body)
	}
}
