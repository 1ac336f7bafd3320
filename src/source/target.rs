//! How a user names an existing image on the command line (`verify`,
//! `diff`, `push`, `pull`): skopeo's transport prefixes where given, else
//! what the path is.
//!
//! - `oci:PATH[@sha256:…]` or a folder with an `oci-layout` file
//! - `oci-archive:PATH[@sha256:…]`, `docker-archive:PATH`, or a file
//!   (tar), told apart by its content
//! - `docker://HOST/REPO[:TAG][@sha256:…]` or anything else with a `/`

use std::path::{Path, PathBuf};

use super::layout::Selector;
use crate::oci::Digest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Layout {
        path: PathBuf,
        selector: Selector,
    },
    /// A tar file: an oci-archive (a layout in a tar) or a docker-archive
    /// (`docker save` format); `kind` is `None` until the content says.
    Archive {
        path: PathBuf,
        kind: Option<ArchiveKind>,
        selector: Selector,
    },
    Registry {
        reference: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    Oci,
    Docker,
}

#[derive(Debug, thiserror::Error)]
#[error("`{input}` names no image: {reason}. Give a layout folder (oci:PATH), an archive (oci-archive:PATH, docker-archive:PATH) or a registry reference (HOST/REPO:TAG or HOST/REPO@sha256:…)")]
pub struct TargetError {
    pub input: String,
    pub reason: String,
}

/// Splits `PATH@sha256:…` into the path and a digest selector.
fn split_selector(s: &str) -> Result<(&str, Selector), String> {
    match s.rsplit_once('@') {
        Some((path, d)) if d.starts_with("sha256:") => {
            let digest: Digest = d
                .parse()
                .map_err(|e: crate::oci::digest::DigestParseError| e.to_string())?;
            Ok((path, Selector::Digest(digest)))
        }
        _ => Ok((s, Selector::Only)),
    }
}

impl Target {
    /// Parses `input`; a bare path is looked at to tell a layout folder
    /// from an archive file.
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let err = |reason: String| TargetError {
            input: input.to_string(),
            reason,
        };
        if let Some(rest) = input.strip_prefix("oci:") {
            let (path, selector) = split_selector(rest).map_err(err)?;
            // skopeo's `oci:PATH:REF` form, when PATH is a folder.
            if selector == Selector::Only {
                if let Some((p, r)) = path.rsplit_once(':') {
                    if !r.contains('/') && Path::new(p).is_dir() {
                        return Ok(Target::Layout {
                            path: p.into(),
                            selector: Selector::RefName(r.into()),
                        });
                    }
                }
            }
            return Ok(Target::Layout {
                path: path.into(),
                selector,
            });
        }
        for (prefix, kind) in [
            ("oci-archive:", ArchiveKind::Oci),
            ("docker-archive:", ArchiveKind::Docker),
        ] {
            if let Some(rest) = input.strip_prefix(prefix) {
                let (path, selector) = split_selector(rest).map_err(err)?;
                return Ok(Target::Archive {
                    path: path.into(),
                    kind: Some(kind),
                    selector,
                });
            }
        }
        if let Some(rest) = input.strip_prefix("docker://") {
            return Ok(Target::Registry {
                reference: rest.to_string(),
            });
        }
        let (path, selector) = split_selector(input).map_err(err)?;
        let p = Path::new(path);
        if p.is_dir() {
            return Ok(Target::Layout {
                path: p.into(),
                selector,
            });
        }
        if p.is_file() {
            return Ok(Target::Archive {
                path: p.into(),
                kind: None,
                selector,
            });
        }
        if input.contains('/') && !input.starts_with('.') && !input.starts_with('/') {
            return Ok(Target::Registry {
                reference: input.to_string(),
            });
        }
        Err(err(format!("{path} does not exist")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_paths() {
        let d = Digest::of(b"x");
        assert_eq!(
            Target::parse(&format!("oci:some/dir@{d}")).unwrap(),
            Target::Layout {
                path: "some/dir".into(),
                selector: Selector::Digest(d.clone())
            }
        );
        assert_eq!(
            Target::parse("docker-archive:img.tar").unwrap(),
            Target::Archive {
                path: "img.tar".into(),
                kind: Some(ArchiveKind::Docker),
                selector: Selector::Only
            }
        );
        assert_eq!(
            Target::parse("docker://127.0.0.1:5000/a/b:1").unwrap(),
            Target::Registry {
                reference: "127.0.0.1:5000/a/b:1".into()
            }
        );
        assert_eq!(
            Target::parse("127.0.0.1:5000/a/b:1").unwrap(),
            Target::Registry {
                reference: "127.0.0.1:5000/a/b:1".into()
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let t = Target::parse(&format!("oci:{}:v1", dir.path().display())).unwrap();
        assert_eq!(
            t,
            Target::Layout {
                path: dir.path().into(),
                selector: Selector::RefName("v1".into())
            }
        );
        let e = Target::parse("./missing").unwrap_err().to_string();
        assert!(e.contains("./missing does not exist"), "{e}");
        let e = Target::parse("oci:x@sha256:zz").unwrap_err().to_string();
        assert!(e.contains("not a sha256 digest"), "{e}");
    }
}
