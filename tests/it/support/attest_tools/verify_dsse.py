"""Verify a DSSE envelope with securesystemslib, independently of stele,
loading the public key the default way: SSlibKey.from_crypto computes its
own key id, and securesystemslib only tries a signature whose keyid is
that id. So this checks stele's key ids as much as its signatures.

usage: verify_dsse.py PUBLIC_KEY.pem ENVELOPE.json...
exit 0 when every envelope verified (each printed with the key id and its
payload type), 1 when one did not
"""

import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey


def main(key_path, envelope_paths):
    with open(key_path, "rb") as f:
        key = SSlibKey.from_crypto(load_pem_public_key(f.read()))
    failed = False
    for envelope_path in envelope_paths:
        with open(envelope_path, encoding="utf-8") as f:
            envelope = Envelope.from_dict(json.load(f))
        try:
            envelope.verify([key], 1)
        except VerificationError as e:
            print(f"{envelope_path}: not verified with key {key.keyid}: {e}")
            failed = True
            continue
        print(f"{envelope_path}: verified with key {key.keyid}, payloadType {envelope.payload_type}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
