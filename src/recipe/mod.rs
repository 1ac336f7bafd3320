//! Recipes: load the TOML, check every value, and hand the rest of the
//! program a `Recipe` whose fields are already valid. `schema` is the TOML
//! as written (and its JSON Schema), `load` reads a file and checks the
//! `[image]` table, `validate` checks every other table into its spec,
//! each error at the value's file:line:column, and `canonical` is the
//! recipe as provenance and the lockfile record it.

mod apps;
mod canonical;
mod context;
mod load;
pub mod schema;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::layer::{Compression, Profile};
use crate::oci::{Digest, Platform};

pub use apps::{NodeSpec, PythonSpec};
pub(crate) use load::valid_tag;
pub use load::{line_col, load, parse};

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("recipe {path} does not exist: check the path, or write one with `stele init`")]
    NotFound { path: PathBuf },
    #[error("cannot read recipe {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("--context {path} {problem}: name the folder `[[files]] src` is relative to")]
    Context { path: PathBuf, problem: String },
    /// `location` is `file:line:column`.
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
}

/// Where in the recipe a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc(pub String);

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseSpec {
    Scratch,
    /// A registry image pinned by digest: `reference` without the digest.
    Image {
        reference: String,
        digest: Digest,
        loc: Loc,
    },
    /// A local OCI layout directory or oci-archive file, pinned by digest.
    Layout {
        path: PathBuf,
        /// The path as the recipe wrote it (relative to the recipe), for
        /// provenance: never the host's absolute path.
        written: String,
        digest: Digest,
        loc: Loc,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptSource {
    pub mirror: String,
    pub suite: String,
    pub components: Vec<String>,
    pub keyring: Option<PathBuf>,
    /// A snapshot archive of the source (a URL or a NAME, as `mirror`):
    /// `URL/<YYYYMMDDTHHMMSSZ>/` is the archive at that time.
    pub snapshot: Option<String>,
    pub loc: Loc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AptLayers {
    #[default]
    Single,
    PerPackage,
    /// `[image] layers = { strategy = "source", budget = N }`: one layer
    /// per Debian source package, at most `budget` layers.
    BySource {
        budget: usize,
    },
}

/// `[image] layers`' budget when the recipe gives none.
pub const DEFAULT_LAYER_BUDGET: usize = 10;

/// One `[apt] packages` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageRequest {
    /// The name as written, with its `=VERSION` pin if any.
    pub name: String,
    /// Where the entry is written, for errors about it (an unknown name).
    pub loc: Loc,
    /// `None`: every platform of the recipe. Otherwise the platforms it is
    /// installed on, sorted, each one of the recipe's.
    pub platforms: Option<Vec<Platform>>,
}

impl PackageRequest {
    pub fn applies_to(&self, platform: &Platform) -> bool {
        match &self.platforms {
            None => true,
            Some(list) => list.contains(platform),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptSpec {
    pub sources: Vec<AptSource>,
    pub packages: Vec<PackageRequest>,
    pub layers: AptLayers,
    /// `alternatives`: name → (path, where the recipe says it).
    pub alternatives: BTreeMap<String, (String, Loc)>,
    /// `variant`: a base set of packages chosen by their priority.
    pub variant: Option<AptVariant>,
    pub loc: Loc,
}

/// A base set of packages, as debootstrap and mmdebstrap name their
/// variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AptVariant {
    /// Every `Essential: yes` package.
    Essential,
    /// The essential packages and apt.
    Apt,
    /// Every `Priority: required` package and apt (debootstrap's minbase).
    Minbase,
    /// Minbase and every `Priority: important` package.
    Important,
    /// Important and every `Priority: standard` package.
    Standard,
}

impl AptVariant {
    pub fn name(self) -> &'static str {
        match self {
            AptVariant::Essential => "essential",
            AptVariant::Apt => "apt",
            AptVariant::Minbase => "minbase",
            AptVariant::Important => "important",
            AptVariant::Standard => "standard",
        }
    }

    /// Whether a package with these fields (from the package index, as
    /// debootstrap reads them) is in the set.
    pub fn includes(self, name: &str, essential: bool, priority: &str) -> bool {
        let rank = match priority {
            "required" => 0,
            "important" => 1,
            "standard" => 2,
            _ => 3,
        };
        // debootstrap adds usr-is-merged to its variants for merged /usr
        // (its default since bookworm), which keeps usrmerge and perl out.
        let debootstrap = name == "apt" || name == "usr-is-merged";
        match self {
            AptVariant::Essential => essential,
            AptVariant::Apt => essential || name == "apt",
            AptVariant::Minbase => essential || rank == 0 || debootstrap,
            AptVariant::Important => essential || rank <= 1 || debootstrap,
            AptVariant::Standard => essential || rank <= 2 || debootstrap,
        }
    }
}

impl AptSpec {
    /// The names (with pins) requested for `platform`, in recipe order.
    pub fn packages_for(&self, platform: &Platform) -> Vec<String> {
        self.packages
            .iter()
            .filter(|p| p.applies_to(platform))
            .map(|p| p.name.clone())
            .collect()
    }

    /// Where the entry requesting package `name` (with or without its
    /// pin) for `platform` is written.
    pub fn request_loc(&self, platform: &Platform, name: &str) -> Option<&Loc> {
        self.packages
            .iter()
            .filter(|p| p.applies_to(platform))
            .find(|p| p.name == name || p.name.split_once('=').is_some_and(|(n, _)| n == name))
            .map(|p| &p.loc)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// Absolute host path: the build context joined with `src` (the
    /// recipe's folder until `Recipe::read_files_from` names another).
    pub src: PathBuf,
    /// `src` as the recipe wrote it, for messages: relative, without `..`.
    pub src_written: String,
    /// Normalized image path key.
    pub dest: String,
    pub mode: Option<u32>,
    pub owner: (u32, u32),
    /// Gitignore-style patterns relative to `src` (a folder), each checked
    /// to compile; `.steleignore` in `src` adds to them when copying.
    pub exclude: Vec<String>,
    /// Where the first `exclude` pattern is written.
    pub exclude_loc: Option<Loc>,
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathKind {
    Dir,
    File(String),
    Symlink(String),
    Absent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSpec {
    pub key: String,
    pub kind: PathKind,
    pub mode: Option<u32>,
    pub owner: (u32, u32),
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigSpec {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// Where `user` is written, for the build's check that it exists.
    pub user_loc: Option<Loc>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Recipe {
    pub path: PathBuf,
    /// The recipe's folder: `[base] layout` and keyrings are relative to it.
    pub dir: PathBuf,
    /// The build context: the folder `[[files]] src` is relative to and
    /// may not leave (the recipe's folder unless `--context` names
    /// another; see `Recipe::read_files_from`). A location, like a
    /// mirror: neither the recipe digest nor provenance records it.
    pub context: PathBuf,
    pub name: String,
    pub tag: String,
    pub epoch: u64,
    pub compression: Compression,
    /// `[image] encoding`: the profile the recipe pins, if any (see
    /// `layer::Profile::in_force`).
    pub encoding: Option<Profile>,
    pub platforms: Vec<Platform>,
    pub base: BaseSpec,
    pub apt: Option<AptSpec>,
    /// `[python]`: packages from a pylock.toml.
    pub python: Option<PythonSpec>,
    /// `[node]`: packages from a package-lock.json.
    pub node: Option<NodeSpec>,
    pub files: Vec<FileSpec>,
    pub paths: Vec<PathSpec>,
    pub users: Vec<UserSpec>,
    pub groups: Vec<GroupSpec>,
    pub config: ConfigSpec,
    pub annotations: BTreeMap<String, String>,
    /// `[image] sbom`: whether the image embeds its SPDX SBOM.
    pub sbom: bool,
    /// Canonical JSON of the parsed recipe: what provenance records and
    /// what the lockfile's recipe digest is taken over. Formatting,
    /// comments and key order in the TOML do not change it.
    pub canonical: Vec<u8>,
    /// See [`Recipe::input_digest`].
    input_digest: Digest,
}

#[cfg(test)]
mod tests;
