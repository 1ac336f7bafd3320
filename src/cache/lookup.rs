//! The one checked-lookup interface: every place cache entries are kept
//! (the local folder, a registry repository) answers the same questions
//! and takes the same entries, and `Chain` asks them in order.
//!
//! The contract an implementation keeps: an answer is checked before it
//! is returned, against what the lock or the local tree proves, so
//! whoever asks uses it as it is. What fails a check is `Trouble::Entry`
//! (a miss, named in a warning); a place that cannot be reached is
//! `Trouble::Down` (one warning, and not asked again in the run). Neither
//! is ever an error that fails a build.
//!
//! What a place may answer is what it can prove (issue 28's rule): a
//! .deb by the sha256 and size the lock names, from anywhere; a layer or
//! an unpacked package only from the local folder, which stele wrote
//! itself. A registry cannot prove a layer (the only proof that a blob
//! is the compression stele would write is compressing it, which is the
//! work a hit would save) nor an unpacked package (only unpacking the
//! .deb proves what it unpacks to), so it keeps .debs only and answers
//! `layer` and `pack` with nothing. An application package's archive (a
//! wheel, an npm tarball) is a .deb's peer: its lock names its hash, and
//! the caller's check holds every answer to it.
//!
//! A new kind of entry is a method here with the key it is found by and
//! what its answer is checked against, an `Entry` variant for storing it,
//! and an implementation in `local` and `remote`.

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

/// A .deb asked for: what the lock says of it.
#[derive(Clone, Copy, Debug)]
pub struct DebQuery<'a> {
    pub sha256: &'a Digest,
    pub size: u64,
    /// `name version (arch)`, for messages and the entry's annotations.
    pub label: &'a str,
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
    /// A locked .deb, its bytes in `from` under its sha256.
    Deb {
        deb: DebQuery<'a>,
        from: &'a BlobStore,
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
            Entry::Deb { deb, .. } => deb.size,
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
    /// This place keeps no entries of that kind.
    NotKept,
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

    /// The layer `query` names, its blob copied into `out`. A place that
    /// cannot prove a layer (see the module doc) keeps none.
    fn layer(&self, _query: &LayerQuery<'_>, _out: &BlobStore) -> Answer<LayerBlob> {
        Ok(None)
    }

    /// The .deb `deb` unpacked, its pack in the local folder, checked as
    /// the local folder checks its own records. Not recorded there: the
    /// chain does that once the answer is taken. A place that cannot
    /// prove what a .deb unpacks to keeps none.
    fn pack(&self, _deb: &Digest) -> Answer<UnpackedDeb> {
        Ok(None)
    }

    /// The .deb `query` names, stored in `into` under its sha256 only
    /// once its bytes are exactly the `size` bytes that hash to it: a
    /// .deb that is not the locked one never lands there.
    fn deb(&self, query: &DebQuery<'_>, into: &BlobStore) -> Answer<()>;

    /// The archive the lock's `key` names (a wheel's sha256, an npm
    /// integrity hashed), downloaded into `into` (the local folder's
    /// blobs) and passed through `check`: its sha256 and size. Places
    /// that keep none (the local folder keeps archives by sha256 alone)
    /// answer nothing.
    fn archive(
        &self,
        _key: &Digest,
        _into: &BlobStore,
        _check: ArchiveCheck,
    ) -> Answer<(Digest, u64)> {
        Ok(None)
    }

    /// Stores `entry` unless it is there already.
    fn put(&self, entry: &Entry<'_>) -> Result<Stored, Trouble>;

    /// Content bytes downloaded to answer lookups so far.
    fn downloaded(&self) -> u64 {
        0
    }
}
