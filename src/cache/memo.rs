//! The executable-digest memo: what stele names itself by in layer keys
//! (the sha256 of its executable's file), remembered in the cache folder
//! so a release binary is hashed once rather than on every command.
//!
//! `builders/<sha256 of the stamp>` holds the digest, one line; the stamp
//! is the file's device, inode, size, mtime and ctime (the stamps base
//! layers use, SECURITY.md): any write to the file moves its ctime, so a
//! remembered digest never outlives the bytes it names. These files are
//! named by no record and point at no blob; `prune` leaves them alone.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::oci::Digest;

/// The memo folder in a cache folder's root.
pub(crate) const MEMO_DIR: &str = "builders";

/// The sha256 of the file `exe` (the running executable, as the CLI
/// found it), from the memo in the cache folder `cache` when it is there
/// and remembered there when not. `None` when `exe` cannot be read.
pub fn executable_digest(cache: &Path, exe: &Path) -> Option<Digest> {
    let m = std::fs::metadata(exe).ok()?;
    let stamp = format!(
        "{} {} {} {}.{:09} {}.{:09}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    );
    let name = Digest::of(stamp.as_bytes()).hex().to_string();
    if let Ok((f, _)) = crate::store::open_untrusted(cache, &format!("{MEMO_DIR}/{name}")) {
        let mut text = String::new();
        if f.take(100).read_to_string(&mut text).is_ok() {
            if let Ok(digest) = text.trim().parse::<Digest>() {
                return Some(digest);
            }
        }
    }
    let (digest, _) = crate::oci::digest::hash_reader(std::fs::File::open(exe).ok()?).ok()?;
    // Remembering is only a saving: a cache that cannot take it costs the
    // next command one more hash.
    let folder = cache.join(MEMO_DIR);
    let _ = std::fs::create_dir_all(&folder).and_then(|()| {
        let mut temp = crate::store::temp_file_in(&folder, ".builder")?;
        std::io::Write::write_all(&mut temp, format!("{digest}\n").as_bytes())?;
        temp.persist(folder.join(&name)).map_err(|e| e.error)?;
        Ok(())
    });
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest is the file's sha256, remembered in the cache folder; a
    /// memo that is not a digest is hashed over again.
    #[test]
    fn a_file_is_named_by_its_sha256_remembered_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("stele");
        std::fs::write(&exe, b"an executable").unwrap();
        let expected = Digest::of(b"an executable");
        let cache = dir.path().join("cache");
        assert_eq!(executable_digest(&cache, &exe).unwrap(), expected);
        let memos: Vec<_> = std::fs::read_dir(cache.join(MEMO_DIR))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(memos.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&memos[0]).unwrap(),
            format!("{expected}\n")
        );
        assert_eq!(executable_digest(&cache, &exe).unwrap(), expected);
        std::fs::write(&memos[0], "not a digest\n").unwrap();
        assert_eq!(executable_digest(&cache, &exe).unwrap(), expected);

        // Rewritten in place: its ctime moves, so the old memo is not
        // the answer.
        std::fs::write(&exe, b"another executable").unwrap();
        assert_eq!(
            executable_digest(&cache, &exe).unwrap(),
            Digest::of(b"another executable")
        );
        assert!(executable_digest(&cache, &dir.path().join("missing")).is_none());
    }
}
