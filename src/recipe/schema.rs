//! The recipe as written: serde structs mirroring the TOML, every table
//! `deny_unknown_fields`. Values that later checks may reject are `Spanned`
//! so the error can name file:line:column. Field docs are the reference the
//! README repeats.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::layer::Compression;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    /// Required: what the image is called.
    pub image: ImageTable,
    /// Optional (default: scratch): what the image starts from.
    #[serde(default)]
    pub base: BaseTable,
    /// Optional: Debian packages to install.
    pub apt: Option<AptTable>,
    /// Optional: files and directories copied from beside the recipe.
    #[serde(default)]
    pub files: Vec<FileTable>,
    /// Optional: paths made without a source (directories, small files, symlinks).
    #[serde(default)]
    pub paths: Vec<PathTable>,
    /// Optional: users and groups written to /etc/passwd and /etc/group.
    #[serde(default)]
    pub accounts: AccountsTable,
    /// Optional: the image config (entrypoint, env, user, …).
    #[serde(default)]
    pub config: ConfigTable,
    /// Optional: annotations copied to the image manifest (and, for
    /// `org.opencontainers.image.source`, `revision` and `version`, to the
    /// config's labels). Keys stele sets itself are refused.
    #[serde(default)]
    pub annotations: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTable {
    /// Required: image name; default output folder `out/<name>` and archive tag.
    pub name: Spanned<String>,
    /// Optional (default "latest"): the tag written as the layout's ref name.
    pub tag: Option<Spanned<String>>,
    /// Optional (default 0): seconds since 1970 for every timestamp; `SOURCE_DATE_EPOCH` overrides.
    pub epoch: Option<Spanned<i64>>,
    /// Optional (default "gzip"): layer compression, "gzip", "zstd" or "none".
    #[serde(default)]
    pub compression: Compression,
    /// Optional (default ["linux/amd64"]): platforms to build.
    pub platforms: Option<Spanned<Vec<Spanned<String>>>>,
    /// Optional (default true): embed an SPDX SBOM of the installed
    /// packages in the image. Left out of the canonical recipe when not
    /// written, so recipes that do not set it keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaseTable {
    pub scratch: Option<Spanned<bool>>,
    /// `registry/repo@sha256:…`; the digest is required.
    pub image: Option<Spanned<String>>,
    /// `path@sha256:…` of a local OCI layout or oci-archive, relative to the recipe.
    pub layout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AptTable {
    pub sources: Spanned<Vec<AptSourceTable>>,
    pub packages: Spanned<Vec<Spanned<String>>>,
    /// "single" (default) or "per-package".
    pub layers: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AptSourceTable {
    /// "host", a URL, or a NAME read from `STELE_MIRROR_<NAME>`.
    pub mirror: Spanned<String>,
    pub suite: Spanned<String>,
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// Keyring file (binary or armored), relative to the recipe.
    pub keyring: Option<Spanned<String>>,
}

fn default_components() -> Vec<String> {
    vec!["main".to_string()]
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileTable {
    /// Required: file or directory, relative to the recipe's folder.
    pub src: Spanned<String>,
    /// Required: absolute path in the image.
    pub dest: Spanned<String>,
    /// Optional: octal mode for copied files (default from the executable bit: 0755/0644).
    pub mode: Option<Spanned<String>>,
    /// Optional (default "0:0"): numeric `uid:gid`.
    pub owner: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathTable {
    pub path: Spanned<String>,
    /// "dir", "file", "symlink" or "absent".
    pub kind: Spanned<String>,
    pub mode: Option<Spanned<String>>,
    pub owner: Option<Spanned<String>>,
    /// For kind = "file": its text.
    pub content: Option<Spanned<String>>,
    /// For kind = "symlink": where it points.
    pub target: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsTable {
    #[serde(default)]
    pub users: Vec<UserTable>,
    #[serde(default)]
    pub groups: Vec<GroupTable>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserTable {
    pub name: Spanned<String>,
    pub uid: Spanned<u32>,
    /// Default: same as uid.
    pub gid: Option<u32>,
    /// Default: /home/<name>, created owned by the user.
    pub home: Option<Spanned<String>>,
    /// Default: /sbin/nologin.
    pub shell: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupTable {
    pub name: Spanned<String>,
    pub gid: Spanned<u32>,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigTable {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Values spanned so a bad key is named at its line.
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    pub workdir: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    /// Keys stele sets itself (provenance) are refused.
    #[serde(default)]
    pub labels: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub exposed_ports: Vec<Spanned<String>>,
    #[serde(default)]
    pub volumes: Vec<Spanned<String>>,
    pub stop_signal: Option<Spanned<String>>,
}
