package postgres

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/macaroon/keystoretest"
)

func testKEK(t *testing.T) *macaroon.KeyEncryptionKey {
	t.Helper()
	text, err := macaroon.NewKeyEncryptionKeyText(nil)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := macaroon.ParseKeyEncryptionKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

// twoHosts opens two stores (two pools: two hosts) on one new database,
// each with a key store over it under the same key-encryption key; the
// first host made the first key.
func twoHosts(t *testing.T) (a, b *Store, ka, kb *macaroon.KeyStore, kek *macaroon.KeyEncryptionKey) {
	t.Helper()
	ctx := context.Background()
	a, url := open(t)
	b = openURL(t, url)
	kek = testKEK(t)
	var err error
	if ka, err = macaroon.NewKeyStore(ctx, a.KeyBackend(kek)); err != nil {
		t.Fatal(err)
	}
	if _, err := ka.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if kb, err = macaroon.NewKeyStore(ctx, b.KeyBackend(kek)); err != nil {
		t.Fatal(err)
	}
	return a, b, ka, kb, kek
}

// TestKeyBackend runs the key-store conformance suite on two pools over one
// database.
func TestKeyBackend(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) (macaroon.KeyBackend, macaroon.KeyBackend) {
		a, url := open(t)
		b := openURL(t, url)
		kek := testKEK(t)
		return a.KeyBackend(kek), b.KeyBackend(kek)
	})
}

func ids(ks *macaroon.KeyStore) string {
	var out []string
	for _, k := range ks.Keys() {
		out = append(out, k.ID()+"="+string(k.State()))
	}
	return strings.Join(out, " ")
}

// TestKeysReachFollowers: every key change made on one host appends one
// key change to the log, and the other host's Follower (WithKeysChanged)
// reloads its keys on its next poll; a change refused appends nothing.
func TestKeysReachFollowers(t *testing.T) {
	ctx := context.Background()
	a, b, ka, kb, _ := twoHosts(t)
	f := epoch.NewFollower(b, epoch.WithKeysChanged(kb.Reloader(slog.New(slog.DiscardHandler))))
	if err := f.Poll(ctx, nil); err != nil {
		t.Fatal(err)
	}
	first, _ := ka.Current()
	var second *macaroon.Key
	steps := []struct {
		name    string
		do      func() error
		changed bool
	}{
		{"rotate", func() (err error) { second, err = ka.RotateContext(ctx); return err }, true},
		{"retire", func() error { _, err := ka.RetireContext(ctx, first.ID()); return err }, true},
		{"import", func() error {
			_, err := ka.ImportContext(ctx, "fatcat", "ZHVtbXkta2V5LWEtb25lLXR3by10aHJlZS1hLWxhISE=")
			return err
		}, true},
		{"retire the current key (refused)", func() error {
			if _, err := ka.RetireContext(ctx, second.ID()); !errors.Is(err, macaroon.ErrCurrentKey) {
				return errors.New("retired the current key")
			}
			return nil
		}, false},
		{"import an existing id (refused)", func() error {
			if _, err := ka.ImportContext(ctx, "fatcat", "ZHVtbXkta2V5LWEtb25lLXR3by10aHJlZS1hLWxhISE="); !errors.Is(err, macaroon.ErrKeyExists) {
				return errors.New("imported an existing id")
			}
			return nil
		}, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			head, err := a.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before := ids(kb)
			if err := s.do(); err != nil {
				t.Fatal(err)
			}
			if ids(kb) != before {
				t.Fatal("the other host changed before polling")
			}
			changes, err := a.Changes(ctx, head.Seq, 100)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 0}[s.changed]; len(changes) != want {
				t.Fatalf("%d changes appended, want %d: %+v", len(changes), want, changes)
			}
			for _, c := range changes {
				if !c.Keys || c.EditorID != "" {
					t.Errorf("change %+v, want a key change", c)
				}
			}
			if err := f.Poll(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if got, want := ids(kb), ids(ka); got != want {
				t.Fatalf("after one poll the other host has %s, want %s", got, want)
			}
		})
	}
	if cur, _ := kb.Current(); cur.ID() != second.ID() || cur.ExportSecret() != second.ExportSecret() {
		t.Fatalf("other host's current key %v, want %v", cur, second)
	}
	if _, err := kb.Key(first.ID()); !errors.Is(err, macaroon.ErrRetiredKey) {
		t.Fatalf("retired key on the other host: %v", err)
	}
}

// TestKeysRunningFollower: a running Follower reloads the keys after a
// rotation on another host, without any signal.
func TestKeysRunningFollower(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, b, ka, kb, _ := twoHosts(t)
	reloaded := make(chan string, 16)
	reload := kb.Reloader(slog.New(slog.DiscardHandler))
	f := epoch.NewFollower(b, epoch.WithPollInterval(50*time.Millisecond), epoch.WithKeysChanged(func(ctx context.Context) error {
		if err := reload(ctx); err != nil {
			return err
		}
		if k, err := kb.Current(); err == nil {
			reloaded <- k.ID()
		}
		return nil
	}))
	done := make(chan struct{})
	go func() { f.Run(ctx, nil); close(done) }()
	defer func() { cancel(); <-done }()
	k, err := ka.RotateContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case id := <-reloaded:
			if id != k.ID() {
				continue
			}
			t.Logf("rotation reached the other host in %v (poll 50ms)", time.Since(start))
			return
		case <-deadline:
			t.Fatal("the rotation never reached the running follower")
		}
	}
}

// TestKeysSealedAtRest: no row of root_keys holds a secret in any form.
func TestKeysSealedAtRest(t *testing.T) {
	ctx := context.Background()
	a, _, ka, _, _ := twoHosts(t)
	if _, err := ka.RotateContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ka.ImportContext(ctx, "fatcat", "ZHVtbXkta2V5LWEtb25lLXR3by10aHJlZS1hLWxhISE="); err != nil {
		t.Fatal(err)
	}
	rows, err := a.pool.Query(ctx, `SELECT r::text, sealed FROM root_keys r`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var text string
		var sealed []byte
		if err := rows.Scan(&text, &sealed); err != nil {
			t.Fatal(err)
		}
		n++
		for _, k := range ka.Keys() {
			secret, _ := base64.StdEncoding.DecodeString(k.ExportSecret())
			for _, form := range []string{k.ExportSecret(), hex.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret)} {
				if strings.Contains(text, form) {
					t.Fatalf("row %s holds key %s's secret", text, k.ID())
				}
			}
			if bytes.Contains(sealed, secret) {
				t.Fatalf("sealed column holds key %s's secret", k.ID())
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
}

// TestKeysWrongKEK: a host with another key-encryption key cannot load the
// keys, nor add one sealed under its own.
func TestKeysWrongKEK(t *testing.T) {
	ctx := context.Background()
	a, b, _, _, _ := twoHosts(t)
	wrong := b.KeyBackend(testKEK(t))
	_, err := macaroon.NewKeyStore(ctx, wrong)
	if !errors.Is(err, macaroon.ErrWrongKEK) || !strings.Contains(err.Error(), "key-encryption key does not open the stored keys") {
		t.Fatalf("NewKeyStore with another key-encryption key = %v, want ErrWrongKEK", err)
	}
	head, _ := a.Head(ctx)
	k, err := macaroon.NewKey("20260101-deadbeef", macaroon.StateCurrent, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.Add(ctx, k); !errors.Is(err, macaroon.ErrWrongKEK) {
		t.Fatalf("Add under another key-encryption key = %v, want ErrWrongKEK", err)
	}
	var n int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM root_keys`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows (%v), want 1", n, err)
	}
	if changes, _ := a.Changes(ctx, head.Seq, 10); len(changes) != 0 {
		t.Fatalf("a refused add appended %+v", changes)
	}
}

// TestKeysMovedBetweenDirectoryAndDatabase: Export from a directory store
// and Import into the database (and back) carry a key that verifies the
// same tokens.
func TestKeysMovedBetweenDirectoryAndDatabase(t *testing.T) {
	ctx := context.Background()
	_, _, ka, _, _ := twoHosts(t)
	dir, _, err := macaroon.InitKeyStore(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	m, err := macaroon.NewMinter(dir, "loc")
	if err != nil {
		t.Fatal(err)
	}
	minted, err := m.Mint(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := dir.Current()
	secret, err := dir.Export(old.ID())
	if err != nil {
		t.Fatal(err)
	}
	moved, err := ka.ImportContext(ctx, old.ID(), secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := macaroon.Parse(minted.Token, macaroon.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := ka.Key(moved.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(tok); err != nil {
		t.Fatalf("a token minted under the directory key does not verify under the moved key: %v", err)
	}
	cur, _ := ka.Current()
	back, err := ka.Export(cur.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Import(cur.ID(), back); err != nil {
		t.Fatal(err)
	}
	if got, _ := dir.Export(cur.ID()); got != back {
		t.Fatal("the key moved back differs")
	}
}
