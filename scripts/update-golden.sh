#!/bin/sh
# Prints the digests the golden fixture (fixtures/golden) builds to
# with the current code, for updating the constants in tests/it/golden.rs.
#
# A changed gzip or zstd digest with an unchanged diff_id means the
# compressed bytes changed (a compressor crate, level or chunk size): bump
# PROFILE_ID in src/layer/profile.rs in the same commit. A changed diff_id
# means the tar writer or the tree changed.
set -eu
cd "$(dirname "$0")/.."
out=$(cargo test --quiet --test it golden::fixture_builds_to_the_golden_digests -- --nocapture 2>&1 || true)
lines=$(printf '%s\n' "$out" | grep '^golden ' || true)
if [ -z "$lines" ]; then
    printf '%s\n' "$out" >&2
    echo "update-golden: the golden test did not print its digests (see above)" >&2
    exit 1
fi
printf '%s\n' "$lines"
