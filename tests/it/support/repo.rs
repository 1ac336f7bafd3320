//! A signed apt repository on disk, built from [`Deb`]s: the same layout a
//! Debian mirror has (`dists/<suite>/InRelease`, `…/binary-<arch>/Packages*`,
//! `pool/…`), signed by an OpenPGP key generated for the test, with knobs
//! to break each link of the trust chain.
//!
//! ```ignore
//! let repo = AptRepo::builder()
//!     .suite("stable", &["amd64", "arm64"])
//!     .deb("stable", Deb::new("hello", "1.0-1", "amd64").entry(DebEntry::file("etc/hello", "hi")))
//!     .build();
//! let (url, _server) = repo.serve();           // or repo.file_url()
//! let keyring = std::fs::read(repo.keyring_path()).unwrap();
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Timestamp};
use rand::SeedableRng;
use stele::oci::Digest;

use super::deb::{md5_hex, Compression, Deb, FIXTURE_MTIME};
use super::http::HttpServer;

/// An OpenPGP key shaped like Debian's archive keys: a certify-only
/// Ed25519 primary and an Ed25519 signing subkey that does the signing.
/// Generation is deterministic in `seed` (apart from self-signature
/// times) and takes milliseconds.
pub struct TestKey {
    pub secret: SignedSecretKey,
}

impl TestKey {
    pub fn generate(seed: u64, user_id: &str) -> TestKey {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let created = Timestamp::from_secs(FIXTURE_MTIME as u32);
        let signing = SubkeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_sign(true)
            .created_at(created)
            .build()
            .unwrap();
        let params = SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(false)
            .created_at(created)
            .primary_user_id(user_id.into())
            .subkeys(vec![signing])
            .build()
            .unwrap();
        TestKey {
            secret: params.generate(&mut rng).unwrap(),
        }
    }

    pub fn public(&self) -> SignedPublicKey {
        self.secret.to_public_key()
    }

    /// The public key as a binary keyring (like `/usr/share/keyrings/*.gpg`).
    pub fn public_binary(&self) -> Vec<u8> {
        self.public().to_bytes().unwrap()
    }

    /// The public key ASCII-armored (like `*.asc`).
    pub fn public_armored(&self) -> String {
        self.public()
            .to_armored_string(ArmorOptions::default())
            .unwrap()
    }

    /// Uppercase hex fingerprint of the primary key.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.secret.fingerprint())
    }

    /// Uppercase hex fingerprint of the signing subkey.
    pub fn signing_fingerprint(&self) -> String {
        format!("{:X}", self.secret.secret_subkeys[0].key.fingerprint())
    }

    /// `text` clear-signed by the signing subkey, with a fixed signature
    /// time so the same text gives the same bytes.
    pub fn clearsign(&self, text: &str) -> Vec<u8> {
        let subkey = &self.secret.secret_subkeys[0].key;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut config = SignatureConfig::from_key(&mut rng, subkey, SignatureType::Text).unwrap();
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                FIXTURE_MTIME as u32,
            )))
            .unwrap(),
            Subpacket::regular(SubpacketData::IssuerFingerprint(subkey.fingerprint())).unwrap(),
        ];
        config.unhashed_subpackets =
            vec![Subpacket::regular(SubpacketData::IssuerKeyId(subkey.legacy_key_id())).unwrap()];
        CleartextSignedMessage::new(text, config, subkey, &Password::empty())
            .unwrap()
            .to_armored_bytes(ArmorOptions::default())
            .unwrap()
    }
}

/// How `dists/<suite>/InRelease` is produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// Clear-signed by the repository key (published as the keyring).
    Signed,
    /// The plain Release text, no signature at all.
    Unsigned,
    /// Clear-signed by a key that is not in the published keyring.
    UnknownKey,
}

/// A deliberate break in the trust chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Every Packages file is changed after the Release listed its hash
    /// (the signature stays valid).
    PackagesHashMismatch,
    /// The named package's pool file is changed (same size) after
    /// Packages listed its hash.
    DebHashMismatch(String),
    /// The named package's pool file is truncated garbage, and Packages
    /// lists the garbage's true hash: it downloads fine and fails to parse.
    CorruptDeb(String),
}

struct SuiteSpec {
    architectures: Vec<String>,
    /// component → packages
    components: BTreeMap<String, Vec<Deb>>,
}

pub struct AptRepoBuilder {
    suites: BTreeMap<String, SuiteSpec>,
    signing: Signing,
    tampers: Vec<Tamper>,
    index_compressions: Vec<Compression>,
    key_seed: u64,
}

/// A package as published: where it is and what Packages says about it.
#[derive(Clone, Debug)]
pub struct PublishedDeb {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Relative to the repository root (`pool/main/h/hello/hello_1.0_amd64.deb`).
    pub pool_path: String,
    /// What Packages lists (which a tamper may make wrong).
    pub sha256: Digest,
    pub size: u64,
    /// The bytes served from the pool.
    pub bytes: Vec<u8>,
    /// The Packages stanza, ending in a newline.
    pub stanza: String,
}

/// A written repository in a temporary directory (removed on drop).
pub struct AptRepo {
    dir: tempfile::TempDir,
    pub key: TestKey,
    pub debs: Vec<PublishedDeb>,
}

impl AptRepo {
    pub fn builder() -> AptRepoBuilder {
        AptRepoBuilder {
            suites: BTreeMap::new(),
            signing: Signing::Signed,
            tampers: Vec::new(),
            index_compressions: vec![Compression::None, Compression::Gzip, Compression::Xz],
            key_seed: 1,
        }
    }

    /// The repository root (what a mirror URL points at).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `file://<root>`, usable as a mirror URL.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.root().display())
    }

    /// The binary public keyring (`keyring.gpg` beside `dists/`).
    pub fn keyring_path(&self) -> PathBuf {
        self.root().join("keyring.gpg")
    }

    /// The ASCII-armored public keyring (`keyring.asc`).
    pub fn armored_keyring_path(&self) -> PathBuf {
        self.root().join("keyring.asc")
    }

    pub fn keyring_bytes(&self) -> Vec<u8> {
        std::fs::read(self.keyring_path()).unwrap()
    }

    pub fn inrelease_path(&self, suite: &str) -> PathBuf {
        self.root().join(format!("dists/{suite}/InRelease"))
    }

    pub fn inrelease(&self, suite: &str) -> Vec<u8> {
        std::fs::read(self.inrelease_path(suite)).unwrap()
    }

    /// The first published package called `name` (any suite, any arch).
    pub fn deb(&self, name: &str) -> &PublishedDeb {
        self.debs
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no package {name} in the test repository"))
    }

    /// Serves the repository over loopback HTTP until the server is dropped.
    pub fn serve(&self) -> (String, HttpServer) {
        HttpServer::serve(self.root())
    }
}

impl AptRepoBuilder {
    /// Declares a suite and the architectures its Release lists and its
    /// indexes cover. Suites only named by [`AptRepoBuilder::deb`] list
    /// the architectures of their packages (or `amd64`).
    pub fn suite(mut self, suite: &str, architectures: &[&str]) -> Self {
        self.suites
            .entry(suite.into())
            .or_insert_with(|| SuiteSpec {
                architectures: Vec::new(),
                components: BTreeMap::new(),
            })
            .architectures = architectures.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Adds a package to `suite`, component `main`.
    pub fn deb(self, suite: &str, deb: Deb) -> Self {
        self.deb_in(suite, "main", deb)
    }

    pub fn deb_in(mut self, suite: &str, component: &str, deb: Deb) -> Self {
        self.suites
            .entry(suite.into())
            .or_insert_with(|| SuiteSpec {
                architectures: Vec::new(),
                components: BTreeMap::new(),
            })
            .components
            .entry(component.into())
            .or_default()
            .push(deb);
        self
    }

    pub fn signing(mut self, signing: Signing) -> Self {
        self.signing = signing;
        self
    }

    pub fn tamper(mut self, tamper: Tamper) -> Self {
        self.tampers.push(tamper);
        self
    }

    /// Which `Packages` forms are published and listed (default: plain,
    /// `.gz` and `.xz`).
    pub fn index_compressions(mut self, c: &[Compression]) -> Self {
        self.index_compressions = c.to_vec();
        self
    }

    pub fn build(self) -> AptRepo {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let key = TestKey::generate(
            self.key_seed,
            "stele test repository <repo@example.invalid>",
        );
        std::fs::write(root.join("keyring.gpg"), key.public_binary()).unwrap();
        std::fs::write(root.join("keyring.asc"), key.public_armored()).unwrap();
        let tampered = |t: Tamper| self.tampers.contains(&t);

        let mut published = Vec::new();
        for (suite, spec) in &self.suites {
            let mut architectures = spec.architectures.clone();
            if architectures.is_empty() {
                for deb in spec.components.values().flatten() {
                    if deb.arch != "all" && !architectures.contains(&deb.arch) {
                        architectures.push(deb.arch.clone());
                    }
                }
                architectures.sort();
                if architectures.is_empty() {
                    architectures.push("amd64".into());
                }
            }
            let mut release_entries: Vec<(String, Vec<u8>)> = Vec::new();
            let mut tamper_later: Vec<PathBuf> = Vec::new();
            for (component, debs) in &spec.components {
                let mut suite_debs: Vec<PublishedDeb> = debs
                    .iter()
                    .map(|deb| publish(root, component, deb, &tampered))
                    .collect();
                suite_debs.sort_by(|a, b| {
                    (&a.name, &a.version, &a.arch).cmp(&(&b.name, &b.version, &b.arch))
                });
                for arch in &architectures {
                    let text: Vec<&str> = suite_debs
                        .iter()
                        .filter(|d| &d.arch == arch || d.arch == "all")
                        .map(|d| d.stanza.as_str())
                        .collect();
                    let text = text.join("\n");
                    let rel_dir = format!("{component}/binary-{arch}");
                    let abs_dir = root.join(format!("dists/{suite}/{rel_dir}"));
                    std::fs::create_dir_all(&abs_dir).unwrap();
                    for c in &self.index_compressions {
                        let name = format!("Packages{}", c.suffix());
                        let bytes = c.compress(text.as_bytes());
                        std::fs::write(abs_dir.join(&name), &bytes).unwrap();
                        release_entries.push((format!("{rel_dir}/{name}"), bytes));
                        tamper_later.push(abs_dir.join(&name));
                    }
                }
                published.extend(suite_debs);
            }
            let release = release_text(suite, &architectures, &spec.components, &release_entries);
            let dists = root.join(format!("dists/{suite}"));
            std::fs::create_dir_all(&dists).unwrap();
            std::fs::write(dists.join("Release"), &release).unwrap();
            let inrelease = match self.signing {
                Signing::Signed => key.clearsign(&release),
                Signing::Unsigned => release.clone().into_bytes(),
                Signing::UnknownKey => TestKey::generate(
                    self.key_seed + 1_000_000,
                    "someone else <x@example.invalid>",
                )
                .clearsign(&release),
            };
            std::fs::write(dists.join("InRelease"), inrelease).unwrap();
            if tampered(Tamper::PackagesHashMismatch) {
                let injected = "Package: injected\nVersion: 6.6.6\nArchitecture: all\nFilename: pool/evil.deb\nSize: 1\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\n";
                for path in tamper_later {
                    let name = path.file_name().unwrap().to_string_lossy().to_string();
                    let c = match name.rsplit_once('.').map(|(_, ext)| ext) {
                        Some("gz") => Compression::Gzip,
                        Some("xz") => Compression::Xz,
                        _ => Compression::None,
                    };
                    std::fs::write(&path, c.compress(injected.as_bytes())).unwrap();
                }
            }
        }
        AptRepo {
            dir,
            key,
            debs: published,
        }
    }
}

/// Builds the deb, applies package tampers, writes the pool file and
/// returns what Packages will list.
fn publish(
    root: &Path,
    component: &str,
    deb: &Deb,
    tampered: &dyn Fn(Tamper) -> bool,
) -> PublishedDeb {
    let mut bytes = deb.build();
    if tampered(Tamper::CorruptDeb(deb.name.clone())) {
        bytes.truncate(bytes.len() / 2);
    }
    let sha256 = Digest::of(&bytes);
    let size = bytes.len() as u64;
    let md5 = md5_hex(&bytes);
    if tampered(Tamper::DebHashMismatch(deb.name.clone())) {
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
    }
    let prefix = if deb.name.starts_with("lib") && deb.name.len() > 3 {
        &deb.name[..4]
    } else {
        &deb.name[..1]
    };
    // Pool file names drop the epoch, as dak does.
    let file_version = deb
        .version
        .split_once(':')
        .map_or(&*deb.version, |(_, v)| v);
    let pool_path = format!(
        "pool/{component}/{prefix}/{name}/{name}_{file_version}_{arch}.deb",
        name = deb.name,
        arch = deb.arch
    );
    let abs = root.join(&pool_path);
    std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
    if let Ok(existing) = std::fs::read(&abs) {
        assert_eq!(existing, bytes, "two different packages at {pool_path}");
    }
    std::fs::write(&abs, &bytes).unwrap();
    let stanza = format!(
        "{}Filename: {pool_path}\nSize: {size}\nMD5sum: {md5}\nSHA256: {}\n",
        deb.control_text(),
        sha256.hex()
    );
    PublishedDeb {
        name: deb.name.clone(),
        version: deb.version.clone(),
        arch: deb.arch.clone(),
        pool_path,
        sha256,
        size,
        bytes,
        stanza,
    }
}

fn release_text(
    suite: &str,
    architectures: &[String],
    components: &BTreeMap<String, Vec<Deb>>,
    entries: &[(String, Vec<u8>)],
) -> String {
    let mut text = format!(
        "Origin: stele-tests\nLabel: stele-tests\nSuite: {suite}\nCodename: {suite}\nDate: Sun, 09 Sep 2001 01:46:40 UTC\nArchitectures: {}\nComponents: {}\nDescription: stele test repository\n",
        architectures.join(" "),
        components.keys().cloned().collect::<Vec<_>>().join(" "),
    );
    text.push_str("MD5Sum:\n");
    for (path, bytes) in entries {
        text.push_str(&format!(" {} {:>8} {path}\n", md5_hex(bytes), bytes.len()));
    }
    text.push_str("SHA256:\n");
    for (path, bytes) in entries {
        text.push_str(&format!(
            " {} {:>8} {path}\n",
            Digest::of(bytes).hex(),
            bytes.len()
        ));
    }
    text
}
