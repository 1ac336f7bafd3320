//! Uncompressing a layer of independent blocks (profile `stele-2026.2`,
//! `layer::blocks`) on several threads, for a check of its DiffID.
//!
//! zstd: the layer is frames back to back. Each frame's extent is found
//! by walking its header and block headers (RFC 8878 §3.1.1: frame
//! header, 3-byte block headers with type, size and last flag, optional
//! checksum), without uncompressing; frames are uncompressed by helper
//! threads and handed on in order.
//!
//! gzip: one member whose blocks are raw deflate from an empty window,
//! each ended by a sync flush (`00 00 ff ff`). Segments are cut after a
//! `00 00 ff ff` at least `GZIP_SEGMENT` bytes on, and each is inflated
//! from an empty window. A cut is believed only if the segment, followed
//! by an empty final block (`03 00`), ends the deflate stream exactly
//! (so it ended on a block boundary), the last segment ends the member,
//! and the member's CRC-32 and length match its trailer. That a segment
//! starts where the one before ended does not prove it refers to nothing
//! before it: a back-reference across a cut in a layer stele did not
//! write fails to inflate ("too far back") or inflates to other bytes.
//!
//! Any doubt is an error of this reader, never an answer: the caller
//! (`unpack::read_checked_on`) then reads the layer again with the
//! sequential decoder, which alone decides what a layer that is not
//! plainly made of independent blocks gives (a DiffID, or the error).
//! Likewise a DiffID found here that differs from the config's is read
//! again sequentially before the layer is called bad.
//!
//! Threads: the calling thread reads and hashes, and uncompresses too
//! while it waits; helpers are taken from the check's `Threads` budget
//! only while fewer than `--jobs` threads are busy. At most `IN_FLIGHT`
//! segments per thread are read ahead, and a segment's output is capped
//! (`OUTPUT_CAP`): memory stays a few blocks per thread.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use flate2::{Crc, Decompress, FlushDecompress, Status};

use super::unpack::Codec;
use crate::oci::LayerBlob;

/// Smallest layer worth splitting.
const SPLIT_FROM: u64 = 2 << 20;
/// A gzip segment is cut at the first sync flush this many bytes on.
const GZIP_SEGMENT: usize = 1 << 20;
/// Compressed bytes searched for a cut (or in one zstd frame) before the
/// layer is taken as not made of independent blocks.
const SEGMENT_CAP: usize = 32 << 20;
/// The most one segment may uncompress to.
const OUTPUT_CAP: usize = 64 << 20;
/// Segments read ahead per thread.
const IN_FLIGHT: usize = 2;
/// zstd's largest block output (RFC 8878 §3.1.1.2.4).
const ZSTD_BLOCK_MAX: usize = 128 << 10;

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const SYNC_FLUSH: [u8; 4] = [0, 0, 0xff, 0xff];
const DEFLATE_END: [u8; 2] = [0x03, 0x00];

/// The threads one check may keep busy uncompressing, shared by the
/// layers it reads at once.
#[derive(Debug)]
pub(crate) struct Threads {
    limit: usize,
    busy: AtomicUsize,
    /// Layers read here on more than one thread, to the end.
    split: AtomicUsize,
    /// The most threads one layer used.
    widest: AtomicUsize,
}

impl Threads {
    pub(crate) fn new(jobs: usize) -> Threads {
        Threads {
            limit: jobs.max(1),
            busy: AtomicUsize::new(0),
            split: AtomicUsize::new(0),
            widest: AtomicUsize::new(0),
        }
    }

    /// How many layers were uncompressed on more than one thread.
    pub(crate) fn split_layers(&self) -> usize {
        self.split.load(Ordering::Relaxed)
    }

    /// The most threads one layer was uncompressed on.
    pub(crate) fn widest(&self) -> usize {
        self.widest.load(Ordering::Relaxed)
    }

    /// Counts a layer uncompressed on `used` threads, its answer taken.
    pub(crate) fn note(&self, used: usize) {
        if used > 1 {
            self.split.fetch_add(1, Ordering::Relaxed);
        }
        self.widest.fetch_max(used, Ordering::Relaxed);
    }

    /// Counts the calling thread busy until the guard drops.
    pub(crate) fn enter(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self)
    }

    /// Takes one more thread if fewer than the limit are busy.
    fn take(&self) -> bool {
        self.busy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                (b < self.limit).then_some(b + 1)
            })
            .is_ok()
    }

    fn give(&self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A thread counted busy in `Threads`.
pub(crate) struct Busy<'t>(&'t Threads);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.give();
    }
}

/// Whether `layer` is worth reading as independent blocks on `threads`.
pub(crate) fn splittable(layer: &LayerBlob, threads: &Threads) -> Option<Codec> {
    let codec = Codec::of(layer)?;
    (matches!(codec, Codec::Gzip | Codec::Zstd) && threads.limit > 1 && layer.size >= SPLIT_FROM)
        .then_some(codec)
}

fn doubt(why: &str) -> io::Error {
    io::Error::other(format!("not a layer of independent blocks: {why}"))
}

/// One segment to uncompress.
struct Job {
    codec: Codec,
    data: Vec<u8>,
    /// gzip: the member's last segment (ends the deflate stream itself).
    last: bool,
    cap: usize,
    reply: mpsc::Sender<io::Result<Piece>>,
}

/// A segment uncompressed.
struct Piece {
    out: Vec<u8>,
    crc: Crc,
    /// gzip's last segment: what follows the deflate stream.
    rest: Vec<u8>,
}

#[derive(Default)]
struct Queue {
    jobs: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Job>, bool)> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn try_pop(&self) -> Option<Job> {
        self.lock().0.pop_front()
    }

    fn helper(&self) {
        loop {
            let job = {
                let mut q = self.lock();
                loop {
                    if let Some(job) = q.0.pop_front() {
                        break job;
                    }
                    if q.1 {
                        return;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            job.run();
        }
    }
}

impl Job {
    fn run(self) {
        let piece = match self.codec {
            Codec::Zstd => inflate_zstd(&self.data, self.cap),
            _ => inflate_gzip(self.data, self.last, self.cap),
        };
        // The reader may have given up; then nobody waits for it.
        let _ = self.reply.send(piece);
    }
}

fn inflate_zstd(frame: &[u8], cap: usize) -> io::Result<Piece> {
    let out = zstd::bulk::decompress(frame, cap)?;
    Ok(Piece {
        out,
        crc: Crc::new(),
        rest: Vec::new(),
    })
}

/// Raw deflate from an empty window. A segment that is not the last must
/// end on a block boundary: followed by an empty final block, it ends the
/// stream exactly.
fn inflate_gzip(mut data: Vec<u8>, last: bool, cap: usize) -> io::Result<Piece> {
    if !last {
        data.extend_from_slice(&DEFLATE_END);
    }
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity((data.len() * 4).min(cap));
    loop {
        let used = d.total_in() as usize;
        let status = d
            .decompress_vec(&data[used..], &mut out, FlushDecompress::None)
            .map_err(|e| doubt(&e.to_string()))?;
        if status == Status::StreamEnd {
            break;
        }
        if out.len() < out.capacity() {
            // Input exhausted (or no progress) before the stream's end.
            if d.total_in() as usize == data.len() || status == Status::BufError {
                return Err(doubt("a segment does not end the stream"));
            }
            continue;
        }
        if out.len() >= cap {
            return Err(doubt("a segment uncompresses past the cap"));
        }
        out.reserve(out.len().max(64 << 10).min(cap - out.len()));
    }
    let used = d.total_in() as usize;
    if !last && used != data.len() {
        return Err(doubt("a segment goes on past its end"));
    }
    let rest = if last {
        data.split_off(used)
    } else {
        Vec::new()
    };
    let mut crc = Crc::new();
    crc.update(&out);
    Ok(Piece { out, crc, rest })
}

/// The uncompressed stream of a layer of independent blocks, read from
/// `raw` (its compressed bytes) on up to the `Threads` budget.
pub(crate) struct BlockDecoder<'t, R: BufRead> {
    raw: R,
    codec: Codec,
    threads: &'t Threads,
    /// Set at the end: how many threads uncompressed the layer.
    used: &'t AtomicUsize,
    queue: Arc<Queue>,
    helpers: Vec<JoinHandle<()>>,
    in_flight: VecDeque<mpsc::Receiver<io::Result<Piece>>>,
    /// Everything is dispatched.
    ended: bool,
    started: bool,
    /// gzip: compressed bytes read but not yet in a segment.
    pending: Vec<u8>,
    current: Vec<u8>,
    pos: usize,
    crc: Crc,
    trailer: Option<Vec<u8>>,
    finished: bool,
}

impl<'t, R: BufRead> BlockDecoder<'t, R> {
    pub(crate) fn new(raw: R, codec: Codec, threads: &'t Threads, used: &'t AtomicUsize) -> Self {
        BlockDecoder {
            raw,
            codec,
            threads,
            used,
            queue: Arc::new(Queue::default()),
            helpers: Vec::new(),
            in_flight: VecDeque::new(),
            ended: false,
            started: false,
            pending: Vec::new(),
            current: Vec::new(),
            pos: 0,
            crc: Crc::new(),
            trailer: None,
            finished: false,
        }
    }

    fn dispatch(&mut self, data: Vec<u8>, last: bool, cap: usize) {
        let (reply, rx) = mpsc::channel();
        self.queue.lock().0.push_back(Job {
            codec: self.codec,
            data,
            last,
            cap,
            reply,
        });
        self.queue.ready.notify_one();
        self.in_flight.push_back(rx);
        if self.helpers.len() + 1 < self.threads.limit && self.threads.take() {
            let queue = Arc::clone(&self.queue);
            self.helpers
                .push(std::thread::spawn(move || queue.helper()));
        }
    }

    fn window(&self) -> usize {
        IN_FLIGHT * (self.helpers.len() + 1)
    }

    /// Reads and dispatches the next segment, or marks the end.
    fn next_segment(&mut self) -> io::Result<()> {
        match self.codec {
            Codec::Zstd => self.next_frame(),
            _ => self.next_gzip(),
        }
    }

    fn next_frame(&mut self) -> io::Result<()> {
        loop {
            if self.raw.fill_buf()?.is_empty() {
                if !self.started {
                    return Err(doubt("no frame"));
                }
                self.ended = true;
                return Ok(());
            }
            self.started = true;
            let mut frame = Vec::new();
            let magic = u32::from_le_bytes(take_array(&mut self.raw, &mut frame)?);
            if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
                // A skippable frame: no output.
                let size = u32::from_le_bytes(take_array(&mut self.raw, &mut frame)?);
                let skipped = io::copy(&mut (&mut self.raw).take(size.into()), &mut io::sink())?;
                if skipped != u64::from(size) {
                    return Err(doubt("a skippable frame is cut short"));
                }
                continue;
            }
            if magic != ZSTD_MAGIC {
                return Err(doubt("not a zstd frame"));
            }
            let [descriptor] = take_array(&mut self.raw, &mut frame)?;
            let fcs_flag = descriptor >> 6;
            let single = descriptor & 0x20 != 0;
            let checksum = descriptor & 0x04 != 0;
            if descriptor & 0x08 != 0 || descriptor & 0x03 != 0 {
                return Err(doubt("a reserved bit or a dictionary"));
            }
            let fcs_len = match (fcs_flag, single) {
                (0, false) => 0,
                (0, true) => 1,
                (1, _) => 2,
                (2, _) => 4,
                _ => 8,
            };
            let header_rest = usize::from(!single) + fcs_len;
            take_into(&mut self.raw, &mut frame, header_rest)?;
            let mut bound = 0usize;
            loop {
                let h: [u8; 3] = take_array(&mut self.raw, &mut frame)?;
                let h = u32::from(h[0]) | u32::from(h[1]) << 8 | u32::from(h[2]) << 16;
                let last = h & 1 != 0;
                let size = (h >> 3) as usize;
                let (stored, out) = match (h >> 1) & 3 {
                    0 => (size, size),
                    1 => (1, size),
                    2 => (size, ZSTD_BLOCK_MAX),
                    _ => return Err(doubt("a reserved block type")),
                };
                bound += out;
                if frame.len() + stored > SEGMENT_CAP || bound > OUTPUT_CAP {
                    return Err(doubt("a frame too large to split"));
                }
                take_into(&mut self.raw, &mut frame, stored)?;
                if last {
                    break;
                }
            }
            if checksum {
                take_into(&mut self.raw, &mut frame, 4)?;
            }
            self.dispatch(frame, false, bound);
            return Ok(());
        }
    }

    fn next_gzip(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            let mut header = Vec::new();
            let h: [u8; 10] = take_array(&mut self.raw, &mut header)?;
            // No optional fields: what stele writes.
            if h[..4] != [0x1f, 0x8b, 8, 0] {
                return Err(doubt("a gzip header stele does not write"));
            }
        }
        let mut from = 0;
        let cut = loop {
            let search = GZIP_SEGMENT.max(from).saturating_sub(SYNC_FLUSH.len() - 1);
            if self.pending.len() > search {
                if let Some(i) = find(&self.pending[search..], &SYNC_FLUSH) {
                    break Some(search + i + SYNC_FLUSH.len());
                }
                from = self.pending.len();
            }
            if self.pending.len() > SEGMENT_CAP {
                return Err(doubt("no sync flush"));
            }
            let buf = self.raw.fill_buf()?;
            if buf.is_empty() {
                break None;
            }
            let n = buf.len();
            self.pending.extend_from_slice(buf);
            self.raw.consume(n);
        };
        match cut {
            Some(at) => {
                let rest = self.pending.split_off(at);
                let segment = std::mem::replace(&mut self.pending, rest);
                self.dispatch(segment, false, OUTPUT_CAP);
            }
            None => {
                let segment = std::mem::take(&mut self.pending);
                self.dispatch(segment, true, OUTPUT_CAP);
                self.ended = true;
            }
        }
        Ok(())
    }

    /// The oldest segment's piece, uncompressing queued segments here
    /// while it is not ready.
    fn wait(&self, rx: &mpsc::Receiver<io::Result<Piece>>) -> io::Result<Piece> {
        loop {
            match rx.try_recv() {
                Ok(piece) => return piece,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(doubt("a helper stopped"));
                }
                Err(mpsc::TryRecvError::Empty) => match self.queue.try_pop() {
                    Some(job) => job.run(),
                    None => {
                        return rx.recv().unwrap_or_else(|_| Err(doubt("a helper stopped")));
                    }
                },
            }
        }
    }

    /// After the last piece: the trailer (gzip) and the end of `raw`.
    fn finish(&mut self) -> io::Result<()> {
        if self.codec != Codec::Zstd {
            let trailer = self.trailer.take().unwrap_or_default();
            let expected = [
                self.crc.sum().to_le_bytes(),
                self.crc.amount().to_le_bytes(),
            ]
            .concat();
            if trailer != expected {
                return Err(doubt("the gzip trailer does not match"));
            }
        }
        if !self.raw.fill_buf()?.is_empty() {
            return Err(doubt("bytes after the stream"));
        }
        self.finished = true;
        self.used.store(self.helpers.len() + 1, Ordering::Relaxed);
        Ok(())
    }
}

impl<R: BufRead> Read for BlockDecoder<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.finished {
                return Ok(0);
            }
            while !self.ended && self.in_flight.len() < self.window() {
                self.next_segment()?;
            }
            let Some(rx) = self.in_flight.pop_front() else {
                self.finish()?;
                continue;
            };
            let piece = self.wait(&rx)?;
            if self.codec != Codec::Zstd {
                self.crc.combine(&piece.crc);
                if self.ended && self.in_flight.is_empty() {
                    self.trailer = Some(piece.rest);
                }
            }
            self.current = piece.out;
            self.pos = 0;
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<R: BufRead> Drop for BlockDecoder<'_, R> {
    fn drop(&mut self) {
        {
            let mut q = self.queue.lock();
            // Nobody will read what is still queued.
            q.0.clear();
            q.1 = true;
        }
        self.queue.ready.notify_all();
        for h in self.helpers.drain(..) {
            let _ = h.join();
            self.threads.give();
        }
    }
}

fn take_into(raw: &mut impl BufRead, into: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let start = into.len();
    into.resize(start + n, 0);
    raw.read_exact(&mut into[start..])
        .map_err(|_| doubt("cut short"))
}

fn take_array<const N: usize>(raw: &mut impl BufRead, into: &mut Vec<u8>) -> io::Result<[u8; N]> {
    take_into(raw, into, N)?;
    let mut a = [0; N];
    a.copy_from_slice(&into[into.len() - N..]);
    Ok(a)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[path = "unpack_blocks_tests.rs"]
mod tests;
