"""Validate an SPDX 2.3 JSON document with spdx-tools (what `pyspdxtools -i`
does), so stele's SBOMs are checked by the reference implementation rather
than by stele's own reading of the spec.

usage: validate_spdx.py FILE.spdx.json     exit 0 valid, 1 invalid
"""

import sys

from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document


def main(path):
    document = parse_file(path)
    messages = validate_full_spdx_document(document, "SPDX-2.3")
    for m in messages:
        print(f"{path}: {m.validation_message} ({m.context})")
    if messages:
        return 1
    print(f"{path}: valid SPDX-2.3, {len(document.packages)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
