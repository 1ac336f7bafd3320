//! Crash safety and concurrency: a build killed at any point leaves the
//! previous output or the new one at its path, never a mix and never
//! neither; what killed builds leave behind (temp folders beside outputs,
//! temp files in the cache) is removed by the next build, never a live
//! build's; two builds sharing a cache at once both succeed with the same
//! digest.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::tree::populate;
use crate::support::*;

/// A fixed-seed xorshift: the same kill points every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn start_build(recipe: &Path, out: &Path, cache: &Path, format: &str) -> Child {
    stele()
        .arg("build")
        .arg(recipe)
        .arg("-o")
        .arg(out)
        .arg("--format")
        .arg(format)
        .arg("--cache-dir")
        .arg(cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The digest `verify` finds at `target`, which must verify.
#[track_caller]
fn verified_digest(target: &str, candidates: &[String]) -> String {
    let r = run(stele().arg("verify").arg(target));
    r.expect_ok();
    candidates
        .iter()
        .find(|d| r.stdout.contains(d.as_str()))
        .unwrap_or_else(|| panic!("{target} is neither {candidates:?}:\n{}", r.stdout))
        .clone()
}

/// Entries named `prefix…` in `dir`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Every blob of the cache is the content its name says, and no temp
/// file is left in it.
#[track_caller]
fn check_cache(cache: &Path) {
    let blobs = cache.join("blobs/sha256");
    for e in fs::read_dir(&blobs).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            !name.starts_with(".tmp-"),
            "a stale temp file: {}",
            p.display()
        );
        assert_eq!(sha256_hex(&fs::read(&p).unwrap()), name, "{}", p.display());
    }
    for sub in ["layers", "unpacked"] {
        for e in walkdir::WalkDir::new(cache.join(sub)).into_iter().flatten() {
            let name = e.file_name().to_str().unwrap();
            assert!(!name.starts_with(".tmp-"), "{}", e.path().display());
        }
    }
}

fn kill_at_random_points(format: &str, seed: u64) {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let recipe = src.join("recipe.toml");
    let cache = tmp.path().join("cache");
    let outdir = tmp.path().join("outputs");
    let out = outdir.join(if format == "oci" {
        "image"
    } else {
        "image.tar"
    });
    let target = match format {
        "oci" => out.display().to_string(),
        f => format!("{f}:{}", out.display()),
    };
    // Two variants, so an old output and a new one differ.
    let variant = |i: u64| {
        fs::write(src.join("config.txt"), format!("variant {}\n", i % 2)).unwrap();
    };
    let mut digests = Vec::new();
    let mut took = Duration::ZERO;
    for i in 0..2 {
        variant(i);
        let start = Instant::now();
        let r = finish(start_build(&recipe, &out, &cache, format));
        took = took.max(start.elapsed());
        r.expect_ok();
        digests.push(r.last_line().to_string());
    }
    assert_ne!(digests[0], digests[1]);
    let span = took.as_micros() as u64 * 12 / 10 + 1;
    let mut rng = Rng(seed);
    for i in 0..20 {
        variant(i);
        let child = start_build(&recipe, &out, &cache, format);
        std::thread::sleep(Duration::from_micros(rng.next() % span));
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        verified_digest(&target, &digests);
    }
    // The next build sweeps what the killed ones left, and the cache
    // still holds only whole blobs.
    variant(0);
    let r = finish(start_build(&recipe, &out, &cache, format));
    r.expect_ok();
    assert_eq!(r.last_line(), digests[0]);
    assert_eq!(verified_digest(&target, &digests), digests[0]);
    assert_eq!(named(&outdir, ".stele-tmp-"), Vec::<PathBuf>::new());
    check_cache(&cache);
}

#[test]
fn a_layout_build_killed_at_random_points_leaves_the_old_or_the_new() {
    kill_at_random_points("oci", 0x5eed_0001);
}

#[test]
fn an_archive_build_killed_at_random_points_leaves_the_old_or_the_new() {
    kill_at_random_points("oci-archive", 0x5eed_0002);
}

#[test]
fn a_live_builds_temp_files_are_not_swept() {
    let tmp = tempdir();
    let outdir = tmp.path().join("outputs");
    fs::create_dir_all(&outdir).unwrap();
    // A stale folder (nobody holds its lock) and a live one (this test
    // holds it, as a running build would).
    let stale = outdir.join(".stele-tmp-stale");
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("blob"), "x").unwrap();
    let live = outdir.join(".stele-tmp-live");
    fs::create_dir(&live).unwrap();
    let handle = fs::File::open(&live).unwrap();
    use std::os::fd::AsRawFd;
    assert_eq!(
        unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let src = tmp.path().join("src");
    populate(&src, false);
    let r = finish(start_build(
        &src.join("recipe.toml"),
        &outdir.join("image"),
        &tmp.path().join("cache"),
        "oci",
    ));
    r.expect_ok();
    assert!(!stale.exists(), "the stale folder was left");
    assert!(live.exists(), "a live build's folder was removed");
    drop(handle);
}

#[test]
fn two_builds_sharing_a_cache_at_once_agree() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let recipe = src.join("recipe.toml");
    let cache = tmp.path().join("cache");
    for round in 0..3 {
        let a = start_build(
            &recipe,
            &tmp.path().join(format!("a{round}")),
            &cache,
            "oci",
        );
        let b = start_build(
            &recipe,
            &tmp.path().join(format!("b{round}")),
            &cache,
            "oci",
        );
        let (ra, rb) = (finish(a), finish(b));
        ra.expect_ok();
        rb.expect_ok();
        assert_eq!(ra.last_line(), rb.last_line());
        assert!(is_digest(ra.last_line()));
    }
    check_cache(&cache);
}
