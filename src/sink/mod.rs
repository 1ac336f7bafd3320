//! Where built images go. Every sink takes the same `Built` model and the
//! store holding its blobs.

pub mod layout;
pub mod registry;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("refusing to replace {path}: it exists and is not an OCI image layout stele could have written; choose another output with -o or remove it")]
    WouldClobber { path: PathBuf },
}
