package storetest

import (
	"errors"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// testFreshStores: a fresh store is empty and has an identity of its own,
// the same through every handle.
func testFreshStores(t *testing.T, s *suite) {
	ctx := t.Context()
	addr := s.o.New(t)
	fresh := s.open(t, addr)
	other := s.open(t, addr)
	hs := must[epoch.Head](t)(s.a.Head(ctx))
	hf := must[epoch.Head](t)(fresh.Head(ctx))
	ho := must[epoch.Head](t)(other.Head(ctx))
	if hf.StoreID == "" || hf.StoreID == hs.StoreID {
		t.Fatalf("store ids %q and %q: want two different, non-empty", hs.StoreID, hf.StoreID)
	}
	if ho.StoreID != hf.StoreID {
		t.Fatalf("one store, two ids through two handles: %q, %q", hf.StoreID, ho.StoreID)
	}
	if hf.Oldest > hf.Seq+1 || hf.Oldest < 0 || hf.Seq < 0 {
		t.Fatalf("a fresh store's head %+v", hf)
	}
	for _, c := range must[[]epoch.Change](t)(fresh.Changes(ctx, 0, 100)) {
		if c.EditorID != "" {
			t.Fatalf("a fresh store's change log holds %+v", c)
		}
	}
	if l := must[[]epoch.Editor](t)(fresh.List(ctx)); len(l) != 0 {
		t.Fatalf("a fresh store lists %d editors", len(l))
	}
	if l := must[[]epoch.APIToken](t)(fresh.Tokens(ctx, "")); len(l) != 0 {
		t.Fatalf("a fresh store lists %d tokens", len(l))
	}
	if n := must[int64](t)(fresh.TouchAll(ctx)); n != 0 {
		t.Fatalf("TouchAll on a fresh store = %d", n)
	}
	if v := must[int](t)(fresh.SchemaVersion(ctx)); v != must[int](t)(s.a.SchemaVersion(ctx)) {
		t.Fatalf("schema version %d on a fresh store", v)
	}
	e := must[epoch.Editor](t)(fresh.Create(ctx, epoch.NewEditor{Username: "alice"}))
	if _, err := s.a.Editor(ctx, e.ID); !errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("an editor of one store found in another: %v", err)
	}
	if got := must[epoch.Editor](t)(other.Editor(ctx, e.ID)); got.Seq != must[epoch.Head](t)(other.Head(ctx)).Seq {
		t.Fatalf("read at seq %d", got.Seq)
	}
}

// testClosed: a closed handle fails with a store error, never
// ErrNotFound (which would say the editor does not exist); the other
// handles go on.
func testClosed(t *testing.T, s *suite) {
	ctx := t.Context()
	e := s.editor(t)
	st, err := s.o.Open(ctx, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.State(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := st.State(ctx, e.ID); err == nil || errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("State on a closed handle = %v, want a store error", err)
	}
	if _, err := st.Touch(ctx, e.ID); err == nil || errors.Is(err, epoch.ErrNotFound) {
		t.Fatalf("Touch on a closed handle = %v, want a store error", err)
	}
	if _, err := s.a.State(ctx, e.ID); err != nil {
		t.Fatalf("another handle after one closed: %v", err)
	}
}
