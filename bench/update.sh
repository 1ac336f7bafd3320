#!/usr/bin/env bash
# What a node that holds an image must pull after a one-source security
# update, for each package layering, over the example recipes (README
# "Layers grouped by source"):
#
#   bench/update.sh [RECIPE...]     (default: python java debian-base)
#
# Each recipe is built twice from the machine's apt configuration
# (`mirror = "host"`) with its suite and `<suite>-security` as sources:
# once with the binaries of one source package (BENCH_UPDATE_SOURCE,
# default the `openssl` source: `libssl3` and `openssl`) pinned to the
# older version the machine's apt knows, once to the newer one. Nothing
# else differs. For each layering (`[apt] layers = "single"`,
# `"per-package"`, `[image] layers = { strategy = "source" }`) it prints
# the image's layers and size, and the bytes of the updated image's blobs
# (config and layers) the old image does not have: what `docker pull` or
# `podman pull` fetch on a node holding the old one.
#
# Needs: cargo, jq, apt-cache (the versions), the network once (the
# packages). BENCH_DIR (default a new folder under /tmp) holds everything.

set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-$(mktemp -d /tmp/stele-update.XXXXXX)}
STELE=${BENCH_STELE:-$REPO/target/release/stele}
BINARIES=${BENCH_UPDATE_BINARIES:-libssl3 openssl}
RECIPES=("$@")
[ ${#RECIPES[@]} -gt 0 ] || RECIPES=(python java debian-base)

for tool in jq apt-cache; do
    command -v "$tool" >/dev/null || { echo "update: $tool is required" >&2; exit 2; }
done
if [ -z "${BENCH_STELE:-}" ]; then
    echo "update: building stele (release)" >&2
    (cd "$REPO" && cargo build --release --quiet)
fi

# The two newest versions apt knows of the first binary: after, before.
first=${BINARIES%% *}
mapfile -t versions < <(apt-cache madison "$first" | awk -F' [|] ' '{ gsub(/ /, "", $2); print $2 }' | sort -Vru | head -2)
[ ${#versions[@]} -eq 2 ] || { echo "update: apt knows fewer than two versions of $first" >&2; exit 2; }
after=${versions[0]}
before=${versions[1]}
echo "update: $BINARIES $before -> $after" >&2

mkdir -p "$WORK"
CACHE=$WORK/cache

# The image manifest of the layout at $1 (the first platform's).
manifest_of() {
    local layout=$1 top mt
    top=$(jq -r '.manifests[0].digest' "$layout/index.json")
    mt=$(jq -r '.mediaType // empty' "$layout/blobs/sha256/${top#sha256:}")
    if [ "$mt" = application/vnd.oci.image.index.v1+json ]; then
        top=$(jq -r '.manifests[0].digest' "$layout/blobs/sha256/${top#sha256:}")
    fi
    echo "$layout/blobs/sha256/${top#sha256:}"
}

printf '%-12s %-12s %7s %9s %14s %7s\n' recipe layering layers "image MB" "pulled bytes" share
for name in "${RECIPES[@]}"; do
    for layering in single per-package source; do
        for side in before after; do
            version=$before
            [ "$side" = after ] && version=$after
            dir=$WORK/$name-$layering-$side
            rm -rf "$dir" && cp -r "$REPO/recipes" "$dir"
            recipe=$dir/$name.toml
            rm -f "$dir/$name.lock"
            pins=""
            for b in $BINARIES; do pins="$pins\"$b=$version\", "; done
            # Both suites as sources; the pins first in `packages`.
            sed -i -E \
                -e 's/\{ mirror = "host", suite = "([a-z]+)", components = \["main"\] \}\]/{ mirror = "host", suite = "\1", components = ["main"] }, { mirror = "host", suite = "\1-security", components = ["main"] }]/' \
                -e "0,/^packages = \\[/s//packages = [$pins/" "$recipe"
            case $layering in
                per-package) sed -i 's/^\[apt\]$/[apt]\nlayers = "per-package"/' "$recipe" ;;
                source) sed -i 's/^\[image\]$/[image]\nlayers = { strategy = "source" }/' "$recipe" ;;
            esac
            "$STELE" -q lock "$recipe" --cache-dir "$CACHE" >/dev/null
            "$STELE" -q build "$recipe" --attest none -o "$dir/out" --cache-dir "$CACHE" >/dev/null
        done
        old=$(manifest_of "$WORK/$name-$layering-before/out")
        new=$(manifest_of "$WORK/$name-$layering-after/out")
        pulled=$(jq -n --slurpfile o "$old" --slurpfile n "$new" '
            ([$o[0].config.digest] + [$o[0].layers[].digest]) as $have
            | [$n[0].config, $n[0].layers[]] | map(select(.digest as $d | $have | index($d) | not) | .size) | add // 0')
        size=$(jq '[.config.size, .layers[].size] | add' "$new")
        printf '%-12s %-12s %7s %9.1f %14s %6.1f%%\n' "$name" "$layering" "$(jq '.layers | length' "$new")" \
            "$(awk -v s="$size" 'BEGIN { print s / 1e6 }')" "$pulled" "$(awk -v p="$pulled" -v s="$size" 'BEGIN { print 100 * p / s }')"
    done
done
