// Package storetest is the conformance suite of amaretti's authoritative
// stores: the behaviour of the epoch.Store contract (editors and their
// epochs, the change log, the API-token registry, login links) and its
// concurrency properties, written once and run against every backend
// (epoch/sqlite, epoch/postgres) on a real store — no mocks, no fake clock.
//
// # Using it from a backend
//
// A backend's test package gives Run an Opener: New makes a fresh, empty
// store and returns its address; Open opens a handle on an address, applying
// migrations. Several handles on one address must behave as several
// processes would (separate connection pools), because the suite uses two of
// them to check what concurrent writers see.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, opener)
//	}
//
//	var opener = storetest.Opener{
//		Name: "sqlite",
//		New:  func(t *testing.T) string { return filepath.Join(t.TempDir(), "a.db") },
//		Open: func(ctx context.Context, addr string) (epoch.Store, error) { return sqlite.Open(ctx, addr) },
//		OpenLimited: func(ctx context.Context, addr string, maxLive, maxRevoked int) (epoch.Store, error) {
//			return sqlite.Open(ctx, addr, sqlite.WithTokenLimits(maxLive, maxRevoked))
//		},
//		ChildProcesses: true,
//	}
//
//	func TestMain(m *testing.M) { storetest.Main(m, opener) }
//
// A TestMain that must do more around m.Run (start a database server)
// calls Child(opener) first instead, then its set-up, m.Run and tear-down.
// In a child, Open gets nothing but the address: it must not depend on
// anything TestMain sets up.
//
// OpenLimited is optional: without it the suite checks the default token
// limits (epoch.DefaultMaxLiveTokens, epoch.DefaultMaxRevokedTokens), which
// takes a couple of thousand registrations. ChildProcesses (with TestMain
// calling Main) runs the concurrent-touch test with touches from separate
// OS processes, re-executions of the test binary, as well as from two
// handles in this one.
//
// # What it checks
//
// Editors: creation (generated ids, defaults, validation, ErrExists on an
// id or a username taken in any case), reads (case-insensitive usernames,
// List in order of creation, ErrNotFound), touch (max(now, epoch + 1 µs),
// locked stays locked), touch of everyone, lock, unlock, (de)activation,
// versions bumped by every change, and the epoch rule at microsecond
// precision. The change log: one row per change (editor and new version;
// "" and 0 for everyone), none for reads, links, registrations, last uses
// or refused operations; State.Seq is the head it was read at; paging;
// Head; store ids. Sequence numbers may have gaps: only their order is
// checked. The registry: validation (ErrInvalidToken), round trips, order,
// names (ErrNameTaken while the token may verify), limits
// (ErrTooManyTokens), revocation (ErrAlreadyRevoked, ErrTokenNotFound, the
// sorted revoked list and what it leaves out), expiring tokens, last uses
// and their attenuation, rotation (RotateToken's refusals and links,
// RetireRotated's triggers, chains, one concurrent rotation winning).
// Logins: Login, Link, Links, LinkedEditor, Unlink, ErrLinked,
// ErrInvalidLink. The audit trail: round trips, newest first, filters,
// cursor pages, invalid events refused whole, no change-log row, pruning
// by age (recorded). Notification claims: one claimer, sent for good,
// released and abandoned claims re-claimable. Concurrency through two handles (and child processes):
// touches of one editor (no lost update, epochs only grow, the log's
// versions strictly increase), touches of everyone racing revocations,
// one name registered at once, one identity's first logins, one username
// created at once. A closed handle fails with a store error, never
// ErrNotFound.
//
// # Cost
//
// Run calls New twice: one store shared by the subtests (each works on
// editors of its own, and the subtests run one after another, so that each
// can read exactly what it appended to the change log), and one kept empty
// (store identity, an empty store's reads). Handles are closed when Run's
// test ends.
//
// # Time
//
// The store's clock decides epochs (PostgreSQL's server clock). The suite
// never fakes it: it checks epochs against each other and against the test
// host's clock with a slack of ClockSlack, and tests expiry with tokens
// whose Expires is already past. It assumes the store's clock is this
// host's (a server on loopback).
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// Opener makes the stores the suite tests.
type Opener struct {
	// Name names the backend in messages (optional).
	Name string
	// New returns the address of a fresh, empty store (a file path, a
	// database URL): a new one on each call.
	New func(t *testing.T) string
	// Open opens a handle on the store at addr, applying migrations.
	// Several handles on one addr behave as several processes would. The
	// suite closes what it opens.
	Open func(ctx context.Context, addr string) (epoch.Store, error)
	// OpenLimited, optional, opens a handle like Open whose token limits
	// are maxLive live tokens and maxRevoked listed revoked tokens per
	// editor (sqlite.WithTokenLimits). Without it the suite checks the
	// default limits, which is slower.
	OpenLimited func(ctx context.Context, addr string, maxLive, maxRevoked int) (epoch.Store, error)
	// ChildProcesses says that the test binary's TestMain calls Main (or
	// Child) with this Opener, so that the suite may re-execute the binary to touch an
	// editor from separate OS processes.
	ChildProcesses bool
}

// ClockSlack is how far a time the store sets (an epoch, a creation or
// revocation time) may lie outside the host's clock readings taken around
// the call that set it.
const ClockSlack = 2 * time.Second

// suite is one run: the shared store, two handles on it ("two
// processes"), and a counter for unique names.
type suite struct {
	o    Opener
	addr string
	// a and b are two handles on the shared store.
	a, b epoch.Store
	n    atomic.Int64
}

// Run runs every conformance test as subtests of t.
func Run(t *testing.T, o Opener) {
	if o.New == nil || o.Open == nil {
		t.Fatal("storetest: Opener.New and Opener.Open are required")
	}
	s := &suite{o: o, addr: o.New(t)}
	s.a = s.open(t, s.addr)
	s.b = s.open(t, s.addr)
	groups := []struct {
		name string
		run  func(t *testing.T, s *suite)
	}{
		{"Store", testStore},
		{"Create", testCreate},
		{"Read", testRead},
		{"EpochRule", testEpochRule},
		{"Touch", testTouch},
		{"LockUnlock", testLockUnlock},
		{"SetActive", testSetActive},
		{"UnknownEditor", testUnknownEditor},
		{"TouchAll", testTouchAll},
		{"ChangeLog", testChangeLog},
		{"ChangesPaging", testChangesPaging},
		{"Head", testHead},
		{"RegisterToken", testRegisterToken},
		{"TokenRoundTrip", testTokenRoundTrip},
		{"TokensOrder", testTokensOrder},
		{"TokenNames", testTokenNames},
		{"TokenLimits", testTokenLimits},
		{"RevokeToken", testRevokeToken},
		{"RevokedList", testRevokedList},
		{"ExpiringTokens", testExpiringTokens},
		{"RecordUses", testRecordUses},
		{"UseAttenuation", testUseAttenuation},
		{"RotateToken", testRotateToken},
		{"RetireRotated", testRetireRotated},
		{"ConcurrentRotations", testConcurrentRotations},
		{"Login", testLogin},
		{"Links", testLinks},
		{"Unlink", testUnlink},
		{"Audit", testAudit},
		{"Notifications", testNotifications},
		{"ConcurrentTouches", testConcurrentTouches},
		{"ConcurrentTouchAllAndRevocations", testTouchAllWhileRevoking},
		{"ConcurrentNames", testConcurrentNames},
		{"ConcurrentLogins", testConcurrentLogins},
		{"ConcurrentCreates", testConcurrentCreates},
		{"FreshStores", testFreshStores},
		{"Copy", testCopy},
		{"Closed", testClosed},
	}
	if o.ChildProcesses {
		groups = append(groups, struct {
			name string
			run  func(t *testing.T, s *suite)
		}{"TouchesFromProcesses", testTouchesFromProcesses})
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, s) })
	}
}

// open opens a handle closed when t ends.
func (s *suite) open(t *testing.T, addr string) epoch.Store {
	t.Helper()
	st, err := s.o.Open(context.Background(), addr)
	if err != nil {
		t.Fatalf("%sopen: %v", s.label(), err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (s *suite) label() string {
	if s.o.Name == "" {
		return ""
	}
	return s.o.Name + ": "
}

// username returns a username no other test uses.
func (s *suite) username(kind string) string {
	return fmt.Sprintf("%s%d", kind, s.n.Add(1))
}

// editor creates an editor of its own for a test, through handle a.
func (s *suite) editor(t *testing.T) epoch.Editor {
	t.Helper()
	e, err := s.a.Create(t.Context(), epoch.NewEditor{Username: s.username("ed")})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return e
}

// tokenID returns a fresh random upper-case UUID.
func tokenID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// sortedIDs returns n fresh token ids in increasing order.
func sortedIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = tokenID()
	}
	sort.Strings(ids)
	return ids
}

// token is a row for editor e created one microsecond after its epoch
// (so that the epoch does not revoke it), named name, never expiring.
func token(e epoch.Editor, name string) epoch.APIToken {
	return epoch.APIToken{TokenID: tokenID(), EditorID: e.ID, Name: name, Created: e.AuthEpoch.Add(time.Microsecond), Creator: "cli"}
}

// register registers rows through st, failing the test on an error.
func register(t *testing.T, st epoch.Store, rows ...epoch.APIToken) {
	t.Helper()
	for _, r := range rows {
		if err := st.RegisterToken(t.Context(), r); err != nil {
			t.Fatalf("RegisterToken(%s): %v", r.Name, err)
		}
	}
}

// near reports whether got, set by the store during a call, lies within
// [before, after] widened by ClockSlack.
func near(got, before, after time.Time) bool {
	return !got.Before(before.Add(-ClockSlack)) && !got.After(after.Add(ClockSlack))
}

// µs truncates to the precision stores keep.
func µs(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// appended runs do and returns the change-log rows appended meanwhile,
// checking that the head moved to the last of them and kept its store id.
// Subtests run one at a time, so every row is do's.
func (s *suite) appended(t *testing.T, do func() error) ([]epoch.Change, error) {
	t.Helper()
	ctx := t.Context()
	before, err := s.a.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	doErr := do()
	after, err := s.a.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	cs, err := s.a.Changes(ctx, before.Seq, 1000)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if after.StoreID != before.StoreID {
		t.Fatalf("the store id changed from %q to %q", before.StoreID, after.StoreID)
	}
	switch {
	case len(cs) == 0 && after.Seq != before.Seq:
		t.Fatalf("head moved from %d to %d but Changes(%d) is empty", before.Seq, after.Seq, before.Seq)
	case len(cs) > 0 && cs[len(cs)-1].Seq != after.Seq:
		t.Fatalf("head %d, newest change %+v", after.Seq, cs[len(cs)-1])
	}
	return cs, doErr
}

// noChange runs do, which must append nothing to the change log, and
// returns its error.
func (s *suite) noChange(t *testing.T, do func() error) error {
	t.Helper()
	cs, err := s.appended(t, do)
	if len(cs) != 0 {
		t.Fatalf("appended %+v to the change log, want nothing (error %v)", cs, err)
	}
	return err
}

// wantErr fails t unless err is want (nil: no error).
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

// oneChange runs do, which must succeed and append exactly one row for
// editorID ("" for every editor) at its new version, now-ish. It returns
// the row.
func (s *suite) oneChange(t *testing.T, editorID string, do func() error) epoch.Change {
	t.Helper()
	return s.oneChangeOf(t, func() string { return editorID }, do)
}

// oneChangeOf is oneChange for an editor known once do has run.
func (s *suite) oneChangeOf(t *testing.T, editor func() string, do func() error) epoch.Change {
	t.Helper()
	before := time.Now()
	cs, err := s.appended(t, do)
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("appended %d rows (%+v), want 1", len(cs), cs)
	}
	c, editorID := cs[0], editor()
	if c.EditorID != editorID || c.Keys || !near(c.At, before, after) {
		t.Fatalf("change %+v, want editor %q, at about %v", c, editorID, before)
	}
	if editorID == "" {
		if c.Version != 0 {
			t.Fatalf("touch-all change %+v has a version", c)
		}
		return c
	}
	e, err := s.a.Editor(t.Context(), editorID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != e.Version || e.Seq != c.Seq {
		t.Fatalf("change %+v; editor read after it: version %d, seq %d", c, e.Version, e.Seq)
	}
	return c
}

// must fails t on err.
func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
