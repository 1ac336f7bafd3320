//! The example recipes against the machine's own Debian mirror, through
//! its apt configuration (`mirror = "host"`): what a user's first command
//! does. Skipped, with the reason printed, where the machine has no apt
//! source for the suite the recipes name (even under CI: a machine without
//! apt sources cannot run them).

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `mirror = "host"` can find a `deb` source for `suite`.
fn host_has_suite(suite: &str) -> bool {
    let sources = stele::apt::hostconf::host_sources(Path::new("/")).unwrap_or_default();
    let found = stele::apt::hostconf::find_host_source(&sources, suite).is_some();
    if !found {
        skip(&format!(
            "this machine's apt configuration has no `deb` source for {suite}; the live tests need one"
        ));
    }
    found
}

/// Copies an example recipe and its lock into a fresh folder, so the test
/// never writes into the checkout.
fn example(name: &str, into: &Path) -> PathBuf {
    for ext in ["toml", "lock"] {
        fs::copy(
            repo_root().join(format!("recipes/{name}.{ext}")),
            into.join(format!("{name}.{ext}")),
        )
        .unwrap_or_else(|e| panic!("recipes/{name}.{ext}: {e}"));
    }
    into.join(format!("{name}.toml"))
}

fn build_locked(recipe: &Path, out: &Path, cache: &Path) -> Run {
    let r = run(stele()
        .arg("build")
        .arg(recipe)
        .arg("--locked")
        .arg("--cache-dir")
        .arg(cache)
        .arg("-o")
        .arg(out));
    r.expect_ok();
    r
}

#[test]
fn hello_builds_from_the_host_mirror_and_runs() {
    if !host_has_suite("bookworm") || !have_tool("podman") {
        return;
    }
    let tmp = crate::support::podman::lowercase_tempdir();
    let recipe = example("hello", tmp.path());
    let out = tmp.path().join("hello");
    let cache = tmp.path().join("cache");
    let first = build_locked(&recipe, &out, &cache);
    let r = crate::support::podman::podman_run(
        &tmp.path().join("p"),
        &format!("oci:{}:latest", out.display()),
    );
    r.expect_ok();
    assert_eq!(r.stdout, "hello from stele\n", "{}", r.stderr);

    // The committed lock is what it says: the same digest again, offline.
    let again = run(stele()
        .arg("build")
        .arg(&recipe)
        .args(["--locked", "--offline", "--cache-dir"])
        .arg(&cache)
        .arg("-o")
        .arg(tmp.path().join("again")));
    again.expect_ok();
    assert_eq!(again.last_line(), first.last_line());

    // What a release engineer runs before deploying: the digest pin, every
    // blob, and a rebuild from the recipe and lock, offline from the cache.
    verify_rebuild(&out, &recipe, first.last_line(), &cache);
}

/// `stele verify OUT --digest D --rebuild RECIPE --offline` passes.
fn verify_rebuild(out: &Path, recipe: &Path, digest: &str, cache: &Path) {
    let r = run(stele()
        .arg("verify")
        .arg(out)
        .args(["--digest", digest, "--rebuild"])
        .arg(recipe)
        .args(["--offline", "--cache-dir"])
        .arg(cache));
    r.expect_ok();
    assert!(r.stdout.contains("rebuild"), "{}", r.stdout);
}

#[test]
fn debian_base_builds_for_amd64_and_arm64() {
    if !host_has_suite("bookworm") {
        return;
    }
    let tmp = tempdir();
    let recipe = example("debian-base", tmp.path());
    let out = tmp.path().join("base");
    let cache = tmp.path().join("cache");
    let r = build_locked(&recipe, &out, &cache);
    let index = json(&fs::read(out.join("index.json")).unwrap());
    let top = &index["manifests"][0];
    assert_eq!(top["digest"], r.last_line());
    let image_index = json(&descriptor_blob(&out, top));
    let manifests = image_index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (m, loader) in manifests
        .iter()
        .zip(["lib64/ld-linux-x86-64.so.2", "lib/ld-linux-aarch64.so.1"])
    {
        let manifest = json(&descriptor_blob(&out, m));
        let mut paths = Vec::new();
        for l in manifest["layers"].as_array().unwrap() {
            let mt = l["mediaType"].as_str().unwrap();
            for e in tar_entries(&decompress(mt, &descriptor_blob(&out, l))) {
                paths.push(e.path);
            }
        }
        // With merged /usr the loader lives under usr/ and lib* are links.
        let usr_loader = format!("usr/{loader}");
        for want in [
            usr_loader.as_str(),
            "etc/ssl/certs/ca-certificates.crt",
            "usr/share/zoneinfo/UTC",
            "etc/services",
            "etc/passwd",
            "var/lib/dpkg/status.d/libc6",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "{}: {want} missing",
                m["platform"]
            );
        }
    }
    sboms_are_valid_and_name_the_packages(&out, &index);
    verify_rebuild(&out, &recipe, r.last_line(), &cache);
}

/// The SBOMs of a real package build pass the independent validators and
/// list what the lock installed, with purls and the licenses the packages'
/// copyright files state.
fn sboms_are_valid_and_name_the_packages(out: &Path, index: &serde_json::Value) {
    if !attest::python_has(&["spdx_tools", "cyclonedx", "jsonschema", "packageurl"]) {
        return;
    }
    let dir = tempdir();
    let mut checked = 0;
    for (i, d) in index["manifests"].as_array().unwrap()[1..]
        .iter()
        .enumerate()
    {
        let manifest = json(&descriptor_blob(out, d));
        let content = descriptor_blob(out, &manifest["layers"][0]);
        let (script, ext) = match d["artifactType"].as_str().unwrap() {
            "application/spdx+json" => ("validate_spdx.py", "spdx.json"),
            "application/vnd.cyclonedx+json" => ("validate_cyclonedx.py", "cdx.json"),
            _ => continue,
        };
        let p = dir.path().join(format!("{i}.{ext}"));
        fs::write(&p, &content).unwrap();
        let (ok, text) = attest::tool(script, &[&p]);
        assert!(ok, "{script} rejected the SBOM of a real build:\n{text}");
        let doc = String::from_utf8(content).unwrap();
        assert!(doc.contains("pkg:deb/debian/libc6@"), "libc6 purl missing");

        checked += 1;
    }
    assert_eq!(checked, 4, "SPDX and CycloneDX for two platforms");
}
