package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// watcher is a store that notifies changes as they commit (PostgreSQL
// LISTEN/NOTIFY): Watch calls wake on each, and after every reconnection,
// until ctx ends. It is a wake-up hint: the follower still reads the log.
type watcher interface {
	Watch(ctx context.Context, wake func(), state func(up bool)) error
}

// follow keeps cache and keys up to date with the store's change log until
// ctx ends, as amarettid does: every change to an editor (a log out
// everywhere through another frontend instance or amarettid, a lock, a
// revocation) drops its cached state, and, with keys in the database, a
// rotation, retirement or import made on any host reloads the keys, within
// poll (at once when PostgreSQL's NOTIFY arrives). The cache is bypassed
// until the first catch-up and whenever the log cannot be read. The
// returned function waits for the goroutines to end (after ctx).
func follow(ctx context.Context, store epoch.Store, cache *epoch.Cache, keys *macaroon.KeyStore, keysInDB bool, poll time.Duration, log *slog.Logger) (wait func()) {
	opts := []epoch.FollowerOption{epoch.WithPollInterval(poll), epoch.WithFollowerLogger(log)}
	if keysInDB {
		opts = append(opts, epoch.WithKeysChanged(keys.Reloader(log)))
	}
	f := epoch.NewFollower(store, opts...)
	cache.SetBypass(true) // until the follower's first catch-up
	var wg sync.WaitGroup
	wg.Go(func() { f.Run(ctx, cache) })
	if w, ok := store.(watcher); ok {
		wg.Go(func() {
			if err := w.Watch(ctx, f.Wake, nil); err != nil && ctx.Err() == nil {
				log.Warn("change notifications stopped; the change log is still polled", "err", err)
			}
		})
	}
	return wg.Wait
}
