package macaroon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newKEK(t *testing.T) (*KeyEncryptionKey, string) {
	t.Helper()
	text, err := NewKeyEncryptionKeyText(nil)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := ParseKeyEncryptionKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return kek, text
}

func TestParseKeyEncryptionKey(t *testing.T) {
	_, good := newKEK(t)
	tests := []struct {
		name, text string
		ok         bool
	}{
		{"fresh", good, true},
		{"white space around", " \n" + good + "\r\n\t", true},
		{"empty", "", false},
		{"blank", " \n", false},
		{"unpadded", strings.TrimRight(good, "="), false},
		{"url alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(good[:43]) + "-", false},
		{"not base64", strings.Repeat("!", 44), false},
		{"16 bytes", "AAECAwQFBgcICQoLDA0ODw==", false},
		{"48 bytes", strings.Repeat("A", 64), false},
		{"a root key secret, one character off", good[:42] + "!=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kek, err := ParseKeyEncryptionKey(tt.text)
			if tt.ok {
				if err != nil || kek == nil {
					t.Fatalf("ParseKeyEncryptionKey = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadKEK) {
				t.Fatalf("ParseKeyEncryptionKey = %v, want ErrBadKEK", err)
			}
			if trimmed := strings.TrimSpace(tt.text); len(trimmed) > 3 && strings.Contains(err.Error(), trimmed) {
				t.Errorf("error repeats the key material: %v", err)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	kek, text := newKEK(t)
	other, _ := newKEK(t)
	created := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	k, err := NewKey("20260102-abcdef01", StateCurrent, created, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := kek.SealKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := kek.SealKey(k); bytes.Equal(again, sealed) || bytes.Equal(again[1:13], sealed[1:13]) {
		t.Error("two seals of one key share a nonce")
	}
	if sealed[0] != 1 || len(sealed) != 1+12+SecretLen+16 {
		t.Errorf("sealed form: version %d, %d bytes", sealed[0], len(sealed))
	}
	if bytes.Contains(sealed, k.secret[:]) || bytes.Contains(sealed, []byte(k.ExportSecret())) {
		t.Fatal("sealed bytes hold the secret")
	}
	got, err := kek.OpenKey(k.ID(), StateVerifyOnly, created, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if got.ExportSecret() != k.ExportSecret() || got.ID() != k.ID() || got.State() != StateVerifyOnly || !got.Created().Equal(created) {
		t.Fatalf("opened %v created %v", got, got.Created())
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name   string
		kek    *KeyEncryptionKey
		id     string
		sealed []byte
		want   error
	}{
		{"wrong key-encryption key", other, k.ID(), sealed, ErrWrongKEK},
		{"moved to another id", kek, "20260102-abcdef02", sealed, ErrWrongKEK},
		{"altered", kek, k.ID(), tampered, ErrWrongKEK},
		{"truncated", kek, k.ID(), sealed[:20], ErrBadSealed},
		{"empty", kek, k.ID(), nil, ErrBadSealed},
		{"unknown version", kek, k.ID(), append([]byte{2}, sealed[1:]...), ErrBadSealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.kek.OpenKey(tt.id, StateCurrent, created, tt.sealed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenKey = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), k.ExportSecret()) || strings.Contains(err.Error(), text) {
				t.Errorf("error holds key material: %v", err)
			}
		})
	}
	t.Run("wrong key-encryption key says so", func(t *testing.T) {
		_, err := other.OpenKey(k.ID(), StateCurrent, created, sealed)
		if !strings.Contains(err.Error(), "key-encryption key does not open the stored keys") {
			t.Errorf("message: %v", err)
		}
	})
}

func TestKEKNeverPrints(t *testing.T) {
	kek, text := newKEK(t)
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("kek", "kek", kek)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", kek, kek, kek, kek), logged.String()} {
		if !strings.Contains(out, "redacted") {
			t.Errorf("formatted: %s", out)
		}
	}
	// The material (or any 8 characters of its text) is not in the
	// output; the AEAD's internals are not printed either.
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", kek, kek, kek), logged.String()} {
		for i := 0; i+8 <= len(text); i += 4 {
			if strings.Contains(out, text[i:i+8]) {
				t.Fatalf("output holds key material: %s", out)
			}
		}
	}
}

func TestKeyEncryptionKeyFile(t *testing.T) {
	dir := t.TempDir()
	_, text := newKEK(t)
	path := filepath.Join(dir, "kek")
	if err := WriteKeyEncryptionKeyFile(path, text); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("written with mode %04o, want 0600", fi.Mode().Perm())
	}
	if err := WriteKeyEncryptionKeyFile(path, text); !errors.Is(err, os.ErrExist) {
		t.Errorf("overwrote an existing file: %v", err)
	}
	tests := []struct {
		name string
		mode os.FileMode
		want error
	}{
		{"0600", 0o600, nil},
		{"0400", 0o400, nil},
		{"group-readable", 0o640, ErrInsecure},
		{"other-readable", 0o604, ErrInsecure},
		{"world", 0o666, ErrInsecure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := ReadKeyEncryptionKeyFile(path)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ReadKeyEncryptionKeyFile = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("no hint: %v", err)
			}
		})
	}
	t.Run("bad content", func(t *testing.T) {
		bad := filepath.Join(dir, "bad")
		if err := os.WriteFile(bad, []byte("not-a-key-at-all\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadKeyEncryptionKeyFile(bad)
		if !errors.Is(err, ErrBadKEK) || strings.Contains(err.Error(), "not-a-key") {
			t.Fatalf("ReadKeyEncryptionKeyFile = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := ReadKeyEncryptionKeyFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("ReadKeyEncryptionKeyFile = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := ReadKeyEncryptionKeyFile(dir); err == nil {
			t.Fatal("read a directory")
		}
	})
}
