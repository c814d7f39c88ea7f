package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// auditEvent is a valid event about editor ed and token tok at at.
func auditEvent(action epoch.AuditAction, ed, tok string, at time.Time) epoch.AuditEvent {
	return epoch.AuditEvent{At: at, Action: action, Actor: epoch.ActorToken, ActorEditorID: "admin-" + ed, ActorTokenID: tok,
		From: "192.0.2.1", EditorID: ed, Detail: "test"}
}

// listAll pages through AuditEvents with f (its Limit per page), checking
// that pages are newest first and never overlap.
func listAll(t *testing.T, st epoch.Store, f epoch.AuditFilter) []epoch.AuditEvent {
	t.Helper()
	var all []epoch.AuditEvent
	for range 1000 {
		page, next := must2[[]epoch.AuditEvent, int64](t)(st.AuditEvents(t.Context(), f))
		for i, e := range page {
			if i > 0 && e.ID >= page[i-1].ID || len(all) > 0 && e.ID >= all[len(all)-1].ID {
				t.Fatalf("events not newest first: %+v", append(all, page...))
			}
		}
		all = append(all, page...)
		if next == 0 {
			return all
		}
		if len(page) == 0 || next != page[len(page)-1].ID {
			t.Fatalf("cursor %d after a page ending at %+v", next, page)
		}
		f.Before = next
	}
	t.Fatal("AuditEvents never ends")
	return nil
}

// must2 fails t on err.
func must2[A, B any](t *testing.T) func(a A, b B, err error) (A, B) {
	return func(a A, b B, err error) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// testAudit: the audit trail keeps events as given, lists them newest
// first by editor, token, action and time, in pages; refuses invalid
// events whole; appends nothing to the change log; prunes only by age,
// recording the pruning.
func testAudit(t *testing.T, s *suite) {
	ctx := t.Context()
	ed := s.username("audited")
	tok := tokenID()
	now := time.Now().UTC()
	var want []epoch.AuditEvent
	for i, a := range []epoch.AuditAction{epoch.AuditEditorCreated, epoch.AuditTokenCreated, epoch.AuditTokenRevoked, epoch.AuditEditorTouched, epoch.AuditTokenRefused} {
		e := auditEvent(a, ed, "", now.Add(time.Duration(i)*time.Millisecond))
		if strings.HasPrefix(string(a), "token.") {
			e.TokenID = tok
		}
		if a == epoch.AuditTokenRefused {
			e.Actor, e.ActorEditorID, e.Count = epoch.ActorDaemon, "", 7
		}
		want = append(want, e)
	}
	t.Run("record appends nothing to the change log", func(t *testing.T) {
		wantErr(t, s.noChange(t, func() error { return s.a.RecordAudit(ctx, want[:2]...) }), nil)
		wantErr(t, s.noChange(t, func() error { return s.b.RecordAudit(ctx, want[2:]...) }), nil)
	})
	t.Run("round trip, newest first", func(t *testing.T) {
		got := listAll(t, s.b, epoch.AuditFilter{EditorID: ed})
		if len(got) != len(want) {
			t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
		}
		for i, g := range got {
			w := want[len(want)-1-i]
			w.ID = g.ID
			w.At = µs(w.At)
			if w.Count == 0 {
				w.Count = 1
			}
			if g != w {
				t.Fatalf("event %d = %+v, want %+v", i, g, w)
			}
		}
	})
	cases := []struct {
		name string
		f    epoch.AuditFilter
		want int
	}{
		{"by subject editor", epoch.AuditFilter{EditorID: ed}, 5},
		{"by actor editor", epoch.AuditFilter{EditorID: "admin-" + ed}, 4},
		{"by token", epoch.AuditFilter{TokenID: tok}, 3},
		{"by token and action", epoch.AuditFilter{TokenID: tok, Action: epoch.AuditTokenRevoked}, 1},
		{"since", epoch.AuditFilter{EditorID: ed, Since: now.Add(3 * time.Millisecond)}, 2},
		{"pages of 2", epoch.AuditFilter{EditorID: ed, Limit: 2}, 5},
		{"pages of 1", epoch.AuditFilter{EditorID: ed, Limit: 1}, 5},
		{"unknown editor", epoch.AuditFilter{EditorID: "nobody-" + ed}, 0},
		{"unstorable text", epoch.AuditFilter{EditorID: "a\x00b"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := listAll(t, s.a, c.f); len(got) != c.want {
				t.Fatalf("got %d events, want %d: %+v", len(got), c.want, got)
			}
		})
	}
	t.Run("invalid events record nothing", func(t *testing.T) {
		good := auditEvent(epoch.AuditEditorLocked, ed, "", now)
		for _, c := range []struct {
			name string
			mod  func(*epoch.AuditEvent)
		}{
			{"no action", func(e *epoch.AuditEvent) { e.Action = "" }},
			{"unknown actor", func(e *epoch.AuditEvent) { e.Actor = "someone" }},
			{"no time", func(e *epoch.AuditEvent) { e.At = time.Time{} }},
			{"control character", func(e *epoch.AuditEvent) { e.Detail = "a\nb" }},
			{"NUL", func(e *epoch.AuditEvent) { e.EditorID = "a\x00" }},
			{"not UTF-8", func(e *epoch.AuditEvent) { e.Detail = "\xff" }},
			{"long detail", func(e *epoch.AuditEvent) { e.Detail = strings.Repeat("x", epoch.MaxAuditDetail+1) }},
			{"negative count", func(e *epoch.AuditEvent) { e.Count = -1 }},
		} {
			t.Run(c.name, func(t *testing.T) {
				bad := good
				c.mod(&bad)
				wantErr(t, s.a.RecordAudit(ctx, good, bad), epoch.ErrInvalidAudit)
				if got := listAll(t, s.a, epoch.AuditFilter{EditorID: ed, Action: epoch.AuditEditorLocked}); len(got) != 0 {
					t.Fatalf("recorded %+v", got)
				}
			})
		}
	})
	t.Run("prune by age", func(t *testing.T) {
		old := s.username("old")
		past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		var events []epoch.AuditEvent
		for i := range 3 {
			events = append(events, auditEvent(epoch.AuditEditorTouched, old, "", past.Add(time.Duration(i)*time.Hour)))
		}
		wantErr(t, s.a.RecordAudit(ctx, events...), nil)
		cli := epoch.AuditEvent{Actor: epoch.ActorCLI, OSUser: "operator"}
		// Before 2001-01-01T02:00: the first two.
		n, err := s.b.PruneAudit(ctx, past.Add(2*time.Hour), cli)
		wantErr(t, err, nil)
		if n != 2 {
			t.Fatalf("pruned %d, want 2", n)
		}
		if left := listAll(t, s.a, epoch.AuditFilter{EditorID: old}); len(left) != 1 || !left[0].At.Equal(past.Add(2*time.Hour)) {
			t.Fatalf("left %+v", left)
		}
		pruned := listAll(t, s.a, epoch.AuditFilter{Action: epoch.AuditPruned, Since: now.Add(-time.Minute)})
		if len(pruned) == 0 || pruned[0].Count != 2 || pruned[0].Actor != epoch.ActorCLI || pruned[0].OSUser != "operator" {
			t.Fatalf("pruning recorded as %+v", pruned)
		}
		// Nothing older left: nothing pruned, nothing recorded.
		if n, err := s.a.PruneAudit(ctx, past, cli); err != nil || n != 0 {
			t.Fatalf("second prune = %d, %v", n, err)
		}
		if again := listAll(t, s.a, epoch.AuditFilter{Action: epoch.AuditPruned, Since: now.Add(-time.Minute)}); len(again) != len(pruned) {
			t.Fatalf("an empty prune was recorded: %+v", again)
		}
		// The events of this test's editor are recent: still there.
		if got := listAll(t, s.a, epoch.AuditFilter{EditorID: ed}); len(got) != len(want) {
			t.Fatalf("pruning took recent events: %d left", len(got))
		}
	})
}

// testNotifications: a notification is claimed by one handle at a time,
// sent once for good, re-claimable when released or abandoned past the
// lease.
func testNotifications(t *testing.T, s *suite) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	lease := time.Minute
	claim := func(t *testing.T, st epoch.Store, tok, ev string, at time.Time) bool {
		t.Helper()
		ok, err := st.ClaimNotification(ctx, tok, ev, at, lease)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	t.Run("one claimer; sent stays sent", func(t *testing.T) {
		tok := tokenID()
		if !claim(t, s.a, tok, "expiring:720h", now) {
			t.Fatal("first claim refused")
		}
		if claim(t, s.b, tok, "expiring:720h", now) || claim(t, s.a, tok, "expiring:720h", now.Add(lease-time.Second)) {
			t.Fatal("a second claim within the lease succeeded")
		}
		if !claim(t, s.b, tok, "expiring:168h", now) {
			t.Fatal("another event of the token was refused")
		}
		wantErr(t, s.a.NotificationSent(ctx, tok, "expiring:720h", now), nil)
		for _, at := range []time.Time{now, now.Add(2 * lease), now.Add(1000 * time.Hour)} {
			if claim(t, s.b, tok, "expiring:720h", at) {
				t.Fatalf("a sent notification was claimed again at %v", at)
			}
		}
		wantErr(t, s.b.ReleaseNotification(ctx, tok, "expiring:720h"), nil)
		if claim(t, s.a, tok, "expiring:720h", now.Add(2*lease)) {
			t.Fatal("releasing a sent notification made it claimable")
		}
	})
	t.Run("released", func(t *testing.T) {
		tok := tokenID()
		if !claim(t, s.a, tok, "expired_unused", now) {
			t.Fatal("first claim refused")
		}
		wantErr(t, s.a.ReleaseNotification(ctx, tok, "expired_unused"), nil)
		if !claim(t, s.b, tok, "expired_unused", now) {
			t.Fatal("a released claim was refused")
		}
	})
	t.Run("abandoned past the lease", func(t *testing.T) {
		tok := tokenID()
		if !claim(t, s.a, tok, "expiring:24h", now) {
			t.Fatal("first claim refused")
		}
		if !claim(t, s.b, tok, "expiring:24h", now.Add(lease)) {
			t.Fatal("a claim abandoned for the lease was refused")
		}
	})
	t.Run("concurrent claims: one winner", func(t *testing.T) {
		tok := tokenID()
		results := make(chan bool, 16)
		for i := range 16 {
			st := []epoch.Store{s.a, s.b}[i%2]
			go func() {
				ok, err := st.ClaimNotification(ctx, tok, "expiring:720h", now, lease)
				results <- ok && err == nil
			}()
		}
		var won []bool
		for range 16 {
			if <-results {
				won = append(won, true)
			}
		}
		if len(won) != 1 {
			t.Fatalf("%d claims won, want 1", len(won))
		}
	})
}
