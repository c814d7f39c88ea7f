// Package keystoretest is the conformance suite of macaroon.KeyBackend:
// what a KeyStore must do on any backend, including two hosts sharing one
// backend (two stores over the same directory or database). Backends run it
// from their own tests with real storage.
package keystoretest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/amaretti-auth/amaretti/macaroon"
)

// Open returns two backends over one new, empty storage, as two hosts
// see it (for a database: two connection pools).
type Open func(t *testing.T) (a, b macaroon.KeyBackend)

// fatcat is a secret to import: base64("dummy-key-a-one-two-three-a-la!!").
const fatcat = "ZHVtbXkta2V5LWEtb25lLXR3by10aHJlZS1hLWxhISE="

// Run runs the suite.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	hosts := func(t *testing.T) (a, b *macaroon.KeyStore, ab, bb macaroon.KeyBackend) {
		t.Helper()
		ab, bb = open(t)
		var err error
		if a, err = macaroon.NewKeyStore(ctx, ab); err != nil {
			t.Fatal(err)
		}
		if created, err := a.Init(ctx); err != nil || !created {
			t.Fatalf("Init on an empty backend: created %v, %v", created, err)
		}
		if b, err = macaroon.NewKeyStore(ctx, bb); err != nil {
			t.Fatal(err)
		}
		if created, err := b.Init(ctx); err != nil || created {
			t.Fatalf("Init on a backend with a key: created %v, %v", created, err)
		}
		return a, b, ab, bb
	}
	current := func(t *testing.T, s *macaroon.KeyStore) *macaroon.Key {
		t.Helper()
		k, err := s.Current()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	reload := func(t *testing.T, s *macaroon.KeyStore) {
		t.Helper()
		if err := s.ReloadContext(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("empty backend has no current key", func(t *testing.T) {
		ab, _ := open(t)
		s, err := macaroon.NewKeyStore(ctx, ab)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Current(); !errors.Is(err, macaroon.ErrNoCurrentKey) {
			t.Fatalf("Current = %v, want ErrNoCurrentKey", err)
		}
	})

	t.Run("both hosts share the first key", func(t *testing.T) {
		a, b, _, _ := hosts(t)
		ka, kb := current(t, a), current(t, b)
		if ka.ID() != kb.ID() || ka.ExportSecret() != kb.ExportSecret() {
			t.Fatalf("hosts disagree: %v, %v", ka, kb)
		}
	})

	t.Run("a rotation on one host reaches the other on reload", func(t *testing.T) {
		a, b, _, _ := hosts(t)
		old := current(t, a)
		k, err := a.RotateContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if k.State() != macaroon.StateCurrent || current(t, a).ID() != k.ID() {
			t.Fatalf("rotated: %v, current %v", k, current(t, a))
		}
		if current(t, b).ID() != old.ID() {
			t.Fatal("the other host changed before reloading")
		}
		reload(t, b)
		if got := current(t, b); got.ID() != k.ID() || got.ExportSecret() != k.ExportSecret() {
			t.Fatalf("other host's current %v, want %v", got, k)
		}
		if prev, err := b.Key(old.ID()); err != nil || prev.State() != macaroon.StateVerifyOnly {
			t.Fatalf("previous key on the other host: %v, %v", prev, err)
		}
	})

	t.Run("retire", func(t *testing.T) {
		a, b, _, _ := hosts(t)
		old := current(t, a)
		k, err := a.RotateContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name string
			host *macaroon.KeyStore
			id   string
			want error
		}{
			{"the current key, by a host that has not seen the rotation", b, k.ID(), macaroon.ErrCurrentKey},
			{"the current key", a, k.ID(), macaroon.ErrCurrentKey},
			{"an unknown key", a, "nope", macaroon.ErrUnknownKey},
			{"a malformed id", a, "../x", macaroon.ErrUnknownKey},
			{"the previous key, by a host that has not seen the rotation", b, old.ID(), nil},
			{"a retired key again", a, old.ID(), nil},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				r, err := s.host.RetireContext(ctx, s.id)
				if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
					t.Fatalf("Retire = %v, want %v", err, s.want)
				}
				if err == nil && r.State() != macaroon.StateRetired {
					t.Fatalf("retired key in state %s", r.State())
				}
			})
		}
		reload(t, a)
		if _, err := a.Key(old.ID()); !errors.Is(err, macaroon.ErrRetiredKey) {
			t.Fatalf("Key(retired) = %v, want ErrRetiredKey", err)
		}
		if got := current(t, b); got.ID() != k.ID() {
			t.Fatalf("after retiring, current %v, want %v", got, k)
		}
	})

	t.Run("import and export across hosts", func(t *testing.T) {
		a, b, _, _ := hosts(t)
		k, err := a.ImportContext(ctx, "dummy", fatcat)
		if err != nil {
			t.Fatal(err)
		}
		if k.State() != macaroon.StateVerifyOnly {
			t.Fatalf("imported key state %s", k.State())
		}
		if _, err := b.ImportContext(ctx, "dummy", fatcat); !errors.Is(err, macaroon.ErrKeyExists) {
			t.Fatalf("import of an existing id by a host that has not seen it = %v, want ErrKeyExists", err)
		}
		if _, err := b.Export("dummy"); !errors.Is(err, macaroon.ErrUnknownKey) {
			t.Fatalf("Export before reload = %v", err)
		}
		reload(t, b)
		if got, err := b.Export("dummy"); err != nil || got != fatcat {
			t.Fatalf("Export = %q, %v", got, err)
		}
		cur := current(t, b)
		exported, err := b.Export(cur.ID())
		if err != nil || exported != cur.ExportSecret() {
			t.Fatalf("Export(current) = %v", err)
		}
		if _, err := a.ImportContext(ctx, "short", "ZHVtbXk="); !errors.Is(err, macaroon.ErrBadSecret) {
			t.Fatalf("import of a short secret = %v", err)
		}
	})

	t.Run("concurrent rotations leave exactly one current key", func(t *testing.T) {
		a, b, ab, _ := hosts(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for _, s := range []*macaroon.KeyStore{a, b} {
			wg.Go(func() {
				for range n {
					if _, err := s.RotateContext(ctx); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		keys, err := ab.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		currents := 0
		for _, k := range keys {
			if k.State() == macaroon.StateCurrent {
				currents++
			}
		}
		if len(keys) != 1+2*n || currents != 1 {
			t.Fatalf("%d keys, %d current; want %d keys, 1 current", len(keys), currents, 1+2*n)
		}
		reload(t, a)
		reload(t, b)
		if current(t, a).ID() != current(t, b).ID() {
			t.Fatal("hosts disagree on the current key")
		}
	})
}
