//! A registry repository as a package archive: each locked .deb kept as
//! an OCI artifact keyed by its sha256, so CI runners that share nothing
//! but a registry share their downloads (`--cache-from`, `--cache-to`),
//! and a lock keeps building after the mirror drops its versions
//! (`stele vendor --to`). One `Repository` per repository named, behind
//! the lookup interface (`cache::lookup`), asked and filled by the run's
//! `Chain`.
//!
//! One artifact per .deb (`debs`), tagged `deb-v1-<sha256 hex>`, and per
//! application archive (`archives`), tagged by its lock's key: many
//! runners push at once without a shared index to race on, and the tags
//! are what `prune` lists. A .deb lookup is one blob GET by the locked sha256;
//! the bytes land in the local folder only once they hash to it, so
//! whoever can push to the repository can cost a runner a download, never
//! change what it builds. A registry cannot prove a layer or an unpacked
//! package (see `cache::lookup`), so it is asked for neither; the entries
//! older versions of stele pushed (`layer-v1-…`, `unpacked-v1.…`) are
//! never read, and `prune` removes them.
//!
//! Every request goes through a transport of its own with the cache's
//! short budget (`RemoteCacheSettings::timeout`): a registry that hangs or
//! refuses costs a build one budget, after which the chain marks it down
//! for the run.

mod archives;
mod debs;
pub mod prune;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::lookup::{Answer, ArchiveCheck, DebQuery, Entry, EntryStore, Stored, Trouble};
use crate::oci::Digest;
use crate::registry::{Client, Reference, RegistryError, RegistrySettings};
use crate::store::BlobStore;
use crate::transport::{NetworkSettings, Transport};

pub use archives::ARCHIVE_ARTIFACT;
pub use debs::DEB_ARTIFACT;

/// How long a remote cache request may make no progress (connecting,
/// or between reads) before the registry counts as down for the run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the remote cache is read from and written to: registry
/// repositories (`HOST[:PORT]/REPO`, no tag), in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCacheSettings {
    pub from: Vec<Reference>,
    pub to: Vec<Reference>,
    /// A request that makes no progress this long fails, and is not
    /// tried again: the registry is then down for the run.
    pub timeout: Duration,
    /// Seconds since 1970 when entries are pushed (the CLI's clock): the
    /// entry's `org.opencontainers.image.created`, which `prune` ages.
    pub now: u64,
}

impl Default for RemoteCacheSettings {
    fn default() -> Self {
        RemoteCacheSettings {
            from: Vec::new(),
            to: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            now: 0,
        }
    }
}

impl RemoteCacheSettings {
    /// `registry` with a transport of the cache's own on the same
    /// network settings (trust, proxies): connecting and every read get
    /// `timeout`, and nothing is tried again, so the first failure is
    /// the registry's last in this run.
    pub fn registry(&self, registry: &RegistrySettings) -> RegistrySettings {
        let network = NetworkSettings {
            connect_timeout: self.timeout,
            idle_timeout: self.timeout,
            retries: 0,
            ..registry.transport.settings().clone()
        };
        RegistrySettings {
            transport: Transport::new(network),
            ..registry.clone()
        }
    }

    /// Each repository once, with what it is for: one named by both
    /// `--cache-from` and `--cache-to` is one place, asked and filled,
    /// and down for both at once. In the order named, lookups first.
    pub fn places(&self) -> Vec<(&Reference, super::Roles)> {
        let mut places: Vec<(&Reference, super::Roles)> = Vec::new();
        for (list, lookup) in [(&self.from, true), (&self.to, false)] {
            for r in list {
                match places.iter_mut().find(|(p, _)| *p == r) {
                    Some((_, roles)) if lookup => roles.lookup = true,
                    Some((_, roles)) => roles.fill = true,
                    None => places.push((
                        r,
                        super::Roles {
                            lookup,
                            fill: !lookup,
                        },
                    )),
                }
            }
        }
        places
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteCacheError {
    #[error("remote cache {reference}: cannot set up its registry client; fix the auth file or TLS setting the message names, or drop the --cache-from/--cache-to naming it")]
    Client {
        reference: String,
        // Boxed: a registry error carries URLs and messages.
        #[source]
        source: Box<RegistryError>,
    },
}

/// One `--cache-from` or `--cache-to` repository and its client.
pub struct Repository {
    reference: Reference,
    client: Client,
    /// When entries are pushed (`RemoteCacheSettings::now`).
    now: u64,
    /// Content bytes fetched so far.
    downloaded: AtomicU64,
}

impl Repository {
    /// Opens a client for `reference` (reading its credentials now, so a
    /// broken auth file is reported before the build). `registry` is the
    /// cache's (`RemoteCacheSettings::registry`); `now` dates what it
    /// pushes.
    pub fn open(
        reference: &Reference,
        registry: &RegistrySettings,
        now: u64,
    ) -> Result<Repository, RemoteCacheError> {
        let client = Client::new(&reference.registry, registry).map_err(|source| {
            RemoteCacheError::Client {
                reference: reference.to_string(),
                source: Box::new(source),
            }
        })?;
        Ok(Repository {
            reference: reference.clone(),
            client,
            now,
            downloaded: AtomicU64::new(0),
        })
    }
}

/// Whether a failed download is the entry's fault (content that is not
/// what the lock says), rather than the registry's or the network's.
fn entry_fault(e: &RegistryError) -> bool {
    match e {
        RegistryError::Store { .. }
        | RegistryError::DigestMismatch { .. }
        | RegistryError::Malformed { .. }
        | RegistryError::TooLarge { .. }
        | RegistryError::Protocol { .. } => true,
        RegistryError::Status { status, .. } => *status == 404,
        _ => false,
    }
}

impl EntryStore for Repository {
    fn name(&self) -> String {
        format!("remote cache {}", self.reference)
    }

    fn deb(&self, query: &DebQuery<'_>, into: &BlobStore) -> Answer<()> {
        match self.fetch_deb(query, into) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.downloaded.fetch_add(query.size, Ordering::Relaxed);
                Ok(Some(()))
            }
            Err(e) if entry_fault(&e) => Err(Trouble::refused(&debs::tag(query.sha256), e)),
            Err(e) => Err(Trouble::down("fetching a .deb", e)),
        }
    }

    fn archive(
        &self,
        key: &Digest,
        into: &BlobStore,
        check: ArchiveCheck,
    ) -> Answer<(Digest, u64)> {
        let found = self.fetch_archive(key, into, check)?;
        if let Some((_, size)) = &found {
            self.downloaded.fetch_add(*size, Ordering::Relaxed);
        }
        Ok(found)
    }

    fn put(&self, entry: &Entry<'_>) -> Result<Stored, Trouble> {
        let pushed = match *entry {
            Entry::Deb { deb, from } => {
                if !from.contains(deb.sha256) {
                    return Err(Trouble::Entry(format!(
                        "{} ({}) is not in the local cache, so it cannot be pushed",
                        deb.label, deb.sha256
                    )));
                }
                self.push_deb(&deb, from)
            }
            Entry::Archive {
                key,
                sha256,
                size,
                from,
            } => {
                if !from.contains(sha256) {
                    return Err(Trouble::Entry(format!(
                        "the archive {sha256} is not in the local cache, so it cannot be pushed"
                    )));
                }
                self.push_archive(key, (sha256, size), from)
            }
            Entry::Layer { .. } | Entry::Pack { .. } => return Ok(Stored::NotKept),
        };
        match pushed {
            Ok(None) => Ok(Stored::Present),
            Ok(Some(bytes)) => Ok(Stored::Sent { bytes }),
            Err(e) => Err(Trouble::down("pushing an entry", e)),
        }
    }

    fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Roles;

    #[test]
    fn a_repository_named_twice_is_one_place() {
        let r = |s: &str| Reference::parse(s).unwrap();
        let settings = RemoteCacheSettings {
            from: vec![r("127.0.0.1:5000/a"), r("127.0.0.1:5000/b")],
            to: vec![r("127.0.0.1:5000/b"), r("127.0.0.1:5000/c")],
            ..RemoteCacheSettings::default()
        };
        let places: Vec<(String, Roles)> = settings
            .places()
            .into_iter()
            .map(|(r, roles)| (r.to_string(), roles))
            .collect();
        let both = Roles {
            lookup: true,
            fill: true,
        };
        assert_eq!(
            places,
            [
                ("127.0.0.1:5000/a".to_string(), Roles::FROM),
                ("127.0.0.1:5000/b".to_string(), both),
                ("127.0.0.1:5000/c".to_string(), Roles::TO),
            ]
        );
    }

    #[test]
    fn the_cache_transport_has_its_own_budget_on_the_same_trust() {
        let mut network = NetworkSettings::default();
        network.tls.verify = false;
        let registry = RegistrySettings {
            transport: Transport::new(network),
            ..RegistrySettings::default()
        };
        let settings = RemoteCacheSettings {
            timeout: Duration::from_millis(1500),
            ..RemoteCacheSettings::default()
        };
        let cache = settings.registry(&registry);
        let s = cache.transport.settings();
        assert_eq!(s.idle_timeout, Duration::from_millis(1500));
        assert_eq!(s.connect_timeout, Duration::from_millis(1500));
        assert_eq!(cache.transport.policy().retries, 0);
        assert!(!s.tls.verify, "the trust settings carry over");
        assert_eq!(
            registry.transport.settings().idle_timeout,
            NetworkSettings::default().idle_timeout
        );
    }
}
