//! OCI image layouts (image-spec `image-layout.md`): `oci-layout`,
//! `index.json`, `blobs/sha256/…`. A layout is assembled in a temp folder
//! beside its destination and renamed into place, so a failed build leaves
//! whatever was there before.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;

use super::SinkError;
use crate::oci::layout::{layout_index, OCI_LAYOUT};
use crate::oci::Built;
use crate::store::{sweep_stale, temp_dir_in, BlobStore};

/// A layout being written. Blobs go into `store()`; `commit` adds the
/// top-level files and moves the folder to its destination.
pub(crate) struct LayoutStaging {
    dest: PathBuf,
    /// `None` once committed.
    temp: Option<tempfile::TempDir>,
    /// The outermost folder `beside` created for the destination's
    /// parent: removed again (when empty) if nothing is committed, so a
    /// refused build leaves no folder behind.
    created: Option<PathBuf>,
    /// Holds the temp folder's lock: while it is open, no other build's
    /// sweep removes the folder.
    _lock: std::fs::File,
    store: BlobStore,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |e| SinkError::Io {
        path: path.to_path_buf(),
        error: e,
    }
}

impl LayoutStaging {
    /// A staging folder beside `dest`: a layout's, or the store an
    /// archive is written from (then dropped). The caller checks first
    /// that `dest` may be replaced.
    pub fn beside(dest: &Path) -> Result<LayoutStaging, SinkError> {
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let created = parent
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && fs::symlink_metadata(a).is_err())
            .last()
            .map(Path::to_path_buf);
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        // What killed builds left beside their outputs: unlocked, so no
        // live build's (see `store::temp_file_in`).
        sweep_stale(&parent, ".stele-tmp-");
        // Made 0777 less the umask: a layout is read by other users'
        // tools, so the umask decides, as for any folder a program makes.
        let (temp, lock) = temp_dir_in(&parent, ".stele-tmp-").map_err(io_err(&parent))?;
        let store = BlobStore::open(temp.path()).map_err(|e| SinkError::Io {
            path: temp.path().to_path_buf(),
            error: std::io::Error::other(e.to_string()),
        })?;
        Ok(LayoutStaging {
            dest: dest.to_path_buf(),
            temp: Some(temp),
            created,
            _lock: lock,
            store,
        })
    }

    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Writes `oci-layout` and `index.json` for `built` (whose blobs must
    /// all be in `store()`), then puts the layout at its destination.
    /// `referrers` (attestation manifests, also in the store) are listed
    /// after the image, as OCI 1.1 layouts let readers find them.
    pub fn commit(
        self,
        built: &Built,
        tag: &str,
        referrers: &[Descriptor],
    ) -> Result<(), SinkError> {
        let mut this = self;
        let temp = this.temp.take().expect("a staging folder until committed");
        write_top_files(temp.path(), built, tag, referrers)?;
        this.created = None;
        // `this` (and the lock) lives until the old layout, moved aside,
        // is removed.
        replace_dir(temp, &this.dest)
    }
}

impl Drop for LayoutStaging {
    /// Uncommitted: the staging folder goes, and so do the folders
    /// `beside` made for it, as far as they are empty.
    fn drop(&mut self) {
        drop(self.temp.take());
        if let Some(top) = self.created.take() {
            let parent = self.dest.parent().unwrap_or(Path::new("."));
            for dir in parent.ancestors() {
                if fs::remove_dir(dir).is_err() || dir == top {
                    break;
                }
            }
        }
    }
}

fn write_top_files(
    dir: &Path,
    built: &Built,
    tag: &str,
    referrers: &[Descriptor],
) -> Result<(), SinkError> {
    let p = dir.join("oci-layout");
    fs::write(&p, OCI_LAYOUT).map_err(io_err(&p))?;
    let p = dir.join("index.json");
    let index = layout_index(built.top_descriptor(), tag, &Default::default(), referrers);
    fs::write(&p, index).map_err(io_err(&p))?;
    Ok(())
}

/// A destination may be replaced when it does not exist, is an empty
/// folder, or is an OCI layout (has `oci-layout`): never a user's other data.
pub(crate) fn check_replaceable(dest: &Path) -> Result<(), SinkError> {
    match fs::symlink_metadata(dest) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            let empty = fs::read_dir(dest).map_err(io_err(dest))?.next().is_none();
            if empty || dest.join("oci-layout").is_file() {
                Ok(())
            } else {
                Err(SinkError::WouldClobber {
                    path: dest.to_path_buf(),
                })
            }
        }
        Ok(_) => Err(SinkError::WouldClobber {
            path: dest.to_path_buf(),
        }),
    }
}

/// Renames the finished temp folder over `dest`. An existing layout is first
/// moved aside, then removed, so a reader sees the old layout or the new one.
fn replace_dir(temp: tempfile::TempDir, dest: &Path) -> Result<(), SinkError> {
    check_replaceable(dest)?;
    let temp_path = temp.keep();
    if fs::symlink_metadata(dest).is_ok() {
        // One atomic exchange: a reader, or a kill at any point, sees the
        // old layout or the new one at `dest`, never neither.
        exchange(&temp_path, dest).map_err(io_err(dest))?;
        let _ = fs::remove_dir_all(&temp_path);
    } else {
        fs::rename(&temp_path, dest).map_err(io_err(dest))?;
    }
    Ok(())
}

/// Swaps two paths atomically (Linux `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::other("path contains a NUL byte"))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
