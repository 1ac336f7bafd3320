//! A command's outputs are prepared first and published last: small files
//! (the digest file, the lockfile, a push report) are written to temp files
//! beside their destinations while the command works, so a folder that is
//! missing or unwritable fails the command before anything observable
//! changed, and they are renamed into place only after everything else
//! succeeded.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

#[derive(Default)]
pub(crate) struct Pending {
    files: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl Pending {
    /// Stages `bytes` for `path`; nothing is visible at `path` until
    /// `publish`.
    pub fn file(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!(
                "cannot write {}: folder {} does not exist; create it or choose another path",
                path.display(),
                dir.display()
            );
        }
        // 0666 before the umask, as any file a user's tool creates, never
        // the 0600 of a temp file.
        let mut tmp = crate::store::temp_file_in(dir, ".stele-tmp-")
            .with_context(|| {
                format!(
                    "cannot write {}: folder {} is not writable; fix its permissions or choose another path",
                    path.display(),
                    dir.display()
                )
            })?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.files.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file into place, in the order staged.
    pub fn publish(self) -> Result<()> {
        for (tmp, path) in self.files {
            tmp.persist(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Writes one small file through a temp file and rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut pending = Pending::default();
    pending.file(path, bytes)?;
    pending.publish()
}
