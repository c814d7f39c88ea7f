package macaroon

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/binary"
	"hash"
	"sync"
)

// The HMAC-SHA256 chain of a macaroon, as in libmacaroons and macaroon.v2:
//
//	k   = HMAC(key: "macaroons-key-generator", msg: root secret)
//	s0  = HMAC(key: k, msg: identifier)
//	s_i = HMAC(key: s_{i-1}, msg: caveat_i)
//	signature = s_n
//
// k is fixed per root key, and so are the SHA-256 states after its inner and
// outer pad blocks; Key keeps them, so a verification costs 1+n HMACs minus
// two compression-function calls, and allocates nothing.

var keyGenerator = []byte("macaroons-key-generator")

const blockSize = sha256.BlockSize

// deriveKey returns the macaroon signing key for a root secret.
func deriveKey(secret []byte) [32]byte {
	h := hmac.New(sha256.New, keyGenerator)
	h.Write(secret)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// hmacer computes HMAC-SHA256 with a changing 32-byte key and no
// allocation.
type hmacer struct {
	inner, outer hash.Hash
	// ipad and opad are the pad blocks; their second halves (the zero
	// bytes of a 32-byte key) are constant and set once.
	ipad, opad [blockSize]byte
	sum        [32]byte // kept here: a local would escape through hash.Hash
	// msg holds each message while it is hashed, so the caller's memory
	// (the decoded token) never passes through hash.Hash.
	msg [512]byte
}

func newHmacer() *hmacer {
	h := &hmacer{inner: sha256.New(), outer: sha256.New()}
	for i := 32; i < blockSize; i++ {
		h.ipad[i], h.opad[i] = 0x36, 0x5c
	}
	return h
}

var hmacers = sync.Pool{New: func() any { return newHmacer() }}

// padStates returns the marshalled SHA-256 states after absorbing key's
// inner and outer pad blocks.
func padStates(key *[32]byte) (inner, outer []byte) {
	h := newHmacer()
	h.setKey(key)
	inner, _ = h.inner.(encoding.BinaryMarshaler).MarshalBinary()
	outer, _ = h.outer.(encoding.BinaryMarshaler).MarshalBinary()
	return inner, outer
}

const (
	ipadWord = 0x3636363636363636
	opadWord = 0x5c5c5c5c5c5c5c5c
)

// setKey starts an HMAC under key: both hashes absorb their pad block.
func (h *hmacer) setKey(key *[32]byte) {
	for i := 0; i < 32; i += 8 {
		k := binary.LittleEndian.Uint64(key[i:])
		binary.LittleEndian.PutUint64(h.ipad[i:], k^ipadWord)
		binary.LittleEndian.PutUint64(h.opad[i:], k^opadWord)
	}
	h.inner.Reset()
	h.inner.Write(h.ipad[:])
	h.outer.Reset()
	h.outer.Write(h.opad[:])
}

// finish completes the HMAC whose pad blocks are absorbed: sum = HMAC(msg).
func (h *hmacer) finish(sum *[32]byte, msg []byte) {
	for len(msg) > 0 {
		n := copy(h.msg[:], msg)
		h.inner.Write(h.msg[:n])
		msg = msg[n:]
	}
	h.inner.Sum(sum[:0])
	h.outer.Write(sum[:])
	h.outer.Sum(sum[:0])
}

// chain computes the signature of t into h.sum, starting from the
// precomputed pad states of the derived key.
func (k *Key) chain(h *hmacer, t *Token) {
	// The states were produced by MarshalBinary of the same hash type, so
	// UnmarshalBinary cannot fail.
	_ = h.inner.(encoding.BinaryUnmarshaler).UnmarshalBinary(k.innerState)
	_ = h.outer.(encoding.BinaryUnmarshaler).UnmarshalBinary(k.outerState)
	h.finish(&h.sum, t.bytes(t.id))
	for i := 0; i < t.ncav; i++ {
		h.setKey(&h.sum)
		h.finish(&h.sum, t.caveat(i))
	}
}

// Verify checks the token's signature under k in constant time. It returns
// nil or an error wrapping ErrBadSignature. It does not check that k is the
// key the token names; the caller looks the key up by Token.KeyID.
func (k *Key) Verify(t *Token) error {
	h := hmacers.Get().(*hmacer)
	k.chain(h, t)
	ok := subtle.ConstantTimeCompare(h.sum[:], t.sig[:]) == 1
	hmacers.Put(h)
	if !ok {
		return ErrBadSignature
	}
	return nil
}
