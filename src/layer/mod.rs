//! Layers: a tree becomes canonical tar bytes, which stream through the
//! DiffID hasher, a fixed-chunk compressor and the digest hasher into a blob
//! file, in one pass. No layer is held whole in memory.

pub mod cache;
pub mod profile;
pub mod tar;

use std::io::{self, Write};

use flate2::write::GzEncoder;

use crate::fstree::FsTree;
use crate::oci::{Digest, HashingWriter, LayerBlob};
use crate::store::{BlobStore, StoreError};
pub use cache::{layer_key, LayerCache};
pub use profile::{Compression, CHUNK_SIZE, PROFILE_ID};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Tar(#[from] tar::TarError),
    #[error("compressing a layer: {0}")]
    Compress(io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Passes bytes on in slices of exactly `CHUNK_SIZE`, whatever sizes they
/// arrive in, so the compressor sees the same calls on every machine.
pub(crate) struct ChunkedWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> ChunkedWriter<W> {
    pub fn new(inner: W) -> Self {
        ChunkedWriter {
            inner,
            buf: Vec::with_capacity(CHUNK_SIZE),
        }
    }

    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for ChunkedWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= CHUNK_SIZE {
                self.inner.write_all(&data[..CHUNK_SIZE])?;
                data = &data[CHUNK_SIZE..];
                continue;
            }
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                self.inner.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(total)
    }

    // Flushing would hand the compressor a short slice mid-stream; the only
    // boundary that may be short is the last, at `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Compressor<W: Write> {
    Gzip(GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Compressor<W> {
    fn new(c: Compression, inner: W) -> io::Result<Self> {
        Ok(match c {
            Compression::Gzip => Compressor::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(inner, flate2::Compression::new(profile::GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(inner, profile::ZSTD_LEVEL)?;
                e.include_checksum(false)?;
                Compressor::Zstd(e)
            }
            Compression::None => Compressor::None(inner),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
            Compressor::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
            Compressor::None(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The uncompressed-to-blob half of the pipeline, for callers that produce
/// tar bytes themselves: write tar bytes into it, then `finish`. The blob's
/// digest and size are taken by `out` (a `BlobWriter` hashes what it
/// stores), so the compressed bytes are hashed once.
pub(crate) struct LayerSink<W: Write> {
    chain: HashingWriter<ChunkedWriter<Compressor<W>>>,
}

impl<W: Write> LayerSink<W> {
    pub fn new(compression: Compression, out: W) -> io::Result<Self> {
        let compressor = Compressor::new(compression, out)?;
        Ok(LayerSink {
            chain: HashingWriter::new(ChunkedWriter::new(compressor)),
        })
    }

    /// Flushes the compressor and returns the sink with the layer's DiffID
    /// (the digest of the tar bytes written).
    pub fn finish(self) -> io::Result<(W, Digest)> {
        let (chunked, diff_id, _) = self.chain.finish();
        let compressor = chunked.finish()?;
        Ok((compressor.finish()?, diff_id))
    }
}

impl<W: Write> Write for LayerSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.chain.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `tree` as one layer blob into `store`. The tree must have had
/// `complete_parents` called. A returned `LayerBlob` means the blob is
/// stored under its digest.
pub fn write_layer(
    tree: &FsTree,
    compression: Compression,
    store: &BlobStore,
) -> Result<LayerBlob, LayerError> {
    write_layer_to(tree, compression, store, None)
}

/// As `write_layer`, and the same bytes also into `also` (the layer
/// cache's store), from the one pass: a second file is cheaper than
/// copying and checking the blob afterwards.
pub(crate) fn write_layer_to(
    tree: &FsTree,
    compression: Compression,
    store: &BlobStore,
    also: Option<&BlobStore>,
) -> Result<LayerBlob, LayerError> {
    let mut out = store.begin()?;
    if let Some(also) = also {
        out = out.mirror_into(also)?;
    }
    let mut sink = LayerSink::new(compression, out).map_err(LayerError::Compress)?;
    tar::write_tree(tree, &mut sink)?;
    let (out, diff_id) = sink.finish().map_err(LayerError::Compress)?;
    let (digest, size) = out.finish()?;
    Ok(LayerBlob {
        media_type: compression.media_type(),
        digest,
        size,
        diff_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_writer_is_independent_of_write_sizes() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let run = |step: usize| {
            let mut sink = LayerSink::new(Compression::Gzip, Vec::new()).unwrap();
            for part in data.chunks(step) {
                sink.write_all(part).unwrap();
            }
            sink.finish().unwrap()
        };
        let (a, da) = run(1);
        let (b, db) = run(4099);
        let (c, dc) = run(CHUNK_SIZE * 3);
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(da, db);
        assert_eq!(db, dc);
        assert_eq!(da, Digest::of(&data));
    }
}
