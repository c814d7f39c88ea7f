package macaroon

import (
	"hash/crc32"
	"strings"
)

// The API token format: the registry writes the API tokens it mints (and
// the tokens it exchanges them for) as
//
//	amt_ + the macaroon (base64url, no padding) + _ + checksum
//
// where checksum is the CRC-32 (IEEE) of everything before the last "_"
// (the prefix and the macaroon), in base62 (0-9, A-Z, a-z), left-padded
// with '0' to ChecksumLen characters: GitHub's scheme for ghp_ tokens. A
// secret scanner finds such tokens with APITokenPattern and checks them
// offline (CheckAPIFormat), with almost no false positives. Inside is a
// standard macaroon: StripAPIFormat gives it to any macaroon library.
const (
	// APIPrefix starts every API token the registry writes. No plain
	// macaroon starts with it: version 2 binary starts with 0x02, whose
	// base64 starts with "A".
	APIPrefix = "amt_"
	// ChecksumLen is the checksum's width in base62 characters (62^6 >
	// 2^32).
	ChecksumLen = 6
	// APITokenPattern is the regular expression (RE2, also PCRE) that
	// matches an API token in text, for secret scanners (gitleaks,
	// trufflehog). The README publishes it; a match is confirmed offline
	// with CheckAPIFormat or `amaretti token check`.
	APITokenPattern = `amt_A[A-Za-z0-9_-]{30,}_[0-9A-Za-z]{6}\b`
)

// ErrChecksum means a token in the API token format has no valid checksum:
// it was mistyped, truncated or otherwise damaged. It wraps ErrMalformed,
// and is found before any decoding.
var ErrChecksum error = &sentinel{msg: "token checksum mismatch", wraps: ErrMalformed}

// sentinel is an error with its own fixed text that wraps another
// sentinel.
type sentinel struct {
	msg   string
	wraps error
}

func (s *sentinel) Error() string { return s.msg }
func (s *sentinel) Unwrap() error { return s.wraps }

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// checksum writes the base62 CRC-32 of s into dst.
func checksum(dst *[ChecksumLen]byte, s string) {
	c := crc32.ChecksumIEEE(stringBytes(s))
	for i := ChecksumLen - 1; i >= 0; i-- {
		dst[i] = base62[c%62]
		c /= 62
	}
}

// FormatAPI writes mac, a macaroon in base64url, in the API token format.
// A text already in the format is returned as it is.
func FormatAPI(mac string) string {
	if strings.HasPrefix(mac, APIPrefix) {
		return mac
	}
	body := APIPrefix + mac
	var crc [ChecksumLen]byte
	checksum(&crc, body)
	return body + "_" + string(crc[:])
}

// StripAPIFormat returns the macaroon inside a token in the API token
// format, and whether text was in that format. Text without APIPrefix (a
// session, a fatcat-format token, a macaroon from another library) is
// returned as it is. A prefixed text whose checksum does not match fails
// with ErrChecksum; nothing is decoded. It does not allocate.
func StripAPIFormat(text string) (mac string, formatted bool, err error) {
	if !strings.HasPrefix(text, APIPrefix) {
		return text, false, nil
	}
	n := len(text) - ChecksumLen - 1
	if n <= len(APIPrefix) || text[n] != '_' {
		return "", true, ErrChecksum
	}
	// The checksum is public (anyone can compute it), so a plain
	// comparison is fine.
	var want [ChecksumLen]byte
	checksum(&want, text[:n])
	if string(want[:]) != text[n+1:] {
		return "", true, ErrChecksum
	}
	mac = text[len(APIPrefix):n]
	if strings.HasPrefix(mac, APIPrefix) {
		// Wrapped twice: no issuer writes that (FormatAPI keeps a
		// formatted token as it is), so it is refused like a typo.
		return "", true, ErrChecksum
	}
	return mac, true, nil
}

// CheckAPIFormat reports whether text is a well-formed API token, offline
// and without any key: the prefix and checksum match and the macaroon
// inside decodes under DefaultLimits. It says nothing of the signature. The
// error wraps ErrChecksum or ErrMalformed and never repeats the token.
func CheckAPIFormat(text string) (*Token, error) {
	if !strings.HasPrefix(text, APIPrefix) {
		return nil, malformed("no %s prefix: not an API token", APIPrefix)
	}
	return Parse(text, Limits{})
}
