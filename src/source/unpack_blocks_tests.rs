//! A layer checked as independent blocks gives exactly what the
//! sequential decoder gives, for stele's layers and foreign ones.

use std::io::Write;

use oci_spec::image::MediaType;

use super::Threads;
use crate::layer::test_support::{GZIP, ZSTD};
use crate::layer::{Encoding, LayerSink};
use crate::oci::{Digest, LayerBlob};
use crate::source::unpack::{checked_diff_id, checked_diff_id_on};
use crate::store::BlobStore;

/// Text-like bytes, compressible, different everywhere.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.extend_from_slice(format!("{:x} ", x >> 40).as_bytes());
        if (x >> 20) % 8 == 0 {
            out.push(b'\n');
        }
    }
    out.truncate(len);
    out
}

fn stele(enc: Encoding, data: &[u8]) -> Vec<u8> {
    let mut sink = LayerSink::new(enc, Vec::new(), None).unwrap();
    sink.write_all(data).unwrap();
    sink.finish().unwrap().0
}

fn media(enc: Encoding) -> MediaType {
    match enc {
        GZIP => MediaType::ImageLayerGzip,
        _ => MediaType::ImageLayerZstd,
    }
}

/// `blob` stored under its own digest, described as uncompressing to
/// `data`.
fn stored(store: &BlobStore, media_type: MediaType, blob: &[u8], data: &[u8]) -> LayerBlob {
    let digest = store.put_bytes(blob).unwrap();
    LayerBlob {
        media_type,
        digest,
        size: blob.len() as u64,
        diff_id: Digest::of(data),
    }
}

/// Both paths' answers, as text, and how many layers went in blocks.
fn both(store: &BlobStore, layer: &LayerBlob, jobs: usize) -> (String, String, usize) {
    let threads = Threads::new(jobs);
    let show = |r: Result<(Digest, _), crate::source::unpack::LayerReadError>| match r {
        Ok((d, _)) => format!("ok {d}"),
        Err(e) => format!("error {e}"),
    };
    let split = show(checked_diff_id_on(store, layer, &threads));
    // A fresh store handle: nothing noted as checked by the first read.
    let fresh = BlobStore::open(store.root()).unwrap();
    let sequential = show(checked_diff_id(&fresh, layer));
    (split, sequential, threads.split_layers())
}

#[test]
fn stele_layers_check_on_several_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = text(13 << 20, 7);
    for enc in [GZIP, ZSTD] {
        let blob = stele(enc, &data);
        let layer = stored(&store, media(enc), &blob, &data);
        let threads = Threads::new(3);
        let (diff_id, _) = checked_diff_id_on(&store, &layer, &threads).unwrap();
        assert_eq!(diff_id, layer.diff_id, "{enc:?}");
        assert_eq!(threads.split_layers(), 1, "{enc:?} went in blocks");
        assert_eq!(threads.widest(), 3, "{enc:?} on 3 threads");
        // One thread: the sequential decoder, same answer.
        let one = Threads::new(1);
        assert_eq!(checked_diff_id_on(&store, &layer, &one).unwrap().0, diff_id);
        assert_eq!(one.split_layers(), 0);
    }
}

/// A config listing another DiffID: the sequential decoder's answer
/// (the DiffID the bytes give) comes back, so the caller's mismatch
/// message is the same.
#[test]
fn a_wrong_diff_id_is_answered_as_the_sequential_decoder_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = text(5 << 20, 9);
    for enc in [GZIP, ZSTD] {
        let blob = stele(enc, &data);
        let mut layer = stored(&store, media(enc), &blob, &data);
        layer.diff_id = Digest::of(b"something else");
        let (split, sequential, _) = both(&store, &layer, 2);
        assert_eq!(split, sequential);
        assert_eq!(split, format!("ok {}", Digest::of(&data)));
    }
}

/// gzip with a sync flush every 1 MiB but the window carried across
/// (what `GzEncoder::flush` and pigz without `-i` write): a segment
/// refers back past its start, so the layer falls back, and checks.
#[test]
fn foreign_gzip_with_references_across_flushes_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    // A 10 KiB piece repeated: every match reaches 10 KiB back.
    let piece = text(10 << 10, 3);
    let data: Vec<u8> = piece.iter().copied().cycle().take(6 << 20).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    for part in data.chunks(1 << 20) {
        gz.write_all(part).unwrap();
        gz.flush().unwrap();
    }
    let blob = gz.finish().unwrap();
    assert!(blob.windows(4).any(|w| w == [0, 0, 0xff, 0xff]));
    let layer = stored(&store, MediaType::ImageLayerGzip, &blob, &data);
    let (split, sequential, went) = both(&store, &layer, 2);
    assert_eq!(split, sequential);
    assert_eq!(split, format!("ok {}", layer.diff_id));
    assert_eq!(went, 0, "fell back");
}

/// Stored (level 0) gzip whose data holds `00 00 ff ff` everywhere: cuts
/// inside stored blocks are found out, and the layer checks.
#[test]
fn foreign_gzip_with_sync_flush_bytes_in_stored_data_checks() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut data = text(5 << 20, 5);
    for at in (1000..data.len() - 4).step_by(4099) {
        data[at..at + 4].copy_from_slice(&[0, 0, 0xff, 0xff]);
    }
    for level in [0, 1] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        gz.write_all(&data).unwrap();
        let blob = gz.finish().unwrap();
        let layer = stored(&store, MediaType::ImageLayerGzip, &blob, &data);
        let (split, sequential, _) = both(&store, &layer, 2);
        assert_eq!(split, sequential, "level {level}");
        assert_eq!(split, format!("ok {}", layer.diff_id), "level {level}");
    }
    // A stele layer of the same data: its cuts hold.
    let blob = stele(GZIP, &data);
    let layer = stored(&store, MediaType::ImageLayerGzip, &blob, &data);
    let (split, sequential, went) = both(&store, &layer, 2);
    assert_eq!((split.clone(), went), (sequential, 1));
    assert_eq!(split, format!("ok {}", layer.diff_id));
}

/// A damaged block, and a blob that is not its digest's bytes: refused
/// with the same message, naming the digest, on either path.
#[test]
fn a_corrupted_block_refuses_as_the_sequential_decoder_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = text(9 << 20, 11);
    for enc in [GZIP, ZSTD] {
        let mut blob = stele(enc, &data);
        let middle = blob.len() / 2;
        blob[middle] ^= 0x55;
        blob[middle + 1] ^= 0xff;
        // Stored under the damaged bytes' digest: they inflate wrong.
        let layer = stored(&store, media(enc), &blob, &data);
        let (split, sequential, went) = both(&store, &layer, 2);
        assert_eq!(split, sequential, "{enc:?}");
        assert!(split.starts_with("error") || split != format!("ok {}", layer.diff_id));
        if split.starts_with("error") {
            assert!(split.contains(&layer.digest.to_string()), "{split}");
        }
        assert_eq!(went, 0, "{enc:?}");
        // Damaged in place under the good digest: not the digest's bytes.
        let good = stele(enc, &data);
        let layer = stored(&store, media(enc), &good, &data);
        let path = store.path(&layer.digest);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::write(&path, &blob[..good.len().min(blob.len())]).unwrap();
        let (split, sequential, _) = both(&store, &layer, 2);
        assert_eq!(split, sequential, "{enc:?}");
        assert!(split.starts_with("error"), "{split}");
        assert!(split.contains(&layer.digest.to_string()), "{split}");
    }
}

/// zstd frames written with and without checksums and content sizes, a
/// skippable frame between them: split and checked.
#[test]
fn zstd_frames_with_and_without_checksums_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = text(6 << 20, 13);
    let mut blob = Vec::new();
    for (i, part) in data.chunks(1 << 20).enumerate() {
        let mut z = zstd::bulk::Compressor::new(3).unwrap();
        use zstd::stream::raw::CParameter;
        z.set_parameter(CParameter::ChecksumFlag(i % 2 == 0))
            .unwrap();
        z.set_parameter(CParameter::ContentSizeFlag(i % 3 != 0))
            .unwrap();
        blob.extend(z.compress(part).unwrap());
        if i == 2 {
            blob.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        }
    }
    let layer = stored(&store, MediaType::ImageLayerZstd, &blob, &data);
    let (split, sequential, went) = both(&store, &layer, 2);
    assert_eq!(split, sequential);
    assert_eq!(split, format!("ok {}", layer.diff_id));
    assert_eq!(went, 1);
    // A damaged checksum: refused alike.
    let mut bad = blob.clone();
    let first = zstd::zstd_safe::find_frame_compressed_size(&blob).unwrap();
    bad[first - 1] ^= 1;
    let layer = stored(&store, MediaType::ImageLayerZstd, &bad, &data);
    let (split, sequential, _) = both(&store, &layer, 2);
    assert_eq!(split, sequential);
    assert!(split.starts_with("error") && split.contains(&layer.digest.to_string()));
}

/// A layer cut inside a frame (or a gzip block): refused alike.
#[test]
fn a_truncated_layer_refuses_alike() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = text(9 << 20, 17);
    for enc in [GZIP, ZSTD] {
        let blob = stele(enc, &data);
        for cut in [blob.len() / 2 + 3, blob.len() - 5] {
            let layer = stored(&store, media(enc), &blob[..cut], &data);
            let (split, sequential, went) = both(&store, &layer, 2);
            assert_eq!(split, sequential, "{enc:?} cut at {cut}");
            assert!(split.starts_with("error"), "{split}");
            assert!(split.contains(&layer.digest.to_string()), "{split}");
            assert_eq!(went, 0);
        }
    }
}
