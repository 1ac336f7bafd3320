//! Reading a recipe file: UTF-8 and TOML errors at their line and column
//! with the fix; the `[image]` table, `[annotations]` and the labels stele
//! also sets checked here, the other tables handed to `validate`; the
//! `Recipe` assembled.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::canonical::input_canonical_value;
use super::schema::RecipeFile;
use super::validate::{
    parse_accounts, parse_apt, parse_base, parse_config, parse_file, parse_layers, parse_path,
};
use super::{Loc, Recipe, RecipeError};
use crate::oci::{Digest, Platform};

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

/// What an error needs to name a place in the recipe.
pub(super) struct Ctx<'a> {
    shown: String,
    text: &'a str,
}

impl Ctx<'_> {
    pub fn loc<T>(&self, s: &Spanned<T>) -> Loc {
        let (l, c) = line_col(self.text, s.span().start);
        Loc(format!("{}:{}:{}", self.shown, l, c))
    }
    pub fn err<T>(&self, s: &Spanned<T>, message: impl Into<String>) -> RecipeError {
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
    let mut apt = file
        .apt
        .as_ref()
        .map(|a| parse_apt(&ctx, a, &dir, &platforms))
        .transpose()?;
    if let Some(layers) = &file.image.layers {
        let written = file.apt.as_ref().and_then(|a| a.layers.as_ref());
        parse_layers(&ctx, layers, apt.as_mut(), written)?;
    }
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
    let python = file
        .python
        .as_ref()
        .map(|t| super::apps::parse_python(&ctx, t, &dir))
        .transpose()?;
    let node = file
        .node
        .as_ref()
        .map(|t| super::apps::parse_node(&ctx, t, &dir))
        .transpose()?;
    // The lockfiles' digests are part of the recipe: another lock is
    // another input.
    let mut doc = serde_json::to_value(&file).expect("a recipe serializes");
    super::apps::record_lock_digests(&mut doc, python.as_ref(), node.as_ref());
    let canonical = crate::oci::json::to_canonical_vec(&doc);
    let input_digest = Digest::of(&input_canonical_value(doc));
    Ok(Recipe {
        path: path.to_path_buf(),
        context: dir.clone(),
        dir,
        name,
        tag,
        epoch,
        compression: file.image.compression,
        encoding: file.image.encoding,
        platforms,
        base,
        apt,
        python,
        node,
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
