//! Archives as the tests look at them: members with their headers, a
//! tree recipe built in all three formats, hand-made tars.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::tree::populate;
use super::{build, build_with, tempdir};

/// One archive member with every header field the tests check.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub owner_names: (Vec<u8>, Vec<u8>),
    pub data: Vec<u8>,
}

pub fn members(archive: &Path) -> Vec<Member> {
    let mut ar = tar::Archive::new(fs::File::open(archive).unwrap());
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Member {
            name: e.path().unwrap().to_str().unwrap().to_string(),
            kind: match h.entry_type() {
                tar::EntryType::Regular => '-',
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                _ => '?',
            },
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            owner_names: (
                h.username_bytes().unwrap_or_default().to_vec(),
                h.groupname_bytes().unwrap_or_default().to_vec(),
            ),
            data,
        });
    }
    out
}

pub fn by_name(members: &[Member]) -> BTreeMap<String, Vec<u8>> {
    members
        .iter()
        .map(|m| (m.name.clone(), m.data.clone()))
        .collect()
}

/// The tree recipe built as a layout and as both archives.
pub struct Three {
    /// Holds every path below; removed when dropped.
    _tmp: tempfile::TempDir,
    pub layout: PathBuf,
    pub oci: PathBuf,
    pub docker: PathBuf,
    pub digest: String,
}

pub fn build_three() -> Three {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    populate(&src, false);
    let recipe = src.join("recipe.toml");
    let layout = tmp.path().join("layout");
    let oci = tmp.path().join("image.oci.tar");
    let docker = tmp.path().join("image.docker.tar");
    let digest = build(&recipe, &layout);
    assert_eq!(
        build_with(&recipe, &oci, &["--format", "oci-archive"]),
        digest
    );
    assert_eq!(
        build_with(&recipe, &docker, &["--format", "docker-archive"]),
        digest
    );
    Three {
        _tmp: tmp,
        layout,
        oci,
        docker,
        digest,
    }
}

/// Writes a tar of `members` (name, type, data, link target) with names
/// put into the header as given: the tar crate's own setters refuse `..`.
pub fn raw_tar(path: &Path, members: &[(&str, tar::EntryType, &[u8], &str)]) {
    let mut out = Vec::new();
    for (name, kind, data, link) in members {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    fs::write(path, out).unwrap();
}
