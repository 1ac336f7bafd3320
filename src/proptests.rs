//! Property tests for every reader of untrusted input: the recipe, apt
//! control files and Release files, .debs, tar layers, image archives and
//! registry JSON. The property is the reader's contract on hostile bytes:
//! it returns (an answer or a named error), never panics, hangs or grows
//! without bound. Inputs are arbitrary bytes and valid samples with bytes
//! flipped, inserted or cut.
//!
//! The seed is fixed, so `cargo test` runs the same 64 cases per reader
//! every time (a few seconds in all); `STELE_PROPTEST_CASES=N` runs more.
//! A failure found here becomes a regression test beside its reader.

use std::io::Write;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use crate::oci::{Digest, JsonBlob, LayerBlob};
use crate::store::BlobStore;

fn cases() -> u32 {
    std::env::var("STELE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Runs `test` on `cases()` values of `strategy` from a fixed seed.
fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut seed = [0u8; 32];
    seed[..name.len().min(32)].copy_from_slice(&name.as_bytes()[..name.len().min(32)]);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}");
    }
}

/// One edit of a sample: flip a byte, insert bytes, or cut.
#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Cut(usize, usize),
}

fn apply(sample: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = sample.to_vec();
    for e in edits {
        let len = out.len().max(1);
        match e {
            Edit::Flip(at, x) => {
                if !out.is_empty() {
                    let at = at % out.len();
                    out[at] ^= x | 1;
                }
            }
            Edit::Insert(at, bytes) => {
                let at = at % (out.len() + 1);
                out.splice(at..at, bytes.iter().copied());
            }
            Edit::Cut(at, n) => {
                let at = at % len;
                let end = (at + n).min(out.len());
                if at < end {
                    out.drain(at..end);
                }
            }
        }
    }
    out
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, x)| Edit::Flip(a, x)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), 1usize..64).prop_map(|(a, n)| Edit::Cut(a, n)),
    ];
    proptest::collection::vec(edit, 1..6)
}

/// Arbitrary bytes, or `sample` edited: most mutants stay close enough to
/// valid to reach the reader's deeper paths.
fn inputs(sample: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        edits().prop_map(move |e| apply(&sample, &e)),
    ]
}

const RECIPE: &str = r#"
[image]
name = "prop"
epoch = 1700000000

[[paths]]
path = "/etc/motd"
kind = "file"
content = "hello\n"

[accounts]
users = [{ name = "app", uid = 1000 }]

[config]
entrypoint = ["/bin/app"]
env = { LANG = "C.UTF-8" }
"#;

#[test]
fn the_recipe_reader_never_panics() {
    crate::recipe::parse(std::path::Path::new("recipe.toml"), RECIPE, None).unwrap();
    check("recipe", inputs(RECIPE.as_bytes().to_vec()), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        let _ = crate::recipe::parse(std::path::Path::new("recipe.toml"), &text, None);
        Ok(())
    });
}

const PACKAGES: &str = "Package: a\nVersion: 1.0-1\nArchitecture: amd64\nDepends: b (>= 2), c | d\nFilename: pool/a.deb\nSize: 10\nSHA256: 0123456789012345678901234567890123456789012345678901234567890123\n\nPackage: b\nVersion: 2:3.4~rc1\nArchitecture: all\nFilename: pool/b.deb\nSize: 5\nSHA256: 0123456789012345678901234567890123456789012345678901234567890123\n";

#[test]
fn the_control_file_readers_never_panic() {
    assert_eq!(
        crate::apt::control::parse_packages_index(PACKAGES, "Packages", 0)
            .unwrap()
            .len(),
        2
    );
    check("control", inputs(PACKAGES.as_bytes().to_vec()), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        let _ = crate::apt::control::parse_packages_index(&text, "Packages", 0);
        let _ = crate::dpkg::deb::parse_stanza(&text);
        let _ = crate::apt::control::parse_relation_list(&text, "amd64");
        Ok(())
    });
}

const RELEASE: &str = "Origin: Test\nSuite: stable\nCodename: test\nDate: Sat, 01 Jan 2000 00:00:00 UTC\nArchitectures: amd64 arm64\nComponents: main\nSHA256:\n 0123456789012345678901234567890123456789012345678901234567890123 100 main/binary-amd64/Packages\n";

#[test]
fn the_release_reader_never_panics() {
    crate::apt::release::Release::parse(RELEASE, "Release").unwrap();
    check("release", inputs(RELEASE.as_bytes().to_vec()), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        let _ = crate::apt::release::Release::parse(&text, "Release");
        Ok(())
    });
}

/// A tar of a few entries of every kind a layer holds, with PAX and GNU
/// long names.
fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>,
               name: &str,
               kind: tar::EntryType,
               data: &[u8],
               link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&mut b, "etc/", tar::EntryType::Directory, b"", None);
    add(
        &mut b,
        "etc/passwd",
        tar::EntryType::Regular,
        b"root:x:0:0::/root:/bin/sh\n",
        None,
    );
    add(
        &mut b,
        &("usr/".repeat(40) + "long"),
        tar::EntryType::Regular,
        b"x",
        None,
    );
    add(
        &mut b,
        "etc/link",
        tar::EntryType::Symlink,
        b"",
        Some("passwd"),
    );
    add(
        &mut b,
        "etc/hard",
        tar::EntryType::Link,
        b"",
        Some("etc/passwd"),
    );
    add(&mut b, "etc/.wh.gone", tar::EntryType::Regular, b"", None);
    b.append_pax_extensions([("SCHILY.xattr.user.a", b"v".as_slice())])
        .unwrap();
    add(&mut b, "etc/xattr", tar::EntryType::Regular, b"data", None);
    b.into_inner().unwrap()
}

#[test]
fn the_layer_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    check("layer", inputs(sample_tar()), |bytes| {
        let digest = store.put_bytes(&bytes).unwrap();
        for (media_type, blob) in [
            ("application/vnd.oci.image.layer.v1.tar", bytes.clone()),
            ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(&bytes)),
        ] {
            let digest = if blob == bytes {
                digest.clone()
            } else {
                store.put_bytes(&blob).unwrap()
            };
            let layer = LayerBlob {
                media_type: media_type.into(),
                digest,
                size: blob.len() as u64,
                diff_id: Digest::of(b""),
            };
            let _ =
                crate::source::unpack::for_each_entry(&store, &layer, &|_| true, &mut |_, _| {});
            let _ = crate::source::unpack::merged_view(&store, &[layer], &|_| true);
        }
        Ok(())
    });
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An oci-archive with an index naming a manifest that is absent: enough
/// structure for the member checks and index parsing to run.
fn sample_archive() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = Digest::of(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let manifest_digest = Digest::of(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{}}}]}}"#,
        manifest.len()
    );
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", index.as_bytes());
    add(
        &format!("blobs/sha256/{}", manifest_digest.hex()),
        manifest.as_bytes(),
    );
    add(&format!("blobs/sha256/{}", config_digest.hex()), config);
    let docker = format!(
        r#"[{{"Config":"blobs/sha256/{}","RepoTags":["a:b"],"Layers":[]}}]"#,
        config_digest.hex()
    );
    add("manifest.json", docker.as_bytes());
    b.into_inner().unwrap()
}

#[test]
fn the_archive_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.tar");
    // The sample itself opens: the mutants start from a readable archive.
    std::fs::write(&path, sample_archive()).unwrap();
    let selector = crate::source::layout::Selector::Only;
    crate::source::archive::open_archive(&path, None, &selector).unwrap();
    check("archive", inputs(sample_archive()), |bytes| {
        std::fs::write(&path, &bytes).unwrap();
        for kind in [None, Some(crate::source::target::ArchiveKind::Docker)] {
            let _ = crate::source::archive::open_archive(&path, kind, &selector);
            let _ = crate::source::archive::unpack_layout_of(&path, kind);
        }
        Ok(())
    });
}

#[test]
fn the_deb_reader_never_panics() {
    let data = gzip(&sample_tar());
    let control = gzip(&{
        let mut b = tar::Builder::new(Vec::new());
        let text = b"Package: a\nVersion: 1\nArchitecture: amd64\n";
        let mut h = tar::Header::new_ustar();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "./control", &text[..]).unwrap();
        b.into_inner().unwrap()
    });
    let mut deb = b"!<arch>\n".to_vec();
    for (name, body) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", control),
        ("data.tar.gz", data),
    ] {
        deb.extend_from_slice(
            format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                100644,
                body.len()
            )
            .as_bytes(),
        );
        deb.extend_from_slice(&body);
        if body.len() % 2 == 1 {
            deb.push(b'\n');
        }
    }
    crate::dpkg::deb::read_deb("sample.deb", &deb[..], 0).unwrap();
    check("deb", inputs(deb), |bytes| {
        let _ = crate::dpkg::deb::read_deb("prop.deb", &bytes[..], 0);
        Ok(())
    });
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0123456789012345678901234567890123456789012345678901234567890123","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:0123456789012345678901234567890123456789012345678901234567890123","size":3,"urls":["http://x"]}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0123456789012345678901234567890123456789012345678901234567890123","size":1},"annotations":{"a":"b"}}"#;

#[test]
fn the_registry_json_readers_never_panic() {
    JsonBlob::<oci_spec::image::ImageManifest>::parse(MANIFEST.as_bytes().to_vec()).unwrap();
    check(
        "registry-json",
        inputs(MANIFEST.as_bytes().to_vec()),
        |bytes| {
            let _ = JsonBlob::<oci_spec::image::ImageManifest>::parse(bytes.clone());
            let _ = JsonBlob::<oci_spec::image::ImageIndex>::parse(bytes.clone());
            let _ = JsonBlob::<oci_spec::image::ImageConfiguration>::parse(bytes.clone());
            let _ = crate::registry::error_codes(&bytes);
            let _ = crate::registry::auth::parse_token(&bytes);
            let text = String::from_utf8_lossy(&bytes);
            let _ = crate::registry::auth::parse_challenge(&text);
            let _ = crate::registry::Reference::parse(&text);
            if let Ok(m) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes) {
                for l in m.layers() {
                    let _ = crate::oci::our_digest(l.digest());
                }
            }
            Ok(())
        },
    );
}

/// Entries of a generated tar: name length, data size, kind, PAX record.
fn tar_entries() -> impl Strategy<Value = Vec<(usize, usize, u8, bool)>> {
    proptest::collection::vec((1usize..300, 0usize..3000, 0u8..4, any::<bool>()), 0..12)
}

/// The tar guard follows every archive the `tar` crate writes: it never
/// refuses one within its limits, and the entries read through it are the
/// entries read without it.
#[test]
fn the_tar_guard_agrees_with_the_tar_crate() {
    use crate::source::tar_guard::{TarGuard, TarLimits};
    check("tar-guard", tar_entries(), |entries| {
        let mut b = tar::Builder::new(Vec::new());
        for (i, (name_len, size, kind, pax)) in entries.iter().enumerate() {
            let name = format!("{i}/{}", "n".repeat(*name_len));
            if *pax {
                b.append_pax_extensions([("SCHILY.xattr.user.k", b"v".as_slice())])
                    .unwrap();
            }
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match kind {
                0 | 1 => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(*size as u64);
                    b.append_data(&mut h, &name, &vec![b'a'; *size][..])
                        .unwrap();
                }
                2 => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, &name, &[][..]).unwrap();
                }
                _ => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, &name, "x".repeat(*name_len)).unwrap();
                }
            }
        }
        let bytes = b.into_inner().unwrap();
        let list = |guarded: bool| -> std::io::Result<Vec<(String, u64)>> {
            let limits = TarLimits {
                entries: 1000,
                bytes: u64::MAX,
                what: "layer",
            };
            let reader: Box<dyn std::io::Read> = if guarded {
                Box::new(TarGuard::new(&bytes[..], limits))
            } else {
                Box::new(&bytes[..])
            };
            let mut ar = tar::Archive::new(reader);
            let mut out = Vec::new();
            for e in ar.entries()? {
                let mut e = e?;
                let name = e.path()?.display().to_string();
                let n = std::io::copy(&mut e, &mut std::io::sink())?;
                out.push((name, n));
            }
            Ok(out)
        };
        let plain = list(false).unwrap();
        let guarded = list(true).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(plain, guarded);
        Ok(())
    });
}
