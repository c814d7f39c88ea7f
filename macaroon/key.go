package macaroon

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// KeyState is the life-cycle state of a root key.
type KeyState string

// Key states. Exactly one key of a store is current.
const (
	// StateCurrent keys mint and verify.
	StateCurrent KeyState = "current"
	// StateVerifyOnly keys verify tokens minted before a rotation.
	StateVerifyOnly KeyState = "verify-only"
	// StateRetired keys verify nothing; they are kept so their ids are
	// never reused and so a token under one fails with a clear reason.
	StateRetired KeyState = "retired"
)

// Valid reports whether s is a known state.
func (s KeyState) Valid() bool {
	return s == StateCurrent || s == StateVerifyOnly || s == StateRetired
}

// SecretLen is the length of a root key secret.
const SecretLen = 32

// ErrBadSecret means a key secret is not 32 bytes in standard padded base64.
var ErrBadSecret = errors.New("key secret must be 32 bytes in standard padded base64 (44 characters)")

// A Key is a root key: its id, state, creation time and 32-byte secret. The
// secret never appears in String, fmt or slog output. A Key is immutable.
type Key struct {
	id      string
	created time.Time
	state   KeyState
	secret  [SecretLen]byte

	innerState, outerState []byte // see chain.go
}

// NewKey returns a key with the given id, state and creation time and a
// secret read from r (crypto/rand when r is nil).
func NewKey(id string, state KeyState, created time.Time, r io.Reader) (*Key, error) {
	if r == nil {
		r = rand.Reader
	}
	var secret [SecretLen]byte
	if _, err := io.ReadFull(r, secret[:]); err != nil {
		return nil, fmt.Errorf("key secret: %w", err)
	}
	return newKey(id, state, created, secret)
}

// KeyFromSecret returns a key with the given id, state and creation time and
// the secret written as standard padded base64 (44 characters), the form
// Key.ExportSecret writes and fatcat's AUTH_SECRET_KEY uses.
func KeyFromSecret(id string, state KeyState, created time.Time, b64 string) (*Key, error) {
	secret, err := decodeSecret(b64)
	if err != nil {
		return nil, err
	}
	return newKey(id, state, created, secret)
}

func decodeSecret(b64 string) ([SecretLen]byte, error) {
	var secret [SecretLen]byte
	if len(b64) != base64.StdEncoding.EncodedLen(SecretLen) {
		return secret, ErrBadSecret
	}
	b, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(b) != SecretLen {
		return secret, ErrBadSecret
	}
	copy(secret[:], b)
	return secret, nil
}

func newKey(id string, state KeyState, created time.Time, secret [SecretLen]byte) (*Key, error) {
	if !ValidKeyID(id) {
		return nil, fmt.Errorf("invalid key id %q: want [A-Za-z0-9][A-Za-z0-9._-]{0,63}", id)
	}
	if !state.Valid() {
		return nil, fmt.Errorf("invalid key state %q", state)
	}
	k := &Key{id: id, created: created.UTC(), state: state, secret: secret}
	derived := deriveKey(secret[:])
	k.innerState, k.outerState = padStates(&derived)
	return k, nil
}

// withState returns a copy of k in state s.
func (k *Key) withState(s KeyState) *Key {
	c := *k
	c.state = s
	return &c
}

// ID returns the key id.
func (k *Key) ID() string { return k.id }

// Created returns when the key was made.
func (k *Key) Created() time.Time { return k.created }

// State returns the key's state.
func (k *Key) State() KeyState { return k.state }

// ExportSecret returns the secret as standard padded base64 (44 characters).
// Only commands that exist to print a key should call it.
func (k *Key) ExportSecret() string { return base64.StdEncoding.EncodeToString(k.secret[:]) }

// String names the key without its secret.
func (k *Key) String() string { return fmt.Sprintf("key %s (%s)", k.id, k.state) }

// GoString names the key without its secret, for %#v.
func (k *Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer without the secret.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.id), slog.String("state", string(k.state)))
}
