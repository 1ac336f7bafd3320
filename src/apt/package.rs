//! One binary package as a Packages index describes it.

use crate::oci::Digest;

/// A binary package stanza from a Packages index, with the fields stele
/// uses parsed and the whole stanza kept for the dpkg database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Debian architecture (`amd64`, `arm64`, …) or `all`.
    pub architecture: String,
    /// `Multi-Arch` field: "same", "foreign", "allowed" or empty.
    pub multi_arch: String,
    pub essential: bool,
    pub priority: String,
    /// Source package name (`Source:` without version, or the package name).
    pub source: String,
    /// Raw relationship fields, unparsed; the resolver parses them.
    pub depends: String,
    pub pre_depends: String,
    pub provides: String,
    pub conflicts: String,
    pub breaks: String,
    pub replaces: String,
    /// Pool path relative to the mirror root (`pool/main/b/busybox/…deb`).
    pub filename: String,
    pub size: u64,
    pub sha256: Digest,
    /// The stanza as it appeared in the index (for `status.d`).
    pub stanza: String,
    /// Which `[apt] sources` entry (index into the recipe's list) it came from.
    pub source_index: usize,
}
