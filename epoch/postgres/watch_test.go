package postgres

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/testpg"
)

// wakeups runs s.Watch until the test ends and returns its wake-ups.
func wakeups(t *testing.T, s *Store) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{}, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Watch(ctx, func() { ch <- struct{}{} }, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v", err)
		}
	})
	return ch
}

func waitWake(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake-up: %s", what)
	}
}

// TestWatch: Watch wakes once it listens, and on every change; a change's
// NOTIFY carries its seq; RecordUses (last-use writes) sends none.
func TestWatch(t *testing.T) {
	ctx := context.Background()
	s, url := open(t)
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice", Epoch: time.Now().Add(-time.Hour)})
	tok := epoch.APIToken{TokenID: tokenID(1), EditorID: alice.ID, Name: "laptop", Created: time.Now(), Creator: "cli"}
	if err := s.RegisterToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	ch := wakeups(t, s)
	waitWake(t, ch, "after LISTEN")

	// A listener of our own reads the payloads, in commit order.
	l, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	if _, err := l.Exec(ctx, "LISTEN "+Channel); err != nil {
		t.Fatal(err)
	}
	next := func() int64 {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := l.WaitForNotification(wctx)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			t.Fatalf("payload %q", n.Payload)
		}
		return seq
	}
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"touch", func() error { _, err := s.Touch(ctx, alice.ID); return err }},
		{"record uses, then revoke", func() error {
			if err := s.RecordUses(ctx, []epoch.Use{{TokenID: tok.TokenID, At: time.Now(), From: "x"}}); err != nil {
				return err
			}
			_, _, err := s.RevokeToken(ctx, tok.TokenID)
			return err
		}},
		{"touch all", func() error { _, err := s.TouchAll(ctx); return err }},
		{"create", func() error { _, err := s.Create(ctx, epoch.NewEditor{Username: "bob"}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err != nil {
				t.Fatal(err)
			}
			h, _ := s.Head(ctx)
			// The first notification is the change's: a RecordUses before
			// it would have come first.
			if got := next(); got != h.Seq {
				t.Fatalf("notified seq %d, head %d", got, h.Seq)
			}
			waitWake(t, ch, tc.name)
		})
	}
}

// TestWatchReconnect: PostgreSQL restarts under a watching store; Watch
// reconnects by itself, wakes the follower to catch up, and wakes again on
// the next change. Its log says what happened without the password.
func TestWatchReconnect(t *testing.T) {
	ctx := context.Background()
	srv := testpg.Start(t)
	const password = "watch-s3cret-pw"
	if err := srv.Exec(ctx, "postgres", "CREATE ROLE amaretti LOGIN PASSWORD '"+password+"'"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Exec(ctx, "postgres", "CREATE DATABASE w OWNER amaretti"); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s := openURL(t, srv.URLAs("w", "amaretti", password), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	alice, err := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	ch := wakeups(t, s)
	waitWake(t, ch, "after LISTEN")
	srv.Stop()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitWake(t, ch, "after the restart")
	for len(ch) > 0 {
		<-ch
	}
	// The pool reconnects too; its first use may meet a dead connection.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Touch(ctx, alice.ID)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	waitWake(t, ch, "a touch after the restart")
	out := logs.String()
	if !strings.Contains(out, "reconnecting") || strings.Contains(out, password) {
		t.Fatalf("log:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestQueryTimeout: a state read that a lock holds up fails within the
// store's query timeout — the default 100 ms, or what WithQueryTimeout
// set (1 s here: a read that stopped at the default would end too soon) —
// instead of hanging or waiting for the 5 s write timeout, and the same
// store reads again once the lock is gone.
func TestQueryTimeout(t *testing.T) {
	ctx := context.Background()
	url := server.NewDatabase(t)
	s, err := Open(ctx, url) // the default timeout
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s1 := openURL(t, url, WithQueryTimeout(time.Second))
	alice, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE editors IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	// The slack above the bound is for a loaded machine; it stays below
	// the write timeout, which must not be what ends the read.
	const slack = 2 * time.Second
	if DefaultReadTimeout+slack >= DefaultWriteTimeout || time.Second+slack >= DefaultWriteTimeout {
		t.Fatal("the slack does not tell the read timeout from the write timeout")
	}
	for _, tc := range []struct {
		name  string
		store *Store
		bound time.Duration
	}{
		{"State", s, DefaultReadTimeout},
		{"State, 1 s", s1, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := tc.store.State(ctx, alice.ID)
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, epoch.ErrNotFound) {
				t.Fatalf("State under a lock: %v", err)
			}
			if took < tc.bound || took > tc.bound+slack {
				t.Fatalf("State took %v, bound %v", took, tc.bound)
			}
		})
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The same stores read again. On a loaded machine a read may still
	// outlast its bound: a timeout is the one failure allowed, until a read
	// succeeds.
	for _, st := range []*Store{s, s1} {
		deadline := time.Now().Add(testReadTimeout)
		for {
			_, err := st.State(ctx, alice.ID)
			if err == nil {
				break
			}
			if !errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
				t.Fatalf("State after the lock: %v", err)
			}
		}
	}
}

// TestWatchState: Watch's state function reports the listening connection up once
// it listens, down when the server ends it, up again after Watch
// reconnects, and down when Watch returns.
func TestWatchState(t *testing.T) {
	ctx := context.Background()
	s, url := open(t)
	states := make(chan bool, 100)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Watch(wctx, func() {}, func(up bool) { states <- up }) }()
	next := func(want bool, what string) {
		t.Helper()
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("%s: state %v, want %v", what, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no state reported", what)
		}
	}
	next(true, "listening")
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = 'LISTEN "+Channel+"' AND pid <> pg_backend_pid()").Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the listener: %d, %v", n, err)
	}
	next(false, "connection terminated")
	next(true, "reconnected")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	next(false, "Watch returned")
}
