#!/usr/bin/python3
"""Interoperability helper for amaretti's tests, using Debian's
python3-pymacaroons, an implementation independent of amaretti.

  pymac.py inspect TOKEN KEY_B64
      Deserialize TOKEN (v2 binary, any base64), verify its signature with the
      root key KEY_B64 (standard padded base64) accepting every first-party
      caveat, and print JSON: identifier, location, caveats, signature_ok.
  pymac.py mint KEY_B64 IDENTIFIER LOCATION ENCODING CAVEAT...
      Mint a v2 macaroon and print it; ENCODING is "url" (base64url without
      padding) or "std" (standard padded base64, as fatcat wrote tokens).

Run it with /usr/bin/python3: the first python3 on PATH may not have the
package.
"""
import base64, json, sys
from pymacaroons import Macaroon, Verifier, MACAROON_V2
from pymacaroons.serializers import BinarySerializer

def b64decode_any(s):
    s = s.strip()
    s = s + "=" * (-len(s) % 4)
    if "-" in s or "_" in s:
        return base64.urlsafe_b64decode(s)
    return base64.b64decode(s)

def inspect(token, key_b64):
    raw = b64decode_any(token)
    m = Macaroon.deserialize(base64.urlsafe_b64encode(raw).decode(), serializer=BinarySerializer())
    v = Verifier()
    v.satisfy_general(lambda caveat: True)
    try:
        ok = v.verify(m, base64.b64decode(key_b64))
    except Exception as e:  # pymacaroons raises on a bad signature
        ok = False
    print(json.dumps({
        "identifier": m.identifier.decode() if isinstance(m.identifier, bytes) else m.identifier,
        "location": m.location,
        "caveats": [c.caveat_id.decode() if isinstance(c.caveat_id, bytes) else c.caveat_id for c in m.first_party_caveats()],
        "signature_ok": bool(ok),
    }))

def mint(key_b64, identifier, location, encoding, caveats):
    m = Macaroon(location=location, identifier=identifier, key=base64.b64decode(key_b64), version=MACAROON_V2)
    for c in caveats:
        m.add_first_party_caveat(c)
    raw = b64decode_any(m.serialize(serializer=BinarySerializer()))
    if encoding == "url":
        print(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    elif encoding == "std":
        print(base64.b64encode(raw).decode())
    else:
        sys.exit("encoding must be url or std")

if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "inspect":
        inspect(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 6 and sys.argv[1] == "mint":
        mint(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        sys.exit(__doc__)
