use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::fstree::{Content, FsTree, Node};
use crate::layer::test_support::{GZIP, ZSTD};
use crate::oci::{Image, Platform};
use crate::source::layout::Selector;
use crate::source::Target;

fn tree(text: &str) -> FsTree {
    let mut t = FsTree::new();
    t.insert(
        "etc/motd".into(),
        Node::file(Content::bytes(text.to_string()), 0o644, 0, 0, 5),
    )
    .unwrap();
    t.complete_parents(&Node::dir(0o755, 0, 0, 5)).unwrap();
    t
}

/// A one-platform image of `layers` written as a layout at `dir`, its
/// config listing `diff_ids` (the layers' own unless given), with the
/// store it was written through (which knows the files it wrote).
fn layout(store: &BlobStore, layers: &[LayerBlob], diff_ids: Option<Vec<Digest>>) -> Built {
    let dir = store.root();
    let diff_ids: Vec<String> = diff_ids
        .unwrap_or_else(|| layers.iter().map(|l| l.diff_id.clone()).collect())
        .iter()
        .map(ToString::to_string)
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = serde_json::from_value(config).unwrap();
    let platform: Platform = "linux/amd64".parse().unwrap();
    let mut listed = layers.to_vec();
    for (layer, diff_id) in listed.iter_mut().zip(&diff_ids) {
        layer.diff_id = diff_id.parse().unwrap();
    }
    let built = Built::new(
        vec![Image::new(platform, config, listed, &BTreeMap::new())],
        &BTreeMap::new(),
    );
    for image in &built.images {
        store.put_bytes(&image.config.bytes).unwrap();
        store.put_bytes(&image.manifest.bytes).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), crate::oci::layout::OCI_LAYOUT).unwrap();
    let index =
        crate::oci::layout::layout_index(built.top_descriptor(), "latest", &BTreeMap::new(), &[]);
    std::fs::write(dir.join("index.json"), index).unwrap();
    built
}

/// Two layers written into a store at `dir`: gzip and zstd.
fn two_layers(dir: &Path) -> (Vec<LayerBlob>, BlobStore) {
    let store = BlobStore::open(dir).unwrap();
    let layers = vec![
        crate::layer::write_layer(&tree("one"), GZIP, &store, None).unwrap(),
        crate::layer::write_layer(&tree("two"), ZSTD, &store, None).unwrap(),
    ];
    (layers, store)
}

fn check(memo: &CheckedLayers, dir: &Path) -> Result<CheckReport, SourceError> {
    let target = Target::Layout {
        path: dir.to_path_buf(),
        selector: Selector::Only,
    };
    let unchecked = crate::source::open_deferred(&target, None).unwrap();
    memo.check(unchecked, 2).map(|(_, report)| report)
}

fn memo(dir: &Path) -> CheckedLayers {
    CheckedLayers::open(&BlobStore::open(dir.join("cache")).unwrap()).unwrap()
}

fn report(known: usize, hashed: usize, read: usize) -> CheckReport {
    CheckReport {
        known,
        hashed,
        read,
        ..CheckReport::default()
    }
}

/// A layout a build wrote is pushed without reading its layers; a copy
/// of it (other files) is hashed once, then known too.
#[test]
fn a_layout_stele_wrote_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (layers, store) = two_layers(&out);
    let built = layout(&store, &layers, None);
    let memo = memo(dir.path());
    memo.record_built(&built, &store);
    assert_eq!(check(&memo, &out).unwrap(), report(2, 0, 0));

    let copy = dir.path().join("copy");
    let status = std::process::Command::new("cp")
        .args(["-r", out.to_str().unwrap(), copy.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(check(&memo, &copy).unwrap(), report(0, 2, 0));
    assert_eq!(check(&memo, &copy).unwrap(), report(2, 0, 0));
    // The first layout's files are still known: several are kept.
    assert_eq!(check(&memo, &out).unwrap(), report(2, 0, 0));
}

/// Without records every layer is uncompressed, and then recorded.
#[test]
fn layers_read_once_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (layers, store) = two_layers(&out);
    layout(&store, &layers, None);
    let memo = memo(dir.path());
    assert_eq!(check(&memo, &out).unwrap(), report(0, 0, 2));
    assert_eq!(check(&memo, &out).unwrap(), report(2, 0, 0));
}

/// A blob written since it was checked is hashed again, and refused
/// when it is no longer its digest's bytes, whatever was recorded.
#[test]
fn a_changed_blob_is_hashed_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (layers, store) = two_layers(&out);
    let built = layout(&store, &layers, None);
    let memo = memo(dir.path());
    memo.record_built(&built, &store);

    let path = store.path(&layers[0].digest);
    let bytes = std::fs::read(&path).unwrap();
    // The same bytes written again: another ctime, so hashed.
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(check(&memo, &out).unwrap(), report(1, 1, 0));

    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    std::fs::write(&path, &damaged).unwrap();
    let err = check(&memo, &out).unwrap_err();
    assert!(
        matches!(&err, SourceError::DiffIdUnreadable { digest, .. } if digest == &layers[0].digest),
        "{err}"
    );
}

/// A config that lists another DiffID than the one recorded is not
/// taken at the record's word: the layer is read, and the mismatch named.
#[test]
fn a_record_the_config_disagrees_with_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (layers, store) = two_layers(&out);
    let built = layout(&store, &layers, None);
    let memo = memo(dir.path());
    memo.record_built(&built, &store);

    let lying = dir.path().join("lying");
    std::fs::create_dir_all(lying.join("blobs/sha256")).unwrap();
    for l in &layers {
        std::fs::copy(
            store.path(&l.digest),
            lying.join("blobs/sha256").join(l.digest.hex()),
        )
        .unwrap();
    }
    let claimed = vec![layers[1].diff_id.clone(), layers[1].diff_id.clone()];
    layout(
        &BlobStore::open(&lying).unwrap(),
        &layers,
        Some(claimed.clone()),
    );
    let err = check(&memo, &lying).unwrap_err();
    match err {
        SourceError::DiffIdMismatch { mismatch, .. } => {
            assert_eq!(mismatch.position, "1/2");
            assert_eq!(mismatch.found, layers[0].diff_id);
            assert_eq!(mismatch.claimed, claimed[0]);
        }
        other => panic!("expected a DiffID mismatch, got {other}"),
    }
}

/// A record answers only the bytes it names: another size or codec is a
/// miss, and a damaged record is dropped.
#[test]
fn a_record_answers_only_its_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (layers, _) = two_layers(&dir.path().join("out"));
    let memo = memo(dir.path());
    let layer = &layers[0];
    memo.put(layer, Codec::Gzip, &layer.diff_id, None);
    assert_eq!(
        memo.recorded(layer, Codec::Gzip),
        Some(layer.diff_id.clone())
    );
    assert_eq!(memo.recorded(layer, Codec::Zstd), None, "dropped");
    memo.put(layer, Codec::Gzip, &layer.diff_id, None);
    let longer = LayerBlob {
        size: layer.size + 1,
        ..layer.clone()
    };
    assert_eq!(memo.recorded(&longer, Codec::Gzip), None);
    memo.put(layer, Codec::Gzip, &layer.diff_id, None);
    std::fs::write(memo.records.pointer_path(&layer.digest), "sha256:00\n").unwrap();
    assert_eq!(memo.recorded(layer, Codec::Gzip), None);
}

/// What lands in the cache during a pull is read as it lands: the layers
/// the manifest names are recorded before the pull ends.
#[test]
fn layers_are_checked_as_they_land() {
    let dir = tempfile::tempdir().unwrap();
    let (layers, src) = two_layers(&dir.path().join("src"));
    let built = layout(&src, &layers, None);
    let cache = BlobStore::open(dir.path().join("cache")).unwrap();
    let memo = CheckedLayers::open(&cache).unwrap();
    let codecs = [Codec::Gzip, Codec::Zstd];
    let recorded = || {
        layers
            .iter()
            .zip(codecs)
            .all(|(l, c)| memo.recorded(l, c).as_ref() == Some(&l.diff_id))
    };
    let ((), landed) = memo.check_while(&cache, || {
        // As a pull stores them: the manifest first, then the layers.
        cache.put_bytes(&built.images[0].manifest.bytes).unwrap();
        for l in &layers {
            cache.copy_checked_from(&src, &l.digest, l.size).unwrap();
        }
        for _ in 0..1000 {
            if recorded() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
    assert!(
        recorded(),
        "each layer recorded with the DiffID its bytes give"
    );
    assert_eq!(landed, 2, "both read beside the pull");

    // The check after the pull finds them known from the cache's own
    // files, and says they were read by this command, not before it.
    layout(&cache, &layers, None);
    let target = Target::Layout {
        path: cache.root().to_path_buf(),
        selector: Selector::Only,
    };
    let opened = |dir: &Target| crate::source::open_deferred(dir, None).unwrap();
    let (_, after) = memo.check_landed(opened(&target), 2, landed).unwrap();
    assert_eq!(after, report(0, 0, 2));
    let (_, again) = memo.check(opened(&target), 2).unwrap();
    assert_eq!(again, report(2, 0, 0), "a later check did not read them");
}

/// A layer of several blocks with no record is uncompressed as
/// independent blocks on both threads, and the report says so.
#[test]
fn large_layers_are_checked_in_blocks_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let text: String = (0..700_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{:x} ", x >> 44)
        })
        .collect();
    let mut big = FsTree::new();
    big.insert(
        "usr/share/big.txt".into(),
        Node::file(Content::bytes(text), 0o644, 0, 0, 5),
    )
    .unwrap();
    big.complete_parents(&Node::dir(0o755, 0, 0, 5)).unwrap();
    for (i, encoding) in [GZIP, ZSTD].into_iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let store = BlobStore::open(&out).unwrap();
        let layer = crate::layer::write_layer(&big, encoding, &store, None).unwrap();
        assert!(layer.size > 2 << 20);
        layout(&store, &[layer], None);
        let memo = memo(&dir.path().join(format!("cache{i}")));
        let report = check(&memo, &out).unwrap();
        assert_eq!(
            (report.read, report.split, report.widest),
            (1, 1, 2),
            "{report}"
        );
        assert!(
            report
                .to_string()
                .ends_with("1 uncompressed (1 of them in blocks on up to 2 threads)"),
            "{report}"
        );
    }
}
