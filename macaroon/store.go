package macaroon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/macaroon-bakery.v2/bakery"
)

// Key store errors.
var (
	// ErrUnknownKey means no key has the requested id (or the id is not a
	// well-formed key id).
	ErrUnknownKey = errors.New("unknown key")
	// ErrRetiredKey means the key exists but is retired.
	ErrRetiredKey = errors.New("key retired")
	// ErrNoCurrentKey means the store has no current key to mint with.
	ErrNoCurrentKey = errors.New("no current key")
	// ErrKeyExists means a key with that id already exists.
	ErrKeyExists = errors.New("key id already exists")
	// ErrInsecure means key material on disk is readable or writable by
	// others than its owner.
	ErrInsecure = errors.New("insecure key store permissions")
)

const keySuffix = ".key"

// A KeyStore is a directory of root keys, one file per key, each holding
// the key's id, creation time, state and secret. Files are mode 0600 and the
// directory 0700; opening refuses key files readable by group or others and
// a directory writable by them.
//
// All keys are held in memory: Key lookups take no lock and touch no disk.
// Changes (Rotate, Retire, Import) write the directory first and then
// publish a new in-memory set. Reload picks up changes made by another
// process. KeyStore also implements bakery.RootKeyStore.
type KeyStore struct {
	dir  string
	now  func() time.Time
	rand io.Reader

	mu   sync.Mutex // serialises changes
	keys atomic.Pointer[keySet]
}

type keySet struct {
	byID    map[string]*Key
	current *Key
}

// A StoreOption configures a KeyStore.
type StoreOption func(*KeyStore)

// WithStoreClock sets the clock used to stamp new keys (default time.Now).
func WithStoreClock(now func() time.Time) StoreOption {
	return func(s *KeyStore) { s.now = now }
}

// WithStoreRandom sets the source of key secrets and ids (default
// crypto/rand). Only tests should need it.
func WithStoreRandom(r io.Reader) StoreOption {
	return func(s *KeyStore) { s.rand = r }
}

func newStore(dir string, opts []StoreOption) *KeyStore {
	s := &KeyStore{dir: dir, now: time.Now, rand: rand.Reader}
	for _, o := range opts {
		o(s)
	}
	return s
}

// OpenKeyStore loads the key store in dir, which must exist.
func OpenKeyStore(dir string, opts ...StoreOption) (*KeyStore, error) {
	s := newStore(dir, opts)
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// InitKeyStore opens the key store in dir, creating the directory (0700)
// and a first current key when they do not exist. created reports whether it
// made a key.
func InitKeyStore(dir string, opts ...StoreOption) (s *KeyStore, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("key store: %w", err)
	}
	s = newStore(dir, opts)
	if err := s.Reload(); err != nil {
		return nil, false, err
	}
	if len(s.keys.Load().byID) > 0 {
		return s, false, nil
	}
	if _, err := s.Rotate(); err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// Dir returns the store's directory.
func (s *KeyStore) Dir() string { return s.dir }

// KeepLoaded reloads the store until ctx ends: every interval (none when
// interval is 0) and whenever trigger receives (for example SIGHUP through
// signal.Notify; nil for none), so a rotation or retirement made by
// "amaretti keys" reaches a running process. A failed reload keeps the
// keys already loaded and is logged, as is every change.
func (s *KeyStore) KeepLoaded(ctx context.Context, interval time.Duration, trigger <-chan os.Signal, log *slog.Logger) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	ids := func() string {
		var out []string
		for _, k := range s.Keys() {
			out = append(out, k.ID()+"="+string(k.State()))
		}
		return strings.Join(out, " ")
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		case <-tick:
		}
		before := ids()
		if err := s.Reload(); err != nil {
			log.Error("reloading keys failed; keeping the loaded ones", "dir", s.dir, "err", err)
			continue
		}
		if after := ids(); after != before {
			log.Info("keys reloaded", "keys", after)
		}
	}
}

// Reload reads every key file in the directory again.
func (s *KeyStore) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, err := loadDir(s.dir)
	if err != nil {
		return err
	}
	s.keys.Store(set)
	return nil
}

func loadDir(dir string) (*keySet, error) {
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
	set := &keySet{byID: make(map[string]*Key)}
	var currents []*Key
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
		set.byID[k.id] = k
		if k.state == StateCurrent {
			currents = append(currents, k)
		}
	}
	// A rotation interrupted between its two writes leaves two current
	// keys; the newer one is current and the older only verifies.
	slices.SortFunc(currents, func(a, b *Key) int { return a.created.Compare(b.created) })
	for i, k := range currents {
		if i < len(currents)-1 {
			set.byID[k.id] = k.withState(StateVerifyOnly)
		} else {
			set.current = k
		}
	}
	return set, nil
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

// writeKey writes k's file atomically (temporary file, fsync, rename).
func (s *KeyStore) writeKey(k *Key) error {
	data, err := json.MarshalIndent(keyFile{ID: k.id, Created: k.created, State: k.state, Secret: k.ExportSecret()}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
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
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, k.id+keySuffix)); err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	return syncDir(s.dir)
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

// Key returns the key with the given id if it may verify (current or
// verify-only). It fails with ErrUnknownKey or ErrRetiredKey. It takes no lock
// and does no I/O.
func (s *KeyStore) Key(id string) (*Key, error) {
	k := s.keys.Load().byID[id]
	switch {
	case k == nil:
		return nil, ErrUnknownKey
	case k.state == StateRetired:
		return nil, ErrRetiredKey
	}
	return k, nil
}

// Current returns the key new tokens are minted with.
func (s *KeyStore) Current() (*Key, error) {
	if k := s.keys.Load().current; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w in %s", ErrNoCurrentKey, s.dir)
}

// Keys returns every key, retired ones included, oldest first.
func (s *KeyStore) Keys() []*Key {
	set := s.keys.Load()
	out := make([]*Key, 0, len(set.byID))
	for _, k := range set.byID {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *Key) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// newKeyID returns an id of the form YYYYMMDD-xxxxxxxx.
func (s *KeyStore) newKeyID(now time.Time) (string, error) {
	var b [4]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	return now.UTC().Format("20060102") + "-" + hex.EncodeToString(b[:]), nil
}

// Rotate makes a new current key; the previous current key becomes
// verify-only, so tokens minted under it keep verifying until it is retired.
func (s *KeyStore) Rotate() (*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.keys.Load()
	now := s.now().UTC()
	id, err := s.newKeyID(now)
	if err != nil {
		return nil, err
	}
	if set.byID[id] != nil {
		return nil, fmt.Errorf("%w: %s (try again)", ErrKeyExists, id)
	}
	k, err := NewKey(id, StateCurrent, now, s.rand)
	if err != nil {
		return nil, err
	}
	// The new key is written first: a crash between the two writes leaves
	// two current keys, which loading resolves in favour of the newer.
	if err := s.writeKey(k); err != nil {
		return nil, err
	}
	next := set.clone()
	next.byID[k.id] = k
	if old := set.current; old != nil {
		demoted := old.withState(StateVerifyOnly)
		if err := s.writeKey(demoted); err != nil {
			return nil, err
		}
		next.byID[old.id] = demoted
	}
	next.current = k
	s.keys.Store(next)
	return k, nil
}

// Retire retires a verify-only key: tokens under it stop verifying. The
// current key cannot be retired; rotate first.
func (s *KeyStore) Retire(id string) (*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.keys.Load()
	k := set.byID[id]
	switch {
	case k == nil:
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
	case k == set.current:
		return nil, fmt.Errorf("key %s is current; rotate before retiring it", id)
	case k.state == StateRetired:
		return k, nil
	}
	r := k.withState(StateRetired)
	if err := s.writeKey(r); err != nil {
		return nil, err
	}
	next := set.clone()
	next.byID[id] = r
	s.keys.Store(next)
	return r, nil
}

// Import adds a verify-only key with the given id and secret (standard padded
// base64, 44 characters), such as a key from another deployment — fatcat's
// AUTH_KEY_IDENT and AUTH_SECRET_KEY. It refuses a malformed secret and an
// id that exists.
func (s *KeyStore) Import(id, secretB64 string) (*Key, error) {
	k, err := KeyFromSecret(id, StateVerifyOnly, s.now(), secretB64)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.keys.Load()
	if set.byID[id] != nil {
		return nil, fmt.Errorf("%w: %s", ErrKeyExists, id)
	}
	if _, err := os.Stat(filepath.Join(s.dir, id+keySuffix)); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (file present on disk)", ErrKeyExists, id)
	}
	if err := s.writeKey(k); err != nil {
		return nil, err
	}
	next := set.clone()
	next.byID[id] = k
	s.keys.Store(next)
	return k, nil
}

// Export returns the secret of key id as standard padded base64.
func (s *KeyStore) Export(id string) (string, error) {
	k := s.keys.Load().byID[id]
	if k == nil {
		return "", fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	return k.ExportSecret(), nil
}

func (set *keySet) clone() *keySet {
	c := &keySet{byID: make(map[string]*Key, len(set.byID)+1), current: set.current}
	for id, k := range set.byID {
		c.byID[id] = k
	}
	return c
}

// Get implements bakery.RootKeyStore: the secret of a key that may verify,
// or bakery.ErrNotFound.
func (s *KeyStore) Get(_ context.Context, id []byte) ([]byte, error) {
	k, err := s.Key(string(id))
	if err != nil {
		return nil, bakery.ErrNotFound
	}
	return append([]byte(nil), k.secret[:]...), nil
}

// RootKey implements bakery.RootKeyStore: the current key's secret and id.
func (s *KeyStore) RootKey(context.Context) (rootKey, id []byte, err error) {
	k, err := s.Current()
	if err != nil {
		return nil, nil, err
	}
	return append([]byte(nil), k.secret[:]...), []byte(k.id), nil
}

var _ bakery.RootKeyStore = (*KeyStore)(nil)
