package macaroon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/macaroon-bakery.v2/bakery"
	"gopkg.in/macaroon-bakery.v2/bakery/checkers"
	mv2 "gopkg.in/macaroon.v2"
)

func initStore(t *testing.T) (*KeyStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	s, created, err := InitKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("InitKeyStore on a new directory made no key")
	}
	return s, dir
}

func TestInitKeyStore(t *testing.T) {
	s, dir := initStore(t)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %04o, want 0700", fi.Mode().Perm())
	}
	cur, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}
	kf, err := os.Stat(filepath.Join(dir, cur.ID()+".key"))
	if err != nil {
		t.Fatal(err)
	}
	if kf.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", kf.Mode().Perm())
	}
	again, created, err := InitKeyStore(dir)
	if err != nil || created {
		t.Fatalf("second InitKeyStore: created=%v err=%v", created, err)
	}
	if c2, _ := again.Current(); c2.ID() != cur.ID() || c2.ExportSecret() != cur.ExportSecret() {
		t.Error("reopened store has another current key")
	}
}

func TestKeyStorePermissions(t *testing.T) {
	s, dir := initStore(t)
	cur, _ := s.Current()
	path := filepath.Join(dir, cur.ID()+".key")
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660} {
		t.Run(fmt.Sprintf("file %04o", mode), func(t *testing.T) {
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(path, 0o600)
			_, err := OpenKeyStore(dir)
			if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("OpenKeyStore = %v, want ErrInsecure with a hint", err)
			}
		})
	}
	t.Run("directory writable by others", func(t *testing.T) {
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		if _, err := OpenKeyStore(dir); !errors.Is(err, ErrInsecure) {
			t.Fatalf("OpenKeyStore = %v, want ErrInsecure", err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		if _, err := OpenKeyStore(filepath.Join(dir, "nope")); err == nil {
			t.Fatal("opened a missing directory")
		}
	})
	t.Run("file name and id disagree", func(t *testing.T) {
		data, _ := os.ReadFile(path)
		other := filepath.Join(dir, "other.key")
		if err := os.WriteFile(other, data, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(other)
		if _, err := OpenKeyStore(dir); err == nil {
			t.Fatal("loaded a key file named for another id")
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.key")
		os.WriteFile(bad, []byte(`{"id":"bad","created":"2026-01-01T00:00:00Z","state":"current","secret":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","extra":1}`), 0o600)
		defer os.Remove(bad)
		if _, err := OpenKeyStore(dir); err == nil {
			t.Fatal("loaded a key file with an unknown field")
		}
	})
}

func TestRotateRetire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), "keys")
	s, _, err := InitKeyStore(dir, WithStoreClock(func() time.Time { now = now.Add(time.Hour); return now }))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.Current()
	m, _ := NewMinter(s, "loc")
	old, err := m.Mint(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Current(); cur.ID() != second.ID() {
		t.Fatal("rotation did not make the new key current")
	}
	k, err := s.Key(first.ID())
	if err != nil || k.State() != StateVerifyOnly {
		t.Fatalf("old key after rotation: %v, %v", k, err)
	}
	tok, _ := Parse(old.Token, Limits{})
	if err := k.Verify(tok); err != nil {
		t.Fatalf("token under the verify-only key: %v", err)
	}
	if _, err := s.Retire(second.ID()); err == nil {
		t.Fatal("retired the current key")
	}
	if _, err := s.Retire(first.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(first.ID()); !errors.Is(err, ErrRetiredKey) {
		t.Fatalf("Key(retired) = %v, want ErrRetiredKey", err)
	}
	if _, err := s.Key("nope"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Key(unknown) = %v, want ErrUnknownKey", err)
	}
	if _, err := s.Key("../" + second.ID()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Key(path) = %v, want ErrUnknownKey", err)
	}

	// Everything survives a reload from disk.
	re, err := OpenKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, k := range re.Keys() {
		states = append(states, k.ID()+"="+string(k.State()))
	}
	if want := first.ID() + "=retired " + second.ID() + "=current"; strings.Join(states, " ") != want {
		t.Errorf("after reload: %s, want %s", strings.Join(states, " "), want)
	}
}

func TestTwoCurrentKeysOnDisk(t *testing.T) {
	s, dir := initStore(t)
	first, _ := s.Current()
	// Simulate a rotation cut off between its two writes.
	newer, err := NewKey("zz-newer", StateCurrent, first.Created().Add(time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeKeyFile(dir, newer); err != nil {
		t.Fatal(err)
	}
	re, err := OpenKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := re.Current()
	k, _ := re.Key(first.ID())
	if cur.ID() != "zz-newer" || k.State() != StateVerifyOnly {
		t.Errorf("current %s, older key %s", cur.ID(), k.State())
	}
}

func TestImportExport(t *testing.T) {
	s, _ := initStore(t)
	const fatcat = "ZHVtbXkta2V5LWEtb25lLXR3by10aHJlZS1hLWxhISE=" // base64("dummy-key-a-one-two-three-a-la!!")
	k, err := s.Import("dummy", fatcat)
	if err != nil {
		t.Fatal(err)
	}
	if k.State() != StateVerifyOnly {
		t.Errorf("imported key state %s", k.State())
	}
	got, err := s.Export("dummy")
	if err != nil || got != fatcat {
		t.Fatalf("Export = %q, %v", got, err)
	}
	bad := map[string]string{
		"existing id":           fatcat,
		"short":                 "ZHVtbXk=",
		"unpadded":              strings.TrimRight(fatcat, "="),
		"url alphabet 45 chars": fatcat + "=",
		"not base64":            strings.Repeat("!", 44),
		"33 bytes":              "ZHVtbXkta2V5LWEtb25lLXR3by10aHJlZS1hLWxhISEh",
	}
	for name, secret := range bad {
		id := "imp-" + strings.ReplaceAll(name, " ", "-")
		if name == "existing id" {
			id = "dummy"
		}
		if _, err := s.Import(id, secret); err == nil {
			t.Errorf("%s: import accepted", name)
		}
	}
	if _, err := s.Import("../x", fatcat); err == nil {
		t.Error("import accepted a key id with path characters")
	}
	if _, err := s.Export("nope"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Export(unknown) = %v", err)
	}
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	s, _ := initStore(t)
	k, _ := s.Current()
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "key", k)
	for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logged.String()} {
		if strings.Contains(out, k.ExportSecret()) || !strings.Contains(out, k.ID()) {
			t.Errorf("formatted key: %s", out)
		}
	}
}

// TestBakeryOven proves KeyStore satisfies bakery.RootKeyStore by minting
// and verifying through a bakery Oven.
func TestBakeryOven(t *testing.T) {
	s, _ := initStore(t)
	oven := bakery.NewOven(bakery.OvenParams{
		RootKeyStoreForOps: func([]bakery.Op) bakery.RootKeyStore { return s },
		Location:           "api.example.org",
	})
	ctx := context.Background()
	op := bakery.Op{Entity: "editor-tokens", Action: "read"}
	m, err := oven.NewMacaroon(ctx, bakery.LatestVersion, []checkers.Caveat{checkers.TimeBeforeCaveat(time.Now().Add(time.Hour))}, op)
	if err != nil {
		t.Fatal(err)
	}
	ops, conds, err := oven.VerifyMacaroon(ctx, mv2.Slice{m.M()})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0] != op || len(conds) != 1 || !strings.HasPrefix(conds[0], "time-before ") {
		t.Fatalf("ops %v, conditions %v", ops, conds)
	}
	// After rotation and retirement the bakery sees the key as gone.
	old, _ := s.Current()
	if _, err := s.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Retire(old.ID()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := oven.VerifyMacaroon(ctx, mv2.Slice{m.M()}); err == nil {
		t.Fatal("bakery verified a macaroon under a retired key")
	}
	if _, err := s.Get(ctx, []byte(old.ID())); !errors.Is(err, bakery.ErrNotFound) {
		t.Fatalf("Get(retired) = %v, want bakery.ErrNotFound", err)
	}
}

// TestKeepLoaded: a rotation made by another process reaches a running one
// on its trigger, and a broken directory keeps the loaded keys.
func TestKeepLoaded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	running, _, err := InitKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := running.Current()
	var logs bytes.Buffer
	trigger := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { running.KeepLoaded(ctx, 0, trigger, slog.New(slog.NewTextHandler(&logs, nil))); close(done) }()

	operator, err := OpenKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := operator.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := running.Current(); cur.ID() != before.ID() {
		t.Fatal("reloaded without a trigger")
	}
	trigger <- syscall.SIGHUP
	trigger <- syscall.SIGHUP // the first was taken once this one is received
	if cur, _ := running.Current(); cur.ID() != rotated.ID() {
		t.Fatalf("current key %s after the trigger, want %s", cur.ID(), rotated.ID())
	}
	if err := os.WriteFile(filepath.Join(dir, "broken"+keySuffix), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	trigger <- syscall.SIGHUP
	trigger <- syscall.SIGHUP
	if cur, _ := running.Current(); cur.ID() != rotated.ID() {
		t.Fatal("a failed reload dropped the loaded keys")
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "keys reloaded") || !strings.Contains(logs.String(), "reloading keys failed") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
