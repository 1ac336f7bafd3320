"""Parse a Sigstore bundle with sigstore-models, the pydantic models of
sigstore's protobuf specifications that sigstore-python reads bundles with
(strict: every field named as protobuf's JSON mapping names it, no field
the specification lacks), and check what a key-signed DSSE bundle must
hold for sigstore-go: a v0.3 media type, a public key hint, one DSSE
signature over an in-toto statement.

usage: validate_bundle.py HINT BUNDLE.json...
exit 0 when every bundle is valid, 1 when one is not
"""

import sys

from sigstore_models.bundle.v1 import Bundle


def check(path, hint):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        bundle = Bundle.model_validate_json(text)
    except Exception as e:  # pydantic's ValidationError, and JSON errors
        print(f"{path}: not a Sigstore bundle: {e}")
        return 1
    problems = []
    if bundle.media_type != "application/vnd.dev.sigstore.bundle.v0.3+json":
        problems.append(f"media type {bundle.media_type}")
    key = bundle.verification_material.public_key
    if key is None or key.hint != hint:
        problems.append(f"public key hint {key and key.hint}, expected {hint}")
    envelope = bundle.dsse_envelope
    if envelope is None or len(envelope.signatures) != 1:
        problems.append("not exactly one DSSE signature")
    elif envelope.payload_type != "application/vnd.in-toto+json":
        problems.append(f"payload type {envelope.payload_type}")
    for p in problems:
        print(f"{path}: {p}")
    if problems:
        return 1
    print(f"{path}: a valid v0.3 bundle, key hint {hint}")
    return 0


def main(hint, paths):
    return max(check(p, hint) for p in paths)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
