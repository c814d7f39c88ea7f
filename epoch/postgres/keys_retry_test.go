package postgres

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// TestKeysReloadFailureRetried: a follower that reads a key change but
// fails to reload the keys (root_keys locked past the poll's deadline, a
// dropped connection) tries again at its next polls until it succeeds, so a
// key retired on another host stops verifying here within a poll of the
// database answering again, not at the next key change (never, with
// --keys-reload 0).
func TestKeysReloadFailureRetried(t *testing.T) {
	ctx := context.Background()
	a, b, ka, kb, _ := twoHosts(t)
	// The polls are called by hand: the interval only sets each poll's
	// deadline (the interval, at least 500 ms), which must hold on a
	// loaded machine for the polls that must succeed; the locked reload
	// waits for it once.
	f := epoch.NewFollower(b, epoch.WithPollInterval(3*time.Second),
		epoch.WithKeysChanged(kb.Reloader(slog.New(slog.DiscardHandler))))
	if err := f.Poll(ctx, nil); err != nil {
		t.Fatal(err)
	}
	first, err := ka.Current()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ka.RotateContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Poll(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ka.RetireContext(ctx, first.ID()); err != nil {
		t.Fatal(err)
	}
	// Another session holds root_keys: the reload the key change asks
	// for cannot read it before the poll's deadline.
	tx, err := a.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE root_keys IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	f.Poll(ctx, nil) // reads the key change; the reload fails
	if k, err := kb.Key(first.ID()); err != nil || k.State() == macaroon.StateRetired {
		t.Fatalf("the reload under the lock succeeded (%v, %v): the test locks nothing", k, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := f.Poll(ctx, nil); err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
	}
	if _, err := kb.Key(first.ID()); !errors.Is(err, macaroon.ErrRetiredKey) {
		t.Fatalf("the key retired on another host still verifies here after two polls with the database answering: %v", err)
	}
}
