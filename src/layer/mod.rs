//! Layers: a tree becomes canonical tar bytes, which stream through the
//! DiffID hasher, the profile's compressor (fixed chunks into one stream,
//! or fixed blocks compressed on a shared pool of threads) and the digest
//! hasher into a blob file, in one pass. No layer is held whole in memory.

mod blocks;
mod key;
pub mod profile;
pub mod tar;

/// What the layer and cache tests share: the 2026.2 encodings and a
/// one-file tree.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Compression, Encoding, Profile};
    use crate::fstree::{Content, FsTree, Node};

    pub(crate) const GZIP: Encoding = Encoding {
        profile: Profile::V2026_2,
        compression: Compression::Gzip,
    };
    pub(crate) const ZSTD: Encoding = Encoding {
        profile: Profile::V2026_2,
        compression: Compression::Zstd,
    };

    pub(crate) fn tree() -> FsTree {
        let mut t = FsTree::new();
        t.insert(
            "etc/a".into(),
            Node::file(Content::bytes("a"), 0o644, 0, 0, 5),
        )
        .unwrap();
        t.complete_parents(&Node::dir(0o755, 0, 0, 5)).unwrap();
        t
    }
}

use std::io::{self, Write};

use flate2::write::GzEncoder;

use crate::fstree::FsTree;
use crate::oci::{Digest, HashingWriter, LayerBlob};
use crate::store::{BlobStore, StoreError};
pub use blocks::BlockPool;
pub use key::layer_key;
pub use profile::{Compression, Profile, CHUNK_SIZE};

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

/// What a layer's compressed bytes are made by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    pub profile: Profile,
    pub compression: Compression,
}

/// Profile 2026.1's compressors: one stream per layer.
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

/// The compressed end of a layer, as the profile makes it.
enum Encoder<'p, W: Write> {
    Chunked(ChunkedWriter<Compressor<W>>),
    Blocks(blocks::BlockWriter<'p, W>),
    None(W),
}

impl<W: Write> Encoder<'_, W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Chunked(c) => c.finish()?.finish(),
            Encoder::Blocks(b) => b.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Chunked(c) => c.write(buf),
            Encoder::Blocks(b) => b.write(buf),
            Encoder::None(w) => w.write(buf),
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
pub(crate) struct LayerSink<'p, W: Write> {
    chain: HashingWriter<Encoder<'p, W>>,
}

impl<'p, W: Write> LayerSink<'p, W> {
    /// `pool` compresses the blocks of profiles that cut the layer into
    /// blocks; without one they are compressed on the calling thread.
    pub fn new(encoding: Encoding, out: W, pool: Option<&'p BlockPool>) -> io::Result<Self> {
        let encoder = match (encoding.profile, blocks::Codec::of(encoding.compression)) {
            (_, None) => Encoder::None(out),
            (Profile::V2026_1, Some(_)) => Encoder::Chunked(ChunkedWriter::new(Compressor::new(
                encoding.compression,
                out,
            )?)),
            (Profile::V2026_2, Some(codec)) => {
                Encoder::Blocks(blocks::BlockWriter::new(codec, pool, out)?)
            }
        };
        Ok(LayerSink {
            chain: HashingWriter::new(encoder),
        })
    }

    /// Flushes the compressor and returns the sink with the layer's DiffID
    /// (the digest of the tar bytes written).
    pub fn finish(self) -> io::Result<(W, Digest)> {
        let (encoder, diff_id, _) = self.chain.finish();
        Ok((encoder.finish()?, diff_id))
    }
}

impl<W: Write> Write for LayerSink<'_, W> {
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
    encoding: Encoding,
    store: &BlobStore,
    pool: Option<&BlockPool>,
) -> Result<LayerBlob, LayerError> {
    write_layer_to(tree, encoding, store, None, pool, &|_| {})
}

/// A writer that tells `written` how many bytes each write took.
struct Counted<'a, W: Write> {
    inner: &'a mut W,
    written: &'a dyn Fn(u64),
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        (self.written)(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// As `write_layer`, and the same bytes also into `also` (the layer
/// cache's store), from the one pass: a second file is cheaper than
/// copying and checking the blob afterwards. `written` is told how many
/// tar bytes each write took, for progress.
pub(crate) fn write_layer_to(
    tree: &FsTree,
    encoding: Encoding,
    store: &BlobStore,
    also: Option<&BlobStore>,
    pool: Option<&BlockPool>,
    written: &dyn Fn(u64),
) -> Result<LayerBlob, LayerError> {
    let mut out = store.begin()?;
    if let Some(also) = also {
        out = out.mirror_into(also)?;
    }
    let mut sink = LayerSink::new(encoding, out, pool).map_err(LayerError::Compress)?;
    tar::write_tree(
        tree,
        &mut Counted {
            inner: &mut sink,
            written,
        },
    )?;
    let (out, diff_id) = sink.finish().map_err(LayerError::Compress)?;
    let (digest, size) = out.finish()?;
    Ok(LayerBlob {
        media_type: encoding.compression.media_type(),
        digest,
        size,
        diff_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const OLD_GZIP: Encoding = Encoding {
        profile: Profile::V2026_1,
        compression: Compression::Gzip,
    };

    fn encoding(profile: Profile, compression: Compression) -> Encoding {
        Encoding {
            profile,
            compression,
        }
    }

    /// Text-like bytes: compressible, and different in every block.
    fn sample(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let word =
                ["layer", "block", "zstd", "gzip", "the", "of", "tar"][(x >> 33) as usize % 7];
            out.extend_from_slice(word.as_bytes());
            out.push(if (x >> 20) % 8 == 0 { b'\n' } else { b' ' });
        }
        out.truncate(len);
        out
    }

    fn encode(
        enc: Encoding,
        data: &[u8],
        step: usize,
        pool: Option<&BlockPool>,
    ) -> (Vec<u8>, Digest) {
        let mut sink = LayerSink::new(enc, Vec::new(), pool).unwrap();
        for part in data.chunks(step.max(1)) {
            sink.write_all(part).unwrap();
        }
        sink.finish().unwrap()
    }

    fn decode(compression: Compression, blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match compression {
            Compression::Gzip => {
                flate2::read::GzDecoder::new(blob)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Compression::Zstd => out = zstd::stream::decode_all(blob).unwrap(),
            Compression::None => out = blob.to_vec(),
        }
        out
    }

    #[test]
    fn chunked_writer_is_independent_of_write_sizes() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, da) = encode(OLD_GZIP, &data, 1, None);
        let (b, db) = encode(OLD_GZIP, &data, 4099, None);
        let (c, dc) = encode(OLD_GZIP, &data, CHUNK_SIZE * 3, None);
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(da, db);
        assert_eq!(db, dc);
        assert_eq!(da, Digest::of(&data));
    }

    #[test]
    fn blocks_are_the_same_for_any_thread_count_and_write_size() {
        // Past two zstd blocks and a partial third; eight and a bit gzip ones.
        let data = sample(2 * profile::ZSTD_BLOCK_SIZE + 300_001);
        let pools: Vec<BlockPool> = [1, 2, 8].into_iter().map(BlockPool::new).collect();
        for compression in [Compression::Gzip, Compression::Zstd] {
            let enc = encoding(Profile::V2026_2, compression);
            let (want, diff_id) = encode(enc, &data, 1 << 20, None);
            assert_eq!(diff_id, Digest::of(&data));
            assert_eq!(
                decode(compression, &want),
                data,
                "{compression:?} round trip"
            );
            for pool in &pools {
                for step in [4099, 65536, 3 << 20, data.len()] {
                    let (got, d) = encode(enc, &data, step, Some(pool));
                    assert_eq!(d, diff_id);
                    assert!(got == want, "{compression:?}: step {step} differs");
                }
            }
            let old = encode(encoding(Profile::V2026_1, compression), &data, 65536, None).0;
            assert_ne!(old, want, "the profiles are different encodings");
        }
    }

    #[test]
    fn block_boundaries_and_empty_input_decode() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let enc = encoding(Profile::V2026_2, compression);
            let block = match compression {
                Compression::Gzip => profile::GZIP_BLOCK_SIZE,
                _ => profile::ZSTD_BLOCK_SIZE,
            };
            for len in [0, 1, block - 1, block, block + 1, 2 * block] {
                let data = sample(len);
                let (blob, _) = encode(enc, &data, 8192, None);
                assert_eq!(decode(compression, &blob), data, "{compression:?} {len}");
            }
        }
        // The external tools a layer meets read multi-block streams too.
        let data = sample(profile::GZIP_BLOCK_SIZE * 2 + 5);
        let (blob, _) = encode(
            encoding(Profile::V2026_2, Compression::Gzip),
            &data,
            9000,
            None,
        );
        let mut child = std::process::Command::new("gzip")
            .args(["-d", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&blob).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success());
        assert!(out.stdout == data, "gzip -d reads the joined blocks");
    }

    #[test]
    fn layers_share_a_small_pool_without_waiting_forever() {
        // Four layers at once on a pool admitting two blocks: each layer
        // must make room from its own blocks or wait for the others'.
        let pool = BlockPool::new(1);
        let data = sample(5 * profile::GZIP_BLOCK_SIZE + 17);
        let enc = encoding(Profile::V2026_2, Compression::Gzip);
        let want = encode(enc, &data, 1 << 16, None).0;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| encode(enc, &data, 1 << 16, Some(&pool)).0))
                .collect();
            for h in handles {
                assert!(h.join().unwrap() == want);
            }
        });
        // A layer that fails with blocks in flight gives their room back.
        struct Fails;
        impl Write for Fails {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = LayerSink::new(enc, Fails, Some(&pool));
        assert!(sink.is_err(), "the gzip header is written at once");
        let mut ok = LayerSink::new(enc, Vec::new(), Some(&pool)).unwrap();
        ok.write_all(&data[..3 * profile::GZIP_BLOCK_SIZE]).unwrap();
        drop(ok);
        sink = LayerSink::new(
            encoding(Profile::V2026_2, Compression::Zstd),
            Fails,
            Some(&pool),
        );
        let mut sink = sink.unwrap();
        let _ = sink.write_all(&sample(3 * profile::ZSTD_BLOCK_SIZE));
        drop(sink);
        assert!(encode(enc, &data, 1 << 16, Some(&pool)).0 == want);
    }
}
