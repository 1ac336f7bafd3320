//! The second kind of entry a registry keeps: an application package's
//! archive (a wheel, an npm tarball), as an artifact shaped like a .deb's
//! (`debs`), tagged by the key its lock names it by (a wheel's sha256; an
//! npm package's integrity, hashed). What one runner downloaded from a
//! package index another then takes from the fleet's registry.
//!
//! An npm lock names a tarball by a SHA-512 integrity, which no registry
//! can be asked a blob by, so the tag's manifest says which blob to take.
//! That manifest is only a pointer: the blob is hashed as it streams in
//! and must be the manifest's, and the caller's check (the lock's sha256
//! or integrity, over the bytes that arrived) must pass before the answer
//! is given, so whoever may push costs a download, never a changed image.

use super::debs::entry_manifest;
use super::{entry_fault, Repository};
use crate::cache::lookup::{Answer, ArchiveCheck, Trouble};
use crate::oci::media::{MANIFEST_LIMIT, OCI_MANIFEST};
use crate::oci::Digest;
use crate::registry::client::{pull_scope, Req};
use crate::registry::RegistryError;
use crate::store::BlobStore;

/// The artifact type of an archive entry.
pub const ARCHIVE_ARTIFACT: &str = "application/vnd.dev.stele.cache.archive.v1";
/// The archive's media type: its bytes as the index served them.
const ARCHIVE_BLOB: &str = "application/vnd.dev.stele.archive.v1";
/// The annotation naming the key the entry answers.
const KEY_ANNOTATION: &str = "dev.stele.archive.key";
/// The largest archive an entry may point at: the larger of the limits
/// `apps` holds an index's downloads to (4 GiB wheels).
const ARCHIVE_LIMIT: u64 = 4 << 30;

/// Bumped when an entry changes meaning; part of every tag.
const ENTRY_FORMAT: u32 = 1;

pub(super) fn tag(key: &Digest) -> String {
    format!("archive-v{ENTRY_FORMAT}-{}", key.hex())
}

impl Repository {
    /// The archive `key` names, fetched into `into` (checked against the
    /// entry's manifest as it streams in) and passed through `check`: its
    /// sha256 and size.
    pub(super) fn fetch_archive(
        &self,
        key: &Digest,
        into: &BlobStore,
        check: ArchiveCheck,
    ) -> Answer<(Digest, u64)> {
        let tag = tag(key);
        let down = |e: RegistryError| Trouble::down("looking up an archive", e);
        let repository = &self.reference.repository;
        let url = self.client.url(&format!("{repository}/manifests/{tag}"));
        let document = self
            .client
            .fetch_document(
                &Req::new("GET", url, vec![pull_scope(repository)])
                    .header("Accept", OCI_MANIFEST)
                    .allow(&[404]),
                MANIFEST_LIMIT,
            )
            .map_err(down)?;
        if document.status == 404 {
            return Ok(None);
        }
        let (sha256, size) =
            pointed_at(&document.bytes).map_err(|why| Trouble::refused(&tag, why))?;
        if !into.contains(&sha256) {
            match crate::registry::pull::pull_blob(
                &self.client,
                &self.reference,
                &sha256,
                size,
                into,
            ) {
                Ok(()) => {}
                Err(e) if entry_fault(&e) => return Err(Trouble::refused(&tag, e)),
                Err(e) => return Err(Trouble::down("fetching an archive", e)),
            }
        }
        check(into, &sha256, size).map_err(|why| Trouble::refused(&tag, why))?;
        Ok(Some((sha256, size)))
    }

    /// Pushes the entry for the archive `key` names (the blob `sha256`,
    /// `size` bytes in `from`) unless its tag is there: `None` then, else
    /// the bytes sent.
    pub(super) fn push_archive(
        &self,
        key: &Digest,
        (sha256, size): (&Digest, u64),
        from: &BlobStore,
    ) -> Result<Option<u64>, RegistryError> {
        let key_text = key.to_string();
        let manifest = entry_manifest(
            ARCHIVE_ARTIFACT,
            ARCHIVE_BLOB,
            (KEY_ANNOTATION, &key_text),
            sha256,
            size,
            self.now,
        );
        self.push_entry(&tag(key), &manifest, (sha256, size), from)
    }
}

/// The blob an archive entry's manifest points at, when it is shaped as
/// stele pushes them.
fn pointed_at(manifest: &[u8]) -> Result<(Digest, u64), String> {
    let m: oci_spec::image::ImageManifest = serde_json::from_slice(manifest)
        .map_err(|e| format!("its manifest does not parse: {e}"))?;
    if m.artifact_type().as_ref().map(|t| t.to_string()).as_deref() != Some(ARCHIVE_ARTIFACT) {
        return Err(format!("its manifest is not a {ARCHIVE_ARTIFACT}"));
    }
    let [layer] = m.layers().as_slice() else {
        return Err("its manifest does not hold exactly one archive".into());
    };
    if layer.media_type().to_string() != ARCHIVE_BLOB {
        return Err(format!("its blob is not a {ARCHIVE_BLOB}"));
    }
    if layer.size() > ARCHIVE_LIMIT {
        return Err(format!(
            "it points at {} bytes, over the {ARCHIVE_LIMIT}-byte limit",
            layer.size()
        ));
    }
    let digest =
        crate::oci::model::our_digest(layer.digest()).map_err(|e| format!("its blob: {e}"))?;
    Ok((digest, layer.size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_points_at_its_archive_and_nothing_else_reads_as_one() {
        let key = Digest::of(b"sha512-integrity");
        let sha = Digest::of(b"a wheel");
        let t = tag(&key);
        assert!(t.len() <= 128 && t.starts_with("archive-v1-"), "{t}");
        let m = entry_manifest(
            ARCHIVE_ARTIFACT,
            ARCHIVE_BLOB,
            (KEY_ANNOTATION, "k"),
            &sha,
            7,
            0,
        );
        assert_eq!(pointed_at(&m).unwrap(), (sha.clone(), 7));
        let deb = entry_manifest(
            super::super::DEB_ARTIFACT,
            "application/vnd.debian.binary-package",
            ("dev.stele.deb", "x"),
            &sha,
            7,
            0,
        );
        assert!(pointed_at(&deb).unwrap_err().contains("is not a"));
        let huge = entry_manifest(
            ARCHIVE_ARTIFACT,
            ARCHIVE_BLOB,
            (KEY_ANNOTATION, "k"),
            &sha,
            ARCHIVE_LIMIT + 1,
            0,
        );
        assert!(pointed_at(&huge).unwrap_err().contains("limit"));
        assert!(pointed_at(b"{").is_err());
    }
}
