package macaroon

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Key-encryption key errors.
var (
	// ErrWrongKEK means the key-encryption key does not open a sealed
	// key: it is not the one the keys were sealed with (or the sealed
	// bytes were altered, or moved to another key id).
	ErrWrongKEK = errors.New("the key-encryption key does not open the stored keys (is it the one they were sealed with?)")
	// ErrBadKEK means a key-encryption key is not 32 bytes in standard
	// padded base64.
	ErrBadKEK = errors.New("key-encryption key must be 32 random bytes in standard padded base64 (44 characters; \"amaretti keys new-kek\" makes one)")
	// ErrBadSealed means sealed key bytes are malformed (too short, or of
	// an unknown version).
	ErrBadSealed = errors.New("malformed sealed key")
)

// KEKLen is the length of a key-encryption key.
const KEKLen = 32

// sealVersion is the first byte of a sealed secret: AES-256-GCM, a 12-byte
// random nonce, the key id as additional data.
const sealVersion byte = 1

// A KeyEncryptionKey seals root key secrets for keeping them where other
// parties can read them (a database shared by many hosts): AES-256-GCM with
// a random 96-bit nonce per seal, and the key id as additional data, so a
// sealed secret opens only under its own id. Each host reads it from a file
// or an environment variable; it is never stored next to the keys it seals.
// Its material never appears in String, fmt or slog output.
type KeyEncryptionKey struct {
	aead cipher.AEAD
}

// NewKeyEncryptionKeyText returns a fresh key-encryption key from r
// (crypto/rand when nil), as standard padded base64, the form
// ParseKeyEncryptionKey reads.
func NewKeyEncryptionKeyText(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [KEKLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("key-encryption key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

// ParseKeyEncryptionKey reads a key-encryption key written as standard
// padded base64 of 32 bytes; surrounding white space is ignored. Its error
// never contains the text.
func ParseKeyEncryptionKey(text string) (*KeyEncryptionKey, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("%w: it is empty", ErrBadKEK)
	}
	if len(text) != base64.StdEncoding.EncodedLen(KEKLen) {
		return nil, fmt.Errorf("%w: it has %d characters", ErrBadKEK, len(text))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil || len(b) != KEKLen {
		return nil, fmt.Errorf("%w: it is not valid base64", ErrBadKEK)
	}
	block, err := aes.NewCipher(b)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return &KeyEncryptionKey{aead: aead}, nil
}

// ReadKeyEncryptionKeyFile reads a key-encryption key from a file, which
// must be a regular file accessible by its owner only (mode 0600 or
// stricter; ErrInsecure otherwise).
func ReadKeyEncryptionKeyFile(path string) (*KeyEncryptionKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key-encryption key file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: key-encryption key file %s is accessible by group or others (mode %04o); chmod 600 it", ErrInsecure, path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file: %w", err)
	}
	kek, err := ParseKeyEncryptionKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file %s: %w", path, err)
	}
	return kek, nil
}

// WriteKeyEncryptionKeyFile writes text (from NewKeyEncryptionKeyText) to a
// new file at path, mode 0600. It refuses to replace an existing file.
func WriteKeyEncryptionKeyFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key-encryption key file: %w", err)
	}
	if _, err := f.WriteString(text + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("key-encryption key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("key-encryption key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("key-encryption key file: %w", err)
	}
	return nil
}

// additionalData binds a sealed secret to its version and key id.
func additionalData(id string) []byte {
	return append([]byte{sealVersion}, id...)
}

// SealKey returns k's secret sealed: a version byte, a random 12-byte
// nonce, and the AES-256-GCM ciphertext and tag, with k's id as additional
// data.
func (kek *KeyEncryptionKey) SealKey(k *Key) ([]byte, error) {
	nonce := make([]byte, kek.aead.NonceSize(), 1+kek.aead.NonceSize()+SecretLen+kek.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("sealing key %s: %w", k.id, err)
	}
	out := append([]byte{sealVersion}, nonce...)
	return kek.aead.Seal(out, nonce, k.secret[:], additionalData(k.id)), nil
}

// OpenKey opens a secret SealKey sealed for key id and returns the key with
// the given state and creation time. A wrong key-encryption key, altered
// bytes or another id fail with ErrWrongKEK.
func (kek *KeyEncryptionKey) OpenKey(id string, state KeyState, created time.Time, sealed []byte) (*Key, error) {
	ns := kek.aead.NonceSize()
	if len(sealed) < 1+ns+kek.aead.Overhead() {
		return nil, fmt.Errorf("key %s: %w (%d bytes)", id, ErrBadSealed, len(sealed))
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("key %s: %w (version %d; this program reads version %d)", id, ErrBadSealed, sealed[0], sealVersion)
	}
	secret, err := kek.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], additionalData(id))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", id, ErrWrongKEK)
	}
	if len(secret) != SecretLen {
		return nil, fmt.Errorf("key %s: %w (secret of %d bytes)", id, ErrBadSealed, len(secret))
	}
	var s [SecretLen]byte
	copy(s[:], secret)
	clear(secret)
	return newKey(id, state, created, s)
}

// String names the key-encryption key without its material.
func (kek *KeyEncryptionKey) String() string { return "key-encryption key (redacted)" }

// GoString names the key-encryption key without its material, for %#v.
func (kek *KeyEncryptionKey) GoString() string { return kek.String() }

// LogValue implements slog.LogValuer without the material.
func (kek *KeyEncryptionKey) LogValue() slog.Value { return slog.StringValue(kek.String()) }
