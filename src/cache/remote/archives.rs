//! The third kind of entry a registry keeps: an application package's
//! archive (a wheel, an npm tarball) by the key its lock names it by (a
//! wheel's sha256; an npm package's integrity, hashed), as a record and
//! the archive itself. What a runner downloaded from a package index
//! another runner then takes from the fleet's registry.
//!
//! Checked as every entry is: the record must answer the key asked, the
//! blob is hashed as it streams in and must be the record's, and the
//! caller's check (the lock's sha256 or integrity, over the bytes that
//! arrived) must pass before the answer is given.

use serde::{Deserialize, Serialize};

use super::entries::{shaped_as, ENTRY_FORMAT};
use super::Repository;
use crate::cache::lookup::{Answer, ArchiveCheck, Trouble};
use crate::oci::Digest;
use crate::store::BlobStore;

/// The artifact type (and record media type) of an archive entry.
pub const ARCHIVE_ARTIFACT: &str = "application/vnd.dev.stele.cache.archive.v1+json";
const ARCHIVE_BLOB: &str = "application/vnd.dev.stele.archive.v1";

pub(super) fn archive_tag(key: &Digest) -> String {
    format!("archive-v{ENTRY_FORMAT}-{}", key.hex())
}

/// What an archive entry says: `key` is the blob `sha256` of `size` bytes.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArchiveRecord {
    pub format: u32,
    pub key: Digest,
    pub sha256: Digest,
    pub size: u64,
}

impl Repository {
    /// The archive `key` names, downloaded into the local folder's store
    /// and passed through `check`; its sha256 and size.
    pub(super) fn find_archive(&self, key: &Digest, check: ArchiveCheck) -> Answer<(Digest, u64)> {
        let tag = archive_tag(key);
        let found = self.find(&tag, |found| {
            let record: ArchiveRecord = serde_json::from_slice(&found.record)
                .map_err(|e| format!("its record does not parse: {e}"))?;
            if record.format != ENTRY_FORMAT || &record.key != key {
                return Err(format!("its record answers the key {}", record.key));
            }
            shaped_as(
                found,
                ARCHIVE_ARTIFACT,
                &[(ARCHIVE_BLOB, &record.sha256, record.size)],
            )?;
            Ok(record)
        })?;
        let Some((record, _)) = found else {
            return Ok(None);
        };
        check(&self.store, &record.sha256, record.size)
            .map_err(|why| Trouble::refused(&tag, why))?;
        Ok(Some((record.sha256, record.size)))
    }

    /// The archive entry of `key` (the blob `sha256`, `size` bytes in
    /// `from`) ready to push.
    pub(super) fn outgoing_archive<'a>(
        &'a self,
        key: &Digest,
        sha256: &'a Digest,
        size: u64,
        from: &'a BlobStore,
    ) -> Result<super::entries::Outgoing<'a>, Trouble> {
        let record = ArchiveRecord {
            format: ENTRY_FORMAT,
            key: key.clone(),
            sha256: sha256.clone(),
            size,
        };
        self.outgoing_with(
            archive_tag(key),
            ARCHIVE_ARTIFACT,
            &record,
            &[(ARCHIVE_BLOB, sha256, size, from)],
        )
    }
}
