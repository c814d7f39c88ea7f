#!/usr/bin/python3
"""Differential-test harness for amaretti: verifies macaroons with Debian's
python3-pymacaroons. Run by verifier/reference_test.go with /usr/bin/python3.

stdin: one line per token, "KEY TOKEN": KEY the root secret in standard
padded base64, TOKEN the binary macaroon (v1 or v2) in base64url.
stdout: one line per token, "ok IDHEX CAVHEX,CAVHEX,..." when the signature
chain verifies with every first-party caveat accepted (each caveat the
general checker saw, in order), "bad-token" when it does not deserialize,
or "refused".
"""
import base64, sys
from pymacaroons import Macaroon, Verifier
from pymacaroons.serializers import BinarySerializer

def hexs(b):
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    return b.hex()

for line in sys.stdin:
    key_b64, _, token = line.strip("\r\n").partition(" ")
    try:
        key = base64.b64decode(key_b64, validate=True)
        m = Macaroon.deserialize(token + "=" * (-len(token) % 4), serializer=BinarySerializer())
    except Exception:
        print("bad-token", flush=True)
        continue
    seen = []
    def general(caveat):
        seen.append(hexs(caveat) or "-")
        return True
    v = Verifier()
    v.satisfy_general(general)
    try:
        ok = v.verify(m, key)
    except Exception:
        ok = False
    if ok:
        print("ok", hexs(m.identifier_bytes if hasattr(m, "identifier_bytes") else m.identifier), ",".join(seen), flush=True)
    else:
        print("refused", flush=True)
