//! Limits on a tar stream from an untrusted source, enforced below the
//! `tar` crate: it reads a PAX record or a GNU long name whole into memory,
//! whatever size its header claims, and reads as many entries as there
//! are. `TarGuard` follows the stream's structure as the `tar` crate does
//! (headers, PAX `size` overrides, GNU sparse extension blocks) and fails
//! the read, naming the limit, before such a record is read or when the
//! stream has more entries or bytes than its limits allow.

use std::io::{self, Read, Seek, SeekFrom};

/// The largest PAX record (`x`, `g`) or GNU long name or link (`L`, `K`)
/// accepted: real ones are a few hundred bytes.
pub(crate) const EXTENSION_LIMIT: u64 = 1 << 20;

/// How much a stream may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TarLimits {
    /// Headers, extension headers included.
    pub entries: u64,
    /// Bytes read through the guard (for a layer: decompressed bytes).
    pub bytes: u64,
    /// Names the stream in the limit errors (`layer`, `archive`).
    pub what: &'static str,
}

/// A layer's limits. Decompressed, a layer may hold at most 1032 times
/// its compressed size (gzip's own bound on a stream of zeros), and never
/// less than 1 GiB: a bomb cannot make a reader work longer than the
/// layer's size allows. Entries: more files than any real layer has.
pub(crate) fn layer_limits(compressed_size: u64) -> TarLimits {
    TarLimits {
        entries: 500_000,
        bytes: compressed_size.saturating_mul(1032).max(1 << 30),
        what: "layer",
    }
}

/// An image archive's limits: members (blobs, mostly) and no byte limit
/// beyond the archive file's own size, which bounds the read.
pub(crate) const ARCHIVE_LIMITS: TarLimits = TarLimits {
    entries: 100_000,
    bytes: u64::MAX,
    what: "archive",
};

const BLOCK: u64 = 512;

pub(crate) struct TarGuard<R> {
    inner: R,
    limits: TarLimits,
    /// Bytes of the stream passed so far.
    pos: u64,
    /// Where the next header block starts.
    next_header: u64,
    header: [u8; 512],
    filled: usize,
    entries: u64,
    /// A PAX record's data being collected, to learn its `size`:
    /// (where its data starts, its length, the bytes so far).
    pax: Option<(u64, u64, Vec<u8>)>,
    /// The `size` of the last PAX record, for the next file header.
    pax_size: Option<u64>,
    /// GNU sparse extension blocks follow; then data of this many bytes.
    sparse: Option<u64>,
    /// The stream's end (a zero block), or a header the `tar` crate
    /// itself will refuse: nothing more to follow.
    done: bool,
}

fn limit_error(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn round_up(n: u64) -> Option<u64> {
    n.checked_add(BLOCK - 1).map(|n| n & !(BLOCK - 1))
}

/// A tar numeric field as the `tar` crate reads it: octal text, or
/// base-256 with the high bit set.
fn numeric(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut n: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { *b };
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end]).ok()?;
    u64::from_str_radix(text.trim(), 8).ok()
}

/// The `size` key of PAX record data (`LEN key=value\n` records).
fn pax_size(mut data: &[u8]) -> Option<u64> {
    let mut size = None;
    while !data.is_empty() {
        let space = data.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
        if len <= space || len > data.len() {
            return size;
        }
        let record = &data[space + 1..len];
        if let Some(value) = record.strip_prefix(b"size=") {
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            size = std::str::from_utf8(value).ok()?.parse().ok();
        }
        data = &data[len..];
    }
    size
}

impl<R> TarGuard<R> {
    pub(crate) fn new(inner: R, limits: TarLimits) -> TarGuard<R> {
        TarGuard {
            inner,
            limits,
            pos: 0,
            next_header: 0,
            header: [0; 512],
            filled: 0,
            entries: 0,
            pax: None,
            pax_size: None,
            sparse: None,
            done: false,
        }
    }

    fn on_header(&mut self) -> io::Result<()> {
        let h = self.header;
        if let Some(data) = self.sparse {
            // A GNU sparse extension block: `isextended` at 504.
            self.next_header += BLOCK;
            if h[504] == 0 {
                self.sparse = None;
                self.advance(data);
            }
            return Ok(());
        }
        if h.iter().all(|b| *b == 0) {
            self.done = true;
            return Ok(());
        }
        self.entries += 1;
        if self.entries > self.limits.entries {
            return Err(limit_error(format!(
                "the {} has more than {} entries, the limit for one",
                self.limits.what, self.limits.entries
            )));
        }
        let Some(header_size) = numeric(&h[124..136]) else {
            self.done = true;
            return Ok(());
        };
        let pax = self
            .pax
            .take()
            .filter(|(_, len, buf)| buf.len() as u64 == *len)
            .and_then(|(_, _, buf)| pax_size(&buf));
        if pax.is_some() {
            self.pax_size = pax;
        }
        let typeflag = h[156];
        self.next_header += BLOCK;
        match typeflag {
            b'x' | b'g' | b'L' | b'K' => {
                if header_size > EXTENSION_LIMIT {
                    let kind = match typeflag {
                        b'x' | b'g' => "PAX record",
                        b'L' => "GNU long name",
                        _ => "GNU long link name",
                    };
                    return Err(limit_error(format!(
                        "a {kind} of {header_size} bytes is beyond the {EXTENSION_LIMIT}-byte limit for one ({} entry {})",
                        self.limits.what, self.entries
                    )));
                }
                if typeflag == b'x' {
                    self.pax = Some((self.next_header, header_size, Vec::new()));
                }
                self.advance(header_size);
            }
            _ => {
                let size = self.pax_size.take().unwrap_or(header_size);
                let gnu = &h[257..265] == b"ustar  \0";
                if typeflag == b'S' && gnu && h[482] != 0 {
                    self.sparse = Some(size);
                } else {
                    self.advance(size);
                }
            }
        }
        Ok(())
    }

    fn advance(&mut self, size: u64) {
        match round_up(size).and_then(|s| self.next_header.checked_add(s)) {
            Some(n) => self.next_header = n,
            None => self.done = true,
        }
    }

    /// Follows the structure through `data`, the bytes at `self.pos`.
    fn observe(&mut self, data: &[u8]) -> io::Result<()> {
        let mut i = 0usize;
        while i < data.len() && !self.done {
            let abs = self.pos + i as u64;
            if abs < self.next_header {
                let n = (self.next_header - abs).min((data.len() - i) as u64) as usize;
                if let Some((start, len, buf)) = &mut self.pax {
                    let end = *start + *len;
                    let from = abs.max(*start);
                    let to = (abs + n as u64).min(end);
                    if from < to {
                        let a = (from - abs) as usize + i;
                        buf.extend_from_slice(&data[a..a + (to - from) as usize]);
                    }
                }
                i += n;
                continue;
            }
            if abs != self.next_header + self.filled as u64 {
                // Not where a header is: the tar crate reads no further.
                self.done = true;
                break;
            }
            let n = (512 - self.filled).min(data.len() - i);
            self.header[self.filled..self.filled + n].copy_from_slice(&data[i..i + n]);
            self.filled += n;
            i += n;
            if self.filled == 512 {
                self.filled = 0;
                self.on_header()?;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.pos.saturating_add(n as u64) > self.limits.bytes {
            return Err(limit_error(format!(
                "the {} holds more than {} bytes, the limit for one",
                self.limits.what, self.limits.bytes
            )));
        }
        self.observe(&buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for TarGuard<R> {
    /// The `tar` crate seeks only over data it skips, never into a header.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = self.inner.seek(to)?;
        let collecting = self
            .pax
            .as_ref()
            .is_some_and(|(_, len, buf)| (buf.len() as u64) < *len);
        if pos > self.next_header || collecting {
            // Past a header unseen: stop following rather than misread.
            self.done = true;
        }
        self.pos = pos;
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TarLimits = TarLimits {
        entries: 10,
        bytes: 1 << 30,
        what: "layer",
    };

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn read_all(bytes: &[u8], limits: TarLimits) -> io::Result<Vec<String>> {
        let mut ar = tar::Archive::new(TarGuard::new(bytes, limits));
        let mut names = Vec::new();
        for e in ar.entries()? {
            let mut e = e?;
            names.push(e.path()?.display().to_string());
            io::copy(&mut e, &mut io::sink())?;
        }
        Ok(names)
    }

    #[test]
    fn ordinary_archives_with_pax_and_long_names_read_through() {
        let mut b = tar::Builder::new(Vec::new());
        let long = "d/".repeat(120) + "file";
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        b.append_pax_extensions([("path", b"pax/name".as_slice())])
            .unwrap();
        let mut h = header("short", tar::EntryType::Regular, 5);
        b.append(&h, &b"hello"[..]).unwrap();
        h = header("x", tar::EntryType::Directory, 0);
        b.append(&h, io::empty()).unwrap();
        let bytes = b.into_inner().unwrap();
        let names = read_all(&bytes, LIMITS).unwrap();
        assert_eq!(names, vec![long, "pax/name".into(), "x".into()]);
    }

    #[test]
    fn a_huge_pax_record_is_refused_before_it_is_read() {
        let mut bytes = header("pax", tar::EntryType::XHeader, 1 << 30)
            .as_bytes()
            .to_vec();
        // Only the header: a reader that tried to read the record whole
        // would fail on the short stream, not on the limit.
        bytes.extend_from_slice(&[b'1'; 4096]);
        let e = read_all(&bytes, LIMITS).unwrap_err().to_string();
        assert!(e.contains("PAX record of 1073741824 bytes"), "{e}");
        assert!(e.contains("1048576-byte limit"), "{e}");
        let mut bytes = header("L", tar::EntryType::GNULongName, 2 << 20)
            .as_bytes()
            .to_vec();
        bytes.extend_from_slice(&[0; 1024]);
        let e = read_all(&bytes, LIMITS).unwrap_err().to_string();
        assert!(e.contains("GNU long name"), "{e}");
    }

    #[test]
    fn entry_and_byte_limits_are_named() {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..11 {
            let h = header(&format!("f{i}"), tar::EntryType::Regular, 0);
            b.append(&h, io::empty()).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let e = read_all(&bytes, LIMITS).unwrap_err().to_string();
        assert!(e.contains("more than 10 entries"), "{e}");
        let small = TarLimits {
            bytes: 2048,
            ..LIMITS
        };
        let e = read_all(&bytes, small).unwrap_err().to_string();
        assert!(e.contains("more than 2048 bytes"), "{e}");
    }

    #[test]
    fn a_pax_size_override_is_followed() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("size", b"600".as_slice())])
            .unwrap();
        let mut raw = b.into_inner().unwrap();
        raw.truncate(raw.len() - 1024); // the end-of-archive blocks
                                        // The header's own size field says 0; the PAX record says 600,
                                        // and the first data block looks like a huge PAX header: a guard
                                        // that took the header's size would refuse it.
        raw.extend_from_slice(header("big", tar::EntryType::Regular, 0).as_bytes());
        raw.extend_from_slice(header("fake", tar::EntryType::XHeader, 1 << 30).as_bytes());
        raw.extend_from_slice(&[b'x'; 512]);
        raw.extend_from_slice(&[0; 1024]);
        assert_eq!(read_all(&raw, LIMITS).unwrap(), vec!["big".to_string()]);
    }
}
