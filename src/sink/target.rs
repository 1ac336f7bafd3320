//! Where a user sends an image: the sinks' side of `source::Target`,
//! with skopeo's transport prefixes.
//!
//! - `oci:PATH[:TAG]`, or a folder (a path that starts with `/` or `.`,
//!   or an existing folder): an OCI layout folder
//! - `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]`: a tar file
//! - `docker://HOST[:PORT]/REPO[:TAG]`, or anything else: a registry
//!
//! `TAG` is the layout's ref name, or a docker-archive's `RepoTags` tag;
//! left out, the command decides it (`build`: `--tag`, else the recipe's).

use std::path::{Path, PathBuf};

use crate::registry::{Reference, RegistryError};
use crate::source::target::ArchiveKind;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An OCI image layout folder.
    Layout { path: PathBuf, tag: Option<String> },
    /// A tar file: an oci-archive (a layout in a tar) or a docker-archive
    /// (`docker save` format, also an oci-archive).
    Archive {
        path: PathBuf,
        kind: ArchiveKind,
        tag: Option<String>,
    },
    /// A registry repository, tagged when the reference has a tag.
    Registry { reference: Reference },
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{input}` names no place to write an image: {reason}. Give a layout folder (oci:PATH[:TAG]), an archive (oci-archive:FILE[:TAG], docker-archive:FILE[:TAG]) or a registry reference (HOST[:PORT]/REPO[:TAG])")]
    Invalid { input: String, reason: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Splits `PATH:TAG` when what follows the last `:` is a ref name.
fn split_tag(s: &str) -> (&str, Option<String>) {
    match s.rsplit_once(':') {
        Some((path, tag)) if !path.is_empty() && crate::recipe::valid_tag(tag) => {
            (path, Some(tag.to_string()))
        }
        _ => (s, None),
    }
}

impl Target {
    /// Parses `input`. A bare path is a layout folder when it starts with
    /// `/` or `.` or is a folder already; anything else must be a
    /// registry reference.
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let invalid = |reason: &str| TargetError::Invalid {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = input.strip_prefix("oci:") {
            let (path, tag) = split_tag(rest);
            if path.is_empty() {
                return Err(invalid("the layout folder's path is empty"));
            }
            return Ok(Target::Layout {
                path: path.into(),
                tag,
            });
        }
        for (prefix, kind) in [
            ("oci-archive:", ArchiveKind::Oci),
            ("docker-archive:", ArchiveKind::Docker),
        ] {
            if let Some(rest) = input.strip_prefix(prefix) {
                let (path, tag) = split_tag(rest);
                if path.is_empty() {
                    return Err(invalid("the archive's path is empty"));
                }
                return Ok(Target::Archive {
                    path: path.into(),
                    kind,
                    tag,
                });
            }
        }
        if input.starts_with('/') || input.starts_with('.') || Path::new(input).is_dir() {
            return Ok(Target::Layout {
                path: input.into(),
                tag: None,
            });
        }
        Ok(Target::Registry {
            reference: Reference::parse(input)?,
        })
    }

    /// What the target is, for messages: "a layout folder", "an
    /// oci-archive", "a docker-archive", "a registry".
    pub fn noun(&self) -> &'static str {
        match self {
            Target::Layout { .. } => "a layout folder",
            Target::Archive { kind, .. } => super::archive_noun(*kind),
            Target::Registry { .. } => "a registry",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_paths_and_references() {
        assert_eq!(
            Target::parse("oci:out/app:v1").unwrap(),
            Target::Layout {
                path: "out/app".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Target::parse("oci:out/app").unwrap(),
            Target::Layout {
                path: "out/app".into(),
                tag: None
            }
        );
        assert_eq!(
            Target::parse("docker-archive:app.tar:1.0").unwrap(),
            Target::Archive {
                path: "app.tar".into(),
                kind: ArchiveKind::Docker,
                tag: Some("1.0".into())
            }
        );
        assert_eq!(
            Target::parse("oci-archive:/tmp/app.tar").unwrap(),
            Target::Archive {
                path: "/tmp/app.tar".into(),
                kind: ArchiveKind::Oci,
                tag: None
            }
        );
        assert_eq!(
            Target::parse("./out/app").unwrap(),
            Target::Layout {
                path: "./out/app".into(),
                tag: None
            }
        );
        for words in ["127.0.0.1:5000/a/b:1", "docker://127.0.0.1:5000/a/b:1"] {
            assert_eq!(
                Target::parse(words).unwrap(),
                Target::Registry {
                    reference: Reference::parse("127.0.0.1:5000/a/b:1").unwrap()
                }
            );
        }
        // Not a path and not a reference: the reference's own error.
        let e = Target::parse("hello:1.0").unwrap_err().to_string();
        assert!(e.contains("names no registry host"), "{e}");
        let e = Target::parse("oci-archive:").unwrap_err().to_string();
        assert!(e.contains("path is empty"), "{e}");
    }
}
