//! cosign 2.x's tags beside a pushed image: `sha256-<hex>.sig` (simple
//! signing signatures, which containers/image reads when `registries.d`
//! says `use-sigstore-attachments: true`) and `sha256-<hex>.att` (DSSE
//! attestations). Each tag names one OCI image holding every signature
//! (or attestation) of that digest as its layers, so stele adds its own
//! to what the tag already holds, as cosign and containers/image do,
//! instead of replacing what other signers put there.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageManifest};

use super::client::{push_scope, read_limited, Client, Req};
use super::manifest::put_manifest;
use super::upload::push_blob;
use super::{PushReport, RegistryError};
use crate::oci::cosign::{
    attachment_config, attachment_manifest, merged_layers, Attached, Attachment,
};
use crate::oci::media::{self, MANIFEST_LIMIT, OCI_MANIFEST};
use crate::oci::Digest;
use crate::store::BlobStore;

/// The layers the tag `which` of `subject` holds now; empty when there is
/// no such tag.
fn existing_layers(
    client: &Client,
    repository: &str,
    tag: &str,
) -> Result<Vec<Descriptor>, RegistryError> {
    let url = client.url(&format!("{repository}/manifests/{tag}"));
    let resp = client.send(
        &Req::new("GET", url.clone(), vec![push_scope(repository)])
            .header("Accept", media::ACCEPT_MANIFESTS)
            .allow(&[404]),
    )?;
    if resp.status() == 404 {
        return Ok(Vec::new());
    }
    let body = read_limited(resp, MANIFEST_LIMIT, &url)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            url: url.clone(),
            message: format!(
                "the tag {tag} holds something that is not an image manifest ({e}); cosign keeps its signatures there: delete the tag so stele can write it"
            ),
        })?;
    Ok(manifest.layers().clone())
}

/// Adds each attachment to its tag in `repository`: the layer blobs and
/// the new config first, then the tag's manifest. A tag that already
/// holds every layer is left as it is, so pushing the same image again
/// changes nothing.
pub(crate) fn push_attachments(
    client: &Client,
    repository: &str,
    attachments: &[Attachment],
    report: &mut PushReport,
) -> Result<(), RegistryError> {
    if attachments.is_empty() {
        return Ok(());
    }
    let store_err = |e| RegistryError::Store {
        reference: repository.to_string(),
        error: e,
    };
    // The layers and configs are small documents made for this push: they
    // travel from a scratch store of their own.
    let scratch = tempfile::Builder::new()
        .prefix("stele-cosign-")
        .tempdir()
        .map_err(|e| {
            store_err(crate::store::StoreError::Io {
                path: std::env::temp_dir(),
                error: e,
            })
        })?;
    let store = BlobStore::open(scratch.path()).map_err(store_err)?;
    let mut by_tag: BTreeMap<(Digest, Attached), Vec<&Attachment>> = BTreeMap::new();
    for a in attachments {
        by_tag
            .entry((a.subject.clone(), a.which))
            .or_default()
            .push(a);
    }
    for ((subject, which), list) in by_tag {
        let tag = which.tag(&subject);
        let existing = existing_layers(client, repository, &tag)?;
        let adding: Vec<Descriptor> = list.iter().map(|a| a.layer.clone()).collect();
        let Some(layers) = merged_layers(&existing, &adding) else {
            continue;
        };
        for a in &list {
            let digest = store.put_bytes(&a.bytes).map_err(store_err)?;
            push_blob(
                client,
                repository,
                &store,
                &digest,
                a.bytes.len() as u64,
                &[],
                report,
            )?;
        }
        let config = attachment_config(&layers);
        store.put_bytes(&config.bytes).map_err(store_err)?;
        push_blob(
            client,
            repository,
            &store,
            &config.digest,
            config.size(),
            &[],
            report,
        )?;
        let manifest = attachment_manifest(&config, layers);
        put_manifest(
            client,
            repository,
            &tag,
            OCI_MANIFEST,
            &manifest.bytes,
            &manifest.digest,
            report,
        )?;
    }
    Ok(())
}
