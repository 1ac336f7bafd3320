//! SLSA Provenance v1 (slsa.dev/provenance/v1) in an in-toto Statement v1:
//! which recipe, which package bytes and which base produced the digests in
//! `subject`, and who built them with which stele.

use std::collections::BTreeMap;

use oci_spec::image::MediaType;
use serde_json::{json, Value};

use super::sbom::{deb_purl, oci_purl, Distro};
use super::{AttestInput, DebPackage, ResourceDescriptor, Statement, URI_BASE};
use crate::layer::Profile;
use crate::oci::Digest;

pub(crate) const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// The default build type: the README section saying what
/// `externalParameters`, `internalParameters`, `resolvedDependencies` and
/// `byproducts` hold. A new version of that shape gets a new section.
pub fn default_build_type() -> String {
    format!("{URI_BASE}/README.md#build-type-v1")
}

/// The default builder id: the README section saying what the stele
/// command line on a machine nobody vouches for guarantees (SLSA Build
/// L1). A CI names its own with `--builder-id`.
pub fn default_builder_id() -> String {
    format!("{URI_BASE}/README.md#builder-id")
}

/// The media type of a maintainer-script-effects byproduct.
pub(crate) const SCRIPT_EFFECTS_MEDIA_TYPE: &str = "application/vnd.dev.stele.script-effects+json";

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
            "buildType": input.builder.build_type,
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
    // The first platform's distro qualifies the purls: one lock's
    // sources serve every platform.
    let distro: Option<&Distro> = input.distros.values().next();
    let mut add = |p: &DebPackage| {
        let uri = deb_purl(p, distro);
        packages
            .entry(uri.clone())
            .or_insert_with(|| ResourceDescriptor {
                name: Some(p.name.clone()),
                uri: Some(uri),
                digest: ResourceDescriptor::sha256(&p.sha256),
                annotations: BTreeMap::from([
                    (
                        "architecture".to_string(),
                        Value::String(p.architecture.clone()),
                    ),
                    ("version".to_string(), Value::String(p.version.clone())),
                ]),
                ..Default::default()
            });
    };
    // Installed packages know their source; a lock alone does not.
    let installed: BTreeMap<(&str, &str, &str), &DebPackage> = input
        .packages
        .values()
        .flatten()
        .filter(|p| p.deb.purl.is_none())
        .map(|p| {
            (
                (
                    p.deb.name.as_str(),
                    p.deb.version.as_str(),
                    p.deb.architecture.as_str(),
                ),
                &p.deb,
            )
        })
        .collect();
    match input.lock {
        Some(lock) => {
            for p in lock.platforms.values().flat_map(|p| &p.packages) {
                let key = (p.name.as_str(), p.version.as_str(), p.architecture.as_str());
                match installed.get(&key) {
                    Some(deb) => add(deb),
                    None => add(&DebPackage {
                        name: p.name.clone(),
                        version: p.version.clone(),
                        architecture: p.architecture.clone(),
                        license: None,
                        source_package: p.name.clone(),
                        source_version: None,
                        sha256: p.sha256.clone(),
                        purl: None,
                    }),
                }
            }
        }
        None => {
            for deb in installed.values() {
                add(deb);
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
            "id": input.builder.id,
            "version": { "stele": input.builder.stele_version },
        },
    });
    let run = &input.run;
    let mut metadata = serde_json::Map::new();
    for (key, value) in [
        ("invocationId", &run.invocation_id),
        ("startedOn", &run.started_on),
        ("finishedOn", &run.finished_on),
    ] {
        if let Some(v) = value {
            metadata.insert(key.into(), Value::String(v.clone()));
        }
    }
    if !metadata.is_empty() {
        details["metadata"] = Value::Object(metadata);
    }
    // What the packages' maintainer scripts would have done and what
    // became of each effect, so nothing a build skipped goes unsaid. A
    // resource descriptor needs a digest (or a uri, or content): this one
    // is of the report itself, the canonical JSON of its `effects` and
    // `alternatives` annotations, so a reader can check the two agree.
    let byproducts: Vec<ResourceDescriptor> = input
        .scripts
        .iter()
        .filter(|(_, r)| !r.effects.is_empty() || !r.alternatives.is_empty())
        .map(|(platform, report)| {
            let effects = json!(report.effects);
            let alternatives = json!(report.alternatives);
            let canonical = crate::oci::json::to_canonical_vec(&json!({
                "alternatives": alternatives,
                "effects": effects,
            }));
            ResourceDescriptor {
                name: Some(format!("maintainer-script-effects:{platform}")),
                digest: ResourceDescriptor::sha256(&Digest::of(&canonical)),
                media_type: Some(SCRIPT_EFFECTS_MEDIA_TYPE.into()),
                annotations: BTreeMap::from([
                    ("platform".to_string(), Value::String(platform.clone())),
                    ("effects".to_string(), effects),
                    ("alternatives".to_string(), alternatives),
                ]),
                ..Default::default()
            }
        })
        .collect();
    if !byproducts.is_empty() {
        details["byproducts"] = json!(byproducts);
    }
    details
}
