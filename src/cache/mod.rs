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
//! - application archives (`apps`): wheel or npm tarball sha256 → unpacked,
//!   and npm integrity → the checked tarball's sha256;
//! - downloads (.debs, apt indexes, base images' blobs, wheels, npm
//!   tarballs), by digest alone.
//!
//! A registry repository (`remote`: `--cache-from`, `--cache-to`,
//! `stele vendor --to`) keeps locked .debs as OCI artifacts by sha256:
//! a package archive for fleets of CI runners and for rebuilds after the
//! mirror moved on. It keeps nothing else, since nothing else it could
//! hold can be proven from the lock (`lookup`).
//!
//! Both answer one checked-lookup interface (`lookup::EntryStore`); the
//! pipeline chains them (`Chain`: the local folder first, then each
//! `--cache-from`; fills go to the local folder and each `--cache-to`),
//! and the build and package steps ask the chain, never a registry.
//! `prune` makes the local folder smaller under its exclusive lock;
//! `remote::prune` a registry's, through its API.

mod apps;
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

pub use apps::AppPacks;
pub use chain::{Chain, RemoteReport, Roles};
pub use checked::{CheckReport, CheckedLayers};
pub use folder::{lock, Cache, LOCK_FILE};
pub use layers::LayerCache;
pub use local::Local;
pub use packs::PackCache;
pub use remote::{RemoteCacheError, RemoteCacheSettings, Repository};
pub use views::ViewCache;
