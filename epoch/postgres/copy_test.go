package postgres

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
)

// TestCopyRoundTrip moves a store SQLite → PostgreSQL → SQLite and checks
// that nothing changed on the way: editors (ids, epochs at the
// microsecond, versions, roles, flags), registry rows (revocations, last
// uses, parents, rights nil or empty) and links. The conformance suite
// checks each store's Export and Import on its own (storetest's Copy).
func TestCopyRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := sqlite.Open(ctx, filepath.Join(dir, "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	alice, _ := src.Create(ctx, epoch.NewEditor{Username: "alice", Role: epoch.RoleAdmin})
	bob, _ := src.Create(ctx, epoch.NewEditor{Username: "Bob", Bot: true, Epoch: time.Date(2019, 1, 1, 0, 0, 0, 123456000, time.UTC)})
	carol, _ := src.Create(ctx, epoch.NewEditor{Username: "carol"})
	src.Touch(ctx, alice.ID)
	src.Lock(ctx, bob.ID)
	src.SetActive(ctx, carol.ID, false)
	now := time.Now().UTC().Truncate(time.Microsecond)
	rows := []epoch.APIToken{
		{TokenID: "0A000000-0000-4000-8000-000000000001", EditorID: alice.ID, Name: "ci", Rights: []string{"read", "write"}, Created: now.Add(time.Second), Creator: "cli", Expires: now.Add(time.Hour)},
		{TokenID: "0A000000-0000-4000-8000-000000000002", EditorID: alice.ID, Name: "child", Rights: []string{}, Endpoint: "api", Created: now.Add(2 * time.Second), Creator: alice.ID, Parents: []string{"0A000000-0000-4000-8000-000000000001"}},
		{TokenID: "0A000000-0000-4000-8000-000000000003", EditorID: carol.ID, Name: "x", Description: "two\nlines", Created: now, Creator: "cli", Expires: now.Add(time.Minute)},
	}
	for _, r := range rows {
		if err := src.RegisterToken(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := src.RevokeToken(ctx, rows[0].TokenID); err != nil {
		t.Fatal(err)
	}
	src.RecordUses(ctx, []epoch.Use{{TokenID: rows[1].TokenID, At: now, From: "192.0.2.1"}})
	src.Link(ctx, alice.ID, "https://accounts.example", "sub-1")
	src.Link(ctx, carol.ID, "dev", "carol")
	snap, err := src.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}

	pg, _ := open(t)
	if err := pg.Import(ctx, snap, false); err != nil {
		t.Fatal(err)
	}
	t.Run("PostgreSQL holds the same", func(t *testing.T) {
		got, err := pg.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, snap) {
			t.Fatalf("PostgreSQL's export differs:\n got %+v\nwant %+v", got, snap)
		}
		for _, id := range []string{alice.ID, bob.ID, carol.ID} {
			a, _ := src.Editor(ctx, id)
			b, err := pg.Editor(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			a.Seq, b.Seq = 0, 0
			if a != b {
				t.Errorf("editor %s: %+v, want %+v", id, b, a)
			}
		}
	})
	t.Run("the copy goes on", func(t *testing.T) {
		e, err := pg.Touch(ctx, alice.ID)
		a, _ := src.Editor(ctx, alice.ID)
		if err != nil || e.Version != a.Version+1 || !e.AuthEpoch.After(a.AuthEpoch) {
			t.Fatalf("touch after the copy: %+v, %v", e, err)
		}
		if err := pg.RegisterToken(ctx, epoch.APIToken{TokenID: "0A000000-0000-4000-8000-000000000004", EditorID: carol.ID, Name: "x", Created: time.Now(), Creator: "cli"}); !errors.Is(err, epoch.ErrNameTaken) {
			t.Fatalf("the copied live name is free: %v", err)
		}
	})
	t.Run("back to SQLite", func(t *testing.T) {
		if err := pg.Import(ctx, snap, true); err != nil {
			t.Fatal(err)
		}
		back, err := sqlite.Open(ctx, filepath.Join(dir, "back.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		fromPG, err := pg.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := back.Import(ctx, fromPG, false); err != nil {
			t.Fatal(err)
		}
		got, err := back.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, snap) {
			t.Fatalf("the round trip changed the content:\n got %+v\nwant %+v", got, snap)
		}
	})
}
