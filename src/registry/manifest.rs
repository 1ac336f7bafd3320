//! Manifests and indexes PUT to a registry (distribution-spec "Pushing
//! manifests"), by digest or by tag, each answer checked against the
//! digest stele computed. Images and referrers are both pushed through
//! here.

use super::client::{push_scope, Client, Req};
use super::{PushReport, RegistryError};
use crate::oci::Digest;

/// PUTs a manifest or index under `tag_or_digest` and checks the digest the
/// registry computed (`Docker-Content-Digest`) is ours. Returns the
/// registry's `OCI-Subject` header: when present, the registry indexes
/// referrers itself.
pub(crate) fn put_manifest(
    client: &Client,
    repository: &str,
    tag_or_digest: &str,
    media_type: &str,
    bytes: &[u8],
    digest: &Digest,
    report: &mut PushReport,
) -> Result<Option<String>, RegistryError> {
    let url = client.url(&format!("{repository}/manifests/{tag_or_digest}"));
    let resp = client.send(
        &Req::new("PUT", url.clone(), vec![push_scope(repository)])
            .header("Content-Type", media_type)
            .body(bytes),
    )?;
    if let Some(found) = resp.header("Docker-Content-Digest") {
        if found.trim() != digest.to_string() {
            return Err(RegistryError::DigestMismatch {
                url,
                expected: digest.clone(),
                found: found.trim().to_string(),
            });
        }
    }
    report.manifests_pushed += 1;
    Ok(resp.header("OCI-Subject").map(str::to_string))
}
