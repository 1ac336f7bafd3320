#!/bin/sh
# Prints the digests the golden fixture (fixtures/golden) and the
# generated layer of many blocks build to with the current code, per
# encoding profile, for updating the constants in tests/it/golden.rs.
#
# A changed gzip or zstd layer digest with an unchanged diff_id means the
# compressed bytes changed (a compressor crate, level, chunk or block
# size): that needs a new profile in src/layer/profile.rs, the old ones
# kept byte for byte. A changed diff_id means the tar writer or the tree
# changed.
set -eu
cd "$(dirname "$0")/.."
out=$(cargo test --quiet --test it golden:: -- --nocapture 2>&1 || true)
lines=$(printf '%s\n' "$out" | grep '^golden ' || true)
if [ -z "$lines" ]; then
    printf '%s\n' "$out" >&2
    echo "update-golden: the golden test did not print its digests (see above)" >&2
    exit 1
fi
printf '%s\n' "$lines"
