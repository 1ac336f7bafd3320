//! Deploy-time trust: what the tools a deploy side already runs make of
//! stele's signatures and attestations. The containers policy
//! (`sigstoreSigned`) as skopeo and podman enforce it, against a real
//! registry; cosign's formats pinned as golden fixtures (cosign itself is
//! not installable here); `stele verify --key` and `--policy` as a
//! deploy gate; provenance from a CI's environment; cosign's encrypted
//! keys; what `inspect` says of signers.

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json as j, Value};

use crate::support::docker_registry::{have_registry, DockerRegistry};
use crate::support::edit::{index, top_manifest};
use crate::support::podman::lowercase_tempdir;
use crate::support::sigstore_tools::{sigstore_tools, ContainersPolicy};
use crate::support::*;

/// `stele key generate` (ECDSA P-256 unless `ed25519`); the private and
/// public key paths and the key id.
fn keypair(dir: &Path, name: &str, ed25519: bool) -> (PathBuf, PathBuf, String) {
    let private = dir.join(format!("{name}.key"));
    let mut c = stele();
    c.args(["key", "generate"]).arg(&private);
    if ed25519 {
        c.args(["--type", "ed25519"]);
    }
    let r = run(&mut c);
    r.expect_ok();
    (
        private,
        dir.join(format!("{name}.pub")),
        r.last_line().to_string(),
    )
}

/// A files-only recipe: builds in milliseconds, no mirror needed.
fn recipe(dir: &Path, name: &str, platforms: &str, motd: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    fs::write(
        &path,
        format!(
            "[image]\nname = \"team/{name}\"\nepoch = 1700000000\nplatforms = [{platforms}]\n\
             [[paths]]\npath = \"/etc/motd\"\nkind = \"file\"\ncontent = \"{motd}\\n\"\n"
        ),
    )
    .unwrap();
    path
}

/// `stele build RECIPE -o DIR/out-NAME ARGS…`; the digest.
fn build_in(dir: &Path, recipe: &Path, args: &[&str]) -> (PathBuf, String) {
    let out = dir.join(format!(
        "out-{}",
        recipe.file_stem().unwrap().to_string_lossy()
    ));
    let digest = build_with(recipe, &out, args);
    (out, digest)
}

fn get(url: &str, accept: &str) -> Vec<u8> {
    let resp = ureq::get(url)
        .set("Accept", accept)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    body
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn the_containers_policy_accepts_stele_signatures_and_refuses_the_rest() {
    if !have_registry() {
        return;
    }
    let Some(tools) = sigstore_tools() else {
        return;
    };
    let tmp = tempdir();
    let dir = tmp.path();
    let reg = DockerRegistry::start(None);
    let host = reg.host();
    let (key, public, _) = keypair(dir, "signer", false);
    let (ed_key, ed_public, _) = keypair(dir, "ed", true);
    let (_, other_public, _) = keypair(dir, "other", false);

    // A two-platform image signed with ECDSA (the index and each
    // manifest), one signed with Ed25519, one unsigned, and one whose
    // signature is then tampered with.
    let two = recipe(dir, "app", "\"linux/amd64\", \"linux/arm64\"", "hi");
    let one = recipe(dir, "one", "\"linux/amd64\"", "one");
    let push = |recipe: &Path, key: Option<&Path>, repo: &str| {
        let reference = format!("{host}/team/{repo}:1");
        let key_arg = key.map(|k| k.display().to_string());
        let mut args = vec!["--push", &reference];
        if let Some(k) = &key_arg {
            args.extend(["--sign-key", k]);
        }
        build_in(dir, recipe, &args).1
    };
    push(&two, Some(&key), "app");
    push(&one, Some(&ed_key), "ed");
    push(&one, None, "plain");
    let tampered = push(&one, Some(&key), "tampered");

    // Another signature under the tampered image's .sig tag: the same
    // payload, its signature's last byte flipped.
    let sig_url = format!(
        "http://{host}/v2/team/tampered/manifests/sha256-{}.sig",
        tampered.trim_start_matches("sha256:")
    );
    let mut manifest: Value = serde_json::from_slice(&get(&sig_url, OCI_MANIFEST)).unwrap();
    let ann = "dev.cosignproject.cosign/signature";
    let mut sig = STANDARD
        .decode(manifest["layers"][0]["annotations"][ann].as_str().unwrap())
        .unwrap();
    *sig.last_mut().unwrap() ^= 1;
    manifest["layers"][0]["annotations"][ann] = STANDARD.encode(&sig).into();
    ureq::put(&sig_url)
        .set("Content-Type", OCI_MANIFEST)
        .send_bytes(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();

    let trusted = ContainersPolicy::new(dir, "trusted", &host, &public);
    let ed = ContainersPolicy::new(dir, "ed", &host, &ed_public);
    let other = ContainersPolicy::new(dir, "other", &host, &other_public);
    let into = dir.join("copied");
    let image = |repo: &str| format!("docker://{host}/team/{repo}:1");

    // skopeo: the platform it copies, and with --all the index and both.
    tools
        .skopeo_copy(&trusted, &[], &image("app"), &into)
        .expect_ok();
    tools
        .skopeo_copy(&trusted, &["--all"], &image("app"), &into)
        .expect_ok();
    tools.skopeo_copy(&ed, &[], &image("ed"), &into).expect_ok();
    let refused = |r: Run, why: &str| {
        r.expect_fail();
        assert!(
            r.stderr.contains("Source image rejected") && r.stderr.contains(why),
            "{why}: {}",
            r.stderr
        );
    };
    refused(
        tools.skopeo_copy(&trusted, &[], &image("plain"), &into),
        "A signature was required, but no signature exists",
    );
    refused(
        tools.skopeo_copy(&other, &[], &image("app"), &into),
        "cryptographic signature verification failed",
    );
    refused(
        tools.skopeo_copy(&trusted, &[], &image("ed"), &into),
        "cryptographic signature verification failed",
    );
    refused(
        tools.skopeo_copy(&trusted, &[], &image("tampered"), &into),
        "cryptographic signature verification failed",
    );

    // podman pulls it into its storage only when the policy accepts it.
    let storage = lowercase_tempdir();
    tools
        .podman_pull(&trusted, &image("app"), storage.path())
        .expect_ok();
    refused(
        tools.podman_pull(&trusted, &image("plain"), storage.path()),
        "no signature exists",
    );
    refused(
        tools.podman_pull(&other, &image("app"), storage.path()),
        "cryptographic signature verification failed",
    );

    // Debian 12's own skopeo finds the signatures too (its verification
    // is patched out, so it can go no further).
    if have_tool("skopeo") {
        let old = |repo: &str| {
            run(std::process::Command::new("skopeo")
                .arg("copy")
                .arg("--policy")
                .arg(&trusted.policy)
                .arg("--registries.d")
                .arg(&trusted.registries_d)
                .arg("--src-tls-verify=false")
                .arg(image(repo))
                .arg(format!("dir:{}", into.display())))
        };
        let plain = old("plain");
        assert!(
            plain.stderr.contains("no signature exists"),
            "{}",
            plain.stderr
        );
        let signed = old("app");
        assert!(
            signed.ok() || !signed.stderr.contains("no signature exists"),
            "{}",
            signed.stderr
        );
    }
}

/// Reads `path`, or (with STELE_UPDATE_COSIGN_FIXTURES=1) writes `bytes`
/// there; asserts they are the same.
fn golden(path: &Path, bytes: &[u8]) {
    if std::env::var("STELE_UPDATE_COSIGN_FIXTURES").as_deref() == Ok("1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
        return;
    }
    let want = fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; STELE_UPDATE_COSIGN_FIXTURES=1 cargo test --test it trust:: writes it",
            path.display()
        )
    });
    assert!(
        want == bytes,
        "{} is not what stele writes now:\n{}\n(if the change is meant, regenerate with STELE_UPDATE_COSIGN_FIXTURES=1 and review the diff)",
        path.display(),
        String::from_utf8_lossy(bytes)
    );
}

/// The hint sigstore-go looks a key up by, computed here from the PEM
/// file without stele: base64 of the sha256 of the SPKI DER.
fn hint_of(pem: &str) -> String {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).unwrap();
    STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(&der))
}

#[test]
fn cosign_fixtures_are_what_stele_writes() {
    if !have_registry() {
        return;
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cosign");
    let tmp = tempdir();
    let reg = DockerRegistry::start(None);
    let host = reg.host();
    let out = tmp.path().join("layout");
    let reference = format!("{host}/team/app:1");
    let key = fixtures.join("stele.key");
    // SBOMs only: provenance records the run's times, so it cannot be a
    // golden; the simple-signing identity is fixed, not the random port.
    let digest = build_with(
        &fixtures.join("recipe.toml"),
        &out,
        &[
            "--attest",
            "sbom",
            "--sign-key",
            key.to_str().unwrap(),
            "--sign-identity",
            "registry.example/team/app:1",
            "--push",
            &reference,
        ],
    );
    golden(
        &fixtures.join("image.digest"),
        format!("{digest}\n").as_bytes(),
    );
    // The layout, file by file: what `cosign verify --local-image` reads.
    for (path, bytes) in snapshot(&out) {
        if !path.ends_with('/') {
            golden(&fixtures.join("layout").join(&path), &bytes);
        }
    }
    if std::env::var("STELE_UPDATE_COSIGN_FIXTURES").as_deref() != Ok("1") {
        let want: Vec<String> = snapshot(&fixtures.join("layout")).into_keys().collect();
        let have: Vec<String> = snapshot(&out).into_keys().collect();
        assert_eq!(have, want, "the layout's files");
    }
    // What the registry holds under cosign 2.x's tags, as pushed.
    let hex = digest.trim_start_matches("sha256:");
    for suffix in ["sig", "att"] {
        let tag = format!("sha256-{hex}.{suffix}");
        let url = format!("http://{host}/v2/team/app/manifests/{tag}");
        let manifest = get(&url, OCI_MANIFEST);
        golden(
            &fixtures.join(format!("registry/{tag}/manifest.json")),
            &manifest,
        );
        let m = json(&manifest);
        let blob = |d: &Value| {
            get(
                &format!("http://{host}/v2/team/app/blobs/{}", d.as_str().unwrap()),
                "*/*",
            )
        };
        golden(
            &fixtures.join(format!("registry/{tag}/config.json")),
            &blob(&m["config"]["digest"]),
        );
        for (i, layer) in m["layers"].as_array().unwrap().iter().enumerate() {
            golden(
                &fixtures.join(format!("registry/{tag}/layer-{i}.json")),
                &blob(&layer["digest"]),
            );
        }
    }

    // What cosign's code reads, checked against cosign's spelling here
    // (not stele's constants).
    let public = fs::read_to_string(fixtures.join("stele.pub")).unwrap();
    let idx = index(&out);
    assert_eq!(
        idx["manifests"][0]["annotations"]["kind"], "dev.cosignproject.cosign/image",
        "cosign --local-image finds the image by this"
    );
    let mut bundles = 0;
    for d in idx["manifests"].as_array().unwrap().iter().skip(1) {
        let m = json(&blob(&out, d["digest"].as_str().unwrap()));
        assert_eq!(m["subject"]["digest"], digest.as_str());
        let layer = &m["layers"][0];
        match m["artifactType"].as_str().unwrap() {
            "application/vnd.dev.sigstore.bundle.v0.3+json" => {
                bundles += 1;
                assert_eq!(
                    layer["mediaType"],
                    "application/vnd.dev.sigstore.bundle.v0.3+json"
                );
                assert_eq!(
                    m["annotations"]["dev.sigstore.bundle.content"],
                    "dsse-envelope"
                );
                let b = json(&blob(&out, layer["digest"].as_str().unwrap()));
                assert_eq!(
                    b["mediaType"],
                    "application/vnd.dev.sigstore.bundle.v0.3+json"
                );
                assert_eq!(
                    b["verificationMaterial"]["publicKey"]["hint"],
                    hint_of(&public)
                );
                assert_eq!(
                    b["verificationMaterial"]["tlogEntries"],
                    j!([]),
                    "no log entry"
                );
                let env = &b["dsseEnvelope"];
                assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
                assert_eq!(env["signatures"].as_array().unwrap().len(), 1);
                let st = json(&STANDARD.decode(env["payload"].as_str().unwrap()).unwrap());
                assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
                assert_eq!(st["subject"][0]["digest"]["sha256"], hex);
                assert!(["https://spdx.dev/Document", "https://cyclonedx.org/bom"]
                    .contains(&st["predicateType"].as_str().unwrap()));
                assert_eq!(
                    m["annotations"]["dev.sigstore.bundle.predicateType"],
                    st["predicateType"]
                );
            }
            "application/vnd.dev.cosign.artifact.sig.v1+json" => {
                assert_eq!(
                    layer["mediaType"],
                    "application/vnd.dev.cosign.simplesigning.v1+json"
                );
                let payload = json(&blob(&out, layer["digest"].as_str().unwrap()));
                assert_eq!(
                    payload["critical"],
                    j!({
                        "identity": {"docker-reference": "registry.example/team/app:1"},
                        "image": {"docker-manifest-digest": digest},
                        "type": "cosign container image signature",
                    })
                );
                assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());
            }
            "application/spdx+json" | "application/vnd.cyclonedx+json" => {
                assert_eq!(layer["mediaType"], m["artifactType"]);
            }
            other => panic!("unexpected artifact {other}"),
        }
    }
    assert_eq!(bundles, 2);
    // The .att layers are DSSE envelopes annotated as `cosign attest`
    // annotates them; the .sig layer is the simple-signing payload.
    let att =
        json(&fs::read(fixtures.join(format!("registry/sha256-{hex}.att/manifest.json"))).unwrap());
    for l in att["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.dsse.envelope.v1+json");
        assert!(l["annotations"]["predicateType"].is_string());
    }
    let sig =
        json(&fs::read(fixtures.join(format!("registry/sha256-{hex}.sig/manifest.json"))).unwrap());
    assert_eq!(
        sig["layers"][0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert_eq!(
        sig["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
}

#[test]
fn verify_key_counts_what_the_key_signed_and_ignores_other_signers() {
    if !have_registry() {
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path();
    let reg = DockerRegistry::start(None);
    let (key, public, keyid) = keypair(dir, "signer", false);
    let (intruder, intruder_public, intruder_id) = keypair(dir, "intruder", true);
    let (_, stranger, _) = keypair(dir, "stranger", false);
    let r = recipe(dir, "app", "\"linux/amd64\", \"linux/arm64\"", "hi");
    let reference = format!("{}/team/app:1", reg.host());
    let k = key.display().to_string();
    let (_, digest) = build_in(dir, &r, &["--sign-key", &k, "--push", &reference]);
    // Whoever can push to the repository adds their own attestations of
    // the same image beside the signer's.
    let i = intruder.display().to_string();
    let (_, again) = build_in(dir, &r, &["--sign-key", &i, "--push", &reference]);
    assert_eq!(again, digest);

    let verify = |key: &Path, extra: &[&str]| {
        run(stele()
            .arg("verify")
            .arg(&reference)
            .arg("--key")
            .arg(key)
            .args(extra)
            .arg("--digest")
            .arg(&digest))
    };
    let ok = verify(&public, &["--require", "all"]);
    ok.expect_code(0);
    let ignored: Vec<&str> = ok
        .stdout
        .lines()
        .filter(|l| l.contains(&intruder_id) && l.contains("ignored"))
        .collect();
    // Provenance, 2 × 2 SBOM bundles, and the index's and both
    // manifests' signatures of the intruder: listed, not counted.
    assert_eq!(ignored.len(), 8, "{}", ok.stdout);
    for kind in ["provenance", "signature index"] {
        assert!(
            ok.stdout
                .lines()
                .any(|l| l.contains(&format!("pass  signed {kind}")) && l.contains(&keyid)),
            "{kind}: {}",
            ok.stdout
        );
    }
    verify(&intruder_public, &[]).expect_code(0);
    let no = verify(&stranger, &[]);
    no.expect_code(1);
    assert!(
        no.stdout.contains(&keyid) && no.stdout.contains(&intruder_id),
        "{}",
        no.stdout
    );

    // The JSON an admission webhook reads.
    let r = verify(&public, &["--json"]);
    r.expect_code(0);
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["verified"], true);
    let by = |id: &str| {
        doc["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["signed_by"] == id)
            .count()
    };
    assert_eq!(by(&keyid), 8);
    assert_eq!(by(&intruder_id), 0, "counted only by the given key");
}

/// A policy file beside `dir`'s keys.
fn policy(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    fs::write(&p, body).unwrap();
    p
}

#[test]
fn a_policy_gates_signers_builder_source_recipe_base_and_age() {
    let tmp = tempdir();
    let dir = tmp.path();
    let (key, _, _) = keypair(dir, "ci", false);
    let (_, _, _) = keypair(dir, "other", false);
    let k = key.display().to_string();
    // A base, and an image built on it with CI's facts and signatures.
    let base = recipe(dir, "base", "\"linux/amd64\"", "base");
    let (base_out, base_digest) = build_in(dir, &base, &[]);
    let app = dir.join("app.toml");
    fs::write(
        &app,
        format!(
            "[image]\nname = \"team/app\"\nepoch = 1700000000\n[base]\nlayout = \"{}@{base_digest}\"\n\
             [[paths]]\npath = \"/etc/motd\"\nkind = \"file\"\ncontent = \"app\\n\"\n",
            base_out.display()
        ),
    )
    .unwrap();
    // Built in CI (GitLab's variables): provenance records the run.
    let out = dir.join("out-app");
    run(stele()
        .arg("build")
        .arg(&app)
        .arg("-o")
        .arg(&out)
        .args([
            "--sign-key",
            &k,
            "--sign-identity",
            "registry.example/team/app:1",
            "--builder-id",
            "https://ci.example/builders/release",
            "--annotation",
            "org.opencontainers.image.source=https://git.example/team/app",
            "--annotation",
            "org.opencontainers.image.revision=8f3c2a",
        ])
        .env("GITLAB_CI", "true")
        .env("CI_JOB_URL", "https://ci.example/team/app/-/jobs/1"))
    .expect_ok();
    let recipe_digest = top_manifest(&out)["annotations"]["dev.stele.recipe.digest"]
        .as_str()
        .unwrap()
        .to_string();
    let good = format!(
        "[[signer]]\nname = \"release CI\"\nkey = \"ci.pub\"\n\
         [require]\npredicate_types = [\"https://slsa.dev/provenance/v1\", \"https://spdx.dev/Document\", \"https://cyclonedx.org/bom\"]\n\
         image_signature = true\nbuilder_id = \"https://ci.example/builders/release\"\n\
         source_repository = \"https://git.example/team/app\"\nsource_revision = \"8f3c2a\"\n\
         recipe_digest = \"{recipe_digest}\"\nbase_digests = [\"{base_digest}\"]\nmax_age = \"3650d\"\n"
    );
    let check = |body: &str| {
        let p = policy(dir, "policy", body);
        run(stele().arg("verify").arg(&out).arg("--policy").arg(&p))
    };
    let r = check(&good);
    r.expect_code(0);
    for name in [
        "policy builder id",
        "policy source repository",
        "policy source revision",
        "policy recipe digest",
        "policy base",
        "policy age",
        "signed signature",
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.contains(&format!("pass  {name}"))),
            "{name}: {}",
            r.stdout
        );
    }
    // Each requirement, broken alone, fails its own check (exit 1).
    let other_digest = sha256_digest(b"another");
    for (from, to, check_name) in [
        (
            "https://ci.example/builders/release",
            "https://ci.example/builders/dev",
            "policy builder id",
        ),
        (
            "https://git.example/team/app",
            "https://git.example/team/fork",
            "policy source repository",
        ),
        ("\"8f3c2a\"", "\"000000\"", "policy source revision"),
        (
            recipe_digest.as_str(),
            other_digest.as_str(),
            "policy recipe digest",
        ),
        (base_digest.as_str(), other_digest.as_str(), "policy base"),
        (
            "key = \"ci.pub\"",
            "key = \"other.pub\"",
            "signed provenance",
        ),
    ] {
        let body = good.replacen(from, to, 1);
        assert_ne!(body, good, "{from}");
        let r = check(&body);
        r.expect_code(1);
        assert!(
            r.stdout
                .lines()
                .any(|l| l.contains(&format!("FAIL  {check_name}"))),
            "{check_name}: {}",
            r.stdout
        );
    }
    // A build outside CI records no time: an age cannot be checked.
    let local = dir.join("local");
    run(stele()
        .arg("build")
        .arg(&app)
        .arg("-o")
        .arg(&local)
        .arg("--sign-key")
        .arg(&key))
    .expect_ok();
    let p = policy(
        dir,
        "age",
        "[[signer]]\nkey = \"ci.pub\"\n[require]\nmax_age = \"30d\"\n",
    );
    let r = run(stele().arg("verify").arg(&local).arg("--policy").arg(&p));
    r.expect_code(1);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("FAIL  policy age") && l.contains("no build time")),
        "{}",
        r.stdout
    );
    // A deploy step reads JSON; a policy that cannot be read is exit 2,
    // naming its line.
    let p = policy(dir, "policy", &good.replacen("builder_id", "buider_id", 1));
    let r = run(stele()
        .arg("verify")
        .arg(&out)
        .arg("--policy")
        .arg(&p)
        .arg("--json"));
    r.expect_code(2);
    assert_eq!(json(r.stdout.as_bytes())["verified"], false);
    assert!(
        r.stderr.contains("policy.toml:") && r.stderr.contains("buider_id"),
        "{}",
        r.stderr
    );
}

/// The provenance statement of a layout built unsigned.
fn provenance_of(out: &Path) -> Value {
    let idx = index(out);
    let d = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["dev.stele.attestation"] == "provenance")
        .unwrap();
    let m = json(&blob(out, d["digest"].as_str().unwrap()));
    json(&blob(out, m["layers"][0]["digest"].as_str().unwrap()))
}

#[test]
fn provenance_names_the_ci_run_and_the_image_digest_ignores_it() {
    let tmp = tempdir();
    let dir = tmp.path();
    let r = recipe(dir, "app", "\"linux/amd64\"", "hi");
    let local = dir.join("local");
    let plain = run(stele().arg("build").arg(&r).arg("-o").arg(&local));
    plain.expect_ok();
    let github = dir.join("github");
    let gh = run(stele()
        .arg("build")
        .arg(&r)
        .arg("-o")
        .arg(&github)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SERVER_URL", "https://git.example")
        .env("GITHUB_REPOSITORY", "team/app")
        .env("GITHUB_RUN_ID", "42")
        .env("GITHUB_RUN_ATTEMPT", "2")
        .env("STELE_BUILDER_ID", "https://ci.example/builders/release")
        .env("STELE_BUILD_TYPE", "https://ci.example/buildtypes/stele/v1"));
    gh.expect_ok();
    let gitlab = dir.join("gitlab");
    let gl = run(stele()
        .arg("build")
        .arg(&r)
        .arg("-o")
        .arg(&gitlab)
        .arg("--builder-id")
        .arg("https://gitlab.example/runners/7")
        .env("GITLAB_CI", "true")
        .env("CI_JOB_URL", "https://gitlab.example/team/app/-/jobs/99")
        .env("CI_JOB_STARTED_AT", "2026-03-04T05:06:07Z"));
    gl.expect_ok();
    // The image is the same whatever provenance says.
    assert_eq!(plain.last_line(), gh.last_line());
    assert_eq!(plain.last_line(), gl.last_line());

    let p = provenance_of(&local);
    let rd = &p["predicate"]["runDetails"];
    assert_eq!(
        rd["builder"]["id"],
        "https://stele.example/README.md#builder-id"
    );
    assert_eq!(
        p["predicate"]["buildDefinition"]["buildType"],
        "https://stele.example/README.md#build-type-v1"
    );
    // Outside CI no run is recorded: two builds, the same provenance.
    assert!(rd.get("metadata").is_none(), "{rd}");

    let p = provenance_of(&github);
    let rd = &p["predicate"]["runDetails"];
    let started = rd["metadata"]["startedOn"].as_str().unwrap();
    let finished = rd["metadata"]["finishedOn"].as_str().unwrap();
    assert!(started <= finished, "{started} {finished}");
    assert_eq!(rd["builder"]["id"], "https://ci.example/builders/release");
    assert_eq!(
        p["predicate"]["buildDefinition"]["buildType"],
        "https://ci.example/buildtypes/stele/v1"
    );
    assert_eq!(
        rd["metadata"]["invocationId"],
        "https://git.example/team/app/actions/runs/42/attempts/2"
    );
    let p = provenance_of(&gitlab);
    let rd = &p["predicate"]["runDetails"];
    assert_eq!(rd["builder"]["id"], "https://gitlab.example/runners/7");
    assert_eq!(
        rd["metadata"]["invocationId"],
        "https://gitlab.example/team/app/-/jobs/99"
    );
    assert_eq!(rd["metadata"]["startedOn"], "2026-03-04T05:06:07Z");

    // Not a URI: refused before anything is built.
    let bad = run(stele()
        .arg("build")
        .arg(&r)
        .arg("-o")
        .arg(dir.join("bad"))
        .arg("--builder-id")
        .arg("my laptop"));
    bad.expect_fail();
    assert!(
        bad.stderr.contains("--builder-id") && bad.stderr.contains("not a URI"),
        "{}",
        bad.stderr
    );
}

#[test]
fn cosign_encrypted_keys_sign_with_the_password_from_the_environment() {
    let tmp = tempdir();
    let dir = tmp.path();
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
    let r = recipe(dir, "app", "\"linux/amd64\"", "hi");
    let build = |password: Option<(&str, &str)>| {
        let mut c = stele();
        c.arg("build")
            .arg(&r)
            .arg("-o")
            .arg(dir.join("out"))
            .arg("--sign-key")
            .arg(keys.join("cosign-p256.key"));
        if let Some((var, value)) = password {
            c.env(var, value);
        }
        run(&mut c)
    };
    let none = build(None);
    none.expect_fail();
    assert!(
        none.stderr.contains("STELE_KEY_PASSWORD") && none.stderr.contains("COSIGN_PASSWORD"),
        "{}",
        none.stderr
    );
    let wrong = build(Some(("COSIGN_PASSWORD", "wrong")));
    wrong.expect_fail();
    assert!(
        wrong.stderr.contains("password is wrong"),
        "{}",
        wrong.stderr
    );
    build(Some(("COSIGN_PASSWORD", "stele-test-password"))).expect_ok();
    run(stele()
        .arg("verify")
        .arg(dir.join("out"))
        .arg("--key")
        .arg(keys.join("cosign-p256.pub")))
    .expect_code(0);

    // `key generate` encrypts with the same variables, as cosign's
    // generate-key-pair does; the default key is ECDSA P-256.
    let generated = dir.join("gen.key");
    run(stele()
        .args(["key", "generate"])
        .arg(&generated)
        .env("STELE_KEY_PASSWORD", "pw"))
    .expect_ok();
    let text = fs::read_to_string(&generated).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
        "{text}"
    );
    let public = fs::read_to_string(dir.join("gen.pub")).unwrap();
    // id-ecPublicKey with prime256v1, as openssl reads it.
    if have_tool("openssl") {
        let out = run(std::process::Command::new("openssl")
            .args(["pkey", "-pubin", "-noout", "-text", "-in"])
            .arg(dir.join("gen.pub")));
        out.expect_ok();
        assert!(
            out.stdout.contains("prime256v1") || out.stdout.contains("P-256"),
            "{}{public}",
            out.stdout
        );
    }
}

#[test]
fn inspect_names_the_key_an_attestation_says_signed_it() {
    let tmp = tempdir();
    let dir = tmp.path();
    let (key, _, keyid) = keypair(dir, "signer", false);
    let r = recipe(dir, "app", "\"linux/amd64\"", "hi");
    let k = key.display().to_string();
    let (out, _) = build_in(dir, &r, &["--sign-key", &k]);
    let text = run(stele().arg("inspect").arg(&out));
    text.expect_ok();
    let signed: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| l.contains(&format!("signed by key {keyid}")))
        .collect();
    assert_eq!(
        signed.len(),
        3,
        "provenance and two SBOMs:\n{}",
        text.stdout
    );
    let doc = run(stele().arg("inspect").arg(&out).arg("--json"));
    doc.expect_ok();
    let listed = json(doc.stdout.as_bytes())["attestations"].clone();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["keyid"] == keyid.as_str() && a["form"] == "sigstore-bundle")
            .count()
            == 3,
        "{listed}"
    );
}
