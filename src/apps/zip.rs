//! A reader of ZIP archives as wheels use them (APPNOTE.TXT: the end of
//! central directory record, ZIP64, the central directory, local
//! headers; stored and deflated members). Only what a wheel may hold is
//! accepted: no encryption, no other compression, no multi-disk
//! archives. Sizes are bounded and every member's CRC-32 is checked as
//! it streams out.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

/// Members per archive; the largest wheels hold tens of thousands.
pub const MAX_MEMBERS: u64 = 1 << 20;
/// Bytes one member may inflate to.
pub const MAX_MEMBER_SIZE: u64 = 8 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("{0}")]
    Format(String),
    #[error("reading the archive")]
    Io(#[from] io::Error),
}

fn bad<T>(message: impl Into<String>) -> Result<T, ZipError> {
    Err(ZipError::Format(message.into()))
}

/// One member as the central directory lists it.
#[derive(Clone, Debug)]
pub struct Member {
    /// The name as stored (`/`-separated; a trailing `/` marks a folder).
    pub name: String,
    pub method: u16,
    pub crc32: u32,
    pub compressed: u64,
    pub size: u64,
    /// The Unix mode, when the archive was made on Unix.
    pub unix_mode: Option<u32>,
    local_header: u64,
}

impl Member {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn read_exact_at(file: &File, len: usize, offset: u64) -> Result<Vec<u8>, ZipError> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// An archive of `len` bytes in `file`, its central directory read.
pub struct Archive<'a> {
    file: &'a File,
    len: u64,
    pub members: Vec<Member>,
}

impl<'a> Archive<'a> {
    pub fn open(file: &'a File, len: u64) -> Result<Archive<'a>, ZipError> {
        const EOCD: usize = 22;
        if len < EOCD as u64 {
            return bad("too short to be a ZIP archive");
        }
        // The record sits at the end, after a comment of at most 64 KiB.
        let tail_len = len.min(EOCD as u64 + 0xffff) as usize;
        let tail = read_exact_at(file, tail_len, len - tail_len as u64)?;
        let at = (0..=tail_len - EOCD)
            .rev()
            .find(|&i| u32_at(&tail, i) == 0x0605_4b50)
            .ok_or_else(|| {
                ZipError::Format("no end of central directory record: not a ZIP archive".into())
            })?;
        let eocd_offset = len - (tail_len - at) as u64;
        let e = &tail[at..];
        if u16_at(e, 4) != 0 || u16_at(e, 6) != 0 {
            return bad("a multi-disk archive");
        }
        let mut count = u16_at(e, 10) as u64;
        let mut cd_size = u32_at(e, 12) as u64;
        let mut cd_offset = u32_at(e, 16) as u64;
        if count == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
            // ZIP64: the locator sits just before the record.
            if eocd_offset < 20 {
                return bad("a ZIP64 archive without its locator");
            }
            let loc = read_exact_at(file, 20, eocd_offset - 20)?;
            if u32_at(&loc, 0) != 0x0706_4b50 {
                return bad("a ZIP64 archive without its locator");
            }
            let z_offset = u64_at(&loc, 8);
            if z_offset
                .checked_add(56)
                .map_or(true, |end| end > eocd_offset)
            {
                return bad("the ZIP64 record lies outside the archive");
            }
            let z = read_exact_at(file, 56, z_offset)?;
            if u32_at(&z, 0) != 0x0606_4b50 {
                return bad("the ZIP64 end of central directory record is missing");
            }
            count = u64_at(&z, 32);
            cd_size = u64_at(&z, 40);
            cd_offset = u64_at(&z, 48);
        }
        if count > MAX_MEMBERS {
            return bad(format!(
                "{count} members, beyond the limit of {MAX_MEMBERS}"
            ));
        }
        if cd_offset.checked_add(cd_size).map_or(true, |end| end > len) || cd_size > (1 << 30) {
            return bad("the central directory lies outside the archive");
        }
        let cd = read_exact_at(file, cd_size as usize, cd_offset)?;
        let mut members = Vec::with_capacity(count as usize);
        let mut at = 0usize;
        for _ in 0..count {
            if at + 46 > cd.len() || u32_at(&cd, at) != 0x0201_4b50 {
                return bad("the central directory is damaged");
            }
            let h = &cd[at..];
            let made_by = u16_at(h, 4) >> 8;
            let flags = u16_at(h, 8);
            let method = u16_at(h, 10);
            let crc32 = u32_at(h, 16);
            let mut compressed = u32_at(h, 20) as u64;
            let mut size = u32_at(h, 24) as u64;
            let name_len = u16_at(h, 28) as usize;
            let extra_len = u16_at(h, 30) as usize;
            let comment_len = u16_at(h, 32) as usize;
            let external = u32_at(h, 38);
            let mut local_header = u32_at(h, 42) as u64;
            let end = at + 46 + name_len + extra_len + comment_len;
            if end > cd.len() {
                return bad("the central directory is damaged");
            }
            let name = std::str::from_utf8(&cd[at + 46..at + 46 + name_len])
                .map_err(|_| ZipError::Format("a member's name is not UTF-8".into()))?
                .to_string();
            if flags & 1 != 0 {
                return bad(format!("member {name} is encrypted"));
            }
            // ZIP64 extra field: the 32-bit fields that overflowed, in order.
            let mut extra = &cd[at + 46 + name_len..at + 46 + name_len + extra_len];
            while extra.len() >= 4 {
                let id = u16_at(extra, 0);
                let n = (u16_at(extra, 2) as usize).min(extra.len() - 4);
                if id == 0x0001 {
                    let mut f = &extra[4..4 + n];
                    let mut take = |v: &mut u64, wide: bool| {
                        if wide && f.len() >= 8 {
                            *v = u64_at(f, 0);
                            f = &f[8..];
                        }
                    };
                    let wide = (
                        size == 0xffff_ffff,
                        compressed == 0xffff_ffff,
                        local_header == 0xffff_ffff,
                    );
                    take(&mut size, wide.0);
                    take(&mut compressed, wide.1);
                    take(&mut local_header, wide.2);
                }
                extra = &extra[4 + n..];
            }
            if size > MAX_MEMBER_SIZE {
                return bad(format!(
                    "member {name} claims {size} bytes, beyond the limit of {MAX_MEMBER_SIZE}"
                ));
            }
            members.push(Member {
                name,
                method,
                crc32,
                compressed,
                size,
                unix_mode: (made_by == 3).then_some(external >> 16),
                local_header,
            });
            at = end;
        }
        Ok(Archive { file, len, members })
    }

    /// Streams `member`'s bytes into `out`, checking its size and CRC-32.
    pub fn extract(&self, member: &Member, out: &mut dyn Write) -> Result<(), ZipError> {
        let name = &member.name;
        if member
            .local_header
            .checked_add(30)
            .map_or(true, |e| e > self.len)
        {
            return bad(format!("member {name}'s header lies outside the archive"));
        }
        let h = read_exact_at(self.file, 30, member.local_header)?;
        if u32_at(&h, 0) != 0x0403_4b50 {
            return bad(format!("member {name}'s local header is missing"));
        }
        let data = member.local_header + 30 + u16_at(&h, 26) as u64 + u16_at(&h, 28) as u64;
        if data
            .checked_add(member.compressed)
            .map_or(true, |e| e > self.len)
        {
            return bad(format!("member {name}'s data lies outside the archive"));
        }
        let raw = Section {
            file: self.file,
            at: data,
            left: member.compressed,
        };
        let mut checked = Checked {
            out,
            crc: flate2::Crc::new(),
            written: 0,
            limit: member.size,
        };
        let copied = match member.method {
            0 => io::copy(&mut { raw }, &mut checked),
            8 => io::copy(&mut flate2::read::DeflateDecoder::new(raw), &mut checked),
            m => {
                return bad(format!(
                "member {name} uses compression method {m}; wheels use stored (0) or deflate (8)"
            ))
            }
        };
        match copied {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return bad(format!("member {name} does not inflate: {e}"))
            }
            Err(e) => return Err(e.into()),
        }
        if checked.written != member.size || checked.crc.sum() != member.crc32 {
            return bad(format!(
                "member {name} is damaged: {} bytes with CRC {:08x}, the directory says {} bytes with CRC {:08x}",
                checked.written,
                checked.crc.sum(),
                member.size,
                member.crc32
            ));
        }
        Ok(())
    }
}

/// `left` bytes of `file` from `at`.
struct Section<'a> {
    file: &'a File,
    at: u64,
    left: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Counts and CRCs what passes; refuses more than the member's size.
struct Checked<'a> {
    out: &'a mut dyn Write,
    crc: flate2::Crc,
    written: u64,
    limit: u64,
}

impl Write for Checked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "inflates to more than its stated size",
            ));
        }
        self.out.write_all(buf)?;
        self.crc.update(buf);
        self.written += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small ZIP archive of `members` (name, bytes, mode, deflated),
    /// written as Python's zipfile writes wheels.
    pub(crate) fn make(members: &[(&str, &[u8], u32, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, mode, deflate) in members {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let body = if *deflate {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.to_vec()
            };
            let offset = out.len() as u32;
            let method: u16 = if *deflate { 8 } else { 0 };
            out.extend(0x0403_4b50u32.to_le_bytes());
            out.extend(20u16.to_le_bytes());
            out.extend(0u16.to_le_bytes());
            out.extend(method.to_le_bytes());
            out.extend([0u8; 4]);
            out.extend(crc.sum().to_le_bytes());
            out.extend((body.len() as u32).to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(0u16.to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(&body);
            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend((3u16 << 8 | 20).to_le_bytes());
            central.extend(20u16.to_le_bytes());
            central.extend(0u16.to_le_bytes());
            central.extend(method.to_le_bytes());
            central.extend([0u8; 4]);
            central.extend(crc.sum().to_le_bytes());
            central.extend((body.len() as u32).to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            central.extend([0u8; 8]);
            central.extend((mode << 16).to_le_bytes());
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]);
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn file_of(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(bytes).unwrap();
        let f = File::open(t.path()).unwrap();
        (t, f)
    }

    #[test]
    fn reads_stored_and_deflated_members() {
        let zip = make(&[
            ("a/x.py", b"print(1)\n", 0o100644, true),
            ("a/bin", b"#!python\n", 0o100755, false),
        ]);
        let (_t, f) = file_of(&zip);
        let a = Archive::open(&f, zip.len() as u64).unwrap();
        assert_eq!(a.members.len(), 2);
        assert_eq!(a.members[1].unix_mode, Some(0o100755));
        let mut out = Vec::new();
        a.extract(&a.members[0], &mut out).unwrap();
        assert_eq!(out, b"print(1)\n");
    }

    #[test]
    fn damage_is_named() {
        let mut zip = make(&[("a.py", b"print(1)\n", 0o100644, false)]);
        let (_t, f) = file_of(&zip[..10]);
        assert!(Archive::open(&f, 10).is_err());
        // A flipped byte of data: the CRC no longer fits.
        zip[31 + 4] ^= 1;
        let (_t, f) = file_of(&zip);
        let a = Archive::open(&f, zip.len() as u64).unwrap();
        let e = a.extract(&a.members[0], &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
