//! `stele verify` over real builds: a clean build verifies, with and
//! without keys; each kind of tampering is caught by the check meant for
//! it, named, with exit 1; a rebuild is compared; what cannot be checked
//! exits 2.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::edit::*;
use crate::support::tree::populate;
use crate::support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

fn verify(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Run {
    let mut c = stele();
    c.arg("verify");
    for a in args {
        c.arg(a);
    }
    run(&mut c)
}

/// The check lines of a text report with `status` (`pass`, `FAIL`, `skip`).
fn lines<'a>(r: &'a Run, status: &str) -> Vec<&'a str> {
    r.stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("{status}  ")))
        .collect()
}

/// A source tree and recipe, built to `out` (signed with `key` when given).
fn built(dir: &Path, key: Option<&Path>) -> (PathBuf, String) {
    let src = dir.join("src");
    if !src.exists() {
        populate(&src, false);
    }
    let out = dir.join("out");
    let mut c = stele();
    c.arg("build")
        .arg(src.join("recipe.toml"))
        .arg("-o")
        .arg(&out);
    if let Some(k) = key {
        c.arg("--sign-key").arg(k);
    }
    let r = run(&mut c);
    r.expect_ok();
    (out, r.last_line().to_string())
}

/// `stele key generate DIR/NAME.key`; returns the public key path and id.
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let private = dir.join(format!("{name}.key"));
    let r = run(stele().arg("key").arg("generate").arg(&private));
    r.expect_ok();
    (dir.join(format!("{name}.pub")), r.last_line().to_string())
}

fn checks(doc: &Value) -> Vec<(String, String, String)> {
    doc["checks"]
        .as_array()
        .expect("checks is a list")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_clean_build_verifies_with_and_without_keys() {
    let tmp = tempdir();
    let (public, keyid) = keypair(tmp.path(), "signer");
    let (other, _) = keypair(tmp.path(), "other");
    let (out, digest) = built(tmp.path(), Some(&tmp.path().join("signer.key")));

    let r = verify(&[&out]);
    r.expect_code(0);
    assert!(r.stdout.starts_with("VERIFIED "), "{}", r.stdout);
    assert!(lines(&r, "FAIL").is_empty(), "{}", r.stdout);
    // Without a key, signatures are reported and not checked.
    let sig = lines(&r, "skip")
        .into_iter()
        .find(|l| l.contains("attestation provenance (bundle) signature"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(sig.contains("not checked") && sig.contains(&keyid), "{sig}");

    // With the key (and a wrong one beside it: any one of them will do).
    let r = verify(&[
        &out,
        &"--key",
        &other,
        &"--key",
        &public,
        &"--digest",
        &digest,
    ]);
    r.expect_code(0);
    let signed = lines(&r, "pass")
        .into_iter()
        .filter(|l| l.contains("(bundle)") && l.contains(&format!("signed by key {keyid}")))
        .count();
    assert_eq!(signed, 3, "provenance and two SBOMs:\n{}", r.stdout);
    // The plain SBOM copies for scanners are listed and ignored.
    let ignored = lines(&r, "skip")
        .into_iter()
        .filter(|l| l.contains("unsigned") && l.contains("ignored"))
        .count();
    assert_eq!(ignored, 2, "{}", r.stdout);

    let r = verify(&[&out, &"--key", &public, &"--digest", &digest, &"--json"]);
    r.expect_code(0);
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["verified"], true);
    assert_eq!(doc["digest"], digest.as_str());
    let all = checks(&doc);
    let find = |name: &str| {
        all.iter()
            .find(|c| c.0 == name)
            .unwrap_or_else(|| panic!("no check {name} in {all:?}"))
    };
    assert_eq!(find("pin").1, "pass");
    assert_eq!(find("diff_id image layer 1/1").1, "pass");
    assert_eq!(find("blob image layer 1/1").1, "pass");
    assert_eq!(find("media types image").1, "pass");
    for kind in ["provenance", "sbom-spdx image", "sbom-cyclonedx image"] {
        let c = find(&format!("signed {kind}"));
        assert_eq!(c.1, "pass", "{c:?}");
        assert!(c.2.contains(&keyid), "{c:?}");
    }
    // Every artifact, with who signed it, for an admission webhook.
    let listed = doc["attestations"].as_array().unwrap();
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert_eq!(
        listed
            .iter()
            .filter(|a| a["signed_by"] == keyid.as_str())
            .count(),
        3
    );
    assert_eq!(doc["counts"]["fail"], 0);
    // Canonical: what stele prints is what canonical serialization gives.
    assert_eq!(
        r.stdout.trim_end(),
        String::from_utf8(stele::oci::json::to_canonical_vec(&doc)).unwrap()
    );

    // An unsigned build, checked with a key, is not verified.
    let plain = tmp.path().join("plain");
    build(&tmp.path().join("src/recipe.toml"), &plain);
    let r = verify(&[&plain, &"--key", &public]);
    r.expect_code(1);
    let failed = lines(&r, "FAIL");
    assert_eq!(failed.len(), 3, "{}", r.stdout);
    assert!(
        failed
            .iter()
            .all(|l| l.contains("is signed by key") && l.contains("unsigned")),
        "{failed:?}"
    );
    // --require says what must be signed: provenance alone is not there
    // either, and `--require` without a key is a usage error (exit 2).
    let r = verify(&[&plain, &"--key", &public, &"--require", &"provenance"]);
    r.expect_code(1);
    assert_eq!(lines(&r, "FAIL").len(), 1, "{}", r.stdout);
    verify(&[&plain, &"--require", &"provenance"]).expect_code(2);
}

#[test]
fn damaged_blobs_are_each_named() {
    let tmp = tempdir();
    let (out, _) = built(tmp.path(), None);
    let manifest = top_manifest(&out);
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    flip_byte(&out, &layer);
    // A second damaged blob: both must be reported, not only the first.
    let provenance = index(&out)["manifests"][attestation_pos(&out, "provenance")]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let content = json(&blob(&out, &provenance))["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    flip_byte(&out, &content);

    let r = verify(&[&out]);
    r.expect_code(1);
    assert!(r.stdout.starts_with("NOT VERIFIED "), "{}", r.stdout);
    let failed = lines(&r, "FAIL");
    assert_eq!(failed.len(), 2, "{}", r.stdout);
    assert!(
        failed[0].contains("blob image layer 1/1")
            && failed[0].contains(&layer)
            && failed[0].contains("damaged"),
        "{failed:?}"
    );
    assert!(
        failed[1].contains("attestation provenance blobs") && failed[1].contains(&content),
        "{failed:?}"
    );
    let skipped = lines(&r, "skip");
    assert!(
        skipped
            .iter()
            .any(|l| l.contains("diff_id image layer 1/1") && l.contains("did not verify")),
        "{}",
        r.stdout
    );
}

#[test]
fn a_swapped_config_is_caught_by_the_diff_ids_and_the_pin() {
    let tmp = tempdir();
    let (out, digest) = built(tmp.path(), None);
    // Another image: the same recipe with one file changed.
    let other_src = tmp.path().join("other");
    populate(&other_src, false);
    write_file(&other_src.join("config.txt"), "key = other\n", 0o644);
    let other = tmp.path().join("other-out");
    build(&other_src.join("recipe.toml"), &other);
    let theirs = top_manifest(&other)["config"].clone();
    let config = blob(&other, theirs["digest"].as_str().unwrap());
    put_blob(&out, &config);
    let swapped = edit_manifest(&out, 0, |m| m["config"] = theirs.clone());

    let r = verify(&[&out, &"--digest", &digest]);
    r.expect_code(1);
    let failed = lines(&r, "FAIL");
    assert!(
        !failed.iter().any(|l| l.contains("blob ")),
        "every blob matches its digest: {failed:?}"
    );
    let diff_id = failed
        .iter()
        .find(|l| l.contains("diff_id image layer 1/1"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        diff_id.contains("does not describe this layer"),
        "{diff_id}"
    );
    let pin = failed
        .iter()
        .find(|l| l.contains("pin"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(pin.contains(&digest) && pin.contains(&swapped), "{pin}");
    // The attestations still name the image that was replaced.
    assert!(
        failed
            .iter()
            .any(|l| l.contains("attestation provenance subject") && l.contains("stale")),
        "{}",
        r.stdout
    );
}

#[test]
fn an_edited_provenance_is_not_counted() {
    let tmp = tempdir();
    let (public, keyid) = keypair(tmp.path(), "signer");
    let (out, _) = built(tmp.path(), Some(&tmp.path().join("signer.key")));
    let pos = attestation_pos(&out, "provenance");
    let artifact = json(&blob(
        &out,
        index(&out)["manifests"][pos]["digest"].as_str().unwrap(),
    ));
    let mut bundle = json(&blob(
        &out,
        artifact["layers"][0]["digest"].as_str().unwrap(),
    ));
    let payload = STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let mut statement = json(&payload);
    statement["predicate"]["runDetails"]["builder"]["id"] =
        Value::String("https://example.invalid/trusted-builder".into());
    bundle["dsseEnvelope"]["payload"] =
        Value::String(STANDARD.encode(serde_json::to_vec(&statement).unwrap()));
    let (content, size) = put_blob(&out, &serde_json::to_vec(&bundle).unwrap());
    edit_manifest(&out, pos, |m| {
        m["layers"][0]["digest"] = Value::String(content.clone());
        m["layers"][0]["size"] = Value::from(size);
    });

    let r = verify(&[&out, &"--key", &public]);
    r.expect_code(1);
    let failed = lines(&r, "FAIL");
    assert_eq!(failed.len(), 1, "{}", r.stdout);
    assert!(
        failed[0].contains("signed provenance")
            && failed[0].contains(&keyid)
            && failed[0].contains("does not verify"),
        "{failed:?}"
    );
    // Without a key nothing vouches for the signature, and nothing else
    // is wrong: verified, the signature not checked (as cosign would).
    verify(&[&out]).expect_code(0);
}

#[test]
fn a_wrong_key_and_a_wrong_pin_are_named() {
    let tmp = tempdir();
    let (_, keyid) = keypair(tmp.path(), "signer");
    let (other, other_id) = keypair(tmp.path(), "other");
    let (out, digest) = built(tmp.path(), Some(&tmp.path().join("signer.key")));

    let r = verify(&[&out, &"--key", &other]);
    r.expect_code(1);
    let failed = lines(&r, "FAIL");
    assert_eq!(failed.len(), 3, "{}", r.stdout);
    assert!(
        failed
            .iter()
            .all(|l| l.contains("signed ") && l.contains(&other_id) && l.contains(&keyid)),
        "{failed:?}"
    );

    let pinned = sha256_digest(b"some other image");
    let r = verify(&[&out, &"--digest", &pinned, &"--json"]);
    r.expect_code(1);
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["verified"], false);
    let pin = checks(&doc).into_iter().find(|c| c.0 == "pin").unwrap();
    assert_eq!(pin.1, "fail");
    assert!(
        pin.2.contains(&pinned) && pin.2.contains(&digest),
        "{pin:?}"
    );
}

#[test]
fn an_unknown_media_type_fails() {
    let tmp = tempdir();
    let (out, _) = built(tmp.path(), None);
    edit_manifest(&out, 0, |m| {
        m["layers"][0]["mediaType"] = Value::String("application/x-tarball".into())
    });
    let r = verify(&[&out]);
    r.expect_code(1);
    let failed = lines(&r, "FAIL");
    assert!(
        failed.iter().any(|l| l.contains("media types image")
            && l.contains("layer 1 has media type application/x-tarball")),
        "{}",
        r.stdout
    );
}

#[test]
fn rebuild_compares_and_leaves_the_output_alone() {
    let tmp = tempdir();
    let (out, _) = built(tmp.path(), None);
    let recipe = tmp.path().join("src/recipe.toml");
    let before = snapshot(&out);

    let r = verify(&[&out, &"--rebuild", &recipe]);
    r.expect_code(0);
    assert!(
        lines(&r, "pass").iter().any(|l| l.contains("rebuild")),
        "{}",
        r.stdout
    );

    // The recipe's files changed after the build: not the pinned image.
    write_file(
        &tmp.path().join("src/app/share/doc/readme.txt"),
        "read me again\n",
        0o644,
    );
    let r = verify(&[&out, &"--rebuild", &recipe]);
    r.expect_code(1);
    let failed = lines(&r, "FAIL");
    assert_eq!(failed.len(), 1, "{}", r.stdout);
    assert!(
        failed[0].contains("rebuild")
            && failed[0].contains("content (1 file differs: opt/app/share/doc/readme.txt)"),
        "{failed:?}"
    );
    assert!(
        r.stdout.contains("\nrebuild differ: content"),
        "{}",
        r.stdout
    );
    assert_eq!(before, snapshot(&out), "the rebuild touched the output");
}

#[test]
fn rebuild_points_at_the_epoch_provenance_records() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let out = tmp.path().join("out");
    run(stele()
        .env("SOURCE_DATE_EPOCH", "1800000000")
        .arg("build")
        .arg(src.join("recipe.toml"))
        .arg("-o")
        .arg(&out))
    .expect_ok();
    let recipe = src.join("recipe.toml");

    let r = verify(&[&out, &"--rebuild", &recipe]);
    r.expect_code(1);
    let failed = lines(&r, "FAIL");
    assert!(
        failed[0].contains("timestamps only") && failed[0].contains("SOURCE_DATE_EPOCH=1800000000"),
        "{failed:?}"
    );
    let r = run(stele()
        .env("SOURCE_DATE_EPOCH", "1800000000")
        .arg("verify")
        .arg(&out)
        .arg("--rebuild")
        .arg(&recipe));
    r.expect_code(0);
}

#[test]
fn what_cannot_be_checked_exits_2() {
    let tmp = tempdir();
    let r = verify(&[&tmp.path().join("missing")]);
    r.expect_code(2);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);

    let r = verify(&[&tmp.path(), &"--json"]);
    r.expect_code(2);
    assert!(r.stderr.contains("not an OCI image layout"), "{}", r.stderr);
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["verified"], false);
    assert!(doc["error"]
        .as_str()
        .unwrap()
        .contains("not an OCI image layout"));

    let (out, _) = built(tmp.path(), None);
    let r = verify(&[&out, &"--key", &tmp.path().join("no.pub")]);
    r.expect_code(2);
    assert!(r.stderr.contains("no.pub"), "{}", r.stderr);

    let bad = tmp.path().join("bad.toml");
    fs::write(&bad, "[image]\nname = \"x\"\nbogus = 1\n").unwrap();
    let r = verify(&[&out, &"--rebuild", &bad]);
    r.expect_code(2);
    assert!(r.stderr.contains("bad.toml:3"), "{}", r.stderr);

    fs::write(out.join("index.json"), b"{ not json").unwrap();
    let r = verify(&[&out]);
    r.expect_code(2);
    assert!(r.stderr.contains("index.json"), "{}", r.stderr);
}
