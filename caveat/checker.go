package caveat

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// DefaultSkew is how far in the future a token's creation time may lie
// before the Checker rejects it. It bounds how long a token minted by a host
// whose clock runs ahead can outlive an epoch touch.
const DefaultSkew = 5 * time.Second

// A Checker parses and checks first-party caveats: the built-in ones and any
// an application registers with WithCaveat. It is immutable once built and
// safe for concurrent use.
type Checker struct {
	skew   time.Duration
	custom map[string]ParseFunc
}

// An Option configures a Checker.
type Option func(*Checker) error

// WithSkew sets how far in the future a creation time may lie (default
// DefaultSkew). It must not be negative.
func WithSkew(d time.Duration) Option {
	return func(c *Checker) error {
		if d < 0 {
			return fmt.Errorf("caveat: negative skew %v", d)
		}
		c.skew = d
		return nil
	}
}

// WithCaveat registers parse for caveats named name, so tokens may carry an
// application's own restrictions ("tenant = acme"). The name must follow the
// grammar and must not be built in or registered twice.
func WithCaveat(name string, parse ParseFunc) Option {
	return func(c *Checker) error {
		switch {
		case !validName(name):
			return fmt.Errorf("caveat: name %q must match [a-z][a-z0-9_-]{0,63}", name)
		case builtin(name):
			return fmt.Errorf("caveat: %q is a built-in caveat", name)
		case c.custom[name] != nil:
			return fmt.Errorf("caveat: %q registered twice", name)
		case parse == nil:
			return fmt.Errorf("caveat: nil ParseFunc for %q", name)
		}
		if c.custom == nil {
			c.custom = make(map[string]ParseFunc)
		}
		c.custom[name] = parse
		return nil
	}
}

// NewChecker returns a Checker for the built-in caveats and any registered
// with WithCaveat.
func NewChecker(opts ...Option) (*Checker, error) {
	c := &Checker{skew: DefaultSkew}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Skew returns the allowed clock skew.
func (c *Checker) Skew() time.Duration { return c.skew }

func builtin(name string) bool {
	switch name {
	case NameEditorID, NameUsername, NameKind, NameTime, NameTimeBefore, NameEndpoint, NameRights, NameMethod, NamePathPrefix, NameParent:
		return true
	}
	return false
}

// Parse parses one caveat into its typed value: EditorID, Username, Kind,
// Created, Expiry,
// Endpoint, Rights, Methods, PathPrefix, or whatever a registered ParseFunc
// returns. Errors wrap ErrMalformed or ErrUnknown.
func (c *Checker) Parse(text string) (Caveat, error) {
	return parseOne(c, text)
}

func parseOne[T bytestring](c *Checker, text T) (Caveat, error) {
	cond, err := split(text)
	if err != nil {
		return nil, err
	}
	switch string(cond.name) {
	case NameEditorID:
		return parseEditorID(cond.op, cond.value)
	case NameUsername:
		return parseUsername(cond.op, cond.value)
	case NameKind:
		return parseKind(cond.op, cond.value)
	case NameTime:
		t, err := parseTime(cond.value)
		if err != nil {
			return nil, err
		}
		switch string(cond.op) {
		case ">":
			return Created(t), nil
		case "<":
			return Expiry{Time: t}, nil
		}
		return nil, fmt.Errorf("%w: time takes > (created) or < (expiry)", ErrMalformed)
	case NameTimeBefore:
		t, err := parseTime(cond.value)
		if err != nil {
			return nil, err
		}
		return Expiry{Time: t, Bakery: true}, nil
	case NameEndpoint:
		return parseEndpoint(cond.op, cond.value)
	case NameRights:
		return parseRights(cond.op, cond.value)
	case NameMethod:
		return parseMethods(cond.op, cond.value)
	case NamePathPrefix:
		return parsePathPrefix(cond.op, cond.value)
	case NameParent:
		return parseParent(cond.op, cond.value)
	}
	if fn := c.custom[string(cond.name)]; fn != nil {
		cav, err := fn(string(cond.op), string(cond.value))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, string(cond.name), err)
		}
		if cav == nil {
			return nil, fmt.Errorf("%w: %s: parser returned no caveat", ErrMalformed, string(cond.name))
		}
		return cav, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknown, string(cond.name))
}

// Claims is what the caveats of one token say, parsed once and then checked
// against each request with Checker.Check.
type Claims struct {
	// EditorID is the editor the token acts for.
	EditorID string
	// Username is the editor's username as the minter wrote it, or "" when
	// the token carries none. It is informational: authorise by EditorID.
	Username string
	// Kind is the kind of token the minter wrote into it (KindSession,
	// KindAPI, ...), or "" when it wrote none.
	Kind Kind
	// Pristine reports that the creation time is the token's last caveat:
	// no holder appended anything to it. A minter that writes a kind
	// writes all its caveats before the creation time, so for a token
	// with a Kind, Pristine means "exactly as minted". (For a token
	// without one it means little: older minters wrote the expiry and the
	// restrictions after the creation time.)
	Pristine bool
	// Created is when the token was minted.
	Created time.Time
	// Expires is the earliest expiry among the token's expiry caveats, or
	// the zero time when it has none.
	Expires time.Time
	// Rights is the set of rights every rights caveat allows (their
	// intersection), or nil when the token carries no rights caveat and is
	// unrestricted. A non-nil empty slice allows no right at all.
	Rights []string
	// Restrictions holds the other restricting caveats (endpoint, method,
	// path_prefix, registered ones); all of them must allow a request.
	Restrictions []Caveat
	// Parents are the ids of the tokens this one was exchanged from; the
	// verifier refuses it when any of them is revoked.
	Parents []string
}

// Claims parses the first-party caveats of a token. It fails (ErrMalformed)
// when there are none, when editor_id or the creation time is missing or
// present more than once, when a username or a kind is repeated or follows
// the creation time (so a holder appended it), when a kind names no known
// kind, and when any caveat fails to parse; and
// (ErrUnknown) when a caveat has no checker. The input is not retained.
func (c *Checker) Claims(caveats [][]byte) (*Claims, error) {
	cl := new(Claims)
	if err := c.ParseClaims(cl, caveats); err != nil {
		return nil, err
	}
	return cl, nil
}

// ParseClaims is Claims into a Claims the caller provides (and may embed in
// a larger value, saving an allocation). On error *cl is unspecified.
//
// (Not inlined: inlined into another package, the call to the generic
// parseClaims loses its escape information, and the caller's caveat slice
// would move to the heap.)
//
//go:noinline
func (c *Checker) ParseClaims(cl *Claims, caveats [][]byte) error {
	return parseClaims(c, cl, caveats, true)
}

// ParseClaimStrings is ParseClaims for caveats held as strings. The strings
// of the claims (EditorID, Username, Kind, Parents, Rights items and the
// values of restrictions) are substrings of caveats, not copies: a caller
// that copies a token's caveats into one string once (macaroon's
// Token.SignedText) pays one allocation for all of them. Results and errors
// are those of ParseClaims.
//
// (Not inlined: inlined into another package, the call to the generic
// parseClaims loses its escape information, and the caller's caveat slice
// would move to the heap.)
//
//go:noinline
func (c *Checker) ParseClaimStrings(cl *Claims, caveats []string) error {
	return parseClaims(c, cl, caveats, true)
}

// Prefixes of the claims parseClaims' fast path matches.
const (
	prefixEditorID = NameEditorID + " = "
	prefixUsername = NameUsername + " = "
	prefixKind     = NameKind + " = "
	prefixTime     = NameTime + " "
)

// cutPrefix is strings.CutPrefix for both kinds of bytestring.
func cutPrefix[T bytestring](s T, prefix string) (T, bool) {
	if len(s) < len(prefix) || string(s[:len(prefix)]) != prefix {
		return s, false
	}
	return s[len(prefix):], true
}

// claimsState is what parseClaims has seen so far.
type claimsState struct {
	haveEditor, haveCreated bool
}

// parseClaims implements ParseClaims. With fast set, the claims tokens
// carry (editor_id, username, kind, time > and time <) go through
// fastClaim first.
func parseClaims[T bytestring](c *Checker, cl *Claims, caveats []T, fast bool) error {
	*cl = Claims{}
	if len(caveats) == 0 {
		return fmt.Errorf("%w: token has no caveats", ErrMalformed)
	}
	var st claimsState
	for i, text := range caveats {
		if fast && fastClaim(cl, &st, text, i == len(caveats)-1) {
			continue
		}
		haveEditor, haveCreated := st.haveEditor, st.haveCreated
		cond, err := split(text)
		if err != nil {
			return fmt.Errorf("caveat %d: %w", i, err)
		}
		// The common claims are handled without boxing them in a Caveat.
		switch {
		case string(cond.name) == NameEditorID:
			if haveEditor {
				return fmt.Errorf("caveat %d: %w: second editor_id", i, ErrMalformed)
			}
			id, err := parseEditorID(cond.op, cond.value)
			if err != nil {
				return fmt.Errorf("caveat %d: %w", i, err)
			}
			cl.EditorID, st.haveEditor = string(id), true
			continue
		case string(cond.name) == NameUsername:
			switch {
			case haveCreated:
				return fmt.Errorf("caveat %d: %w: username after the creation time (only the minter may name the user)", i, ErrMalformed)
			case cl.Username != "":
				return fmt.Errorf("caveat %d: %w: second username", i, ErrMalformed)
			}
			u, err := parseUsername(cond.op, cond.value)
			if err != nil {
				return fmt.Errorf("caveat %d: %w", i, err)
			}
			cl.Username = string(u)
			continue
		case string(cond.name) == NameKind:
			switch {
			case haveCreated:
				return fmt.Errorf("caveat %d: %w: kind after the creation time (only the minter may say what a token is)", i, ErrMalformed)
			case cl.Kind != "":
				return fmt.Errorf("caveat %d: %w: second kind", i, ErrMalformed)
			}
			k, err := parseKind(cond.op, cond.value)
			if err != nil {
				return fmt.Errorf("caveat %d: %w", i, err)
			}
			cl.Kind = k
			continue
		case string(cond.name) == NameTime && string(cond.op) == ">":
			if haveCreated {
				return fmt.Errorf("caveat %d: %w: second creation time (time >)", i, ErrMalformed)
			}
			t, err := parseTime(cond.value)
			if err != nil {
				return fmt.Errorf("caveat %d: %w", i, err)
			}
			cl.Created, st.haveCreated = t, true
			cl.Pristine = i == len(caveats)-1
			continue
		case string(cond.name) == NameTime && string(cond.op) == "<", string(cond.name) == NameTimeBefore:
			t, err := parseTime(cond.value)
			if err != nil {
				return fmt.Errorf("caveat %d: %w", i, err)
			}
			if cl.Expires.IsZero() || t.Before(cl.Expires) {
				cl.Expires = t
			}
			continue
		case string(cond.name) == NameParent:
			p, err := parseParent(cond.op, cond.value)
			if err != nil {
				return fmt.Errorf("caveat %d: %w", i, err)
			}
			cl.Parents = append(cl.Parents, string(p))
			continue
		case string(cond.name) == NameRights:
			r, err := parseRights(cond.op, cond.value)
			if err != nil {
				return fmt.Errorf("caveat %d: %w", i, err)
			}
			if cl.Rights == nil {
				cl.Rights = r
			} else {
				cl.Rights = slices.DeleteFunc(cl.Rights, func(s string) bool { return !slices.Contains(r, s) })
			}
			continue
		}
		cav, err := parseOne(c, text)
		if err != nil {
			return fmt.Errorf("caveat %d: %w", i, err)
		}
		cl.Restrictions = append(cl.Restrictions, cav)
	}
	switch {
	case !st.haveEditor:
		return fmt.Errorf("%w: no editor_id caveat", ErrMalformed)
	case !st.haveCreated:
		return fmt.Errorf("%w: no creation time (time >) caveat", ErrMalformed)
	}
	return nil
}

// fastClaim parses text when it is one of the claims tokens carry
// (editor_id, username, kind, time > and time <), valid and allowed where
// it stands, recognised by its exact prefix and with its value validated
// in the same pass, instead of being split by the grammar first and its
// value validated after (which reads every byte twice). It reports false,
// changing nothing, for anything else: an invalid value, a repeated or
// misplaced claim, odd spacing, another caveat. The general path then
// gives the result or error it always gave. What fastClaim accepts, the
// general path accepts with the same result: a value ValidEditorID,
// ValidUsername, ValidKind or scanTime accepts is non-empty printable
// ASCII without a space, so split would have cut the caveat exactly at the
// prefix. FuzzClaimsFastPath compares the two paths.
func fastClaim[T bytestring](cl *Claims, st *claimsState, text T, last bool) bool {
	if len(text) == 0 {
		return false
	}
	switch text[0] {
	case 'e':
		if v, ok := cutPrefix(text, prefixEditorID); ok && !st.haveEditor && ValidEditorID(v) {
			cl.EditorID, st.haveEditor = string(v), true
			return true
		}
	case 't':
		v, ok := cutPrefix(text, prefixTime)
		if !ok || len(v) < 2 || v[1] != ' ' {
			return false
		}
		switch v[0] {
		case '>':
			if st.haveCreated {
				return false
			}
			t, why := scanTime(v[2:])
			if why != "" {
				return false
			}
			cl.Created, st.haveCreated = t, true
			cl.Pristine = last
			return true
		case '<':
			t, why := scanTime(v[2:])
			if why != "" {
				return false
			}
			if cl.Expires.IsZero() || t.Before(cl.Expires) {
				cl.Expires = t
			}
			return true
		}
	case 'u':
		if v, ok := cutPrefix(text, prefixUsername); ok && !st.haveCreated && cl.Username == "" && ValidUsername(v) {
			cl.Username = string(v)
			return true
		}
	case 'k':
		if v, ok := cutPrefix(text, prefixKind); ok && !st.haveCreated && cl.Kind == "" && ValidKind(v) {
			cl.Kind = Kind(v)
			return true
		}
	}
	return false
}

// Check decides whether claims allow req: the creation time is at most the
// allowed skew after req.Time, req.Time is before the expiry, every right req
// names is allowed, and every restriction allows req. It reports every
// failure, joined; nil means allowed. Errors wrap ErrNotYetValid, ErrExpired
// or ErrProhibited.
func (c *Checker) Check(cl *Claims, req *Request) error {
	var errs []error
	if cl.Created.After(req.Time.Add(c.skew)) {
		errs = append(errs, fmt.Errorf("%w: created %s, more than %v ahead of now", ErrNotYetValid, FormatTime(cl.Created), c.skew))
	}
	if !cl.Expires.IsZero() {
		if err := (Expiry{Time: cl.Expires}).Prohibits(req); err != nil {
			errs = append(errs, err)
		}
	}
	if cl.Rights != nil {
		if err := Rights(cl.Rights).Prohibits(req); err != nil {
			errs = append(errs, err)
		}
	}
	if len(cl.Restrictions) > 0 {
		// A copy for the interface calls: passing req itself would make
		// every caller's Request escape to the heap, restrictions or not.
		r := *req
		for _, c := range cl.Restrictions {
			if err := c.Prohibits(&r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
