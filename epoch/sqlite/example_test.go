package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
)

func ExampleStore_Touch() {
	dir, _ := os.MkdirTemp("", "amaretti")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "amaretti.db"), sqlite.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	alice, _ := store.Create(ctx, epoch.NewEditor{ID: "alice", Username: "alice"})
	fmt.Println(alice.AuthEpoch.Format(time.RFC3339Nano))
	// Two touches in the same instant still move the epoch forward.
	store.Touch(ctx, "alice")
	touched, _ := store.Touch(ctx, "alice")
	fmt.Println(touched.AuthEpoch.Format(time.RFC3339Nano))
	locked, _ := store.Lock(ctx, "alice")
	fmt.Println(locked.Locked())
	// Output:
	// 2026-11-22T10:00:00Z
	// 2026-11-22T10:00:00.000002Z
	// true
}
