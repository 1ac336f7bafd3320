//! The two kinds of entry a registry keeps: a layer (layer key → the
//! compressed blob and its DiffID) and an unpacked package (.deb sha256 →
//! index and pack), as records, manifests and tags, and how each is
//! checked when read.

use std::io::{Read, Write};

use oci_spec::image::MediaType;
use serde::{Deserialize, Serialize};

use super::{Found, Repository};
use crate::cache::lookup::{Answer, Entry, LayerQuery, Trouble};
use crate::dpkg::unpack::{UnpackedDeb, UNPACK_FORMAT};
use crate::fstree::FsTree;
use crate::oci::digest::HashingWriter;
use crate::oci::media::OCI_MANIFEST;
use crate::oci::{Digest, LayerBlob};
use crate::store::BlobStore;

/// The artifact type (and record media type) of a layer entry.
pub const LAYER_ARTIFACT: &str = "application/vnd.dev.stele.cache.layer.v1+json";
/// The artifact type (and record media type) of an unpacked-package entry.
pub const UNPACKED_ARTIFACT: &str = "application/vnd.dev.stele.cache.unpacked.v1+json";
const UNPACKED_INDEX: &str = "application/vnd.dev.stele.unpacked.index.v1+json";
const UNPACKED_PACK: &str = "application/vnd.dev.stele.unpacked.pack.v1";

/// Bumped when a record changes meaning; part of every tag, so builders
/// of different formats never overwrite each other's entries.
pub(super) const ENTRY_FORMAT: u32 = 1;

fn layer_tag(key: &Digest) -> String {
    format!("layer-v{ENTRY_FORMAT}-{}", key.hex())
}

fn unpacked_tag(deb: &Digest) -> String {
    format!("unpacked-v{ENTRY_FORMAT}.{UNPACK_FORMAT}-{}", deb.hex())
}

/// What a layer entry says: the layer written for `key` by `builder`.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerRecord {
    format: u32,
    key: Digest,
    builder: String,
    profile: String,
    media_type: String,
    digest: Digest,
    size: u64,
    diff_id: Digest,
}

/// What an unpacked-package entry says: `deb` unpacks to this index and
/// pack (in the local cache's own format, `unpack_format`).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnpackedRecord {
    format: u32,
    unpack_format: u32,
    deb: Digest,
    index: Digest,
    index_size: u64,
    pack: Digest,
    pack_size: u64,
}

/// One blob an outgoing entry references, and the store holding it.
pub(super) struct OutBlob<'a> {
    pub digest: Digest,
    pub size: u64,
    pub store: &'a BlobStore,
}

/// An entry ready to push: its blobs (record first) and manifest.
pub(super) struct Outgoing<'a> {
    pub tag: String,
    pub blobs: Vec<OutBlob<'a>>,
    pub manifest: Vec<u8>,
}

/// The manifest of an entry: the record as config, the content as layers.
fn manifest(
    artifact_type: &str,
    record: (&Digest, u64),
    layers: &[(&str, &Digest, u64)],
) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(media_type, digest, size)| {
            serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
        })
        .collect();
    let value = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": artifact_type, "digest": record.0.to_string(), "size": record.1},
        "layers": layers,
    });
    crate::oci::json::to_canonical_vec(&value)
}

/// Whether the manifest's config and layers are exactly these.
pub(super) fn shaped_as(
    found: &Found,
    artifact_type: &str,
    layers: &[(&str, &Digest, u64)],
) -> Result<(), String> {
    let config = found.manifest.config();
    if config.media_type().to_string() != artifact_type {
        return Err(format!(
            "its record is a {}, not a {artifact_type}",
            config.media_type()
        ));
    }
    let listed: Vec<(String, String, u64)> = found
        .manifest
        .layers()
        .iter()
        .map(|d| (d.media_type().to_string(), d.digest().to_string(), d.size()))
        .collect();
    let wanted: Vec<(String, String, u64)> = layers
        .iter()
        .map(|(m, d, s)| (m.to_string(), d.to_string(), *s))
        .collect();
    if listed != wanted {
        return Err("its manifest lists other blobs than its record names".into());
    }
    Ok(())
}

/// Checks that `blob` (in `store`, compressed as its media type says)
/// decompresses to exactly the canonical tar `tree` makes, in one pass
/// that writes the tar (each file read is checked against its digest),
/// hashes it and compares it with the decompressed blob byte for byte;
/// returns that tar's DiffID. Nothing is held in memory, and a blob that
/// decompresses to more than the tree's tar is refused as soon as it
/// does.
fn same_tar(store: &BlobStore, blob: &LayerBlob, tree: &FsTree) -> Result<Digest, String> {
    let (file, _) = store.open_blob(&blob.digest).map_err(|e| e.to_string())?;
    let file = std::io::BufReader::with_capacity(256 * 1024, file.take(blob.size));
    let decoded = crate::source::unpack::decoder(file, blob).map_err(|e| e.to_string())?;
    let mut hw = HashingWriter::new(SameAs {
        other: decoded,
        buf: Vec::new(),
    });
    crate::layer::tar::write_tree(tree, &mut hw).map_err(|e| e.to_string())?;
    let (mut same, diff_id, _) = hw.finish();
    let mut extra = [0u8; 1];
    match same.other.read(&mut extra) {
        Ok(0) => Ok(diff_id),
        Ok(_) => Err("its blob decompresses to more than the tree's tar".into()),
        Err(e) => Err(format!("its blob does not decompress: {e}")),
    }
}

/// A writer that takes only the bytes `other` reads as, in order.
struct SameAs<R> {
    other: R,
    buf: Vec<u8>,
}

impl<R: Read> Write for SameAs<R> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let differs = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        self.buf.resize(data.len(), 0);
        self.other.read_exact(&mut self.buf).map_err(|e| {
            differs(format!(
                "its blob decompresses to less than the tree's tar ({e})"
            ))
        })?;
        if self.buf != data {
            return Err(differs(
                "its blob decompresses to another tar than the tree's".into(),
            ));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Repository {
    /// The layer `query` names, its blob in `out`. Checked: the record
    /// answers the key, this builder and profile; the blob's digest and
    /// size; the blob decompresses to exactly the tar the query's tree
    /// makes, whose DiffID is the record's.
    pub(super) fn find_layer(&self, query: &LayerQuery<'_>, out: &BlobStore) -> Answer<LayerBlob> {
        let LayerQuery {
            key,
            tree,
            encoding,
        } = *query;
        let tag = layer_tag(key);
        let media_type = encoding.compression.media_type().to_string();
        let found = self.find(&tag, |found| {
            let record: LayerRecord = serde_json::from_slice(&found.record)
                .map_err(|e| format!("its record does not parse: {e}"))?;
            if record.format != ENTRY_FORMAT || &record.key != key {
                return Err(format!("its record answers the key {}", record.key));
            }
            if record.builder != self.builder || record.profile != encoding.profile.id() {
                return Err(format!(
                    "it was written by `{}` with profile {}",
                    record.builder, record.profile
                ));
            }
            if record.media_type != media_type {
                return Err(format!("its layer is a {}", record.media_type));
            }
            shaped_as(
                found,
                LAYER_ARTIFACT,
                &[(&media_type, &record.digest, record.size)],
            )?;
            Ok(record)
        })?;
        let Some((record, _)) = found else {
            return Ok(None);
        };
        let blob = LayerBlob {
            media_type: MediaType::from(record.media_type.as_str()),
            digest: record.digest,
            size: record.size,
            diff_id: record.diff_id,
        };
        match same_tar(&self.store, &blob, tree) {
            Ok(d) if d == blob.diff_id => {}
            Ok(d) => {
                return Err(Trouble::refused(
                    &tag,
                    format!("its DiffID {} is not the tree's {d}", blob.diff_id),
                ))
            }
            Err(why) => return Err(Trouble::refused(&tag, why)),
        }
        if out
            .copy_checked_from(&self.store, &blob.digest, blob.size)
            .is_err()
        {
            return Ok(None);
        }
        Ok(Some(blob))
    }

    /// The package `deb` unpacked, its index and pack in the local
    /// folder. Checked: the record answers `deb` in this unpack format;
    /// the index and pack by digest and size; the index as the local
    /// folder checks its own (it names `deb`, its entries fit the pack,
    /// the pack hashes whole).
    pub(super) fn find_pack(&self, deb: &Digest) -> Answer<UnpackedDeb> {
        let tag = unpacked_tag(deb);
        let found = self.find(&tag, |found| {
            let record: UnpackedRecord = serde_json::from_slice(&found.record)
                .map_err(|e| format!("its record does not parse: {e}"))?;
            if record.format != ENTRY_FORMAT
                || record.unpack_format != UNPACK_FORMAT
                || &record.deb != deb
            {
                return Err(format!("its record answers the package {}", record.deb));
            }
            shaped_as(
                found,
                UNPACKED_ARTIFACT,
                &[
                    (UNPACKED_INDEX, &record.index, record.index_size),
                    (UNPACKED_PACK, &record.pack, record.pack_size),
                ],
            )?;
            Ok(record)
        })?;
        let Some((record, fetched)) = found else {
            return Ok(None);
        };
        // A pack fetched now was hashed as it streamed in; one the cache
        // had is hashed again, as the cache's own are when loaded.
        let pack_checked = fetched.contains(&record.pack);
        match self.packs.adopt(
            deb,
            &record.index,
            record.index_size,
            &record.pack,
            pack_checked,
        ) {
            Some(unpacked) => Ok(Some(unpacked)),
            None => Err(Trouble::refused(
                &tag,
                format!(
                    "its index {} does not describe its pack {}",
                    record.index, record.pack
                ),
            )),
        }
    }

    /// `entry` ready to push, its record stored in the local folder.
    pub(super) fn outgoing<'a>(&'a self, entry: &Entry<'a>) -> Result<Outgoing<'a>, Trouble> {
        match *entry {
            Entry::Layer {
                key,
                layer,
                profile,
                from,
            } => {
                let record = LayerRecord {
                    format: ENTRY_FORMAT,
                    key: key.clone(),
                    builder: self.builder.clone(),
                    profile: profile.id().to_string(),
                    media_type: layer.media_type.to_string(),
                    digest: layer.digest.clone(),
                    size: layer.size,
                    diff_id: layer.diff_id.clone(),
                };
                let media_type = layer.media_type.to_string();
                self.outgoing_with(
                    layer_tag(key),
                    LAYER_ARTIFACT,
                    &record,
                    &[(&media_type, &layer.digest, layer.size, from)],
                )
            }
            Entry::Pack { deb, unpacked } => {
                let tag = unpacked_tag(deb);
                let index_bytes = unpacked.index_bytes();
                let index = self
                    .store
                    .put_bytes(&index_bytes)
                    .map_err(|e| Trouble::Entry(format!("cannot store the index of {tag}: {e}")))?;
                let index_size = index_bytes.len() as u64;
                let (pack, pack_size) = unpacked.pack();
                let record = UnpackedRecord {
                    format: ENTRY_FORMAT,
                    unpack_format: UNPACK_FORMAT,
                    deb: deb.clone(),
                    index: index.clone(),
                    index_size,
                    pack: pack.clone(),
                    pack_size,
                };
                self.outgoing_with(
                    tag,
                    UNPACKED_ARTIFACT,
                    &record,
                    &[
                        (UNPACKED_INDEX, &index, index_size, &self.store),
                        (UNPACKED_PACK, pack, pack_size, &self.store),
                    ],
                )
            }
            Entry::Archive {
                key,
                sha256,
                size,
                from,
            } => self.outgoing_archive(key, sha256, size, from),
        }
    }

    /// An entry with its record stored in the local folder.
    pub(super) fn outgoing_with<'a>(
        &'a self,
        tag: String,
        artifact_type: &str,
        record: &impl Serialize,
        content: &[(&str, &Digest, u64, &'a BlobStore)],
    ) -> Result<Outgoing<'a>, Trouble> {
        let bytes = serde_json::to_vec(record).expect("a record serializes");
        let record_digest = self
            .store
            .put_bytes(&bytes)
            .map_err(|e| Trouble::Entry(format!("cannot store the record of {tag}: {e}")))?;
        let layers: Vec<(&str, &Digest, u64)> =
            content.iter().map(|(m, d, s, _)| (*m, *d, *s)).collect();
        let manifest = manifest(artifact_type, (&record_digest, bytes.len() as u64), &layers);
        let mut blobs = vec![OutBlob {
            digest: record_digest,
            size: bytes.len() as u64,
            store: &self.store,
        }];
        blobs.extend(content.iter().map(|(_, d, s, store)| OutBlob {
            digest: (*d).clone(),
            size: *s,
            store,
        }));
        Ok(Outgoing {
            tag,
            blobs,
            manifest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Compression, Encoding, Profile};

    #[test]
    fn tags_are_valid_and_distinct() {
        let d = Digest::of(b"x");
        for tag in [layer_tag(&d), unpacked_tag(&d)] {
            assert!(tag.len() <= 128, "{tag}");
            assert!(tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        }
        assert_ne!(layer_tag(&d), unpacked_tag(&d));
        assert_ne!(layer_tag(&d), layer_tag(&Digest::of(b"y")));
    }

    #[test]
    fn a_blob_is_checked_against_the_tree_it_answers() {
        use crate::fstree::{Content, Node};
        let mut tree = FsTree::new();
        tree.insert(
            "etc/a".into(),
            Node::file(Content::bytes(vec![7u8; 100_000]), 0o644, 0, 0, 5),
        )
        .unwrap();
        tree.complete_parents(&Node::dir(0o755, 0, 0, 5)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut other = tree.clone();
        other.get_mut("etc/a").unwrap().mode = 0o600;
        let mut longer = tree.clone();
        longer
            .insert("etc/b".into(), Node::symlink("a", 0, 0, 5))
            .unwrap();
        for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let encoding = Encoding {
                profile: Profile::default(),
                compression,
            };
            let layer = crate::layer::write_layer(&tree, encoding, &store, None).unwrap();
            assert_eq!(same_tar(&store, &layer, &tree), Ok(layer.diff_id.clone()));
            let err = same_tar(&store, &layer, &other).unwrap_err();
            assert!(err.contains("another tar"), "{err}");
            let err = same_tar(&store, &layer, &longer).unwrap_err();
            assert!(err.contains("another tar"), "{err}");
            if compression == Compression::None {
                let mut bytes = std::fs::read(store.path(&layer.digest)).unwrap();
                bytes.push(0);
                let digest = store.put_bytes(&bytes).unwrap();
                let padded = LayerBlob {
                    digest,
                    size: bytes.len() as u64,
                    ..layer.clone()
                };
                let err = same_tar(&store, &padded, &tree).unwrap_err();
                assert!(err.contains("more than"), "{err}");
                bytes.truncate(bytes.len() - 2);
                let digest = store.put_bytes(&bytes).unwrap();
                let cut = LayerBlob {
                    digest,
                    size: bytes.len() as u64,
                    ..layer.clone()
                };
                let err = same_tar(&store, &cut, &tree).unwrap_err();
                assert!(err.contains("less than"), "{err}");
            }
        }
    }

    #[test]
    fn a_manifest_lists_the_record_and_content() {
        let (r, c) = (Digest::of(b"r"), Digest::of(b"c"));
        let bytes = manifest(LAYER_ARTIFACT, (&r, 1), &[("t", &c, 1)]);
        let m: oci_spec::image::ImageManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m.config().digest().to_string(), r.to_string());
        assert_eq!(m.layers()[0].digest().to_string(), c.to_string());
        assert_eq!(
            m.artifact_type().as_ref().unwrap().to_string(),
            LAYER_ARTIFACT
        );
    }
}
