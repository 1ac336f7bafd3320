//! Debian packages from signed apt repositories: trust chain (InRelease →
//! Packages → .deb), version ordering, resolution, fetching and caching.

pub mod install;
pub mod package;

pub use package::Package;
