//! The recipe as written: serde structs mirroring the TOML, every table
//! `deny_unknown_fields`. Values that later checks may reject are `Spanned`
//! so the error can name file:line:column. Field docs are the reference the
//! README repeats.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::layer::{Compression, Profile};

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecipeFile {
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
    /// Optional: Python packages from a PEP 751 lock (`pylock.toml`),
    /// installed for the image's python3. Left out of the canonical
    /// recipe when not written, so other recipes keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<super::apps::PythonTable>,
    /// Optional: Node.js packages from npm's `package-lock.json`, laid
    /// out in `node_modules`. Left out of the canonical recipe when not
    /// written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<super::apps::NodeTable>,
    /// Optional: annotations copied to the image manifest (and, for
    /// `org.opencontainers.image.source`, `revision` and `version`, to the
    /// config's labels). Keys stele sets itself are refused.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub annotations: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageTable {
    /// Required: image name; default output folder `out/<name>` and archive tag.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Optional (default "latest"): the tag written as the layout's ref name.
    #[schemars(with = "Option<String>")]
    pub tag: Option<Spanned<String>>,
    /// Optional (default 0): seconds since 1970 for every timestamp; `SOURCE_DATE_EPOCH` overrides.
    #[schemars(with = "Option<i64>")]
    pub epoch: Option<Spanned<i64>>,
    /// Optional (default "gzip"): layer compression, "gzip", "zstd" or "none".
    #[serde(default)]
    #[schemars(with = "CompressionName")]
    pub compression: Compression,
    /// Optional: the encoding profile, "stele-2026.1" or "stele-2026.2".
    /// Without it a build uses its lock's profile, and a new lock (or a
    /// recipe without [apt]) the newest. Left out of the canonical recipe
    /// when not written, so recipes that do not set it keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<EncodingName>")]
    pub encoding: Option<Profile>,
    /// Optional (default ["linux/amd64"]): platforms to build.
    #[schemars(with = "Option<Vec<String>>")]
    pub platforms: Option<Spanned<Vec<Spanned<String>>>>,
    /// Optional (default true): embed an SPDX SBOM of the installed
    /// packages in the image. Left out of the canonical recipe when not
    /// written, so recipes that do not set it keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<bool>,
    /// Optional: how `[apt]` packages are laid into layers instead of
    /// `[apt] layers`, as `{ strategy = "source", budget = 10 }`. Left out
    /// of the canonical recipe when not written, so recipes that do not
    /// set it keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<LayersTable>,
}

/// `[image] layers`: packages grouped into layers under a budget.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayersTable {
    /// Required: "source": each Debian source package's binary packages
    /// in one layer (as apko's "origin" strategy), so an update of one
    /// source changes one layer.
    #[schemars(with = "LayerStrategyName")]
    pub strategy: Spanned<String>,
    /// Optional (default 10): the most layers the packages take. With more
    /// source packages than that, the largest (by size, to within a
    /// factor of two) get a layer each and the rest share one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub budget: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BaseTable {
    #[schemars(with = "Option<bool>")]
    pub scratch: Option<Spanned<bool>>,
    /// `registry/repo@sha256:…`; the digest is required.
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
    /// `path@sha256:…` of a local OCI layout or oci-archive, relative to the recipe.
    #[schemars(with = "Option<String>")]
    pub layout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AptTable {
    #[schemars(with = "Vec<AptSourceTable>")]
    pub sources: Spanned<Vec<AptSourceTable>>,
    /// Required: package names (optionally `=VERSION`), each either a
    /// string (installed on every platform) or `{ name, platforms }`
    /// (installed only on the platforms listed).
    #[schemars(with = "Vec<PackageEntry>")]
    pub packages: Spanned<Vec<Spanned<PackageEntry>>>,
    /// "single" (default) or "per-package".
    #[schemars(with = "Option<AptLayersName>")]
    pub layers: Option<Spanned<String>>,
    /// Alternative name → the path its link leads to, chosen as
    /// `update-alternatives --set` would (manual mode); other names follow
    /// the highest priority.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub alternatives: std::collections::BTreeMap<String, Spanned<String>>,
    /// A base set of packages added to `packages`, named as debootstrap's
    /// and mmdebstrap's variants name them: "essential" (every
    /// `Essential: yes` package), "apt" (those and apt), "minbase" (every
    /// `Priority: required` package and apt: debootstrap's
    /// `--variant=minbase`), "important" (minbase and every `Priority:
    /// important` package) or "standard" (and `Priority: standard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<AptVariantName>")]
    pub variant: Option<Spanned<String>>,
}

/// One `[apt] packages` entry: `"name"` for every platform, or a table
/// naming the platforms it is installed on. Written back as it was read,
/// so recipes with only strings keep their canonical form and digest.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum PackageEntry {
    Name(String),
    Table(PackageTable),
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageTable {
    /// Required: the package name, optionally `=VERSION`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Required: the platforms (from `[image] platforms`) to install it on.
    #[schemars(with = "Vec<String>")]
    pub platforms: Spanned<Vec<Spanned<String>>>,
}

// By hand rather than `untagged`: an untagged enum buffers its input, and
// the buffered copy loses the TOML positions `Spanned` needs for errors.
impl<'de> Deserialize<'de> for PackageEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PackageEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a package name, or a table { name = \"…\", platforms = [\"linux/…\"] }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PackageEntry, E> {
                Ok(PackageEntry::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<PackageEntry, A::Error> {
                PackageTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(PackageEntry::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AptSourceTable {
    /// "host", a URL, or a NAME read from `STELE_MIRROR_<NAME>`.
    #[schemars(with = "String")]
    pub mirror: Spanned<String>,
    #[schemars(with = "String")]
    pub suite: Spanned<String>,
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// Keyring file (binary or armored), relative to the recipe.
    #[schemars(with = "Option<String>")]
    pub keyring: Option<Spanned<String>>,
    /// Optional: a snapshot archive of this source, a URL (or a NAME read
    /// from `STELE_MIRROR_<NAME>`) where `URL/<YYYYMMDDTHHMMSSZ>/` is the
    /// archive as it was at that time. A locked .deb the mirror no longer
    /// carries is fetched from there, at the time of the indexes the lock
    /// read. Where-from only, like `mirror`: left out of the recipe digest
    /// and of the canonical recipe when not written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub snapshot: Option<Spanned<String>>,
}

fn default_components() -> Vec<String> {
    vec!["main".to_string()]
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTable {
    /// Required: file or directory, relative to the recipe's folder.
    #[schemars(with = "String")]
    pub src: Spanned<String>,
    /// Required: absolute path in the image.
    #[schemars(with = "String")]
    pub dest: Spanned<String>,
    /// Optional: octal mode for copied files (default from the executable bit: 0755/0644).
    #[schemars(with = "Option<String>", regex(pattern = r"^(0o)?[0-7]{1,4}$"))]
    pub mode: Option<Spanned<String>>,
    /// Optional (default "0:0"): numeric `uid:gid`.
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// Optional (default none): gitignore-style patterns, relative to a
    /// folder `src`, of what not to copy (e.g. "**/__pycache__", "*.pyc").
    /// A `.steleignore` file at the folder's root adds its own.
    // Left out of the canonical recipe when empty, so recipes written
    // before it existed keep their digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathTable {
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// "dir", "file", "symlink" or "absent".
    #[schemars(with = "PathKindName")]
    pub kind: Spanned<String>,
    #[schemars(with = "Option<String>", regex(pattern = r"^(0o)?[0-7]{1,4}$"))]
    pub mode: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// For kind = "file": its text.
    #[schemars(with = "Option<String>")]
    pub content: Option<Spanned<String>>,
    /// For kind = "symlink": where it points.
    #[schemars(with = "Option<String>")]
    pub target: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountsTable {
    #[serde(default)]
    pub users: Vec<UserTable>,
    #[serde(default)]
    pub groups: Vec<GroupTable>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserTable {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "u32")]
    pub uid: Spanned<u32>,
    /// Default: same as uid.
    pub gid: Option<u32>,
    /// Default: /home/<name>, created owned by the user.
    #[schemars(with = "Option<String>")]
    pub home: Option<Spanned<String>>,
    /// Default: /sbin/nologin.
    pub shell: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupTable {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "u32")]
    pub gid: Spanned<u32>,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigTable {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Values spanned so a bad key is named at its line.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub env: BTreeMap<String, Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub workdir: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// Keys stele sets itself (provenance) are refused.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub exposed_ports: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub volumes: Vec<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub stop_signal: Option<Spanned<String>>,
}

// The schema's names for values the loader checks as strings, so editors
// offer them; the loader's checks stay the authority.

/// Layer compression.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
enum CompressionName {
    Gzip,
    Zstd,
    None,
}

/// An encoding profile: what shapes a layer's compressed bytes.
#[derive(JsonSchema)]
#[allow(dead_code)] // only its schema is used
enum EncodingName {
    /// One compressor stream per layer (stele before 2026.2).
    #[serde(rename = "stele-2026.1")]
    V2026_1,
    /// Independent fixed-size blocks, compressed on every core.
    #[serde(rename = "stele-2026.2")]
    V2026_2,
}

/// What a `[[paths]]` entry makes.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
enum PathKindName {
    Dir,
    File,
    Symlink,
    Absent,
}

/// `[image] layers` strategies.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // only its schema is used
enum LayerStrategyName {
    /// One layer per Debian source package.
    Source,
}

/// How `[apt]` packages are laid into layers.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // only its schema is used
enum AptLayersName {
    Single,
    PerPackage,
}

/// `[apt] variant`, for the schema.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // only its schema is used
enum AptVariantName {
    Essential,
    Apt,
    Minbase,
    Important,
    Standard,
}

/// The recipe's JSON Schema (draft 2020-12), generated from these types:
/// what `stele schema` prints and `schema/recipe.schema.json` holds.
pub(crate) fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RecipeFile);
    schema.insert("title".into(), "stele recipe".into());
    schema.to_value()
}
