//! How a build fails, each variant carrying the input it is about.

use crate::oci::Platform;

/// Every way the pure build can fail. What the pipeline's resolve stage
/// checks (the lock, the base's platforms) cannot fail here.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Assemble(#[from] crate::assemble::AssembleError),
    #[error(transparent)]
    Tree(#[from] crate::fstree::TreeError),
    #[error(transparent)]
    Content(#[from] crate::fstree::ContentError),
    #[error(transparent)]
    Install(#[from] crate::dpkg::install::InstallError),
    /// `[python]` or `[node]` packages that cannot be installed.
    #[error(transparent)]
    Apps(#[from] Box<crate::apps::AppsError>),
    #[error("{package} was not unpacked before the build; this is a bug in stele")]
    NotUnpacked { package: String },
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error("{loc}: {what} `{name}` is not in the {platform} image's {file}; add it under [accounts], install the package that creates it, or give a numeric id")]
    UnknownAccount {
        loc: String,
        what: &'static str,
        name: String,
        platform: String,
        file: &'static str,
    },
    #[error("{recipe}: the recipe puts a file at {path}, where stele embeds the image's SBOM; move it, or set `sbom = false` under [image]")]
    SbomPathTaken {
        recipe: std::path::PathBuf,
        path: &'static str,
    },
    #[error("the image config of {platform} cannot be written: {message}")]
    ImageConfig { platform: String, message: String },
}

/// A base image the build cannot use.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("base {image} has no image for {platform} (it has {has}); drop {platform} from [image] platforms or pick a base that has it")]
    NoPlatform {
        image: String,
        platform: Platform,
        has: String,
    },
    #[error("base image {image}: layer {layer} was not read when the base was opened; this is a bug in stele, please report it")]
    NoView {
        image: String,
        layer: crate::oci::Digest,
    },
}
