package macaroon

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	mv2 "gopkg.in/macaroon.v2"
)

// CurrentKeyer gives the key to mint with; KeyStore implements it.
type CurrentKeyer interface {
	Current() (*Key, error)
}

// A Minter mints tokens: identifier = current key id plus a fresh token id,
// location from configuration, caveats editor_id, created (time >), an
// optional expiry (time <) and whatever restrictions the caller adds (with
// a kind, WithKind, the creation time goes last). It is safe for concurrent
// use.
type Minter struct {
	keys     CurrentKeyer
	location string
	now      func() time.Time
	rand     io.Reader
	checker  *caveat.Checker
	limits   Limits
}

// A MinterOption configures a Minter.
type MinterOption func(*Minter)

// WithMintClock sets the minter's clock (default time.Now).
func WithMintClock(now func() time.Time) MinterOption { return func(m *Minter) { m.now = now } }

// WithMintRandom sets the source of token ids (default crypto/rand).
func WithMintRandom(r io.Reader) MinterOption { return func(m *Minter) { m.rand = r } }

// WithMintChecker sets the checker that extra caveats must parse with, for
// applications that register their own caveats (default: built-ins only).
func WithMintChecker(c *caveat.Checker) MinterOption { return func(m *Minter) { m.checker = c } }

// WithMintLimits sets the limits a minted token must fit (default
// DefaultLimits), which should match the verifiers'.
func WithMintLimits(l Limits) MinterOption { return func(m *Minter) { m.limits = l.orDefault() } }

// NewMinter returns a Minter that mints with keys' current key for the
// given location (for example "api.example.org").
func NewMinter(keys CurrentKeyer, location string, opts ...MinterOption) (*Minter, error) {
	m := &Minter{keys: keys, location: location, now: time.Now, rand: rand.Reader, limits: DefaultLimits}
	for _, o := range opts {
		o(m)
	}
	if m.checker == nil {
		c, err := caveat.NewChecker()
		if err != nil {
			return nil, err
		}
		m.checker = c
	}
	return m, nil
}

// A MintOption adds to one minted token.
type MintOption func(*mintParams)

type mintParams struct {
	username string
	kind     caveat.Kind
	expires  time.Time
	ttl      time.Duration
	caveats  []caveat.Caveat
}

// WithUsername writes the editor's username into the token, as the claim
// "username = <name>" before the creation time, so a frontend can show who
// is logged in without a lookup. It must satisfy caveat.ValidUsername.
func WithUsername(name string) MintOption { return func(p *mintParams) { p.username = name } }

// WithKind writes the kind of token into it, as the claim "kind = <k>",
// which only the minter can write. A token with a kind is laid out
// differently: every caveat the minter writes (editor_id, username, kind,
// expiry, restrictions) comes before the creation time, which is last, so
// that a verifier can tell the token exactly as minted (caveat.Claims
// Pristine) from one a holder appended to. Mint a web frontend's login
// sessions with WithKind(caveat.KindSession): a pristine session may
// create API tokens that outlive it.
func WithKind(k caveat.Kind) MintOption { return func(p *mintParams) { p.kind = k } }

// ExpiresIn makes the token expire d after its creation.
func ExpiresIn(d time.Duration) MintOption { return func(p *mintParams) { p.ttl = d } }

// ExpiresAt makes the token expire at t.
func ExpiresAt(t time.Time) MintOption { return func(p *mintParams) { p.expires = t } }

// WithCaveats adds restricting caveats (rights, endpoint, method, path
// prefix, registered ones) to the token.
func WithCaveats(c ...caveat.Caveat) MintOption {
	return func(p *mintParams) { p.caveats = append(p.caveats, c...) }
}

// Minted is a freshly minted token and what it says.
type Minted struct {
	// Token is the bearer secret in wire form. Show it once; never log it.
	Token   string
	KeyID   string
	TokenID string
	Created time.Time
	// Expires is the token's expiry, or zero when it has none.
	Expires time.Time
}

// Mint mints a token for editorID.
func (m *Minter) Mint(ctx context.Context, editorID string, opts ...MintOption) (*Minted, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !caveat.ValidEditorID(editorID) {
		return nil, fmt.Errorf("mint: invalid editor id %q", editorID)
	}
	var p mintParams
	for _, o := range opts {
		o(&p)
	}
	key, err := m.keys.Current()
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	// Created is kept at microsecond precision, the precision of epochs.
	created := m.now().UTC().Truncate(time.Microsecond)
	expires := p.expires
	if p.ttl != 0 {
		if p.ttl < 0 {
			return nil, errors.New("mint: negative lifetime")
		}
		expires = created.Add(p.ttl)
	}
	cavs := []caveat.Caveat{caveat.EditorID(editorID)}
	if p.username != "" {
		if !caveat.ValidUsername(p.username) {
			return nil, fmt.Errorf("mint: invalid username %q", p.username)
		}
		// Before the creation time: the checker trusts a username only there.
		cavs = append(cavs, caveat.Username(p.username))
	}
	if p.kind != "" {
		if !caveat.ValidKind(p.kind) {
			return nil, errors.New("mint: unknown kind of token")
		}
		cavs = append(cavs, p.kind)
	} else {
		// Without a kind, the layout every earlier token has (pinned by the
		// golden vectors): the creation time right after the claims.
		cavs = append(cavs, caveat.Created(created))
	}
	if !expires.IsZero() {
		if !expires.After(created) {
			return nil, errors.New("mint: expiry is not after creation")
		}
		e := caveat.ExpiresAt(expires)
		expires = e.Time
		cavs = append(cavs, e)
	}
	for _, c := range p.caveats {
		switch c.(type) {
		case caveat.EditorID, caveat.Username, caveat.Kind, caveat.Created:
			return nil, fmt.Errorf("mint: %s is set by the minter", c)
		}
		cavs = append(cavs, c)
	}
	if p.kind != "" {
		// Last: nothing after it means nothing a holder appended.
		cavs = append(cavs, caveat.Created(created))
	}
	tokenID, err := NewTokenID(m.rand)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	id, err := FormatIdentifier(key.id, tokenID)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	mac, err := mv2.New(key.secret[:], []byte(id), m.location, mv2.V2)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	tok, err := appendCaveats(m.checker, m.limits, mac, cavs)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	return &Minted{Token: tok, KeyID: key.id, TokenID: tokenID, Created: created, Expires: expires}, nil
}

// appendCaveats appends caveats (each must parse with checker), encodes the
// token and checks that it fits lim.
func appendCaveats(checker *caveat.Checker, lim Limits, mac *mv2.Macaroon, cavs []caveat.Caveat) (string, error) {
	for _, c := range cavs {
		text := c.String()
		if _, err := checker.Parse(text); err != nil {
			return "", fmt.Errorf("caveat %q: %w", text, err)
		}
		if err := mac.AddFirstPartyCaveat([]byte(text)); err != nil {
			return "", err
		}
	}
	b, err := mac.MarshalBinary()
	if err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	if _, err := Parse(tok, lim); err != nil {
		return "", err
	}
	return tok, nil
}

// Attenuate returns a weaker token: token with the given restricting caveats
// appended. It needs no key: anyone holding a token can attenuate it. The
// caveats must be built-in restrictions and the result must fit
// DefaultLimits; AttenuateWith takes a checker and limits of its own. A
// token in the API token format (FormatAPI) comes back in that format.
func Attenuate(token string, caveats ...caveat.Caveat) (string, error) {
	return AttenuateWith(nil, Limits{}, token, caveats...)
}

// AttenuateWith is Attenuate for applications with their own caveats or
// limits: the caveats must parse with checker (nil: built-ins only) and the
// result must fit lim (zero fields take DefaultLimits).
func AttenuateWith(checker *caveat.Checker, lim Limits, token string, caveats ...caveat.Caveat) (string, error) {
	lim = lim.orDefault()
	t, err := Parse(token, lim)
	if err != nil {
		return "", fmt.Errorf("attenuate: %w", err)
	}
	if len(caveats) == 0 {
		return "", errors.New("attenuate: no caveats to add")
	}
	for _, c := range caveats {
		switch c.(type) {
		case caveat.EditorID, caveat.Username, caveat.Kind, caveat.Created:
			return "", fmt.Errorf("attenuate: %s is a claim, not a restriction", c)
		}
	}
	if checker == nil {
		if checker, err = caveat.NewChecker(); err != nil {
			return "", err
		}
	}
	var mac mv2.Macaroon
	if err := mac.UnmarshalBinary(t.raw); err != nil {
		return "", fmt.Errorf("attenuate: %w", err)
	}
	out, err := appendCaveats(checker, lim, &mac, caveats)
	if err != nil {
		return "", fmt.Errorf("attenuate: %w", err)
	}
	if strings.HasPrefix(token, APIPrefix) {
		// An attenuated API token stays one, so scanners still find it.
		out = FormatAPI(out)
	}
	return out, nil
}
