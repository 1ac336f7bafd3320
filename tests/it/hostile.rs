//! Hostile inputs (issue 13): links, FIFOs and devices inside a layout are
//! refused rather than followed or read; reading never writes into what
//! is read; every untrusted stream is bounded, and what is referenced many
//! times is processed once. Each test builds its hostile input itself and
//! runs `stele` under a deadline, so a hang fails instead of stalling.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::edit::*;
use crate::support::tree::populate;
use crate::support::*;

/// Runs `cmd`, killing it and failing the test if it takes longer than
/// `limit`.
#[track_caller]
pub fn run_within(cmd: &mut Command, limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} ran past {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const DEADLINE: Duration = Duration::from_secs(30);

/// A layout `stele build` wrote, in `dir/out`.
pub fn built_layout(dir: &Path) -> (PathBuf, String) {
    let src = dir.join("src");
    populate(&src, false);
    let out = dir.join("out");
    let digest = build(&src.join("recipe.toml"), &out);
    (out, digest)
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn layer_digest(layout: &Path) -> String {
    top_manifest(layout)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn verify(target: &Path) -> Run {
    run_within(stele().arg("verify").arg(target), DEADLINE)
}

#[test]
fn a_blob_linked_to_an_identical_file_outside_the_layout_is_refused() {
    let tmp = tempdir();
    let (layout, _) = built_layout(tmp.path());
    let layer = layer_digest(&layout);
    let blob = blob_path(&layout, &layer);
    let outside = tmp.path().join("outside");
    fs::rename(&blob, &outside).unwrap();
    symlink(&outside, &blob).unwrap();
    let r = verify(&layout);
    r.expect_code(1);
    assert!(r.stdout.contains("symbolic link"), "{}", r.stdout);
    // As a base, and to diff, the same.
    let r = run_within(stele().arg("diff").arg(&layout).arg(&layout), DEADLINE);
    r.expect_fail();
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
}

#[test]
fn blobs_and_manifests_linked_to_dev_zero_or_fifos_are_refused_quickly() {
    let tmp = tempdir();
    let (layout, digest) = built_layout(tmp.path());
    let layer = blob_path(&layout, &layer_digest(&layout));
    fs::remove_file(&layer).unwrap();
    symlink("/dev/zero", &layer).unwrap();
    let r = verify(&layout);
    r.expect_code(1);
    assert!(r.stdout.contains("symbolic link"), "{}", r.stdout);

    // The top manifest a link to /dev/zero.
    let manifest = blob_path(&layout, &digest);
    fs::remove_file(&manifest).unwrap();
    symlink("/dev/zero", &manifest).unwrap();
    let r = verify(&layout);
    r.expect_fail();
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("symbolic link"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // A FIFO where a blob belongs is refused before it is read.
    fs::remove_file(&layer).unwrap();
    let c = std::ffi::CString::new(layer.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    fs::remove_file(&manifest).unwrap();
    let r = verify(&layout);
    r.expect_fail();
    let r = run_within(
        stele()
            .arg("verify")
            .arg(format!("{}@{digest}", layout.display())),
        DEADLINE,
    );
    r.expect_fail();

    // An archive named on the command line that is a FIFO: refused too.
    let fifo = tmp.path().join("image.tar");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let r = run_within(
        stele()
            .arg("verify")
            .arg(format!("oci-archive:{}", fifo.display())),
        DEADLINE,
    );
    r.expect_fail();
    assert!(r.stderr.contains("FIFO"), "{}", r.stderr);
}

#[test]
fn a_fifo_as_the_layer_blob_fails_its_check_without_hanging() {
    let tmp = tempdir();
    let (layout, _) = built_layout(tmp.path());
    let layer = blob_path(&layout, &layer_digest(&layout));
    fs::remove_file(&layer).unwrap();
    let c = std::ffi::CString::new(layer.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let r = verify(&layout);
    r.expect_code(1);
    assert!(r.stdout.contains("FIFO"), "{}", r.stdout);
}

/// Every file and folder below `dir`, for "nothing was created here".
fn listing(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().path().to_path_buf())
        .collect()
}

#[test]
fn reading_a_layout_whose_blobs_is_a_link_writes_nothing_there() {
    let tmp = tempdir();
    let (layout, _) = built_layout(tmp.path());
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    // The blobs folder moved away and linked back, and a second layout
    // whose `blobs` links to an empty folder.
    fs::rename(layout.join("blobs"), tmp.path().join("moved")).unwrap();
    symlink(tmp.path().join("moved"), layout.join("blobs")).unwrap();
    let empty = tmp.path().join("empty-layout");
    fs::create_dir(&empty).unwrap();
    fs::copy(layout.join("oci-layout"), empty.join("oci-layout")).unwrap();
    fs::copy(layout.join("index.json"), empty.join("index.json")).unwrap();
    symlink(&elsewhere, empty.join("blobs")).unwrap();
    let before = listing(tmp.path());

    for target in [&layout, &empty] {
        let r = verify(target);
        r.expect_fail();
        assert!(
            format!("{}{}", r.stdout, r.stderr).contains("symbolic link"),
            "{}{}",
            r.stdout,
            r.stderr
        );
        let r = run_within(stele().arg("diff").arg(target).arg(target), DEADLINE);
        r.expect_fail();
        let r = run_within(
            stele()
                .arg("push")
                .arg(target)
                .arg("127.0.0.1:9/nowhere:latest"),
            DEADLINE,
        );
        r.expect_fail();
    }
    assert_eq!(listing(tmp.path()), before, "reading created something");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}
