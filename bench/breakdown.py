#!/usr/bin/env python3
"""Where a stele command's CPU goes, by the work it does, from a perf
profile with call stacks:

    perf record --call-graph dwarf,16384 -F 2000 -o perf.data stele build ...
    perf script -i perf.data | bench/breakdown.py

Each sample is charged to the first category its stack matches, leaf
first (a SHA-256 sample under the tar writer is the DiffID, under the
blob writer the digest, under a pack read the per-file check), and the
shares are printed largest first. bench/run.sh prints the same table for
the cold zstd build when perf is installed (BENCH_PROFILE=1).
"""

import collections
import sys

# (category, predicate over the stack's symbols, leaf first).
def has(*names):
    return lambda frames: any(any(n in f for n in names) for f in frames)

def leaf(*names):
    return lambda frames: bool(frames) and any(n in frames[0] for n in names)

def is_sha(frames):
    # The leaf is often an inlined intrinsic; the hash is a few frames up.
    return any("digest_blocks" in f for f in frames[:8])


# Who a SHA-256 sample hashes for: the innermost of these frames decides
# (the DiffID's hasher runs inside the copy from a pack, for one).
SHA_CALLERS = [
    ("LayerSink", "the tar stream (DiffID)"),
    ("BlobWriter", "the blob (digest)"),
    ("copy_checked_from", "the blob (digest)"),
    ("copy_hashed_from", "the blob (digest)"),
    ("ContentReader", "each file checked as it is read from its pack"),
    ("PackCache::checked", "pack check when a package is taken from the cache"),
    ("executable_digest", "the executable (builder identity)"),
]


def sha_caller(frames):
    for f in frames:
        for key, name in SHA_CALLERS:
            if key in f:
                return name
    return "other"


def sha_under(name):
    return lambda frames: is_sha(frames) and sha_caller(frames) == name

RULES = [
    ("zstd compression", has("ZSTD_", "HUF_", "FSE_", "HIST_")),
    ("deflate compression", has("zlib_rs::deflate", "deflate_block", "crc32")),
    ("inflate / unxz (reading layers, .debs)", has("zlib_rs::inflate", "lzma_", "ZSTD_decompress")),
] + [("SHA-256: " + name, sha_under(name)) for name in dict.fromkeys(n for _, n in SHA_CALLERS)] + [
    ("SHA-256: other", is_sha),
    ("attestations (SBOM, provenance)", has("stele::attest::")),
    ("installing packages (dpkg passes)", has("stele::dpkg::install", "stele::image::package_layers")),
    ("loading package indexes", has("PackCache::load", "stele::dpkg::unpack")),
    ("tar writer", has("stele::layer::tar::")),
    ("kernel: writing files", has("copy_folio_from_iter", "ext4_", "iomap_", "generic_perform_write")),
    ("kernel: reading files", has("filemap_read", "_copy_to_iter")),
    ("kernel: fsync", has("fsync", "file_write_and_wait")),
    ("kernel: other", leaf("[k]")),
]


def samples(lines):
    frames = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
        elif line.startswith(("\t", " ")):
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                sym = parts[1]
                if "[kernel.kallsyms]" in sym:
                    sym = "[k] " + sym
                frames.append(sym)
        # the sample's header line starts in column 0
    if frames:
        yield frames


def main():
    counts = collections.Counter()
    total = 0
    for frames in samples(sys.stdin):
        total += 1
        for name, match in RULES:
            if match(frames):
                counts[name] += 1
                break
        else:
            counts["other"] += 1
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    for name, n in counts.most_common():
        print(f"  {100 * n / total:5.1f}%  {name}")
    print(f"  ({total} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
