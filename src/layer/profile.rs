//! The encoding profile: everything that shapes a layer's compressed bytes.
//! Its id is written into lockfiles and as the manifest annotation
//! `dev.stele.encoding`. Changing anything listed here (a compressor crate,
//! its level, the chunk size, the tar dialect) must change the id, and the
//! golden-digest test is there to notice when a dependency bump does it
//! silently (as Go's and klauspost's gzip changes did for other builders).

use oci_spec::image::MediaType;

/// An encoding profile. Each one a stele release can write stays
/// writable, byte for byte, so an old lock rebuilds the digest it always
/// did; `tests/it/golden.rs` pins each one.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Profile {
    /// One compressor stream per layer, fed fixed-size chunks.
    #[serde(rename = "stele-2026.1")]
    V2026_1,
    /// Fixed-size blocks compressed independently (on every core) and
    /// joined: see `layer::blocks`.
    #[default]
    #[serde(rename = "stele-2026.2")]
    V2026_2,
}

impl Profile {
    /// Every profile, oldest first.
    pub const ALL: [Profile; 2] = [Profile::V2026_1, Profile::V2026_2];

    /// The id written into locks and the `dev.stele.encoding` annotation.
    pub fn id(self) -> &'static str {
        match self {
            Profile::V2026_1 => "stele-2026.1",
            Profile::V2026_2 => "stele-2026.2",
        }
    }

    /// Human-readable statement of the profile, shown by `stele version`
    /// and recorded in provenance.
    pub fn description(self) -> &'static str {
        match self {
            Profile::V2026_1 => {
                "tar: ustar with pax records for long names, ids and xattrs; \
gzip: flate2 1.1.11 on zlib-rs 0.6.8, level 6, no name, mtime 0, OS 255; \
zstd: zstd crate 0.13.3 on libzstd 1.5.7, level 3, single thread, no checksum; \
compressor fed 65536-byte chunks"
            }
            Profile::V2026_2 => {
                "tar: ustar with pax records for long names, ids and xattrs; \
gzip: one member (no name, mtime 0, OS 255) of 1048576-byte blocks, each raw deflate \
by flate2 1.1.11 on zlib-rs 0.6.8 at level 6 from an empty window, ended by a sync flush, \
then an empty final block; \
zstd: one frame per 4194304-byte block by the zstd crate 0.13.3 on libzstd 1.5.7, \
level 3, content size, no checksum; \
the same bytes for any number of threads"
            }
        }
    }

    /// The profile with this id.
    pub fn from_id(id: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.id() == id)
    }

    /// The profile a build uses: the recipe's `encoding` when it names
    /// one, else the lock's (so an old lock rebuilds the same digest),
    /// else the newest.
    pub fn in_force(pinned: Option<Profile>, locked: Option<Profile>) -> Profile {
        pinned.or(locked).unwrap_or_default()
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// Profile 2026.1: uncompressed bytes reach the compressor in chunks of
/// exactly this size (the last one shorter), because zlib-rs and zlib-ng
/// emit different streams for the same input written in different slices.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// Profile 2026.2's block sizes. Each block starts from an empty window,
/// so a block costs the matches it cannot make into the one before:
/// deflate looks back only 32 KiB, and 1 MiB blocks are 0.1% larger than
/// one stream (on a tar of shared libraries); zstd level 3 looks back
/// 2 MiB, where 1 MiB blocks cost 1.8% and 4 MiB blocks 0.4%. Two blocks
/// per thread are in memory at once: 8 MiB of input per thread at most.
pub const GZIP_BLOCK_SIZE: usize = 1024 * 1024;
pub const ZSTD_BLOCK_SIZE: usize = 4 * 1024 * 1024;

pub(crate) const GZIP_LEVEL: u32 = 6;
pub(crate) const ZSTD_LEVEL: i32 = 3;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn media_type(self) -> MediaType {
        match self {
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
            Compression::None => MediaType::ImageLayer,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_what_locks_and_recipes_write() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct T {
            encoding: Profile,
        }
        for p in Profile::ALL {
            let text = toml::to_string(&T { encoding: p }).unwrap();
            assert_eq!(text.trim(), format!("encoding = \"{}\"", p.id()));
            assert_eq!(toml::from_str::<T>(&text).unwrap().encoding, p);
            assert_eq!(Profile::from_id(p.id()), Some(p));
        }
        let err = toml::from_str::<T>("encoding = \"stele-2099.1\"")
            .err()
            .unwrap();
        assert!(err.to_string().contains("stele-2026.2"), "{err}");
        assert_eq!(Profile::default(), *Profile::ALL.last().unwrap());
        // The description states the block sizes the code uses.
        let d = Profile::V2026_2.description();
        assert!(d.contains(&format!("{GZIP_BLOCK_SIZE}-byte")));
        assert!(d.contains(&format!("{ZSTD_BLOCK_SIZE}-byte")));
        assert!(Profile::V2026_1
            .description()
            .contains(&format!("{CHUNK_SIZE}-byte")));
    }

    #[test]
    fn the_recipe_wins_then_the_lock_then_the_newest() {
        use Profile::*;
        assert_eq!(Profile::in_force(None, None), V2026_2);
        assert_eq!(Profile::in_force(None, Some(V2026_1)), V2026_1);
        assert_eq!(Profile::in_force(Some(V2026_1), None), V2026_1);
        assert_eq!(Profile::in_force(Some(V2026_2), Some(V2026_1)), V2026_2);
    }
}
