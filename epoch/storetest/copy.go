package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// copier is a store "amaretti db copy" can move content out of and into;
// every authoritative store must be one.
type copier interface {
	Export(ctx context.Context) (*epoch.Snapshot, error)
	Import(ctx context.Context, snap *epoch.Snapshot, replace bool) error
}

// testCopy moves everything the suite wrote so far into a fresh store and
// back out: the two exports are equal, every editor reads the same, the
// copy's log tells followers to drop their caches, a non-empty target is
// refused unless told to replace, and a failed import changes nothing.
func testCopy(t *testing.T, s *suite) {
	ctx := t.Context()
	src, ok := s.a.(copier)
	if !ok {
		t.Fatalf("%sthe store has no Export and Import (db copy needs them)", s.label())
	}
	// Whatever else the suite wrote, the store holds at least: an editor
	// with a live token, a revoked one and a used one, and a link.
	e := s.editor(t)
	now := time.Now().UTC()
	// Recorded caveats unknown, none, and some (with commas).
	caveatsFor := [][]string{nil, {}, {"method = GET,POST", "tenant = a,b"}}
	ids := sortedIDs(3)
	for i, id := range ids {
		row := epoch.APIToken{TokenID: id, EditorID: e.ID, Name: s.username("copy"), Rights: []string{"read"}, Created: now, Creator: "cli", Expires: now.Add(time.Hour),
			Caveats: caveatsFor[i]}
		if err := s.a.RegisterToken(ctx, row); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 1:
			s.revoke(t, id)
		case 2:
			if err := s.a.RecordUses(ctx, []epoch.Use{{TokenID: id, At: now, From: "192.0.2.1"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A pending rotation and an attenuated use.
	rot := token(e, s.username("rot"))
	register(t, s.a, rot)
	if _, err := s.a.RotateToken(ctx, rot.TokenID, successor(rot), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.a.RecordUses(ctx, []epoch.Use{{TokenID: rot.TokenID, At: now, From: "192.0.2.2", Attenuation: "GET /x", AttenuationID: "abcd"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.a.Link(ctx, e.ID, "dev", s.username("copy")); err != nil {
		t.Fatal(err)
	}
	// An audit event and a delivered notification.
	event := epoch.AuditEvent{At: now, Action: epoch.AuditTokenRevoked, Actor: epoch.ActorCLI, OSUser: "ops", EditorID: e.ID, Detail: s.username("copy")}
	if err := s.a.RecordAudit(ctx, event); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.a.ClaimNotification(ctx, rot.TokenID, "expiring:24h0m0s", now, time.Minute); !ok || err != nil {
		t.Fatalf("ClaimNotification: %v, %v", ok, err)
	}
	if err := s.a.NotificationSent(ctx, rot.TokenID, "expiring:24h0m0s", now); err != nil {
		t.Fatal(err)
	}
	snap, err := src.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Audit[len(snap.Audit)-1]; got.Detail != event.Detail || !slices.ContainsFunc(snap.Sent, func(n epoch.SentNotification) bool { return n.TokenID == rot.TokenID }) {
		t.Fatalf("the export misses the audit event (last %+v) or the delivered notification (%+v)", got, snap.Sent)
	}
	for i, id := range ids {
		n := slices.IndexFunc(snap.Tokens, func(r epoch.APIToken) bool { return r.TokenID == id })
		if n < 0 || !slices.Equal(snap.Tokens[n].Caveats, caveatsFor[i]) || (snap.Tokens[n].Caveats == nil) != (caveatsFor[i] == nil) {
			t.Fatalf("the export misses token %s or its caveats %#v", id, caveatsFor[i])
		}
	}
	// Events get new ids in the copy: compare what they say.
	same := func(a, b *epoch.Snapshot) bool {
		strip := func(x *epoch.Snapshot) epoch.Snapshot {
			c := *x
			c.Audit = slices.Clone(x.Audit)
			for i := range c.Audit {
				c.Audit[i].ID = 0
			}
			return c
		}
		return reflect.DeepEqual(strip(a), strip(b))
	}
	dst := s.open(t, s.o.New(t))
	to := dst.(copier)
	before := must[epoch.Head](t)(dst.Head(ctx))
	if err := to.Import(ctx, snap, false); err != nil {
		t.Fatal(err)
	}
	t.Run("same content", func(t *testing.T) {
		again := must[*epoch.Snapshot](t)(to.Export(ctx))
		if !same(again, snap) {
			t.Fatalf("the copy exports other content (%d/%d editors, %d/%d tokens, %d/%d links)",
				len(again.Editors), len(snap.Editors), len(again.Tokens), len(snap.Tokens), len(again.Links), len(snap.Links))
		}
		for _, e := range snap.Editors {
			a := must[epoch.Editor](t)(s.a.Editor(ctx, e.ID))
			b := must[epoch.Editor](t)(dst.Editor(ctx, e.ID))
			a.Seq, b.Seq = 0, 0
			if a != b {
				t.Fatalf("editor %s reads %+v from the copy, %+v from the source", e.ID, b, a)
			}
		}
	})
	t.Run("followers drop their caches", func(t *testing.T) {
		cs := must[[]epoch.Change](t)(dst.Changes(ctx, before.Seq, 10))
		if len(cs) != 1 || cs[0].EditorID != "" || cs[0].Keys {
			t.Fatalf("changes of the import %+v; want one every-editor change", cs)
		}
	})
	t.Run("a non-empty target is refused", func(t *testing.T) {
		if err := s.noChange(t, func() error { return src.Import(ctx, snap, false) }); !errors.Is(err, epoch.ErrNotEmpty) {
			t.Fatalf("Import into a non-empty store = %v, want ErrNotEmpty", err)
		}
	})
	t.Run("a failed import changes nothing", func(t *testing.T) {
		bad := *snap
		bad.Links = append(append([]epoch.Link{}, snap.Links...), epoch.Link{Provider: "dev", Subject: "ghost", EditorID: "no-such-editor", Created: snap.Editors[0].Created})
		if err := to.Import(ctx, &bad, true); err == nil {
			t.Fatal("a link to an unknown editor was imported")
		}
		if again := must[*epoch.Snapshot](t)(to.Export(ctx)); !same(again, snap) {
			t.Fatal("the failed import changed the store")
		}
	})
	t.Run("replace", func(t *testing.T) {
		one := &epoch.Snapshot{Editors: snap.Editors[:1]}
		if err := to.Import(ctx, one, true); err != nil {
			t.Fatal(err)
		}
		if again := must[*epoch.Snapshot](t)(to.Export(ctx)); len(again.Editors) != 1 || len(again.Tokens) != 0 || len(again.Links) != 0 {
			t.Fatalf("after replace: %d editors, %d tokens, %d links", len(again.Editors), len(again.Tokens), len(again.Links))
		} else if len(again.Audit) != len(snap.Audit) {
			// An audit trail is appended to, never replaced.
			t.Fatalf("after replace: %d audit events, want the %d already there", len(again.Audit), len(snap.Audit))
		}
	})
}
