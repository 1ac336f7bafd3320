#!/usr/bin/env bash
# Checking one large stele-2026.2 layer's DiffID on one thread and on two
# (README "Speed": a layer's independent blocks on all cores).
#
#   bench/check.sh [RUNS]        (default 3 runs of each measurement)
#
# Builds a generated one-layer image of BENCH_CHECK_MB (default 1024) MB
# twice, gzip and zstd, then times `stele verify -j 1` and `-j 2` of each
# layout: the blob hashes, then the DiffID check, whose uncompressing is
# what --jobs spreads over threads. Prints medians of wall time and of CPU
# time (user + sys, from /usr/bin/time), and the -j1 / -j2 ratios.
# BENCH_DIR (default a new folder under /tmp) holds what it writes;
# BENCH_STELE an executable to measure instead of this checkout's
# release build.

set -euo pipefail

RUNS=${1:-3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-$(mktemp -d /tmp/stele-check.XXXXXX)}
MB=${BENCH_CHECK_MB:-1024}
STELE=${BENCH_STELE:-$REPO/target/release/stele}
mkdir -p "$WORK/times"
rm -f "$WORK"/times/*

if [ -z "${BENCH_STELE:-}" ]; then
    echo "check: building stele (release)" >&2
    (cd "$REPO" && cargo build --release --quiet)
fi

DATA=$WORK/data
if [ "$(du -sm "$DATA" 2>/dev/null | cut -f1)" != "$MB" ]; then
    echo "check: generating $MB MB of files" >&2
    rm -rf "$DATA" && mkdir -p "$DATA"
    set +o pipefail
    for i in $(seq 0 $((MB / 16 - 1))); do
        {
            yes "file $i of the generated image: text that compresses well, line after line" | head -c $((8 << 20))
            head -c $((6 << 20)) /dev/urandom | base64 -w 76 | head -c $((8 << 20))
        } >"$DATA/part-$i.bin"
    done
    set -o pipefail
fi

# timed NAME CMD...: appends "wall cpu" (seconds) to times/NAME.
timed() {
    local name=$1
    shift
    if ! /usr/bin/time -f '%e %U %S' -o "$WORK/time.txt" "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then
        echo "check: $name failed: $*" >&2
        cat "$WORK/last.err" >&2
        exit 1
    fi
    awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$WORK/time.txt" >>"$WORK/times/$name"
}
median() { # median NAME COLUMN
    cut -d' ' -f"$2" "$WORK/times/$1" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

for codec in gzip zstd; do
    printf '[image]\nname = "check"\ncompression = "%s"\n\n[[files]]\nsrc = "data/"\ndest = "/data"\n' "$codec" >"$WORK/check-$codec.toml"
    rm -rf "$WORK/out-$codec" "$WORK/cache"
    echo "check: building the $codec image" >&2
    "$STELE" -q build "$WORK/check-$codec.toml" -o "$WORK/out-$codec" --cache-dir "$WORK/cache" --attest none >/dev/null
    rm -rf "$WORK/cache"
    cat "$WORK/out-$codec"/blobs/sha256/* >/dev/null
    for run in $(seq "$RUNS"); do
        for jobs in 1 2; do
            timed "$codec-j$jobs" "$STELE" verify -j "$jobs" "$WORK/out-$codec"
        done
    done
done

size() { du -m --apparent-size "$(ls -S "$WORK/out-$1"/blobs/sha256/* | head -1)" | cut -f1; }
echo
echo "Checking a layer of $MB MB of files (stele verify, median of $RUNS; seconds):"
printf '  %-26s %8s %8s %8s %8s %10s %10s\n' layer "wall -j1" "wall -j2" "cpu -j1" "cpu -j2" "wall j1/j2" "cpu j2/j1"
for codec in gzip zstd; do
    w1=$(median "$codec-j1" 1) w2=$(median "$codec-j2" 1) c1=$(median "$codec-j1" 2) c2=$(median "$codec-j2" 2)
    printf '  %-26s %8s %8s %8s %8s %10s %10s\n' "$codec ($(size "$codec") MB blob)" "$w1" "$w2" "$c1" "$c2" "$(ratio "$w1" "$w2")" "$(ratio "$c2" "$c1")"
done
