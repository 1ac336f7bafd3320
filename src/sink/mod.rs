//! Where built images go. Every sink takes the same `Built` model and the
//! store holding its blobs.

pub mod archive;
pub(crate) mod docker_archive;
pub mod layout;
pub(crate) mod oci_archive;
pub mod registry;

use std::path::PathBuf;

use crate::source::target::ArchiveKind;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("refusing to replace {path}: it exists and is not an OCI image layout stele could have written; choose another output with -o or remove it")]
    WouldClobber { path: PathBuf },
    #[error("refusing to replace {path}: it exists and is not {} stele could have written; choose another output with -o or remove it", archive_noun(*.kind))]
    WouldClobberArchive { path: PathBuf, kind: ArchiveKind },
    #[error("writing {path}: {error}")]
    Blob { path: PathBuf, error: StoreError },
}

pub(crate) fn archive_noun(kind: ArchiveKind) -> &'static str {
    match kind {
        ArchiveKind::Oci => "an oci-archive",
        ArchiveKind::Docker => "a docker-archive",
    }
}
