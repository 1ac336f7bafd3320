//! The encoding profile: everything that shapes a layer's compressed bytes.
//! Its id is written into lockfiles and as the manifest annotation
//! `dev.stele.encoding`. Changing anything listed here (a compressor crate,
//! its level, the chunk size, the tar dialect) must change the id, and the
//! golden-digest test is there to notice when a dependency bump does it
//! silently (as Go's and klauspost's gzip changes did for other builders).

use oci_spec::image::MediaType;

/// The profile this build of stele writes.
pub const PROFILE_ID: &str = "stele-2026.1";

/// Human-readable statement of the profile, shown by `stele version`.
pub(crate) const PROFILE_DESCRIPTION: &str =
    "tar: ustar with pax records for long names, ids and xattrs; \
gzip: flate2 1.1.11 on zlib-rs 0.6.8, level 6, no name, mtime 0, OS 255; \
zstd: zstd crate 0.13.3 on libzstd 1.5.7, level 3, single thread, no checksum; \
compressor fed 65536-byte chunks";

/// Uncompressed bytes reach the compressor in chunks of exactly this size
/// (the last one shorter), because zlib-rs and zlib-ng emit different
/// streams for the same input written in different slices.
pub const CHUNK_SIZE: usize = 64 * 1024;

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
