//! The build context: the folder `[[files]] src` is read from. By default
//! the recipe's own folder; `--context DIR` names another, as `buildah
//! build -f deploy/Containerfile build/` does, so a monorepo can keep its
//! recipes in `deploy/` and its artifacts in `build/`.
//!
//! The context is a location, like a mirror: the image holds the files'
//! bytes (the recipe layer, so its digest changes exactly when they do),
//! never where they were found. The recipe digest, the lock and
//! provenance are the same whatever folder it is.

use std::path::Path;

use super::{Recipe, RecipeError};

impl Recipe {
    /// Reads `[[files]]` from `context` (the recipe's folder when `None`):
    /// each `src` is joined to it and must exist there, and a `src` with
    /// `exclude` must be a folder. Links leading out of the context are
    /// refused when the files are copied (`assemble::files`).
    pub fn read_files_from(&mut self, context: Option<&Path>) -> Result<(), RecipeError> {
        if let Some(dir) = context {
            let meta = std::fs::metadata(dir);
            if !meta.as_ref().is_ok_and(|m| m.is_dir()) {
                return Err(RecipeError::Context {
                    path: dir.to_path_buf(),
                    problem: match meta {
                        Ok(_) => "is not a folder".into(),
                        Err(e) => e.to_string(),
                    },
                });
            }
            self.context = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        }
        let named = if context.is_some() {
            "the build context (--context)"
        } else {
            "the recipe's folder"
        };
        for spec in &mut self.files {
            spec.src = self.context.join(&spec.src_written);
            if std::fs::symlink_metadata(&spec.src).is_err() {
                return Err(RecipeError::Invalid {
                    location: spec.loc.0.clone(),
                    message: format!(
                        "src `{}` does not exist in {named} {} (looked for {}){}",
                        spec.src_written,
                        self.context.display(),
                        spec.src.display(),
                        if context.is_some() {
                            ""
                        } else {
                            "; if it is built elsewhere, pass --context DIR with the folder src is relative to"
                        }
                    ),
                });
            }
            if let Some(loc) = &spec.exclude_loc {
                if !spec.src.is_dir() {
                    return Err(RecipeError::Invalid {
                        location: loc.0.clone(),
                        message: format!(
                            "exclude applies to a folder, and src `{}` is a file: remove exclude",
                            spec.src_written
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
