// Package verifier decides whether a token is valid for a request and who it
// speaks for. Verification runs in a fixed order, and nothing unsigned
// reaches a store:
//
//  1. limits (size, caveat count, caveat length), before any decoding;
//  2. decode: base64 and canonical v2 binary;
//  3. key lookup by the id in the identifier, in memory;
//  4. HMAC chain, compared in constant time;
//  5. caveats: every one parsed by its exact name and satisfied, and the
//     token's lifetime within the maximum for its kind (WithMaxLifetime);
//  6. epoch: the editor exists, is active, and its epoch is before the
//     token's creation.
//
// Steps 2–5 for a token already seen are served from a cache keyed by the
// exact token text and bounded in entries and bytes; the key's liveness, the
// caveats and the epoch are still checked on every call. A panic below Verify is recovered as a denial.
package verifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// Keys looks root keys up by id, in memory. macaroon.KeyStore implements it.
// It returns macaroon.ErrUnknownKey or macaroon.ErrRetiredKey for keys that
// may not verify.
type Keys interface {
	Key(id string) (*macaroon.Key, error)
}

// Identity is who a valid token speaks for. Its JSON form is what the CLI
// and the daemon print.
type Identity struct {
	// EditorID is the editor the token acts for.
	EditorID string `json:"editor_id"`
	// Username is the editor's username as the minter wrote it into the
	// token ("" when it did not). Show it; authorise by EditorID.
	Username string `json:"username,omitempty"`
	// Kind is the kind of token the minter wrote into it (session, api,
	// exchange, cli, bootstrap), or "" when it wrote none.
	Kind caveat.Kind `json:"kind,omitempty"`
	// Role is the editor's role, from the epoch store.
	Role epoch.Role `json:"role"`
	// TokenID is the token's own id ("" for fatcat-format tokens).
	TokenID string `json:"token_id,omitempty"`
	// KeyID is the root key the token was minted under.
	KeyID string `json:"key_id"`
	// Created is when the token was minted.
	Created time.Time `json:"created"`
	// Expires is the token's earliest expiry, or zero when it has none.
	Expires time.Time `json:"expires,omitzero"`
	// Rights is the set of rights the token may exercise, or nil when its
	// caveats do not restrict rights.
	Rights []string `json:"rights,omitempty"`
}

// Can reports whether the token may exercise right: its editor's role
// permits it (epoch.Role.Permits) and its rights caveats, if any, list it.
func (id Identity) Can(right string) bool {
	return id.Role.Permits(right) && (id.Rights == nil || slices.Contains(id.Rights, right))
}

// A Verifier verifies tokens. It is safe for concurrent use.
type Verifier struct {
	keys    Keys
	states  epoch.Source
	checker *caveat.Checker
	limits  macaroon.Limits
	now     func() time.Time
	sigs    *sigCache
	// sigEntries and sigBytes bound the signature cache (see
	// WithSignatureCache and WithSignatureCacheBytes).
	sigEntries int
	sigBytes   int64
	// lifetimes are the maximum lifetimes by kind (WithMaxLifetime).
	lifetimes map[caveat.Kind]Lifetime
	// scratch holds *[scratchSize]byte decode buffers. Nothing derived from
	// a buffer outlives verifySignature: ids and claims are copied out.
	scratch sync.Pool
}

// An Option configures a Verifier.
type Option func(*Verifier) error

// WithClock sets the verifier's clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) error { v.now = now; return nil }
}

// WithChecker sets the caveat checker, for a clock skew other than
// caveat.DefaultSkew or an application's own caveats.
func WithChecker(c *caveat.Checker) Option {
	return func(v *Verifier) error { v.checker = c; return nil }
}

// WithLimits sets the size, caveat-count and caveat-length limits (zero
// fields keep macaroon.DefaultLimits).
func WithLimits(l macaroon.Limits) Option {
	return func(v *Verifier) error {
		d := macaroon.DefaultLimits
		if l.MaxTokenSize > 0 {
			d.MaxTokenSize = l.MaxTokenSize
		}
		if l.MaxCaveats > 0 {
			d.MaxCaveats = l.MaxCaveats
		}
		if l.MaxCaveatLen > 0 {
			d.MaxCaveatLen = l.MaxCaveatLen
		}
		v.limits = d
		return nil
	}
}

// DefaultSignatureCacheSize is how many verified tokens a Verifier
// remembers by default: enough for 50,000 clients each presenting its own
// token. (A cache smaller than the tokens in use thrashes: each miss
// evicts an entry another client needs next, and costs more than no
// cache at all.)
const DefaultSignatureCacheSize = 65_536

// DefaultSignatureCacheBytes is how much memory the signature cache may
// hold by default, as counted by the entry cost documented at
// WithSignatureCacheBytes: about 60,000 typical session tokens (about
// 1.4 KiB counted, 0.55 KiB really held, each), whose heap is then about
// 33 MiB; no set of tokens makes it hold more than this bound.
const DefaultSignatureCacheBytes = 80 << 20

// WithSignatureCache sets how many verified tokens are remembered, so
// that verifying the same token again skips decoding, the HMAC chain and
// caveat parsing (default DefaultSignatureCacheSize; 0 disables). The cache
// is also bounded in bytes: see WithSignatureCacheBytes.
func WithSignatureCache(size int) Option {
	return func(v *Verifier) error {
		if size < 0 {
			return fmt.Errorf("verifier: negative signature cache size %d", size)
		}
		v.sigEntries = size
		return nil
	}
}

// WithSignatureCacheBytes bounds the memory the signature cache holds
// (default DefaultSignatureCacheBytes; 0 disables the cache). Each entry
// counts, as an upper estimate of what it keeps alive: the token text (the
// map key), the identifier, for every caveat its length plus 64 bytes plus
// 32 bytes per comma-separated list item, plus a fixed 384 bytes. A token
// whose cost alone exceeds the bound is verified but not remembered. When
// an entry would not fit, arbitrary entries are evicted.
func WithSignatureCacheBytes(maxBytes int64) Option {
	return func(v *Verifier) error {
		if maxBytes < 0 {
			return fmt.Errorf("verifier: negative signature cache bound %d", maxBytes)
		}
		v.sigBytes = maxBytes
		return nil
	}
}

// SignatureCacheSize returns how many tokens the signature cache holds and
// the bytes they count for (see WithSignatureCacheBytes).
func (v *Verifier) SignatureCacheSize() (entries int, bytes int64) {
	return v.sigs.size()
}

// New returns a Verifier that looks keys up in keys and editor state in
// states. Put an epoch.Cache in front of a database-backed states, or every
// verification reads the database.
func New(keys Keys, states epoch.Source, opts ...Option) (*Verifier, error) {
	if keys == nil || states == nil {
		return nil, errors.New("verifier: keys and states are required")
	}
	v := &Verifier{keys: keys, states: states, limits: macaroon.DefaultLimits, now: time.Now,
		sigEntries: DefaultSignatureCacheSize, sigBytes: DefaultSignatureCacheBytes}
	for _, o := range opts {
		if err := o(v); err != nil {
			return nil, err
		}
	}
	v.sigs = newSigCache(v.sigEntries, v.sigBytes)
	if v.checker == nil {
		c, err := caveat.NewChecker()
		if err != nil {
			return nil, err
		}
		v.checker = c
	}
	return v, nil
}

// verified is what steps 2–5 learn from a token: kept in the signature
// cache.
type verified struct {
	key     *macaroon.Key
	keyID   string
	tokenID string
	claims  caveat.Claims
	// revocable are the ids a one-by-one revocation may name: the token's
	// own and its parents'. For a token without parents it is own[:1], so
	// that the common case costs no allocation of its own.
	revocable []string
	own       [1]string
	// cost is what the entry counts for in the signature cache.
	cost int64
	// overPolicy is the token's lifetime refusal (WithMaxLifetime), decided
	// once: it depends on the claims and the verifier's fixed policy only.
	overPolicy error
}

// Verify verifies token for req and returns the identity it speaks for, or
// a *Denial whose reason wraps the sentinels of this package. req.Time is
// set from the verifier's clock.
func (v *Verifier) Verify(ctx context.Context, token string, req caveat.Request) (id Identity, err error) {
	defer func() {
		if r := recover(); r != nil {
			id, err = Identity{}, &Denial{Err: fmt.Errorf("%w: %v", ErrInternal, r)}
		}
	}()
	req.Time = v.now()
	if len(token) > v.limits.MaxTokenSize {
		// Checked before the cache lookup, which would hash the whole text.
		return Identity{}, &Denial{Err: fmt.Errorf("%w: token is %d bytes, over the limit of %d", ErrMalformed, len(token), v.limits.MaxTokenSize)}
	}
	vt := v.sigs.get(token)
	if vt != nil {
		// The key may have been retired or replaced since.
		if k, err := v.keys.Key(vt.keyID); err != nil {
			return Identity{}, &Denial{Err: err, KeyID: vt.keyID, TokenID: vt.tokenID, EditorID: vt.claims.EditorID}
		} else if k != vt.key {
			vt = nil
		}
	}
	if vt == nil {
		if vt, err = v.verifySignature(token); err != nil {
			return Identity{}, err
		}
		v.sigs.put(token, vt)
	}
	return v.authorize(ctx, vt, &req)
}

// scratchSize is the decoded size of a DefaultLimits token; tokens under
// larger limits decode into a buffer of their own.
const scratchSize = 3072

// verifySignature runs steps 1–5 up to parsing the caveats.
func (v *Verifier) verifySignature(token string) (*verified, error) {
	scratch, _ := v.scratch.Get().(*[scratchSize]byte)
	if scratch == nil {
		scratch = new([scratchSize]byte)
	}
	defer v.scratch.Put(scratch)
	tok, err := macaroon.Decode(token, v.limits, scratch[:])
	if err != nil {
		return nil, &Denial{Err: err} // wraps ErrMalformed
	}
	// One allocation for the ids and the caveats: everything kept from the
	// token (ids, claims) is a substring of it.
	var cavs [16]string
	keyID, tokenID, caveats := tok.SignedText(cavs[:0])
	key, err := v.keys.Key(keyID)
	if err != nil {
		return nil, &Denial{Err: fmt.Errorf("key %q: %w", keyID, err), KeyID: keyID, TokenID: tokenID}
	}
	if err := key.Verify(&tok); err != nil {
		return nil, &Denial{Err: err, KeyID: keyID, TokenID: tokenID}
	}
	vt := &verified{key: key, keyID: keyID, tokenID: tokenID}
	if err := v.checker.ParseClaimStrings(&vt.claims, caveats); err != nil {
		return nil, &Denial{Err: fmt.Errorf("%w: %w", ErrMalformed, err), KeyID: keyID, TokenID: tokenID}
	}
	if v.sigs != nil {
		vt.cost = entryCost(token, keyID, tokenID, caveats)
	}
	detach(vt)
	vt.overPolicy = v.checkLifetime(&vt.claims)
	if len(vt.claims.Parents) == 0 && tokenID != "" {
		vt.own[0] = tokenID
		vt.revocable = vt.own[:]
	} else if tokenID != "" || len(vt.claims.Parents) > 0 {
		vt.revocable = append(make([]string, 0, 1+len(vt.claims.Parents)), vt.claims.Parents...)
		if tokenID != "" {
			vt.revocable = append(vt.revocable, tokenID)
		}
	}
	return vt, nil
}

// detach copies the strings an Identity hands out — the key, token and
// editor ids, the username, the kind, the rights — into one allocation of
// their own. They were substrings of the token's signed text (one copy for
// all of them, Token.SignedText), so a caller keeping any one (the epoch
// cache keys its entries by editor id, the last-use tracker its notes by
// token id, an application its sessions) would keep the whole text alive:
// up to the token size limit for a 26-byte id.
func detach(vt *verified) {
	var buf [16]*string
	ss := append(buf[:0], &vt.keyID, &vt.tokenID, &vt.claims.EditorID, &vt.claims.Username, (*string)(&vt.claims.Kind))
	for i := range vt.claims.Rights {
		ss = append(ss, &vt.claims.Rights[i])
	}
	n := 0
	for _, p := range ss {
		n += len(*p)
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range ss {
		b.WriteString(*p)
	}
	all := b.String()
	for _, p := range ss {
		*p, all = all[:len(*p)], all[len(*p):]
	}
}

// authorize runs the per-request checks: caveats against req, then the
// editor's epoch.
func (v *Verifier) authorize(ctx context.Context, vt *verified, req *caveat.Request) (Identity, error) {
	if vt.overPolicy != nil {
		return Identity{}, &Denial{Err: vt.overPolicy, KeyID: vt.keyID, TokenID: vt.tokenID, EditorID: vt.claims.EditorID}
	}
	if err := v.checker.Check(&vt.claims, req); err != nil {
		return Identity{}, &Denial{Err: err, KeyID: vt.keyID, TokenID: vt.tokenID, EditorID: vt.claims.EditorID}
	}
	st, err := v.states.State(ctx, vt.claims.EditorID)
	if err == nil {
		err = st.Admit(vt.claims.Created, vt.revocable...)
	} else if !errors.Is(err, epoch.ErrNotFound) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err == nil {
		for _, r := range req.Rights {
			if !st.Role.Permits(r) {
				err = fmt.Errorf("%w: a %s may not exercise %q", ErrRoleForbids, st.Role, r)
				break
			}
		}
	}
	if err != nil {
		return Identity{}, &Denial{Err: err, KeyID: vt.keyID, TokenID: vt.tokenID, EditorID: vt.claims.EditorID}
	}
	id := Identity{
		EditorID: vt.claims.EditorID,
		Username: vt.claims.Username,
		Kind:     vt.claims.Kind,
		Role:     st.Role,
		TokenID:  vt.tokenID,
		KeyID:    vt.keyID,
		Created:  vt.claims.Created,
		Expires:  vt.claims.Expires,
	}
	if vt.claims.Rights != nil {
		// The rights the token lists, bounded by the editor's role.
		id.Rights = make([]string, 0, len(vt.claims.Rights))
		for _, r := range vt.claims.Rights {
			if st.Role.Permits(r) {
				id.Rights = append(id.Rights, r)
			}
		}
	}
	return id, nil
}

// The cost of a signature cache entry (see WithSignatureCacheBytes).
const (
	entryOverhead    = 384 // the verified value, the map slot, pointers, the epoch-check ids
	caveatOverhead   = 64  // a parsed caveat's header: interface, slice or string
	listItemOverhead = 32  // a list item's string header and allocation
)

// entryCost is an upper estimate of the memory a cache entry for token
// keeps alive: the key text, the identifier the ids are cut from, and the
// claims parsed from caveats (each at most its text plus headers).
func entryCost(token, keyID, tokenID string, caveats []string) int64 {
	n := int64(entryOverhead + len(token) + len(keyID) + 1 + len(tokenID))
	for _, c := range caveats {
		n += int64(caveatOverhead + len(c) + listItemOverhead*(1+strings.Count(c, ",")))
	}
	return n
}

// sigCache remembers verified tokens by their exact text, bounded in
// entries and in bytes (entry costs); when full, arbitrary entries are
// evicted (the map's hash order under a per-process seed).
//
// A lookup takes no lock and writes no shared memory (sync.Map's Load),
// so cores verifying at once do not contend on the hit path; every change
// is made under mu, which keeps the counts exact.
type sigCache struct {
	maxEntries int
	maxBytes   int64
	m          sync.Map // token text → *verified
	mu         sync.Mutex
	entries    int   // under mu
	bytes      int64 // under mu
}

func newSigCache(maxEntries int, maxBytes int64) *sigCache {
	if maxEntries == 0 || maxBytes == 0 {
		return nil
	}
	return &sigCache{maxEntries: maxEntries, maxBytes: maxBytes}
}

func (c *sigCache) get(token string) *verified {
	if c == nil {
		return nil
	}
	if vt, ok := c.m.Load(token); ok {
		return vt.(*verified)
	}
	return nil
}

func (c *sigCache) put(token string, vt *verified) {
	if c == nil || vt.cost > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m.LoadAndDelete(token); ok {
		// A concurrent verification of the same token got here first.
		c.bytes -= old.(*verified).cost
		c.entries--
	}
	if c.entries >= c.maxEntries || c.bytes+vt.cost > c.maxBytes {
		c.m.Range(func(k, e any) bool {
			c.m.Delete(k)
			c.entries--
			c.bytes -= e.(*verified).cost
			return c.entries >= c.maxEntries || c.bytes+vt.cost > c.maxBytes
		})
	}
	c.m.Store(token, vt)
	c.entries++
	c.bytes += vt.cost
}

func (c *sigCache) size() (int, int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries, c.bytes
}
