//! Retention for a registry cache: entries past an age, or the oldest
//! beyond a size, removed through the registry's own API (the tag list,
//! then a manifest DELETE by digest), as `stele cache prune --remote REF`
//! asks. Blobs are left to the registry's garbage collection, the one
//! thing that knows whether another manifest of the repository still
//! names them (the empty config every .deb entry shares, say).
//!
//! Only stele's entries are touched: tags of the kinds it pushes
//! (`deb-v1-…`, `archive-v1-…`, and the `layer-v1-…` and `unpacked-v1.…` entries earlier
//! versions pushed, which nothing reads any more), never another tag of
//! the repository. An entry's age is its `org.opencontainers.image.created`
//! annotation; an entry without one (every entry of the earlier kinds) is
//! taken as the oldest. The .debs a kept lock names are never removed:
//! they are the archive a rebuild a year later needs.
//!
//! A registry frees the storage of what is deleted when its garbage
//! collection runs (`docker-registry garbage-collect CONFIG`); deletes
//! must be enabled (`storage: delete: enabled: true`), else the registry
//! answers 405 and the error says so.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use super::debs::CREATED_ANNOTATION;
use crate::oci::media::{MANIFEST_LIMIT, OCI_MANIFEST};
use crate::oci::Digest;
use crate::registry::client::{pull_scope, read_limited, Req};
use crate::registry::{Client, Reference, RegistryError, RegistrySettings};

/// Tags are listed in pages of this many; at most `TAG_PAGES` pages.
const TAG_PAGE: usize = 1000;
const TAG_PAGES: usize = 10_000;

/// The tag prefixes of stele's entries, current and earlier.
const ENTRY_PREFIXES: [&str; 4] = ["deb-v", "archive-v", "layer-v", "unpacked-v"];

/// What to remove.
#[derive(Clone, Debug, Default)]
pub struct RemotePruneOptions {
    /// Entries pushed longer ago than this (or of unknown age).
    pub older_than: Option<Duration>,
    /// Then the oldest entries until the rest is at most this many bytes.
    pub max_size: Option<u64>,
    /// .debs never removed (those the locks that must keep building name).
    pub keep: BTreeSet<Digest>,
    /// Seconds since 1970: what ages are measured against (the CLI's
    /// clock).
    pub now: u64,
    /// Say what would be removed; remove nothing.
    pub dry_run: bool,
}

/// What a prune removed and kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RemotePruneReport {
    pub entries_removed: u64,
    pub bytes_removed: u64,
    pub entries_kept: u64,
    pub bytes_kept: u64,
    /// The tags removed (or that would be), oldest first.
    pub removed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RemotePruneError {
    #[error("remote cache {reference}: {action}")]
    Registry {
        reference: String,
        action: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("remote cache {reference}: the registry refuses to delete manifests ({status}); enable deletes in its configuration (docker-registry: `storage: delete: enabled: true`) and prune again")]
    DeleteRefused { reference: String, status: u16 },
    #[error("remote cache {reference}: listing its tags took more than {pages} pages of {TAG_PAGE}; prune a smaller repository")]
    TooManyTags { reference: String, pages: usize },
}

/// One of stele's entries as the registry lists it.
#[derive(Debug)]
struct Listed {
    tag: String,
    manifest: Digest,
    /// Its blobs (config and layers), with their sizes.
    blobs: Vec<(Digest, u64)>,
    /// Seconds since 1970, when it says.
    created: Option<u64>,
    /// The .deb it holds, for a .deb entry.
    deb: Option<Digest>,
}

impl Listed {
    fn size(&self) -> u64 {
        self.blobs.iter().map(|(_, s)| s).sum()
    }
}

/// Prunes the repository `reference` names as `options` say.
pub fn prune(
    reference: &Reference,
    registry: &RegistrySettings,
    options: &RemotePruneOptions,
) -> Result<RemotePruneReport, RemotePruneError> {
    let failed = |action: &str| {
        let reference = reference.to_string();
        let action = action.to_string();
        move |e: RegistryError| RemotePruneError::Registry {
            reference,
            action,
            source: Box::new(e),
        }
    };
    let client = Client::new(&reference.registry, registry).map_err(failed("opening it"))?;
    let tags = list_tags(&client, reference)?;
    let mut entries = crate::parallel::map(
        &tags,
        registry.jobs,
        |_| 0,
        |tag| read_entry(&client, reference, tag),
    )
    .map_err(failed("reading an entry"))?
    .into_iter()
    .flatten()
    .collect::<Vec<Listed>>();
    // Oldest first; entries of unknown age before all others; by tag
    // among equals, so the same repository prunes the same way.
    entries.sort_by(|a, b| (a.created, &a.tag).cmp(&(b.created, &b.tag)));
    let cutoff = options
        .older_than
        .map(|age| options.now.saturating_sub(age.as_secs()));
    let kept = |e: &Listed| e.deb.as_ref().is_some_and(|d| options.keep.contains(d));
    let mut remove = vec![false; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        if let Some(cutoff) = cutoff {
            remove[i] = !kept(e) && e.created.map_or(true, |c| c < cutoff);
        }
    }
    if let Some(max) = options.max_size {
        let mut total: u64 = entries
            .iter()
            .zip(&remove)
            .filter(|(_, r)| !**r)
            .map(|(e, _)| e.size())
            .sum();
        for (i, e) in entries.iter().enumerate() {
            if total <= max {
                break;
            }
            if !remove[i] && !kept(e) {
                remove[i] = true;
                total -= e.size();
            }
        }
    }
    let mut report = RemotePruneReport::default();
    for (e, r) in entries.iter().zip(&remove) {
        if *r {
            report.entries_removed += 1;
            report.bytes_removed += e.size();
            report.removed.push(e.tag.clone());
        } else {
            report.entries_kept += 1;
            report.bytes_kept += e.size();
        }
    }
    if options.dry_run {
        return Ok(report);
    }
    for (e, _) in entries.iter().zip(&remove).filter(|(_, r)| **r) {
        let status = delete(&client, reference, &e.manifest)
            .map_err(failed(&format!("deleting the entry {}", e.tag)))?;
        if !matches!(status, 200 | 202 | 404) {
            return Err(RemotePruneError::DeleteRefused {
                reference: reference.to_string(),
                status,
            });
        }
    }
    Ok(report)
}

/// Every tag of the repository, page by page (distribution-spec
/// "Listing Tags", its `Link` header naming the next page).
fn list_tags(client: &Client, reference: &Reference) -> Result<Vec<String>, RemotePruneError> {
    let repository = &reference.repository;
    let mut url = client.url(&format!("{repository}/tags/list?n={TAG_PAGE}"));
    let mut tags = Vec::new();
    for _ in 0..TAG_PAGES {
        let resp = client
            .send(&Req::new("GET", url.clone(), vec![pull_scope(repository)]).allow(&[404]))
            .map_err(|e| RemotePruneError::Registry {
                reference: reference.to_string(),
                action: "listing its tags".into(),
                source: Box::new(e),
            })?;
        if resp.status() == 404 {
            return Ok(tags);
        }
        let next = resp
            .header("Link")
            .and_then(next_page)
            .map(|path| client.url(path.trim_start_matches("/v2/")));
        let body =
            read_limited(resp, MANIFEST_LIMIT, &url).map_err(|e| RemotePruneError::Registry {
                reference: reference.to_string(),
                action: "listing its tags".into(),
                source: Box::new(e),
            })?;
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let page: TagList =
            serde_json::from_slice(&body).map_err(|e| RemotePruneError::Registry {
                reference: reference.to_string(),
                action: "listing its tags".into(),
                source: Box::new(RegistryError::Protocol {
                    url: url.clone(),
                    message: format!("the tag list does not parse: {e}"),
                }),
            })?;
        tags.extend(
            page.tags
                .unwrap_or_default()
                .into_iter()
                .filter(|t| ENTRY_PREFIXES.iter().any(|p| t.starts_with(p))),
        );
        match next {
            Some(n) => url = n,
            None => return Ok(tags),
        }
    }
    Err(RemotePruneError::TooManyTags {
        reference: reference.to_string(),
        pages: TAG_PAGES,
    })
}

/// The path of a `Link: <PATH>; rel="next"` header (RFC 8288).
fn next_page(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .contains("rel=\"next\"")
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// The entry under `tag`, or `None` when it is gone or not an entry.
fn read_entry(
    client: &Client,
    reference: &Reference,
    tag: &str,
) -> Result<Option<Listed>, RegistryError> {
    let repository = &reference.repository;
    let url = client.url(&format!("{repository}/manifests/{tag}"));
    let document = client.fetch_document(
        &Req::new("GET", url, vec![pull_scope(repository)])
            .header("Accept", OCI_MANIFEST)
            .allow(&[404]),
        MANIFEST_LIMIT,
    )?;
    if document.status == 404 {
        return Ok(None);
    }
    let bytes = document.bytes;
    let Ok(manifest) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes) else {
        return Ok(None);
    };
    let mut blobs = Vec::new();
    for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
        if let Ok(digest) = crate::oci::model::our_digest(d.digest()) {
            blobs.push((digest, d.size()));
        }
    }
    let created = manifest
        .annotations()
        .as_ref()
        .and_then(|a| a.get(CREATED_ANNOTATION))
        .and_then(|c| crate::timefmt::parse_rfc3339(c));
    let deb = tag
        .strip_prefix("deb-v1-")
        .and_then(|hex| format!("sha256:{hex}").parse().ok());
    Ok(Some(Listed {
        tag: tag.to_string(),
        manifest: Digest::of(&bytes),
        blobs,
        created,
        deb,
    }))
}

/// DELETEs the manifest `digest`; the status, whatever it is.
fn delete(client: &Client, reference: &Reference, digest: &Digest) -> Result<u16, RegistryError> {
    let repository = &reference.repository;
    let url = client.url(&format!("{repository}/manifests/{digest}"));
    let resp = client.send(
        &Req::new(
            "DELETE",
            url,
            vec![format!("repository:{repository}:delete")],
        )
        .allow(&[400, 404, 405]),
    )?;
    Ok(resp.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        assert_eq!(
            next_page("</v2/team/cache/tags/list?last=deb-v1-aa&n=1000>; rel=\"next\""),
            Some("/v2/team/cache/tags/list?last=deb-v1-aa&n=1000")
        );
        assert_eq!(next_page("</x>; rel=\"prev\""), None);
    }
}
