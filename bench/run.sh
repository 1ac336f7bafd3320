#!/usr/bin/env bash
# Times stele against buildah and GNU gzip on the same content, on this
# machine, in one run, and prints medians and ratios (README "Speed").
#
#   bench/run.sh [RUNS]          (default 5 runs of each measurement)
#
# Needs: cargo, buildah (vfs storage; run as root, or with user namespaces
# set up for rootless buildah), GNU tar and gzip, jq, /usr/bin/time (the
# Debian package `time`), and the network once, to fetch the packages of
# recipes/bench.toml from the machine's apt mirror. BENCH_DIR (default a
# new folder under /tmp) holds everything it writes; BENCH_BIG_MB (default
# 1024) sizes the generated one-layer image; BENCH_ONLY (default all) is a
# comma-separated subset of the parts: stele, others (buildah and gzip),
# big, base, remote, push. The builds use the lock's encoding profile
# (recipes/bench.lock: the newest, block-parallel one). The push and pull
# part also needs docker-registry (distribution), skopeo, curl and python3
# (a free port); it runs a registry of its own on 127.0.0.1 with a temp
# config.
#
# What is measured (wall clock; CPU time, user + sys, and peak RSS from
# /usr/bin/time -v: on a shared machine CPU time is the steadier figure):
#   stele first   only the .debs in the cache: unpack, compress, write
#   stele cold    packages cached (downloaded and unpacked), layer cache empty
#   stele warm    nothing changed since the last build
#   stele edit    one file of the recipe's [[files]] changed
#   stele zstd    cold, with compression = "zstd" (runs alternate with the
#                 cold gzip ones); both also replacing the last run's output
#                 and with --jobs 1
#   buildah       `buildah bud --timestamp 0` of a Dockerfile that COPYs the
#                 same files (the unpacked image stele built), vfs storage,
#                 empty storage each run; and then `buildah push` to an OCI
#                 layout, which is when it compresses
#   gzip -6       `tar -cf - . | gzip -6` of the same files: one GNU gzip
#   big           a generated recipe with BENCH_BIG_MB of [[files]], one
#                 layer, gzip, cold, with --jobs 1 and --jobs 2: time and
#                 peak RSS
#   base warm     a recipe on a base layout of BENCH_BASE_MB (default 100) MB
#                 of random files, rebuilt with nothing changed: the base's
#                 layers come from the view cache, none is decompressed
#   push, pull    the bench image (built once with --attest none, so both
#                 tools copy the same blobs) from its OCI layout to a new
#                 repository of the local registry each run, by `stele push`
#                 (default jobs, and -j 1) and `skopeo copy oci:… docker://…`;
#                 and back into an empty cache and a new layout, by
#                 `stele pull` and `skopeo copy docker://… oci:…`
#   remote cache  two CI runners sharing a docker-registry on 127.0.0.1:
#                 runner A builds with --cache-to (which pushes the locked
#                 .debs); runner B, with an empty cache folder and no apt
#                 configuration at all, builds with --cache-from (timed):
#                 its .debs come from the registry, checked against the
#                 lock, and it unpacks and compresses itself; then again
#                 warm from its own cache (timed). Beside it, in the same
#                 run, "first" (the .debs already in the cache: unpack and
#                 compress), and "transfer", one curl fetching every blob
#                 of the cache repository over one connection: the bytes B
#                 fetched

set -euo pipefail

RUNS=${1:-5}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-$(mktemp -d /tmp/stele-bench.XXXXXX)}
BIG_MB=${BENCH_BIG_MB:-1024}
ONLY=${BENCH_ONLY:-all}
# part NAME: whether this run measures part NAME.
part() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }
# BENCH_STELE: an executable to measure instead of this checkout's
# release build (which is then not built), e.g. an older build to compare.
STELE=${BENCH_STELE:-$REPO/target/release/stele}
mkdir -p "$WORK"

for tool in buildah tar gzip jq /usr/bin/time cargo docker-registry curl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

if [ -z "${BENCH_STELE:-}" ]; then
    echo "bench: building stele (release)" >&2
    (cd "$REPO" && cargo build --release --quiet)
fi

SRC=$WORK/src
rm -rf "$SRC" "$WORK/times"
mkdir -p "$SRC" "$WORK/times"
cp -r "$REPO/recipes/bench.toml" "$REPO/recipes/bench.lock" "$REPO/recipes/bench-app" "$SRC/"
sed 's/^epoch = \(.*\)$/epoch = \1\ncompression = "zstd"/' "$SRC/bench.toml" >"$SRC/bench-zstd.toml"
cp "$SRC/bench.lock" "$SRC/bench-zstd.lock"

# timed NAME CMD...: runs CMD, appends "seconds peak_rss_kb cpu_seconds"
# to times/NAME (cpu: user + sys of CMD and its children).
timed() {
    local name=$1
    shift
    local t0=$EPOCHREALTIME
    if ! /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then
        echo "bench: $name failed: $*" >&2
        cat "$WORK/last.err" >&2
        exit 1
    fi
    local t1=$EPOCHREALTIME
    local rss cpu
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
    cpu=$(awk -F': ' '/User time|System time/ { t += $2 } END { print t }' "$WORK/time.txt")
    awk -v a="$t0" -v b="$t1" -v r="$rss" -v c="$cpu" 'BEGIN { printf "%.4f %d %.2f\n", b - a, r, c }' >>"$WORK/times/$name"
}

# A part not measured in this run shows as "-".
median() {
    [ -s "$WORK/times/$1" ] || { echo -; return; }
    cut -d' ' -f1 "$WORK/times/$1" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
cpu_median() {
    [ -s "$WORK/times/$1" ] || { echo -; return; }
    cut -d' ' -f3 "$WORK/times/$1" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
peak_rss_mb() {
    [ -s "$WORK/times/$1" ] || { echo -; return; }
    cut -d' ' -f2 "$WORK/times/$1" | sort -g | tail -1 | awk '{ printf "%.0f", $1 / 1024 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.2f", a / b }'; }

# stele_build RECIPE CACHE [FLAGS...]: the build every stele run makes,
# into the same output folder each time, as a CI job would.
stele_build() {
    local recipe=$1 cache=$2
    shift 2
    "$STELE" build "$recipe" -o "$WORK/out/stele" --cache-dir "$cache" "$@"
}
S=("$STELE" build -o "$WORK/out/stele" --cache-dir "$WORK/cache")

# The package cache in two states, copied in before each run (untimed):
# the .debs only, and the .debs unpacked with no layer cache.
echo "bench: fetching packages" >&2
rm -rf "$WORK/cache-debs" "$WORK/cache-unpacked" "$WORK/cache"
"$STELE" vendor "$SRC/bench.toml" "$WORK/vendor" --cache-dir "$WORK/cache-debs" >/dev/null 2>&1
cp -a "$WORK/cache-debs" "$WORK/cache-unpacked"
stele_build "$SRC/bench.toml" "$WORK/cache-unpacked" --no-layer-cache >/dev/null 2>&1
# The copy is synced so its writeback is not charged to the timed build.
fresh_cache() { rm -rf "$WORK/cache" && cp -a "$WORK/cache-$1" "$WORK/cache" && sync; }
# The cold runs build in cache-unpacked itself, as a runner that keeps its
# cache folder does: a copy would give every pack a new inode, and stele
# hashes again a pack whose file is not the one it last found whole
# (its stamp). After each run, what it added (layers, records) goes, but
# not `builders/`: the memo of the executable's own digest (`cache::memo`)
# is about the binary, not the cache's state, and removing it made every
# cold run hash the executable whenever the binary's file had changed
# since the list was taken (a rebuild, another checkout's binary).
(cd "$WORK/cache-unpacked" && find . ! -type d | sort) >"$WORK/cache-unpacked.list"
reset_unpacked() {
    (cd "$WORK/cache-unpacked" && find . ! -type d | sort | comm -13 "$WORK/cache-unpacked.list" - |
        grep -v '^\./builders/' | xargs -r rm -f)
    sync
}

# A docker-registry of the bench's own on a free 127.0.0.1 port, storing
# under $1; sets reg_host (HOST:PORT) and reg_pid, and stops it on exit.
start_registry() {
    local dir=$1 port
    rm -rf "$dir" && mkdir -p "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$dir/data" "$port" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    reg_pid=$!
    trap 'kill "$reg_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
    reg_host=127.0.0.1:$port
}

# The two-runner remote-cache case: a registry on a free 127.0.0.1 port.
remote_cache_case() {
    rm -rf "$WORK/cache-a"
    start_registry "$WORK/registry"
    local remote=$reg_host/bench/cache
    echo "bench: remote cache, runner A pushes to $remote" >&2
    cp -a "$WORK/cache-debs" "$WORK/cache-a"
    "$STELE" build "$SRC/bench.toml" -o "$WORK/out/runner-a" --cache-dir "$WORK/cache-a" \
        --cache-to "$remote" --json >"$WORK/runner-a.json" 2>"$WORK/runner-a.err"
    jq -e '.remote_cache.warnings == []' "$WORK/runner-a.json" >/dev/null || { cat "$WORK/runner-a.err" >&2; exit 1; }
    # Runner B has no apt configuration: a .deb it had to fetch from a
    # mirror would fail it.
    mkdir -p "$WORK/no-apt"
    echo "bench: remote cache, runner B, $RUNS runs" >&2
    for _ in $(seq "$RUNS"); do
        rm -rf "$WORK/cache-b" && sync
        timed remote-b env STELE_APT_ROOT="$WORK/no-apt" "$STELE" build "$SRC/bench.toml" \
            -o "$WORK/out/runner-b" --cache-dir "$WORK/cache-b" --cache-from "$remote" --json
        cp "$WORK/last.out" "$WORK/runner-b.json"
        timed remote-b-warm env STELE_APT_ROOT="$WORK/no-apt" "$STELE" build "$SRC/bench.toml" \
            -o "$WORK/out/runner-b" --cache-dir "$WORK/cache-b" --json
        # The same work with the .debs already on disk.
        rm -rf "$WORK/cache-c" && cp -a "$WORK/cache-debs" "$WORK/cache-c" && sync
        timed remote-first "$STELE" build "$SRC/bench.toml" -o "$WORK/out/runner-c" --cache-dir "$WORK/cache-c"
    done
    jq -e '.remote_cache.deb_misses == 0 and .remote_cache.warnings == []' \
        "$WORK/runner-b.json" >/dev/null || { cat "$WORK/runner-b.json" "$WORK/last.err" >&2; exit 1; }
    [ "$(jq -r .digest "$WORK/runner-a.json")" = "$(jq -r .digest "$WORK/runner-b.json")" ] ||
        { echo "bench: runner B built another digest" >&2; exit 1; }
    # Every blob of the cache repository, fetched by one curl over one
    # connection: what B's bytes cost on this registry without stele.
    local urls=() tag digest base=http://$reg_host/v2/bench/cache
    for tag in $(curl -s "$base/tags/list" | jq -r '.tags[]'); do
        for digest in $(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$base/manifests/$tag" |
            jq -r '.layers[].digest'); do
            urls+=(-o /dev/null "$base/blobs/$digest")
        done
    done
    for _ in $(seq "$RUNS"); do
        timed remote-transfer curl -sf "${urls[@]}"
    done
    remote_bytes=$(jq '.remote_cache.bytes_downloaded' "$WORK/runner-b.json")
    remote_entries=$(jq '.remote_cache.deb_hits' "$WORK/runner-b.json")
    kill "$reg_pid" 2>/dev/null || true
    trap - EXIT
}

remote_cache_report() {
    local b warm transfer first
    b=$(median remote-b)
    warm=$(median remote-b-warm)
    transfer=$(median remote-transfer)
    first=$(median remote-first)
    printf '  %-34s %8s %6s\n' "remote cache: runner B, empty cache" "$b" "$(peak_rss_mb remote-b)"
    printf '  %-34s %8s %6s\n' "remote cache: runner B again, warm" "$warm" "$(peak_rss_mb remote-b-warm)"
    printf '  %-34s %8s %6s\n' "the same build, .debs on disk" "$first" "$(peak_rss_mb remote-first)"
    printf '  %-34s %8s %6s\n' "curl of the same blobs ($(awk -v b="$remote_bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }'))" "$transfer" "-"
    echo "  runner B fetched $remote_entries .debs ($remote_bytes bytes) from the remote cache, each checked against the lock, and no layer"
    echo "  runner B / (.debs on disk + transfer)  $(awk -v b="$b" -v f="$first" -v t="$transfer" 'BEGIN { printf "%.2f", b / (f + t) }')   (target <= 1)"
}

if part stele; then
echo "bench: stele, $RUNS runs each" >&2
for _ in $(seq "$RUNS"); do
    fresh_cache debs
    timed stele-first "${S[@]}" "$SRC/bench.toml"
done
U=("$STELE" build -o "$WORK/out/stele" --cache-dir "$WORK/cache-unpacked")
# Cold gzip and cold zstd alternate, so the ratio of their medians is
# taken under the same conditions (a shared machine's load moves both).
# A cold build writes a new output folder, as a runner with a fresh
# workspace does; the same builds replacing the previous run's output
# are timed too ("replacing"): removing that output's blobs, which the
# reset left in no other folder, is then part of the build.
C=("$STELE" build -o "$WORK/out/cold" --cache-dir "$WORK/cache-unpacked")
for _ in $(seq "$RUNS"); do
    for codec in gzip zstd; do
        recipe=$SRC/bench-$codec.toml name=stele-zstd
        [ "$codec" = gzip ] && recipe=$SRC/bench.toml name=stele-cold
        rm -rf "$WORK/out/cold" && sync
        timed "$name" "${C[@]}" "$recipe"
        reset_unpacked
        timed "$name-replacing" "${U[@]}" "$recipe"
        reset_unpacked
        # On one core: every part of the build one after the other, as
        # CPU time counts it.
        rm -rf "$WORK/out/cold" && sync
        timed "$name-j1" "${C[@]}" --jobs 1 "$recipe"
        reset_unpacked
    done
done
"${U[@]}" "$SRC/bench.toml" >/dev/null 2>&1
for _ in $(seq "$RUNS"); do
    timed stele-warm "${U[@]}" "$SRC/bench.toml"
done
grep -q "misses 0$" "$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
for i in $(seq "$RUNS"); do
    echo "# edit $i $EPOCHREALTIME" >>"$SRC/bench-app/main.py"
    timed stele-edit "${U[@]}" "$SRC/bench.toml"
done
grep -q "misses 1$" "$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
reset_unpacked
# Where a cold zstd build's CPU goes (perf, when it is installed and
# BENCH_PROFILE=1): compression against the work either codec does.
if [ "${BENCH_PROFILE:-0}" = 1 ] && command -v perf >/dev/null; then
    for codec in zstd gzip; do
        recipe=$SRC/bench-$codec.toml
        [ "$codec" = gzip ] && recipe=$SRC/bench.toml
        rm -rf "$WORK/out/cold" && sync
        perf record -q --no-buildid-cache --call-graph dwarf,16384 -F 2000 -o "$WORK/perf-$codec.data" \
            "${C[@]}" "$recipe" >/dev/null 2>&1
        reset_unpacked
        perf script -i "$WORK/perf-$codec.data" 2>/dev/null |
            python3 "$REPO/bench/breakdown.py" >"$WORK/breakdown-$codec.txt"
    done
fi
fi

# The same files for the others: the image stele built, unpacked.
CTX=$WORK/ctx
rm -rf "$CTX" && mkdir -p "$CTX/rootfs"
[ -d "$WORK/cache" ] || fresh_cache unpacked
stele_build "$SRC/bench.toml" "$WORK/cache" --no-layer-cache >/dev/null 2>&1
manifest=$(jq -r '.manifests[0].digest' "$WORK/out/stele/index.json")
for layer in $(jq -r '.layers[].digest' "$WORK/out/stele/blobs/sha256/${manifest#sha256:}"); do
    tar -xzf "$WORK/out/stele/blobs/sha256/${layer#sha256:}" -C "$CTX/rootfs"
done
tar_mb=$(tar -C "$CTX/rootfs" -cf - . | wc -c | awk '{ printf "%.1f", $1 / 1e6 }')
image_mb=$(jq '[.layers[].size] | add' "$WORK/out/stele/blobs/sha256/${manifest#sha256:}" | awk '{ printf "%.1f", $1 / 1e6 }')
printf 'FROM scratch\nCOPY rootfs/ /\n' >"$CTX/Dockerfile"

if part others; then
echo "bench: buildah and gzip, $RUNS runs each" >&2
BUILDAH=(buildah --storage-driver vfs --root "$WORK/buildah/root" --runroot "$WORK/buildah/run")
for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/buildah" "$WORK/out/buildah" && sync
    timed buildah-bud "${BUILDAH[@]}" bud --isolation chroot --timestamp 0 -f "$CTX/Dockerfile" -t bench "$CTX"
    timed buildah-push "${BUILDAH[@]}" push bench "oci:$WORK/out/buildah:latest"
done
rm -rf "$WORK/buildah"
for _ in $(seq "$RUNS"); do
    timed gzip bash -c 'tar -C "$1" -cf - . | gzip -6 >/dev/null' _ "$CTX/rootfs"
done
fi

big_content=-
if part big; then
echo "bench: a generated one-layer image of $BIG_MB MB, --jobs 1 and 2 (one run each)" >&2
BIG=$WORK/big
rm -rf "$BIG" && mkdir -p "$BIG/data"
# `yes` and `base64` end on SIGPIPE when `head` has enough.
set +o pipefail
for i in $(seq 0 $((BIG_MB / 16 - 1))); do
    {
        yes "file $i of the generated image: text that compresses well, line after line" | head -c $((8 << 20))
        head -c $((6 << 20)) /dev/urandom | base64 -w 76 | head -c $((8 << 20))
    } >"$BIG/data/part-$i.bin"
done
set -o pipefail
printf '[image]\nname = "big"\n\n[[files]]\nsrc = "data/"\ndest = "/data"\n' >"$BIG/big.toml"
# Cold: the layer cache empty, the files in the page cache (read once).
cat "$BIG"/data/* >/dev/null
for jobs in 1 2; do
    rm -rf "$WORK/big-cache" "$WORK/out/big" && sync
    timed "big-j$jobs" "$STELE" build "$BIG/big.toml" -o "$WORK/out/big" --cache-dir "$WORK/big-cache" --jobs "$jobs"
    big_digest[$jobs]=$(tail -1 "$WORK/last.out")
done
[ "${big_digest[1]}" = "${big_digest[2]}" ] || { echo "bench: --jobs 1 and 2 built different images" >&2; exit 1; }
big_content=$(du -sm "$BIG/data" | cut -f1)
fi

# A warm rebuild on a base image: a base layout of BENCH_BASE_MB MB of
# random (incompressible) files, built by stele, and a recipe on it whose
# rebuild must take the base's layers from the view cache, reading none.
BASE_MB=${BENCH_BASE_MB:-100}
if part base; then
echo "bench: a warm rebuild on a $BASE_MB MB base image, $RUNS runs" >&2
BASE=$WORK/base
rm -rf "$BASE" "$WORK/base-cache" && mkdir -p "$BASE/data"
for i in $(seq 1 $((BASE_MB / 4))); do head -c $((4 << 20)) /dev/urandom >"$BASE/data/part-$i.bin"; done
printf '[image]\nname = "base"\nepoch = 1700000000\n\n[[files]]\nsrc = "data/"\ndest = "/data"\n\n[[accounts.users]]\nname = "app"\nuid = 1000\n' >"$BASE/base.toml"
base_digest=$("$STELE" build "$BASE/base.toml" -o "$BASE/layout" --cache-dir "$WORK/base-cache" 2>/dev/null | tail -1)
printf '[image]\nname = "on-base"\nepoch = 1700000000\n\n[base]\nlayout = "layout@%s"\n\n[[paths]]\npath = "/etc/motd"\nkind = "file"\ncontent = "hello\\n"\n\n[config]\nuser = "app"\n' "$base_digest" >"$BASE/on-base.toml"
stele_build "$BASE/on-base.toml" "$WORK/base-cache" >/dev/null 2>&1
for _ in $(seq "$RUNS"); do
    timed stele-base-warm "$STELE" build "$BASE/on-base.toml" -o "$WORK/out/on-base" --cache-dir "$WORK/base-cache"
done
grep -q "base layers: 1 known from the cache, 0 read" "$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
fi

if part remote; then
remote_cache_case
fi

if part push; then
echo "bench: push and pull against a local docker-registry, $RUNS runs each" >&2
rm -rf "$WORK/transfer" && mkdir -p "$WORK/transfer"
IMG=$WORK/transfer/image
# Its own copy of the cache: the layers it writes must not warm the cold
# runs. The push uses the cache the build used, as a CI job pushing what
# it just built does.
cp -a "$WORK/cache-unpacked" "$WORK/transfer/cache"
"$STELE" build "$SRC/bench.toml" -o "$IMG" --cache-dir "$WORK/transfer/cache" --attest none >/dev/null 2>&1
image_digest=$(jq -r '.manifests[0].digest' "$IMG/index.json")
image_manifest=$IMG/blobs/sha256/${image_digest#sha256:}
# Every push goes to a registry of its own, new for each run: skopeo
# remembers where it pushed a blob before (its blob info cache) and
# mounts it from there instead of sending it, which a fresh registry
# (another port) never offers. push_to NAME PREFIX CMD...: CMD gets
# PREFIX HOST/bench:v1 as its last word.
push_to() {
    local name=$1 prefix=$2
    shift 2
    start_registry "$WORK/transfer/registry-$name"
    timed "$name" "$@" "$prefix$reg_host/bench:v1"
    kill "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
}
for i in $(seq "$RUNS"); do
    start_registry "$WORK/transfer/registry-pull"
    pull_host=$reg_host
    pull_pid=$reg_pid
    "$STELE" -q push --cache-dir "$WORK/transfer/cache" "$IMG" "$pull_host/bench:v1" >/dev/null
    timed pull-stele "$STELE" -q pull "$pull_host/bench:v1" -o "$WORK/transfer/pull-stele-$i" \
        --cache-dir "$WORK/transfer/pull-cache-$i"
    timed pull-skopeo skopeo copy -q --src-tls-verify=false "docker://$pull_host/bench:v1" \
        "oci:$WORK/transfer/pull-skopeo-$i:v1"
    [ "$(jq -r '.manifests[0].digest' "$WORK/transfer/pull-stele-$i/index.json")" = "$image_digest" ] || {
        echo "bench: stele pull wrote another image" >&2
        exit 1
    }
    for _ in 1; do
        timed repush-stele "$STELE" push --json --cache-dir "$WORK/transfer/cache" "$IMG" "$pull_host/bench:v1"
        [ "$(jq '.report.bytes_uploaded' "$WORK/last.out")" = 0 ] || { cat "$WORK/last.out" >&2; exit 1; }
    done
    kill "$pull_pid" 2>/dev/null || true
    wait "$pull_pid" 2>/dev/null || true
    push_to push-stele "" "$STELE" -q push --cache-dir "$WORK/transfer/cache" "$IMG"
    push_to push-stele-j1 "" "$STELE" -q push -j 1 --cache-dir "$WORK/transfer/cache" "$IMG"
    push_to push-stele-unchecked "" "$STELE" -q push --cache-dir "$WORK/transfer/push-cache-$i" "$IMG"
    push_to push-skopeo docker:// skopeo copy -q --dest-tls-verify=false "oci:$IMG"
    rm -rf "$WORK/transfer/pull-stele-$i" "$WORK/transfer/pull-cache-$i" "$WORK/transfer/pull-skopeo-$i" \
        "$WORK/transfer/push-cache-$i"
done
trap - EXIT
# What the timed pushes did: the layers the build wrote, not read again.
start_registry "$WORK/transfer/registry-check"
"$STELE" push --cache-dir "$WORK/transfer/cache" "$IMG" "$reg_host/bench:v1" >/dev/null 2>"$WORK/push-check.err"
grep -q "layers: $(jq '.layers | length' "$image_manifest") checked before, 0 hashed, 0 uncompressed" "$WORK/push-check.err" || {
    echo "bench: stele push read layers the build had written" >&2
    exit 1
}
kill "$reg_pid" 2>/dev/null || true
trap - EXIT
fi

cold=$(median stele-cold)
first=$(median stele-first)
warm=$(median stele-warm)
edit=$(median stele-edit)
zstd=$(median stele-zstd)
bud=$(median buildah-bud)
push=$(median buildah-push)
gz=$(median gzip)
bud_push=$(awk -v a="$bud" -v b="$push" 'BEGIN { if (a == "-" || b == "-") print "-"; else print a + b }')

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
    echo "machine: $(nproc) cores (nproc), $cpu, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), $(df -T "$WORK" | awk 'NR == 2 { print $2 }') at $WORK"
    echo "$("$STELE" version | head -1), $("$STELE" version | sed -n 's/^encoding profile \([^ ]*\) (default).*/encoding \1/p'), $(buildah --version), $(gzip --version | head -1)"
    echo "content: recipes/bench.toml, $(grep -c '^name = ' "$SRC/bench.lock") packages, tar $tar_mb MB, stele image (gzip) $image_mb MB"
    echo "median of $RUNS runs (seconds), peak RSS (MB), median CPU time (user + sys, seconds):"
    printf '  %-34s %8s %6s %8s\n' "stele first (unpack + cold)" "$first" "$(peak_rss_mb stele-first)" "$(cpu_median stele-first)"
    printf '  %-34s %8s %6s %8s\n' "stele cold" "$cold" "$(peak_rss_mb stele-cold)" "$(cpu_median stele-cold)"
    printf '  %-34s %8s %6s %8s\n' "stele warm" "$warm" "$(peak_rss_mb stele-warm)" "$(cpu_median stele-warm)"
    printf '  %-34s %8s %6s %8s\n' "stele one-file change" "$edit" "$(peak_rss_mb stele-edit)" "$(cpu_median stele-edit)"
    printf '  %-34s %8s %6s %8s\n' "stele cold, zstd" "$zstd" "$(peak_rss_mb stele-zstd)" "$(cpu_median stele-zstd)"
    printf '  %-34s %8s %6s %8s\n' "stele cold, replacing the output" "$(median stele-cold-replacing)" "$(peak_rss_mb stele-cold-replacing)" "$(cpu_median stele-cold-replacing)"
    printf '  %-34s %8s %6s %8s\n' "stele cold, zstd, replacing" "$(median stele-zstd-replacing)" "$(peak_rss_mb stele-zstd-replacing)" "$(cpu_median stele-zstd-replacing)"
    printf '  %-34s %8s %6s %8s\n' "stele cold, --jobs 1" "$(median stele-cold-j1)" "$(peak_rss_mb stele-cold-j1)" "$(cpu_median stele-cold-j1)"
    printf '  %-34s %8s %6s %8s\n' "stele cold, zstd, --jobs 1" "$(median stele-zstd-j1)" "$(peak_rss_mb stele-zstd-j1)" "$(cpu_median stele-zstd-j1)"
    printf '  %-34s %8s %6s %8s\n' "buildah bud --timestamp 0" "$bud" "$(peak_rss_mb buildah-bud)" "$(cpu_median buildah-bud)"
    printf '  %-34s %8s %6s %8s\n' "buildah push oci: (compresses)" "$push" "$(peak_rss_mb buildah-push)" "$(cpu_median buildah-push)"
    printf '  %-34s %8s %6s %8s\n' "tar | gzip -6" "$gz" "$(peak_rss_mb gzip)" "$(cpu_median gzip)"
    printf '  %-34s %8s %6s\n' "stele, ${big_content} MB layer, --jobs 1" "$(median big-j1)" "$(peak_rss_mb big-j1)"
    printf '  %-34s %8s %6s\n' "stele, ${big_content} MB layer, --jobs 2" "$(median big-j2)" "$(peak_rss_mb big-j2)"
    printf '  %-34s %8s %6s\n' "stele warm on a ${BASE_MB} MB base" "$(median stele-base-warm)" "$(peak_rss_mb stele-base-warm)"
    if part remote; then remote_cache_report; fi
    echo "ratios:"
    echo "  stele cold / buildah bud          $(ratio "$cold" "$bud")   (target <= 0.25)"
    echo "  stele cold / buildah bud + push   $(ratio "$cold" "$bud_push")"
    echo "  stele cold / tar | gzip -6        $(ratio "$cold" "$gz")   (target <= 0.4)"
    echo "  stele first / tar | gzip -6       $(ratio "$first" "$gz")"
    echo "  stele cold gzip / cold zstd       $(ratio "$cold" "$zstd")   (target >= 3); by CPU time $(ratio "$(cpu_median stele-cold)" "$(cpu_median stele-zstd)")"
    echo "    replacing the last output       $(ratio "$(median stele-cold-replacing)" "$(median stele-zstd-replacing)"); by CPU time $(ratio "$(cpu_median stele-cold-replacing)" "$(cpu_median stele-zstd-replacing)")"
    echo "    on one core (--jobs 1)          $(ratio "$(median stele-cold-j1)" "$(median stele-zstd-j1)"); by CPU time $(ratio "$(cpu_median stele-cold-j1)" "$(cpu_median stele-zstd-j1)")"
    echo "  stele warm                        ${warm} s   (target <= 0.2 s)"
    echo "  stele one-file change             ${edit} s   (target <= 0.5 s)"
    echo "  big layer --jobs 1 / --jobs 2     $(ratio "$(median big-j1)" "$(median big-j2)")   (target >= 1.7)"
    echo "  peak RSS, ${big_content} MB layer, --jobs 2  $(peak_rss_mb big-j2) MB   (target < 100 MB)"
    echo "  stele warm on a ${BASE_MB} MB base        $(median stele-base-warm) s   (target <= 0.1 s)"
    if part push; then
    echo "$(skopeo --version), $(docker-registry --version 2>&1 | head -1)"
    echo "push and pull of the bench image ($(jq '.layers | length' "$image_manifest") layers, $(jq '[.config.size, .layers[].size] | add' "$image_manifest" | awk '{ printf "%.1f", $1 / 1e6 }') MB of blobs), docker-registry on 127.0.0.1, median of $RUNS runs (seconds), peak RSS (MB):"
    printf '  %-34s %8s %6s\n' "stele push (4 jobs, the default)" "$(median push-stele)" "$(peak_rss_mb push-stele)"
    printf '  %-34s %8s %6s\n' "stele push -j 1" "$(median push-stele-j1)" "$(peak_rss_mb push-stele-j1)"
    printf '  %-34s %8s %6s\n' "stele push, layers not checked before" "$(median push-stele-unchecked)" "$(peak_rss_mb push-stele-unchecked)"
    printf '  %-34s %8s %6s\n' "skopeo copy oci: docker://" "$(median push-skopeo)" "$(peak_rss_mb push-skopeo)"
    printf '  %-34s %8s %6s\n' "stele push, every blob there" "$(median repush-stele)" "$(peak_rss_mb repush-stele)"
    printf '  %-34s %8s %6s\n' "stele pull (empty cache)" "$(median pull-stele)" "$(peak_rss_mb pull-stele)"
    printf '  %-34s %8s %6s\n' "skopeo copy docker:// oci:" "$(median pull-skopeo)" "$(peak_rss_mb pull-skopeo)"
    echo "  stele push / skopeo copy          $(ratio "$(median push-stele)" "$(median push-skopeo)")   (target <= 0.7)"
    echo "  stele push -j 1 / stele push      $(ratio "$(median push-stele-j1)" "$(median push-stele)")"
    echo "  stele push, not checked before / skopeo copy  $(ratio "$(median push-stele-unchecked)" "$(median push-skopeo)")"
    echo "  stele pull / skopeo copy          $(ratio "$(median pull-stele)" "$(median pull-skopeo)")"
    fi
    for codec in zstd gzip; do
        if [ -s "$WORK/breakdown-$codec.txt" ]; then
            echo "CPU of a cold $codec build, by what it does (perf, bench/breakdown.py):"
            cat "$WORK/breakdown-$codec.txt"
        fi
    done
} | tee "$WORK/results.txt"
echo "bench: raw times in $WORK/times, summary in $WORK/results.txt" >&2
