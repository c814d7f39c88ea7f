package audit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/audit"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/verifier"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRefused(t *testing.T) {
	const tok, ed = "0F0F0F0F-0000-4000-8000-000000000001", "editor1"
	cases := []struct {
		name   string
		err    error
		reason string
	}{
		{"expired", &verifier.Denial{Err: fmt.Errorf("%w: at x", verifier.ErrExpired), TokenID: tok, EditorID: ed}, "expired"},
		{"over policy", &verifier.Denial{Err: verifier.ErrOverPolicy, TokenID: tok, EditorID: ed}, "over_policy"},
		{"revoked one by one", &verifier.Denial{Err: epoch.ErrTokenRevoked, TokenID: tok, EditorID: ed}, "revoked"},
		{"locked", &verifier.Denial{Err: epoch.ErrLocked, TokenID: tok, EditorID: ed}, "editor_locked"},
		{"touched", &verifier.Denial{Err: epoch.ErrRevoked, TokenID: tok, EditorID: ed}, "revoked_by_touch"},
		{"deactivated", &verifier.Denial{Err: epoch.ErrInactive, TokenID: tok, EditorID: ed}, "editor_deactivated"},
		{"bad signature: a forgery", &verifier.Denial{Err: verifier.ErrBadSignature, TokenID: tok}, ""},
		{"expired but no editor (signature unchecked)", &verifier.Denial{Err: verifier.ErrExpired, TokenID: tok}, ""},
		{"no token id", &verifier.Denial{Err: verifier.ErrExpired, EditorID: ed}, ""},
		{"caveat not satisfied: a use, not a refusal of the token", &verifier.Denial{Err: verifier.ErrCaveatNotSatisfied, TokenID: tok, EditorID: ed}, ""},
		{"unavailable", &verifier.Denial{Err: verifier.ErrUnavailable, TokenID: tok, EditorID: ed}, ""},
		{"not a denial", verifier.ErrExpired, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, editor, reason, ok := audit.Refused(c.err)
			if ok != (c.reason != "") || reason != c.reason || ok && (id != tok || editor != ed) {
				t.Fatalf("Refused = %q %q %q %v, want reason %q", id, editor, reason, ok, c.reason)
			}
		})
	}
}

// register makes an editor with one API token and returns the token id.
func register(t *testing.T, s *sqlite.Store, name string) (epoch.Editor, string) {
	t.Helper()
	ed, err := s.Create(t.Context(), epoch.NewEditor{Username: name})
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%08X-0000-4000-8000-000000000000", len(name)*7919)
	if err := s.RegisterToken(t.Context(), epoch.APIToken{TokenID: id, EditorID: ed.ID, Name: "ci", Created: ed.AuthEpoch.Add(time.Microsecond), Creator: "cli"}); err != nil {
		t.Fatal(err)
	}
	return ed, id
}

// TestRefusalsBatched: a flood of refusals of one token is one record per
// interval with the count; unregistered ids are not recorded; past the
// bound, tokens are counted in one record without an id.
func TestRefusalsBatched(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	ed, tok := register(t, s, "alice")
	_, tok2 := register(t, s, "bobbybob")
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	r := audit.NewRefusals(s, time.Minute, nil, audit.WithRefusalsClock(func() time.Time { return at }), audit.WithMaxPending(3))
	for range 5000 {
		r.Seen(tok, ed.ID, "revoked", "192.0.2.7")
	}
	r.Seen("AAAAAAAA-0000-4000-8000-000000000000", "ghost", "expired", "192.0.2.8") // no registry row
	r.Seen(tok2, "x", "expired", "192.0.2.9")
	r.Seen("BBBBBBBB-0000-4000-8000-000000000000", "ghost", "expired", "192.0.2.8") // beyond the bound
	r.Seen("CCCCCCCC-0000-4000-8000-000000000000", "ghost", "expired", "192.0.2.8")
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events, _, err := s.AuditEvents(ctx, epoch.AuditFilter{Action: epoch.AuditTokenRefused})
	if err != nil {
		t.Fatal(err)
	}
	byToken := map[string]epoch.AuditEvent{}
	for _, e := range events {
		byToken[e.TokenID] = e
	}
	if len(events) != 3 || len(byToken) != 3 {
		t.Fatalf("events %+v, want 3", events)
	}
	if e := byToken[tok]; e.Count != 5000 || e.Detail != "revoked" || e.From != "192.0.2.7" || e.EditorID != ed.ID || e.Actor != epoch.ActorDaemon || !e.At.Equal(at) {
		t.Fatalf("flooded token: %+v", e)
	}
	if e := byToken[""]; e.Count != 2 || !strings.Contains(e.Detail, "not itemised") {
		t.Fatalf("overflow: %+v", e)
	}
	// The next interval starts afresh.
	r.Seen(tok, ed.ID, "revoked", "192.0.2.7")
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if events, _, _ := s.AuditEvents(ctx, epoch.AuditFilter{TokenID: tok}); len(events) != 2 || events[0].Count != 1 {
		t.Fatalf("second interval: %+v", events)
	}
}

// TestRefusalsRunFlushesOnStop: Run writes what is pending when its
// context ends.
func TestRefusalsRunFlushesOnStop(t *testing.T) {
	s := openStore(t)
	ed, tok := register(t, s, "carol")
	r := audit.NewRefusals(s, time.Hour, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Seen(tok, ed.ID, "expired", "")
	cancel()
	<-done
	events, _, err := s.AuditEvents(t.Context(), epoch.AuditFilter{TokenID: tok})
	if err != nil || len(events) != 1 {
		t.Fatalf("events %+v, %v", events, err)
	}
}

// TestEventFields: events keep ids and cut details; CLI names the OS user.
func TestEventFields(t *testing.T) {
	cli := audit.CLI()
	if cli.Kind != epoch.ActorCLI || cli.OSUser == "" {
		t.Fatalf("CLI() = %+v", cli)
	}
	e := cli.Event(epoch.AuditKeyRotated, audit.Target{KeyID: "k2", Detail: strings.Repeat("é", 200) + "\n"}, time.Now())
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
	if len(e.Detail) > epoch.MaxAuditDetail {
		t.Fatalf("detail of %d bytes", len(e.Detail))
	}
	old := epoch.APIToken{TokenID: "T1", EditorID: "e1"}
	rot := audit.TokenRotated(audit.Caller("e1", "T0", "192.0.2.1"), old, "T2", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Now())
	if rot.Action != epoch.AuditTokenRotated || rot.TokenID != "T1" || !strings.Contains(rot.Detail, "T2") || rot.ActorTokenID != "T0" || rot.Check() != nil {
		t.Fatalf("TokenRotated = %+v", rot)
	}
	if err := rot.Check(); errors.Is(err, epoch.ErrInvalidAudit) {
		t.Fatal(err)
	}
}

// TestRefusalsKeptOnStoreError: a flush the store fails (here, a cancelled
// context) loses nothing: the next flush writes the refusals noted before
// and since, counted together.
func TestRefusalsKeptOnStoreError(t *testing.T) {
	s := openStore(t)
	ed, tok := register(t, s, "dave")
	r := audit.NewRefusals(s, time.Hour, nil)
	for range 3 {
		r.Seen(tok, ed.ID, "revoked", "192.0.2.10")
	}
	failed, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Flush(failed); err == nil {
		t.Fatal("a flush with a cancelled context succeeded: the test fails nothing")
	}
	r.Seen(tok, ed.ID, "revoked", "192.0.2.11")
	r.Seen(tok, ed.ID, "revoked", "192.0.2.11")
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	events, _, err := s.AuditEvents(t.Context(), epoch.AuditFilter{TokenID: tok})
	if err != nil || len(events) != 1 || events[0].Count != 5 || events[0].From != "192.0.2.10" {
		t.Fatalf("events %+v, %v; want one of 5 refusals, the first from 192.0.2.10", events, err)
	}
}
