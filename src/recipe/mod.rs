//! Recipes: load the TOML, check every value, and hand the rest of the
//! program a `Recipe` whose fields are already valid.

pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::fstree::normalize_abs;
use crate::layer::{Compression, Profile};
use crate::oci::{Digest, Platform};
use schema::*;

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("recipe {path} does not exist: check the path, or write one with `stele init`")]
    NotFound { path: PathBuf },
    #[error("cannot read recipe {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
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
    pub loc: Loc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AptLayers {
    #[default]
    Single,
    PerPackage,
}

/// One `[apt] packages` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageRequest {
    /// The name as written, with its `=VERSION` pin if any.
    pub name: String,
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
    pub loc: Loc,
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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// Absolute host path (recipe folder joined with `src`).
    pub src: PathBuf,
    /// `src` as the recipe wrote it, for messages.
    pub src_written: String,
    /// Normalized image path key.
    pub dest: String,
    pub mode: Option<u32>,
    pub owner: (u32, u32),
    /// Gitignore-style patterns relative to `src` (a folder), each checked
    /// to compile; `.steleignore` in `src` adds to them when copying.
    pub exclude: Vec<String>,
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
    pub dir: PathBuf,
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

impl Recipe {
    pub fn digest(&self) -> Digest {
        Digest::of(&self.canonical)
    }

    /// The digest the image records as `dev.stele.recipe.digest`: of the
    /// canonical recipe without where `[apt]` sources are fetched from
    /// (`mirror`, `keyring`). Mirrors are locations and the lock's digests
    /// are identity, so another name for the same archive or a moved
    /// keyring must not change the image; everything else in the recipe
    /// does change this digest.
    pub fn input_digest(&self) -> Digest {
        self.input_digest.clone()
    }

    /// Adds `[annotations]` and `[config] labels` given beside the recipe
    /// (`build --annotation/--label`), replacing the recipe's value for
    /// the same key. The canonical recipe takes them too, so provenance and
    /// the recipe digest describe what was built, as if they were written
    /// in the file.
    pub(crate) fn add_metadata(
        &mut self,
        annotations: &[(String, String)],
        labels: &[(String, String)],
    ) {
        if annotations.is_empty() && labels.is_empty() {
            return;
        }
        let mut doc: serde_json::Value =
            serde_json::from_slice(&self.canonical).expect("the canonical recipe is JSON");
        for (k, v) in annotations {
            self.annotations.insert(k.clone(), v.clone());
            doc["annotations"][k] = v.clone().into();
        }
        for (k, v) in labels {
            self.config.labels.insert(k.clone(), v.clone());
            doc["config"]["labels"][k] = v.clone().into();
        }
        self.input_digest = Digest::of(&input_canonical_value(doc.clone()));
        self.canonical = crate::oci::json::to_canonical_vec(&doc);
    }
}

/// The canonical JSON of `file` without its sources' locations.
fn input_canonical(file: &RecipeFile) -> Vec<u8> {
    input_canonical_value(serde_json::to_value(file).expect("a recipe serializes"))
}

/// The canonical JSON of a recipe document without its sources' locations.
fn input_canonical_value(mut value: serde_json::Value) -> Vec<u8> {
    if let Some(sources) = value
        .get_mut("apt")
        .and_then(|a| a.get_mut("sources"))
        .and_then(serde_json::Value::as_array_mut)
    {
        for source in sources
            .iter_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            source.remove("mirror");
            source.remove("keyring");
        }
    }
    crate::oci::json::to_canonical_vec(&value)
}

/// Line and column (1-based) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

struct Ctx<'a> {
    shown: String,
    text: &'a str,
}

impl Ctx<'_> {
    fn loc<T>(&self, s: &Spanned<T>) -> Loc {
        let (l, c) = line_col(self.text, s.span().start);
        Loc(format!("{}:{}:{}", self.shown, l, c))
    }
    fn err<T>(&self, s: &Spanned<T>, message: impl Into<String>) -> RecipeError {
        RecipeError::Invalid {
            location: self.loc(s).0,
            message: message.into(),
        }
    }
}

/// The last second of the year 9999: RFC 3339 times, which image configs
/// hold, have four-digit years.
const MAX_EPOCH: u64 = 253_402_300_799;

/// Reads and checks a recipe. `epoch_override` is `SOURCE_DATE_EPOCH` as the
/// CLI read it.
pub fn load(path: &Path, epoch_override: Option<u64>) -> Result<Recipe, RecipeError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RecipeError::NotFound {
            path: path.to_path_buf(),
        },
        _ => RecipeError::Read {
            path: path.to_path_buf(),
            error: e,
        },
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let before = std::str::from_utf8(&bytes[..good]).expect("valid up to here");
            let (l, c) = line_col(before, good);
            return Err(RecipeError::Invalid {
                location: format!("{}:{l}:{c}", path.display()),
                message: format!(
                    "the recipe is not UTF-8 (byte 0x{:02x}); save it as UTF-8",
                    bytes[good]
                ),
            });
        }
    };
    parse(path, &text, epoch_override)
}

pub fn parse(path: &Path, text: &str, epoch_override: Option<u64>) -> Result<Recipe, RecipeError> {
    let ctx = Ctx {
        shown: path.display().to_string(),
        text,
    };
    let file: RecipeFile = toml::from_str(text).map_err(|e| {
        let (l, mut c) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        let mut message = e.message().trim_end().to_string();
        if let Some((value_col, fix)) = integer_mode(text, l) {
            // `mode = 0755` is not TOML at all (a leading zero), and
            // `mode = 755` is a decimal integer: either way the parser's
            // own words ("expected newline", "invalid type") miss the point.
            c = value_col;
            message = fix;
        } else if message.starts_with("unknown field") {
            message.push_str(
                "; remove it or correct its spelling (see the recipe reference in README.md)",
            );
        } else if message.starts_with("invalid type") {
            message
                .push_str("; write the value as that type (see the recipe reference in README.md)");
        } else if message.starts_with("missing field") {
            message.push_str("; add it (see the recipe reference in README.md)");
        }
        RecipeError::Invalid {
            location: format!("{}:{}:{}", ctx.shown, l, c),
            message,
        }
    })?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let dir = std::path::absolute(&dir).unwrap_or(dir);

    let name = file.image.name.get_ref().clone();
    if !valid_name(&name) {
        return Err(ctx.err(&file.image.name, format!(
            "image name `{name}` is not valid: use lowercase letters, digits and `.`, `_`, `-`, `/` (like a repository name)"
        )));
    }
    let tag = match &file.image.tag {
        Some(t) => {
            let v = t.get_ref();
            if !valid_tag(v) {
                return Err(ctx.err(t, format!("tag `{v}` is not valid: use up to 128 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`")));
            }
            v.clone()
        }
        None => "latest".to_string(),
    };
    let epoch = match (epoch_override, &file.image.epoch) {
        (Some(e), _) if e > MAX_EPOCH => {
            return Err(RecipeError::Invalid {
                location: ctx.shown.clone(),
                message: format!("SOURCE_DATE_EPOCH {e} is past the year 9999 (at most {MAX_EPOCH}): an image's `created` time would be one that skopeo, docker and containerd cannot parse"),
            });
        }
        (Some(e), _) => e,
        (None, Some(e)) if *e.get_ref() > MAX_EPOCH as i64 => {
            return Err(ctx.err(
                e,
                format!("epoch {} is past the year 9999 (at most {MAX_EPOCH}, 9999-12-31T23:59:59Z): an image's `created` time would be one that skopeo, docker and containerd cannot parse", e.get_ref()),
            ));
        }
        (None, Some(e)) if *e.get_ref() < 0 => {
            return Err(ctx.err(
                e,
                "epoch must be zero or more seconds since 1970-01-01T00:00:00Z",
            ));
        }
        (None, Some(e)) => *e.get_ref() as u64,
        (None, None) => 0,
    };
    let mut platforms = Vec::new();
    if let Some(list) = &file.image.platforms {
        if list.get_ref().is_empty() {
            return Err(ctx.err(
                list,
                "platforms is empty: list at least one, e.g. [\"linux/amd64\"]",
            ));
        }
        for p in list.get_ref() {
            let parsed: Platform = p
                .get_ref()
                .parse()
                .map_err(|e: crate::oci::platform::PlatformParseError| ctx.err(p, e.to_string()))?;
            if platforms.contains(&parsed) {
                return Err(ctx.err(p, format!("platform {parsed} is listed twice")));
            }
            platforms.push(parsed);
        }
        platforms.sort();
    } else {
        platforms.push(Platform::linux("amd64"));
    }

    let base = parse_base(&ctx, &file.base, &dir)?;
    let apt = file
        .apt
        .as_ref()
        .map(|a| parse_apt(&ctx, a, &dir, &platforms))
        .transpose()?;
    if let Some(apt) = &apt {
        for p in &platforms {
            if p.debian_arch().is_none() {
                return Err(RecipeError::Invalid {
                    location: apt.loc.0.clone(),
                    message: format!("platform {p} has no Debian architecture; Debian packages can be installed for linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, linux/s390x, linux/riscv64"),
                });
            }
        }
    }

    let mut files = Vec::new();
    for f in &file.files {
        files.push(parse_file(&ctx, f, &dir)?);
    }
    let mut paths = Vec::new();
    for p in &file.paths {
        paths.push(parse_path(&ctx, p)?);
    }
    let (users, groups) = parse_accounts(&ctx, &file.accounts)?;
    let config = parse_config(&ctx, &file.config)?;
    for (k, v) in &file.annotations {
        if k.is_empty() {
            return Err(ctx.err(v, "an annotation key is empty"));
        }
        if let Some(why) = crate::oci::model::set_by_stele(k) {
            return Err(ctx.err(
                v,
                format!("[annotations] `{k}` is set by stele ({why}); remove it from the recipe"),
            ));
        }
    }
    let annotations: BTreeMap<String, String> = file
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.get_ref().clone()))
        .collect();
    // A label stele copies from an annotation may repeat it, but not
    // contradict it: the image would say two things about one fact.
    for (k, v) in &file.config.labels {
        if let Some(why) = crate::oci::model::set_by_stele(k) {
            return Err(ctx.err(
                v,
                format!("[config] label `{k}` is set by stele ({why}); remove it from the recipe"),
            ));
        }
        if let Some(a) = annotations
            .get(k)
            .filter(|_| crate::oci::model::COPIED_ANNOTATIONS.contains(&k.as_str()))
        {
            if a != v.get_ref() {
                return Err(ctx.err(
                    v,
                    format!("[config] label `{k}` is \"{}\" but [annotations] gives \"{a}\", which stele also writes as this label; remove the label or make them agree", v.get_ref()),
                ));
            }
        }
    }
    let canonical = crate::oci::json::to_canonical_vec(&file);
    let input_digest = Digest::of(&input_canonical(&file));
    Ok(Recipe {
        path: path.to_path_buf(),
        dir,
        name,
        tag,
        epoch,
        compression: file.image.compression,
        encoding: file.image.encoding,
        platforms,
        base,
        apt,
        files,
        paths,
        users,
        groups,
        config,
        annotations,
        sbom: file.image.sbom.unwrap_or(true),
        canonical,
        input_digest,
    })
}

/// When line `line` of `text` is `mode = DIGITS` (an integer, or what a
/// leading zero makes invalid TOML), the column of the value and the
/// message saying to write it as a string.
fn integer_mode(text: &str, line: usize) -> Option<(usize, String)> {
    let written = text.lines().nth(line.checked_sub(1)?)?;
    let (key, rest) = written.split_once('=')?;
    if key.trim() != "mode" {
        return None;
    }
    let value = rest.split('#').next()?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let col = key.len() + 1 + (rest.len() - rest.trim_start().len()) + 1;
    let octal = format!("{value:0>4}");
    Some((
        col,
        format!("mode = {value} is not a string: write mode as a string, \"{octal}\""),
    ))
}

/// A tag as registries and `docker load` accept it (distribution's
/// reference grammar: `[\w][\w.-]{0,127}`).
pub(crate) fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !tag.starts_with(['.', '-'])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        && name
            .split('/')
            .all(|c| !c.is_empty() && c.as_bytes()[0].is_ascii_alphanumeric())
}

fn split_pinned(
    ctx: &Ctx,
    s: &Spanned<String>,
    what: &str,
) -> Result<(String, Digest), RecipeError> {
    let v = s.get_ref();
    match v.rsplit_once('@') {
        Some((head, d)) => {
            let digest = d.parse::<Digest>().map_err(|e| ctx.err(s, format!("{what} `{v}`: {e}")))?;
            Ok((head.to_string(), digest))
        }
        None => Err(ctx.err(s, format!(
            "{what} `{v}` has no digest: pin it as `{v}@sha256:<digest>` (`skopeo inspect --format '{{{{.Digest}}}}'` or `stele pull` prints it), so the build cannot change when the tag moves"
        ))),
    }
}

fn parse_base(ctx: &Ctx, b: &BaseTable, dir: &Path) -> Result<BaseSpec, RecipeError> {
    let given = [b.scratch.is_some(), b.image.is_some(), b.layout.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if given > 1 {
        let s = b
            .image
            .as_ref()
            .or(b.layout.as_ref())
            .expect("at least two given");
        return Err(ctx.err(s, "[base] takes exactly one of scratch, image and layout"));
    }
    if let Some(s) = &b.scratch {
        if !s.get_ref() {
            return Err(ctx.err(s, "`scratch = false` says nothing: name a base with `image` or `layout`, or write `scratch = true`"));
        }
    }
    if let Some(i) = &b.image {
        let (reference, digest) = split_pinned(ctx, i, "base image")?;
        return Ok(BaseSpec::Image {
            reference,
            digest,
            loc: ctx.loc(i),
        });
    }
    if let Some(l) = &b.layout {
        let (p, digest) = split_pinned(ctx, l, "base layout")?;
        return Ok(BaseSpec::Layout {
            path: dir.join(&p),
            written: p,
            digest,
            loc: ctx.loc(l),
        });
    }
    Ok(BaseSpec::Scratch)
}

/// The `platforms` of a `{ name, platforms }` package entry: each parsed,
/// one of the recipe's, none twice; sorted so the order written does not
/// matter.
fn package_platforms(
    ctx: &Ctx,
    name: &str,
    list: &Spanned<Vec<Spanned<String>>>,
    recipe_platforms: &[Platform],
) -> Result<Vec<Platform>, RecipeError> {
    if list.get_ref().is_empty() {
        return Err(ctx.err(
            list,
            format!("package `{name}` has an empty platforms list: name at least one of the recipe's platforms, or write the package as a plain string to install it everywhere"),
        ));
    }
    let mut platforms = Vec::new();
    for p in list.get_ref() {
        let parsed: Platform = p
            .get_ref()
            .parse()
            .map_err(|e: crate::oci::platform::PlatformParseError| ctx.err(p, e.to_string()))?;
        if !recipe_platforms.contains(&parsed) {
            let built: Vec<String> = recipe_platforms.iter().map(|p| p.to_string()).collect();
            return Err(ctx.err(
                p,
                format!(
                    "package `{name}` names platform {parsed}, which the recipe does not build ([image] platforms is [{}]); add it there or remove it here",
                    built.join(", ")
                ),
            ));
        }
        if platforms.contains(&parsed) {
            return Err(ctx.err(
                p,
                format!("platform {parsed} is listed twice for package `{name}`"),
            ));
        }
        platforms.push(parsed);
    }
    platforms.sort();
    Ok(platforms)
}

fn parse_apt(
    ctx: &Ctx,
    a: &AptTable,
    dir: &Path,
    recipe_platforms: &[Platform],
) -> Result<AptSpec, RecipeError> {
    if a.sources.get_ref().is_empty() {
        return Err(ctx.err(
            &a.sources,
            "[apt] sources is empty: add e.g. { mirror = \"host\", suite = \"bookworm\" }",
        ));
    }
    let mut sources = Vec::new();
    for s in a.sources.get_ref() {
        let m = s.mirror.get_ref();
        let ok = m == "host"
            || m.starts_with("http://")
            || m.starts_with("https://")
            || m.starts_with("file://")
            || (!m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if !ok {
            return Err(ctx.err(&s.mirror, format!(
                "mirror `{m}` is not \"host\", an http(s):// URL, or a NAME (letters, digits, `_`) read from STELE_MIRROR_<NAME>"
            )));
        }
        let suite = s.suite.get_ref();
        if suite.is_empty() || suite.contains(['/', ' ']) && !suite.ends_with('/') {
            return Err(ctx.err(
                &s.suite,
                format!("suite `{suite}` is not a suite name such as bookworm"),
            ));
        }
        sources.push(AptSource {
            mirror: m.clone(),
            suite: suite.clone(),
            components: s.components.clone(),
            keyring: s.keyring.as_ref().map(|k| dir.join(k.get_ref())),
            loc: ctx.loc(&s.mirror),
        });
    }
    let mut packages: Vec<PackageRequest> = Vec::new();
    for entry in a.packages.get_ref() {
        let (name, only) = match entry.get_ref() {
            PackageEntry::Name(name) => (name, None),
            PackageEntry::Table(t) => (t.name.get_ref(), Some(&t.platforms)),
        };
        let base = name.split_once('=').map_or(name.as_str(), |(n, _)| n);
        let ok = base.len() >= 2
            && base
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.:".contains(&b));
        if !ok {
            let message = format!("`{name}` is not a Debian package name (lowercase letters, digits, `+`, `-`, `.`; optionally `=VERSION`)");
            return Err(match entry.get_ref() {
                PackageEntry::Table(t) => ctx.err(&t.name, message),
                PackageEntry::Name(_) => ctx.err(entry, message),
            });
        }
        let platforms = only
            .map(|list| package_platforms(ctx, name, list, recipe_platforms))
            .transpose()?;
        let request = PackageRequest {
            name: name.clone(),
            platforms,
        };
        // The same entry twice is a slip; `x` for amd64 and `x` for arm64
        // in two tables is what per-platform lists are for.
        if let Some(p) = recipe_platforms.iter().find(|p| {
            request.applies_to(p)
                && packages
                    .iter()
                    .any(|q| q.name == request.name && q.applies_to(p))
        }) {
            let message = if recipe_platforms.len() == 1 {
                format!("package `{name}` is listed twice")
            } else {
                format!("package `{name}` is listed twice for {p}")
            };
            return Err(ctx.err(entry, message));
        }
        packages.push(request);
    }
    let layers = match a.layers.as_ref().map(|l| l.get_ref().as_str()) {
        None | Some("single") => AptLayers::Single,
        Some("per-package") => AptLayers::PerPackage,
        Some(other) => {
            return Err(ctx.err(
                a.layers.as_ref().expect("some"),
                format!("layers = \"{other}\" is not known: use \"single\" or \"per-package\""),
            ));
        }
    };
    let mut alternatives = BTreeMap::new();
    for (name, path) in &a.alternatives {
        if name.is_empty() || name.contains(['/', ' ']) {
            return Err(ctx.err(
                path,
                format!("alternatives: `{name}` is not an alternative name such as \"java\""),
            ));
        }
        let p = path.get_ref();
        if !p.starts_with('/')
            || normalize_abs(p).ok().map(|k| format!("/{k}")).as_deref() != Some(p.as_str())
        {
            return Err(ctx.err(path, format!("alternatives: `{p}` for `{name}` is not a normalized absolute path, such as the one `update-alternatives --list {name}` prints")));
        }
        alternatives.insert(name.clone(), (p.clone(), ctx.loc(path)));
    }
    Ok(AptSpec {
        sources,
        packages,
        layers,
        alternatives,
        loc: ctx.loc(&a.sources),
    })
}

fn parse_mode(ctx: &Ctx, m: &Spanned<String>) -> Result<u32, RecipeError> {
    let v = m.get_ref();
    let digits = v.strip_prefix("0o").unwrap_or(v);
    match u32::from_str_radix(digits, 8) {
        Ok(n) if !digits.is_empty() && digits.len() <= 4 && n <= 0o7777 => Ok(n),
        _ => Err(ctx.err(m, format!("mode `{v}` is not an octal mode: write up to four octal digits as a string, e.g. \"0644\" or \"0755\""))),
    }
}

fn parse_owner(ctx: &Ctx, o: &Option<Spanned<String>>) -> Result<(u32, u32), RecipeError> {
    let Some(o) = o else { return Ok((0, 0)) };
    let v = o.get_ref();
    let parsed = v
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)));
    parsed.ok_or_else(|| ctx.err(o, format!("owner `{v}` is not numeric `uid:gid`, e.g. \"65532:65532\" (names are not looked up: the image's /etc/passwd is not read)")))
}

fn parse_dest(ctx: &Ctx, d: &Spanned<String>) -> Result<String, RecipeError> {
    normalize_abs(d.get_ref()).map_err(|e| ctx.err(d, e.to_string()))
}

fn parse_file(ctx: &Ctx, f: &FileTable, dir: &Path) -> Result<FileSpec, RecipeError> {
    let src_written = f.src.get_ref().clone();
    if src_written.is_empty() {
        return Err(ctx.err(
            &f.src,
            "src is empty: name a file or directory beside the recipe",
        ));
    }
    let rel = Path::new(&src_written);
    if rel.is_absolute() {
        return Err(ctx.err(&f.src, format!("src `{src_written}` is absolute: sources are relative to the recipe's folder ({}), so the recipe builds the same anywhere", dir.display())));
    }
    if rel
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ctx.err(&f.src, format!("src `{src_written}` climbs out of the recipe's folder with `..`: move the file beside the recipe")));
    }
    let src = dir.join(rel);
    if std::fs::symlink_metadata(&src).is_err() {
        return Err(ctx.err(
            &f.src,
            format!(
                "src `{src_written}` does not exist (looked for {})",
                src.display()
            ),
        ));
    }
    let dest = parse_dest(ctx, &f.dest)?;
    let mode = f.mode.as_ref().map(|m| parse_mode(ctx, m)).transpose()?;
    let owner = parse_owner(ctx, &f.owner)?;
    if let Some(first) = f.exclude.first() {
        if !src.is_dir() {
            return Err(ctx.err(
                first,
                format!("exclude applies to a folder, and src `{src_written}` is a file: remove exclude"),
            ));
        }
    }
    let mut exclude = Vec::new();
    for pattern in &f.exclude {
        let mut check = ignore::gitignore::GitignoreBuilder::new(&src);
        if let Err(e) = check.add_line(None, pattern.get_ref()) {
            return Err(ctx.err(
                pattern,
                format!(
                    "exclude pattern `{}` is not a gitignore pattern: {e}",
                    pattern.get_ref()
                ),
            ));
        }
        exclude.push(pattern.get_ref().clone());
    }
    Ok(FileSpec {
        src,
        src_written,
        dest,
        mode,
        owner,
        exclude,
        loc: ctx.loc(&f.src),
    })
}

fn parse_path(ctx: &Ctx, p: &PathTable) -> Result<PathSpec, RecipeError> {
    let key = parse_dest(ctx, &p.path)?;
    let kind_s = p.kind.get_ref().as_str();
    let wrong_extra = |what: &str, s: &Spanned<String>| {
        ctx.err(
            s,
            format!("`{what}` does not apply to kind = \"{kind_s}\": remove it"),
        )
    };
    let kind = match kind_s {
        "dir" | "absent" => {
            if let Some(c) = &p.content {
                return Err(wrong_extra("content", c));
            }
            if let Some(t) = &p.target {
                return Err(wrong_extra("target", t));
            }
            if kind_s == "dir" {
                PathKind::Dir
            } else {
                PathKind::Absent
            }
        }
        "file" => {
            if let Some(t) = &p.target {
                return Err(wrong_extra("target", t));
            }
            PathKind::File(
                p.content
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default(),
            )
        }
        "symlink" => {
            if let Some(c) = &p.content {
                return Err(wrong_extra("content", c));
            }
            match &p.target {
                Some(t) if !t.get_ref().is_empty() && !t.get_ref().contains('\0') => {
                    PathKind::Symlink(t.get_ref().clone())
                }
                Some(t) => return Err(ctx.err(t, "symlink target is empty")),
                None => return Err(ctx.err(&p.kind, "kind = \"symlink\" needs `target = \"...\"`")),
            }
        }
        other => {
            return Err(ctx.err(
                &p.kind,
                format!(
                    "kind `{other}` is not known: use \"dir\", \"file\", \"symlink\" or \"absent\""
                ),
            ));
        }
    };
    let mode = p.mode.as_ref().map(|m| parse_mode(ctx, m)).transpose()?;
    if let (Some(m), PathKind::Symlink(_) | PathKind::Absent) = (&p.mode, &kind) {
        return Err(wrong_extra("mode", m));
    }
    let owner = parse_owner(ctx, &p.owner)?;
    Ok(PathSpec {
        key,
        kind,
        mode,
        owner,
        loc: ctx.loc(&p.path),
    })
}

fn valid_account_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && !n.starts_with('-')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn parse_accounts(
    ctx: &Ctx,
    a: &AccountsTable,
) -> Result<(Vec<UserSpec>, Vec<GroupSpec>), RecipeError> {
    let mut users = Vec::new();
    for u in &a.users {
        let name = u.name.get_ref();
        if !valid_account_name(name) {
            return Err(ctx.err(
                &u.name,
                format!(
                    "user name `{name}` is not valid: letters, digits, `.`, `_`, `-`, at most 32"
                ),
            ));
        }
        if users.iter().any(|x: &UserSpec| &x.name == name) {
            return Err(ctx.err(&u.name, format!("user `{name}` is defined twice")));
        }
        if users.iter().any(|x: &UserSpec| x.uid == *u.uid.get_ref()) {
            return Err(ctx.err(
                &u.uid,
                format!("uid {} is used by two users", u.uid.get_ref()),
            ));
        }
        let uid = *u.uid.get_ref();
        if (name == "root") != (uid == 0) {
            return Err(ctx.err(
                &u.name,
                format!("user `{name}` with uid {uid}: uid 0 is root's and root's uid is 0; another pairing would take root's entry out of /etc/passwd, which tools that look up uid 0 or `root` rely on"),
            ));
        }
        let home = match &u.home {
            Some(h) => {
                normalize_abs(h.get_ref()).map_err(|e| ctx.err(h, e.to_string()))?;
                h.get_ref().clone()
            }
            None => format!("/home/{name}"),
        };
        let shell = u.shell.clone().unwrap_or_else(|| "/sbin/nologin".into());
        if shell.contains([':', '\n']) || home.contains([':', '\n']) {
            return Err(ctx.err(&u.name, "home and shell may not contain `:` or newlines"));
        }
        users.push(UserSpec {
            name: name.clone(),
            uid: *u.uid.get_ref(),
            gid: u.gid.unwrap_or(*u.uid.get_ref()),
            home,
            shell,
        });
    }
    let mut groups = Vec::new();
    for g in &a.groups {
        let name = g.name.get_ref();
        if !valid_account_name(name) {
            return Err(ctx.err(
                &g.name,
                format!(
                    "group name `{name}` is not valid: letters, digits, `.`, `_`, `-`, at most 32"
                ),
            ));
        }
        let gid = *g.gid.get_ref();
        if (name == "root") != (gid == 0) {
            return Err(ctx.err(
                &g.name,
                format!("group `{name}` with gid {gid}: gid 0 is root's and root's gid is 0; another pairing would take root's entry out of /etc/group"),
            ));
        }
        if groups.iter().any(|x: &GroupSpec| &x.name == name) {
            return Err(ctx.err(&g.name, format!("group `{name}` is defined twice")));
        }
        if groups.iter().any(|x: &GroupSpec| x.gid == *g.gid.get_ref()) {
            return Err(ctx.err(
                &g.gid,
                format!("gid {} is used by two groups", g.gid.get_ref()),
            ));
        }
        for m in &g.members {
            if !valid_account_name(m) {
                return Err(ctx.err(
                    &g.name,
                    format!("group member `{m}` is not a valid user name"),
                ));
            }
        }
        groups.push(GroupSpec {
            name: name.clone(),
            gid: *g.gid.get_ref(),
            members: g.members.clone(),
        });
    }
    Ok((users, groups))
}

fn parse_config(ctx: &Ctx, c: &ConfigTable) -> Result<ConfigSpec, RecipeError> {
    for (k, v) in &c.env {
        if k.is_empty() || k.contains('=') {
            return Err(ctx.err(
                v,
                format!("[config] env key `{k}` is not a variable name (non-empty, no `=`)"),
            ));
        }
    }
    let workdir = match &c.workdir {
        Some(w) if !w.get_ref().starts_with('/') => {
            return Err(ctx.err(
                w,
                format!(
                    "workdir `{}` must be absolute, e.g. \"/{}\"",
                    w.get_ref(),
                    w.get_ref()
                ),
            ));
        }
        Some(w) => Some(w.get_ref().clone()),
        None => None,
    };
    let mut exposed_ports = Vec::new();
    for p in &c.exposed_ports {
        let v = p.get_ref();
        let (port, proto) = v.split_once('/').unwrap_or((v, "tcp"));
        let ok =
            port.parse::<u16>().is_ok_and(|n| n > 0) && ["tcp", "udp", "sctp"].contains(&proto);
        if !ok {
            return Err(ctx.err(p, format!("exposed port `{v}` is not PORT/PROTOCOL, e.g. \"8080/tcp\" (protocol tcp, udp or sctp)")));
        }
        let norm = format!("{port}/{proto}");
        if !exposed_ports.contains(&norm) {
            exposed_ports.push(norm);
        }
    }
    exposed_ports.sort();
    let mut volumes = Vec::new();
    for v in &c.volumes {
        if !v.get_ref().starts_with('/') {
            return Err(ctx.err(
                v,
                format!("volume `{}` must be an absolute path", v.get_ref()),
            ));
        }
        volumes.push(v.get_ref().clone());
    }
    volumes.sort();
    volumes.dedup();
    if let Some(u) = &c.user {
        if u.get_ref().is_empty() || u.get_ref().contains(char::is_whitespace) {
            return Err(ctx.err(
                u,
                "user must be `uid`, `uid:gid`, `name` or `name:group`, without spaces",
            ));
        }
    }
    if let Some(s) = &c.stop_signal {
        let v = s.get_ref();
        let ok = v.parse::<u32>().is_ok()
            || (v.starts_with("SIG")
                && v.len() > 3
                && v[3..].bytes().all(|b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-'
                }));
        if !ok {
            return Err(ctx.err(
                s,
                format!("stop_signal `{v}` is not a signal: write e.g. \"SIGTERM\" or \"15\""),
            ));
        }
    }
    Ok(ConfigSpec {
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        env: c
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect(),
        workdir,
        user: c.user.as_ref().map(|u| u.get_ref().clone()),
        user_loc: c.user.as_ref().map(|u| ctx.loc(u)),
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect(),
        exposed_ports,
        volumes,
        stop_signal: c.stop_signal.as_ref().map(|s| s.get_ref().clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(text: &str) -> String {
        parse(Path::new("r.toml"), text, None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn errors_name_location_and_fix() {
        let e = err_of("[image]\nname = \"x\"\nbogus = 1\n");
        assert!(e.starts_with("r.toml:3:1: unknown field `bogus`"), "{e}");
        let e = err_of("[image]\nname = 5\n");
        assert!(e.starts_with("r.toml:2:8:"), "{e}");
        let e = err_of("[image]\nname = \"x\"\n[[paths]]\npath = \"tmp\"\nkind = \"dir\"\n");
        assert!(
            e.starts_with("r.toml:4:8:") && e.contains("not an absolute path"),
            "{e}"
        );
        let e = err_of(
            "[image]\nname = \"x\"\n[[paths]]\npath = \"/tmp\"\nkind = \"dir\"\nmode = \"999\"\n",
        );
        assert!(e.contains("octal"), "{e}");
        let e = err_of("[image]\nname = \"x\"\n[base]\nimage = \"reg.example/a:1\"\n");
        assert!(e.contains("has no digest"), "{e}");
        for (written, fix) in [
            ("0755", "\"0755\""),
            ("755", "\"0755\""),
            ("600", "\"0600\""),
        ] {
            let e = err_of(&format!(
                "[image]\nname = \"x\"\n[[paths]]\npath = \"/a\"\nkind = \"dir\"\nmode = {written}\n"
            ));
            assert_eq!(
                e,
                format!(
                    "r.toml:6:8: mode = {written} is not a string: write mode as a string, {fix}"
                )
            );
        }
    }

    #[test]
    fn values_other_tools_cannot_read_are_refused_at_their_line() {
        let e = err_of("[image]\nname = \"x\"\nepoch = 253402300800\n");
        assert!(
            e.starts_with("r.toml:3:") && e.contains("past the year 9999"),
            "{e}"
        );
        assert!(parse(
            Path::new("r.toml"),
            "[image]\nname = \"x\"\nepoch = 253402300799\n",
            None
        )
        .is_ok());
        let e = parse(
            Path::new("r.toml"),
            "[image]\nname = \"x\"\n",
            Some(u64::MAX),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("SOURCE_DATE_EPOCH"), "{e}");
        for (accounts, line) in [
            ("[[accounts.users]]\nname = \"root\"\nuid = 1000\n", 4),
            ("[[accounts.users]]\nname = \"admin\"\nuid = 0\n", 4),
            ("[[accounts.groups]]\nname = \"root\"\ngid = 5\n", 4),
            ("[[accounts.groups]]\nname = \"wheel\"\ngid = 0\n", 4),
        ] {
            let e = err_of(&format!("[image]\nname = \"x\"\n{accounts}"));
            assert!(
                e.starts_with(&format!("r.toml:{line}:")) && e.contains("root's"),
                "{e}"
            );
        }
        assert!(parse(
            Path::new("r.toml"),
            "[image]\nname = \"x\"\n[[accounts.users]]\nname = \"root\"\nuid = 0\n",
            None
        )
        .is_ok());
        for key in ["\"\"", "\"A=B\""] {
            let e = err_of(&format!(
                "[image]\nname = \"x\"\n[config]\nenv = {{ OK = \"1\", {key} = \"v\" }}\n"
            ));
            assert!(
                e.starts_with("r.toml:4:") && e.contains("not a variable name"),
                "{e}"
            );
        }
        let e = err_of("[image]\nname = \"x\"\n[annotations]\n\"\" = \"v\"\n");
        assert!(e.starts_with("r.toml:4:") && e.contains("empty"), "{e}");
    }

    #[test]
    fn a_recipe_that_is_not_utf8_is_named_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(&path, b"[image]\nname = \"x\"\n# caf\xe9\n").unwrap();
        let e = load(&path, None).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:3:6:", path.display())) && e.contains("not UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn keys_stele_sets_are_refused_at_their_line() {
        let e = err_of("[image]\nname = \"x\"\n[config]\nlabels = { \"dev.stele.recipe.digest\" = \"sha256:0\" }\n");
        assert!(
            e.starts_with("r.toml:4:") && e.contains("set by stele"),
            "{e}"
        );
        let e = err_of("[image]\nname = \"x\"\n[annotations]\n\"org.opencontainers.image.created\" = \"2020\"\n");
        assert!(
            e.starts_with("r.toml:4:") && e.contains("from the epoch"),
            "{e}"
        );
        let e = err_of("[image]\nname = \"x\"\n[config]\nlabels = { \"org.opencontainers.image.source\" = \"a\" }\n[annotations]\n\"org.opencontainers.image.source\" = \"b\"\n");
        assert!(
            e.starts_with("r.toml:4:") && e.contains("make them agree"),
            "{e}"
        );
        let same = "[image]\nname = \"x\"\n[config]\nlabels = { \"org.opencontainers.image.source\" = \"a\" }\n[annotations]\n\"org.opencontainers.image.source\" = \"a\"\n";
        let r = parse(Path::new("r.toml"), same, None).unwrap();
        // Spanned values serialize as the bare value: the canonical recipe
        // (and so every recipe digest) is what it was before they were spanned.
        let canonical = String::from_utf8(r.canonical).unwrap();
        assert!(
            canonical.contains(r#""labels":{"org.opencontainers.image.source":"a"}"#),
            "{canonical}"
        );
    }

    #[test]
    fn sbom_is_on_by_default_and_only_a_written_value_enters_the_digest() {
        let plain = parse(Path::new("r.toml"), "[image]\nname = \"x\"\n", None).unwrap();
        let on = parse(
            Path::new("r.toml"),
            "[image]\nname = \"x\"\nsbom = true\n",
            None,
        )
        .unwrap();
        let off = parse(
            Path::new("r.toml"),
            "[image]\nname = \"x\"\nsbom = false\n",
            None,
        )
        .unwrap();
        assert!(plain.sbom && on.sbom && !off.sbom);
        assert!(!String::from_utf8_lossy(&plain.canonical).contains("sbom"));
        assert_ne!(plain.digest(), off.digest());
    }

    #[test]
    fn input_digest_leaves_out_where_packages_come_from() {
        let recipe = |mirror: &str, keyring: &str, suite: &str| {
            let text = format!("[image]\nname = \"x\"\n[apt]\nsources = [{{ mirror = \"{mirror}\", suite = \"{suite}\", keyring = \"{keyring}\" }}]\npackages = [\"hello\"]\n");
            parse(Path::new("r.toml"), &text, None).unwrap()
        };
        let a = recipe("host", "k.gpg", "stable");
        let b = recipe("http://127.0.0.1:1", "other.gpg", "stable");
        let c = recipe("host", "k.gpg", "testing");
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.input_digest(), b.input_digest());
        assert_ne!(a.input_digest(), c.input_digest());
    }

    fn two_platforms(packages: &str) -> String {
        format!("[image]\nname = \"x\"\nplatforms = [\"linux/arm64\", \"linux/amd64\"]\n[apt]\nsources = [{{ mirror = \"host\", suite = \"bookworm\" }}]\npackages = {packages}\n")
    }

    #[test]
    fn packages_can_be_limited_to_some_platforms() {
        let text = two_platforms(
            "[\"base-files\", { name = \"libx=1\", platforms = [\"linux/arm64\"] }, { name = \"libx=2\", platforms = [\"linux/amd64\"] }]",
        );
        let r = parse(Path::new("r.toml"), &text, None).unwrap();
        let apt = r.apt.as_ref().unwrap();
        let amd64 = Platform::linux("amd64");
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(apt.packages_for(&amd64), ["base-files", "libx=2"]);
        assert_eq!(apt.packages_for(&arm64), ["base-files", "libx=1"]);
        // Written back as written: strings stay strings.
        let canonical = String::from_utf8(r.canonical.clone()).unwrap();
        assert!(
            canonical.contains(
                r#""packages":["base-files",{"name":"libx=1","platforms":["linux/arm64"]}"#
            ),
            "{canonical}"
        );

        // Which platforms an entry has is part of what resolves, so of
        // the lock's staleness digest; a plain list keeps the digest it
        // had before tables existed.
        let digest = |packages: &str| {
            let r = parse(Path::new("r.toml"), &two_platforms(packages), None).unwrap();
            crate::apt::locking::resolution_digest(&r, r.apt.as_ref().unwrap())
        };
        let everywhere = digest("[\"a1\", \"b1\"]");
        let on_amd64 = digest("[\"a1\", { name = \"b1\", platforms = [\"linux/amd64\"] }]");
        let on_arm64 = digest("[\"a1\", { name = \"b1\", platforms = [\"linux/arm64\"] }]");
        let on_both =
            digest("[\"a1\", { name = \"b1\", platforms = [\"linux/arm64\", \"linux/amd64\"] }]");
        let on_both_reordered =
            digest("[\"a1\", { name = \"b1\", platforms = [\"linux/amd64\", \"linux/arm64\"] }]");
        assert_ne!(on_amd64, on_arm64);
        assert_ne!(everywhere, on_amd64);
        assert_eq!(on_both, on_both_reordered);
        let inputs = serde_json::json!({
            "sources": [{ "suite": "bookworm", "components": ["main"] }],
            "packages": ["a1", "b1"],
            "platforms": ["linux/amd64", "linux/arm64"],
        });
        assert_eq!(
            everywhere,
            Digest::of(&crate::oci::json::to_canonical_vec(&inputs))
        );
    }

    #[test]
    fn package_platforms_are_checked_at_their_line() {
        let e = err_of(&two_platforms(
            "[\"a1\",\n  { name = \"b1\", platforms = [\"linux/s390x\"] }]",
        ));
        assert!(
            e.starts_with("r.toml:7:31: package `b1` names platform linux/s390x, which the recipe does not build ([image] platforms is [linux/amd64, linux/arm64])"),
            "{e}"
        );
        let e = err_of(&two_platforms("[{ name = \"b1\", platforms = [] }]"));
        assert!(
            e.starts_with("r.toml:6:40: package `b1` has an empty platforms list"),
            "{e}"
        );
        let e = err_of(&two_platforms(
            "[{ name = \"b1\", platforms = [\"linux/amd64\", \"linux/amd64\"] }]",
        ));
        assert!(
            e.contains("platform linux/amd64 is listed twice for package `b1`"),
            "{e}"
        );
        let e = err_of(&two_platforms(
            "[\"b1\", { name = \"b1\", platforms = [\"linux/arm64\"] }]",
        ));
        assert!(
            e.starts_with("r.toml:6:19: package `b1` is listed twice for linux/arm64"),
            "{e}"
        );
        let e = err_of(&two_platforms(
            "[{ name = \"B\", platforms = [\"linux/arm64\"] }]",
        ));
        assert!(
            e.starts_with("r.toml:6:22: `B` is not a Debian package name"),
            "{e}"
        );
        let e = err_of(&two_platforms("[{ name = \"b1\", arch = \"arm64\" }]"));
        assert!(e.contains("unknown field `arch`"), "{e}");
        let e = err_of(&two_platforms("[5]"));
        assert!(e.contains("a package name, or a table"), "{e}");
    }

    #[test]
    fn canonical_ignores_formatting() {
        let a = parse(
            Path::new("r.toml"),
            "[image]\nname = \"x\"\nepoch = 5\n",
            None,
        )
        .unwrap();
        let b = parse(
            Path::new("r.toml"),
            "# note\n[image]\nepoch   = 5\nname = 'x'\n",
            None,
        )
        .unwrap();
        assert_eq!(a.digest(), b.digest());
    }
}
