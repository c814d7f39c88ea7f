package macaroon

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sentinel errors of this package; errors returned here wrap one of them.
var (
	// ErrMalformed means a token could not be decoded: bad encoding, bad or
	// non-canonical binary, a limit exceeded, a malformed identifier.
	ErrMalformed = errors.New("malformed token")
	// ErrThirdParty means a token carries a third-party caveat, which
	// amaretti does not support yet. It wraps ErrMalformed.
	ErrThirdParty = fmt.Errorf("%w: third-party caveats are not supported", ErrMalformed)
	// ErrBadSignature means the HMAC chain does not match the token's
	// signature under the key its identifier names.
	ErrBadSignature = errors.New("bad signature")
)

// Limits bound what Parse accepts; they are checked before the work they
// guard.
type Limits struct {
	// MaxTokenSize is the longest accepted encoded token, in bytes.
	MaxTokenSize int
	// MaxCaveats is the most caveats a token may carry.
	MaxCaveats int
	// MaxCaveatLen is the longest accepted caveat, in bytes.
	MaxCaveatLen int
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxTokenSize: 4096, MaxCaveats: 32, MaxCaveatLen: 512}

func (l Limits) orDefault() Limits {
	if l.MaxTokenSize <= 0 {
		l.MaxTokenSize = DefaultLimits.MaxTokenSize
	}
	if l.MaxCaveats <= 0 {
		l.MaxCaveats = DefaultLimits.MaxCaveats
	}
	if l.MaxCaveatLen <= 0 {
		l.MaxCaveatLen = DefaultLimits.MaxCaveatLen
	}
	return l
}

const (
	sigLen = 32

	fieldEOS            = 0
	fieldLocation       = 1
	fieldIdentifier     = 2
	fieldVerificationID = 4
	fieldSignature      = 6
)

// A Token is a decoded macaroon whose binary form is canonical. It is
// immutable; its signature has not been checked (see Key.Verify).
type Token struct {
	raw      []byte
	location []byte
	id       []byte
	caveats  [][]byte
	sig      [sigLen]byte
	keyID    string
	tokenID  string
	inline   [6][]byte // backing for caveats, to spare an allocation
}

// Parse decodes a token from its text form under lim (zero fields take
// DefaultLimits). Errors wrap ErrMalformed or ErrThirdParty.
func Parse(s string, lim Limits) (*Token, error) {
	t := new(Token)
	if err := t.parse(s, lim.orDefault()); err != nil {
		return nil, err
	}
	return t, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func (t *Token) parse(s string, lim Limits) error {
	if len(s) == 0 {
		return malformed("empty token")
	}
	if len(s) > lim.MaxTokenSize {
		return malformed("token is %d bytes, over the limit of %d", len(s), lim.MaxTokenSize)
	}
	enc, err := encodingOf(s)
	if err != nil {
		return err
	}
	raw := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(raw, []byte(s))
	if err != nil {
		return malformed("bad base64: %v", err)
	}
	return t.parseBinary(raw[:n], lim)
}

// encodingOf picks the one base64 variant a token may be written in and
// rejects every byte outside it (the standard library decoder would skip CR
// and LF). Accepted: base64url without padding, padded base64url, and
// standard padded base64.
func encodingOf(s string) (*base64.Encoding, error) {
	var url, std, pad bool
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9':
			if pad {
				return nil, malformed("base64 data after padding")
			}
		case b == '-' || b == '_':
			url = true
		case b == '+' || b == '/':
			std = true
		case b == '=':
			pad = true
		default:
			return nil, malformed("byte 0x%02x at offset %d is not base64", b, i)
		}
	}
	switch {
	case url && std:
		return nil, malformed("base64 mixes the standard and URL alphabets")
	case std || pad && !url:
		// Standard base64 must be padded: with a length that is a multiple
		// of 4 and no '=' there is nothing to pad.
		return base64.StdEncoding.Strict(), nil
	case pad:
		return base64.URLEncoding.Strict(), nil
	}
	return base64.RawURLEncoding.Strict(), nil
}

// parseBinary parses canonical v2 binary. It keeps references into raw.
func (t *Token) parseBinary(raw []byte, lim Limits) error {
	t.raw = raw
	if len(raw) == 0 || raw[0] != 2 {
		return malformed("not a v2 binary macaroon")
	}
	d := decoder{data: raw[1:]}

	// Header: [location] identifier EOS.
	ft, data, err := d.packet()
	if err != nil {
		return err
	}
	if ft == fieldLocation {
		// An empty location field is kept, not refused: pymacaroons writes
		// one for location "", and the location is unsigned anyway.
		t.location = data
		if ft, data, err = d.packet(); err != nil {
			return err
		}
	}
	if ft != fieldIdentifier {
		return malformed("header has no identifier")
	}
	t.id = data
	if ft, _, err = d.packet(); err != nil {
		return err
	}
	if ft != fieldEOS {
		return malformed("unexpected field %d in header", ft)
	}
	if err := t.parseIdentifier(); err != nil {
		return err
	}

	// Caveats, each [location] identifier [verification id] EOS; then EOS.
	t.caveats = t.inline[:0]
	for {
		ft, data, err := d.packet()
		if err != nil {
			return err
		}
		if ft == fieldEOS {
			break
		}
		if ft == fieldLocation {
			return fmt.Errorf("%w (caveat %d has a location)", ErrThirdParty, len(t.caveats))
		}
		if ft != fieldIdentifier {
			return malformed("caveat %d: unexpected field %d", len(t.caveats), ft)
		}
		if len(t.caveats) == lim.MaxCaveats {
			return malformed("more than %d caveats", lim.MaxCaveats)
		}
		if len(data) > lim.MaxCaveatLen {
			return malformed("caveat %d is %d bytes, over the limit of %d", len(t.caveats), len(data), lim.MaxCaveatLen)
		}
		cav := data
		if ft, _, err = d.packet(); err != nil {
			return err
		}
		switch ft {
		case fieldEOS:
		case fieldVerificationID:
			return fmt.Errorf("%w (caveat %d has a verification id)", ErrThirdParty, len(t.caveats))
		default:
			return malformed("caveat %d: unexpected field %d", len(t.caveats), ft)
		}
		t.caveats = append(t.caveats, cav)
	}

	ft, data, err = d.packet()
	if err != nil {
		return err
	}
	if ft != fieldSignature {
		return malformed("expected signature, found field %d", ft)
	}
	if len(data) != sigLen {
		return malformed("signature is %d bytes, not %d", len(data), sigLen)
	}
	copy(t.sig[:], data)
	if len(d.data) != 0 {
		return malformed("%d bytes after the signature", len(d.data))
	}
	return nil
}

// decoder reads v2 packets: fieldType(varint) [payloadLen(varint) payload].
type decoder struct{ data []byte }

func (d *decoder) varint() (int, error) {
	v, n := binary.Uvarint(d.data)
	switch {
	case n == 0:
		return 0, malformed("truncated")
	case n < 0:
		return 0, malformed("varint overflows")
	case n > 1 && d.data[n-1] == 0:
		return 0, malformed("non-minimal varint")
	case v > 1<<31-1:
		return 0, malformed("varint out of range")
	}
	d.data = d.data[n:]
	return int(v), nil
}

func (d *decoder) packet() (int, []byte, error) {
	ft, err := d.varint()
	if err != nil {
		return 0, nil, err
	}
	if ft == fieldEOS {
		return ft, nil, nil
	}
	n, err := d.varint()
	if err != nil {
		return 0, nil, err
	}
	if n > len(d.data) {
		return 0, nil, malformed("truncated")
	}
	p := d.data[:n:n]
	d.data = d.data[n:]
	return ft, p, nil
}

// Location returns the token's location. It is not covered by the signature
// and decides nothing.
func (t *Token) Location() string { return string(t.location) }

// Identifier returns the token's identifier.
func (t *Token) Identifier() string { return string(t.id) }

// KeyID returns the id of the root key the identifier names.
func (t *Token) KeyID() string { return t.keyID }

// TokenID returns the token's id, or "" for a fatcat-format token.
func (t *Token) TokenID() string { return t.tokenID }

// NumCaveats returns how many first-party caveats the token carries.
func (t *Token) NumCaveats() int { return len(t.caveats) }

// Caveats returns the text of every caveat, in order.
func (t *Token) Caveats() []string {
	out := make([]string, len(t.caveats))
	for i, c := range t.caveats {
		out[i] = string(c)
	}
	return out
}

// CaveatBytes returns the caveats as slices of the token's own memory,
// without copying. The caller must not modify them.
func (t *Token) CaveatBytes() [][]byte { return t.caveats }

// Signature returns the token's 32-byte signature.
func (t *Token) Signature() [32]byte { return t.sig }

// Binary returns a copy of the token's canonical v2 binary form.
func (t *Token) Binary() []byte { return append([]byte(nil), t.raw...) }

// Encode returns the token in its wire form: v2 binary, base64url without
// padding. The result is the bearer secret: never log it.
func (t *Token) Encode() string { return base64.RawURLEncoding.EncodeToString(t.raw) }

// String names the token by its identifier without revealing it, so a Token
// that ends up in a log line or an error leaks nothing.
func (t *Token) String() string { return "macaroon(" + string(t.id) + ")" }
