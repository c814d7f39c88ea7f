#!/usr/bin/python3
"""Regenerates tokens.json with pymacaroons (Debian's python3-pymacaroons),
an implementation independent of amaretti and gopkg.in/macaroon.v2.

Run with Debian's interpreter: /usr/bin/python3 make_golden.py > tokens.json
The output is deterministic; amaretti's tests check every field of it.
"""
import base64, binascii, json
from pymacaroons import Macaroon, MACAROON_V2
from pymacaroons.serializers import BinarySerializer

def token(location, identifier, key, caveats):
    m = Macaroon(location=location, identifier=identifier, key=key, version=MACAROON_V2)
    for c in caveats:
        m.add_first_party_caveat(c)
    raw = base64.urlsafe_b64decode(pad(m.serialize(serializer=BinarySerializer())))
    return m, raw

def pad(s):
    s = s if isinstance(s, str) else s.decode()
    return s + "=" * (-len(s) % 4)

def vector(name, key_id, key, location, identifier, caveats, encoding):
    m, raw = token(location, identifier, key, caveats)
    if encoding == "base64url":
        text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    else:
        text = base64.b64encode(raw).decode()
    return {
        "name": name,
        "key_id": key_id,
        "secret": base64.b64encode(key).decode(),
        "location": location,
        "identifier": identifier,
        "caveats": caveats,
        "signature_hex": m.signature,
        "binary_hex": binascii.hexlify(raw).decode(),
        "token": text,
    }

golden_key = bytes(range(32))
fatcat_key = b"dummy-key-a-one-two-three-a-la!!"  # fatcat's own test key, 32 bytes
base = ["editor_id = aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "time > 2026-01-01T00:00:00.000001Z",
        "time < 2027-01-01T00:00:00Z"]
vectors = [
    vector("amaretti", "golden-2026", golden_key, "api.example.org",
           "golden-2026:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE", base, "base64url"),
    vector("attenuated", "golden-2026", golden_key, "api.example.org",
           "golden-2026:3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE",
           base + ["rights = read", "method = GET", "time < 2026-07-01T00:00:00Z"], "base64url"),
    vector("no-location", "golden-2026", golden_key, "",
           "golden-2026:9B2C6F0E-1D2A-4C3B-8E7F-112233445566",
           ["editor_id = bbbbbbbbbbbbbbbbbbbbbbbbbb", "time > 2026-01-01T00:00:00.5Z"], "base64url"),
    vector("fatcat", "dummy", fatcat_key, "test.fatcat.wiki", "dummy",
           ["editor_id = aaaaaaaaaaaaaaaaaaaaaaaaaq", "time > 2019-01-01T00:00:00Z"], "standard"),
    vector("fatcat-expiring", "dummy", fatcat_key, "test.fatcat.wiki", "dummy",
           ["editor_id = aaaaaaaaaaaaaaaaaaaaaaaaaq", "time > 2019-01-01T00:00:00Z",
            "time < 2099-01-01T00:00:00Z"], "standard"),
]
print(json.dumps(vectors, indent=2))
