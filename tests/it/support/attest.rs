//! For the attestation tests (attest.rs, live.rs): a tiny two-platform
//! build with a fake lock, and the independent validators, Python scripts
//! in `attest_tools/` beside this file, with their gate (fail under
//! CI=true when missing, skip with the reason otherwise).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use stele::attest::artifact;
use stele::attest::{
    attest, AttestInput, Attestation, BaseRef, BuilderFacts, DebPackage, Distro, PrivateKey,
    RunFacts, SbomPackage, Selection, SignOptions,
};
use stele::lock::{Lock, LockedPackage, LockedPlatform, LockedSource, LOCK_VERSION};
use stele::oci::{Built, Digest};
use stele::recipe::Recipe;
use stele::store::BlobStore;

pub const PIP: &str =
    "pip install -r .ci/requirements.txt (spdx-tools, cyclonedx-python-lib, jsonschema, securesystemslib[crypto], sigstore-models)";

pub fn recipe(platforms: &str) -> Recipe {
    let text = format!(
        "[image]\nname = \"team/hello\"\nepoch = 1700000000\nplatforms = [{platforms}]\n\
         [[paths]]\npath = \"/etc/motd\"\nkind = \"file\"\ncontent = \"hi\\n\"\n"
    );
    stele::recipe::parse(Path::new("hello.toml"), &text, None).unwrap()
}

pub fn build(recipe: &Recipe) -> (tempfile::TempDir, BlobStore, Built) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let built = stele::build(recipe, &Default::default(), &Default::default(), &store)
        .unwrap()
        .built;
    (dir, store, built)
}

pub fn sha(s: &str) -> Digest {
    Digest::of(s.as_bytes())
}

/// Two packages per platform: busybox-static built per architecture, and
/// ca-certificates (`Architecture: all`), the same .deb on every platform.
pub fn lock_and_packages(built: &Built) -> (Lock, BTreeMap<String, Vec<SbomPackage>>) {
    let mut platforms = BTreeMap::new();
    let mut packages = BTreeMap::new();
    for image in &built.images {
        let arch = image.platform.debian_arch().unwrap();
        let busybox = ("busybox-static", "1:1.35.0-4+b3", arch, sha(arch));
        let certs = ("ca-certificates", "20230311", "all", sha("certs"));
        let locked = [&busybox, &certs]
            .iter()
            .map(|(n, v, a, d)| LockedPackage {
                name: n.to_string(),
                version: v.to_string(),
                architecture: a.to_string(),
                source: 0,
                path: format!("pool/main/x/{n}.deb"),
                size: 100,
                sha256: d.clone(),
                date: None,
            })
            .collect();
        platforms.insert(
            image.platform.to_string(),
            LockedPlatform {
                packages: locked,
                ..Default::default()
            },
        );
        let layer = image.layers[0].digest.clone();
        packages.insert(
            image.platform.to_string(),
            vec![
                SbomPackage {
                    deb: DebPackage {
                        name: busybox.0.into(),
                        version: busybox.1.into(),
                        architecture: arch.into(),
                        // One package whose copyright file states no license.
                        license: (arch == "amd64").then(|| "GPL-2.0-only".into()),
                        source_package: "busybox".into(),
                        // A binNMU: the source's version is not the binary's.
                        source_version: Some("1:1.35.0-4".into()),
                        sha256: busybox.3.clone(),
                        purl: None,
                    },
                    layer_digest: layer.clone(),
                },
                SbomPackage {
                    deb: DebPackage {
                        name: certs.0.into(),
                        version: certs.1.into(),
                        architecture: "all".into(),
                        license: Some(
                            "GPL-2.0-or-later AND LicenseRef-debian-public-domain".into(),
                        ),
                        source_package: "ca-certificates".into(),
                        source_version: None,
                        sha256: certs.3.clone(),
                        purl: None,
                    },
                    layer_digest: layer,
                },
            ],
        );
    }
    let lock = Lock {
        version: LOCK_VERSION,
        recipe_digest: sha("recipe"),
        encoding: stele::layer::Profile::default(),
        sources: vec![LockedSource {
            suite: "bookworm".into(),
            components: vec!["main".into()],
            inrelease_sha256: sha("inrelease"),
            date: None,
        }],
        platforms,
        python: None,
        node: None,
    };
    (lock, packages)
}

pub fn input<'a>(
    built: &'a Built,
    recipe: &'a Recipe,
    lock: &'a Lock,
    packages: BTreeMap<String, Vec<SbomPackage>>,
) -> AttestInput<'a> {
    let distros = built
        .images
        .iter()
        .map(|i| (i.platform.to_string(), bookworm()))
        .collect();
    AttestInput {
        scripts: Default::default(),
        built,
        recipe,
        lock: Some(lock),
        packages,
        distros,
        base: Some(BaseRef {
            name: "registry.example/base/debian".into(),
            digest: sha("base"),
        }),
        builder: BuilderFacts {
            id: "https://ci.example/builders/release".into(),
            build_type: "https://stele.example/README.md#build-type-v1".into(),
            stele_version: "0.1.0".into(),
        },
        run: RunFacts {
            invocation_id: Some("https://ci.example/team/app/jobs/42".into()),
            started_on: Some("2026-01-02T03:04:05Z".into()),
            finished_on: Some("2026-01-02T03:04:09Z".into()),
        },
    }
}

pub fn bookworm() -> Distro {
    Distro {
        id: "debian".into(),
        version_id: "12".into(),
    }
}

/// Builds the two-platform fixture and attests it.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub store: BlobStore,
    pub built: Built,
    pub recipe: Recipe,
    pub lock: Lock,
    pub packages: BTreeMap<String, Vec<SbomPackage>>,
}

impl Fixture {
    pub fn new(platforms: &str) -> Fixture {
        let recipe = recipe(platforms);
        let (dir, store, built) = build(&recipe);
        let (lock, packages) = lock_and_packages(&built);
        Fixture {
            _dir: dir,
            store,
            built,
            recipe,
            lock,
            packages,
        }
    }

    pub fn attest(&self, key: Option<&PrivateKey>) -> Vec<Attestation> {
        self.attest_as(key, None)
    }

    /// With a key and an identity, the image signatures too.
    pub fn attest_as(&self, key: Option<&PrivateKey>, identity: Option<&str>) -> Vec<Attestation> {
        let input = input(&self.built, &self.recipe, &self.lock, self.packages.clone());
        attest(
            &input,
            Selection::All,
            &SignOptions { key, identity },
            &self.store,
        )
        .unwrap()
    }

    /// The content (single layer) of an attestation, as stored.
    pub fn content(&self, a: &Attestation) -> Vec<u8> {
        artifact::open(&self.store, &a.manifest.digest, Some(a.manifest.size()))
            .unwrap()
            .content
    }
}

pub const TWO: &str = "\"linux/arm64\", \"linux/amd64\"";

// ---- independent validators (Python) ----

/// Whether python3 can import `modules`. Missing: fail under CI=true,
/// otherwise skip with the reason printed.
pub fn python_has(modules: &[&str]) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("python3 with {modules:?} is not available; install with: {PIP}");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        super::skip(&msg);
    }
    ok
}

pub fn tool(script: &str, args: &[&Path]) -> (bool, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/support/attest_tools")
        .join(script);
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
