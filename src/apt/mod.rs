//! Debian packages from signed apt repositories: trust chain (InRelease →
//! Packages → .deb), resolution (by dpkg's version ordering, `dpkg::version`),
//! fetching and caching.

pub mod control;
pub mod debs;
pub mod fetch;
pub mod hostconf;
pub(crate) mod locking;
pub mod package;
pub mod release;
pub(crate) mod resolver;
pub(crate) mod snapshot;
pub mod sources;

pub use package::Package;
