//! stele: reproducible OCI images from declarative recipes.
//!
//! Data flow (see DESIGN.md): recipe → (lock) → fetch → tree → layers →
//! image/index → sink. Everything below `cli` is a function of its
//! arguments: no clock, no environment, no host metadata except the files a
//! recipe names.

pub mod apt;
pub mod assemble;
pub mod attest;
pub mod build;
pub mod cli;
pub mod deb;
pub mod fstree;
pub mod layer;
pub mod lock;
pub mod oci;
pub mod packages;
pub mod parallel;
pub mod recipe;
pub mod registry;
pub mod sink;
pub mod source;
pub mod store;
pub mod timefmt;
pub mod verify;

pub use build::{build, BuildInputs, BuildOutput, BuildSettings};

/// Every way a build can fail, each carrying the input it is about.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Recipe(#[from] recipe::RecipeError),
    #[error(transparent)]
    Files(#[from] assemble::files::FilesError),
    #[error(transparent)]
    Tree(#[from] fstree::TreeError),
    #[error(transparent)]
    Content(#[from] fstree::ContentError),
    #[error(transparent)]
    Deb(#[from] deb::DebError),
    #[error(transparent)]
    Install(#[from] apt::install::InstallError),
    // Boxed: package errors carry several paths and would make every
    // `Result<_, BuildError>` large.
    #[error(transparent)]
    Packages(Box<packages::PackagesError>),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Sink(#[from] sink::SinkError),
    #[error(transparent)]
    Attest(#[from] attest::AttestError),
    #[error("base image {image}: {source}")]
    Base {
        image: String,
        source: source::unpack::UnpackError,
    },
    // Not `source`: the message already carries the inner error, and a
    // source would make the CLI print it a second time as "caused by".
    #[error("{loc}: {error}")]
    At { loc: String, error: Box<BuildError> },
    #[error("{0}")]
    Unsupported(String),
}

impl From<packages::PackagesError> for BuildError {
    fn from(e: packages::PackagesError) -> BuildError {
        BuildError::Packages(Box::new(e))
    }
}
