package bench

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	neturl "net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/postgres"
	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// scaleSizes are the editor counts BenchmarkScale runs at; 1,000,000
// takes a minute or more to create (one transaction of bulk inserts).
var scaleSizes = flag.String("scale", "1000,100000,1000000", "editor counts for BenchmarkScale, comma-separated")

// scaleStores are the stores BenchmarkScale runs on: sqlite (a file in a
// temporary directory) and postgres (a server of internal/testpg on a
// loopback port, started only when named here).
var scaleStores = flag.String("scale-stores", "sqlite,postgres", "stores for BenchmarkScale, comma-separated: sqlite, postgres")

// The verify benchmarks rotate through the tokens of scaleHot or of
// scaleActive distinct editors (at most all of them): scaleHot fit the
// caches at every size, scaleActive outnumber the in-process cache's
// default (epoch.DefaultCacheSize), so that at a million editors some
// lookups miss.
const (
	scaleHot    = 1_000
	scaleActive = 200_000
)

// scaleStore is what BenchmarkScale needs of a store: the store itself and
// the bulk import it is filled with.
type scaleStore interface {
	epoch.Store
	Import(ctx context.Context, snap *epoch.Snapshot, replace bool) error
}

// pgStore is a PostgreSQL store that is vacuumed and analyzed after its
// import, as autovacuum would do soon after: left to autovacuum, the work
// on a million new rows runs during the measurements, on the same cores.
type pgStore struct {
	*postgres.Store
	vacuum func() error
}

func (s pgStore) settle() error { return s.vacuum() }

// BenchmarkScale measures the cost of verification and of the store's
// operations as editors grow, on SQLite and on PostgreSQL (opt-in: it runs
// only under -bench; sizes with -scale, stores with -scale-stores):
//
//	cd bench && go test -run '^$' -bench Scale -benchtime 5000x -timeout 1h
//	cd bench && go test -run '^$' -bench Scale -scale 1000,100000 -scale-stores sqlite
//
// verify/active=N: tokens of N random editors (1,000, and 200,000 or all
// of them) through a verifier with caches of the default sizes, after a
// warm-up; reports the in-process epoch cache's hit rate. verify-miss: the
// tokens of 1,000 random editors with every epoch lookup a miss, what a
// verification costs when the store answers. state-read: one editor state
// read from the store, what a cache miss costs; reports p50 and p99.
// cached-state: heap per editor state held in epoch.Cache. touch: epoch
// touches of random editors. api-token: API tokens created (minted and
// registered) for random editors.
func BenchmarkScale(b *testing.B) {
	var sizes []int
	for _, f := range splitComma(*scaleSizes) {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 {
			b.Fatalf("-scale: %q is not a count", f)
		}
		sizes = append(sizes, n)
	}
	names := splitComma(*scaleStores)
	var pg *testpg.Server // one server for every size, only when named
	if slices.Contains(names, "postgres") {
		pg = testpg.Start(b)
	}
	opens := map[string]func(b *testing.B) scaleStore{
		"sqlite": func(b *testing.B) scaleStore {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "amaretti.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"postgres": func(b *testing.B) scaleStore {
			url := pg.NewDatabase(b)
			// A read timeout for a loaded machine, not the daemon's 100 ms.
			s, err := postgres.Open(context.Background(), url, postgres.WithQueryTimeout(10*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			u, err := neturl.Parse(url)
			if err != nil {
				b.Fatal(err)
			}
			return pgStore{s, func() error { return pg.Exec(context.Background(), strings.TrimPrefix(u.Path, "/"), "VACUUM ANALYZE") }}
		},
	}
	for _, name := range names {
		open, ok := opens[name]
		if !ok {
			b.Fatalf("-scale-stores: %q is not a store (sqlite, postgres)", name)
		}
		for _, n := range sizes {
			b.Run(fmt.Sprintf("store=%s/editors=%d", name, n), func(b *testing.B) {
				store := open(b)
				defer store.Close()
				scale(b, store, n)
			})
		}
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// editorID is the id of editor i: 26 characters of lower-case base32.
func editorID(i int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var id [26]byte
	for j := len(id) - 1; j >= 0; j-- {
		id[j] = alphabet[i%32]
		i /= 32
	}
	return string(id[:])
}

func scale(b *testing.B, store scaleStore, n int) {
	ctx := context.Background()
	dir := b.TempDir()
	start := time.Now()
	if err := store.Import(ctx, editors(n), false); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d editors imported in %v", n, time.Since(start).Round(time.Millisecond))
	if s, ok := store.(interface{ settle() error }); ok {
		if err := s.settle(); err != nil {
			b.Fatal(err)
		}
	}
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	minter, err := macaroon.NewMinter(keys, location)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))

	// Tokens of min(editors, active) random editors, one each.
	mintTokens := func(b *testing.B, active int) []string {
		tokens := make([]string, min(n, active))
		for i, e := range rng.Perm(n)[:len(tokens)] {
			m, err := minter.Mint(ctx, editorID(e), macaroon.ExpiresIn(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			tokens[i] = m.Token
		}
		return tokens
	}
	verify := func(b *testing.B, tokens []string, opts ...epoch.CacheOption) {
		// The default size; a TTL of an hour, so that the hit rate is the
		// size's doing (with the daemon's default --cache-ttl 2s, an
		// editor seen less often than every 2 s misses whatever the size).
		cache := epoch.NewCache(store, 0, time.Hour, opts...)
		v, err := verifier.New(keys, cache)
		if err != nil {
			b.Fatal(err)
		}
		for _, tok := range tokens { // warm up: every active editor seen once
			if _, err := v.Verify(ctx, tok, caveat.Request{}); err != nil {
				b.Fatal(err)
			}
		}
		hits0, misses0 := cache.Stats()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := v.Verify(ctx, tokens[rng.IntN(len(tokens))], caveat.Request{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		hits, misses := cache.Stats()
		hits, misses = hits-hits0, misses-misses0
		b.ReportMetric(100*float64(hits)/float64(hits+misses), "%hits")
	}
	for _, active := range []int{scaleHot, scaleActive} {
		if active > scaleHot && n <= scaleHot {
			continue // the same as the run before
		}
		b.Run(fmt.Sprintf("verify/active=%d", min(n, active)), func(b *testing.B) {
			verify(b, mintTokens(b, active))
		})
	}
	// Every lookup a miss: the cache's clock moves an hour per lookup, so
	// each verification reads its editor's state from the store.
	b.Run("verify-miss", func(b *testing.B) {
		var hours atomic.Int64
		expired := func() time.Time { return time.Now().Add(time.Duration(hours.Add(1)) * time.Hour) }
		verify(b, mintTokens(b, scaleHot), epoch.WithCacheClock(expired))
	})

	b.Run("state-read", func(b *testing.B) {
		times := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if _, err := store.State(ctx, editorID(rng.IntN(n))); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
	})

	b.Run("cached-state", func(b *testing.B) {
		// States read once from the store, then held by a cache (through
		// a Source serving what was read): the heap it grew by, per state.
		const held = 10_000
		read := make(states, held)
		for range held {
			id := editorID(rng.IntN(n))
			st, err := store.State(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			read[id] = st
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		cache := epoch.NewCache(read, 0, time.Hour)
		ids := make([]string, 0, len(read))
		for id := range read {
			if _, err := cache.State(ctx, id); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, id)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEditor := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)-int64(cap(ids))*16) / float64(len(read))
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N { // the time: a cache hit
			if _, err := cache.State(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(perEditor, "B/editor")
	})

	b.Run("touch", func(b *testing.B) {
		b.ResetTimer()
		for range b.N {
			if _, err := store.Touch(ctx, editorID(rng.IntN(n))); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "touches/s")
	})

	b.Run("api-token", func(b *testing.B) {
		checker, err := caveat.NewChecker()
		if err != nil {
			b.Fatal(err)
		}
		issuer, err := apitoken.NewIssuer(store, minter, checker)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := range b.N {
			if _, _, err := issuer.Create(ctx, apitoken.Request{EditorID: editorID(rng.IntN(n)), Name: fmt.Sprintf("bench-%d", i), Creator: "cli"}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
}

// states serves editor states read before, by id.
type states map[string]epoch.State

// State implements epoch.Source.
func (s states) State(_ context.Context, id string) (epoch.State, error) {
	if st, ok := s[id]; ok {
		return st, nil
	}
	return epoch.State{}, epoch.ErrNotFound
}

// editors is editors 0 … n-1 with an epoch an hour ago, imported in one
// transaction: the benchmark's shortcut past Store.Create, which commits
// (and logs a change) per editor.
func editors(n int) *epoch.Snapshot {
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	snap := &epoch.Snapshot{Editors: make([]epoch.Editor, n)}
	for i := range snap.Editors {
		snap.Editors[i] = epoch.Editor{ID: editorID(i), Username: fmt.Sprintf("u%d", i), Role: epoch.RoleEditor,
			Active: true, AuthEpoch: at, Created: at, Version: 1}
	}
	return snap
}
