package macaroon

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
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
	location span
	hasLoc   bool
	id       span
	// Caveats are spans of raw: inline for the first inlineCaveats, then
	// in more. (Slicing an array inside the Token itself would make every
	// Token escape to the heap.)
	ncav   int
	inline [inlineCaveats]span
	more   []span
	sig    [sigLen]byte
	// keyID and tokenID are spans too: a string field would tie the
	// token's memory to wherever the id goes (escape analysis does not
	// tell fields apart).
	keyID, tokenID span
}

// span is a range of Token.raw.
type span struct{ off, end uint32 }

const inlineCaveats = 32

func (t *Token) bytes(s span) []byte { return t.raw[s.off:s.end:s.end] }

func (t *Token) caveat(i int) []byte { return t.bytes(t.caveatSpan(i)) }

func (t *Token) caveatSpan(i int) span {
	if i < inlineCaveats {
		return t.inline[i]
	}
	return t.more[i-inlineCaveats]
}

// addCaveat records caveat s; past the inline ones it appends to *more,
// which the caller stores in t.more when done. (Appending to t.more here
// would read t's content into the heap as far as escape analysis can
// tell, and so send the decoded bytes t refers to there too.)
func (t *Token) addCaveat(s span, more *[]span) {
	if t.ncav < inlineCaveats {
		t.inline[t.ncav] = s
	} else {
		*more = append(*more, s)
	}
	t.ncav++
}

// Parse decodes a token from its text form under lim (zero fields take
// DefaultLimits): a macaroon in base64, or one in the API token format
// (FormatAPI), whose checksum is checked first. Errors wrap ErrMalformed
// (ErrThirdParty and ErrChecksum among them).
func Parse(s string, lim Limits) (*Token, error) {
	t, err := Decode(s, lim, nil)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Decode is Parse for callers that keep the token and its decoded bytes off
// the heap: the binary is decoded into scratch when it is large enough (3/4
// of the text length), and the Token refers to scratch afterwards.
func Decode(s string, lim Limits, scratch []byte) (t Token, err error) {
	lim = lim.orDefault()
	s, _, err = StripAPIFormat(s) // the API token format's checksum, before decoding
	if err != nil {
		return Token{}, err
	}
	raw, err := decodeText(s, lim, scratch)
	if err != nil {
		return Token{}, err
	}
	// parseSpans records spans and does not keep raw: a Token that held
	// raw while its address went to a function would send scratch to the
	// heap. It parses into the result itself, so that the Token (over 300
	// bytes) is not copied on its way out.
	if err := t.parseSpans(raw, lim); err != nil {
		return Token{}, err
	}
	t.raw = raw
	return t, nil
}

// decodeText checks the limits and decodes the base64 text into scratch (or
// a new buffer when scratch is too small).
func decodeText(s string, lim Limits, scratch []byte) ([]byte, error) {
	if len(s) == 0 {
		return nil, malformed("empty token")
	}
	if len(s) > lim.MaxTokenSize {
		return nil, malformed("token is %d bytes, over the limit of %d", len(s), lim.MaxTokenSize)
	}
	raw := scratch
	if n := base64.RawURLEncoding.DecodedLen(len(s)); len(raw) < n {
		raw = make([]byte, n)
	}
	// Fast path for the canonical form, base64url without padding: the
	// strict decoder refuses every byte outside that alphabet except CR
	// and LF, which it skips, so those two are looked for first.
	if strings.IndexByte(s, '\r') < 0 && strings.IndexByte(s, '\n') < 0 {
		if n, err := rawURL.Decode(raw, stringBytes(s)); err == nil {
			return raw[:n], nil
		}
	}
	enc, err := encodingOf(s)
	if err != nil {
		return nil, err
	}
	n, err := enc.Decode(raw, stringBytes(s))
	if err != nil {
		return nil, malformed("bad base64: %v", err)
	}
	return raw[:n], nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

var rawURL = base64.RawURLEncoding.Strict()

// stringBytes returns the bytes of s without copying, for the base64
// decoder, which only reads its input.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

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

// parseSpans parses canonical v2 binary into spans of raw.
func (t *Token) parseSpans(raw []byte, lim Limits) error {
	if len(raw) == 0 || raw[0] != 2 {
		return malformed("not a v2 binary macaroon")
	}
	d := decoder{data: raw, pos: 1}

	// Header: [location] identifier EOS.
	ft, data, err := d.packet()
	if err != nil {
		return err
	}
	if ft == fieldLocation {
		// An empty location field is kept, not refused: pymacaroons writes
		// one for location "", and the location is unsigned anyway. One
		// that is not UTF-8 is refused, as pymacaroons refuses it.
		if !utf8.Valid(raw[data.off:data.end]) {
			return malformed("location is not UTF-8")
		}
		t.location, t.hasLoc = data, true
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
	if err := t.parseIdentifier(raw); err != nil {
		return err
	}

	// Caveats, each [location] identifier [verification id] EOS; then EOS.
	var more []span
	for {
		ft, data, err := d.packet()
		if err != nil {
			return err
		}
		if ft == fieldEOS {
			break
		}
		if ft == fieldLocation {
			return fmt.Errorf("%w (caveat %d has a location)", ErrThirdParty, t.ncav)
		}
		if ft != fieldIdentifier {
			return malformed("caveat %d: unexpected field %d", t.ncav, ft)
		}
		if t.ncav == lim.MaxCaveats {
			return malformed("more than %d caveats", lim.MaxCaveats)
		}
		if n := int(data.end - data.off); n > lim.MaxCaveatLen {
			return malformed("caveat %d is %d bytes, over the limit of %d", t.ncav, n, lim.MaxCaveatLen)
		}
		cav := data
		if ft, _, err = d.packet(); err != nil {
			return err
		}
		switch ft {
		case fieldEOS:
		case fieldVerificationID:
			return fmt.Errorf("%w (caveat %d has a verification id)", ErrThirdParty, t.ncav)
		default:
			return malformed("caveat %d: unexpected field %d", t.ncav, ft)
		}
		t.addCaveat(cav, &more)
	}
	t.more = more

	ft, data, err = d.packet()
	if err != nil {
		return err
	}
	if ft != fieldSignature {
		return malformed("expected signature, found field %d", ft)
	}
	if n := data.end - data.off; n != sigLen {
		return malformed("signature is %d bytes, not %d", n, sigLen)
	}
	copy(t.sig[:], raw[data.off:data.end])
	if rest := len(raw) - d.pos; rest != 0 {
		return malformed("%d bytes after the signature", rest)
	}
	return nil
}

// decoder reads v2 packets: fieldType(varint) [payloadLen(varint) payload].
type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) varint() (int, error) {
	if d.pos < len(d.data) && d.data[d.pos] < 0x80 {
		// One byte: every field type and most lengths.
		v := d.data[d.pos]
		d.pos++
		return int(v), nil
	}
	v, n := binary.Uvarint(d.data[d.pos:])
	switch {
	case n == 0:
		return 0, malformed("truncated")
	case n < 0:
		return 0, malformed("varint overflows")
	case n > 1 && d.data[d.pos+n-1] == 0:
		return 0, malformed("non-minimal varint")
	case v > 1<<31-1:
		return 0, malformed("varint out of range")
	}
	d.pos += n
	return int(v), nil
}

func (d *decoder) packet() (int, span, error) {
	ft, err := d.varint()
	if err != nil {
		return 0, span{}, err
	}
	if ft == fieldEOS {
		return ft, span{}, nil
	}
	n, err := d.varint()
	if err != nil {
		return 0, span{}, err
	}
	if n > len(d.data)-d.pos {
		return 0, span{}, malformed("truncated")
	}
	p := span{uint32(d.pos), uint32(d.pos + n)}
	d.pos += n
	return ft, p, nil
}

// Location returns the token's location. It is not covered by the signature
// and decides nothing.
func (t *Token) Location() string { return string(t.bytes(t.location)) }

// Identifier returns the token's identifier.
func (t *Token) Identifier() string { return string(t.bytes(t.id)) }

// KeyID returns the id of the root key the identifier names.
func (t *Token) KeyID() string { return string(t.bytes(t.keyID)) }

// TokenID returns the token's id, or "" for a fatcat-format token.
func (t *Token) TokenID() string { return string(t.bytes(t.tokenID)) }

// IDs returns KeyID and TokenID with a single allocation.
func (t *Token) IDs() (keyID, tokenID string) {
	id := string(t.bytes(t.id))
	k := int(t.keyID.end - t.id.off)
	if t.tokenID.end == t.tokenID.off {
		return id[:k], ""
	}
	return id[:k], id[k+1:]
}

// NumCaveats returns how many first-party caveats the token carries.
func (t *Token) NumCaveats() int { return t.ncav }

// Caveats returns the text of every caveat, in order.
func (t *Token) Caveats() []string {
	out := make([]string, t.ncav)
	for i := range out {
		out[i] = string(t.caveat(i))
	}
	return out
}

// AppendCaveats appends the caveats to dst as slices of the token's own
// memory, without copying them, and returns the extended slice. The caller
// must not modify them.
func (t *Token) AppendCaveats(dst [][]byte) [][]byte {
	for i := 0; i < t.ncav; i++ {
		dst = append(dst, t.caveat(i))
	}
	return dst
}

// SignedText copies the identifier and the caveats out of the token's
// memory with a single allocation and returns them as strings that share
// it: the key id, the token id ("" for a fatcat-format token) and the
// caveats, appended to dst. A verifier that keeps what it parses from a
// token (ids, claims) pays one allocation for all of it instead of one per
// string. The shared memory also holds the few framing bytes between the
// fields, so any of the strings keeps the whole signed text alive.
func (t *Token) SignedText(dst []string) (keyID, tokenID string, caveats []string) {
	end := t.id.end
	if t.ncav > 0 {
		end = t.caveatSpan(t.ncav - 1).end
	}
	base := t.id.off
	text := string(t.raw[base:end])
	sub := func(s span) string { return text[s.off-base : s.end-base] }
	keyID = sub(t.keyID)
	if t.tokenID.end > t.tokenID.off {
		tokenID = sub(t.tokenID)
	}
	for i := 0; i < t.ncav; i++ {
		dst = append(dst, sub(t.caveatSpan(i)))
	}
	return keyID, tokenID, dst
}

// Signature returns the token's 32-byte signature.
func (t *Token) Signature() [32]byte { return t.sig }

// Binary returns a copy of the token's canonical v2 binary form.
func (t *Token) Binary() []byte { return append([]byte(nil), t.raw...) }

// Encode returns the token in its wire form: v2 binary, base64url without
// padding. The result is the bearer secret: never log it.
func (t *Token) Encode() string { return base64.RawURLEncoding.EncodeToString(t.raw) }

// String names the token by its identifier without revealing it, so a Token
// that ends up in a log line or an error leaks nothing.
func (t *Token) String() string { return "macaroon(" + t.Identifier() + ")" }
