//! The cache: everything stele keeps to spare itself work, and nothing
//! that can change an image. A cache can cost time, never the bytes: every
//! entry is checked when it is read, and a damaged or poisoned one is a
//! miss.
//!
//! Two places hold entries. The local folder (`folder`: `~/.cache/stele`
//! or `--cache-dir`, its layout, its lock) holds one blob store and, by
//! kind, records that find entries by key (`records`):
//!
//! - layers (`layers`): layer key → the compressed blob and its DiffID;
//! - packs (`packs`): .deb sha256 → the package unpacked (`dpkg::unpack`);
//! - base views (`views`): base layer digest → what a build needs of it;
//! - checked layers (`checked`): layer digest → the DiffID its bytes were
//!   found to uncompress to, and the files found to hold them;
//! - the executable-digest memo (`memo`): what stele names itself by;
//! - downloads (.debs, apt indexes, base images' blobs), by digest alone.
//!
//! A registry repository (`remote`: `--cache-from`, `--cache-to`) holds
//! layers and packs as OCI artifacts, for fleets of CI runners.
//!
//! Both answer one checked-lookup interface (`lookup::EntryStore`); the
//! pipeline chains them (`Chain`: the local folder first, then each
//! `--cache-from`; fills go to the local folder and each `--cache-to`),
//! and the build and package steps ask the chain, never a registry.
//! `prune` makes the local folder smaller under its exclusive lock.

mod chain;
mod checked;
mod folder;
mod layers;
mod local;
pub mod lookup;
pub mod memo;
mod packs;
pub mod prune;
pub(crate) mod records;
pub mod remote;
mod views;

pub use chain::{Chain, Origin, RemoteReport, Roles};
pub use checked::{CheckReport, CheckedLayers};
pub use folder::{lock, Cache, LOCK_FILE};
pub use layers::LayerCache;
pub use local::Local;
pub use packs::PackCache;
pub use remote::{RemoteCacheError, RemoteCacheSettings, Repository};
pub use views::ViewCache;
