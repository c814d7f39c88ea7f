package verifier_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	mv2 "gopkg.in/macaroon.v2"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/corpus.json")

// sign builds a token with macaroon.v2 (not our minter), so the corpus can
// hold tokens our minter would refuse to make.
func sign(t testing.TB, secretB64, id string, caveats ...string) []byte {
	t.Helper()
	secret, err := base64.StdEncoding.DecodeString(secretB64)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mv2.New(secret, []byte(id), fixtureLocation, mv2.V2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const goldenID = goldenKeyID + ":" + fixtureTokenID

func golden(t testing.TB, caveats ...string) []byte {
	return sign(t, goldenSecret, goldenID, caveats...)
}

// buildCorpus makes every case of testdata/bad/corpus.json. It is
// deterministic: TestCorpusUpToDate checks the file against it.
func buildCorpus(t testing.TB) corpus {
	good := golden(t, caveatsOf()...)
	goodText := b64(good)
	withSig := func(n int) []byte {
		b := append([]byte{}, good[:len(good)-34]...)
		b = append(b, 6, byte(n))
		return append(b, bytes.Repeat([]byte{0xab}, n)...)
	}
	many := make([]string, 33)
	for i := range many {
		many[i] = "method = GET"
	}
	big := make([]string, 12)
	for i := range big {
		big[i] = "path_prefix = /" + strings.Repeat("a", 300)
	}
	flipped := append([]byte{}, good...)
	flipped[len(flipped)-1] ^= 1
	thirdParty := func() []byte {
		// A caveat section with location, identifier and a fixed
		// verification id, before the end of the caveats. (A macaroon.v2
		// third-party caveat has a random nonce; the macaroon package tests
		// use a real one.)
		b := append([]byte{}, good[:len(good)-35]...)
		loc, cid := "https://auth.example.org", "is-admin"
		b = append(b, 1, byte(len(loc)))
		b = append(b, loc...)
		b = append(b, 2, byte(len(cid)))
		b = append(b, cid...)
		b = append(b, 4, 72)
		b = append(b, bytes.Repeat([]byte{9}, 72)...)
		b = append(b, 0)
		return append(b, good[len(good)-35:]...)
	}()
	overlong := append([]byte{2, 1, 0x8f, 0x00}, good[3:]...) // location length as a 2-byte varint

	c := corpus{About: "Tokens the verifier must deny, and why. Replayed by verifier/corpus_test.go against its fixture " +
		"(keys golden-2026, dummy, retired-2025; editors alice, fatcat-bot, bob (inactive), carol (locked), dave (touched " +
		"2026-05-01); clock 2026-06-01T12:00:00Z; request GET /api/v1/things). Regenerate with: go test ./verifier -run TestCorpus -update"}
	reasons := map[string]string{
		"empty":                                         "empty token",
		"not base64":                                    "byte 0x21 at offset 0 is not base64",
		"base64 with a space inside":                    "byte 0x20 at offset 30",
		"base64 with CR LF inside":                      "byte 0x0d at offset 30",
		"base64 with a trailing newline":                "byte 0x0a",
		"base64 with NUL inside":                        "byte 0x00 at offset 30",
		"base64 with a tab inside":                      "byte 0x09 at offset 30",
		"v1 serialization":                              "not a v2 binary macaroon",
		"over-long varint":                              "non-minimal varint",
		"varint past 2^31":                              "varint out of range",
		"trailing bytes after the signature":            "2 bytes after the signature",
		"signature of 31 bytes":                         "signature is 31 bytes",
		"signature of 33 bytes":                         "signature is 33 bytes",
		"no signature":                                  "truncated",
		"token over 4 KiB":                              "over the limit of 4096",
		"33 caveats":                                    "more than 32 caveats",
		"caveat over 512 bytes":                         "513 bytes, over the limit of 512",
		"no caveats":                                    "token has no caveats",
		"third-party caveat":                            "third-party caveats are not supported",
		"caveat with NUL":                               "byte 0x00 at offset 12 is not printable ASCII",
		"caveat with newline":                           "byte 0x0a at offset 12 is not printable",
		"caveat with tab":                               "byte 0x09 at offset 8 is not printable",
		"caveat with DEL":                               "byte 0x7f at offset 12",
		"caveat not UTF-8":                              "byte 0xff at offset 10",
		"caveat with non-ASCII UTF-8":                   "byte 0xc3 at offset 14",
		"caveat with two separators":                    "more than one separator",
		"caveat with double space":                      "single spaces",
		"caveat without spaces":                         "no separator",
		"caveat with trailing data":                     "more than one separator or trailing data",
		"caveat with trailing space":                    "more than one separator or trailing data",
		"unknown caveat":                                "unknown caveat \"color\"",
		"caveat name that only starts like a known one": "unknown caveat \"time_ok\"",
		"month out of range":                            "month out of range",
		"day out of range":                              "day out of range",
		"hour out of range":                             "time of day out of range",
		"leap second":                                   "time of day out of range",
		"year out of range":                             "year out of range",
		"fraction of 10 digits":                         "fraction must be 1 to 9 digits",
		"time with an offset":                           "not RFC 3339 UTC",
		"too many rights":                               "more than 64 rights",
		"no editor_id":                                  "no editor_id caveat",
		"no creation time":                              "no creation time",
		"second editor_id":                              "second editor_id",
		"second identical editor_id":                    "second editor_id",
		"second creation time":                          "second creation time",
		"username appended by a holder":                 "username after the creation time",
		"second identical creation time":                "second creation time",
		"kind appended by a holder":                     "kind after the creation time",
		"second kind":                                   "second kind",
		"unknown kind":                                  "kind must be one of",
		"revoked token":                                 "token revoked",
		"revoked token with a fresh creation time appended (stays revoked)": "second creation time",
		"created at the epoch exactly":                                      "token revoked",
		"expired":                                                           "token expired at 2026-06-01T11:00:00Z",
		"expiry equal to now":                                               "token expired at 2026-06-01T12:00:00Z",
		"bakery expiry passed":                                              "token expired at 2026-06-01T12:00:00Z",
		"created beyond the skew":                                           "more than 5s ahead of now",
		"unknown key id":                                                    "key \"nokey-2026\": unknown key",
		"key id with path characters":                                       "identifier does not start with a valid key id",
		"key id that is a path":                                             "identifier does not start with a valid key id",
		"retired key":                                                       "key \"retired-2025\": key retired",
		"signed with another key":                                           "bad signature",
		"signature flipped":                                                 "bad signature",
		"caveat added without re-signing":                                   "bad signature",
		"caveat removed":                                                    "bad signature",
		"unknown editor":                                                    "unknown editor",
		"inactive editor":                                                   "editor inactive",
		"locked editor":                                                     "editor locked",
		"method forbidden":                                                  "method GET not allowed",
		"path forbidden":                                                    "request path is outside the prefix",
		"endpoint caveat, request names none":                               "request names no endpoint",
	}
	add := func(name string, token string, want string) {
		if want != "ok" && reasons[name] == "" {
			t.Fatalf("corpus case %q has no reason", name)
		}
		c.Cases = append(c.Cases, corpusCase{Name: name, Token: token, Want: want, Reason: reasons[name]})
	}
	add("valid (control)", goodText, "ok")
	add("valid, standard padded base64", base64.StdEncoding.EncodeToString(good), "ok")
	add("valid, location changed (unsigned, decides nothing)", b64(append(append([]byte{2, 1, 8}, "evil.org"...), good[2+1+15:]...)), "ok")
	add("empty", "", "malformed")
	add("not base64", "!!!not-a-token!!!", "malformed")
	add("base64 with a space inside", goodText[:30]+" "+goodText[30:], "malformed")
	add("base64 with CR LF inside", goodText[:30]+"\r\n"+goodText[30:], "malformed")
	add("base64 with a trailing newline", goodText+"\n", "malformed")
	add("base64 with NUL inside", goodText[:30]+"\x00"+goodText[30:], "malformed")
	add("base64 with a tab inside", goodText[:30]+"\t"+goodText[30:], "malformed")
	add("v1 serialization", "MDAyMWxvY2F0aW9uIGFwaS5leGFtcGxlLm9yZwowMDE", "malformed")
	add("over-long varint", b64(overlong), "malformed")
	add("varint past 2^31", b64(append([]byte{2, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, good[3:]...)), "malformed")
	add("trailing bytes after the signature", b64(append(append([]byte{}, good...), 0, 0)), "malformed")
	add("signature of 31 bytes", b64(withSig(31)), "malformed")
	add("signature of 33 bytes", b64(withSig(33)), "malformed")
	add("no signature", b64(good[:len(good)-34]), "malformed")
	add("token over 4 KiB", b64(golden(t, caveatsOf(big...)...)), "malformed")
	add("33 caveats", b64(golden(t, caveatsOf(many[:31]...)...)), "malformed")
	add("caveat over 512 bytes", b64(golden(t, caveatsOf("path_prefix = /"+strings.Repeat("a", 498))...)), "malformed")
	add("no caveats", b64(golden(t)), "malformed")
	add("third-party caveat", b64(thirdParty), "malformed")
	add("caveat with NUL", b64(golden(t, caveatsOf("method = GET\x00")...)), "malformed")
	add("caveat with newline", b64(golden(t, caveatsOf("method = GET\nmethod = POST")...)), "malformed")
	add("caveat with tab", b64(golden(t, caveatsOf("method =\tGET")...)), "malformed")
	add("caveat with DEL", b64(golden(t, caveatsOf("method = GET\x7f")...)), "malformed")
	add("caveat not UTF-8", b64(golden(t, caveatsOf("method = G\xffT")...)), "malformed")
	add("caveat with non-ASCII UTF-8", b64(golden(t, caveatsOf("endpoint = caf\u00e9")...)), "malformed")
	add("caveat with two separators", b64(golden(t, caveatsOf("method = GET POST")...)), "malformed")
	add("caveat with double space", b64(golden(t, caveatsOf("method  = GET")...)), "malformed")
	add("caveat without spaces", b64(golden(t, caveatsOf("method=GET")...)), "malformed")
	add("caveat with trailing data", b64(golden(t, caveatsOf("time < 2027-01-01T00:00:00Z extra")...)), "malformed")
	add("caveat with trailing space", b64(golden(t, caveatsOf("method = GET ")...)), "malformed")
	add("unknown caveat", b64(golden(t, caveatsOf("color = red")...)), "malformed")
	add("caveat name that only starts like a known one", b64(golden(t, caveatsOf("time_ok = 1")...)), "malformed")
	add("month out of range", b64(golden(t, caveatsOf("time < 2026-13-01T00:00:00Z")...)), "malformed")
	add("day out of range", b64(golden(t, caveatsOf("time < 2027-02-29T00:00:00Z")...)), "malformed")
	add("hour out of range", b64(golden(t, caveatsOf("time < 2027-01-01T24:00:00Z")...)), "malformed")
	add("leap second", b64(golden(t, caveatsOf("time < 2026-12-31T23:59:60Z")...)), "malformed")
	add("year out of range", b64(golden(t, caveatsOf("time < 0999-01-01T00:00:00Z")...)), "malformed")
	add("fraction of 10 digits", b64(golden(t, caveatsOf("time < 2027-01-01T00:00:00.1234567890Z")...)), "malformed")
	add("time with an offset", b64(golden(t, caveatsOf("time < 2027-01-01T00:00:00+01:00")...)), "malformed")
	add("too many rights", b64(golden(t, caveatsOf("rights = "+strings.TrimSuffix(strings.Repeat("r,", 65), ","))...)), "malformed")
	add("no editor_id", b64(golden(t, "time > 2026-05-01T00:00:00Z")), "malformed")
	add("no creation time", b64(golden(t, "editor_id = "+alice)), "malformed")
	add("second editor_id", b64(golden(t, caveatsOf("editor_id = "+fatcatEditor)...)), "malformed")
	add("second identical editor_id", b64(golden(t, caveatsOf("editor_id = "+alice)...)), "malformed")
	add("second creation time", b64(golden(t, caveatsOf("time > 2026-06-01T11:00:00Z")...)), "malformed")
	add("username appended by a holder", b64(golden(t, caveatsOf("username = admin")...)), "malformed")
	add("kind appended by a holder", b64(golden(t, caveatsOf("kind = session")...)), "malformed")
	add("second kind", b64(golden(t, "editor_id = "+alice, "kind = api", "kind = session", "time > 2026-05-01T00:00:00.000001Z")), "malformed")
	add("unknown kind", b64(golden(t, "editor_id = "+alice, "kind = admin", "time > 2026-05-01T00:00:00.000001Z")), "malformed")
	add("second identical creation time", b64(golden(t, caveatsOf("time > 2026-05-01T00:00:00.000001Z")...)), "malformed")
	add("revoked token", b64(golden(t, "editor_id = "+touchedEditor, "time > 2026-04-01T00:00:00Z")), "revoked")
	add("revoked token with a fresh creation time appended (stays revoked)",
		b64(golden(t, "editor_id = "+touchedEditor, "time > 2026-04-01T00:00:00Z", "time > 2026-06-01T11:59:00Z")), "malformed")
	add("created at the epoch exactly", b64(golden(t, "editor_id = "+touchedEditor, "time > 2026-05-01T00:00:00Z")), "revoked")
	add("expired", b64(golden(t, caveatsOf("time < 2026-06-01T11:00:00Z")...)), "expired")
	add("expiry equal to now", b64(golden(t, caveatsOf("time < 2026-06-01T12:00:00Z")...)), "expired")
	add("bakery expiry passed", b64(golden(t, caveatsOf("time-before 2026-06-01T12:00:00Z")...)), "expired")
	add("created beyond the skew", b64(golden(t, "editor_id = "+alice, "time > 2026-06-01T12:00:06Z")), "not_yet_valid")
	add("unknown key id", b64(sign(t, goldenSecret, "nokey-2026:"+fixtureTokenID, caveatsOf()...)), "unknown_key")
	add("key id with path characters", b64(sign(t, goldenSecret, "../keys/"+goldenKeyID+":"+fixtureTokenID, caveatsOf()...)), "malformed")
	add("key id that is a path", b64(sign(t, goldenSecret, "/etc/passwd", caveatsOf()...)), "malformed")
	add("retired key", b64(sign(t, retiredSecret, retiredKeyID+":"+fixtureTokenID, caveatsOf()...)), "retired_key")
	add("signed with another key", b64(sign(t, retiredSecret, goldenID, caveatsOf()...)), "bad_signature")
	add("signature flipped", b64(flipped), "bad_signature")
	add("caveat added without re-signing", b64(func() []byte {
		b := golden(t, caveatsOf()...)
		tail := b[len(b)-35:] // EOS EOS sig-packet: keep the signature
		head := append([]byte{}, b[:len(b)-35]...)
		head = append(head, 2, 12)
		head = append(head, "method = GET"...)
		head = append(head, 0)
		return append(head, tail...)
	}()), "bad_signature")
	add("caveat removed", b64(func() []byte {
		full := golden(t, caveatsOf("method = POST")...)
		short := golden(t, caveatsOf()...)
		return append(short[:len(short)-32], full[len(full)-32:]...)
	}()), "bad_signature")
	add("unknown editor", b64(golden(t, "editor_id = "+unknownEditor, "time > 2026-05-01T00:00:00Z")), "unknown_editor")
	add("inactive editor", b64(golden(t, "editor_id = "+inactiveEditor, "time > 2026-05-01T00:00:00Z")), "inactive")
	add("locked editor", b64(golden(t, "editor_id = "+lockedEditor, "time > 2026-05-01T00:00:00Z")), "locked")
	add("method forbidden", b64(golden(t, caveatsOf("method = POST")...)), "forbidden")
	add("path forbidden", b64(golden(t, caveatsOf("path_prefix = /api/v2")...)), "forbidden")
	add("endpoint caveat, request names none", b64(golden(t, caveatsOf("endpoint = create_editgroup")...)), "forbidden")
	return c
}

func TestCorpusUpToDate(t *testing.T) {
	built := buildCorpus(t)
	data, err := json.MarshalIndent(built, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	if *update {
		if err := os.WriteFile(corpusPath, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	onDisk, err := os.ReadFile(corpusPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, data) {
		t.Fatal("testdata/bad/corpus.json is out of date: go test ./verifier -run TestCorpus -update")
	}
}

// TestBadInputCorpus replays testdata/bad/corpus.json: every case is denied
// for its reason (or, for controls, allowed), and nothing panics.
func TestBadInputCorpus(t *testing.T) {
	f := newFixture(t)
	c := loadCorpus(t)
	if len(c.Cases) < 50 {
		t.Fatalf("corpus has only %d cases", len(c.Cases))
	}
	for _, tc := range c.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			want, ok := wantErr[tc.Want]
			if !ok {
				t.Fatalf("unknown want %q", tc.Want)
			}
			// Twice: the second call takes the cached path where there is one.
			for i := 0; i < 2; i++ {
				id, err := f.v.Verify(context.Background(), tc.Token, corpusRequest)
				if want == nil {
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					continue
				}
				if !errors.Is(err, want) || !strings.Contains(err.Error(), tc.Reason) {
					t.Fatalf("call %d: Verify = %v, want %v because %q", i, err, want, tc.Reason)
				}
				if id.EditorID != "" || id.TokenID != "" || id.Rights != nil {
					t.Fatalf("denied, but returned identity %+v", id)
				}
				var d interface{ Unwrap() error }
				if !errors.As(err, &d) || err.Error() == "" {
					t.Fatalf("error %T has no reason", err)
				}
				if tc.Token != "" && len(tc.Token) > 20 && strings.Contains(err.Error(), tc.Token[20:]) {
					t.Fatal("error text contains the token")
				}
			}
		})
	}
	t.Run("truncated at every byte offset", func(t *testing.T) {
		good := golden(t, caveatsOf()...)
		for i := 0; i < len(good); i++ {
			if _, err := f.v.Verify(context.Background(), b64(good[:i]), corpusRequest); !errors.Is(err, wantErr["malformed"]) {
				t.Fatalf("truncated to %d bytes: %v", i, err)
			}
		}
	})
}
