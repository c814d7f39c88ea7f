package verifier_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/internal/testvectors"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// The fixture every verifier test shares, and the bad-input corpus assumes:
// the golden keys, five editors, and a clock standing at fixNow.
var fixNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	goldenKeyID     = "golden-2026"
	goldenSecret    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31
	fatcatKeyID     = "dummy"
	fatcatSecret    = "ZHVtbXkta2V5LWEtb25lLXR3by10aHJlZS1hLWxhISE=" // "dummy-key-a-one-two-three-a-la!!"
	retiredKeyID    = "retired-2025"
	retiredSecret   = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=" // bytes 32..63
	alice           = "aaaaaaaaaaaaaaaaaaaaaaaaaa"                   // epoch 2026-01-01
	fatcatEditor    = "aaaaaaaaaaaaaaaaaaaaaaaaaq"                   // epoch 2018-01-01
	inactiveEditor  = "bbbbbbbbbbbbbbbbbbbbbbbbbb"
	lockedEditor    = "cccccccccccccccccccccccccc"
	touchedEditor   = "dddddddddddddddddddddddddd" // epoch 2026-05-01
	unknownEditor   = "zzzzzzzzzzzzzzzzzzzzzzzzzz"
	fixtureTokenID  = "3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE"
	fixtureLocation = "api.example.org"
)

// clock is a settable clock whose reads write nothing: a mutex taken by
// every Now would be a shared write on the verification's hit path, and
// make the parallel benchmarks measure the test clock instead of the
// verifier.
type clock struct {
	mu sync.Mutex // orders Set and Add
	t  atomic.Pointer[time.Time]
}

func newClock(t time.Time) *clock {
	c := &clock{}
	c.t.Store(&t)
	return c
}

func (c *clock) Now() time.Time  { return *c.t.Load() }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t.Store(&t); c.mu.Unlock() }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	t := c.t.Load().Add(d)
	c.t.Store(&t)
	c.mu.Unlock()
}

type fixture struct {
	keys  *macaroon.KeyStore
	store *sqlite.Store
	// clock is the verifier's and minter's; storeClock the epoch store's.
	clock, storeClock *clock
	v                 *verifier.Verifier
	minter            *macaroon.Minter
}

func newFixture(t testing.TB, opts ...verifier.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := &fixture{clock: newClock(fixNow)}
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"), macaroon.WithStoreClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	for id, secret := range map[string]string{goldenKeyID: goldenSecret, fatcatKeyID: fatcatSecret, retiredKeyID: retiredSecret} {
		if _, err := keys.Import(id, secret); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := keys.Retire(retiredKeyID); err != nil {
		t.Fatal(err)
	}
	f.keys = keys
	storeClock := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, err := sqlite.Open(ctx, filepath.Join(dir, "amaretti.db"), sqlite.WithClock(storeClock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.store = store
	editors := []epoch.NewEditor{
		{ID: alice, Username: "alice"},
		{ID: fatcatEditor, Username: "fatcat-bot", Role: epoch.RoleBot, Epoch: time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: inactiveEditor, Username: "bob"},
		{ID: lockedEditor, Username: "carol"},
		{ID: touchedEditor, Username: "dave", Role: epoch.RoleAdmin},
	}
	for _, e := range editors {
		if _, err := store.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	must := func(_ epoch.Editor, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.SetActive(ctx, inactiveEditor, false))
	must(store.Lock(ctx, lockedEditor))
	storeClock.Set(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	must(store.Touch(ctx, touchedEditor))
	f.storeClock = storeClock

	f.v, err = verifier.New(keys, store, append([]verifier.Option{verifier.WithClock(f.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.minter, err = macaroon.NewMinter(keys, fixtureLocation, macaroon.WithMintClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) mint(t testing.TB, editor string, opts ...macaroon.MintOption) string {
	t.Helper()
	m, err := f.minter.Mint(context.Background(), editor, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

// corpus is testdata/bad/corpus.json.
type corpus struct {
	About string       `json:"about"`
	Cases []corpusCase `json:"cases"`
}

type corpusCase struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	// Want names the sentinel: see wantErr.
	Want string `json:"want"`
	// Reason is a substring of the denial's text, pinning the check that
	// must catch the case.
	Reason string `json:"reason,omitempty"`
}

var wantErr = map[string]error{
	"malformed":      verifier.ErrMalformed,
	"bad_signature":  verifier.ErrBadSignature,
	"unknown_key":    verifier.ErrUnknownKey,
	"retired_key":    verifier.ErrRetiredKey,
	"expired":        verifier.ErrExpired,
	"not_yet_valid":  verifier.ErrNotYetValid,
	"revoked":        verifier.ErrRevoked,
	"locked":         epoch.ErrLocked,
	"unknown_editor": verifier.ErrUnknownEditor,
	"inactive":       verifier.ErrInactiveEditor,
	"forbidden":      verifier.ErrCaveatNotSatisfied,
	"ok":             nil,
}

const corpusPath = "../testdata/bad/corpus.json"

func loadCorpus(t testing.TB) corpus {
	t.Helper()
	data, err := os.ReadFile(corpusPath)
	if err != nil {
		t.Fatal(err)
	}
	var c corpus
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// requestFor is the request every corpus case is verified for.
var corpusRequest = caveat.Request{Method: "GET", Path: "/api/v1/things"}

func caveatsOf(extra ...string) []string {
	return append([]string{"editor_id = " + alice, "time > 2026-05-01T00:00:00.000001Z"}, extra...)
}

func loadGoldenTokens(t testing.TB) []testvectors.Golden {
	t.Helper()
	vs, err := testvectors.LoadGolden()
	if err != nil {
		t.Fatal(err)
	}
	return vs
}
