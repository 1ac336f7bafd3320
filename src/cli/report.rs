//! What commands print for people (stderr) and for CI (`--json` on
//! stdout): one place, so every command describes an image alike.

use serde_json::{json, Value};

use crate::attest::Attestation;
use crate::oci::Built;
use crate::pipeline::Event;

/// Progress lines on stderr, as the pipeline reports its stages.
pub fn progress(event: Event) {
    match event {
        Event::Resolving { lock_path, why } => {
            eprintln!("lockfile {} {why}: resolving", lock_path.display())
        }
        Event::LockWritten { lock_path } => eprintln!("wrote {}", lock_path.display()),
        Event::Vendored { count, dir } => {
            eprintln!("imported {count} package(s) from {}", dir.display())
        }
        Event::Unpacked { reused, fresh } => {
            eprintln!("packages: {reused} unpacked before, {fresh} unpacked now")
        }
        Event::Layers { stats, cache: true } => eprintln!(
            "layer cache: hits {}, misses {}",
            stats.reused, stats.written
        ),
        Event::Layers {
            stats,
            cache: false,
        } => eprintln!("layer cache: off, {} layers written", stats.written),
    }
}

/// An image as `--json` documents describe it: its digest, and per
/// platform the manifest, config and layers with their sizes.
pub fn image_json(built: &Built) -> Value {
    let images: Vec<Value> = built
        .images
        .iter()
        .map(|i| {
            let layers: Vec<Value> = i
                .layers
                .iter()
                .map(|l| {
                    json!({
                        "digest": l.digest.to_string(),
                        "diff_id": l.diff_id.to_string(),
                        "size": l.size,
                        "media_type": l.media_type.to_string(),
                    })
                })
                .collect();
            json!({
                "platform": i.platform.to_string(),
                "manifest": i.manifest.digest.to_string(),
                "config": i.config.digest.to_string(),
                "layers": layers,
            })
        })
        .collect();
    json!({
        "digest": built.digest().to_string(),
        "platforms": built.images.iter().map(|i| i.platform.to_string()).collect::<Vec<_>>(),
        "images": images,
    })
}

pub fn attestations_json(attestations: &[Attestation]) -> Value {
    attestations
        .iter()
        .map(|a| {
            json!({
                "kind": a.kind.name(),
                "platform": a.platform.as_ref().map(|p| p.to_string()),
                "digest": a.manifest.digest.to_string(),
                "subject": a.subject_digest().to_string(),
                "signed": a.keyid.is_some(),
                "keyid": a.keyid,
            })
        })
        .collect()
}

/// The digests of an image's referrers (its attestations).
pub fn referrers_json(referrers: &[oci_spec::image::Descriptor]) -> Value {
    referrers
        .iter()
        .map(|d| Value::from(d.digest().to_string()))
        .collect()
}

/// Prints one JSON document on stdout.
pub fn print_json(doc: &Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, doc)?;
    out.write_all(b"\n")?;
    Ok(())
}
