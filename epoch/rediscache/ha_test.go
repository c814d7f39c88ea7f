package rediscache_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// shared is the authoritative side several verifiers share: one store and
// one key directory.
type shared struct {
	store *sqlite.Store
	keys  *macaroon.KeyStore
}

func newShared(t *testing.T) shared {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, _, err := macaroon.InitKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	return shared{store, keys}
}

// verifierAt is one verifier's stack, as the daemon wires it, over Redis at
// url (single, Sentinel or Cluster): follower → Layer → in-process cache,
// with the Layer's Watch running (heartbeats every health/4). Its feed
// reports whether the feed is up and every change.
func verifierAt(t *testing.T, url string, sh shared, poll, health time.Duration) (*env, *feed) {
	t.Helper()
	rdb, err := rediscache.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	e := &env{rdb: rdb, store: sh.store, keys: sh.keys}
	e.follower = epoch.NewFollower(sh.store, epoch.WithPollInterval(poll), epoch.WithWindow(testTTL+5*time.Second))
	e.layer = rediscache.New(rdb, sh.store, rediscache.WithTTL(testTTL), rediscache.WithFollower(e.follower), rediscache.WithKeys(sh.keys))
	e.cache = epoch.NewCache(e.layer, 0, time.Hour)
	e.cache.SetBypass(true)
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.follower.Run(ctx, e.cache) }()
	go func() { defer wg.Done(); e.layer.Watch(ctx, e.cache, health, f.record) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, "follower current", 10*time.Second, e.follower.Current)
	waitFor(t, "feed up", 10*time.Second, f.up)
	return e, f
}

// feed records a Watch's onChange calls, with when they came.
type feed struct {
	mu      sync.Mutex
	changes []bool
	at      []time.Time
}

func (f *feed) record(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, up)
	f.at = append(f.at, time.Now())
}

func (f *feed) up() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.changes) > 0 && f.changes[len(f.changes)-1]
}

// downSince returns when the feed went down after t0 (zero if it did not).
func (f *feed) downSince(t0 time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, up := range f.changes {
		if !up && !f.at[i].Before(t0) {
			return f.at[i]
		}
	}
	return time.Time{}
}

// backAfter reports whether the feed went down after t0 and is up again.
func (f *feed) backAfter(t0 time.Time) bool { return !f.downSince(t0).IsZero() && f.up() }

// token is an API token registered for an editor, created after its epoch.
type token struct {
	editor  string
	id      string
	created time.Time
}

// addToken registers another token for an existing editor.
func addToken(t *testing.T, sh shared, editorID string, n int) token {
	t.Helper()
	tok := token{editor: editorID, id: fmt.Sprintf("6F1C3A52-0000-4000-8000-%012d", n), created: time.Now().Add(time.Millisecond)}
	if err := sh.store.RegisterToken(context.Background(), epoch.APIToken{TokenID: tok.id, EditorID: editorID, Name: "t", Created: tok.created, Creator: "test"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	return tok
}

func newToken(t *testing.T, sh shared, username string, n int) token {
	t.Helper()
	ctx := context.Background()
	ed, err := sh.store.Create(ctx, epoch.NewEditor{Username: username})
	if err != nil {
		t.Fatal(err)
	}
	tok := token{editor: ed.ID, id: fmt.Sprintf("6F1C3A52-0000-4000-8000-%012d", n), created: time.Now().Add(time.Millisecond)}
	if err := sh.store.RegisterToken(ctx, epoch.APIToken{TokenID: tok.id, EditorID: ed.ID, Name: "t", Created: tok.created, Creator: "test"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // the token was created after the epoch, as a minted one is
	return tok
}

// admits verifies tok's revocation state as the verifier does: the
// editor's state through the whole stack, then State.Admit. An error
// denies.
func (e *env) admits(tok token) bool {
	st, err := e.cache.State(context.Background(), tok.editor)
	return err == nil && st.Admit(tok.created, tok.id) == nil
}

// revoke revokes tok in the store, notes the commit's time in rev (before
// announcing, which may take a while with Redis failing), then announces
// it through e.
func (e *env) revoke(t *testing.T, tok token, rev *revocations) error {
	t.Helper()
	ed, _, err := e.store.RevokeToken(context.Background(), tok.id)
	if err != nil {
		t.Fatal(err)
	}
	rev.set(tok, time.Now())
	return e.layer.Announce(context.Background(), ed)
}

// load verifies tokens in a loop on each verifier until stop is closed.
// revokedAt returns when a token's revocation committed (zero: not revoked
// yet). A revocation reaches a verifier when it first denies the token in a
// read started after the commit; from then on a read that admits it is a
// violation (the revocation was undone), and the time it took to reach
// each verifier is its lag.
type load struct {
	mu         sync.Mutex
	reads      int
	denied     map[[2]string]time.Time // verifier, token → first denial
	lag        map[[2]string]time.Duration
	violations []string
}

func runLoad(t *testing.T, stop <-chan struct{}, verifiers []*env, toks []token, revokedAt func(token) time.Time) *load {
	t.Helper()
	l := &load{denied: map[[2]string]time.Time{}, lag: map[[2]string]time.Duration{}}
	// quit also stops the load when the test fails before it closes
	// stop: the cleanup waits for the goroutines, which would otherwise
	// run until the package's timeout.
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for vi, e := range verifiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-quit:
					return
				default:
				}
				for _, tok := range toks {
					start := time.Now()
					ok := e.admits(tok)
					end := time.Now()
					k := [2]string{fmt.Sprint(vi), tok.id}
					l.mu.Lock()
					l.reads++
					if r := revokedAt(tok); !r.IsZero() && start.After(r) {
						first, seen := l.denied[k]
						switch {
						case !ok && !seen:
							l.denied[k], l.lag[k] = end, end.Sub(r)
						case ok && seen && start.After(first):
							l.violations = append(l.violations, fmt.Sprintf("verifier %d admitted token %s %v after it had denied it (revoked %v before)", vi, tok.id, start.Sub(first), start.Sub(r)))
						}
					}
					l.mu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() { close(quit); wg.Wait() })
	return l
}

// check fails the test on any violation, and unless every verifier came to
// deny every revoked token within bound; it returns the reads made and the
// largest lag.
func (l *load) check(t *testing.T, verifiers int, revoked []token, bound time.Duration) (int, time.Duration) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.violations {
		t.Error(v)
	}
	var worst time.Duration
	for vi := range verifiers {
		for _, tok := range revoked {
			k := [2]string{fmt.Sprint(vi), tok.id}
			lag, ok := l.lag[k]
			switch {
			case !ok:
				t.Errorf("verifier %d never denied revoked token %s", vi, tok.id)
			case lag > bound:
				t.Errorf("verifier %d denied revoked token %s only %v after its revocation (bound %v)", vi, tok.id, lag, bound)
			}
			worst = max(worst, lag)
		}
	}
	return l.reads, worst
}

// revocations records when tokens were revoked, for runLoad.
type revocations struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (r *revocations) set(tok token, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = map[string]time.Time{}
	}
	r.at[tok.id] = at
}

func (r *revocations) get(tok token) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at[tok.id]
}
