package macaroon

import (
	"bytes"

	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/amaretti-auth/amaretti/caveat"
	"io"
	"strings"
)

const maxKeyIDLen = 64

// ValidKeyID reports whether id is a well-formed key id:
// [A-Za-z0-9][A-Za-z0-9._-]{0,63}. Key ids name files, so no path
// characters are allowed.
func ValidKeyID(id string) bool { return validKeyIDBytes(id) }

func validKeyIDBytes[T ~string | ~[]byte](id T) bool {
	if len(id) == 0 || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if !alnum && (i == 0 || b != '.' && b != '_' && b != '-') {
			return false
		}
	}
	return true
}

// ValidTokenID reports whether id is an upper-case UUID:
// XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX of [0-9A-F].
func ValidTokenID(id string) bool { return caveat.ValidTokenID(id) }

// NewTokenID returns a random version 4 UUID in upper case, read from r
// (crypto/rand when nil).
func NewTokenID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var u [16]byte
	if _, err := io.ReadFull(r, u[:]); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(u[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// FormatIdentifier returns the identifier naming key keyID and token
// tokenID, or keyID alone (fatcat's form) when tokenID is empty.
func FormatIdentifier(keyID, tokenID string) (string, error) {
	if !ValidKeyID(keyID) {
		return "", malformed("invalid key id %q", keyID)
	}
	if tokenID == "" {
		return keyID, nil
	}
	if !ValidTokenID(tokenID) {
		return "", malformed("invalid token id %q", tokenID)
	}
	return keyID + ":" + tokenID, nil
}

// parseIdentifier checks the identifier, t.id of raw, and records its key
// id and token id.
func (t *Token) parseIdentifier(raw []byte) error {
	id := raw[t.id.off:t.id.end]
	colon := bytes.IndexByte(id, ':')
	keyEnd := len(id)
	if colon >= 0 {
		keyEnd = colon
	}
	// ValidKeyID and ValidTokenID take strings; comparing through a
	// conversion in a call would allocate, so check the bytes here.
	if !validKeyIDBytes(id[:keyEnd]) {
		return malformed("identifier does not start with a valid key id")
	}
	t.keyID = span{t.id.off, t.id.off + uint32(keyEnd)}
	if colon >= 0 {
		if !caveat.ValidTokenID(id[colon+1:]) {
			return malformed("identifier has an invalid token id (want an upper-case UUID)")
		}
		t.tokenID = span{t.id.off + uint32(colon) + 1, t.id.end}
	}
	return nil
}
