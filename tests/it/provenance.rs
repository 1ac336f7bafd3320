//! Provenance inside the image: every embedded value checked against what
//! it claims by a second route (the recipe digest from the library and
//! from a reformatted recipe, the lock digest from the lockfile's bytes,
//! the SBOM's packages from the lock), `verify --recipe` passing and
//! failing, `[image] sbom = false`, and labels surviving a podman
//! load/save round trip.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::*;

const EPOCH_RFC3339: &str = "2023-11-14T22:13:20Z";
const SBOM_PATH: &str = "usr/share/stele/sbom/image.spdx.json";

fn repo() -> AptRepo {
    let mut b = AptRepo::builder().suite("stable", &["amd64", "arm64"]).deb(
        "stable",
        Deb::new("data", "2:0.5", "all")
            .entry(DebEntry::dir("usr/share/data"))
            .entry(DebEntry::file("usr/share/data/table", "x y z\n")),
    );
    for arch in ["amd64", "arm64"] {
        b = b
            .deb(
                "stable",
                Deb::new("hello", "1.0-1", arch)
                    .field("Depends", "libgreet")
                    .entry(DebEntry::dir("bin"))
                    .entry(DebEntry::exec("bin/hello", format!("#!/bin/sh\necho {arch}\n")))
                    .entry(DebEntry::dir("usr/share/doc/hello"))
                    .entry(DebEntry::file(
                        "usr/share/doc/hello/copyright",
                        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2024 Someone\nLicense: MIT\n",
                    )),
            )
            .deb(
                "stable",
                Deb::new("libgreet", "2.0-1", arch)
                    .entry(DebEntry::dir("usr/lib"))
                    .entry(DebEntry::file("usr/lib/libgreet.so.2", "new")),
            );
    }
    b.build()
}

const RECIPE: &str = r#"
[image]
name = "prov"
epoch = 1700000000
platforms = ["linux/amd64", "linux/arm64"]

[apt]
sources = [{ mirror = "LOCAL", suite = "stable", components = ["main"], keyring = "keyring.gpg" }]
packages = ["hello", "data"]

[config]
entrypoint = ["/bin/hello"]
labels = { "org.example.team" = "blue" }

[annotations]
"org.opencontainers.image.source" = "https://forge.example/prov"
"org.opencontainers.image.revision" = "0123abcd"
"#;

/// The same recipe, written differently: other key order, quoting and
/// comments. Its canonical form, and so its digest, is the same.
const RECIPE_REFORMATTED: &str = r#"# the same recipe
[annotations]
'org.opencontainers.image.revision' = '0123abcd'
'org.opencontainers.image.source' = 'https://forge.example/prov'

[config]
labels = { 'org.example.team' = 'blue' }
entrypoint = [ '/bin/hello' ]

[apt]
packages = ['hello', 'data']
sources = [ { suite = 'stable', mirror = 'LOCAL', keyring = 'keyring.gpg', components = ['main'] } ]

[image]
platforms = ['linux/amd64', 'linux/arm64']
epoch = 1_700_000_000
name = 'prov'
"#;

struct Project {
    dir: tempfile::TempDir,
    url: String,
}

impl Project {
    fn new(repo: &AptRepo, url: &str) -> Project {
        let dir = tempdir();
        fs::copy(repo.keyring_path(), dir.path().join("keyring.gpg")).unwrap();
        fs::write(dir.path().join("recipe.toml"), RECIPE).unwrap();
        Project {
            dir,
            url: url.to_string(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn stele(&self, args: &[&str]) -> Run {
        let mut cmd = stele();
        cmd.args(args)
            .arg("--cache-dir")
            .arg(self.path("cache"))
            .env("STELE_MIRROR_LOCAL", &self.url);
        run(&mut cmd)
    }
    fn verify(&self, out: &str, recipe: &str) -> Run {
        let out = self.path(out);
        let recipe = self.path(recipe);
        self.stele(&[
            "verify",
            out.to_str().unwrap(),
            "--recipe",
            recipe.to_str().unwrap(),
        ])
    }
}

/// Layers as (media type, blob), in manifest order.
type Layers = Vec<(String, Vec<u8>)>;

/// Each platform's (manifest, config, layers).
fn images(layout: &Path) -> Vec<(Value, Value, Layers)> {
    let index = json(&fs::read(layout.join("index.json")).unwrap());
    let top = &index["manifests"][0];
    let manifests: Vec<Value> = if top["mediaType"] == "application/vnd.oci.image.index.v1+json" {
        json(&descriptor_blob(layout, top))["manifests"]
            .as_array()
            .unwrap()
            .clone()
    } else {
        vec![top.clone()]
    };
    manifests
        .iter()
        .map(|d| {
            let m = json(&descriptor_blob(layout, d));
            let c = json(&descriptor_blob(layout, &m["config"]));
            let layers = m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["mediaType"].as_str().unwrap().to_string(),
                        descriptor_blob(layout, l),
                    )
                })
                .collect();
            (m, c, layers)
        })
        .collect()
}

/// The file at `key` in the image the layers make (the topmost copy).
fn file_in(layers: &[(String, Vec<u8>)], key: &str) -> Option<Vec<u8>> {
    let mut found = None;
    for (mt, blob) in layers {
        for e in tar_entries(&decompress(mt, blob)) {
            let path = e.path.trim_start_matches("./").trim_end_matches('/');
            if path == key {
                found = Some(e.data.clone());
            }
            if path.ends_with(&format!(".wh.{}", key.rsplit('/').next().unwrap())) {
                found = None;
            }
        }
    }
    found
}

type Pkg = (String, String, String, String);

/// (name, version, architecture, sha256 hex) of each Debian package an
/// SPDX document lists.
fn spdx_packages(doc: &Value) -> BTreeSet<Pkg> {
    let mut out = BTreeSet::new();
    for p in doc["packages"].as_array().unwrap() {
        let Some(purl) = p["externalRefs"][0]["referenceLocator"].as_str() else {
            continue;
        };
        if !purl.starts_with("pkg:deb/") {
            continue;
        }
        let arch = purl.split_once("?arch=").unwrap().1.to_string();
        assert_eq!(p["checksums"][0]["algorithm"], "SHA256");
        out.insert((
            p["name"].as_str().unwrap().to_string(),
            p["versionInfo"].as_str().unwrap().to_string(),
            arch,
            p["checksums"][0]["checksumValue"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    out
}

/// The lock's packages for `platform`, read as plain TOML (not through
/// stele's lock model).
fn locked_packages(lock_text: &str, platform: &str) -> BTreeSet<Pkg> {
    let lock: toml::Value = toml::from_str(lock_text).unwrap();
    lock["platforms"][platform]["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (
                s("name"),
                s("version"),
                s("architecture"),
                s("sha256").trim_start_matches("sha256:").to_string(),
            )
        })
        .collect()
}

fn label<'a>(config: &'a Value, key: &str) -> &'a Value {
    &config["config"]["Labels"][key]
}

#[test]
fn embedded_values_are_what_they_claim_and_verify_recipe_checks_them() {
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url);
    let recipe = p.path("recipe.toml");
    p.stele(&["lock", recipe.to_str().unwrap()]).expect_ok();
    let out = p.path("out");
    let r = p.stele(&[
        "build",
        recipe.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    r.expect_ok();
    let digest = r.last_line().to_string();

    // The recipe digest by two more routes: the library, on the
    // reformatted text; and a build of the reformatted recipe (with the
    // same lock), which must record the same value and be the same image.
    fs::write(p.path("again.toml"), RECIPE_REFORMATTED).unwrap();
    fs::copy(p.path("recipe.lock"), p.path("again.lock")).unwrap();
    let library = stele::recipe::parse(&p.path("again.toml"), RECIPE_REFORMATTED, None)
        .unwrap()
        .input_digest()
        .to_string();
    let again = p.path("again-out");
    let r = p.stele(&[
        "build",
        p.path("again.toml").to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    r.expect_ok();
    assert_eq!(
        r.last_line(),
        digest,
        "a reformatted recipe is the same image"
    );

    let lock_bytes = fs::read(p.path("recipe.lock")).unwrap();
    let lock_text = String::from_utf8(lock_bytes.clone()).unwrap();
    let lock_digest = sha256_digest(&lock_bytes);
    let built = images(&out);
    assert_eq!(built.len(), 2);
    let mut platforms = Vec::new();
    for (manifest, config, layers) in &built {
        let platform = format!(
            "{}/{}",
            config["os"].as_str().unwrap(),
            config["architecture"].as_str().unwrap()
        );
        let annotations = &manifest["annotations"];
        for (key, want) in [
            ("dev.stele.recipe.digest", library.as_str()),
            ("dev.stele.lock.digest", lock_digest.as_str()),
            ("dev.stele.encoding", "stele-2026.2"),
            ("dev.stele.sbom", "/usr/share/stele/sbom/image.spdx.json"),
            ("org.opencontainers.image.created", EPOCH_RFC3339),
            (
                "org.opencontainers.image.source",
                "https://forge.example/prov",
            ),
            ("org.opencontainers.image.revision", "0123abcd"),
        ] {
            assert_eq!(annotations[key], want, "{platform} annotation {key}");
            assert_eq!(label(config, key), want, "{platform} label {key}");
        }
        assert_eq!(label(config, "org.example.team"), "blue");
        assert_eq!(config["created"], EPOCH_RFC3339);

        // The SBOM: in the last layer (the recipe's), listing exactly
        // the lock's packages of this platform, naming no digest of the
        // image it is in.
        let sbom = file_in(&layers[layers.len() - 1..], SBOM_PATH)
            .unwrap_or_else(|| panic!("{platform}: no SBOM in the recipe layer"));
        let doc = json(&sbom);
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["creationInfo"]["created"], EPOCH_RFC3339);
        let listed = spdx_packages(&doc);
        let locked = locked_packages(&lock_text, &platform);
        assert_eq!(listed.len(), 3, "hello, libgreet, data: {listed:?}");
        assert_eq!(listed, locked, "{platform}");
        let text = String::from_utf8(sbom).unwrap();
        for (_, blob) in layers {
            assert!(!text.contains(&sha256_hex(blob)), "names its own layer");
        }
        assert!(text.contains("\"licenseDeclared\":\"MIT\""), "{text}");
        platforms.push(platform);
    }
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    // verify --recipe: the right recipe passes, check by check.
    let r = p.verify("out", "recipe.toml");
    r.expect_code(0);
    for line in [
        "pass  recipe digest",
        "pass  lock digest",
        "pass  sbom linux/amd64",
        "pass  sbom linux/arm64",
    ] {
        assert!(r.stdout.contains(line), "{line}:\n{}", r.stdout);
    }
    // The reformatted recipe is the same recipe; so is one that fetches
    // from another mirror with the keyring elsewhere (locations, not
    // identity: the lock pins what is fetched).
    p.verify("out", "again.toml").expect_code(0);
    fs::copy(p.path("keyring.gpg"), p.path("moved.gpg")).unwrap();
    fs::write(
        p.path("moved.toml"),
        RECIPE
            .replace("mirror = \"LOCAL\"", &format!("mirror = \"{url}\""))
            .replace("keyring.gpg", "moved.gpg"),
    )
    .unwrap();
    fs::copy(p.path("recipe.lock"), p.path("moved.lock")).unwrap();
    p.verify("out", "moved.toml").expect_code(0);

    // An edited recipe: the recipe digest fails, the rest still passes.
    fs::write(
        p.path("edited.toml"),
        RECIPE.replace("[config]\n", "[config]\ncmd = [\"--loud\"]\n"),
    )
    .unwrap();
    fs::copy(p.path("recipe.lock"), p.path("edited.lock")).unwrap();
    let r = p.verify("out", "edited.toml");
    r.expect_code(1);
    assert!(r.stdout.contains("FAIL  recipe digest"), "{}", r.stdout);
    assert!(r.stdout.contains("pass  lock digest"), "{}", r.stdout);

    // An edited lock, even by a comment: the lock digest fails.
    let mut commented = lock_bytes.clone();
    commented.extend_from_slice(b"# reviewed\n");
    fs::write(p.path("recipe.lock"), &commented).unwrap();
    let r = p.verify("out", "recipe.toml");
    r.expect_code(1);
    assert!(r.stdout.contains("FAIL  lock digest"), "{}", r.stdout);
    assert!(r.stdout.contains("pass  recipe digest"), "{}", r.stdout);
    assert!(r.stdout.contains("pass  sbom linux/amd64"), "{}", r.stdout);

    // A lock that pins another package: the SBOM no longer matches either.
    let swapped = lock_text.replacen("version = \"2.0-1\"", "version = \"2.0-2\"", 2);
    assert_ne!(swapped, lock_text);
    fs::write(p.path("recipe.lock"), &swapped).unwrap();
    let r = p.verify("out", "recipe.toml");
    r.expect_code(1);
    assert!(r.stdout.contains("FAIL  lock digest"), "{}", r.stdout);
    assert!(
        r.stdout.contains("FAIL  sbom linux/amd64") && r.stdout.contains("libgreet 2.0-2"),
        "{}",
        r.stdout
    );

    // No lockfile at all: verify could not check (2), not "failed".
    fs::remove_file(p.path("recipe.lock")).unwrap();
    let r = p.verify("out", "recipe.toml");
    r.expect_code(2);
    assert!(r.stderr.contains("recipe.lock"), "{}", r.stderr);
}

const PLAIN: &str = r#"
[image]
name = "plain"
epoch = 1700000000
SBOM

[[paths]]
path = "/etc/motd"
kind = "file"
content = "hi\n"

[config]
labels = { "org.opencontainers.image.version" = "1.2.3" }
"#;

#[test]
fn sbom_false_leaves_the_file_out_and_the_default_embeds_one_without_packages() {
    let tmp = tempdir();
    let cache = tmp.path().join("cache");
    let build = |name: &str, sbom: &str| -> PathBuf {
        let recipe = tmp.path().join(format!("{name}.toml"));
        fs::write(&recipe, PLAIN.replace("SBOM", sbom)).unwrap();
        let out = tmp.path().join(name);
        run(stele()
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache))
        .expect_ok();
        out
    };
    let verify = |name: &str| -> Run {
        run(stele()
            .arg("verify")
            .arg(tmp.path().join(name))
            .arg("--recipe")
            .arg(tmp.path().join(format!("{name}.toml")))
            .arg("--cache-dir")
            .arg(&cache))
    };

    let out = build("with", "");
    let (manifest, config, layers) = images(&out).remove(0);
    let doc = json(&file_in(&layers, SBOM_PATH).expect("embedded by default"));
    assert!(spdx_packages(&doc).is_empty());
    assert_eq!(doc["packages"][0]["primaryPackagePurpose"], "CONTAINER");
    assert!(manifest["annotations"]
        .get("dev.stele.lock.digest")
        .is_none());
    // A recipe label stele does not set stays as written.
    assert_eq!(label(&config, "org.opencontainers.image.version"), "1.2.3");
    let r = verify("with");
    r.expect_code(0);
    assert!(r.stdout.contains("pass  sbom linux/amd64"), "{}", r.stdout);
    assert!(r.stdout.contains("skip  lock digest"), "{}", r.stdout);

    // An annotation edited to name another recipe no longer agrees with
    // the label (which the config digest protects): named, failed.
    let edited = tmp.path().join("edited");
    run(std::process::Command::new("cp")
        .arg("-R")
        .arg(&out)
        .arg(&edited))
    .expect_ok();
    crate::support::edit::edit_manifest(&edited, 0, |m| {
        m["annotations"]["dev.stele.recipe.digest"] = Value::String(sha256_digest(b"another"));
    });
    let r = run(stele()
        .arg("verify")
        .arg(&edited)
        .arg("--recipe")
        .arg(tmp.path().join("with.toml"))
        .arg("--cache-dir")
        .arg(&cache));
    r.expect_code(1);
    assert!(
        r.stdout.contains("FAIL  recipe digest") && r.stdout.contains("one of them was changed"),
        "{}",
        r.stdout
    );

    let out = build("without", "sbom = false");
    let (manifest, config, layers) = images(&out).remove(0);
    for (mt, blob) in &layers {
        for e in tar_entries(&decompress(mt, blob)) {
            assert!(!e.path.contains("usr/share/stele"), "{}", e.path);
        }
    }
    assert!(manifest["annotations"].get("dev.stele.sbom").is_none());
    assert!(label(&config, "dev.stele.sbom").is_null());
    assert!(!label(&config, "dev.stele.recipe.digest").is_null());
    let r = verify("without");
    r.expect_code(0);
    assert!(r.stdout.contains("skip  sbom linux/amd64"), "{}", r.stdout);

    // The image without an SBOM does not pass for the recipe with one.
    let r = run(stele()
        .arg("verify")
        .arg(tmp.path().join("without"))
        .arg("--recipe")
        .arg(tmp.path().join("with.toml"))
        .arg("--cache-dir")
        .arg(&cache));
    r.expect_code(1);
    assert!(r.stdout.contains("FAIL  recipe digest"), "{}", r.stdout);
    assert!(r.stdout.contains("FAIL  sbom linux/amd64"), "{}", r.stdout);

    // A recipe file where the SBOM goes is refused, naming the way out.
    let recipe = tmp.path().join("taken.toml");
    fs::write(
        &recipe,
        PLAIN.replace("SBOM", "")
            + "[[paths]]\npath = \"/usr/share/stele/sbom/image.spdx.json\"\nkind = \"file\"\ncontent = \"{}\"\n",
    )
    .unwrap();
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(tmp.path().join("taken"))
        .arg("--cache-dir")
        .arg(&cache));
    r.expect_fail();
    assert!(r.stderr.contains("sbom = false"), "{}", r.stderr);
}

#[test]
fn a_recipe_label_that_claims_a_stele_fact_is_refused_at_its_line() {
    let tmp = tempdir();
    let recipe = tmp.path().join("r.toml");
    fs::write(
        &recipe,
        "[image]\nname = \"x\"\n\n[config]\nlabels = { \"org.opencontainers.image.created\" = \"2001-01-01T00:00:00Z\" }\n",
    )
    .unwrap();
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(tmp.path().join("out"))
        .arg("--cache-dir")
        .arg(tmp.path().join("cache")));
    r.expect_fail();
    assert!(
        r.stderr.contains("r.toml:5:") && r.stderr.contains("set by stele"),
        "{}",
        r.stderr
    );
}

#[test]
fn labels_survive_podman_load_and_save() {
    if !have_tool("podman") {
        return;
    }
    let tmp = crate::support::podman::lowercase_tempdir();
    let recipe = tmp.path().join("plain.toml");
    fs::write(&recipe, PLAIN.replace("SBOM", "")).unwrap();
    let archive = tmp.path().join("plain.tar");
    let r = run(stele()
        .arg("build")
        .arg(&recipe)
        .args(["--format", "docker-archive", "-o"])
        .arg(&archive)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache")));
    r.expect_ok();
    let want_recipe = stele::recipe::load(&recipe, None)
        .unwrap()
        .input_digest()
        .to_string();

    let storage = tmp.path().join("storage");
    let r = run(crate::support::podman::podman(&storage)
        .arg("load")
        .arg("-i")
        .arg(&archive));
    r.expect_ok();
    let saved = tmp.path().join("saved.tar");
    run(crate::support::podman::podman(&storage)
        .args(["save", "--format", "docker-archive", "-o"])
        .arg(&saved)
        .arg("localhost/plain:latest"))
    .expect_ok();
    let r = run(crate::support::podman::podman(&storage).args([
        "image",
        "inspect",
        "localhost/plain:latest",
    ]));
    r.expect_ok();
    let inspected = json(r.stdout.as_bytes());
    let labels = &inspected[0]["Labels"];

    // What `docker save` wrote is read back as a file, not through podman.
    let members = crate::support::archive::members(&saved);
    let by_name = crate::support::archive::by_name(&members);
    let manifest = json(&by_name["manifest.json"]);
    let config = json(&by_name[manifest[0]["Config"].as_str().unwrap()]);
    // The saved archive has Docker's manifest, without annotations; the
    // labels alone still let verify --recipe match it to the recipe.
    let r = run(stele()
        .arg("verify")
        .arg(format!("docker-archive:{}", saved.display()))
        .arg("--recipe")
        .arg(&recipe)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache")));
    r.expect_code(0);
    assert!(r.stdout.contains("pass  recipe digest"), "{}", r.stdout);
    assert!(r.stdout.contains("pass  sbom linux/amd64"), "{}", r.stdout);
    for labels in [labels, &config["config"]["Labels"]] {
        assert_eq!(labels["dev.stele.recipe.digest"], want_recipe.as_str());
        assert_eq!(labels["dev.stele.encoding"], "stele-2026.2");
        assert_eq!(labels["org.opencontainers.image.created"], EPOCH_RFC3339);
        assert_eq!(
            labels["dev.stele.sbom"],
            "/usr/share/stele/sbom/image.spdx.json"
        );
        assert_eq!(labels["org.opencontainers.image.version"], "1.2.3");
    }
}

#[test]
fn an_image_on_a_stele_base_records_its_own_provenance_not_the_base_s() {
    let repo = repo();
    let (url, _server) = repo.serve();
    let p = Project::new(&repo, &url);
    let recipe = p.path("recipe.toml");
    p.stele(&["lock", recipe.to_str().unwrap()]).expect_ok();
    // The packaged image, one platform, as a base.
    fs::write(
        &recipe,
        RECIPE.replace(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]",
            "platforms = [\"linux/amd64\"]",
        ),
    )
    .unwrap();
    let base_out = p.path("base");
    let r = p.stele(&[
        "build",
        recipe.to_str().unwrap(),
        "-o",
        base_out.to_str().unwrap(),
    ]);
    r.expect_ok();
    let base_digest = r.last_line().to_string();
    let (_, base_config, _) = images(&base_out).remove(0);
    assert!(!label(&base_config, "dev.stele.lock.digest").is_null());

    let child = |name: &str, sbom: &str| -> (Value, Value, Layers) {
        let file = p.path(&format!("{name}.toml"));
        fs::write(
            &file,
            format!(
                "[image]\nname = \"{name}\"\nepoch = 1700000000\n{sbom}\n[base]\nlayout = \"base@{base_digest}\"\n"
            ),
        )
        .unwrap();
        let out = p.path(name);
        p.stele(&["build", file.to_str().unwrap(), "-o", out.to_str().unwrap()])
            .expect_ok();
        p.verify(name, &format!("{name}.toml")).expect_code(0);
        images(&out).remove(0)
    };

    // The child's SBOM replaces the base's: no packages of its own, the
    // base named by digest.
    let (manifest, config, layers) = child("child", "");
    assert!(label(&config, "dev.stele.lock.digest").is_null());
    assert!(label(&config, "org.opencontainers.image.source").is_null());
    assert_eq!(
        label(&config, "org.example.team"),
        "blue",
        "other labels stay"
    );
    assert_eq!(
        label(&config, "org.opencontainers.image.base.digest"),
        base_digest.as_str()
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );
    assert_ne!(
        label(&config, "dev.stele.recipe.digest"),
        label(&base_config, "dev.stele.recipe.digest")
    );
    let doc = json(&file_in(&layers, SBOM_PATH).unwrap());
    assert!(spdx_packages(&doc).is_empty());
    assert_eq!(doc["packages"][1]["versionInfo"], base_digest.as_str());

    // Without an SBOM of its own, the base's is whited out: it would
    // describe another image.
    let (_, config, layers) = child("bare", "sbom = false");
    assert!(file_in(&layers, SBOM_PATH).is_none());
    assert!(label(&config, "dev.stele.sbom").is_null());
}
