"""Verify a DSSE envelope with securesystemslib, independently of stele,
loading the public key the default way: SSlibKey.from_crypto computes its
own key id, and securesystemslib only tries a signature whose keyid is
that id. So this checks stele's key ids as much as its signatures.

usage: verify_dsse.py ENVELOPE.json PUBLIC_KEY.pem
exit 0 verified (prints the key id and payload type), 1 not verified
"""

import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey


def main(envelope_path, key_path):
    with open(key_path, "rb") as f:
        key = SSlibKey.from_crypto(load_pem_public_key(f.read()))
    with open(envelope_path, encoding="utf-8") as f:
        envelope = Envelope.from_dict(json.load(f))
    try:
        envelope.verify([key], 1)
    except VerificationError as e:
        print(f"{envelope_path}: not verified with key {key.keyid}: {e}")
        return 1
    print(f"{envelope_path}: verified with key {key.keyid}, payloadType {envelope.payload_type}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
