//! The canonical tar stream of an `FsTree`. Every header field is set here;
//! `tar`'s deterministic mode is not used because it picks its own mtime and
//! masks modes. Dialect: ustar headers, with a pax extended header before an
//! entry whose path or link target exceeds 100 bytes, whose ids exceed the
//! octal fields, or which carries xattrs.

use std::io::{self, Write};

use tar::{EntryType, Header};

use crate::fstree::{ContentError, ContentReader, FsTree, Node, NodeKind};

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error(transparent)]
    Content(#[from] ContentError),
    // Interpolated, not attached: the message already says it.
    #[error("writing the layer: {0}")]
    Write(io::Error),
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> TarError {
        TarError::Write(e)
    }
}

const MAX_OCTAL_7: u64 = 0o7777777;

/// Writes `tree` as a tar stream (with end-of-archive blocks) to `out`.
/// The tree must have had `complete_parents` called.
pub(crate) fn write_tree<W: Write>(tree: &FsTree, out: &mut W) -> Result<(), TarError> {
    let mut reader = ContentReader::default();
    for (key, node) in tree.iter() {
        write_entry(key, node, &mut reader, out)?;
    }
    out.write_all(&[0u8; 1024])?;
    Ok(())
}

fn entry_name(key: &str, node: &Node) -> String {
    match node.kind {
        NodeKind::Dir => format!("{key}/"),
        NodeKind::Whiteout => match key.rfind('/') {
            Some(i) => format!("{}/.wh.{}", &key[..i], &key[i + 1..]),
            None => format!(".wh.{key}"),
        },
        _ => key.to_string(),
    }
}

fn write_entry<W: Write>(
    key: &str,
    node: &Node,
    reader: &mut ContentReader,
    out: &mut W,
) -> Result<(), TarError> {
    let name = entry_name(key, node);
    let (entry_type, size, link) = match &node.kind {
        NodeKind::Dir => (EntryType::Directory, 0, None),
        NodeKind::File(c) => (EntryType::Regular, c.size(), None),
        NodeKind::Symlink(t) => (EntryType::Symlink, 0, Some(t.as_str())),
        NodeKind::Hardlink(t) => (EntryType::Link, 0, Some(t.as_str())),
        NodeKind::Whiteout => (EntryType::Regular, 0, None),
    };
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if name.len() > 100 {
        pax.push(("path".into(), name.clone().into_bytes()));
    }
    if let Some(l) = link {
        if l.len() > 100 {
            pax.push(("linkpath".into(), l.as_bytes().to_vec()));
        }
    }
    if u64::from(node.uid) > MAX_OCTAL_7 {
        pax.push(("uid".into(), node.uid.to_string().into_bytes()));
    }
    if u64::from(node.gid) > MAX_OCTAL_7 {
        pax.push(("gid".into(), node.gid.to_string().into_bytes()));
    }
    for (k, v) in &node.xattrs {
        pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
    }
    if !pax.is_empty() {
        write_pax(out, node.mtime, &pax)?;
    }

    let mut h = base_header(node.mtime);
    set_name_bytes(&mut h, truncate(name.as_bytes(), 100));
    if let Some(l) = link {
        h.as_old_mut().linkname[..].fill(0);
        let l = truncate(l.as_bytes(), 100);
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
    }
    h.set_entry_type(entry_type);
    h.set_mode(if node.kind == NodeKind::Whiteout {
        0
    } else {
        node.mode & 0o7777
    });
    h.set_uid(u64::from(node.uid).min(MAX_OCTAL_7));
    h.set_gid(u64::from(node.gid).min(MAX_OCTAL_7));
    h.set_size(size);
    h.set_cksum();
    out.write_all(h.as_bytes())?;
    if let NodeKind::File(content) = &node.kind {
        reader.copy(content, out)?;
        pad(out, size)?;
    }
    Ok(())
}

/// A ustar header with every field this writer does not vary set to a fixed
/// value: empty user and group names, zero device numbers, the given mtime.
pub(crate) fn base_header(mtime: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0);
    h.set_size(0);
    // Empty names make readers use the numeric ids: no host account database
    // can leak into or be consulted for the image.
    h.as_ustar_mut().expect("ustar header").uname.fill(0);
    h.as_ustar_mut().expect("ustar header").gname.fill(0);
    h.set_device_major(0).expect("ustar has device fields");
    h.set_device_minor(0).expect("ustar has device fields");
    h
}

pub(crate) fn set_name_bytes(h: &mut Header, name: &[u8]) {
    let old = h.as_old_mut();
    old.name.fill(0);
    old.name[..name.len()].copy_from_slice(name);
    h.as_ustar_mut().expect("ustar header").prefix.fill(0);
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// Writes a pax extended header (POSIX.1-2001 typeflag `x`) holding
/// `records` for the entry after it. The one pax writer of layers and of
/// the archive sinks: its header is a `base_header` like theirs, named
/// `././@PaxHeader` with mode 0644, so the bytes depend on nothing else.
pub(crate) fn write_pax<W: Write>(
    out: &mut W,
    mtime: u64,
    records: &[(String, Vec<u8>)],
) -> io::Result<()> {
    let body = pax_body(records);
    let mut h = base_header(mtime);
    set_name_bytes(&mut h, b"././@PaxHeader");
    h.set_entry_type(EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(body.len() as u64);
    h.set_cksum();
    out.write_all(h.as_bytes())?;
    out.write_all(&body)?;
    pad(out, body.len() as u64)
}

/// pax records are `"<len> <key>=<value>\n"` where `<len>` counts itself.
fn pax_body(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // space, '=', newline
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(len.to_string().as_bytes());
        body.push(b' ');
        body.extend_from_slice(k.as_bytes());
        body.push(b'=');
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    body
}

pub(crate) fn pad<W: Write>(out: &mut W, size: u64) -> io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fstree::Content;

    #[test]
    fn pax_length_counts_itself() {
        let body = pax_body(&[("path".into(), vec![b'a'; 95])]);
        let text = String::from_utf8(body.clone()).unwrap();
        let len: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(len, body.len());
    }

    #[test]
    fn stream_is_read_back_by_tar_crate() {
        let mut t = FsTree::new();
        let long = format!("d/{}", "x".repeat(150));
        t.insert(
            long.clone(),
            Node::file(Content::bytes("hi"), 0o4755, 70000000, 2, 5),
        )
        .unwrap();
        t.insert("d/l".into(), Node::symlink("/etc/passwd", 0, 0, 5))
            .unwrap();
        t.complete_parents(&Node::dir(0o755, 0, 0, 5)).unwrap();
        let mut buf = Vec::new();
        write_tree(&t, &mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header().clone();
            seen.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
                e.header().mtime().unwrap(),
            ));
        }
        assert_eq!(seen[0], ("d/".into(), 0o755, 5));
        assert_eq!(seen[1].0, "d/l");
        assert_eq!(seen[2], (long, 0o4755, 5));
    }
}
