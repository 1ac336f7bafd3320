//! `stele inspect`: what an image is, read from the image alone: its
//! platforms and digests, each config, each layer with the history line
//! saying what it holds, the Debian packages its dpkg database lists, the
//! attestations beside it, and (`--files`) the merged file tree.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::settings::{CacheArgs, Reader, RegistryArgs};
use crate::attest::artifact::{self, Signer, ANNOTATION_ATTESTATION, ANNOTATION_PLATFORM};
use crate::oci::model::our_digest;
use crate::oci::Image;
use crate::source::unpack::{for_each_entry, EntryKind, LayerEntry};
use crate::source::Opened;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele inspect out/hello\n  stele inspect --files --json oci-archive:out/hello.tar"
)]
pub struct InspectArgs {
    /// The image: a layout folder (oci:PATH[@sha256:…]), an archive or a
    /// registry reference.
    pub target: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also list the merged file tree of each platform (path, mode,
    /// owner, size).
    #[arg(long)]
    pub files: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Where dpkg keeps what is installed: distroless-style one file per
/// package (what stele writes), and Debian's single database.
const STATUS_DIR: &str = "var/lib/dpkg/status.d/";
const STATUS_FILE: &str = "var/lib/dpkg/status";

fn is_status(path: &str) -> bool {
    path == STATUS_FILE
        || path
            .strip_prefix(STATUS_DIR)
            .is_some_and(|n| !n.contains('/') && !n.ends_with(".md5sums"))
}

/// One platform's merged file tree (whiteouts applied) and the text of
/// its dpkg status files.
struct Merged {
    entries: BTreeMap<String, LayerEntry>,
    status: BTreeMap<String, Vec<u8>>,
}

fn merge(opened: &Opened, image: &Image) -> Result<Merged> {
    let mut entries: BTreeMap<String, LayerEntry> = BTreeMap::new();
    let mut status: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for layer in &image.layers {
        let mut found = Vec::new();
        for_each_entry(&opened.store, layer, &is_status, &mut |e, c| {
            found.push((e, c))
        })
        .with_context(|| format!("reading layer {}", layer.digest))?;
        // Whiteouts hide the layers below only (image-spec layer.md).
        let remove_below = |entries: &mut BTreeMap<String, LayerEntry>,
                            status: &mut BTreeMap<String, Vec<u8>>,
                            dir: &str| {
            let prefix = format!("{dir}/");
            entries.retain(|p, _| !p.starts_with(&prefix));
            status.retain(|p, _| !p.starts_with(&prefix));
        };
        for (e, _) in &found {
            match e.kind {
                EntryKind::Whiteout => {
                    entries.remove(&e.path);
                    status.remove(&e.path);
                    remove_below(&mut entries, &mut status, &e.path);
                }
                EntryKind::Opaque => remove_below(&mut entries, &mut status, &e.path),
                _ => {}
            }
        }
        for (e, content) in found {
            if matches!(e.kind, EntryKind::Whiteout | EntryKind::Opaque) {
                continue;
            }
            match content {
                Some(bytes) => {
                    status.insert(e.path.clone(), bytes);
                }
                None => {
                    status.remove(&e.path);
                }
            }
            entries.insert(e.path.clone(), e);
        }
    }
    Ok(Merged { entries, status })
}

/// `(name, version, architecture)` of every installed package in the
/// status files, sorted by name.
fn packages(status: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for text in status.values() {
        let text = String::from_utf8_lossy(text);
        for paragraph in text.split("\n\n") {
            let field = |name: &str| {
                paragraph.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|r| r.strip_prefix(':'))
                        .map(|v| v.trim().to_string())
                })
            };
            let installed = field("Status").map_or(true, |s| s.ends_with(" installed"));
            if let (Some(name), Some(version), true) =
                (field("Package"), field("Version"), installed)
            {
                out.push((name, version, field("Architecture").unwrap_or_default()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn entry_json(e: &LayerEntry) -> Value {
    let (kind, size, target) = match &e.kind {
        EntryKind::Dir => ("dir", 0, None),
        EntryKind::File { size, .. } => ("file", *size, None),
        EntryKind::Symlink(t) => ("symlink", 0, Some(t.clone())),
        EntryKind::Hardlink(t) => ("hardlink", 0, Some(t.clone())),
        EntryKind::Other(_) | EntryKind::Whiteout | EntryKind::Opaque => ("other", 0, None),
    };
    json!({
        "path": format!("/{}", e.path),
        "kind": kind,
        "mode": format!("{:04o}", e.mode & 0o7777),
        "owner": format!("{}:{}", e.uid, e.gid),
        "size": size,
        "target": target,
    })
}

fn image_json(opened: &Opened, image: &Image, files: bool) -> Result<Value> {
    let config = image.config.value.config().clone().unwrap_or_default();
    let history: Vec<String> = image
        .config
        .value
        .history()
        .clone()
        .unwrap_or_default()
        .iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .map(|h| h.created_by().clone().unwrap_or_default())
        .collect();
    let layers: Vec<Value> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "digest": l.digest.to_string(),
                "diff_id": l.diff_id.to_string(),
                "size": l.size,
                "media_type": l.media_type.to_string(),
                "created_by": history.get(i),
            })
        })
        .collect();
    let labels: BTreeMap<String, String> = config
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let merged = merge(opened, image)?;
    let packages: Vec<Value> = packages(&merged.status)
        .into_iter()
        .map(
            |(name, version, arch)| json!({"name": name, "version": version, "architecture": arch}),
        )
        .collect();
    let mut doc = json!({
        "platform": image.platform.to_string(),
        "manifest": image.manifest.digest.to_string(),
        "config": {
            "digest": image.config.digest.to_string(),
            "entrypoint": config.entrypoint(),
            "cmd": config.cmd(),
            "env": config.env().clone().unwrap_or_default(),
            "user": config.user(),
            "workdir": config.working_dir(),
            "labels": labels,
        },
        "layers": layers,
        "packages": packages,
    });
    if files {
        doc["files"] = merged.entries.values().map(entry_json).collect();
    }
    Ok(doc)
}

/// The attestations beside the image: kind, platform, digest, what form
/// they are in, whether they are signed, and by whom they say (a key id
/// or a key hint): what the artifact claims, not checked here (`stele
/// verify --key` checks it).
fn attestations_json(opened: &Opened) -> Vec<Value> {
    opened
        .referrers
        .iter()
        .map(|d| {
            let ann = d.annotations().clone().unwrap_or_default();
            let read = our_digest(d.digest())
                .ok()
                .and_then(|dg| artifact::open(&opened.store, &dg, Some(d.size())).ok());
            let signer = read.as_ref().map(|a| a.signer(&[]));
            json!({
                "kind": ann.get(ANNOTATION_ATTESTATION).cloned()
                    .or_else(|| read.as_ref().map(|a| a.kind.name().to_string())),
                "platform": ann.get(ANNOTATION_PLATFORM),
                "artifact_type": d.artifact_type().as_ref().map(|t| t.to_string()),
                "digest": d.digest().to_string(),
                "form": read.as_ref().map(|a| a.form.name()),
                "signed": read.as_ref().map(|a| a.form.signed()),
                "keyid": read.as_ref().and_then(|a| a.keyid_label.clone()),
                "signer": match signer {
                    Some(Signer::Other { who }) => Value::String(who),
                    Some(Signer::Unverifiable { why }) => Value::String(why),
                    _ => Value::Null,
                },
            })
        })
        .collect()
}

fn text(doc: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        }
    };
    out += &format!("image      {}\n", s(&doc["name"]));
    out += &format!("digest     {}\n", s(&doc["digest"]));
    let platforms: Vec<String> = doc["platforms"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    out += &format!("platforms  {}\n", platforms.join(", "));
    for image in doc["images"].as_array().into_iter().flatten() {
        let c = &image["config"];
        out += &format!("\n{}\n", s(&image["platform"]));
        out += &format!("  manifest    {}\n", s(&image["manifest"]));
        out += &format!("  config      {}\n", s(&c["digest"]));
        for key in ["entrypoint", "cmd", "user", "workdir"] {
            if !c[key].is_null() {
                out += &format!("  {key:<11} {}\n", s(&c[key]));
            }
        }
        for e in c["env"].as_array().into_iter().flatten() {
            out += &format!("  env         {}\n", s(e));
        }
        for (k, v) in c["labels"].as_object().into_iter().flatten() {
            out += &format!("  label       {k}={}\n", s(v));
        }
        let layers = image["layers"].as_array().cloned().unwrap_or_default();
        out += &format!("  layers ({})\n", layers.len());
        for l in &layers {
            out += &format!(
                "    {}  {:>10} bytes  {}\n",
                s(&l["digest"]),
                s(&l["size"]),
                s(&l["created_by"])
            );
        }
        let packages = image["packages"].as_array().cloned().unwrap_or_default();
        out += &format!("  packages ({})\n", packages.len());
        for p in &packages {
            out += &format!(
                "    {} {} {}\n",
                s(&p["name"]),
                s(&p["version"]),
                s(&p["architecture"])
            );
        }
        if let Some(files) = image["files"].as_array() {
            out += &format!("  files ({})\n", files.len());
            for f in files {
                let target = match &f["target"] {
                    Value::String(t) => format!(" -> {t}"),
                    _ => String::new(),
                };
                let kind = match f["kind"].as_str() {
                    Some("dir") => 'd',
                    Some("file") => '-',
                    Some("symlink") => 'l',
                    Some("hardlink") => 'h',
                    _ => '?',
                };
                out += &format!(
                    "    {kind}{} {:<11} {:>10}  {}{target}\n",
                    s(&f["mode"]),
                    s(&f["owner"]),
                    s(&f["size"]),
                    s(&f["path"])
                );
            }
        }
    }
    let attestations = doc["attestations"].as_array().cloned().unwrap_or_default();
    out += &format!("\nattestations ({})\n", attestations.len());
    for a in &attestations {
        let what = match (&a["kind"], &a["platform"]) {
            (Value::String(k), Value::String(p)) => format!("{k} {p}"),
            (Value::String(k), _) => k.clone(),
            _ => s(&a["artifact_type"]),
        };
        let signed = match (&a["signed"], &a["signer"]) {
            (Value::Bool(true), Value::String(who)) => {
                format!("signed by {who} (not verified: `stele verify --key` checks it)")
            }
            (Value::Bool(true), _) => "signed".into(),
            (Value::Bool(false), _) => "unsigned".into(),
            _ => "unreadable".into(),
        };
        let form = match &a["form"] {
            Value::String(f) => format!(" {f}"),
            _ => String::new(),
        };
        out += &format!("  {what:<28} {}{form}  {signed}\n", s(&a["digest"]));
    }
    out
}

/// Everything `stele inspect` does, decided from its flags.
pub(crate) struct InspectSettings {
    pub target: String,
    pub files: bool,
    pub json: bool,
    pub reader: Reader,
}

impl InspectSettings {
    pub fn resolve(args: InspectArgs) -> Result<InspectSettings> {
        Ok(InspectSettings {
            reader: Reader::for_reading(&args.registry, &args.cache)?,
            target: args.target,
            files: args.files,
            json: args.json,
        })
    }
}

pub(crate) fn cmd_inspect(args: InspectArgs) -> Result<ExitCode> {
    let settings = InspectSettings::resolve(args)?;
    let opened = settings.reader.open(&settings.target)?;
    // Attestations that cannot be read are left out of what is shown.
    for w in &opened.warnings {
        eprintln!("warning: {w}");
    }
    let images = opened
        .built
        .images
        .iter()
        .map(|i| image_json(&opened, i, settings.files))
        .collect::<Result<Vec<_>>>()?;
    let doc = json!({
        "name": opened.name,
        "digest": opened.digest().to_string(),
        "platforms": opened.built.images.iter().map(|i| i.platform.to_string()).collect::<Vec<_>>(),
        "images": images,
        "attestations": attestations_json(&opened),
    });
    if settings.json {
        super::report::print_json(&doc)?;
    } else {
        std::io::stdout().lock().write_all(text(&doc).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
