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
    // Read both pipes while waiting: a child blocked on a full pipe
    // would otherwise look like a hang.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "{cmd:?} ran past {limit:?}; stderr:\n{}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// `run_within`, also returning the command's peak resident memory in
/// bytes, when GNU time is there to measure it. It must be a small
/// process that forks the command: Linux carries a process's peak
/// across exec, so a child forked from the test process (hundreds of
/// megabytes of test data) would report the test's peak, not its own.
pub fn run_measured(cmd: &mut Command, limit: Duration) -> (Run, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("/usr/bin/time is not installed, and CI=true requires every tool (install the Debian package `time`)");
        }
        skip("no /usr/bin/time: memory is not measured");
        return (run_within(cmd, limit), None);
    }
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new(time);
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    let run = run_within(&mut timed, limit);
    let text = fs::read_to_string(report.path()).unwrap();
    // The last line is the peak in kilobytes (a killed command's exit
    // status comes first).
    let kb: u64 = text.lines().last().unwrap().trim().parse().unwrap();
    (run, Some(kb * 1024))
}

/// The memory any one `stele` run may take on hostile input.
const MEMORY_LIMIT: u64 = 100 << 20;

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

/// A tar holding one file of `size` bytes of `byte`.
fn layer_tar(size: usize, byte: u8) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("data").unwrap();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, std::io::repeat(byte).take(size as u64))
        .unwrap();
    b.into_inner().unwrap()
}

use std::io::{Read, Write};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A classic docker-archive at `path` whose one image names the layer
/// member `layer` (stored as `layer.tar`) `times` times, with a config
/// listing `diff_id` as often.
fn docker_archive(path: &Path, layer: &[u8], diff_id: &str, times: usize) {
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": vec![diff_id; times]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["hostile:latest"],
        "Layers": vec!["layer.tar"; times],
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    raw_tar(
        path,
        &[
            ("manifest.json", tar::EntryType::Regular, &manifest, ""),
            (&config_name, tar::EntryType::Regular, &config, ""),
            ("layer.tar", tar::EntryType::Regular, layer, ""),
        ],
    );
}

use crate::support::archive::raw_tar;

fn timed(cmd: &mut Command) -> (Run, Duration) {
    let start = Instant::now();
    let (r, rss) = run_measured(cmd, Duration::from_secs(120));
    let rss = rss.unwrap_or(0);
    assert!(
        rss < MEMORY_LIMIT,
        "{cmd:?} took {rss} bytes of memory:\n{}",
        r.stderr
    );
    (r, start.elapsed())
}

#[test]
fn a_layer_named_a_thousand_times_is_read_once() {
    let tmp = tempdir();
    let tar = layer_tar(8 << 20, 7);
    let diff_id = sha256_digest(&tar);
    let once = tmp.path().join("once.tar");
    let many = tmp.path().join("many.tar");
    docker_archive(&once, &tar, &diff_id, 1);
    docker_archive(&many, &tar, &diff_id, 1000);
    let (r, t_once) = timed(
        stele()
            .arg("verify")
            .arg(format!("docker-archive:{}", once.display())),
    );
    r.expect_ok();
    let (r, t_many) = timed(
        stele()
            .arg("verify")
            .arg(format!("docker-archive:{}", many.display())),
    );
    r.expect_ok();
    assert!(
        t_many < t_once * 5 + Duration::from_secs(3),
        "1000 references took {t_many:?}, one took {t_once:?}"
    );
    let (r, t_diff) = timed(
        stele()
            .arg("diff")
            .arg(format!("docker-archive:{}", many.display()))
            .arg(format!("docker-archive:{}", once.display())),
    );
    r.expect_code(1);
    assert!(
        t_diff < t_once * 10 + Duration::from_secs(3),
        "diff took {t_diff:?}"
    );
}

#[test]
fn a_bomb_layer_named_a_hundred_times_is_unpacked_once() {
    let tmp = tempdir();
    let tar = layer_tar(128 << 20, 0);
    let diff_id = sha256_digest(&tar);
    let layer = gzip(&tar);
    drop(tar);
    let once = tmp.path().join("once.tar");
    let many = tmp.path().join("many.tar");
    docker_archive(&once, &layer, &diff_id, 1);
    docker_archive(&many, &layer, &diff_id, 100);
    let (r, t_once) = timed(
        stele()
            .arg("verify")
            .arg(format!("docker-archive:{}", once.display())),
    );
    r.expect_ok();
    let (r, t_many) = timed(
        stele()
            .arg("verify")
            .arg(format!("docker-archive:{}", many.display())),
    );
    r.expect_ok();
    assert!(
        t_many < t_once * 3 + Duration::from_secs(3),
        "100 references took {t_many:?}, one took {t_once:?}"
    );
    let many_target = format!("docker-archive:{}", many.display());
    let once_target = format!("docker-archive:{}", once.display());
    let (r, t) = timed(stele().arg("diff").arg(&many_target).arg(&once_target));
    r.expect_code(1);
    assert!(t < t_once * 6 + Duration::from_secs(3), "diff took {t:?}");
    // push opens (and checks) the image before it reaches the network:
    // the unreachable registry is what fails it, not a time limit.
    let (r, t) = timed(
        stele()
            .arg("push")
            .arg(&many_target)
            .arg("127.0.0.1:9/nowhere:latest"),
    );
    r.expect_fail();
    assert!(t < t_once * 6 + Duration::from_secs(10), "push took {t:?}");
}

/// A tar whose first header is a PAX record claiming `size` bytes, with
/// only a few kilobytes after it.
fn huge_pax_tar(size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path("PaxHeader").unwrap();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(&[b'9'; 8192]);
    bytes
}

#[test]
fn a_pax_record_claiming_a_gigabyte_is_refused_naming_the_limit() {
    let tmp = tempdir();
    let (layout, _) = built_layout(tmp.path());
    let layer = gzip(&huge_pax_tar(1 << 30));
    let (digest, size) = put_blob(&layout, &layer);
    edit_manifest(&layout, 0, |m| {
        m["layers"][0]["digest"] = digest.clone().into();
        m["layers"][0]["size"] = size.into();
    });
    let (r, t) = timed(stele().arg("verify").arg(&layout));
    r.expect_code(1);
    assert!(
        r.stdout.contains("PAX record of 1073741824 bytes")
            && r.stdout.contains("1048576-byte limit"),
        "{}",
        r.stdout
    );
    assert!(t < Duration::from_secs(20), "{t:?}");

    // In an archive's own tar stream, the same.
    let archive = tmp.path().join("pax.tar");
    fs::write(&archive, huge_pax_tar(1 << 30)).unwrap();
    let r = run_within(
        stele()
            .arg("verify")
            .arg(format!("docker-archive:{}", archive.display())),
        DEADLINE,
    );
    r.expect_fail();
    assert!(r.stderr.contains("1048576-byte limit"), "{}", r.stderr);
}

/// Gives the layout's image a config whose first DiffID is `wrong`;
/// returns the new manifest digest.
fn lie_about_diff_id(layout: &Path, wrong: &str) -> String {
    let manifest = top_manifest(layout);
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut config = json(&blob(layout, &config_digest));
    config["rootfs"]["diff_ids"][0] = wrong.into();
    let (digest, size) = put_blob(layout, &serde_json::to_vec(&config).unwrap());
    edit_manifest(layout, 0, |m| {
        m["config"]["digest"] = digest.clone().into();
        m["config"]["size"] = size.into();
    })
}

#[test]
fn a_base_whose_config_lies_about_a_diff_id_is_refused_by_build_and_push() {
    let tmp = tempdir();
    let (layout, _) = built_layout(tmp.path());
    let wrong = sha256_digest(b"not this layer");
    let digest = lie_about_diff_id(&layout, &wrong);
    let child = tmp.path().join("child");
    fs::create_dir(&child).unwrap();
    let recipe = format!(
        "[image]\nname = \"child\"\nepoch = 1700000000\n\n[base]\nlayout = \"{}@{digest}\"\n",
        layout.display()
    );
    fs::write(child.join("recipe.toml"), recipe).unwrap();
    let out = tmp.path().join("child-out");
    let r = run_within(
        stele()
            .arg("build")
            .arg(child.join("recipe.toml"))
            .arg("-o")
            .arg(&out),
        DEADLINE,
    );
    r.expect_fail();
    assert!(
        r.stderr.contains("layer 1/1") && r.stderr.contains(&wrong),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "a refused build left {}", out.display());

    let r = run_within(
        stele()
            .arg("push")
            .arg(&layout)
            .arg("127.0.0.1:9/nowhere:latest"),
        DEADLINE,
    );
    r.expect_fail();
    assert!(
        r.stderr.contains("layer 1/1") && r.stderr.contains(&wrong),
        "{}",
        r.stderr
    );
    // verify names it as a failed check, as before.
    let r = verify(&layout);
    r.expect_code(1);
    assert!(r.stdout.contains("diff_id"), "{}", r.stdout);
}

/// An archive holding `layout` (its oci-layout, index.json and blobs),
/// every blob of `extra` too, and a `manifest.json` naming `docker`'s
/// images (layouts whose first manifest is the image).
fn two_view_archive(path: &Path, layout: &Path, extra: &Path, docker: &[&Path]) {
    let items: Vec<serde_json::Value> = docker
        .iter()
        .map(|l| {
            let m = top_manifest(l);
            let blob = |d: &serde_json::Value| {
                format!(
                    "blobs/sha256/{}",
                    d["digest"]
                        .as_str()
                        .unwrap()
                        .strip_prefix("sha256:")
                        .unwrap()
                )
            };
            serde_json::json!({
                "Config": blob(&m["config"]),
                "RepoTags": ["two:views"],
                "Layers": m["layers"].as_array().unwrap().iter().map(blob).collect::<Vec<_>>(),
            })
        })
        .collect();
    let manifest = serde_json::to_vec(&items).unwrap();
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, bytes).unwrap();
    };
    add("manifest.json", &manifest);
    add("oci-layout", &fs::read(layout.join("oci-layout")).unwrap());
    add("index.json", &fs::read(layout.join("index.json")).unwrap());
    let mut names = std::collections::BTreeMap::new();
    for l in [layout, extra] {
        for e in fs::read_dir(l.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            names.insert(e.file_name(), e.path());
        }
    }
    for (name, p) in names {
        add(
            &format!("blobs/sha256/{}", name.to_str().unwrap()),
            &fs::read(p).unwrap(),
        );
    }
    b.into_inner().unwrap();
}

#[test]
fn an_archive_whose_docker_and_oci_views_disagree_is_refused() {
    let tmp = tempdir();
    let (a, _) = built_layout(&tmp.path().join("a"));
    let src_b = tmp.path().join("b/src");
    populate(&src_b, false);
    fs::write(src_b.join("config.txt"), "another image\n").unwrap();
    let b = tmp.path().join("b/out");
    build(&src_b.join("recipe.toml"), &b);
    let config_of = |l: &Path| {
        top_manifest(l)["config"]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Both views the same image: fine.
    let agreeing = tmp.path().join("agree.tar");
    two_view_archive(&agreeing, &a, &a, &[&a]);
    for kind in ["docker-archive", "oci-archive"] {
        let r = verify(Path::new(&format!("{kind}:{}", agreeing.display())));
        r.expect_ok();
    }

    let other = tmp.path().join("other.tar");
    two_view_archive(&other, &a, &b, &[&b]);
    let several = tmp.path().join("several.tar");
    two_view_archive(&several, &a, &b, &[&a, &b]);
    for archive in [&other, &several] {
        for kind in ["docker-archive", "oci-archive"] {
            let target = format!("{kind}:{}", archive.display());
            for args in [
                vec!["verify", &target],
                vec!["diff", &target, &target],
                vec!["push", &target, "127.0.0.1:9/nowhere:latest"],
            ] {
                let r = run_within(stele().args(&args), DEADLINE);
                r.expect_fail();
                assert!(
                    r.stderr.contains("two views name different images")
                        && r.stderr.contains(&config_of(&a))
                        && r.stderr.contains(&config_of(&b)),
                    "{args:?}: {}",
                    r.stderr
                );
            }
        }
    }
}
