package caveat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustChecker(t testing.TB, opts ...Option) *Checker {
	t.Helper()
	c, err := NewChecker(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParse(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	valid := []struct {
		text string
		want string // canonical String(); "" = same as text
	}{
		{"editor_id = aaaaaaaaaaaaaaaaaaaaaaaaaa", ""},
		{"editor_id = 0-abc_d", ""},
		{"username = Alice.B-2_x", ""},
		{"kind = session", ""},
		{"kind = api", ""},
		{"kind = exchange", ""},
		{"kind = cli", ""},
		{"kind = bootstrap", ""},
		{"time > 2026-11-22T10:00:00.123456Z", ""},
		{"time > 2019-01-01T00:00:00Z", "time > 2019-01-01T00:00:00.000000Z"},
		{"time > 2026-11-22T10:00:00.1Z", "time > 2026-11-22T10:00:00.100000Z"},
		{"time > 2026-11-22T10:00:00.123456789Z", "time > 2026-11-22T10:00:00.123456Z"},
		{"time < 2027-01-01T00:00:00Z", ""},
		{"time < 2024-02-29T23:59:59Z", ""},
		{"time-before 2027-01-01T00:00:00.5Z", ""},
		{"endpoint = create_editgroup", ""},
		{"rights = read,edit,admin:touch", ""},
		{"method = GET,HEAD", ""},
		{"path_prefix = /api/v1", ""},
		{"path_prefix = /api/v1/", ""},
		{"path_prefix = /", ""},
	}
	c := mustChecker(t)
	for _, tc := range valid {
		t.Run(tc.text, func(t *testing.T) {
			cav, err := c.Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tc.want
			if want == "" {
				want = tc.text
			}
			if got := cav.String(); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
		})
	}
	if got := Created(ts).String(); got != "time > 2026-11-22T10:00:00.123456Z" {
		t.Errorf("Created.String() = %q", got)
	}

	invalid := []struct {
		text string
		want error
	}{
		{"", ErrMalformed},
		{"editor_id", ErrMalformed},
		{"editor_id =", ErrMalformed},
		{"editor_id = ", ErrMalformed},
		{"editor_id  = abc", ErrMalformed},
		{"editor_id =  abc", ErrMalformed},
		{"editor_id =abc", ErrMalformed},
		{"editor_id= abc", ErrMalformed},
		{"editor_id = abc def", ErrMalformed},
		{"editor_id = abc ", ErrMalformed},
		{" editor_id = abc", ErrMalformed},
		{"editor_id = ABC", ErrMalformed},
		{"editor_id == abc", ErrMalformed},
		{"editor_id < abc", ErrMalformed},
		{"editor_id = a\x00b", ErrMalformed},
		{"editor_id = a\nb", ErrMalformed},
		{"editor_id = a\tb", ErrMalformed},
		{"editor_id = a\x7fb", ErrMalformed},
		{"editor_id = a\xffb", ErrMalformed},
		{"editor_id = caf\xc3\xa9", ErrMalformed},
		{"editor_id = " + strings.Repeat("a", 65), ErrMalformed},
		{"Editor_id = abc", ErrMalformed},
		{"editor_idx = abc", ErrUnknown},
		{"editor = abc", ErrUnknown},
		{"color = red", ErrUnknown},
		{"time = 2026-01-01T00:00:00Z", ErrMalformed},
		{"time > 2026-01-01", ErrMalformed},
		{"time > 2026-01-01T00:00:00", ErrMalformed},
		{"time > 2026-01-01T00:00:00+00:00", ErrMalformed},
		{"time > 2026-01-01t00:00:00z", ErrMalformed},
		{"time > 2026-01-01 00:00:00Z", ErrMalformed},
		{"time > 2026-13-01T00:00:00Z", ErrMalformed},
		{"time > 2026-00-01T00:00:00Z", ErrMalformed},
		{"time > 2026-02-29T00:00:00Z", ErrMalformed},
		{"time > 2026-04-31T00:00:00Z", ErrMalformed},
		{"time > 2026-01-01T24:00:00Z", ErrMalformed},
		{"time > 2026-01-01T00:60:00Z", ErrMalformed},
		{"time > 2026-12-31T23:59:60Z", ErrMalformed},
		{"time > 1969-12-31T23:59:59Z", ErrMalformed},
		{"time > 10000-01-01T00:00:00Z", ErrMalformed},
		{"time > +2026-01-01T00:00:00Z", ErrMalformed},
		{"time > 2026-01-01T00:00:00.Z", ErrMalformed},
		{"time > 2026-01-01T00:00:00.1234567890Z", ErrMalformed},
		{"time > 2026-01-01T00:00:00,5Z", ErrMalformed},
		{"time > 2026-01-01T00:00:00.5aZ", ErrMalformed},
		{"time > 2026-01-01T00:00:00ZZ", ErrMalformed},
		{"time-before  2027-01-01T00:00:00Z", ErrMalformed},
		{"time-before = 2027-01-01T00:00:00Z", ErrMalformed},
		{"kind = admin", ErrMalformed},
		{"kind = Session", ErrMalformed},
		{"kind = session,api", ErrMalformed},
		{"kind < session", ErrMalformed},
		{"endpoint = a/b", ErrMalformed},
		{"endpoint > a", ErrMalformed},
		{"rights = ", ErrMalformed},
		{"rights = read,", ErrMalformed},
		{"rights = ,read", ErrMalformed},
		{"rights = read,,edit", ErrMalformed},
		{"rights = read,read", ErrMalformed},
		{"rights = Read", ErrMalformed},
		{"rights = " + strings.Repeat("a,", 64) + "a", ErrMalformed},
		{"method = get", ErrMalformed},
		{"method = GET,", ErrMalformed},
		{"path_prefix = api", ErrMalformed},
		{"path_prefix = /api/../admin", ErrMalformed},
		{"path_prefix = /api//v1", ErrMalformed},
		{"path_prefix = /api/./v1", ErrMalformed},
		{"path_prefix = /api%2f", ErrMalformed},
		{"path_prefix = /api?x=1", ErrMalformed},
	}
	for _, tc := range invalid {
		t.Run("invalid/"+tc.text, func(t *testing.T) {
			cav, err := c.Parse(tc.text)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tc.text, cav, err, tc.want)
			}
		})
	}
}

func claimsOf(t *testing.T, c *Checker, caveats ...string) (*Claims, error) {
	t.Helper()
	b := make([][]byte, len(caveats))
	for i, s := range caveats {
		b[i] = []byte(s)
	}
	return c.Claims(b)
}

const (
	edA     = "editor_id = alice"
	created = "time > 2026-01-01T00:00:00.000001Z"
)

func TestClaims(t *testing.T) {
	c := mustChecker(t)
	bad := []struct {
		name    string
		caveats []string
		want    error
	}{
		{"none", nil, ErrMalformed},
		{"no editor", []string{created}, ErrMalformed},
		{"no created", []string{edA}, ErrMalformed},
		{"second editor_id", []string{edA, created, "editor_id = bob"}, ErrMalformed},
		{"identical second editor_id", []string{edA, created, edA}, ErrMalformed},
		{"second created", []string{edA, created, "time > 2026-11-22T00:00:00Z"}, ErrMalformed},
		{"identical second created", []string{edA, created, created}, ErrMalformed},
		{"username after created", []string{edA, created, "username = mallory"}, ErrMalformed},
		{"second username", []string{edA, "username = a", "username = a", created}, ErrMalformed},
		{"username with <", []string{edA, "username < a", created}, ErrMalformed},
		{"username with a slash", []string{edA, "username = a/b", created}, ErrMalformed},
		{"username starting with a dot", []string{edA, "username = .a", created}, ErrMalformed},
		{"kind after created", []string{edA, created, "kind = session"}, ErrMalformed},
		{"kind appended to a kindless token", []string{edA, "username = a", created, "kind = session"}, ErrMalformed},
		{"second kind", []string{edA, "kind = api", "kind = session", created}, ErrMalformed},
		{"identical second kind", []string{edA, "kind = session", "kind = session", created}, ErrMalformed},
		{"unknown kind", []string{edA, "kind = superuser", created}, ErrMalformed},
		{"kind with >", []string{edA, "kind > session", created}, ErrMalformed},
		{"unknown", []string{edA, created, "color = red"}, ErrUnknown},
		{"unparsable", []string{edA, created, "time < tomorrow"}, ErrMalformed},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := claimsOf(t, c, tc.caveats...); !errors.Is(err, tc.want) {
				t.Fatalf("Claims = %v, want %v", err, tc.want)
			}
		})
	}

	named, err := claimsOf(t, c, edA, "username = Alice", created)
	if err != nil || named.Username != "Alice" {
		t.Errorf("username claim: %+v, %v", named, err)
	}

	for _, tc := range []struct {
		name     string
		caveats  []string
		kind     Kind
		pristine bool
	}{
		{"session as minted", []string{edA, "username = alice", "kind = session", "time < 2026-01-02T00:00:00Z", created}, KindSession, true},
		{"session with a holder's shorter expiry", []string{edA, "kind = session", "time < 2026-01-02T00:00:00Z", created, "time < 2026-01-01T01:00:00Z"}, KindSession, false},
		{"session with a holder's restriction", []string{edA, "kind = session", created, "method = GET"}, KindSession, false},
		{"api token as minted", []string{edA, "kind = api", "rights = read", created}, KindAPI, true},
		{"no kind, nothing appended", []string{edA, created}, "", true},
		{"no kind, expiry after created (old order)", []string{edA, created, "time < 2026-01-02T00:00:00Z"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := claimsOf(t, c, tc.caveats...)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Kind != tc.kind || cl.Pristine != tc.pristine {
				t.Errorf("Kind %q Pristine %v, want %q %v", cl.Kind, cl.Pristine, tc.kind, tc.pristine)
			}
			if len(cl.Restrictions) != strings.Count(strings.Join(tc.caveats, "|"), "method") {
				t.Errorf("a claim counted as a restriction: %v", cl.Restrictions)
			}
		})
	}

	cl, err := claimsOf(t, c, edA, created,
		"time < 2027-01-01T00:00:00Z", "time-before 2026-12-01T00:00:00Z", "time < 2028-01-01T00:00:00Z",
		"rights = read,edit,delete", "rights = edit,read", "method = GET", "endpoint = x")
	if err != nil {
		t.Fatal(err)
	}
	if cl.EditorID != "alice" {
		t.Errorf("EditorID = %q", cl.EditorID)
	}
	if want := time.Date(2026, 1, 1, 0, 0, 0, 1000, time.UTC); !cl.Created.Equal(want) {
		t.Errorf("Created = %v, want %v", cl.Created, want)
	}
	if want := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !cl.Expires.Equal(want) {
		t.Errorf("Expires = %v, want the earliest expiry %v", cl.Expires, want)
	}
	if strings.Join(cl.Rights, ",") != "read,edit" {
		t.Errorf("Rights = %v, want the intersection read,edit", cl.Rights)
	}
	if len(cl.Restrictions) != 2 {
		t.Errorf("Restrictions = %v", cl.Restrictions)
	}

	disjoint, err := claimsOf(t, c, edA, created, "rights = read", "rights = edit")
	if err != nil {
		t.Fatal(err)
	}
	if disjoint.Rights == nil || len(disjoint.Rights) != 0 {
		t.Errorf("disjoint rights = %#v, want empty non-nil", disjoint.Rights)
	}
}

func TestCheck(t *testing.T) {
	c := mustChecker(t, WithSkew(2*time.Second))
	base := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		caveats []string
		req     Request
		want    []error // nil: allowed
	}{
		{"plain", nil, Request{}, nil},
		{"before expiry", []string{"time < 2026-06-01T12:00:00.000001Z"}, Request{}, nil},
		{"at expiry", []string{"time < 2026-06-01T12:00:00Z"}, Request{}, []error{ErrExpired}},
		{"after expiry", []string{"time < 2026-06-01T11:00:00Z"}, Request{}, []error{ErrExpired}},
		{"bakery expiry", []string{"time-before 2026-06-01T11:00:00Z"}, Request{}, []error{ErrExpired}},
		{"one of two expiries passed", []string{"time < 2027-01-01T00:00:00Z", "time < 2026-06-01T11:00:00Z"}, Request{}, []error{ErrExpired}},
		{"right granted", []string{"rights = read,edit"}, Request{Rights: []string{"edit"}}, nil},
		{"right not granted", []string{"rights = read"}, Request{Rights: []string{"edit"}}, []error{ErrProhibited}},
		{"rights caveat, request names none", []string{"rights = read"}, Request{}, nil},
		{"method allowed", []string{"method = GET,HEAD"}, Request{Method: "HEAD"}, nil},
		{"method refused", []string{"method = GET"}, Request{Method: "POST"}, []error{ErrProhibited}},
		{"method missing", []string{"method = GET"}, Request{}, []error{ErrProhibited}},
		{"endpoint", []string{"endpoint = a"}, Request{Endpoint: "a"}, nil},
		{"other endpoint", []string{"endpoint = a"}, Request{Endpoint: "b"}, []error{ErrProhibited}},
		{"no endpoint", []string{"endpoint = a"}, Request{}, []error{ErrProhibited}},
		{"two endpoints", []string{"endpoint = a", "endpoint = b"}, Request{Endpoint: "a"}, []error{ErrProhibited}},
		{"path equal", []string{"path_prefix = /api/v1"}, Request{Path: "/api/v1"}, nil},
		{"path below", []string{"path_prefix = /api/v1"}, Request{Path: "/api/v1/x/y"}, nil},
		{"path below slash prefix", []string{"path_prefix = /api/v1/"}, Request{Path: "/api/v1/x"}, nil},
		{"path trailing slash", []string{"path_prefix = /api/v1"}, Request{Path: "/api/v1/"}, nil},
		{"path sibling", []string{"path_prefix = /api/v1"}, Request{Path: "/api/v10"}, []error{ErrProhibited}},
		{"path dotdot", []string{"path_prefix = /api/v1"}, Request{Path: "/api/v1/../admin"}, []error{ErrProhibited}},
		{"path double slash", []string{"path_prefix = /api/v1"}, Request{Path: "/api/v1//x"}, []error{ErrProhibited}},
		{"path root prefix", []string{"path_prefix = /"}, Request{Path: "/anything"}, nil},
		{"no path", []string{"path_prefix = /"}, Request{}, []error{ErrProhibited}},
		{"every failure reported", []string{"time < 2026-01-01T00:00:00Z", "method = GET", "endpoint = a"}, Request{Method: "PUT"}, []error{ErrExpired, ErrProhibited}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := claimsOf(t, c, append([]string{edA, created}, tc.caveats...)...)
			if err != nil {
				t.Fatal(err)
			}
			tc.req.Time = base
			err = c.Check(cl, &tc.req)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want allowed", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check allowed, want denied")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Check = %v, want it to wrap %v", err, w)
				}
			}
		})
	}
}

func TestCheckSkew(t *testing.T) {
	c := mustChecker(t, WithSkew(2*time.Second))
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ahead time.Duration
		ok    bool
	}{{0, true}, {2 * time.Second, true}, {2*time.Second + time.Microsecond, false}, {time.Hour, false}} {
		cl := &Claims{EditorID: "a", Created: now.Add(tc.ahead)}
		err := c.Check(cl, &Request{Time: now})
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrNotYetValid) {
			t.Errorf("created %v ahead: Check = %v, want ok=%v", tc.ahead, err, tc.ok)
		}
	}
	if _, err := NewChecker(WithSkew(-time.Second)); err == nil {
		t.Error("negative skew accepted")
	}
}

type tenant string

func (c tenant) String() string { return "tenant = " + string(c) }
func (c tenant) Prohibits(r *Request) error {
	if !strings.HasPrefix(r.Path, "/t/"+string(c)+"/") {
		return ErrProhibited
	}
	return nil
}

func TestCustomCaveat(t *testing.T) {
	parse := func(op, v string) (Caveat, error) {
		if op != "=" || v == "bad" {
			return nil, errors.New("bad tenant")
		}
		return tenant(v), nil
	}
	c := mustChecker(t, WithCaveat("tenant", parse))
	cl, err := claimsOf(t, c, edA, created, "tenant = acme")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if err := c.Check(cl, &Request{Time: now, Path: "/t/acme/x"}); err != nil {
		t.Errorf("own tenant: %v", err)
	}
	if err := c.Check(cl, &Request{Time: now, Path: "/t/evil/x"}); !errors.Is(err, ErrProhibited) {
		t.Errorf("other tenant: %v", err)
	}
	if _, err := c.Parse("tenant = bad"); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad value: %v", err)
	}
	if _, err := c.Parse("tenants = acme"); !errors.Is(err, ErrUnknown) {
		t.Errorf("prefix of a registered name must not match: %v", err)
	}
	if _, err := mustChecker(t).Parse("tenant = acme"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unregistered checker accepted a custom caveat: %v", err)
	}
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"built-in name", []Option{WithCaveat("time", parse)}},
		{"twice", []Option{WithCaveat("x", parse), WithCaveat("x", parse)}},
		{"bad name", []Option{WithCaveat("X y", parse)}},
		{"nil func", []Option{WithCaveat("x", nil)}},
	} {
		if _, err := NewChecker(tc.opts...); err == nil {
			t.Errorf("%s: registration accepted", tc.name)
		}
	}
}

// TestParseTimeAgainstStdlib: every day from 1970 to 2100 (and some far
// ones) converts as time.Date does.
func TestParseTimeAgainstStdlib(t *testing.T) {
	check := func(want time.Time) {
		text := want.Format("2006-01-02T15:04:05.999999999Z")
		got, err := parseTime(text)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("parseTime(%q) = %v, %v", text, got, err)
		}
	}
	for d := time.Date(1970, 1, 1, 23, 59, 59, 999999999, time.UTC); d.Year() < 2101; d = d.AddDate(0, 0, 1) {
		check(d)
	}
	check(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC))
	check(time.Date(2400, 2, 29, 0, 0, 0, 1, time.UTC))
}

// TestValidTokenID pins the token id grammar, with a dash in every place a
// one-test-per-byte loop could let one through.
func TestValidTokenID(t *testing.T) {
	const ok = "3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE"
	cases := []struct {
		id   string
		want bool
	}{
		{ok, true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", true},
		{"3f2504e0-4f89-41d3-9d2a-0c04fe1abcde", false},
		{"3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDG", false},
		{"3F2504E0-4F89-41D3-9D2A-0C04FE1ABCD:", false},
		{"3F2504E0-4F89-41D3-9D2A-0C04FE1ABCD@", false},
		{"3F2504E0-4F89-41D3-9D2A-0C04FE1ABCD/", false},
		{"3F2504E0-4F89-41D3-9D2A-0C04FE1ABCD-", false},
		{"-F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE", false},
		{"3F2504E0-4F89-41D3-9D2A--C04FE1ABCDE", false},
		{"3F2504E0-4F89-41D3-9D2A0-C04FE1ABCDE", false},
		{"3F2504E004F89-41D3-9D2A-0C04FE1ABCDE", false},
		{"3F2504E0-4F89-41D3-9D2A-0C04FE1ABCD", false},
		{"3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDEF", false},
		{"3F2504E04F8941D39D2A0C04FE1ABCDE", false},
		{"", false},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			if got := ValidTokenID(tc.id); got != tc.want {
				t.Errorf("ValidTokenID(%q) = %v, want %v", tc.id, got, tc.want)
			}
			if got := ValidTokenID([]byte(tc.id)); got != tc.want {
				t.Errorf("ValidTokenID([]byte(%q)) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
	// Every single-byte change of a valid id at every position agrees
	// with the grammar written out position by position.
	for i := 0; i < len(ok); i++ {
		for b := 0; b < 256; b++ {
			id := []byte(ok)
			id[i] = byte(b)
			want := b == '-'
			if i != 8 && i != 13 && i != 18 && i != 23 {
				want = '0' <= b && b <= '9' || 'A' <= b && b <= 'F'
			}
			if got := ValidTokenID(id); got != want {
				t.Fatalf("ValidTokenID(%q) = %v, want %v", id, got, want)
			}
		}
	}
}
