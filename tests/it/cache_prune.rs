//! `stele cache prune`: the least recently used entries go, by size or
//! age; a prune waits for the commands using the cache; links planted in
//! the cache are never followed; and a build after a prune makes the
//! same image.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::support::*;

const RECIPE: &str = r#"
[image]
name = "pruned"
epoch = 1700000000

[[paths]]
path = "/etc/NAME"
kind = "file"
content = "NAME\n"
"#;

fn recipe(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, RECIPE.replace("NAME", name)).unwrap();
    path
}

fn build_in(recipe: &Path, out: &Path, cache: &Path) -> Run {
    let r = run(stele()
        .arg("build")
        .arg(recipe)
        .arg("-o")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache));
    r.expect_ok();
    r
}

fn prune(cache: &Path, args: &[&str]) -> Run {
    run(stele()
        .args(["cache", "prune", "--cache-dir"])
        .arg(cache)
        .args(args))
}

/// Every entry of the cache, as if last used `days` ago.
fn age_everything(cache: &Path, days: u64) {
    let when = SystemTime::now() - Duration::from_secs(days * 86_400);
    for dir in ["blobs/sha256", "layers/v1"] {
        for e in fs::read_dir(cache.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let f = fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(when).unwrap();
        }
    }
}

#[test]
fn by_size_everything_goes_and_the_rebuild_is_the_same_image() {
    let tmp = tempdir();
    let dir = tmp.path();
    let cache = dir.join("cache");
    let a = recipe(dir, "a");
    let first = build_in(&a, &dir.join("one"), &cache);

    let dry = prune(&cache, &["--max-size", "0", "--dry-run", "--json"]);
    dry.expect_ok();
    let doc = json(dry.stdout.as_bytes());
    assert!(doc["removed"]["blobs"].as_u64().unwrap() >= 2, "{doc}");
    // The layer's entry, and the record that its blob was checked.
    assert_eq!(doc["removed"]["records"], 2, "{doc}");
    assert!(dry.stderr.contains("would remove"), "{}", dry.stderr);
    let second = build_in(&a, &dir.join("two"), &cache);
    assert!(
        second.stderr.contains("hits 1, misses 0"),
        "{}",
        second.stderr
    );

    let real = prune(&cache, &["--max-size", "0", "--json"]);
    real.expect_ok();
    let doc = json(real.stdout.as_bytes());
    assert_eq!(doc["kept"]["blobs"], 0, "{doc}");
    assert_eq!(fs::read_dir(cache.join("blobs/sha256")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(cache.join("layers/v1")).unwrap().count(), 0);

    let third = build_in(&a, &dir.join("three"), &cache);
    assert!(
        third.stderr.contains("hits 0, misses 1"),
        "{}",
        third.stderr
    );
    assert_eq!(first.last_line(), third.last_line());
    assert_same_layout(&dir.join("one"), &dir.join("three"));
}

#[test]
fn by_age_what_a_recent_build_used_stays() {
    let tmp = tempdir();
    let dir = tmp.path();
    let cache = dir.join("cache");
    let (a, b) = (recipe(dir, "a"), recipe(dir, "b"));
    build_in(&a, &dir.join("a1"), &cache);
    build_in(&b, &dir.join("b1"), &cache);
    age_everything(&cache, 10);
    // A rebuild of b uses (and so renews) its layer.
    let b2 = build_in(&b, &dir.join("b2"), &cache);
    assert!(b2.stderr.contains("hits 1, misses 0"), "{}", b2.stderr);

    let r = prune(&cache, &["--older-than", "7d"]);
    r.expect_ok();
    // a's layer entry, and the record that its blob was checked.
    assert!(r.stderr.contains("and 2 record(s)"), "{}", r.stderr);
    let b3 = build_in(&b, &dir.join("b3"), &cache);
    assert!(b3.stderr.contains("hits 1, misses 0"), "{}", b3.stderr);
    let a2 = build_in(&a, &dir.join("a2"), &cache);
    assert!(a2.stderr.contains("hits 0, misses 1"), "{}", a2.stderr);
    assert_same_layout(&dir.join("a1"), &dir.join("a2"));
}

#[test]
fn a_prune_waits_for_the_commands_using_the_cache() {
    let tmp = tempdir();
    let dir = tmp.path();
    let cache = dir.join("cache");
    build_in(&recipe(dir, "a"), &dir.join("one"), &cache);

    // What every command holds while it has the cache open.
    let held = fs::File::open(cache.join("lock")).unwrap();
    // SAFETY: a valid descriptor for the call's duration.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_SH) }, 0);

    let r = prune(&cache, &["--max-size", "0", "--no-wait"]);
    r.expect_fail();
    assert!(r.stderr.contains("is using the cache"), "{}", r.stderr);
    assert!(fs::read_dir(cache.join("blobs/sha256")).unwrap().count() > 0);

    let mut waiting = stele()
        .args(["cache", "prune", "--max-size", "0", "--cache-dir"])
        .arg(&cache)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(waiting.try_wait().unwrap().is_none(), "prune did not wait");
    assert!(fs::read_dir(cache.join("blobs/sha256")).unwrap().count() > 0);
    drop(held);
    let out = waiting.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("waiting for the stele commands"),
        "{stderr}"
    );
    assert_eq!(fs::read_dir(cache.join("blobs/sha256")).unwrap().count(), 0);
}

#[test]
fn links_planted_in_the_cache_are_never_followed() {
    let tmp = tempdir();
    let dir = tmp.path();
    let cache = dir.join("cache");
    build_in(&recipe(dir, "a"), &dir.join("one"), &cache);

    let outside = dir.join("outside");
    fs::create_dir_all(outside.join("v1")).unwrap();
    let hex = "a".repeat(64);
    fs::write(outside.join(&hex), "keep me").unwrap();
    fs::write(outside.join("v1").join(&hex), "keep me too").unwrap();
    std::os::unix::fs::symlink(&outside, cache.join("planted")).unwrap();
    std::os::unix::fs::symlink(outside.join(&hex), cache.join("blobs/sha256").join(&hex)).unwrap();
    std::os::unix::fs::symlink(outside.join("v1"), cache.join("layers/v2")).unwrap();

    let r = prune(&cache, &["--max-size", "0", "--json"]);
    r.expect_ok();
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["links_skipped"], 3, "{doc}");
    assert_eq!(fs::read_to_string(outside.join(&hex)).unwrap(), "keep me");
    assert_eq!(
        fs::read_to_string(outside.join("v1").join(&hex)).unwrap(),
        "keep me too"
    );
}

#[test]
fn a_prune_needs_a_limit_and_a_cache() {
    let tmp = tempdir();
    let r = prune(&tmp.path().join("cache"), &[]);
    r.expect_fail();
    assert!(r.stderr.contains("--max-size"), "{}", r.stderr);
    let r = prune(&tmp.path().join("nothing"), &["--max-size", "1GB"]);
    r.expect_fail();
    assert!(r.stderr.contains("not a stele cache"), "{}", r.stderr);
    let r = prune(&tmp.path().join("nothing"), &["--max-size", "lots"]);
    r.expect_fail();
    assert!(r.stderr.contains("not a size"), "{}", r.stderr);
}
