//! SLSA Provenance v1 (slsa.dev/provenance/v1) in an in-toto Statement v1:
//! which recipe, which package bytes and which base produced the digests in
//! `subject`, and who built them with which stele.

use std::collections::BTreeMap;

use oci_spec::image::MediaType;
use serde_json::{json, Value};

use super::{deb_purl, oci_purl, AttestInput, ResourceDescriptor, Statement, URI_BASE};
use crate::layer::Profile;
use crate::oci::Digest;

pub(crate) const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// The build type: what `externalParameters` and `internalParameters`
/// mean. Bump the version when their shape changes.
pub(crate) fn build_type() -> String {
    format!("{URI_BASE}/buildtypes/recipe/v1")
}

/// The provenance statement. Subjects: the index (when there is one) and
/// every platform's manifest, each named by the image name.
pub fn provenance(input: &AttestInput) -> Statement {
    let built = input.built;
    let name = &input.recipe.name;
    let mut subject = Vec::new();
    if let Some(index) = &built.index {
        subject.push(ResourceDescriptor {
            name: Some(name.clone()),
            digest: ResourceDescriptor::sha256(&index.digest),
            media_type: Some(MediaType::ImageIndex.to_string()),
            ..Default::default()
        });
    }
    for image in &built.images {
        subject.push(ResourceDescriptor {
            name: Some(name.clone()),
            digest: ResourceDescriptor::sha256(&image.manifest.digest),
            media_type: Some(MediaType::ImageManifest.to_string()),
            annotations: BTreeMap::from([(
                "platform".to_string(),
                Value::String(image.platform.to_string()),
            )]),
            ..Default::default()
        });
    }

    let recipe: Value =
        serde_json::from_slice(&input.recipe.canonical).expect("the canonical recipe is JSON");
    let mut external = json!({
        "recipe": recipe,
        "recipeDigest": input.recipe.digest().to_string(),
        // The epoch in force, which SOURCE_DATE_EPOCH may have set apart
        // from the recipe's own.
        "epoch": input.recipe.epoch,
    });
    if let Some(lock) = input.lock {
        external["lockDigest"] = Value::String(Digest::of(lock.to_text().as_bytes()).to_string());
    }

    // The same rule the build used (see `image::provenance::profile`).
    let profile = Profile::in_force(input.recipe.encoding, input.lock.map(|l| l.encoding));
    let predicate = json!({
        "buildDefinition": {
            "buildType": build_type(),
            "externalParameters": external,
            "internalParameters": {
                "encodingProfile": { "id": profile.id(), "description": profile.description() },
            },
            "resolvedDependencies": resolved_dependencies(input),
        },
        "runDetails": run_details(input),
    });
    Statement::new(subject, PREDICATE_TYPE, predicate)
}

/// Every package (from the lock, or from the installed lists when there is
/// no lock), each apt source's InRelease, and the base image. Packages
/// are named by purl, never by a mirror URL: mirrors are locations,
/// digests are identity.
fn resolved_dependencies(input: &AttestInput) -> Vec<ResourceDescriptor> {
    // Keyed by purl: an `Architecture: all` package appears once even
    // though every platform installs it.
    let mut packages: BTreeMap<String, ResourceDescriptor> = BTreeMap::new();
    let mut add = |name: &str, version: &str, arch: &str, sha256: &Digest| {
        let uri = deb_purl(name, version, arch);
        packages
            .entry(uri.clone())
            .or_insert_with(|| ResourceDescriptor {
                name: Some(name.to_string()),
                uri: Some(uri),
                digest: ResourceDescriptor::sha256(sha256),
                annotations: BTreeMap::from([
                    ("architecture".to_string(), Value::String(arch.into())),
                    ("version".to_string(), Value::String(version.into())),
                ]),
                ..Default::default()
            });
    };
    match input.lock {
        Some(lock) => {
            for p in lock.platforms.values().flat_map(|p| &p.packages) {
                add(&p.name, &p.version, &p.architecture, &p.sha256);
            }
        }
        None => {
            for p in input
                .packages
                .values()
                .flatten()
                .map(|p| &p.deb)
                .filter(|p| p.purl.is_none())
            {
                add(&p.name, &p.version, &p.architecture, &p.sha256);
            }
        }
    }
    // Python and npm packages (`[python]`, `[node]`) by their own purls.
    for p in input.packages.values().flatten().map(|p| &p.deb) {
        if let Some(uri) = &p.purl {
            // One purl names every platform's wheel: each file is its own
            // dependency.
            packages
                .entry(format!("{uri} {}", p.sha256))
                .or_insert_with(|| ResourceDescriptor {
                    name: Some(p.name.clone()),
                    uri: Some(uri.clone()),
                    digest: ResourceDescriptor::sha256(&p.sha256),
                    annotations: BTreeMap::from([(
                        "version".to_string(),
                        Value::String(p.version.clone()),
                    )]),
                    ..Default::default()
                });
        }
    }
    let mut out: Vec<ResourceDescriptor> = packages.into_values().collect();
    if let Some(lock) = input.lock {
        for s in &lock.sources {
            out.push(ResourceDescriptor {
                name: Some(format!("InRelease:{}", s.suite)),
                digest: ResourceDescriptor::sha256(&s.inrelease_sha256),
                annotations: BTreeMap::from([
                    ("suite".to_string(), Value::String(s.suite.clone())),
                    ("components".to_string(), json!(s.components)),
                ]),
                ..Default::default()
            });
        }
    }
    if let Some(base) = &input.base {
        out.push(ResourceDescriptor {
            name: Some(base.name.clone()),
            uri: Some(oci_purl(&base.name, &base.digest, &BTreeMap::new())),
            digest: ResourceDescriptor::sha256(&base.digest),
            annotations: BTreeMap::from([("role".to_string(), Value::String("base".into()))]),
            ..Default::default()
        });
    }
    out
}

fn run_details(input: &AttestInput) -> Value {
    let mut details = json!({
        "builder": {
            "id": input.builder_id,
            "version": { "stele": input.stele_version },
        },
    });
    let mut metadata = serde_json::Map::new();
    if let Some(t) = &input.invocation_started {
        metadata.insert("startedOn".into(), Value::String(t.clone()));
    }
    if let Some(t) = &input.invocation_finished {
        metadata.insert("finishedOn".into(), Value::String(t.clone()));
    }
    if !metadata.is_empty() {
        details["metadata"] = Value::Object(metadata);
    }
    // What the packages' maintainer scripts would have done and what
    // became of each effect, so nothing a build skipped goes unsaid.
    let byproducts: Vec<ResourceDescriptor> = input
        .scripts
        .iter()
        .filter(|(_, r)| !r.effects.is_empty() || !r.alternatives.is_empty())
        .map(|(platform, report)| ResourceDescriptor {
            name: Some(format!("maintainer-script-effects:{platform}")),
            annotations: BTreeMap::from([
                ("platform".to_string(), Value::String(platform.clone())),
                ("effects".to_string(), json!(report.effects)),
                ("alternatives".to_string(), json!(report.alternatives)),
            ]),
            ..Default::default()
        })
        .collect();
    if !byproducts.is_empty() {
        details["byproducts"] = json!(byproducts);
    }
    details
}
