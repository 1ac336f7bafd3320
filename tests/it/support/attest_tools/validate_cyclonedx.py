"""Validate a CycloneDX 1.6 JSON BOM against the schema cyclonedx-python-lib
ships (strict: no properties the schema does not define), and check every
purl is in the reference purl implementation's canonical form.

usage: validate_cyclonedx.py FILE.cdx.json     exit 0 valid, 1 invalid
"""

import json
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL


def purls(bom):
    for c in bom.get("components", []):
        yield c.get("purl")
    yield bom.get("metadata", {}).get("component", {}).get("purl")


def main(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
    failed = False
    for e in errors or []:
        print(f"{path}: schema: {e}")
        failed = True
    for p in purls(json.loads(text)):
        if p is None:
            continue
        canonical = PackageURL.from_string(p).to_string()
        if canonical != p:
            print(f"{path}: purl {p} is not canonical (expected {canonical})")
            failed = True
    if failed:
        return 1
    print(f"{path}: valid CycloneDX 1.6")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
