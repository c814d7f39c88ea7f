package rediscache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestForgedValueNeverServed: anyone who can write to Redis (a Redis
// without a password on the network, a compromised replica) writes a state
// of their own making for an editor: the current change-log head as its
// seq (so the follower vouches for it), epoch 0 (every revocation undone),
// role superuser, active. The Layer must never serve it: Redis is a cache,
// never an authority. Neither may it serve an honest value written for
// another editor (an admin's state copied under a bot's key).
func TestForgedValueNeverServed(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	bot, _ := e.store.Create(ctx, epoch.NewEditor{Username: "bot", Bot: true})
	root, _ := e.store.Create(ctx, epoch.NewEditor{Username: "root", Role: epoch.RoleSuperuser})
	touched, err := e.store.Touch(ctx, bot.ID) // revokes every token of the bot so far
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "changes followed", 5*time.Second, func() bool { return e.follower.Stats().Head >= touched.Seq })
	// An honest value for root, as a fill writes it.
	if _, err := e.layer.State(ctx, root.ID); err != nil {
		t.Fatal(err)
	}
	honest := e.cached(t, root.ID)
	if honest == "" {
		t.Fatal("no value was written for root")
	}
	head := e.follower.Stats().Head
	for _, tc := range []struct{ name, value string }{
		{"forged v3", fmt.Sprintf("v3 %d %d 0 superuser 1 -", touched.Version+1, head)},
		{"root's value under the bot's key", honest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.rdb.Set(ctx, "amaretti:editor:"+bot.ID, tc.value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				st, err := e.layer.State(ctx, bot.ID)
				if err != nil {
					t.Fatal(err)
				}
				if st.Role != touched.Role || !st.Epoch.Equal(touched.AuthEpoch) {
					t.Fatalf("read %d served Redis' value: %+v, want %+v", i, st, touched.State())
				}
			}
		})
	}
}
