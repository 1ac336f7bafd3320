//! The one checked-lookup interface: every place cache entries are kept
//! (the local folder, a registry repository) answers the same questions
//! and takes the same entries, and `Chain` asks them in order.
//!
//! The contract an implementation keeps: an answer is checked before it
//! is returned (a layer's blob is the one its entry names and holds the
//! tar the tree makes; a package's index describes the .deb asked for and
//! fits a pack that hashes whole), so whoever asks uses it as it is. What
//! fails a check is `Trouble::Entry` (a miss, named in a warning); a
//! place that cannot be reached is `Trouble::Down` (one warning, and not
//! asked again in the run). Neither is ever an error that fails a build.
//!
//! A new kind of entry (a .deb by its sha256, say) is a method here with
//! the key it is found by and what its answer is checked against, an
//! `Entry` variant for storing it, and an implementation in `local` and
//! `remote`.

use crate::dpkg::unpack::UnpackedDeb;
use crate::fstree::FsTree;
use crate::layer::{Encoding, Profile};
use crate::oci::{Digest, LayerBlob};
use crate::store::BlobStore;

/// A layer asked for: its key (`layer::layer_key`), and what an answer
/// is checked against.
#[derive(Clone, Copy)]
pub struct LayerQuery<'a> {
    pub key: &'a Digest,
    /// The tree the layer is written from: an answer must be its tar.
    pub tree: &'a FsTree,
    pub encoding: Encoding,
}

/// An entry to store.
#[derive(Clone, Copy)]
pub enum Entry<'a> {
    /// The layer `key` names, written with `profile`; its blob in `from`.
    Layer {
        key: &'a Digest,
        layer: &'a LayerBlob,
        profile: Profile,
        from: &'a BlobStore,
    },
    /// The .deb `deb` unpacked; its pack and index in the local folder.
    Pack {
        deb: &'a Digest,
        unpacked: &'a UnpackedDeb,
    },
    /// An application package's archive (`apps`): the blob `sha256`
    /// (`size` bytes, in `from`) that the lock's `key` names.
    Archive {
        key: &'a Digest,
        sha256: &'a Digest,
        size: u64,
        from: &'a BlobStore,
    },
}

/// How the caller checks an archive that arrived (in the store, its
/// sha256 and size) against its lock before it is an answer.
pub type ArchiveCheck<'a> = &'a (dyn Fn(&BlobStore, &Digest, u64) -> Result<(), String> + Sync);

impl Entry<'_> {
    /// Bytes of content: how long storing it takes, roughly.
    pub fn size(&self) -> u64 {
        match self {
            Entry::Layer { layer, .. } => layer.size,
            Entry::Pack { unpacked, .. } => unpacked.pack().1,
            Entry::Archive { size, .. } => *size,
        }
    }
}

/// What storing an entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// It was there already.
    Present,
    /// Stored now, `bytes` sent.
    Sent { bytes: u64 },
}

/// Why a place gave no answer, or stored nothing, beyond a plain miss.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// This entry only: it failed a check (or could not be prepared), so
    /// it is a miss and a warning names it.
    Entry(String),
    /// The whole place: it cannot be reached or refuses; one warning, and
    /// it is not asked again in this run.
    Down(String),
}

impl Trouble {
    /// The entry `entry` is there and failed a check: `why`.
    pub fn refused(entry: &str, why: impl std::fmt::Display) -> Trouble {
        Trouble::Entry(format!(
            "entry {entry} does not check out and is not used: {why}"
        ))
    }

    /// `doing` failed with `error`, through no fault of an entry.
    pub fn down(doing: &str, error: impl std::fmt::Display) -> Trouble {
        Trouble::Down(format!("{doing}: {error}"))
    }
}

/// A lookup's answer: checked, absent, or trouble.
pub type Answer<T> = Result<Option<T>, Trouble>;

/// One place cache entries are kept: the local folder (`local::Local`)
/// or a registry repository (`remote::Repository`).
pub trait EntryStore: Send + Sync {
    /// How warnings name it (`remote cache HOST/REPO`).
    fn name(&self) -> String;

    /// The layer `query` names, its blob copied into `out`.
    fn layer(&self, query: &LayerQuery<'_>, out: &BlobStore) -> Answer<LayerBlob>;

    /// The .deb `deb` unpacked, its pack in the local folder, checked as
    /// the local folder checks its own records. Not recorded there: the
    /// chain does that once the answer is taken.
    fn pack(&self, deb: &Digest) -> Answer<UnpackedDeb>;

    /// The archive the lock's `key` names (a wheel's sha256, an npm
    /// integrity hashed), downloaded into the local folder's blobs and
    /// passed through `check`: its sha256 and size. Places that keep
    /// none (the local folder keeps archives by sha256 alone) answer
    /// nothing.
    fn archive(&self, _key: &Digest, _check: ArchiveCheck) -> Answer<(Digest, u64)> {
        Ok(None)
    }

    /// Stores `entry` unless it is there already.
    fn put(&self, entry: &Entry<'_>) -> Result<Stored, Trouble>;

    /// Content bytes downloaded to answer lookups so far.
    fn downloaded(&self) -> u64 {
        0
    }
}
