"""Validate an in-toto statement carrying SLSA Provenance v1 against the
JSON schema beside this file (written from the SLSA v1.0 and in-toto v1
specifications), with the jsonschema package's Draft 2020-12 validator.

usage: validate_slsa.py STATEMENT.json...
prints one line per file saying `valid` or why not; exit 0 when every file
is valid, 1 when one is not
"""

import json
import os
import sys

from jsonschema import Draft202012Validator


def check(validator, path):
    with open(path, encoding="utf-8") as f:
        statement = json.load(f)
    errors = sorted(validator.iter_errors(statement), key=lambda e: list(e.path))
    for e in errors:
        where = "/".join(str(p) for p in e.path)
        print(f"{path}: {where}: {e.message}")
    if errors:
        return 1
    print(f"{path}: valid SLSA Provenance v1")
    return 0


def main(paths):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "slsa_provenance_v1.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    return max(check(validator, p) for p in paths)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
