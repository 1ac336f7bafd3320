//! `stele push` and `stele pull` against the real registry (distribution
//! 2.8's `docker-registry`, filesystem storage in a temp folder, on
//! 127.0.0.1), read back by skopeo, stele and podman.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::docker_registry::{have_registry, htpasswd_alice, skopeo_raw, DockerRegistry};
use crate::support::tree::populate;
use crate::support::*;
use serde_json::Value;

/// `stele` with HOME in `home`, where a test puts credential files, and
/// its cache there too (no XDG_CACHE_HOME). [`stele`] already keeps the
/// developer's own auth files out.
fn stele_in(home: &Path) -> Command {
    let mut c = stele();
    c.env("HOME", home).env_remove("XDG_CACHE_HOME");
    c
}

/// `stele push LAYOUT REF --report FILE` (plus `extra`), checked to
/// succeed; returns the last stdout line and the report.
#[track_caller]
fn push(home: &Path, layout: &Path, reference: &str, extra: &[&str]) -> (String, Value) {
    let report = home.join(format!("report-{}.json", rand_suffix()));
    let r = run(stele_in(home)
        .arg("push")
        .arg(layout)
        .arg(reference)
        .arg("--report")
        .arg(&report)
        .args(extra));
    r.expect_ok();
    (r.last_line().to_string(), json(&fs::read(&report).unwrap()))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The populate() image plus an incompressible file, so its layer spans
/// several upload chunks.
fn build_repro(tmp: &Path) -> (PathBuf, String) {
    let src = tmp.join("src");
    populate(&src, false);
    let mut x: u64 = 7;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect();
    write_file(&src.join("app/share/noise.bin"), noise, 0o644);
    let layout = tmp.join("layout");
    // Without attestations, so the counts below are the image's own blobs;
    // `build_push_sends_the_attestations_too` covers those.
    let r = run(stele()
        .arg("build")
        .arg(src.join("recipe.toml"))
        .args(["--attest", "none", "-o"])
        .arg(&layout));
    r.expect_ok();
    (layout, r.last_line().to_string())
}

fn blob_bytes_total(layout: &Path) -> u64 {
    let l = check_layout(layout);
    let mut total = l.manifest["config"]["size"].as_u64().unwrap();
    for layer in l.manifest["layers"].as_array().unwrap() {
        total += layer["size"].as_u64().unwrap();
    }
    total
}

#[test]
fn push_twice_sends_nothing_new_and_skopeo_and_stele_pull_the_same_digest() {
    if !have_registry() || !have_tool("skopeo") {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let (layout, digest) = build_repro(tmp.path());
    let reference = format!("{}/stele/repro:v1", reg.host());

    // Chunks of 64 KiB: the ~200 KB layer goes up in PATCHes.
    let (line, first) = push(tmp.path(), &layout, &reference, &["--chunk-size", "65536"]);
    assert_eq!(line, format!("{reference}@{digest}"));
    assert_eq!(first["blobs_uploaded"], 2, "{first}");
    assert_eq!(
        first["bytes_uploaded"],
        blob_bytes_total(&layout),
        "{first}"
    );
    assert_eq!(first["blobs_existing"], 0, "{first}");
    // The access log shows the chunks: ~200 KB in 64 KiB PATCHes.
    let patches = reg
        .log()
        .matches("\"PATCH /v2/stele/repro/blobs/uploads/")
        .count();
    assert!(patches >= 3, "expected chunked upload: {}", reg.log());

    let (line, second) = push(tmp.path(), &layout, &reference, &[]);
    assert_eq!(line, format!("{reference}@{digest}"));
    assert_eq!(second["blobs_uploaded"], 0, "{second}");
    assert_eq!(second["bytes_uploaded"], 0, "{second}");
    assert_eq!(second["blobs_existing"], 2, "{second}");

    // skopeo reads the same manifest bytes back.
    let copied = tmp.path().join("skopeo-copy");
    let r = run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:v1", copied.display())));
    r.expect_ok();
    // skopeo's index.json has no mediaType, which check_layout insists on.
    let index = json(&fs::read(copied.join("index.json")).unwrap());
    assert_eq!(index["manifests"][0]["digest"], digest.as_str(), "{index}");
    blob(&copied, &digest);
    assert_eq!(sha256_digest(&skopeo_raw(&reference)), digest);

    // stele pull writes a layout with the same digest and the same blobs.
    let pulled = tmp.path().join("pulled");
    let cache = tmp.path().join("cache");
    let r = run(stele_in(tmp.path())
        .args(["pull", &reference, "-o"])
        .arg(&pulled)
        .arg("--cache-dir")
        .arg(&cache));
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
    check_layout(&pulled);
    assert_eq!(
        snapshot(&pulled.join("blobs")),
        snapshot(&layout.join("blobs"))
    );

    // Pinned by digest, from a warm cache, into another folder.
    let again = tmp.path().join("again");
    let r = run(stele_in(tmp.path())
        .arg("pull")
        .arg(format!("{}/stele/repro@{digest}", reg.host()))
        .arg("-o")
        .arg(&again)
        .arg("--cache-dir")
        .arg(&cache));
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
    check_layout(&again);
}

#[test]
fn a_mount_hint_moves_blobs_between_repositories_without_uploading() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let (layout, digest) = build_repro(tmp.path());
    let (_, first) = push(
        tmp.path(),
        &layout,
        &format!("{}/team/a:v1", reg.host()),
        &[],
    );
    assert_eq!(first["blobs_uploaded"], 2, "{first}");

    let target = format!("{}/team/b:v1", reg.host());
    let (line, mounted) = push(tmp.path(), &layout, &target, &["--mount-from", "team/a"]);
    assert_eq!(line, format!("{target}@{digest}"));
    assert_eq!(mounted["blobs_mounted"], 2, "{mounted}");
    assert_eq!(mounted["blobs_uploaded"], 0, "{mounted}");
    assert_eq!(mounted["bytes_uploaded"], 0, "{mounted}");

    // A hint naming a repository without the blobs falls back to uploading.
    let (_, fallback) = push(
        tmp.path(),
        &layout,
        &format!("{}/team/c:v1", reg.host()),
        &["--mount-from", "team/empty"],
    );
    assert_eq!(fallback["blobs_mounted"], 0, "{fallback}");
    assert_eq!(fallback["blobs_uploaded"], 2, "{fallback}");
}

/// A docker auth file with alice's credentials for `host`.
fn auth_file_alice(dir: &Path, host: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = dir.join("auth.json");
    let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    fs::write(
        &auth,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    auth
}

#[test]
fn basic_auth_from_an_auth_file() {
    if !have_registry() || !have_tool("perl") {
        return;
    }
    let tmp = tempdir();
    let Some(htpasswd) = htpasswd_alice(tmp.path()) else {
        return;
    };
    let reg = DockerRegistry::start(Some(&htpasswd));
    let (layout, digest) = build_repro(tmp.path());
    let reference = format!("{}/private/app:v1", reg.host());

    let r = run(stele_in(tmp.path())
        .arg("push")
        .arg(&layout)
        .arg(&reference));
    r.expect_fail();
    assert!(
        r.stderr.contains("401") && r.stderr.contains("credentials"),
        "{}",
        r.stderr
    );

    use base64::Engine as _;
    let auth = tmp.path().join("auth.json");
    let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let mut f = fs::File::create(&auth).unwrap();
    write!(f, r#"{{"auths":{{"{}":{{"auth":"{b64}"}}}}}}"#, reg.host()).unwrap();
    let r = run(stele_in(tmp.path())
        .env("REGISTRY_AUTH_FILE", &auth)
        .arg("push")
        .arg(&layout)
        .arg(&reference));
    r.expect_ok();
    assert_eq!(r.last_line(), format!("{reference}@{digest}"));

    let r = run(stele_in(tmp.path())
        .args(["pull", &reference, "--authfile"])
        .arg(&auth)
        .arg("-o")
        .arg(tmp.path().join("pulled"))
        .arg("--cache-dir")
        .arg(tmp.path().join("cache")));
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
}

#[test]
fn referrers_get_the_fallback_tag_on_distribution() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let (layout, digest) = build_repro(tmp.path());
    // An SBOM-like artifact about the image, listed in index.json beside it.
    let put = |bytes: &[u8]| {
        let d = sha256_digest(bytes);
        fs::write(layout.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
        d
    };
    let top = check_layout(&layout).index["manifests"][0].clone();
    let empty = put(b"{}");
    let content = b"an sbom\n";
    let layer = put(content);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": layer, "size": content.len()}],
        "subject": {"mediaType": top["mediaType"], "digest": top["digest"], "size": top["size"]},
    }))
    .unwrap();
    let artifact = put(&manifest);
    let index_path = layout.join("index.json");
    let mut index = json(&fs::read(&index_path).unwrap());
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": artifact, "size": manifest.len(),
            "artifactType": "application/vnd.example.sbom",
        }));
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let reference = format!("{}/stele/attested:v1", reg.host());
    let (line, report) = push(tmp.path(), &layout, &reference, &[]);
    assert_eq!(line, format!("{reference}@{digest}"));
    assert_eq!(report["referrers_pushed"], 1, "{report}");

    let tag_url = format!(
        "http://{}/v2/stele/attested/manifests/sha256-{}",
        reg.host(),
        &digest[7..]
    );
    let fetch = || {
        let body = ureq::get(&tag_url)
            .set("Accept", "application/vnd.oci.image.index.v1+json")
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        json(body.as_bytes())
    };
    let listed = fetch();
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["manifests"][0]["digest"], artifact.as_str());
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    // The artifact itself is there by digest.
    let got = ureq::get(&format!(
        "http://{}/v2/stele/attested/manifests/{artifact}",
        reg.host()
    ))
    .set("Accept", "application/vnd.oci.image.manifest.v1+json")
    .call()
    .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut got.into_reader(), &mut bytes).unwrap();
    assert_eq!(bytes, manifest);

    // Pushing again leaves the list as it was.
    push(tmp.path(), &layout, &reference, &[]);
    assert_eq!(fetch(), listed);
}

#[test]
fn podman_pulls_and_runs_what_stele_pushed() {
    if !have_registry() || !have_tool("podman") || !have_tool("runc") {
        return;
    }
    let tmp = crate::support::podman::lowercase_tempdir();
    let src = tmp.path().join("src");
    let Some(_) = crate::support::podman::compile_hello(&src) else {
        return;
    };
    fs::write(
        src.join("recipe.toml"),
        r#"
[image]
name = "hello"
epoch = 1700000000

[[files]]
src = "hello"
dest = "/usr/local/bin/hello"

[config]
entrypoint = ["/usr/local/bin/hello"]
cmd = ["pushed"]
"#,
    )
    .unwrap();
    let layout = tmp.path().join("layout");
    let digest = build(&src.join("recipe.toml"), &layout);
    let reg = DockerRegistry::start(None);
    let reference = format!("{}/stele/hello:v1", reg.host());
    let (line, _) = push(tmp.path(), &layout, &reference, &[]);
    assert_eq!(line, format!("{reference}@{digest}"));

    let podman = |args: &[&str]| run(crate::support::podman::podman(tmp.path()).args(args));
    let r = podman(&[
        "pull",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    r.expect_ok();
    let r = podman(&["image", "inspect", "--format", "{{.Digest}}", &reference]);
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
    let r = crate::support::podman::podman_run(tmp.path(), &reference);
    r.expect_ok();
    assert_eq!(
        r.stdout, "hello from stele\nuid=0 gid=0\ncwd=/\ngreeting=(none)\narg=pushed\n",
        "{}",
        r.stderr
    );
}

/// `build --push` sends the image and its attestations; `verify` reads it
/// back from the registry; a recipe pinned to the pushed image builds on
/// it (the base's layers pass through untouched), again offline from the
/// cache, and runs.
#[test]
fn build_push_then_a_recipe_builds_on_the_pushed_base_and_runs() {
    if !have_registry() || !have_tool("podman") || !have_tool("runc") {
        return;
    }
    let tmp = crate::support::podman::lowercase_tempdir();
    let src = tmp.path().join("src");
    let Some(_) = crate::support::podman::compile_hello(&src) else {
        return;
    };
    fs::write(
        src.join("base.toml"),
        "[image]\nname = \"base\"\nepoch = 1700000000\n\n[[files]]\nsrc = \"hello\"\ndest = \"/usr/local/bin/hello\"\n\n[config]\nentrypoint = [\"/usr/local/bin/hello\"]\ncmd = [\"from-base\"]\nenv = { GREETING = \"inherited\" }\n",
    )
    .unwrap();
    let reg = DockerRegistry::start(None);
    let reference = format!("{}/stele/base:v1", reg.host());
    let cache = tmp.path().join("cache");
    let r = run(stele_in(tmp.path())
        .arg("build")
        .arg(src.join("base.toml"))
        .arg("-o")
        .arg(tmp.path().join("base"))
        .args(["--push", &reference]));
    r.expect_ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    let base_digest = lines.last().unwrap().to_string();
    assert_eq!(lines[lines.len() - 2], format!("{reference}@{base_digest}"));
    assert!(r.stderr.contains("pushed:"), "{}", r.stderr);

    // The three attestations are listed under the referrers fallback tag.
    let tag_url = format!(
        "http://{}/v2/stele/base/manifests/sha256-{}",
        reg.host(),
        &base_digest[7..]
    );
    let listed = json(
        ureq::get(&tag_url)
            .set("Accept", "application/vnd.oci.image.index.v1+json")
            .call()
            .unwrap()
            .into_string()
            .unwrap()
            .as_bytes(),
    );
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 3, "{listed}");

    // verify reads the pushed image from the registry.
    let r = run(stele_in(tmp.path())
        .arg("verify")
        .arg(format!("docker://{reference}"))
        .args(["--digest", &base_digest, "--cache-dir"])
        .arg(&cache));
    r.expect_ok();

    fs::write(
        src.join("child.toml"),
        format!("[image]\nname = \"child\"\nepoch = 1700000000\n\n[base]\nimage = \"{}/stele/base@{base_digest}\"\n\n[[paths]]\npath = \"/etc/motd\"\nkind = \"file\"\ncontent = \"child layer\\n\"\n\n[config]\ncmd = [\"from-child\"]\n", reg.host()),
    )
    .unwrap();
    let child = tmp.path().join("child");
    let build_child = |out: &Path, extra: &[&str]| {
        let r = run(stele_in(tmp.path())
            .arg("build")
            .arg(src.join("child.toml"))
            .arg("-o")
            .arg(out)
            .arg("--cache-dir")
            .arg(&cache)
            .args(extra));
        r.expect_ok();
        r.last_line().to_string()
    };
    let child_digest = build_child(&child, &[]);
    let base_l = check_layout(&tmp.path().join("base"));
    let child_l = check_layout(&child);
    assert_eq!(child_l.manifest["layers"][0], base_l.manifest["layers"][0]);
    assert_eq!(child_l.layers.len(), 2);
    assert_eq!(
        child_l.manifest["annotations"]["org.opencontainers.image.base.name"],
        format!("{}/stele/base", reg.host()).as_str()
    );

    // The registry is gone: the cache alone rebuilds it.
    drop(reg);
    let again = build_child(&tmp.path().join("again"), &["--offline"]);
    assert_eq!(again, child_digest);

    let r = crate::support::podman::podman_run(
        &tmp.path().join("p"),
        &format!("oci:{}:latest", child.display()),
    );
    r.expect_ok();
    assert_eq!(
        r.stdout,
        "hello from stele\nuid=0 gid=0\ncwd=/\ngreeting=inherited\narg=from-child\nmotd=child layer\n",
        "{}",
        r.stderr
    );
}

/// `stele push RECIPE REF` builds first: the pushed digest is the one
/// `stele build` prints for the same recipe.
#[test]
fn push_a_recipe_builds_it_first() {
    if !have_registry() {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let digest = build(&src.join("recipe.toml"), &tmp.path().join("layout"));
    let reg = DockerRegistry::start(None);
    let reference = format!("{}/stele/from-recipe:v2", reg.host());
    let r = run(stele_in(tmp.path())
        .arg("push")
        .arg(src.join("recipe.toml"))
        .arg(&reference));
    r.expect_ok();
    assert_eq!(r.last_line(), format!("{reference}@{digest}"));
    assert!(r.stderr.contains("3 referrer(s)"), "{}", r.stderr);
}

/// A source tree built with `--sign-key` and pushed to `reference`; every
/// stele run here gets its own cache under `tmp`. Returns the public key
/// and the image digest.
pub(crate) fn build_signed_and_push(tmp: &Path, reference: &str) -> (PathBuf, String) {
    let r = run(stele_in(tmp)
        .args(["key", "generate"])
        .arg(tmp.join("signer.key")));
    r.expect_ok();
    let src = tmp.join("src");
    populate(&src, false);
    let r = run(stele_in(tmp)
        .arg("build")
        .arg(src.join("recipe.toml"))
        .arg("-o")
        .arg(tmp.join("built"))
        .arg("--sign-key")
        .arg(tmp.join("signer.key"))
        .args(["--push", reference, "--cache-dir"])
        .arg(tmp.join("cache-build")));
    r.expect_ok();
    // Provenance and two SBOMs as Sigstore bundles, the SBOMs also plain
    // for scanners, and the image's signature (cosign's simple signing).
    assert!(r.stderr.contains("6 referrer(s)"), "{}", r.stderr);
    (tmp.join("signer.pub"), r.last_line().to_string())
}

/// `stele verify TARGET --key PUB [--digest D]` with a cache of its own.
fn verify_with_key(tmp: &Path, target: &str, key: &Path, digest: Option<&str>) -> Run {
    let cache = tmp.join(format!("cache-verify-{}", rand_suffix()));
    let mut c = stele_in(tmp);
    c.arg("verify").arg(target).arg("--key").arg(key);
    if let Some(d) = digest {
        c.args(["--digest", d]);
    }
    run(c.arg("--cache-dir").arg(cache))
}

/// The digests the fallback tag of `digest` lists in `repo`.
fn fallback_listed(host: &str, repo: &str, digest: &str) -> Vec<String> {
    let body = ureq::get(&format!(
        "http://{host}/v2/{repo}/manifests/sha256-{}",
        &digest[7..]
    ))
    .set("Accept", "application/vnd.oci.image.index.v1+json")
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    json(body.as_bytes())["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Distribution 2.8 has no referrers API: the attestations `build --push`
/// lists under the fallback tag are what `verify`, `pull` and a
/// registry-to-registry `push` find, from empty caches; once the registry
/// loses them, `verify` and `pull` say which.
#[test]
fn attestations_travel_through_the_registry_by_the_fallback_tag() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let tmp = tmp.path();
    let reference = format!("{}/stele/signed:v1", reg.host());
    let (key, digest) = build_signed_and_push(tmp, &reference);
    let listed = fallback_listed(&reg.host(), "stele/signed", &digest);
    assert_eq!(listed.len(), 6, "{listed:?}");

    let r = verify_with_key(tmp, &format!("docker://{reference}"), &key, Some(&digest));
    r.expect_ok();
    assert!(
        reg.log().contains(&format!(
            "\"GET /v2/stele/signed/manifests/sha256-{}",
            &digest[7..]
        )),
        "verify read the fallback tag: {}",
        reg.log()
    );

    // pull writes the attestations into the layout beside the image.
    let pulled = tmp.join("pulled");
    let r = run(stele_in(tmp)
        .args(["pull", &reference, "-o"])
        .arg(&pulled)
        .arg("--cache-dir")
        .arg(tmp.join("cache-pull")));
    r.expect_ok();
    assert_eq!(r.last_line(), digest);
    let index = json(&fs::read(pulled.join("index.json")).unwrap());
    let entries: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(entries.len(), 7, "{index}");
    for d in &listed {
        assert!(entries.contains(&d.as_str()), "{d} missing from {index}");
    }
    verify_with_key(tmp, pulled.to_str().unwrap(), &key, Some(&digest)).expect_ok();

    // Registry to registry: the referrers go along.
    let copy = format!("{}/stele/copy:v1", reg.host());
    let report = tmp.join("push-report.json");
    let r = run(stele_in(tmp)
        .arg("push")
        .arg(format!("docker://{reference}"))
        .arg(&copy)
        .arg("--report")
        .arg(&report)
        .arg("--cache-dir")
        .arg(tmp.join("cache-push")));
    r.expect_ok();
    assert!(r.stderr.contains("6 referrer(s)"), "{}", r.stderr);
    let report = json(&fs::read(&report).unwrap());
    assert_eq!(report["referrers_pushed"], 6, "{report}");
    verify_with_key(tmp, &format!("docker://{copy}"), &key, Some(&digest)).expect_ok();

    // The signed provenance's layer rots in the registry's storage: verify
    // names the blob, and the image has no provenance the key signed.
    let provenance = listed
        .iter()
        .find(|d| {
            let m = ureq::get(&format!(
                "http://{}/v2/stele/signed/manifests/{d}",
                reg.host()
            ))
            .set("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call()
            .unwrap()
            .into_string()
            .unwrap();
            let m = json(m.as_bytes());
            m["annotations"]["dev.stele.attestation"] == "provenance"
        })
        .unwrap();
    let manifest = ureq::get(&format!(
        "http://{}/v2/stele/signed/manifests/{provenance}",
        reg.host(),
    ))
    .set("Accept", "application/vnd.oci.image.manifest.v1+json")
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    let layer = json(manifest.as_bytes())["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = reg.dir().join(format!(
        "data/docker/registry/v2/blobs/sha256/{}/{}/data",
        &layer[7..9],
        &layer[7..]
    ));
    let mut bytes = fs::read(&stored).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&stored, bytes).unwrap();
    let r = verify_with_key(tmp, &format!("docker://{reference}"), &key, Some(&digest));
    r.expect_code(1);
    assert!(
        r.stdout.contains(&layer) && r.stdout.contains("FAIL  signed provenance"),
        "verify names the damaged blob {layer}: {}{}",
        r.stdout,
        r.stderr
    );

    // The registry loses the attestations; the fallback tag still lists
    // them, and verify names the ones it cannot read.
    for d in &listed {
        let url = format!("http://{}/v2/stele/signed/manifests/{d}", reg.host());
        ureq::delete(&url).call().unwrap();
    }
    let r = verify_with_key(tmp, &format!("docker://{reference}"), &key, Some(&digest));
    r.expect_code(1);
    let said = format!("{}{}", r.stdout, r.stderr);
    for d in &listed {
        assert!(said.contains(d.as_str()), "verify names {d}: {said}");
    }
    let r = run(stele_in(tmp)
        .args(["pull", &reference, "-o"])
        .arg(tmp.join("pulled-again"))
        .arg("--cache-dir")
        .arg(tmp.join("cache-pull-again")));
    // Pull takes the image, warns about the attestations it could not
    // take, and lists none it lacks (issue 28: attestations are
    // secondary to pulling the image; verify stays strict).
    r.expect_ok();
    assert!(
        r.stderr.contains("warning")
            && r.stderr.contains("attestation")
            && listed.iter().all(|d| r.stderr.contains(d.as_str())),
        "{}",
        r.stderr
    );
    let index = json(&fs::read(tmp.join("pulled-again/index.json")).unwrap());
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(r.last_line(), digest);
}

/// A registry with the referrers API (distribution-spec 1.1) lists the
/// attestations itself: verify finds them there, without a fallback tag.
#[test]
fn attestations_are_found_by_the_referrers_api() {
    let reg = crate::support::registry::FakeRegistry::start(crate::support::registry::Auth::None);
    reg.enable_referrers_api();
    let tmp = tempdir();
    let tmp = tmp.path();
    let reference = format!("{}/stele/api:v1", reg.host());
    let (key, digest) = build_signed_and_push(tmp, &reference);
    let r = verify_with_key(tmp, &format!("docker://{reference}"), &key, Some(&digest));
    r.expect_ok();
    let log = reg.log();
    assert!(
        log.iter()
            .any(|l| l.method == "GET" && l.path == format!("/v2/stele/api/referrers/{digest}")),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.path.contains("/manifests/sha256-")
            && !l.path.ends_with(".sig")
            && !l.path.ends_with(".att")),
        "no fallback tag with the API (cosign's .sig and .att tags are not one): {log:#?}"
    );
}

/// A recipe of one locked package from a signed repository the test
/// serves, and its lock: what a CI job builds with `--locked`.
fn locked_project(dir: &Path) -> (PathBuf, AptRepo, crate::support::http::HttpServer, String) {
    let repo = AptRepo::builder()
        .suite("stable", &["amd64"])
        .deb(
            "stable",
            Deb::new("hello", "1.0-1", "amd64")
                .entry(DebEntry::dir("usr/share/hello"))
                .entry(DebEntry::file("usr/share/hello/greeting", "hello\n")),
        )
        .build();
    let (url, server) = repo.serve();
    fs::copy(repo.keyring_path(), dir.join("keyring.gpg")).unwrap();
    let recipe = dir.join("app.toml");
    fs::write(
        &recipe,
        r#"[image]
name = "app"
tag = "v1"
epoch = 1700000000

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = ["hello"]
"#,
    )
    .unwrap();
    (recipe, repo, server, url)
}

/// The path the mission's three users share, with real parts: CI builds
/// with `--locked`, signs and pushes to one registry; the image is copied
/// to a second registry that wants credentials; a deploy job with an empty
/// cache verifies it there by digest and key; losing the attestations
/// there fails that check; skopeo still copies the image.
#[test]
fn ci_builds_and_pushes_deploy_verifies_at_another_registry() {
    if !have_registry() || !have_tool("perl") || !have_tool("skopeo") {
        return;
    }
    let tmp = tempdir();
    let tmp = tmp.path();
    let Some(htpasswd) = htpasswd_alice(tmp) else {
        return;
    };
    let first = DockerRegistry::start(None);
    let second = DockerRegistry::start(Some(&htpasswd));
    let auth = auth_file_alice(tmp, &second.host());
    let (recipe, _repo, _server, url) = locked_project(tmp);

    // The developer locks and commits; CI asks whether the lock is current.
    let r = run(stele_in(tmp)
        .arg("lock")
        .arg(&recipe)
        .arg("--cache-dir")
        .arg(tmp.join("cache-dev"))
        .env("STELE_MIRROR_LOCAL", &url));
    r.expect_ok();
    run(stele_in(tmp).args(["lock", "--check"]).arg(&recipe)).expect_code(0);

    // CI: --locked, signed, pushed; the JSON document is what it records.
    run(stele_in(tmp)
        .args(["key", "generate"])
        .arg(tmp.join("ci.key")))
    .expect_ok();
    let r = run(stele_in(tmp)
        .arg("build")
        .arg(&recipe)
        .args(["--locked", "--json", "--sign-key"])
        .arg(tmp.join("ci.key"))
        .args(["--push", &format!("{}/team/app", first.host())])
        .arg("-o")
        .arg(tmp.join("ci-out"))
        .arg("--cache-dir")
        .arg(tmp.join("cache-ci"))
        .env("STELE_MIRROR_LOCAL", &url));
    r.expect_ok();
    let doc = json(r.stdout.as_bytes());
    let digest = doc["digest"].as_str().unwrap().to_string();
    let pushed = format!("{}/team/app:v1@{digest}", first.host());
    assert_eq!(doc["pushed"], pushed.as_str(), "the image's own tag");
    assert_eq!(doc["lock"]["status"], "fresh");
    let attestations = doc["attestations"].as_array().unwrap();
    assert_eq!(attestations.len(), 6);
    // The signed: 3 bundles and the image's signature; the 2 plain SBOMs.
    assert_eq!(
        attestations.iter().filter(|a| a["signed"] == true).count(),
        4,
        "{attestations:?}"
    );

    // Promotion: registry to registry, no tag given: the image keeps v1.
    let r = run(stele_in(tmp)
        .arg("push")
        .arg(format!("docker://{}/team/app:v1", first.host()))
        .arg(format!("{}/prod/app", second.host()))
        .arg("--authfile")
        .arg(&auth)
        .arg("--cache-dir")
        .arg(tmp.join("cache-promote")));
    r.expect_ok();
    assert_eq!(
        r.last_line(),
        format!("{}/prod/app:v1@{digest}", second.host())
    );
    assert!(r.stderr.contains("6 referrer(s)"), "{}", r.stderr);

    // Deploy: another machine, an empty cache, the pin and the key.
    let target = format!("docker://{}/prod/app:v1", second.host());
    let deploy = |name: &str| {
        run(stele_in(tmp)
            .arg("verify")
            .arg(&target)
            .args(["--digest", &digest, "--key"])
            .arg(tmp.join("ci.pub"))
            .arg("--authfile")
            .arg(&auth)
            .arg("--cache-dir")
            .arg(tmp.join(name)))
    };
    let r = deploy("cache-deploy");
    r.expect_code(0);
    assert!(r.stdout.contains("signature"), "{}", r.stdout);

    // skopeo reads the promoted image as any registry image.
    let copied = tmp.join("skopeo-copy");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            "alice:s3cret",
        ])
        .arg(&target)
        .arg(format!("oci:{}:v1", copied.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The attestations are deleted at the second registry: deploy fails.
    let listed = {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let body = ureq::get(&format!(
            "http://{}/v2/prod/app/manifests/sha256-{}",
            second.host(),
            &digest[7..]
        ))
        .set("Accept", "application/vnd.oci.image.index.v1+json")
        .set("Authorization", &format!("Basic {basic}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
        let listed: Vec<String> = json(body.as_bytes())["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_string())
            .collect();
        for d in &listed {
            ureq::delete(&format!(
                "http://{}/v2/prod/app/manifests/{d}",
                second.host()
            ))
            .set("Authorization", &format!("Basic {basic}"))
            .call()
            .unwrap();
        }
        listed
    };
    assert_eq!(listed.len(), 6);
    let r = deploy("cache-deploy-again");
    r.expect_code(1);
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(
        listed.iter().all(|d| said.contains(d.as_str())),
        "verify names the lost attestations: {said}"
    );
}

/// `stele push LAYOUT REPO` without a tag keeps the layout's own tag.
#[test]
fn push_keeps_the_tag_of_the_layout() {
    if !have_registry() {
        return;
    }
    let reg = DockerRegistry::start(None);
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let layout = tmp.path().join("tagged");
    let digest = build_with(&src.join("recipe.toml"), &layout, &["--tag", "v7"]);
    let r = run(stele_in(tmp.path())
        .arg("push")
        .arg(&layout)
        .arg(format!("{}/tags/app", reg.host())));
    r.expect_ok();
    assert_eq!(
        r.last_line(),
        format!("{}/tags/app:v7@{digest}", reg.host())
    );
    assert!(r.stderr.contains("`v7`"), "{}", r.stderr);

    // The JSON documents CI reads say the same.
    let r = run(stele_in(tmp.path())
        .arg("push")
        .arg(&layout)
        .arg(format!("{}/tags/again", reg.host()))
        .arg("--json"));
    r.expect_ok();
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["digest"], digest.as_str());
    assert_eq!(
        doc["pushed"],
        format!("{}/tags/again:v7@{digest}", reg.host()).as_str()
    );
    assert_eq!(doc["referrers"].as_array().unwrap().len(), 3);
    assert!(doc["report"]["blobs_uploaded"].as_u64().is_some(), "{doc}");
    let r = run(stele_in(tmp.path())
        .args([
            "pull",
            &format!("{}/tags/again:v7", reg.host()),
            "--json",
            "-o",
        ])
        .arg(tmp.path().join("pulled"))
        .arg("--cache-dir")
        .arg(tmp.path().join("cache-pull")));
    r.expect_ok();
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["digest"], digest.as_str());
    assert_eq!(doc["tag"], "v7");
    assert_eq!(doc["referrers"].as_array().unwrap().len(), 3);
    let layers = doc["images"][0]["layers"].as_array().unwrap();
    assert!(!layers.is_empty() && layers.iter().all(|l| l["size"].as_u64().unwrap() > 0));
}
