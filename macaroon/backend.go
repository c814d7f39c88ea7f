package macaroon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ErrCurrentKey means an operation refused to act on the current key (it
// cannot be retired; rotate first).
var ErrCurrentKey = errors.New("the current key cannot be retired (rotate before retiring it)")

// A KeyBackend is where a KeyStore keeps its keys: a directory (DirBackend)
// or a database shared by many hosts (epoch/postgres). The KeyStore holds
// every key in memory and asks its backend only on a change or a reload.
//
// Each method is atomic, also against other processes using the same
// backend: the backend, not the KeyStore, decides which key is current.
type KeyBackend interface {
	// Load returns every key, retired ones included. A backend may hold
	// more than one current key after a crash; the KeyStore resolves
	// them (the newest is current, the others verify only).
	Load(ctx context.Context) ([]*Key, error)
	// Add stores a new key. It fails with ErrKeyExists when the id is
	// taken. When k is current, every other current key becomes
	// verify-only in the same atomic step, so that two hosts rotating at
	// once leave exactly one current key.
	Add(ctx context.Context, k *Key) error
	// Retire retires the key id: nothing verifies under it any more. It
	// fails with ErrUnknownKey when there is no such key and with
	// ErrCurrentKey when it is current; a retired key stays retired
	// (no error).
	Retire(ctx context.Context, id string) error
}

const keySuffix = ".key"

// A DirBackend keeps keys in a directory, one file per key holding the key's
// id, creation time, state and secret. Files are mode 0600 and the
// directory 0700; loading refuses key files readable by group or others and
// a directory writable by them. Changes hold an exclusive flock on the
// directory, so two processes changing the same directory take turns.
type DirBackend struct {
	dir string
}

// NewDirBackend returns the backend of the key directory dir (which is
// neither read nor created here).
func NewDirBackend(dir string) *DirBackend { return &DirBackend{dir: dir} }

// Dir returns the backend's directory.
func (b *DirBackend) Dir() string { return b.dir }

// String names the backend for messages: its directory.
func (b *DirBackend) String() string { return b.dir }

// Load reads every key file in the directory.
func (b *DirBackend) Load(context.Context) ([]*Key, error) {
	return loadDir(b.dir)
}

// Add writes k's file. A new current key is written first and the older
// current keys demoted after: a crash between the writes leaves two current
// keys, which loading resolves in favour of the newer.
func (b *DirBackend) Add(_ context.Context, k *Key) error {
	unlock, err := b.lock()
	if err != nil {
		return err
	}
	defer unlock()
	keys, err := loadDir(b.dir)
	if err != nil {
		return err
	}
	for _, o := range keys {
		if o.id == k.id {
			return fmt.Errorf("%w: %s", ErrKeyExists, k.id)
		}
	}
	if _, err := os.Stat(filepath.Join(b.dir, k.id+keySuffix)); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s (file present on disk)", ErrKeyExists, k.id)
	}
	if err := writeKeyFile(b.dir, k); err != nil {
		return err
	}
	if k.state != StateCurrent {
		return nil
	}
	for _, o := range keys {
		if o.state == StateCurrent {
			if err := writeKeyFile(b.dir, o.withState(StateVerifyOnly)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Retire rewrites key id's file in the retired state.
func (b *DirBackend) Retire(_ context.Context, id string) error {
	unlock, err := b.lock()
	if err != nil {
		return err
	}
	defer unlock()
	keys, err := loadDir(b.dir)
	if err != nil {
		return err
	}
	set := newKeySet(keys)
	k := set.byID[id]
	switch {
	case k == nil:
		return fmt.Errorf("%w: %q", ErrUnknownKey, id)
	case k == set.current:
		return fmt.Errorf("key %s: %w", id, ErrCurrentKey)
	case k.state == StateRetired:
		return nil
	}
	return writeKeyFile(b.dir, k.withState(StateRetired))
}

// lock takes an exclusive flock on the directory until the returned
// function is called.
func (b *DirBackend) lock() (func(), error) {
	d, err := os.Open(b.dir)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		d.Close()
		return nil, fmt.Errorf("key store: locking %s: %w", b.dir, err)
	}
	return func() { d.Close() }, nil // closing releases the lock
}

func loadDir(dir string) ([]*Key, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("key store: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%w: key directory %s is writable by group or others (mode %04o); chmod 700 it", ErrInsecure, dir, fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	var keys []*Key
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, keySuffix) {
			continue
		}
		k, err := readKeyFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if k.id+keySuffix != name {
			return nil, fmt.Errorf("key store: %s holds key id %q; the file name must be the id plus %s", name, k.id, keySuffix)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// keyFile is the on-disk form of a key.
type keyFile struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	State   KeyState  `json:"state"`
	Secret  string    `json:"secret"`
}

func readKeyFile(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key store: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: key file %s is accessible by group or others (mode %04o); chmod 600 it", ErrInsecure, path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("key store: %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("key store: %s: trailing data", path)
	}
	k, err := KeyFromSecret(kf.ID, kf.State, kf.Created, kf.Secret)
	if err != nil {
		return nil, fmt.Errorf("key store: %s: %w", path, err)
	}
	return k, nil
}

// writeKeyFile writes k's file in dir atomically (temporary file, fsync,
// rename).
func writeKeyFile(dir string, k *Key) error {
	data, err := json.MarshalIndent(keyFile{ID: k.id, Created: k.created, State: k.state, Secret: k.ExportSecret()}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("key store: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("key store: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("key store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, k.id+keySuffix)); err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	return nil
}

var _ KeyBackend = (*DirBackend)(nil)
