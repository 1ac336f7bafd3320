//! Blob transfers up to `--jobs` at once: what lands in a registry and
//! what a pull writes are the same for any number of jobs, a push of what
//! is there sends nothing, a failed blob leaves no manifest behind, and
//! the uploads really do overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::bytes::noise;
use crate::support::docker_registry::{have_registry, DockerRegistry};
use crate::support::registry::{Auth, FakeRegistry, Fault};
use crate::support::*;
use oci_spec::image::{Arch, ImageConfigurationBuilder, MediaType, Os, RootFsBuilder};
use serde_json::Value;
use stele::oci::{Built, Image, LayerBlob, Platform};
use stele::registry::{push_built, PushOptions, Reference, RegistrySettings};
use stele::store::BlobStore;
use stele::transport::{NetworkSettings, Transport};

/// A two-platform image on a two-platform base (two layers a platform,
/// the base's shared), with its attestations, as a layout.
fn build_app(tmp: &Path) -> (PathBuf, String) {
    let base_src = tmp.join("base");
    write_file(&base_src.join("data.bin"), noise(300_000, 1), 0o644);
    fs::write(
        base_src.join("recipe.toml"),
        r#"
[image]
name = "team/base"
epoch = 1700000000
platforms = ["linux/amd64", "linux/arm64"]

[[files]]
src = "data.bin"
dest = "/srv/data.bin"
"#,
    )
    .unwrap();
    let base = tmp.join("base-layout");
    let base_digest = build_with(&base_src.join("recipe.toml"), &base, &["--attest", "none"]);
    let app_src = tmp.join("app");
    write_file(&app_src.join("app.bin"), noise(200_000, 2), 0o755);
    fs::write(
        app_src.join("recipe.toml"),
        format!(
            r#"
[image]
name = "team/app"
epoch = 1700000000
platforms = ["linux/amd64", "linux/arm64"]

[base]
layout = "{}@{base_digest}"

[[files]]
src = "app.bin"
dest = "/usr/local/bin/app"
"#,
            base.display()
        ),
    )
    .unwrap();
    let layout = tmp.join("app-layout");
    let digest = build(&app_src.join("recipe.toml"), &layout);
    (layout, digest)
}

/// `stele push LAYOUT REF -j JOBS --json`: the pushed reference and what
/// was sent.
#[track_caller]
fn push_jobs(layout: &Path, reference: &str, jobs: u32) -> (String, Value) {
    let r = run(stele().arg("push").arg(layout).arg(reference).args([
        "--json",
        "-j",
        &jobs.to_string(),
    ]));
    r.expect_ok();
    let doc = json(r.stdout.as_bytes());
    (
        doc["pushed"].as_str().unwrap().to_string(),
        doc["report"].clone(),
    )
}

/// A repository as docker-registry stores it: the blobs it links, its
/// manifest revisions and tags (link files and what they name).
fn repository_content(reg: &DockerRegistry, repo: &str) -> BTreeMap<String, Vec<u8>> {
    let root = reg
        .dir()
        .join("data/docker/registry/v2/repositories")
        .join(repo);
    snapshot(&root)
        .into_iter()
        .filter(|(path, _)| !path.starts_with("_uploads"))
        .collect()
}

#[test]
fn jobs_change_neither_what_a_registry_holds_nor_what_a_pull_writes() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let (layout, digest) = build_app(tmp.path());
    let index = json(&fs::read(layout.join("index.json")).unwrap());
    assert!(
        index["manifests"].as_array().unwrap().len() > 1,
        "the image has attestations: {index}"
    );

    let one = format!("{}/one/app:v1", reg.host());
    let eight = format!("{}/eight/app:v1", reg.host());
    let (pushed_one, sent_one) = push_jobs(&layout, &one, 1);
    let (pushed_eight, sent_eight) = push_jobs(&layout, &eight, 8);
    assert_eq!(pushed_one, format!("{one}@{digest}"));
    assert_eq!(pushed_eight, format!("{eight}@{digest}"));
    // Two platforms: each a config and the recipe layer, the base layer
    // shared; the attestations' blobs besides.
    assert!(
        sent_one["blobs_uploaded"].as_u64().unwrap() > 5,
        "{sent_one}"
    );
    for key in [
        "blobs_uploaded",
        "bytes_uploaded",
        "manifests_pushed",
        "referrers_pushed",
    ] {
        assert_eq!(sent_one[key], sent_eight[key], "{key}");
    }
    let content = repository_content(&reg, "one/app");
    assert!(
        content.keys().any(|k| k.starts_with("_layers/")),
        "{:?}",
        content.keys()
    );
    assert_eq!(content, repository_content(&reg, "eight/app"));

    // Pushed again, with many jobs: every blob is there, nothing is sent,
    // and -v's one summary line says so.
    let r = run(stele()
        .args(["-v", "push"])
        .arg(&layout)
        .arg(&eight)
        .args(["--json", "-j", "8"]));
    r.expect_ok();
    let again = &json(r.stdout.as_bytes())["report"];
    assert_eq!(again["bytes_uploaded"], 0, "{again}");
    assert_eq!(again["blobs_uploaded"], 0, "{again}");
    assert_eq!(again["blobs_existing"], sent_eight["blobs_uploaded"]);
    let n = &sent_eight["blobs_uploaded"];
    let summary: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("sending: "))
        .collect();
    assert_eq!(summary.len(), 1, "{}", r.stderr);
    assert!(
        summary[0].starts_with(&format!("sending: {n} of {n} blob(s) done"))
            && summary[0].contains(", 0 moved,"),
        "{}",
        r.stderr
    );

    // Copied to another repository of the same registry: every blob is
    // mounted from the source repository, none travels.
    let copied = format!("{}/copied/app:v1", reg.host());
    let r = run(stele().args(["push", &one, &copied, "--json"]));
    r.expect_ok();
    let mounted = &json(r.stdout.as_bytes())["report"];
    assert_eq!(
        mounted["blobs_mounted"], sent_one["blobs_uploaded"],
        "{mounted}"
    );
    assert_eq!(mounted["bytes_uploaded"], 0, "{mounted}");
    assert_eq!(content, repository_content(&reg, "copied/app"));

    // Pulled with one job and with eight, each into an empty cache.
    let mut pulled = Vec::new();
    for jobs in ["1", "8"] {
        let out = tmp.path().join(format!("pulled-{jobs}"));
        let r = run(stele()
            .args(["pull", &one, "-j", jobs, "-o"])
            .arg(&out)
            .arg("--cache-dir")
            .arg(tmp.path().join(format!("cache-{jobs}"))));
        r.expect_ok();
        assert_eq!(r.last_line(), digest);
        pulled.push(snapshot(&out));
    }
    assert_eq!(pulled[0], pulled[1]);
    // Every blob the built layout holds, attestations' included, and no other.
    let blobs = |s: &BTreeMap<String, Vec<u8>>| -> BTreeSet<String> {
        s.keys()
            .filter(|k| k.starts_with("blobs/"))
            .cloned()
            .collect()
    };
    assert_eq!(blobs(&pulled[0]), blobs(&snapshot(&layout)));
}

fn fast_settings(jobs: usize) -> RegistrySettings {
    RegistrySettings {
        chunk_size: 1 << 20,
        jobs,
        transport: Transport::new(NetworkSettings {
            retries: 2,
            backoff: Duration::from_millis(1),
            idle_timeout: Duration::from_secs(20),
            ..NetworkSettings::default()
        }),
        ..RegistrySettings::default()
    }
}

/// A two-platform image of `layers` layers a platform (all different),
/// in its own store.
struct Fixture {
    _dir: tempfile::TempDir,
    store: BlobStore,
    built: Built,
}

fn fixture(layers: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut images = Vec::new();
    for (p, (arch, name)) in [(Arch::Amd64, "amd64"), (Arch::ARM64, "arm64")]
        .into_iter()
        .enumerate()
    {
        let mut blobs = Vec::new();
        for i in 0..layers {
            let bytes = noise(2000 + 100 * i, (p * 100 + i) as u64 + 7);
            let digest = store.put_bytes(&bytes).unwrap();
            blobs.push(LayerBlob {
                media_type: MediaType::ImageLayer,
                digest: digest.clone(),
                size: bytes.len() as u64,
                diff_id: digest,
            });
        }
        let config = ImageConfigurationBuilder::default()
            .architecture(arch)
            .os(Os::Linux)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(
                        blobs
                            .iter()
                            .map(|b| b.diff_id.to_string())
                            .collect::<Vec<_>>(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let platform = Platform {
            os: "linux".into(),
            architecture: name.into(),
            variant: None,
        };
        let image = Image::new(platform, config, blobs, &BTreeMap::new());
        store.put_bytes(&image.config.bytes).unwrap();
        store.put_bytes(&image.manifest.bytes).unwrap();
        images.push(image);
    }
    let built = Built::new(images, &BTreeMap::new());
    if let Some(index) = &built.index {
        store.put_bytes(&index.bytes).unwrap();
    }
    Fixture {
        _dir: dir,
        store,
        built,
    }
}

fn push_fixture(
    f: &Fixture,
    reg: &FakeRegistry,
    repo_tag: &str,
    jobs: usize,
) -> Result<stele::registry::PushReport, stele::registry::RegistryError> {
    let reference = Reference::parse(&format!("{}/{repo_tag}", reg.host())).unwrap();
    push_built(
        &f.built,
        &f.store,
        &[],
        &reference,
        &fast_settings(jobs),
        &PushOptions::default(),
    )
    .map(|(_, report)| report)
}

#[test]
fn a_failed_blob_leaves_no_manifest_and_is_named() {
    let f = fixture(4);
    let failing = f.built.images[1].layers[2].digest.to_string();
    for jobs in [1, 4] {
        let reg = FakeRegistry::start(Auth::None);
        reg.fault(
            "PUT",
            &format!("digest={failing}"),
            0,
            100,
            Fault::Status(403, "DENIED"),
        );
        let e = push_fixture(&f, &reg, "team/app:v1", jobs).unwrap_err();
        assert_eq!(e.status(), Some(403), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&failing) && text.contains("no manifest was pushed"),
            "jobs {jobs}: {text}"
        );
        let manifests: Vec<_> = reg
            .log()
            .into_iter()
            .filter(|l| l.path.contains("/manifests/"))
            .collect();
        assert!(manifests.is_empty(), "jobs {jobs}: {manifests:?}");
        assert!(reg.manifest("team/app", "v1").is_none());
    }
}

#[test]
fn uploads_overlap_up_to_the_jobs_and_share_one_token() {
    let f = fixture(3);
    let mut max = BTreeMap::new();
    for jobs in [1, 4] {
        let reg = FakeRegistry::start(Auth::Bearer {
            user: "alice".into(),
            password: "pw".into(),
        });
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        let token = base64_basic("alice", "pw");
        fs::write(
            &auth,
            format!(r#"{{"auths":{{"{}":{{"auth":"{token}"}}}}}}"#, reg.host()),
        )
        .unwrap();
        reg.slow_uploads(Duration::from_millis(40));
        let reference = Reference::parse(&format!("{}/team/app:v1", reg.host())).unwrap();
        let settings = RegistrySettings {
            auth_files: vec![auth],
            ..fast_settings(jobs)
        };
        let (_, report) = push_built(
            &f.built,
            &f.store,
            &[],
            &reference,
            &settings,
            &PushOptions::default(),
        )
        .unwrap();
        assert_eq!(report.blobs_uploaded, 8, "{report:?}");
        let (_, stored) = reg.manifest("team/app", "v1").unwrap();
        assert_eq!(&stored, &f.built.index.as_ref().unwrap().bytes);
        // However many requests met the first 401 at once, one token was
        // fetched and every later request carried it.
        let tokens = reg.log().iter().filter(|l| l.path == "/token").count();
        assert_eq!(tokens, 1, "jobs {jobs}");
        max.insert(jobs, reg.max_uploads_in_flight());
    }
    assert_eq!(max[&1], 1, "{max:?}");
    assert!(max[&4] > 1, "{max:?}");
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}
