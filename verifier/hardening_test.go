package verifier_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// Behaviours no other test pinned: each test below fails when the bug it
// names is put back.

// Two API tokens of one editor revoked one by one are both refused, the one
// whose id sorts last too, and a third still verifies. (Bugs: a revoked list
// that keeps only the latest revocation; a binary search that misses the
// last element.)
func TestAPITokensRevokedOneByOne(t *testing.T) {
	ctx := context.Background()
	for _, order := range []string{"first then last", "last then first"} {
		t.Run(order, func(t *testing.T) {
			f := newFixture(t)
			f.storeClock.Set(fixNow)
			f.clock.Add(1)
			var minted []*macaroon.Minted
			for i := range 3 {
				m, err := f.minter.Mint(ctx, alice)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.store.RegisterToken(ctx, epoch.APIToken{TokenID: m.TokenID, EditorID: alice, Name: fmt.Sprint("t", i), Created: m.Created, Creator: alice}); err != nil {
					t.Fatal(err)
				}
				minted = append(minted, m)
			}
			slices.SortFunc(minted, func(a, b *macaroon.Minted) int { return strings.Compare(a.TokenID, b.TokenID) })
			first, middle, last := minted[0], minted[1], minted[2]
			revoke := []*macaroon.Minted{first, last}
			if order == "last then first" {
				revoke = []*macaroon.Minted{last, first}
			}
			for i, m := range revoke {
				if _, _, err := f.store.RevokeToken(ctx, m.TokenID); err != nil {
					t.Fatal(err)
				}
				// Every token revoked so far is refused, not only the latest.
				for _, r := range revoke[:i+1] {
					if _, err := f.v.Verify(ctx, r.Token, caveat.Request{}); !errors.Is(err, epoch.ErrTokenRevoked) {
						t.Fatalf("after %d revocations, token %s: %v, want revoked", i+1, r.TokenID, err)
					}
				}
				if _, err := f.v.Verify(ctx, middle.Token, caveat.Request{}); err != nil {
					t.Fatalf("the token never revoked: %v", err)
				}
			}
		})
	}
}

// A token verified once (so cached), then its key's secret replaced on
// disk and the store reloaded: the same token is refused. (Bug: a cache hit
// that checks only that the key id is still live.)
func TestCachedTokenAfterKeySecretReplaced(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := b64(golden(t, caveatsOf()...))
	for range 2 {
		if _, err := f.v.Verify(ctx, tok, corpusRequest); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(f.keys.Dir(), goldenKeyID+".key")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf map[string]any
	if err := json.Unmarshal(data, &kf); err != nil {
		t.Fatal(err)
	}
	kf["secret"] = retiredSecret // any other 32 bytes
	data, _ = json.Marshal(kf)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, tok, corpusRequest); !errors.Is(err, verifier.ErrBadSignature) {
		t.Fatalf("cached token after its key's secret changed: %v, want bad signature", err)
	}
}

// Methods are compared exactly: "method = GET" does not allow "get".
func TestMethodCaseSensitive(t *testing.T) {
	f := newFixture(t)
	tok := b64(golden(t, caveatsOf("method = GET")...))
	for _, tc := range []struct {
		method string
		want   error
	}{
		{"GET", nil},
		{"get", verifier.ErrCaveatNotSatisfied},
		{"Get", verifier.ErrCaveatNotSatisfied},
		{"GET ", verifier.ErrCaveatNotSatisfied},
	} {
		t.Run(tc.method, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), tok, caveat.Request{Method: tc.method, Path: "/x"})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("method %q: %v, want %v", tc.method, err, tc.want)
			}
		})
	}
}

// Every one of the 32 signature bytes counts: flipping any bit of any byte
// is a bad signature, also once the genuine token is cached. (Bug: a
// comparison of a prefix.) macaroon/ctcompare_test.go checks that the
// comparison is constant-time.
func TestSignatureEveryByte(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	good := golden(t, caveatsOf()...)
	if _, err := f.v.Verify(ctx, b64(good), corpusRequest); err != nil {
		t.Fatal(err)
	}
	sigAt := len(good) - 32
	for i := range 32 {
		for _, bit := range []byte{0x01, 0x80} {
			t.Run(fmt.Sprintf("byte %d bit %#x", i, bit), func(t *testing.T) {
				bad := append([]byte{}, good...)
				bad[sigAt+i] ^= bit
				if _, err := f.v.Verify(ctx, b64(bad), corpusRequest); !errors.Is(err, verifier.ErrBadSignature) {
					t.Fatalf("signature byte %d flipped: %v", i, err)
				}
			})
		}
	}
}

// With the caveat limit raised, a 40-caveat token (more than the 32 kept
// inline) whose last caveat forbids the request is refused for that
// reason; and no truncation or byte flip of it panics.
func TestManyCaveatsLastForbids(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verifier.WithLimits(macaroon.Limits{MaxCaveats: 64}))
	cavs := caveatsOf()
	for len(cavs) < 39 {
		cavs = append(cavs, fmt.Sprintf("method = GET,M%c", 'A'+len(cavs)%26))
	}
	allowed := b64(golden(t, append(cavs, "path_prefix = /api/v1")...))
	if _, err := f.v.Verify(ctx, allowed, corpusRequest); err != nil {
		t.Fatalf("40 caveats, all allow: %v", err)
	}
	forbiddenBin := golden(t, append(cavs, "path_prefix = /api/v2")...)
	_, err := f.v.Verify(ctx, b64(forbiddenBin), corpusRequest)
	if !errors.Is(err, verifier.ErrCaveatNotSatisfied) || !strings.Contains(err.Error(), "path_prefix = /api/v2: request path is outside the prefix") {
		t.Fatalf("40 caveats, the last forbids: %v", err)
	}
	tok, err := macaroon.Parse(b64(forbiddenBin), macaroon.Limits{MaxCaveats: 64})
	if err != nil || tok.NumCaveats() != 40 || tok.Caveats()[39] != "path_prefix = /api/v2" || len(tok.AppendCaveats(nil)) != 40 {
		t.Fatalf("Parse: %v", err)
	}
	for i := range forbiddenBin {
		if _, err := f.v.Verify(ctx, b64(forbiddenBin[:i]), corpusRequest); !errors.Is(err, verifier.ErrMalformed) {
			t.Fatalf("truncated to %d bytes: %v", i, err)
		}
		bad := append([]byte{}, forbiddenBin...)
		bad[i] ^= 0x40
		if _, err := f.v.Verify(ctx, b64(bad), corpusRequest); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
}

// A cache of 4 entries holds at most 4 after 100 distinct valid tokens.
func TestSignatureCacheEntryBound(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verifier.WithSignatureCache(4))
	f.clock.Add(1)
	for i := range 100 {
		if _, err := f.v.Verify(ctx, f.mint(t, alice), caveat.Request{}); err != nil {
			t.Fatal(err)
		}
		if n, _ := f.v.SignatureCacheSize(); n > 4 || n != min(i+1, 4) {
			t.Fatalf("after %d tokens the cache holds %d entries, want %d", i+1, n, min(i+1, 4))
		}
	}
}

// methodList is a "method = ..." caveat of GET and n distinct methods of
// width letters (2 to 16), valid for corpusRequest.
func methodList(n, width int) string {
	items := []string{"GET"}
	for i := range n {
		items = append(items, fmt.Sprintf("%c%c", 'A'+i/26, 'A'+i%26)+strings.Repeat("X", width-2))
	}
	return "method = " + strings.Join(items, ",")
}

// L12: one valid token attenuated 10,000 ways adds at most the documented
// byte bound to the verifier, whatever the entry count allows; and the
// entry cost is an upper estimate of the memory really held.
func TestSignatureCacheByteBound(t *testing.T) {
	ctx := context.Background()
	const bound = 2 << 20
	var prefixes []string
	for i := range 21 {
		prefixes = append(prefixes, "path_prefix = /api/v1/things"+strings.Repeat("/aaaa", 2*i))
	}
	lists := slices.Repeat([]string{methodList(63, 2)}, 13) // many small strings: most memory per byte of text
	for _, tc := range []struct {
		name   string
		extra  []string
		req    caveat.Request
		tokens int
	}{
		// The case: 3.7 KiB tokens, 10,000 of them.
		{"path prefixes", prefixes, caveat.Request{Method: "GET", Path: "/api/v1/things" + strings.Repeat("/aaaa", 45)}, 10_000},
		{"method lists", lists, corpusRequest, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// Epochs from memory: the cost measured is the verifier's.
			v, err := verifier.New(f.keys, epoch.NewCache(f.store, 0, time.Hour), verifier.WithClock(f.clock.Now), verifier.WithSignatureCacheBytes(bound))
			if err != nil {
				t.Fatal(err)
			}
			f.v = v
			// Attenuation by hand: the new caveat's packet before the end of
			// the caveats, and the signature chained over it.
			base := golden(t, caveatsOf(tc.extra...)...)
			head, sig := base[:len(base)-35], base[len(base)-32:]
			attenuated := func(i int) string {
				cav := fmt.Appendf(nil, "time < 2027-01-01T00:00:00.%06dZ", i+1)
				mac := hmac.New(sha256.New, sig)
				mac.Write(cav)
				b := append(append([]byte{}, head...), 2, byte(len(cav)))
				b = append(append(b, cav...), 0, 0, 6, 32)
				return b64(mac.Sum(b))
			}
			if n := len(attenuated(0)); n < 3500 || n > 4096 {
				t.Fatalf("token is %d bytes; want 3.5 to 4 KiB", n)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range tc.tokens {
				if _, err := f.v.Verify(ctx, attenuated(i), tc.req); err != nil {
					t.Fatal(err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			entries, counted := f.v.SignatureCacheSize()
			grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("%d tokens of %d bytes: %d entries counting %d bytes; heap grew %d bytes", tc.tokens, len(attenuated(0)), entries, counted, grown)
			if counted > bound || counted < bound/2 || entries < 10 {
				t.Fatalf("cache counts %d bytes in %d entries, bound %d", counted, entries, bound)
			}
			// 256 KiB of slack for what the rest of the process allocated
			// meanwhile.
			if grown > counted+256<<10 {
				t.Fatalf("heap grew %d bytes, more than the %d the cache counts: the entry cost underestimates", grown, counted)
			}
			runtime.KeepAlive(f.v)
		})
	}

	f := newFixture(t)
	tok := b64(golden(t, caveatsOf(lists...)...))
	if _, err := verifier.New(f.keys, f.store, verifier.WithSignatureCacheBytes(-1)); err == nil {
		t.Fatal("negative byte bound accepted")
	}
	off, _ := verifier.New(f.keys, f.store, verifier.WithClock(f.clock.Now), verifier.WithSignatureCacheBytes(0))
	if _, err := off.Verify(ctx, tok, corpusRequest); err != nil {
		t.Fatal(err)
	}
	if n, b := off.SignatureCacheSize(); n != 0 || b != 0 {
		t.Fatalf("disabled cache holds %d entries, %d bytes", n, b)
	}
	tiny, _ := verifier.New(f.keys, f.store, verifier.WithClock(f.clock.Now), verifier.WithSignatureCacheBytes(1000))
	if _, err := tiny.Verify(ctx, tok, corpusRequest); err != nil {
		t.Fatal(err)
	}
	if n, _ := tiny.SignatureCacheSize(); n != 0 {
		t.Fatal("a token costing more than the whole bound was cached")
	}
}

// WithLimits: each limit, lowered, refuses what the default accepts, and,
// raised, accepts what the default refuses.
func TestWithLimits(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	big := b64(golden(t, caveatsOf(slices.Repeat([]string{methodList(22, 16)}, 10)...)...)) // about 5 KB
	small := b64(golden(t, caveatsOf()...))
	longCaveat := b64(golden(t, caveatsOf(methodList(47, 16))...)) // 811 bytes
	longReq := corpusRequest
	if n := len(methodList(47, 16)); n != 811 {
		t.Fatalf("long caveat is %d bytes", n)
	}
	if len(big) < 5000 || len(big) > 6000 {
		t.Fatalf("big token is %d bytes", len(big))
	}
	for _, tc := range []struct {
		name   string
		limits macaroon.Limits
		token  string
		req    caveat.Request
		reason string // "" for accepted
	}{
		{"default refuses 5 KB", macaroon.Limits{}, big, longReq, "over the limit of 4096"},
		{"raised size accepts 5 KB", macaroon.Limits{MaxTokenSize: 8192}, big, longReq, ""},
		{"lowered size refuses", macaroon.Limits{MaxTokenSize: len(small) - 1}, small, corpusRequest, fmt.Sprintf("over the limit of %d", len(small)-1)},
		{"lowered size, exact fit", macaroon.Limits{MaxTokenSize: len(small)}, small, corpusRequest, ""},
		{"default caveat length refuses 811", macaroon.Limits{}, longCaveat, longReq, "over the limit of 512"},
		{"raised caveat length accepts 811", macaroon.Limits{MaxCaveatLen: 1024}, longCaveat, longReq, ""},
		{"lowered caveat length refuses", macaroon.Limits{MaxCaveatLen: 37}, small, corpusRequest, "over the limit of 37"},
		{"lowered caveat length, exact fit", macaroon.Limits{MaxCaveatLen: 38}, small, corpusRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verifier.New(fx.keys, fx.store, verifier.WithClock(fx.clock.Now), verifier.WithLimits(tc.limits))
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // cold, then cached
				_, err = v.Verify(ctx, tc.token, tc.req)
				if tc.reason == "" && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tc.reason != "" && (!errors.Is(err, verifier.ErrMalformed) || !strings.Contains(err.Error(), tc.reason)) {
					t.Fatalf("Verify = %v, want malformed: %s", err, tc.reason)
				}
			}
		})
	}
}

// The last field must be a signature: the same 32 bytes under any other
// field type are malformed, never a signature.
func TestSignatureFieldType(t *testing.T) {
	good := golden(t, caveatsOf()...)
	head, sig := good[:len(good)-34], good[len(good)-32:]
	if good[len(good)-34] != 6 || good[len(good)-33] != 32 {
		t.Fatal("fixture token does not end in a signature packet")
	}
	f := newFixture(t)
	for _, ft := range [][]byte{{1}, {2}, {3}, {4}, {5}, {7}, {0x86, 0x00}, {0x86, 0x01}} {
		t.Run(fmt.Sprintf("field %x", ft), func(t *testing.T) {
			b := append(append(append([]byte{}, head...), ft...), 32)
			b = append(b, sig...)
			_, err := f.v.Verify(context.Background(), b64(b), corpusRequest)
			if !errors.Is(err, verifier.ErrMalformed) {
				t.Fatalf("signature in field %x: %v", ft, err)
			}
			if _, err := macaroon.Parse(b64(b), macaroon.Limits{}); !errors.Is(err, macaroon.ErrMalformed) {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
	if _, err := f.v.Verify(context.Background(), b64(good), corpusRequest); err != nil {
		t.Fatalf("control: %v", err)
	}
}
