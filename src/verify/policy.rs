//! `verify --policy`: what a deploy gate requires of an image beyond "a
//! trusted key signed its attestations", checked against the provenance
//! those keys signed (never against what an unsigned document says): the
//! builder, the source repository and revision the recipe records, the
//! recipe, the base image, and how old the build may be. The same
//! questions slsa-verifier asks (`--builder-id`, `--source-uri`,
//! `--source-tag`) and policy-controller's ClusterImagePolicy answers.
//!
//! The CLI reads the policy file (`cli::policy`); this is the checking.

use serde_json::Value;

use super::attestations::Attested;
use super::fsck::Walk;
use super::Check;
use crate::attest::{Kind, PublicKey};
use crate::oci::Digest;

/// The annotation (or label) the recipe records its source repository in.
pub(crate) const SOURCE_KEY: &str = "org.opencontainers.image.source";
/// … and its revision.
pub(crate) const REVISION_KEY: &str = "org.opencontainers.image.revision";

/// A verification policy, read and resolved.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Where it came from, for messages.
    pub path: String,
    /// The keys whose signatures count, each with its name.
    pub signers: Vec<(String, PublicKey)>,
    /// Kinds that must each have an attestation a signer signed.
    pub kinds: Vec<Kind>,
    pub builder_id: Option<String>,
    pub source_repository: Option<String>,
    pub source_revision: Option<String>,
    pub recipe_digest: Option<Digest>,
    /// Allowed base images, by digest; `None` allows any.
    pub base_digests: Option<Vec<Digest>>,
    /// The oldest build accepted, in seconds before `now`.
    pub max_age: Option<u64>,
    /// Seconds since 1970 when the check runs (the CLI reads the clock).
    pub now: u64,
}

/// The policy's checks, after the attestation checks found what its
/// signers signed.
pub fn check(policy: &Policy, attested: &Attested, walk: &Walk) -> Vec<Check> {
    let mut checks = Vec::new();
    let provenance = &attested.signed_provenance;
    let needs_provenance = policy.builder_id.is_some()
        || policy.source_repository.is_some()
        || policy.source_revision.is_some()
        || policy.base_digests.is_some()
        || policy.max_age.is_some();
    if needs_provenance && provenance.is_empty() {
        checks.push(Check::fail(
            "policy provenance",
            format!(
                "{} checks what provenance says, and no provenance about this image is signed by one of its signers",
                policy.path
            ),
        ));
        return checks;
    }
    // Any signed provenance that satisfies a requirement will do: a second
    // build's provenance for the same digest is as good as the first.
    let any = |name: &str, f: &dyn Fn(&Value) -> Result<String, String>| -> Check {
        let mut errors = Vec::new();
        for st in provenance {
            match f(&st.predicate) {
                Ok(detail) => return Check::pass(name, detail),
                Err(e) => errors.push(e),
            }
        }
        errors.dedup();
        Check::fail(name, errors.join("; "))
    };
    if let Some(want) = &policy.builder_id {
        checks.push(any(
            "policy builder id",
            &|p| match p["runDetails"]["builder"]["id"].as_str() {
                Some(id) if id == want => Ok(id.to_string()),
                Some(id) => Err(format!(
                    "built by {id}, and {} requires {want}",
                    policy.path
                )),
                None => Err("provenance names no builder id".into()),
            },
        ));
    }
    for (name, key, want) in [
        (
            "policy source repository",
            SOURCE_KEY,
            &policy.source_repository,
        ),
        (
            "policy source revision",
            REVISION_KEY,
            &policy.source_revision,
        ),
    ] {
        if let Some(want) = want {
            checks.push(any(name, &|p| match recorded(p, key) {
                Some(v) if v == *want => Ok(v),
                Some(v) => Err(format!(
                    "the recipe records {key} = {v}, and {} requires {want}",
                    policy.path
                )),
                None => Err(format!(
                    "the recipe records no {key} (set it in [annotations] or with --annotation)"
                )),
            }));
        }
    }
    if let Some(want) = &policy.recipe_digest {
        checks.push(recipe_check(policy, want, walk, provenance));
    }
    if let Some(allowed) = &policy.base_digests {
        checks.push(any("policy base", &|p| {
            let bases: Vec<String> = p["buildDefinition"]["resolvedDependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["annotations"]["role"] == "base")
                .filter_map(|d| d["digest"]["sha256"].as_str())
                .map(|h| format!("sha256:{h}"))
                .collect();
            match bases.as_slice() {
                [] => Ok("no base image (scratch)".into()),
                [one] if allowed.iter().any(|a| &a.to_string() == one) => {
                    Ok(format!("{one} is allowed"))
                }
                [one] => Err(format!(
                    "built on {one}, which {} does not allow",
                    policy.path
                )),
                many => Err(format!("provenance names {} bases", many.len())),
            }
        }));
    }
    if let Some(max_age) = policy.max_age {
        checks.push(any("policy age", &|p| {
            let meta = &p["runDetails"]["metadata"];
            let Some(text) = meta["finishedOn"].as_str().or(meta["startedOn"].as_str()) else {
                return Err("provenance records no build time".into());
            };
            let Some(at) = crate::timefmt::parse_rfc3339(text) else {
                return Err(format!("provenance's build time {text} is not RFC 3339"));
            };
            let age = policy.now.saturating_sub(at);
            if age <= max_age {
                Ok(format!("built {text}, {} ago", human(age)))
            } else {
                Err(format!(
                    "built {text}, {} ago: older than the {} {} allows",
                    human(age),
                    human(max_age),
                    policy.path
                ))
            }
        }));
    }
    checks
}

/// A value the canonical recipe in provenance records, as an annotation
/// or a label.
fn recorded(predicate: &Value, key: &str) -> Option<String> {
    let recipe = &predicate["buildDefinition"]["externalParameters"]["recipe"];
    recipe["annotations"][key]
        .as_str()
        .or_else(|| recipe["config"]["labels"][key].as_str())
        .map(str::to_string)
}

/// The recipe digest the image records (`dev.stele.recipe.digest`, what
/// `verify --recipe` checks; inside the signed digest), or provenance's
/// `recipeDigest` (the whole canonical recipe, mirrors included).
fn recipe_check(
    policy: &Policy,
    want: &Digest,
    walk: &Walk,
    provenance: &[crate::attest::Statement],
) -> Check {
    let name = "policy recipe digest";
    let want = want.to_string();
    let recorded: Vec<String> = walk
        .images
        .iter()
        .filter_map(|i| i.manifest.annotations().as_ref())
        .filter_map(|a| a.get(crate::image::provenance::KEY_RECIPE_DIGEST).cloned())
        .collect();
    if !recorded.is_empty() && recorded.iter().all(|r| *r == want) {
        return Check::pass(name, format!("the image records {want}"));
    }
    if provenance.iter().any(|st| {
        st.predicate["buildDefinition"]["externalParameters"]["recipeDigest"] == want.as_str()
    }) {
        return Check::pass(name, format!("signed provenance records {want}"));
    }
    Check::fail(
        name,
        match recorded.first() {
            Some(r) => format!(
                "the image was made from recipe {r}, and {} requires {want}",
                policy.path
            ),
            None => format!(
                "the image records no recipe digest, and {} requires {want}",
                policy.path
            ),
        },
    )
}

fn human(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{}d", s / 86_400),
        s if s >= 2 * 3600 => format!("{}h", s / 3600),
        s if s >= 120 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::{ResourceDescriptor, Statement};
    use serde_json::json;

    fn attested(finished: Option<&str>) -> Attested {
        let mut metadata = json!({});
        if let Some(t) = finished {
            metadata["finishedOn"] = t.into();
        }
        let predicate = json!({
            "buildDefinition": {"externalParameters": {"recipe": {"config": {"labels": {
                SOURCE_KEY: "https://git.example/team/app"}}}}},
            "runDetails": {"builder": {"id": "https://ci.example/b"}, "metadata": metadata},
        });
        Attested {
            checks: Vec::new(),
            provenance_epoch: None,
            found: Vec::new(),
            signed_provenance: vec![Statement::new(
                vec![ResourceDescriptor::default()],
                "https://slsa.dev/provenance/v1",
                predicate,
            )],
        }
    }

    fn run(policy: &Policy, attested: &Attested) -> Vec<(String, crate::verify::Status)> {
        check(policy, attested, &Walk::default())
            .into_iter()
            .map(|c| (c.name, c.status))
            .collect()
    }

    #[test]
    fn age_is_measured_from_now_and_labels_count_as_the_source() {
        use crate::verify::Status::*;
        let t = 1_700_000_000;
        let policy = Policy {
            path: "p.toml".into(),
            max_age: Some(86_400),
            source_repository: Some("https://git.example/team/app".into()),
            now: t + 3600,
            ..Policy::default()
        };
        let built = attested(Some(&crate::timefmt::rfc3339(t)));
        assert_eq!(
            run(&policy, &built),
            [
                ("policy source repository".to_string(), Pass),
                ("policy age".to_string(), Pass)
            ]
        );
        let later = Policy {
            now: t + 2 * 86_400,
            ..policy.clone()
        };
        assert_eq!(run(&later, &built)[1], ("policy age".to_string(), Fail));
        assert_eq!(run(&policy, &attested(None))[1].1, Fail);
        let none = Attested {
            signed_provenance: Vec::new(),
            ..attested(None)
        };
        assert_eq!(
            run(&policy, &none),
            [("policy provenance".to_string(), Fail)]
        );
    }
}
