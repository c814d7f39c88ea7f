package sqlite_test

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

func TestExportImport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func(name string) *sqlite.Store {
		s, err := sqlite.Open(ctx, filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	src := open("src.db")
	alice, err := src.Create(ctx, epoch.NewEditor{Username: "alice", Role: epoch.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := src.Create(ctx, epoch.NewEditor{Username: "bob", Bot: true})
	src.Touch(ctx, alice.ID)
	src.Lock(ctx, bob.ID)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i, id := range []string{"0A000000-0000-4000-8000-000000000001", "0A000000-0000-4000-8000-000000000002"} {
		row := epoch.APIToken{TokenID: id, EditorID: alice.ID, Name: []string{"ci", "deploy"}[i], Rights: []string{"read"}, Created: now.Add(time.Second), Creator: "cli", Expires: now.Add(time.Hour)}
		if i == 1 {
			row.Rights, row.Parents, row.Endpoint = nil, []string{"0A000000-0000-4000-8000-000000000001"}, "api"
		}
		if err := src.RegisterToken(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	src.RevokeToken(ctx, "0A000000-0000-4000-8000-000000000001")
	src.RecordUses(ctx, []epoch.Use{{TokenID: "0A000000-0000-4000-8000-000000000002", At: now, From: "192.0.2.1"}})
	if _, err := src.Link(ctx, alice.ID, "https://accounts.example", "sub-1"); err != nil {
		t.Fatal(err)
	}
	snap, err := src.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Editors) != 2 || len(snap.Tokens) != 2 || len(snap.Links) != 1 {
		t.Fatalf("snapshot: %d editors, %d tokens, %d links", len(snap.Editors), len(snap.Tokens), len(snap.Links))
	}

	dst := open("dst.db")
	before, _ := dst.Head(ctx)
	if err := dst.Import(ctx, snap, false); err != nil {
		t.Fatal(err)
	}
	t.Run("same content", func(t *testing.T) {
		again, err := dst.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(snap, again) {
			t.Errorf("round trip differs:\n%+v\n%+v", snap, again)
		}
		for _, id := range []string{alice.ID, bob.ID} {
			a, _ := src.Editor(ctx, id)
			b, err := dst.Editor(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			a.Seq, b.Seq = 0, 0
			if a != b {
				t.Errorf("editor %s: %+v, want %+v", id, b, a)
			}
		}
	})
	t.Run("followers drop their caches", func(t *testing.T) {
		cs, err := dst.Changes(ctx, before.Seq, 10)
		if err != nil || len(cs) != 1 || cs[0].EditorID != "" {
			t.Errorf("changes after import: %+v, %v; want one every-editor change", cs, err)
		}
		h1, _ := src.Head(ctx)
		h2, _ := dst.Head(ctx)
		if h1.StoreID == h2.StoreID {
			t.Error("the copy has the source's store id")
		}
	})
	t.Run("a non-empty target is refused", func(t *testing.T) {
		if err := dst.Import(ctx, snap, false); !errors.Is(err, epoch.ErrNotEmpty) {
			t.Errorf("import into a non-empty store: %v, want ErrNotEmpty", err)
		}
	})
	t.Run("replace", func(t *testing.T) {
		other := &epoch.Snapshot{Editors: snap.Editors[1:]}
		if err := dst.Import(ctx, other, true); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.Editor(ctx, alice.ID); !errors.Is(err, epoch.ErrNotFound) {
			t.Errorf("alice after replace: %v", err)
		}
		if toks, _ := dst.Tokens(ctx, ""); len(toks) != 0 {
			t.Errorf("tokens after replace: %d", len(toks))
		}
	})
	t.Run("a bad snapshot changes nothing", func(t *testing.T) {
		bad := &epoch.Snapshot{Editors: []epoch.Editor{{ID: "x", Username: "bad name", Role: epoch.RoleEditor}}}
		if err := dst.Import(ctx, bad, true); err == nil {
			t.Fatal("a bad username was imported")
		}
		if _, err := dst.Editor(ctx, bob.ID); err != nil {
			t.Errorf("the failed import changed the store: %v", err)
		}
	})
}
