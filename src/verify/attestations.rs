//! The attestation checks, cosign- and slsa-verifier-style: each
//! attestation is about this image (its OCI `subject` and its statement's
//! subjects), its blobs are intact, and, when public keys are given, one of
//! them signed it. Without keys, signatures are "not checked": only a key
//! the verifier trusts makes a signature mean anything.

use oci_spec::image::{Descriptor, ImageManifest};

use super::fsck::{short, Walk};
use super::{Check, Subject};
use crate::attest::artifact::{self, Kind, ANNOTATION_ATTESTATION, ANNOTATION_PLATFORM};
use crate::attest::dsse::Envelope;
use crate::attest::{AttestError, PublicKey, Statement};
use crate::oci::media::{CONFIG_LIMIT, MANIFEST_LIMIT};
use crate::oci::{our_digest, Digest};
use crate::store::BlobStore;

/// What the attestation checks found.
pub struct Attested {
    pub checks: Vec<Check>,
    /// `externalParameters.epoch` of a readable provenance.
    pub provenance_epoch: Option<u64>,
}

pub fn check(subject: &Subject, walk: &Walk, keys: &[PublicKey]) -> Attested {
    let mut out = Attested {
        checks: Vec::new(),
        provenance_epoch: None,
    };
    let top = subject.digest();
    let mut found = Vec::new();
    for d in &subject.artifacts {
        let label = label_of(d);
        let Ok(digest) = our_digest(d.digest()) else {
            out.checks.push(Check::fail(
                format!("attestation {label} blobs"),
                format!("{} is not a sha256 digest stele can verify", d.digest()),
            ));
            continue;
        };
        let manifest = subject
            .store
            .read_verified(&digest, Some(d.size()), MANIFEST_LIMIT)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                serde_json::from_slice::<ImageManifest>(&b)
                    .map_err(|e| format!("{digest} is not a manifest: {e}"))
            });
        let manifest = match manifest {
            Ok(m) => m,
            Err(e) => {
                out.checks
                    .push(Check::fail(format!("attestation {label} blobs"), e));
                continue;
            }
        };
        let about = manifest
            .subject()
            .as_ref()
            .and_then(|s| our_digest(s.digest()).ok());
        let mine = about.as_ref().is_some_and(|a| walk.digests.contains(a));
        if !mine && !subject.sole_image {
            // Another image's attestation, in a layout holding several.
            continue;
        }
        found.push(label.clone());
        let blobs = blobs_check(&subject.store, &manifest, &digest, &label);
        let intact = blobs.status == super::Status::Pass;
        out.checks.push(blobs);
        let subject_name = format!("attestation {label} subject");
        match (&about, mine) {
            (Some(a), true) => out.checks.push(Check::pass(subject_name, a.to_string())),
            (Some(a), false) => out.checks.push(Check::fail(
                subject_name,
                format!(
                    "attestation {digest} is about {a}, which is not this image ({}) nor one of its manifests: it is stale, left from an image that was replaced",
                    top.as_ref().map_or("?".into(), Digest::to_string)
                ),
            )),
            (None, _) => out.checks.push(Check::fail(
                subject_name,
                format!("artifact {digest} names no sha256 subject"),
            )),
        }
        if !intact {
            let why = "its blobs did not verify (see its blob check)";
            for what in ["statement", "signature"] {
                out.checks
                    .push(Check::skipped(format!("attestation {label} {what}"), why));
            }
            continue;
        }
        let opened = match artifact::open(&subject.store, &digest, Some(d.size())) {
            Ok(o) => o,
            Err(AttestError::Malformed { message, .. }) => {
                let why = format!("not a stele attestation ({message}); stele checks only its own");
                out.checks.push(Check::skipped(
                    format!("attestation {label} statement"),
                    why.clone(),
                ));
                out.checks.push(Check::skipped(
                    format!("attestation {label} signature"),
                    why,
                ));
                continue;
            }
            Err(e) => {
                out.checks.push(Check::fail(
                    format!("attestation {label} statement"),
                    e.to_string(),
                ));
                continue;
            }
        };
        let statement = statement_check(&opened, walk, top.as_ref(), &label);
        if let Ok(Some(st)) = &statement.1 {
            if opened.kind == Kind::Provenance {
                out.provenance_epoch =
                    st.predicate["buildDefinition"]["externalParameters"]["epoch"].as_u64();
            }
        }
        out.checks.push(statement.0);
        out.checks.push(signature_check(&opened, keys, &label));
    }
    out.checks.push(match (found.is_empty(), keys.is_empty()) {
        (true, true) if built_by_stele(walk) => Check::skipped(
            "attestations",
            format!("the image has no attestations beside it; {STELE_BUILT} {DROPPED}"),
        ),
        (true, true) => Check::skipped("attestations", "the image has no attestations"),
        (true, false) if built_by_stele(walk) => Check::fail(
            "attestations",
            format!("--key was given, but no attestation about this image is stored beside it (no referrer); {STELE_BUILT} {DROPPED}. An image built with `--attest none` has none: build it with `stele build --sign-key`"),
        ),
        (true, false) => Check::fail(
            "attestations",
            format!("--key was given, but no attestation about this image is stored beside it (no referrer): build it with `stele build --sign-key`; if it was signed, {DROPPED}"),
        ),
        (false, _) => Check::pass(
            "attestations",
            format!("{} found: {}", found.len(), found.join(", ")),
        ),
    });
    out
}

/// Why a signed image's attestations go missing, and how to carry them:
/// they are referrers, separate manifests whose `subject` is the image,
/// and a copy of the image alone leaves them behind.
const DROPPED: &str = "its attestations were likely dropped by a copy that does not carry referrers (`skopeo copy`, `crane copy`, `docker push`): copy it with `stele push SRC DST`, which carries them, from where they still are (or with a copy tool's referrer option, e.g. `oras cp -r`)";

const STELE_BUILT: &str = "stele built it (it records dev.stele.recipe.digest), so";

/// Whether stele built the image: it records its recipe's digest, in
/// its manifests' annotations or its configs' labels (which survive a
/// `docker save` and `load`).
fn built_by_stele(walk: &Walk) -> bool {
    use crate::image::provenance::KEY_RECIPE_DIGEST;
    walk.images.iter().any(|i| {
        i.manifest
            .annotations()
            .as_ref()
            .is_some_and(|a| a.contains_key(KEY_RECIPE_DIGEST))
            || i.config
                .as_ref()
                .and_then(|c| c.config().as_ref())
                .and_then(|c| c.labels().as_ref())
                .is_some_and(|l| l.contains_key(KEY_RECIPE_DIGEST))
    })
}

/// `provenance`, `sbom-spdx linux/amd64`, or the digest of an artifact
/// that is not stele's.
fn label_of(d: &Descriptor) -> String {
    let ann = d.annotations().clone().unwrap_or_default();
    match ann.get(ANNOTATION_ATTESTATION) {
        Some(kind) => match ann.get(ANNOTATION_PLATFORM) {
            Some(p) => format!("{kind} {p}"),
            None => kind.clone(),
        },
        None => short(d.digest().as_ref()),
    }
}

/// The artifact's manifest was read; its config and layers must verify too.
fn blobs_check(store: &BlobStore, m: &ImageManifest, digest: &Digest, label: &str) -> Check {
    let mut problems = Vec::new();
    let mut count = 1;
    for (what, d) in
        std::iter::once(("config", m.config())).chain(m.layers().iter().map(|l| ("layer", l)))
    {
        count += 1;
        let result = our_digest(d.digest())
            .map_err(|e| e.to_string())
            .and_then(|dg| {
                // A config is a small document; an attestation layer is at
                // most a large SBOM: stream it like a layer all the same.
                if what == "config" {
                    store
                        .read_verified(&dg, Some(d.size()), CONFIG_LIMIT)
                        .map(|_| ())
                } else {
                    store.verify(&dg, d.size())
                }
                .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            problems.push(format!("{what}: {e}"));
        }
    }
    let name = format!("attestation {label} blobs");
    if problems.is_empty() {
        Check::pass(name, format!("{digest} and its {} blobs", count - 1))
    } else {
        Check::fail(name, problems.join("; "))
    }
}

/// The statement (or SBOM document) parses, its subjects include the
/// artifact's subject, and a provenance's subjects are all this image's.
fn statement_check(
    opened: &artifact::Opened,
    walk: &Walk,
    top: Option<&Digest>,
    label: &str,
) -> (Check, Result<Option<Statement>, ()>) {
    let name = format!("attestation {label} statement");
    let checked = match opened.check(&opened.subject, None) {
        Ok(c) => c,
        Err(e) => return (Check::fail(name, e.to_string()), Err(())),
    };
    let Some(statement) = checked.statement else {
        return (
            Check::pass(name, format!("unsigned {} document", opened.kind.name())),
            Ok(None),
        );
    };
    if opened.kind == Kind::Provenance {
        let named: Vec<String> = statement
            .subject
            .iter()
            .map(|s| match s.digest.get("sha256") {
                Some(h) => format!("sha256:{h}"),
                None => "(no sha256)".into(),
            })
            .collect();
        let foreign: Vec<&String> = named
            .iter()
            .filter(|n| !walk.digests.iter().any(|d| &d.to_string() == *n))
            .collect();
        if !foreign.is_empty() {
            let list: Vec<&str> = foreign.iter().map(|s| s.as_str()).collect();
            return (
                Check::fail(
                    name,
                    format!(
                        "provenance names {}, which {} not part of this image",
                        list.join(", "),
                        if list.len() == 1 { "is" } else { "are" }
                    ),
                ),
                Ok(Some(statement)),
            );
        }
        if let Some(t) = top {
            if !statement.is_about(t) {
                return (
                    Check::fail(
                        name,
                        format!("provenance does not name the image's digest {t}"),
                    ),
                    Ok(Some(statement)),
                );
            }
        }
    }
    let detail = format!(
        "{} about {}",
        statement.predicate_type,
        statement
            .subject
            .iter()
            .filter_map(|s| s
                .digest
                .get("sha256")
                .map(|h| short(&format!("sha256:{h}"))))
            .collect::<Vec<_>>()
            .join(", ")
    );
    (Check::pass(name, detail), Ok(Some(statement)))
}

fn signature_check(opened: &artifact::Opened, keys: &[PublicKey], label: &str) -> Check {
    let name = format!("attestation {label} signature");
    let envelope = if opened.layer_media_type == artifact::MEDIA_TYPE_DSSE {
        match Envelope::from_json(&opened.content) {
            Ok(e) => Some(e),
            Err(e) => return Check::fail(name, format!("attestation {}: {e}", opened.digest)),
        }
    } else {
        None
    };
    let signers = |e: &Envelope| {
        e.signatures
            .iter()
            .map(|s| s.keyid.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (envelope, keys.is_empty()) {
        (None, true) => Check::skipped(name, "not checked: unsigned, and no --key given"),
        (Some(e), true) => Check::skipped(
            name,
            format!("not checked: signed by {}; give --key to check", signers(&e)),
        ),
        (None, false) => Check::fail(
            name,
            format!(
                "attestation {} is not signed, but --key was given: sign the build with `stele build --sign-key`, or verify without --key",
                opened.digest
            ),
        ),
        (Some(e), false) => {
            let mut errors = Vec::new();
            for k in keys {
                match e.verify(k) {
                    Ok(()) => return Check::pass(name, format!("signed by key {}", k.keyid())),
                    Err(err) => errors.push(err.to_string()),
                }
            }
            Check::fail(
                name,
                format!("attestation {}: {}", opened.digest, errors.join("; ")),
            )
        }
    }
}
