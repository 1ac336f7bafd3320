//! Block compression (profile `stele-2026.2`): the tar stream is cut into
//! fixed-size blocks, each compressed on its own with nothing carried over
//! from the block before, and the results joined in order. A block's bytes
//! are a function of the block alone, so which thread compressed it, how
//! many threads there were, and in what slices the tar arrived cannot
//! change the layer.
//!
//! gzip: one member. Its header, then each block as raw deflate ended by a
//! sync flush (an empty stored block, so the next block starts on a byte
//! boundary and refers to nothing before it), then an empty final block and
//! the trailer (the CRC-32 of the whole input, combined from the blocks',
//! and its length). Any gzip reader sees one ordinary stream.
//!
//! zstd: one frame per block, concatenated, as RFC 8878 allows; each frame
//! records its content size and no checksum.
//!
//! A build shares one `BlockPool` between all the layers it writes at once,
//! so threads never outnumber `--jobs`, and the pool admits at most two
//! blocks per thread at a time across all layers, so memory stays bounded
//! whatever the layer sizes.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use flate2::{Crc, FlushCompress};

use super::profile::{self, Compression};

/// The two block codecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Gzip,
    Zstd,
}

impl Codec {
    pub fn of(c: Compression) -> Option<Codec> {
        match c {
            Compression::Gzip => Some(Codec::Gzip),
            Compression::Zstd => Some(Codec::Zstd),
            Compression::None => None,
        }
    }

    fn block_size(self) -> usize {
        match self {
            Codec::Gzip => profile::GZIP_BLOCK_SIZE,
            Codec::Zstd => profile::ZSTD_BLOCK_SIZE,
        }
    }
}

/// gzip member header: deflate, no flags, mtime 0, no extra flags, OS 255
/// (unknown), as the 2026.1 profile writes it.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// A final fixed-Huffman block holding only its end code.
const DEFLATE_END: [u8; 2] = [0x03, 0x00];

/// One compressed block, with the CRC-32 of its input for gzip.
struct Done {
    bytes: Vec<u8>,
    crc: Crc,
    /// The input buffer, handed back for the next block (already given
    /// back, and empty, when a pool thread compressed it).
    input: Vec<u8>,
}

/// One thread's compressors, kept between blocks (a reset context emits the
/// same bytes as a fresh one).
struct Coders {
    deflate: Option<flate2::Compress>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl Coders {
    fn new() -> Coders {
        Coders {
            deflate: None,
            zstd: None,
        }
    }

    /// Compresses `input` into `out` (an empty buffer, reused).
    fn compress(&mut self, codec: Codec, input: Vec<u8>, out: Vec<u8>) -> io::Result<Done> {
        let mut crc = Crc::new();
        let bytes = match codec {
            Codec::Gzip => {
                crc.update(&input);
                let d = self.deflate.get_or_insert_with(|| {
                    flate2::Compress::new(flate2::Compression::new(profile::GZIP_LEVEL), false)
                });
                d.reset();
                deflate_block(d, &input, out)?
            }
            Codec::Zstd => {
                let z = match &mut self.zstd {
                    Some(z) => z,
                    None => {
                        let mut z = zstd::bulk::Compressor::new(profile::ZSTD_LEVEL)?;
                        z.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(false))?;
                        z.set_parameter(zstd::stream::raw::CParameter::ContentSizeFlag(true))?;
                        self.zstd.insert(z)
                    }
                };
                let mut out = out;
                out.reserve(zstd::zstd_safe::compress_bound(input.len()));
                z.compress_to_buffer(&input[..], &mut out)?;
                out
            }
        };
        Ok(Done { bytes, crc, input })
    }
}

/// `input` as raw deflate ending in a sync flush, so it stops on a byte
/// boundary with the stream still open.
fn deflate_block(d: &mut flate2::Compress, input: &[u8], mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    out.reserve(input.len() + input.len() / 8 + 64);
    let start = d.total_in();
    loop {
        let done = (d.total_in() - start) as usize;
        d.compress_vec(&input[done..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // The flush is complete when all input is taken and the output
        // was not filled to the brim.
        if (d.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

type Reply = mpsc::Receiver<io::Result<Done>>;

struct Job {
    codec: Codec,
    input: Vec<u8>,
    reply: mpsc::Sender<io::Result<Done>>,
}

struct State {
    queue: VecDeque<Job>,
    /// Blocks submitted and not yet written out by their layer.
    admitted: usize,
    closing: bool,
}

/// Block buffers given back after use, so later blocks (of any layer)
/// reuse memory already touched: a fresh 4 MiB buffer costs a page fault
/// per page written. At most `keep` are kept.
struct Buffers {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl Buffers {
    fn new(keep: usize) -> Buffers {
        Buffers {
            free: Mutex::new(Vec::new()),
            keep,
        }
    }

    fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() == 0 {
            return;
        }
        buffer.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.keep {
            free.push(buffer);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    room: Condvar,
    capacity: usize,
    /// Input and output buffers, as many as can be in flight.
    buffers: Buffers,
}

/// Compression threads shared by every layer a build writes at once.
pub struct BlockPool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl BlockPool {
    /// A pool of `jobs` threads admitting `2 × jobs` blocks at a time.
    pub fn new(jobs: usize) -> BlockPool {
        let jobs = jobs.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                admitted: 0,
                closing: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            capacity: 2 * jobs,
            buffers: Buffers::new(4 * jobs),
        });
        let threads = (0..jobs)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || worker(&shared))
            })
            .collect();
        BlockPool { shared, threads }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a block if there is room.
    fn try_admit(&self) -> bool {
        let mut s = self.lock();
        if s.admitted < self.shared.capacity {
            s.admitted += 1;
            true
        } else {
            false
        }
    }

    /// Waits until a block can be admitted, and admits it. Only for a
    /// caller with no block of its own in the pool: the blocks holding the
    /// room belong to others, who will write them out.
    fn admit(&self) {
        let mut s = self.lock();
        while s.admitted >= self.shared.capacity {
            s = self.shared.room.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.admitted += 1;
    }

    fn release(&self) {
        self.lock().admitted -= 1;
        self.shared.room.notify_one();
    }

    fn submit(&self, codec: Codec, input: Vec<u8>) -> Reply {
        let (reply, rx) = mpsc::channel();
        self.lock().queue.push_back(Job {
            codec,
            input,
            reply,
        });
        self.shared.work.notify_one();
        rx
    }
}

impl Drop for BlockPool {
    fn drop(&mut self) {
        self.lock().closing = true;
        self.shared.work.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker(shared: &Shared) {
    let mut coders = Coders::new();
    loop {
        let job = {
            let mut s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = s.queue.pop_front() {
                    break job;
                }
                if s.closing {
                    return;
                }
                s = shared.work.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        };
        // The layer may have given up (an error elsewhere); then nobody
        // waits for this block.
        let out = shared.buffers.take();
        let done = coders.compress(job.codec, job.input, out).map(|mut done| {
            // The input is free as soon as it is compressed, not once the
            // block is written out in order: the next block taken reuses
            // memory already touched instead of another fresh buffer.
            shared.buffers.give(std::mem::take(&mut done.input));
            done
        });
        let _ = job.reply.send(done);
    }
}

/// A layer's blocks in the pool, oldest first. Dropped with blocks still
/// in it (the layer failed), it waits for them and gives their room back,
/// or the other layers would wait for that room forever.
struct InFlight<'p> {
    pool: Option<&'p BlockPool>,
    replies: VecDeque<Reply>,
}

impl InFlight<'_> {
    /// The oldest block's result, its room given back; `None` when there
    /// is none in flight.
    fn pop(&mut self) -> Option<io::Result<Done>> {
        let rx = self.replies.pop_front()?;
        let done = rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("a compression thread stopped")));
        if let Some(pool) = self.pool {
            pool.release();
        }
        Some(done)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

/// Compresses what is written into blocks and writes the joined result to
/// `out`, in order, on the calling thread (where `out` hashes it).
pub(crate) struct BlockWriter<'p, W: Write> {
    codec: Codec,
    block_size: usize,
    /// Compressors for blocks compressed here, without a pool.
    coders: Coders,
    out: W,
    buf: Vec<u8>,
    /// Whether any block was compressed yet.
    started: bool,
    in_flight: InFlight<'p>,
    /// Buffers when there is no pool.
    local: Buffers,
    crc: Crc,
}

impl<'p, W: Write> BlockWriter<'p, W> {
    pub fn new(codec: Codec, pool: Option<&'p BlockPool>, mut out: W) -> io::Result<Self> {
        if codec == Codec::Gzip {
            out.write_all(&GZIP_HEADER)?;
        }
        let block_size = codec.block_size();
        let local = Buffers::new(2);
        let mut buf = pool.map_or_else(|| local.take(), |p| p.shared.buffers.take());
        buf.reserve(block_size);
        Ok(BlockWriter {
            codec,
            block_size,
            coders: Coders::new(),
            out,
            buf,
            started: false,
            in_flight: InFlight {
                pool,
                replies: VecDeque::new(),
            },
            local,
            crc: Crc::new(),
        })
    }

    fn buffers(&self) -> &Buffers {
        self.in_flight
            .pool
            .map_or(&self.local, |p| &p.shared.buffers)
    }

    /// Hands the full buffer on and starts a new one.
    fn send_block(&mut self) -> io::Result<()> {
        let mut fresh = self.buffers().take();
        fresh.reserve(self.block_size);
        let input = std::mem::replace(&mut self.buf, fresh);
        self.started = true;
        let Some(pool) = self.in_flight.pool else {
            let out = self.local.take();
            let done = self.coders.compress(self.codec, input, out);
            return self.write_done(done);
        };
        // Room for the block: taken when free, else made by writing out
        // this layer's oldest block, else (none in flight) waited for.
        loop {
            if pool.try_admit() {
                break;
            }
            match self.in_flight.pop() {
                Some(done) => self.write_done(done)?,
                None => {
                    pool.admit();
                    break;
                }
            }
        }
        self.in_flight
            .replies
            .push_back(pool.submit(self.codec, input));
        Ok(())
    }

    fn write_done(&mut self, done: io::Result<Done>) -> io::Result<()> {
        let done = done?;
        self.out.write_all(&done.bytes)?;
        self.crc.combine(&done.crc);
        self.buffers().give(done.input);
        self.buffers().give(done.bytes);
        Ok(())
    }

    /// Compresses the last (possibly short or empty) block, writes every
    /// block and the end of the stream, and returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty input still makes one (empty) block for zstd: a stream
        // with no frame at all is not zstd.
        if !self.buf.is_empty() || (self.codec == Codec::Zstd && !self.started) {
            self.send_block()?;
        }
        while let Some(done) = self.in_flight.pop() {
            self.write_done(done)?;
        }
        let last = std::mem::take(&mut self.buf);
        self.buffers().give(last);
        if self.codec == Codec::Gzip {
            self.out.write_all(&DEFLATE_END)?;
            self.out.write_all(&self.crc.sum().to_le_bytes())?;
            self.out.write_all(&self.crc.amount().to_le_bytes())?;
        }
        Ok(self.out)
    }
}

impl<W: Write> Write for BlockWriter<'_, W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            if self.buf.len() == self.block_size {
                self.send_block()?;
            }
            let take = (self.block_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
