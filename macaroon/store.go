package macaroon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
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

// A KeyStore holds a set of root keys in memory, kept in a KeyBackend: a
// directory of key files (OpenKeyStore, InitKeyStore) or a database shared
// by many hosts (NewKeyStore with epoch/postgres's backend).
//
// Key lookups take no lock and do no I/O. Changes (Rotate, Retire, Import)
// are made in the backend, which decides atomically which key is current,
// and then the whole set is read back from it and published. Reload picks
// up changes made by another process or host. KeyStore also implements
// bakery.RootKeyStore.
type KeyStore struct {
	backend KeyBackend
	now     func() time.Time
	rand    io.Reader

	mu   sync.Mutex // serialises changes and reloads
	keys atomic.Pointer[keySet]
}

type keySet struct {
	byID    map[string]*Key
	current *Key
}

// newKeySet indexes keys. Several current keys (a rotation cut off between
// its two writes in a directory) resolve to the newest; the older ones only
// verify.
func newKeySet(keys []*Key) *keySet {
	set := &keySet{byID: make(map[string]*Key, len(keys))}
	var currents []*Key
	for _, k := range keys {
		set.byID[k.id] = k
		if k.state == StateCurrent {
			currents = append(currents, k)
		}
	}
	slices.SortFunc(currents, func(a, b *Key) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for i, k := range currents {
		if i < len(currents)-1 {
			set.byID[k.id] = k.withState(StateVerifyOnly)
		} else {
			set.current = k
		}
	}
	return set
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

// NewKeyStore loads the keys backend holds and returns a store over them.
func NewKeyStore(ctx context.Context, backend KeyBackend, opts ...StoreOption) (*KeyStore, error) {
	s := &KeyStore{backend: backend, now: time.Now, rand: rand.Reader}
	for _, o := range opts {
		o(s)
	}
	if err := s.ReloadContext(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenKeyStore loads the key store in dir, which must exist.
func OpenKeyStore(dir string, opts ...StoreOption) (*KeyStore, error) {
	return NewKeyStore(context.Background(), NewDirBackend(dir), opts...)
}

// InitKeyStore opens the key store in dir, creating the directory (0700)
// and a first current key when they do not exist. created reports whether it
// made a key.
func InitKeyStore(dir string, opts ...StoreOption) (s *KeyStore, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("key store: %w", err)
	}
	ctx := context.Background()
	s, err = NewKeyStore(ctx, NewDirBackend(dir), opts...)
	if err != nil {
		return nil, false, err
	}
	created, err = s.Init(ctx)
	if err != nil {
		return nil, false, err
	}
	return s, created, nil
}

// Init makes a first current key when the store holds no key at all (not
// even a retired one); created reports whether it did.
func (s *KeyStore) Init(ctx context.Context) (created bool, err error) {
	if len(s.keys.Load().byID) > 0 {
		return false, nil
	}
	if _, err := s.RotateContext(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Backend returns where the store keeps its keys.
func (s *KeyStore) Backend() KeyBackend { return s.backend }

// Dir returns the store's directory, or "" when its keys are not kept in
// a directory.
func (s *KeyStore) Dir() string {
	if d, ok := s.backend.(*DirBackend); ok {
		return d.dir
	}
	return ""
}

// where names the backend in messages.
func (s *KeyStore) where() string {
	if st, ok := s.backend.(fmt.Stringer); ok {
		return st.String()
	}
	return fmt.Sprintf("%T", s.backend)
}

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
	reload := s.Reloader(log)
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		case <-tick:
		}
		_ = reload(ctx) // a failure is logged; the next tick tries again
	}
}

// Reloader returns a function that reloads the store and logs the outcome
// as KeepLoaded does: a failure (keeping the loaded keys) at error level,
// a change of the keys' ids or states at info level, and returns the
// failure. It suits epoch.WithKeysChanged, so that a rotation made on
// another host reaches this one through the change log (a failed reload is
// tried again at the follower's next poll).
func (s *KeyStore) Reloader(log *slog.Logger) func(ctx context.Context) error {
	ids := func() string {
		var out []string
		for _, k := range s.Keys() {
			out = append(out, k.ID()+"="+string(k.State()))
		}
		return strings.Join(out, " ")
	}
	return func(ctx context.Context) error {
		before := ids()
		if err := s.ReloadContext(ctx); err != nil {
			log.Error("reloading keys failed; keeping the loaded ones", "keys", s.where(), "err", err)
			return err
		}
		if after := ids(); after != before {
			log.Info("keys reloaded", "keys", after)
		}
		return nil
	}
}

// Reload reads every key from the backend again.
func (s *KeyStore) Reload() error { return s.ReloadContext(context.Background()) }

// ReloadContext reads every key from the backend again. On failure the
// loaded keys stay.
func (s *KeyStore) ReloadContext(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload(ctx)
}

func (s *KeyStore) reload(ctx context.Context) error {
	keys, err := s.backend.Load(ctx)
	if err != nil {
		return err
	}
	s.keys.Store(newKeySet(keys))
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
	return nil, fmt.Errorf("%w in %s", ErrNoCurrentKey, s.where())
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
func (s *KeyStore) Rotate() (*Key, error) { return s.RotateContext(context.Background()) }

// RotateContext is Rotate with a context for the backend. When another host
// rotates at the same moment, the backend keeps one of the two new keys
// current and the other verify-only; the key returned is as the backend
// left it.
func (s *KeyStore) RotateContext(ctx context.Context) (*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	id, err := s.newKeyID(now)
	if err != nil {
		return nil, err
	}
	if s.keys.Load().byID[id] != nil {
		return nil, fmt.Errorf("%w: %s (try again)", ErrKeyExists, id)
	}
	k, err := NewKey(id, StateCurrent, now, s.rand)
	if err != nil {
		return nil, err
	}
	if err := s.backend.Add(ctx, k); err != nil {
		return nil, err
	}
	return s.readBack(ctx, k)
}

// readBack reloads the set after a change to the backend and returns k as
// the backend now holds it. The change is made whatever happens here.
func (s *KeyStore) readBack(ctx context.Context, k *Key) (*Key, error) {
	if err := s.reload(ctx); err != nil {
		return nil, fmt.Errorf("key %s saved, but reading the keys back failed: %w", k.id, err)
	}
	if got := s.keys.Load().byID[k.id]; got != nil {
		return got, nil
	}
	return nil, fmt.Errorf("key %s saved, but the backend does not return it: %w", k.id, ErrUnknownKey)
}

// Retire retires a verify-only key: tokens under it stop verifying. The
// current key cannot be retired (ErrCurrentKey); rotate first.
func (s *KeyStore) Retire(id string) (*Key, error) {
	return s.RetireContext(context.Background(), id)
}

// RetireContext is Retire with a context for the backend.
func (s *KeyStore) RetireContext(ctx context.Context, id string) (*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ValidKeyID(id) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	if err := s.backend.Retire(ctx, id); err != nil {
		return nil, err
	}
	return s.readBack(ctx, &Key{id: id})
}

// Import adds a verify-only key with the given id and secret (standard padded
// base64, 44 characters), such as a key from another deployment — fatcat's
// AUTH_KEY_IDENT and AUTH_SECRET_KEY — or one exported from another key
// store. It refuses a malformed secret and an id that exists.
func (s *KeyStore) Import(id, secretB64 string) (*Key, error) {
	return s.ImportContext(context.Background(), id, secretB64)
}

// ImportContext is Import with a context for the backend.
func (s *KeyStore) ImportContext(ctx context.Context, id, secretB64 string) (*Key, error) {
	k, err := KeyFromSecret(id, StateVerifyOnly, s.now(), secretB64)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys.Load().byID[id] != nil {
		return nil, fmt.Errorf("%w: %s", ErrKeyExists, id)
	}
	if err := s.backend.Add(ctx, k); err != nil {
		return nil, err
	}
	return s.readBack(ctx, k)
}

// Export returns the secret of key id as standard padded base64.
func (s *KeyStore) Export(id string) (string, error) {
	k := s.keys.Load().byID[id]
	if k == nil {
		return "", fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	return k.ExportSecret(), nil
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
