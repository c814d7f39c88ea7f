// Package caveat defines amaretti's first-party caveats: their exact text
// grammar, typed values with constructors and a strict parser, and the
// Checker a verifier uses to decide whether the caveats of a token allow a
// request.
//
// # Grammar
//
// A caveat is printable ASCII (0x20–0x7E) of the form
//
//	name SP op SP value
//
// with exactly one space on each side of the operator, where name matches
// [a-z][a-z0-9_-]{0,63}, op is one of "=", "<" or ">", and value is one or
// more printable characters other than space. Bakery's expiry caveat is also
// accepted in its own spelling, "time-before" SP value. Anything else — a
// second separator, doubled or missing spaces, control characters, non-ASCII
// bytes, trailing data — fails to parse, and a caveat that fails to parse
// fails verification.
//
// Caveats are dispatched on their exact name (a map lookup, never a prefix
// match) and each value is gated by an exact pattern before it is converted,
// so lenient conversions such as time.Parse never see unexpected input.
//
// # Built-in caveats
//
//	editor_id = <id>            claim: the editor the token acts for (exactly once)
//	username = <name>           claim: the editor's username (at most once, before time >)
//	kind = <kind>               claim: session, api, exchange, cli or bootstrap (at most once, before time >)
//	time > <RFC 3339 UTC>       claim: when the token was created (exactly once)
//	time < <RFC 3339 UTC>       restriction: expiry; now ≥ expiry fails
//	time-before <RFC 3339 UTC>  restriction: bakery's spelling of the same expiry
//	endpoint = <name>           restriction: only requests naming this endpoint
//	rights = <r1>,<r2>,...      restriction: only these rights may be exercised
//	method = <M1>,<M2>,...      restriction: only these HTTP methods
//	path_prefix = </path>       restriction: only this path and paths below it
//	parent_token = <token id>   restriction: dies when that token is revoked
//
// Claims are read, not checked: anyone holding a token can append caveats, so
// a second editor_id or created caveat — even an identical one — makes the
// token malformed. A username or a kind is trusted only before the creation
// time: holders can only append, so what precedes "time >" was written by
// the minter. A minter that writes a kind puts every caveat of its own
// before "time >", so a token whose last caveat is "time >" is exactly as
// minted (Claims.Pristine). Restrictions may repeat and all must hold, which is what
// makes attenuation work: appending "time < T" can only shorten a token's life.
package caveat
