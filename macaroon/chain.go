package macaroon

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
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

// hmacer computes HMAC-SHA256 with a changing key and no allocation.
type hmacer struct {
	inner, outer hash.Hash
	pad          [blockSize]byte
	sum          [32]byte // kept here: a local would escape through hash.Hash
}

var hmacers = sync.Pool{New: func() any {
	return &hmacer{inner: sha256.New(), outer: sha256.New()}
}}

// padStates returns the marshalled SHA-256 states after absorbing key's
// inner and outer pad blocks.
func padStates(key *[32]byte) (inner, outer []byte) {
	h := &hmacer{inner: sha256.New(), outer: sha256.New()}
	h.setKey(key)
	inner, _ = h.inner.(encoding.BinaryMarshaler).MarshalBinary()
	outer, _ = h.outer.(encoding.BinaryMarshaler).MarshalBinary()
	return inner, outer
}

func (h *hmacer) setKey(key *[32]byte) {
	for i := range h.pad {
		var b byte
		if i < len(key) {
			b = key[i]
		}
		h.pad[i] = b ^ 0x36
	}
	h.inner.Reset()
	h.inner.Write(h.pad[:])
	for i := range h.pad {
		h.pad[i] ^= 0x36 ^ 0x5c
	}
	h.outer.Reset()
	h.outer.Write(h.pad[:])
}

// finish completes the HMAC whose pad blocks are absorbed: sum = HMAC(msg).
func (h *hmacer) finish(sum *[32]byte, msg []byte) {
	h.inner.Write(msg)
	h.inner.Sum(sum[:0])
	h.outer.Write(sum[:])
	h.outer.Sum(sum[:0])
}

// chain computes the signature over id and caveats into h.sum, starting
// from the precomputed pad states of the derived key.
func (k *Key) chain(h *hmacer, id []byte, caveats [][]byte) {
	// The states were produced by MarshalBinary of the same hash type, so
	// UnmarshalBinary cannot fail.
	_ = h.inner.(encoding.BinaryUnmarshaler).UnmarshalBinary(k.innerState)
	_ = h.outer.(encoding.BinaryUnmarshaler).UnmarshalBinary(k.outerState)
	h.finish(&h.sum, id)
	for _, c := range caveats {
		h.setKey(&h.sum)
		h.finish(&h.sum, c)
	}
}

// Verify checks the token's signature under k in constant time. It returns
// nil or an error wrapping ErrBadSignature. It does not check that k is the
// key the token names; the caller looks the key up by Token.KeyID.
func (k *Key) Verify(t *Token) error {
	h := hmacers.Get().(*hmacer)
	k.chain(h, t.id, t.caveats)
	ok := subtle.ConstantTimeCompare(h.sum[:], t.sig[:]) == 1
	hmacers.Put(h)
	if !ok {
		return ErrBadSignature
	}
	return nil
}
