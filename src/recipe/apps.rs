//! `[python]` and `[node]`: application packages from their ecosystems'
//! own lockfiles. The tables as written, their checks, and the lockfiles'
//! digests, which are part of the canonical recipe (another lock is
//! another input, even when the recipe text is the same).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::load::Ctx;
use super::{Loc, RecipeError};
use crate::fstree::normalize_abs;
use crate::oci::Digest;

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PythonTable {
    /// Required: the PEP 751 lock (`pylock.toml`, as `uv pip compile
    /// --format pylock.toml --universal` or `pip lock` write it), relative
    /// to the recipe.
    #[schemars(with = "String")]
    pub lock: Spanned<String>,
    /// Optional: install into a virtual environment at this absolute
    /// path (made as `python3 -m venv --without-pip` makes it) instead of
    /// `/usr/local/lib/python3.X/dist-packages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub venv: Option<Spanned<String>>,
    /// Optional: the interpreter's version (`3.11.2`) when no python3.X
    /// package is in `[apt]` (a base image's python3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub interpreter: Option<Spanned<String>>,
    /// Optional: the image's glibc version (`2.36`) when no libc6 package
    /// is in `[apt]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub glibc: Option<Spanned<String>>,
    /// Optional (default none): the lock's extras to install.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<String>,
    /// Optional (default: the lock's `default-groups`): dependency groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Optional: the package index to download from instead of the
    /// lock's URLs (else pip's configuration: PIP_INDEX_URL, pip.conf
    /// `index-url`). A location, not part of the image's inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub index: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct NodeTable {
    /// Required: npm's lock (`package-lock.json`, lockfileVersion 2 or
    /// 3), relative to the recipe.
    #[schemars(with = "String")]
    pub lock: Spanned<String>,
    /// Required: the absolute path of the project in the image; packages
    /// go into its `node_modules`.
    #[schemars(with = "String")]
    pub dest: Spanned<String>,
    /// Optional (default false): install devDependencies too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<bool>,
    /// Optional: packages with install scripts to install without running
    /// them (as `npm ci --ignore-scripts`); any other package with install
    /// scripts is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_scripts: Vec<String>,
    /// Optional: the registry to download from (else npm's configuration:
    /// `npm_config_registry`, .npmrc `registry=`). A location, not part
    /// of the image's inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub registry: Option<Spanned<String>>,
}

/// `[python]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonSpec {
    pub lock: PathBuf,
    /// The lock's path as written, for messages and provenance.
    pub lock_written: String,
    /// sha256 of the lock file as read with the recipe.
    pub lock_digest: Digest,
    /// The venv's image path (no leading `/`), if any.
    pub venv: Option<String>,
    /// `interpreter`, when given.
    pub python: Option<String>,
    /// `glibc`, when given.
    pub glibc: Option<(u32, u32)>,
    pub extras: BTreeSet<String>,
    pub groups: Option<BTreeSet<String>>,
    pub index: Option<String>,
    pub loc: Loc,
}

/// `[node]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub lock: PathBuf,
    pub lock_written: String,
    pub lock_digest: Digest,
    /// The project's image path, no leading `/`.
    pub dest: String,
    pub dev: bool,
    pub skip_scripts: BTreeSet<String>,
    pub registry: Option<String>,
    pub loc: Loc,
}

/// Reads `lock` (relative to `dir`) and hashes it, or names the recipe
/// line and how to write one.
fn lock_digest(
    ctx: &Ctx,
    lock: &Spanned<String>,
    dir: &Path,
    how: &str,
) -> Result<(PathBuf, Digest), RecipeError> {
    let path = dir.join(lock.get_ref());
    let bytes = crate::apps::read_input(&path, crate::apps::LOCK_LIMIT).map_err(|e| {
        ctx.err(
            lock,
            format!(
                "cannot read the lock `{}` ({}): {e}; {how}",
                lock.get_ref(),
                path.display()
            ),
        )
    })?;
    Ok((path, Digest::of(&bytes)))
}

fn image_dir(ctx: &Ctx, s: &Spanned<String>, what: &str) -> Result<String, RecipeError> {
    let v = s.get_ref();
    match normalize_abs(v) {
        Ok(k) if v.starts_with('/') && !k.is_empty() => Ok(k),
        _ => Err(ctx.err(
            s,
            format!("{what} `{v}` is not an absolute path below / such as \"/app\""),
        )),
    }
}

fn url(ctx: &Ctx, s: &Option<Spanned<String>>, what: &str) -> Result<Option<String>, RecipeError> {
    let Some(s) = s else { return Ok(None) };
    let v = s.get_ref();
    if !(v.starts_with("https://") || v.starts_with("http://")) {
        return Err(ctx.err(s, format!("{what} `{v}` is not an http(s):// URL")));
    }
    Ok(Some(v.trim_end_matches('/').to_string()))
}

pub(super) fn parse_python(
    ctx: &Ctx,
    t: &PythonTable,
    dir: &Path,
) -> Result<PythonSpec, RecipeError> {
    let (lock, lock_digest) = lock_digest(
        ctx,
        &t.lock,
        dir,
        "write it with `uv pip compile --format pylock.toml --universal requirements.in -o pylock.toml` (or `pip lock`)",
    )?;
    let venv = t
        .venv
        .as_ref()
        .map(|v| image_dir(ctx, v, "venv"))
        .transpose()?;
    let python = match &t.interpreter {
        Some(s) => {
            let v = s.get_ref();
            let ok = v.split('.').count() >= 2 && v.split('.').all(|p| p.parse::<u32>().is_ok());
            if !ok || !v.starts_with("3.") {
                return Err(ctx.err(
                    s,
                    format!("interpreter `{v}` is not a Python 3 version such as \"3.11.2\""),
                ));
            }
            Some(v.clone())
        }
        None => None,
    };
    let glibc = match &t.glibc {
        Some(s) => {
            let v = s.get_ref();
            let parsed = v
                .split_once('.')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                .filter(|(a, _)| *a == 2);
            Some(parsed.ok_or_else(|| {
                ctx.err(s, format!("glibc `{v}` is not a glibc version such as \"2.36\" (`ldd --version` in the image prints it)"))
            })?)
        }
        None => None,
    };
    Ok(PythonSpec {
        lock,
        lock_written: t.lock.get_ref().clone(),
        lock_digest,
        venv,
        python,
        glibc,
        extras: t.extras.iter().cloned().collect(),
        groups: t.groups.as_ref().map(|g| g.iter().cloned().collect()),
        index: url(ctx, &t.index, "index")?,
        loc: ctx.loc(&t.lock),
    })
}

pub(super) fn parse_node(ctx: &Ctx, t: &NodeTable, dir: &Path) -> Result<NodeSpec, RecipeError> {
    let (lock, lock_digest) = lock_digest(
        ctx,
        &t.lock,
        dir,
        "write it with `npm install --package-lock-only` in the project",
    )?;
    Ok(NodeSpec {
        lock,
        lock_written: t.lock.get_ref().clone(),
        lock_digest,
        dest: image_dir(ctx, &t.dest, "dest")?,
        dev: t.dev.unwrap_or(false),
        skip_scripts: t.skip_scripts.iter().cloned().collect(),
        registry: url(ctx, &t.registry, "registry")?,
        loc: ctx.loc(&t.lock),
    })
}

/// Writes each lockfile's digest into the recipe document as
/// `lock-sha256`, beside the lock's path.
pub(super) fn record_lock_digests(
    doc: &mut serde_json::Value,
    python: Option<&PythonSpec>,
    node: Option<&NodeSpec>,
) {
    let digests = [
        ("python", python.map(|p| &p.lock_digest)),
        ("node", node.map(|n| &n.lock_digest)),
    ];
    for (table, digest) in digests {
        if let (Some(d), Some(t)) = (digest, doc.get_mut(table).and_then(|t| t.as_object_mut())) {
            t.insert("lock-sha256".into(), d.to_string().into());
        }
    }
}
