//! Layer pipeline throughput: canonical tar -> DiffID hash -> the
//! profile's compressor -> digest hash -> blob file (fsynced), for each
//! encoding profile and compression.
//!
//!     cargo run --release --example layer_bench [-- SIZE_MB [RUNS [JOBS]]]
//!
//! JOBS (default 1) is the number of compression threads profile
//! stele-2026.2 gets, as `stele build --jobs`; 2026.1 always uses one.
//! The tree (default ~100 MB) is generated in memory from a fixed seed:
//! compressible text, incompressible random bytes, and many small files.
//! Throughput is uncompressed tar bytes per second, the median of RUNS
//! (default 5) runs, by wall clock and by this thread's CPU time (with one
//! job the pipeline is single-threaded, and CPU time stays meaningful on a
//! busy machine, where wall time also counts waiting for a core).

use std::time::{Duration, Instant};

use stele::fstree::{Content, FsTree, Node};
use stele::layer::{write_layer, BlockPool, Compression, Encoding, Profile};
use stele::store::BlobStore;

/// xorshift64*: a fixed, dependency-free generator so every run and every
/// machine benchmarks the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "layer",
            "digest",
            "image",
            "manifest",
            "config",
            "tar",
            "gzip",
            "zstd",
            "recipe",
            "epoch",
            "reproducible",
            "package",
            "debian",
            "index",
            "blob",
            "the",
            "a",
            "of",
            "and",
            "to",
            "build",
            "same",
            "bytes",
            "every",
            "time",
            "container",
            "runtime",
        ];
        let mut out = Vec::with_capacity(n + 32);
        let mut col = 0;
        while out.len() < n {
            let w = WORDS[(self.next() % WORDS.len() as u64) as usize];
            out.extend_from_slice(w.as_bytes());
            col += w.len() + 1;
            if col > 72 {
                out.push(b'\n');
                col = 0;
            } else {
                out.push(b' ');
            }
        }
        out.truncate(n);
        out
    }
}

const MB: usize = 1_000_000;

/// About `total` bytes of content: 40% text in 1 MB files, 40% random in
/// 4 MB files, 20% small files of 200 B–4 KB spread over 100 folders.
fn generate(total: usize) -> (FsTree, usize, usize) {
    let mut rng = Rng(0x5eed_57e1_e000_0001);
    let mut tree = FsTree::new();
    let mut content = 0;
    let mut files = 0;
    let mut add = |tree: &mut FsTree, key: String, data: Vec<u8>, mode: u32| {
        content += data.len();
        files += 1;
        tree.insert(key, Node::file(Content::bytes(data), mode, 0, 0, 0))
            .expect("generated paths are unique");
    };
    for i in 0..(total * 4 / 10).div_ceil(MB) {
        let data = rng.text(MB);
        add(
            &mut tree,
            format!("usr/share/text/file-{i:03}.txt"),
            data,
            0o644,
        );
    }
    for i in 0..(total * 4 / 10).div_ceil(4 * MB) {
        let data = rng.bytes(4 * MB);
        add(
            &mut tree,
            format!("usr/lib/blob/random-{i:03}.bin"),
            data,
            0o755,
        );
    }
    let small_budget = total / 5;
    let mut used = 0;
    let mut i = 0;
    while used < small_budget {
        let size = 200 + (rng.next() % 3900) as usize;
        let data = if i % 3 == 0 {
            rng.bytes(size)
        } else {
            rng.text(size)
        };
        used += size;
        add(
            &mut tree,
            format!("etc/many/d{:02}/f{i:05}.conf", i % 100),
            data,
            0o644,
        );
        i += 1;
    }
    tree.complete_parents(&Node::dir(0o755, 0, 0, 0))
        .expect("generated tree is consistent");
    (tree, content, files)
}

/// CPU time this thread has used so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size_mb: usize = args.next().map_or(100, |a| a.parse().expect("SIZE_MB"));
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("RUNS"));
    let jobs: usize = args.next().map_or(1, |a| a.parse().expect("JOBS"));
    let pool = (jobs > 1).then(|| BlockPool::new(jobs));
    let (tree, content, files) = generate(size_mb * MB);
    let tar_size = {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::open(dir.path()).expect("store");
        let none = Encoding {
            profile: Profile::default(),
            compression: Compression::None,
        };
        write_layer(&tree, none, &store, None).expect("layer").size
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!("{jobs} job(s); {cpu}");
    println!(
        "tree: {files} files, {:.1} MB content, {:.1} MB tar; median of {runs} runs",
        content as f64 / MB as f64,
        tar_size as f64 / MB as f64
    );
    println!(
        "{:<13} {:<6} {:>8} {:>8} {:>8} {:>10} {:>9} {:>7}",
        "profile", "codec", "wall s", "MB/s", "cpu s", "cpu MB/s", "blob MB", "ratio"
    );
    let encodings = Profile::ALL.into_iter().flat_map(|profile| {
        [Compression::Gzip, Compression::Zstd]
            .into_iter()
            .map(move |compression| Encoding {
                profile,
                compression,
            })
    });
    let none = Encoding {
        profile: Profile::default(),
        compression: Compression::None,
    };
    for encoding in encodings.chain([none]) {
        let mut times = Vec::new();
        let mut cpu_times = Vec::new();
        let mut blob = None;
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = BlobStore::open(dir.path()).expect("store");
            let start = Instant::now();
            let cpu_start = thread_cpu_time();
            let layer = write_layer(&tree, encoding, &store, pool.as_ref()).expect("layer");
            cpu_times.push(thread_cpu_time() - cpu_start);
            times.push(start.elapsed());
            if let Some(prev) = &blob {
                assert_eq!(prev, &layer, "the same tree gave a different layer");
            }
            blob = Some(layer);
        }
        let blob = blob.expect("at least one run");
        let m = median(times);
        let c = median(cpu_times);
        let tar_mb = tar_size as f64 / MB as f64;
        println!(
            "{:<13} {:<6} {:>8.3} {:>8.1} {:>8.3} {:>10.1} {:>9.1} {:>7.3}",
            encoding.profile.id(),
            encoding.compression.name(),
            m.as_secs_f64(),
            tar_mb / m.as_secs_f64(),
            c.as_secs_f64(),
            tar_mb / c.as_secs_f64(),
            blob.size as f64 / MB as f64,
            blob.size as f64 / tar_size as f64
        );
    }
}
