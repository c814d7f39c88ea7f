package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Watch backoff and liveness: after a lost connection Watch waits
// watchBackoffMin, doubling up to watchBackoffMax, between attempts; an idle
// connection is pinged every watchPing, so a dead peer is noticed even
// when the network drops packets silently.
const (
	watchBackoffMin = 50 * time.Millisecond
	watchBackoffMax = 5 * time.Second
	watchPing       = 30 * time.Second
)

// Watch listens on Channel on a connection of its own (not one of the
// pool's) and calls wake on each notification: every change committed to
// the change log sends one (RecordUses sends none). It is a wake-up hint
// only — an epoch.Follower's poll stays the backstop — so Watch also calls
// wake after each successful (re)LISTEN: notifications sent while it was
// disconnected are lost, and the follower must catch up from the last seq
// it saw. On a lost connection it reconnects with backoff, logging (without
// credentials) through WithLogger. It returns nil when ctx ends.
//
// state, which may be nil, reports the listening connection: state(true)
// each time it listens (before the wake-up that follows), state(false)
// each time it is lost and when Watch returns (a daemon's metric). Calls
// come from Watch's goroutine, one at a time.
func (s *Store) Watch(ctx context.Context, wake func(), state func(up bool)) error {
	if state == nil {
		state = func(bool) {}
	}
	backoff := watchBackoffMin
	for {
		err := s.listen(ctx, wake, func() { backoff = watchBackoffMin; state(true) })
		state(false)
		if ctx.Err() != nil {
			return nil
		}
		s.logger.Warn("postgres: change notifications lost; reconnecting", "db", s.redacted, "retry_in", backoff, "err", s.connErr("listen", err).Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// listen runs one connection: connect, LISTEN, wake, then wake on each
// notification until the connection fails.
func (s *Store) listen(ctx context.Context, wake, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	conn, err := pgx.ConnectConfig(cctx, s.connConfig.Copy())
	if err != nil {
		cancel()
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(cctx, "LISTEN "+Channel)
	cancel()
	if err != nil {
		return err
	}
	connected()
	wake()
	for {
		wctx, cancel := context.WithTimeout(ctx, watchPing)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			wake()
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.PgConn().IsClosed():
			pctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}
