package macaroon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
)

func TestMint(t *testing.T) {
	s, _ := initStore(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	m, err := NewMinter(s, "api.example.org", WithMintClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := m.Mint(ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaa", ExpiresIn(time.Hour), WithCaveats(caveat.Rights{"read"}, caveat.Endpoint("list")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(got.Token, "=+/") {
		t.Errorf("token not base64url without padding: %s", got.Token)
	}
	tok, err := Parse(got.Token, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"editor_id = aaaaaaaaaaaaaaaaaaaaaaaaaa",
		"time > 2026-11-22T10:00:00.123456Z",
		"time < 2026-11-22T11:00:00.123456Z",
		"rights = read",
		"endpoint = list",
	}
	if strings.Join(tok.Caveats(), "|") != strings.Join(want, "|") {
		t.Errorf("caveats %q", tok.Caveats())
	}
	cur, _ := s.Current()
	if tok.Location() != "api.example.org" || tok.KeyID() != cur.ID() || tok.TokenID() != got.TokenID || !ValidTokenID(got.TokenID) {
		t.Errorf("token %s %s %s", tok.Location(), tok.KeyID(), tok.TokenID())
	}
	if err := cur.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(now.Truncate(time.Microsecond)) || !got.Expires.Equal(got.Created.Add(time.Hour)) {
		t.Errorf("Minted times %v %v", got.Created, got.Expires)
	}
	named, err := m.Mint(ctx, "alice", WithUsername("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	if nt, _ := Parse(named.Token, Limits{}); strings.Join(nt.Caveats(), "|") != "editor_id = alice|username = Alice|time > 2026-11-22T10:00:00.123456Z" {
		t.Errorf("username not minted before the creation time: %q", nt.Caveats())
	}
	// With a kind, every caveat of the minter comes before the creation
	// time, which is last: the token is pristine as minted, and anything a
	// holder appends makes it not.
	session, err := m.Mint(ctx, "alice", WithUsername("Alice"), WithKind(caveat.KindSession), ExpiresIn(time.Hour), WithCaveats(caveat.Rights{"read", "tokens"}))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := Parse(session.Token, Limits{})
	if got, want := strings.Join(st.Caveats(), "|"), "editor_id = alice|username = Alice|kind = session|time < 2026-11-22T11:00:00.123456Z|rights = read,tokens|time > 2026-11-22T10:00:00.123456Z"; got != want {
		t.Errorf("session caveats\n got %s\nwant %s", got, want)
	}
	checker, _ := caveat.NewChecker()
	for _, tc := range []struct {
		name     string
		extra    []caveat.Caveat
		pristine bool
	}{
		{"as minted", nil, true},
		{"shorter expiry appended", []caveat.Caveat{caveat.ExpiresAt(now.Add(time.Minute))}, false},
		{"method appended", []caveat.Caveat{caveat.Methods{"GET"}}, false},
	} {
		t.Run("pristine/"+tc.name, func(t *testing.T) {
			tok := session.Token
			if tc.extra != nil {
				if tok, err = Attenuate(tok, tc.extra...); err != nil {
					t.Fatal(err)
				}
			}
			p, _ := Parse(tok, Limits{})
			var cavs [][]byte
			for _, c := range p.Caveats() {
				cavs = append(cavs, []byte(c))
			}
			cl, err := checker.Claims(cavs)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Kind != caveat.KindSession || cl.Pristine != tc.pristine || cl.Username != "Alice" {
				t.Errorf("claims %+v", cl)
			}
		})
	}
	again, _ := m.Mint(ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaa")
	if again.TokenID == got.TokenID {
		t.Error("two mints share a token id")
	}

	bad := []struct {
		name   string
		editor string
		opts   []MintOption
	}{
		{"bad editor id", "Not Valid", nil},
		{"editor claim as extra caveat", "a", []MintOption{WithCaveats(caveat.EditorID("b"))}},
		{"created claim as extra caveat", "a", []MintOption{WithCaveats(caveat.Created(now))}},
		{"username claim as extra caveat", "a", []MintOption{WithCaveats(caveat.Username("a"))}},
		{"kind claim as extra caveat", "a", []MintOption{WithCaveats(caveat.KindSession)}},
		{"unknown kind", "a", []MintOption{WithKind("admin")}},
		{"invalid username", "a", []MintOption{WithUsername("a b")}},
		{"invalid caveat value", "a", []MintOption{WithCaveats(caveat.Endpoint("a b"))}},
		{"expiry before creation", "a", []MintOption{ExpiresAt(now.Add(-time.Second))}},
		{"negative lifetime", "a", []MintOption{ExpiresIn(-time.Second)}},
		{"too many caveats", "a", []MintOption{WithCaveats(make30Methods()...)}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Mint(ctx, tc.editor, tc.opts...); err == nil {
				t.Fatal("minted")
			}
		})
	}
	empty := &KeyStore{}
	empty.keys.Store(&keySet{byID: map[string]*Key{}})
	m2, _ := NewMinter(empty, "x")
	if _, err := m2.Mint(ctx, "a"); !errors.Is(err, ErrNoCurrentKey) {
		t.Errorf("mint without a key: %v", err)
	}
}

func make30Methods() []caveat.Caveat {
	out := make([]caveat.Caveat, 31)
	for i := range out {
		out[i] = caveat.Methods{"GET"}
	}
	return out
}

func TestAttenuate(t *testing.T) {
	s, _ := initStore(t)
	m, _ := NewMinter(s, "loc")
	got, err := m.Mint(context.Background(), "alice", ExpiresIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	weaker, err := Attenuate(got.Token, caveat.Methods{"GET"}, caveat.PathPrefix("/api"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(weaker, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Current()
	if err := cur.Verify(tok); err != nil {
		t.Fatalf("attenuated token does not verify: %v", err)
	}
	if n := tok.NumCaveats(); n != 5 {
		t.Errorf("caveats %d", n)
	}
	for name, cavs := range map[string][]caveat.Caveat{
		"none":       nil,
		"claim":      {caveat.EditorID("bob")},
		"username":   {caveat.Username("bob")},
		"kind":       {caveat.KindSession},
		"bad value":  {caveat.Methods{"get"}},
		"over limit": make30Methods(),
	} {
		if _, err := Attenuate(got.Token, cavs...); err == nil {
			t.Errorf("%s: attenuated", name)
		}
	}
	if _, err := Attenuate("not a token", caveat.Methods{"GET"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("attenuate garbage: %v", err)
	}
}
