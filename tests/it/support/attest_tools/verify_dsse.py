"""Verify a DSSE envelope with securesystemslib, independently of stele.

The key id is computed here from the public key (sha256 of its SPKI DER, as
stele documents), so a mismatch in stele's key ids fails this check too.

usage: verify_dsse.py ENVELOPE.json PUBLIC_KEY.pem
exit 0 verified (prints the payload type), 1 not verified
"""

import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey


def main(envelope_path, key_path):
    with open(key_path, "rb") as f:
        public = load_pem_public_key(f.read())
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    keyid = hashlib.sha256(der).hexdigest()
    key = SSlibKey.from_crypto(public, keyid=keyid)
    with open(envelope_path, encoding="utf-8") as f:
        envelope = Envelope.from_dict(json.load(f))
    try:
        envelope.verify([key], 1)
    except VerificationError as e:
        print(f"{envelope_path}: not verified with key {keyid}: {e}")
        return 1
    print(f"{envelope_path}: verified with key {keyid}, payloadType {envelope.payload_type}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
