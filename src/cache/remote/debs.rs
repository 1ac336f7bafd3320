//! The one kind of entry a registry keeps: a locked .deb, as an OCI
//! artifact (image-spec 1.1 "Guidelines for Artifact Usage") whose config
//! is the empty descriptor and whose one layer is the .deb, tagged by its
//! sha256. Annotations say what it is for people and `prune`: the package
//! (`dev.stele.deb`) and when it was pushed
//! (`org.opencontainers.image.created`). Neither is trusted: a lookup
//! asks for the blob by the locked sha256 and checks every byte.

use std::collections::BTreeMap;

use super::Repository;
use crate::cache::lookup::DebQuery;
use crate::oci::artifact::EMPTY_JSON;
use crate::oci::media::OCI_MANIFEST;
use crate::oci::Digest;
use crate::registry::client::{push_scope, Req};
use crate::registry::RegistryError;
use crate::store::BlobStore;

/// The artifact type of a .deb entry.
pub const DEB_ARTIFACT: &str = "application/vnd.dev.stele.cache.deb.v1";
/// The .deb's media type, as Debian's own tools name the format.
pub(super) const DEB_MEDIA_TYPE: &str = "application/vnd.debian.binary-package";
/// The annotation naming the package (`name version (arch)`).
pub(super) const DEB_ANNOTATION: &str = "dev.stele.deb";
pub(super) const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// Bumped when an entry changes meaning; part of every tag.
const ENTRY_FORMAT: u32 = 1;

/// The tag of the entry for the .deb `sha256`.
pub(super) fn tag(sha256: &Digest) -> String {
    format!("deb-v{ENTRY_FORMAT}-{}", sha256.hex())
}

/// The manifest of the entry for `deb`, pushed at `now`.
fn manifest(deb: &DebQuery<'_>, now: u64) -> Vec<u8> {
    entry_manifest(
        DEB_ARTIFACT,
        DEB_MEDIA_TYPE,
        (DEB_ANNOTATION, deb.label),
        deb.sha256,
        deb.size,
        now,
    )
}

/// An entry's manifest: an artifact of `artifact_type` whose one layer is
/// the blob `sha256` (`size` bytes, of `media_type`), its `annotation`
/// naming it for people, pushed at `now`.
pub(super) fn entry_manifest(
    artifact_type: &str,
    media_type: &str,
    annotation: (&str, &str),
    sha256: &Digest,
    size: u64,
    now: u64,
) -> Vec<u8> {
    let annotations: BTreeMap<&str, String> = BTreeMap::from([
        (annotation.0, annotation.1.to_string()),
        (CREATED_ANNOTATION, crate::timefmt::rfc3339(now)),
    ]);
    let value = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": Digest::of(EMPTY_JSON).to_string(),
            "size": EMPTY_JSON.len(),
        },
        "layers": [{
            "mediaType": media_type,
            "digest": sha256.to_string(),
            "size": size,
        }],
        "annotations": annotations,
    });
    crate::oci::json::to_canonical_vec(&value)
}

impl Repository {
    /// Fetches the .deb `query` names into `into`, checked by sha256 and
    /// size as it streams in: `false` when the repository does not have
    /// it. The blob is asked for by digest, so no tag or manifest (which
    /// anyone who may push could point elsewhere) is read at all.
    pub(super) fn fetch_deb(
        &self,
        query: &DebQuery<'_>,
        into: &BlobStore,
    ) -> Result<bool, RegistryError> {
        if into.contains(query.sha256) {
            return Ok(true);
        }
        match crate::registry::pull::pull_blob(
            &self.client,
            &self.reference,
            query.sha256,
            query.size,
            into,
        ) {
            Ok(()) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pushes the entry for `deb` (its bytes in `from`) unless its tag is
    /// there: `None` then, else the bytes sent.
    pub(super) fn push_deb(
        &self,
        deb: &DebQuery<'_>,
        from: &BlobStore,
    ) -> Result<Option<u64>, RegistryError> {
        let manifest = manifest(deb, self.now);
        self.push_entry(&tag(deb.sha256), &manifest, (deb.sha256, deb.size), from)
    }

    /// Pushes `manifest` under `tag` with its one blob (in `from`) unless
    /// the tag is there: `None` then, else the bytes sent.
    pub(super) fn push_entry(
        &self,
        tag: &str,
        manifest: &[u8],
        (sha256, size): (&Digest, u64),
        from: &BlobStore,
    ) -> Result<Option<u64>, RegistryError> {
        let client = &self.client;
        let repository = &self.reference.repository;
        let url = client.url(&format!("{repository}/manifests/{tag}"));
        let head = client.send(
            &Req::new("HEAD", url, vec![push_scope(repository)])
                .header("Accept", OCI_MANIFEST)
                .allow(&[404]),
        )?;
        if head.status() != 404 {
            return Ok(None);
        }
        let mut report = crate::registry::PushReport::default();
        let empty = from
            .put_bytes(EMPTY_JSON)
            .map_err(|error| RegistryError::Store {
                reference: self.reference.to_string(),
                error,
            })?;
        for (digest, size) in [(&empty, EMPTY_JSON.len() as u64), (sha256, size)] {
            crate::registry::upload::push_blob(
                client,
                repository,
                from,
                digest,
                size,
                &[],
                &mut report,
            )?;
        }
        crate::registry::manifest::put_manifest(
            client,
            repository,
            tag,
            OCI_MANIFEST,
            manifest,
            &Digest::of(manifest),
            &mut report,
        )?;
        Ok(Some(report.bytes_uploaded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_names_the_deb_and_the_manifest_holds_it() {
        let sha = Digest::of(b"a .deb");
        let t = tag(&sha);
        assert!(t.len() <= 128, "{t}");
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        assert_ne!(t, tag(&Digest::of(b"another")));
        let query = DebQuery {
            sha256: &sha,
            size: 6,
            label: "hello 1.0-1 (amd64)",
        };
        let bytes = manifest(&query, 1_700_000_000);
        let m: oci_spec::image::ImageManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m.layers()[0].digest().to_string(), sha.to_string());
        assert_eq!(m.layers()[0].size(), 6);
        assert_eq!(
            m.artifact_type().as_ref().unwrap().to_string(),
            DEB_ARTIFACT
        );
        let annotations = m.annotations().as_ref().unwrap();
        assert_eq!(annotations[CREATED_ANNOTATION], "2023-11-14T22:13:20Z");
        assert_eq!(annotations[DEB_ANNOTATION], "hello 1.0-1 (amd64)");
    }
}
