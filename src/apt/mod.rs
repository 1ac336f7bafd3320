//! Debian packages from signed apt repositories: trust chain (InRelease →
//! Packages → .deb), version ordering, resolution, fetching and caching.

pub mod control;
pub mod debs;
pub mod fetch;
pub mod hostconf;
pub(crate) mod locking;
pub mod package;
pub mod release;
pub(crate) mod resolver;
pub mod sources;
pub mod version;

pub use package::Package;
