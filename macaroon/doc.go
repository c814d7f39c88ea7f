// Package macaroon holds amaretti's tokens: the strict decoder and encoder of
// their wire form (Token), the signature check, the Minter, attenuation, and
// the on-disk root KeyStore with rotation.
//
// Minting and attenuation use gopkg.in/macaroon.v2. Verification decodes the
// v2 binary itself and computes the HMAC-SHA256 chain with per-key
// precomputed state, because the library's general decoder allocates about
// 46 times per token and its key derivation repeats work that is the same
// for every token under a key. Both are pinned to macaroon.v2 and
// libmacaroons by golden vectors, a differential fuzz target and interop
// tests.
//
// # Wire form
//
// A token is a macaroon in the v2 binary format, written as base64url
// without padding. Parse also accepts padded base64url and standard padded
// base64 (as fatcat writes tokens), never whitespace or any other byte. The
// binary must be canonical: minimal varints, fields in order, nothing after
// the 32-byte signature; Encode gives back exactly the decoded bytes. An empty
// location field (pymacaroons writes one) is kept as it is.
//
// # Identifier
//
// The identifier is printable ASCII:
//
//	<key id>:<token id>     e.g. 20261122-9f86d081:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE
//	<key id>                fatcat's form; the token has no id of its own
//
// A key id matches [A-Za-z0-9][A-Za-z0-9._-]{0,63}; a token id is a random
// 128-bit UUID (version 4) in upper case.
package macaroon
