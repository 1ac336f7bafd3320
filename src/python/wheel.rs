//! A wheel installed as the binary distribution format specification
//! says, without running anything: its `RECORD` checked against every
//! file, the root into purelib or platlib (`Root-Is-Purelib`), each
//! `.data/<key>/` directory into the scheme's path for that key, scripts'
//! `#!python` lines pointed at the image's interpreter, a launcher for
//! each console and GUI entry point, and `.dist-info` completed with
//! `INSTALLER` and a `RECORD` of what was installed. No `.pyc` is
//! written: compiling Python needs the image's own interpreter.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::Digest as _;

use super::pylock::{normalize, ChosenWheel};
use super::PythonError;
use crate::apps::archive::Unpacked;
use crate::fstree::{Content, FsTree, Node};

/// Where an installation's files go (sysconfig's scheme keys), as image
/// paths without the leading `/`, and the interpreter scripts name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheme {
    pub purelib: String,
    pub platlib: String,
    pub scripts: String,
    /// Headers go into `<headers>/<distribution name>`.
    pub headers: String,
    pub data: String,
    /// The absolute path a script's `#!` line names.
    pub interpreter: String,
}

impl Scheme {
    /// Debian's interpreter with pip's default for it: `/usr/local`.
    pub fn debian(version: (u32, u32)) -> Scheme {
        let (major, minor) = version;
        Scheme {
            purelib: format!("usr/local/lib/python{major}.{minor}/dist-packages"),
            platlib: format!("usr/local/lib/python{major}.{minor}/dist-packages"),
            scripts: "usr/local/bin".into(),
            headers: format!("usr/local/include/python{major}.{minor}"),
            data: "usr/local".into(),
            interpreter: format!("/usr/bin/python{major}"),
        }
    }

    /// A virtual environment at `root` (an image path without the `/`),
    /// as `python3 -m venv` lays it out on Linux.
    pub fn venv(root: &str, version: (u32, u32)) -> Scheme {
        let (major, minor) = version;
        Scheme {
            purelib: format!("{root}/lib/python{major}.{minor}/site-packages"),
            platlib: format!("{root}/lib/python{major}.{minor}/site-packages"),
            scripts: format!("{root}/bin"),
            headers: format!("{root}/include/site/python{major}.{minor}"),
            data: root.to_string(),
            interpreter: format!("/{root}/bin/python"),
        }
    }
}

/// What installing one wheel left.
pub struct InstalledWheel {
    pub tree: FsTree,
    /// The `.dist-info` folder's image path.
    pub dist_info: String,
}

/// RECORD, WHEEL and entry points are small text files.
const METADATA_LIMIT: u64 = 16 << 20;

fn read_text(wheel: &Unpacked, path: &str, label: &str) -> Result<Option<String>, PythonError> {
    let Some(entry) = wheel.file(path) else {
        return Ok(None);
    };
    let content = wheel.content(entry).expect("a file entry");
    if content.size() > METADATA_LIMIT {
        return Err(PythonError::Wheel {
            package: label.into(),
            message: format!("{path} is larger than {METADATA_LIMIT} bytes"),
        });
    }
    let bytes = content.read_all().map_err(|e| PythonError::Wheel {
        package: label.into(),
        message: format!("reading {path}: {e}"),
    })?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| PythonError::Wheel {
            package: label.into(),
            message: format!("{path} is not UTF-8"),
        })
}

/// One CSV line of RECORD, with the quoting Python's csv module writes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn csv_quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn record_hash(digest_bytes: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest_bytes)
    )
}

/// `to` relative to the folder `from` (both image keys).
fn relative(from: &str, to: &str) -> String {
    let f: Vec<&str> = from.split('/').collect();
    let t: Vec<&str> = to.split('/').collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = std::iter::repeat("..").take(f.len() - common).collect();
    parts.extend(&t[common..]);
    parts.join("/")
}

/// Checks one archive file against its RECORD line.
fn check_hash(
    wheel: &Unpacked,
    path: &str,
    recorded: Option<&(String, String)>,
    label: &str,
) -> Result<(), PythonError> {
    let err = |message: String| PythonError::Wheel {
        package: label.into(),
        message,
    };
    let Some((hash, size)) = recorded else {
        return Err(err(format!(
            "{path} is not listed in RECORD; the spec refuses a wheel with unlisted files"
        )));
    };
    let entry = wheel.file(path).expect("a file entry");
    let content = wheel.content(entry).expect("a file entry");
    if !size.is_empty() && size.parse::<u64>().ok() != Some(content.size()) {
        return Err(err(format!(
            "{path} is {} bytes, RECORD says {size}",
            content.size()
        )));
    }
    let (algorithm, value) = hash
        .split_once('=')
        .ok_or_else(|| err(format!("{path} has no hash in RECORD")))?;
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| err(format!("{path}'s RECORD hash is not base64")))?;
    let found: Vec<u8> = match algorithm {
        "sha256" => hex::decode(content.digest().hex()).expect("a digest is hex"),
        "sha384" | "sha512" => {
            let bytes = content
                .read_all()
                .map_err(|e| err(format!("reading {path}: {e}")))?;
            if algorithm == "sha384" {
                sha2::Sha384::digest(&bytes).to_vec()
            } else {
                sha2::Sha512::digest(&bytes).to_vec()
            }
        }
        other => {
            return Err(err(format!(
                "{path}'s RECORD hash is {other}; the spec allows sha256 or stronger"
            )))
        }
    };
    if found != expected {
        return Err(err(format!(
            "{path} does not match its RECORD hash: the wheel is damaged or was altered"
        )));
    }
    Ok(())
}

/// A console script's launcher: imports the entry point and exits with
/// what it returns, as installers' launchers do.
fn launcher(interpreter: &str, name: &str, target: &str) -> Result<String, String> {
    let target = target.split('[').next().unwrap_or(target).trim();
    let (module, attr) = target
        .split_once(':')
        .map(|(m, a)| (m.trim(), a.trim()))
        .ok_or_else(|| format!("entry point {name} = {target} is not `module:function`"))?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                !p.is_empty()
                    && p.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && !p.starts_with(|c: char| c.is_ascii_digit())
            })
    };
    if !valid(module) || !valid(attr) {
        return Err(format!(
            "entry point {name} = {target} is not `module:function`"
        ));
    }
    let head = attr.split('.').next().expect("non-empty");
    Ok(format!(
        "#!{interpreter}\n# -*- coding: utf-8 -*-\n# Launcher of the entry point {name} = {module}:{attr}, written by stele.\nimport sys\nfrom {module} import {head}\nif __name__ == \"__main__\":\n    sys.exit({attr}())\n"
    ))
}

/// The `[console_scripts]` and `[gui_scripts]` of entry_points.txt.
fn entry_points(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if section == "console_scripts" || section == "gui_scripts" {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    out
}

/// Installs `wheel` (the archive of `chosen`) into a tree of its own.
pub fn install(
    wheel: &Unpacked,
    chosen: &ChosenWheel,
    scheme: &Scheme,
    epoch: u64,
) -> Result<InstalledWheel, PythonError> {
    let label = format!("{} {}", chosen.name, chosen.version);
    let err = |message: String| PythonError::Wheel {
        package: label.clone(),
        message: format!("{}: {message}", chosen.file),
    };
    // The one `.dist-info` folder at the root, named for this package.
    let mut dist_infos: Vec<&str> = wheel
        .entries()
        .iter()
        .filter_map(|e| e.path.split('/').next())
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    dist_infos.sort();
    dist_infos.dedup();
    let [dist_info] = dist_infos.as_slice() else {
        return Err(err(format!(
            "it must hold exactly one .dist-info folder, it holds {}",
            dist_infos.len()
        )));
    };
    let stem = dist_info.trim_end_matches(".dist-info");
    let dist_name = stem.split('-').next().unwrap_or(stem);
    if normalize(dist_name) != normalize(&chosen.name) {
        return Err(err(format!(
            "its metadata folder {dist_info} is not for {}",
            chosen.name
        )));
    }
    let data_dir = format!("{stem}.data");
    let wheel_meta = read_text(wheel, &format!("{dist_info}/WHEEL"), &label)?
        .ok_or_else(|| err(format!("{dist_info}/WHEEL is missing")))?;
    let field = |name: &str| {
        wheel_meta.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let wheel_version = field("Wheel-Version").unwrap_or_default();
    if wheel_version.split('.').next() != Some("1") {
        return Err(err(format!(
            "Wheel-Version {wheel_version}: this stele installs version 1 wheels only"
        )));
    }
    let purelib_root = field("Root-Is-Purelib").map_or(true, |v| v.eq_ignore_ascii_case("true"));
    let record_path = format!("{dist_info}/RECORD");
    let record_text = read_text(wheel, &record_path, &label)?
        .ok_or_else(|| err(format!("{record_path} is missing")))?;
    let mut recorded: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in record_text.lines().filter(|l| !l.trim().is_empty()) {
        let f = csv_fields(line);
        let path = crate::apps::archive::clean_path(&f[0]).ok_or_else(|| {
            err(format!(
                "RECORD lists `{}`, not a path inside the wheel",
                f[0]
            ))
        })?;
        recorded.insert(
            path,
            (
                f.get(1).cloned().unwrap_or_default(),
                f.get(2).cloned().unwrap_or_default(),
            ),
        );
    }
    let root = if purelib_root {
        &scheme.purelib
    } else {
        &scheme.platlib
    };
    let mut tree = FsTree::new();
    // image key → (RECORD hash, size) of what is installed.
    let mut installed: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let put = |tree: &mut FsTree,
               installed: &mut BTreeMap<String, (String, u64)>,
               key: String,
               content: Content,
               mode: u32|
     -> Result<(), PythonError> {
        let hash = record_hash(&hex::decode(content.digest().hex()).expect("hex"));
        installed.insert(key.clone(), (hash, content.size()));
        tree.insert(key.clone(), Node::file(content, mode, 0, 0, epoch))
            .map_err(|e| err(format!("installing {key}: {e}")))
    };
    for entry in wheel.entries() {
        if entry.dir {
            continue;
        }
        let path = entry.path.as_str();
        let unsigned = [
            record_path.clone(),
            format!("{dist_info}/RECORD.jws"),
            format!("{dist_info}/RECORD.p7s"),
        ];
        if unsigned.iter().any(|p| p == path) {
            continue;
        }
        check_hash(wheel, path, recorded.get(path), &label)?;
        let content = wheel.content(entry).expect("a file entry");
        let executable = entry.mode & 0o111 != 0;
        let mode = if executable { 0o755 } else { 0o644 };
        let Some(rest) = path.strip_prefix(&format!("{data_dir}/")) else {
            put(
                &mut tree,
                &mut installed,
                format!("{root}/{path}"),
                content,
                mode,
            )?;
            continue;
        };
        let (key, inner) = rest
            .split_once('/')
            .ok_or_else(|| err(format!("{path} is not inside a .data scheme folder")))?;
        let dest = match key {
            "purelib" => format!("{}/{inner}", scheme.purelib),
            "platlib" => format!("{}/{inner}", scheme.platlib),
            "headers" => format!("{}/{dist_name}/{inner}", scheme.headers),
            "data" => format!("{}/{inner}", scheme.data),
            "scripts" => {
                // `#!python` names whatever interpreter installs it (the spec).
                let dest = format!("{}/{inner}", scheme.scripts);
                let bytes = content
                    .read_all()
                    .map_err(|e| err(format!("reading {path}: {e}")))?;
                let rewritten = match bytes.strip_prefix(b"#!python") {
                    Some(rest) => {
                        let rest = rest.strip_prefix(b"w").unwrap_or(rest);
                        let mut out = format!("#!{}", scheme.interpreter).into_bytes();
                        out.extend_from_slice(rest);
                        Content::bytes(out)
                    }
                    None => content,
                };
                put(&mut tree, &mut installed, dest, rewritten, 0o755)?;
                continue;
            }
            other => {
                return Err(err(format!(
                "{path}: `{other}` is not a scheme key (purelib, platlib, headers, scripts, data)"
            )))
            }
        };
        put(&mut tree, &mut installed, dest, content, mode)?;
    }
    if let Some(text) = read_text(wheel, &format!("{dist_info}/entry_points.txt"), &label)? {
        for (name, target) in entry_points(&text) {
            if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
                return Err(err(format!("entry point name `{name}` is not a file name")));
            }
            let script = launcher(&scheme.interpreter, &name, &target).map_err(&err)?;
            let key = format!("{}/{name}", scheme.scripts);
            installed.remove(&key);
            tree.remove(&key);
            put(
                &mut tree,
                &mut installed,
                key,
                Content::bytes(script.into_bytes()),
                0o755,
            )?;
        }
    }
    let dist_key = format!("{root}/{dist_info}");
    put(
        &mut tree,
        &mut installed,
        format!("{dist_key}/INSTALLER"),
        Content::bytes(b"stele\n".to_vec()),
        0o644,
    )?;
    let record_key = format!("{dist_key}/RECORD");
    installed.remove(&record_key);
    let mut record = String::new();
    for (key, (hash, size)) in &installed {
        record.push_str(&format!(
            "{},{hash},{size}\n",
            csv_quote(&relative(root, key))
        ));
    }
    record.push_str(&format!("{},,\n", csv_quote(&relative(root, &record_key))));
    tree.replace(
        record_key,
        Node::file(Content::bytes(record.into_bytes()), 0o644, 0, 0, epoch),
    );
    Ok(InstalledWheel {
        tree,
        dist_info: dist_key,
    })
}

#[cfg(test)]
mod tests;
