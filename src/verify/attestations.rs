//! The attestation checks, cosign- and slsa-verifier-style.
//!
//! Without keys, every artifact beside the image is checked for what it
//! can be checked for: its blobs are intact, it is about this image (its
//! OCI `subject`, its statement's subjects) and it parses; signatures are
//! "not checked", since only a key the verifier trusts makes a signature
//! mean anything.
//!
//! With keys, what counts is what those keys signed: each required kind
//! (provenance about the image, each platform's SBOMs, image signatures)
//! must have at least one artifact that one of the keys signed and that
//! checks out. Whatever else sits beside the image (other keys'
//! attestations, the unsigned SBOM copies scanners read, damaged or
//! foreign artifacts) is listed and ignored: whoever can push to a
//! repository can add referrers, and must not be able to block a deploy.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageManifest};

use super::fsck::{short, Walk};
use super::{Check, Subject};
use crate::attest::artifact::{
    self, Form, Kind, Signer, ANNOTATION_ATTESTATION, ANNOTATION_PLATFORM, MEDIA_TYPE_BUNDLE,
};
use crate::attest::{AttestError, PublicKey, Statement};
use crate::oci::cosign::SIGNATURE_ARTIFACT_TYPE;
use crate::oci::media::{CONFIG_LIMIT, MANIFEST_LIMIT};
use crate::oci::{our_digest, Digest};
use crate::store::BlobStore;

/// One artifact beside the image, as the checks found it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Found {
    pub label: String,
    pub digest: String,
    pub kind: Option<&'static str>,
    pub platform: Option<String>,
    /// What it is about.
    pub subject: Option<String>,
    /// The key id of the given key that signed it.
    pub signed_by: Option<String>,
    /// Who signed it, when none of the given keys did (as the artifact
    /// names its signer), or why it does not count.
    pub note: String,
    /// Whether it counts towards a required kind.
    pub counted: bool,
}

/// What the attestation checks found.
pub struct Attested {
    pub checks: Vec<Check>,
    /// `externalParameters.epoch` of a readable provenance.
    pub provenance_epoch: Option<u64>,
    /// Every artifact about this image.
    pub found: Vec<Found>,
    /// With keys: the provenance statements a key signed that check out.
    pub signed_provenance: Vec<Statement>,
}

/// What `--key` (or a policy) requires: these kinds, each with at least
/// one artifact signed by one of `keys`.
pub struct Required<'a> {
    pub keys: &'a [PublicKey],
    pub kinds: &'a [Kind],
}

pub fn check(subject: &Subject, walk: &Walk, required: &Required) -> Attested {
    let mut out = Attested {
        checks: Vec::new(),
        provenance_epoch: None,
        found: Vec::new(),
        signed_provenance: Vec::new(),
    };
    let keyed = !required.keys.is_empty();
    // (kind, subject) → the artifacts a key signed that check out.
    let mut valid: BTreeMap<(Kind, Digest), Vec<String>> = BTreeMap::new();
    for d in &subject.artifacts {
        let label = label_of(d);
        let mut found = Found {
            label: label.clone(),
            digest: d.digest().to_string(),
            kind: None,
            platform: None,
            subject: None,
            signed_by: None,
            note: String::new(),
            counted: false,
        };
        let Some(manifest) = read_manifest(subject, d, &label, keyed, &mut out.checks) else {
            continue;
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
        found.subject = about.as_ref().map(ToString::to_string);
        let digest = our_digest(d.digest()).expect("read_manifest checked the digest");
        let blobs = blobs_check(&subject.store, &manifest, &digest, &label);
        let intact = blobs.status == super::Status::Pass;
        let subject_check = subject_check(&label, about.as_ref(), mine, subject, &digest);
        if keyed {
            // Integrity and subjects of what no key signed are not this
            // verification's business; they are listed below.
            if !intact || !mine {
                found.note = if intact {
                    format!("{}: ignored", subject_check.detail)
                } else {
                    format!("{}: ignored", blobs.detail)
                };
                out.checks
                    .push(Check::skipped(format!("attestation {label}"), &found.note));
                out.found.push(found);
                continue;
            }
        } else {
            out.checks.push(blobs);
            out.checks.push(subject_check);
            if !intact {
                let why = "its blobs did not verify (see its blob check)";
                for what in ["statement", "signature"] {
                    out.checks
                        .push(Check::skipped(format!("attestation {label} {what}"), why));
                }
                out.found.push(found);
                continue;
            }
        }
        let opened = match artifact::open(&subject.store, &digest, Some(d.size())) {
            Ok(o) => o,
            Err(AttestError::Malformed { message, .. }) => {
                let why = format!("not an attestation stele reads ({message})");
                out.checks
                    .push(Check::skipped(format!("attestation {label}"), why.clone()));
                found.note = why;
                out.found.push(found);
                continue;
            }
            Err(e) => {
                let check = format!("attestation {label} statement");
                if keyed {
                    out.checks
                        .push(Check::skipped(check, format!("{e}: ignored")));
                } else {
                    out.checks.push(Check::fail(check, e.to_string()));
                }
                found.note = e.to_string();
                out.found.push(found);
                continue;
            }
        };
        found.kind = Some(opened.kind.name());
        found.platform = opened.platform.clone();
        let signer = opened.signer(required.keys);
        let statement = statement_check(&opened, walk, &label);
        if opened.kind == Kind::Provenance {
            if let Ok(Some(st)) = &statement.1 {
                out.provenance_epoch =
                    st.predicate["buildDefinition"]["externalParameters"]["epoch"].as_u64();
            }
        }
        if !keyed {
            out.checks.push(statement.0);
            out.checks
                .push(unkeyed_signature_check(&opened, &signer, &label));
            out.found.push(found);
            continue;
        }
        match signer {
            Signer::Key { keyid, .. } => {
                found.signed_by = Some(keyid.clone());
                let name = format!("attestation {label}");
                match statement.1 {
                    Ok(st) => {
                        found.counted = true;
                        found.note = format!("signed by key {keyid}");
                        out.checks.push(Check::pass(
                            name,
                            format!("signed by key {keyid}; {}", statement.0.detail),
                        ));
                        valid
                            .entry((opened.kind, opened.subject.clone()))
                            .or_default()
                            .push(format!("{} by key {keyid}", short(&digest.to_string())));
                        if let (Kind::Provenance, Some(st)) = (opened.kind, st) {
                            out.signed_provenance.push(st);
                        }
                    }
                    // Signed by a trusted key, yet wrong: that is a
                    // finding, not noise.
                    Err(()) => {
                        found.note = statement.0.detail.clone();
                        out.checks.push(Check::fail(
                            name,
                            format!("signed by key {keyid}, but {}", statement.0.detail),
                        ));
                    }
                }
            }
            Signer::Other { who } => {
                found.note = format!("signed by {who}, none of the given keys: ignored");
                out.checks
                    .push(Check::skipped(format!("attestation {label}"), &found.note));
            }
            Signer::Unsigned => {
                found.note =
                    "unsigned (a copy for scanners, or made without a key): ignored".into();
                out.checks
                    .push(Check::skipped(format!("attestation {label}"), &found.note));
            }
            Signer::Altered { keyid } => {
                found.note = format!("says key {keyid} signed it, but that signature does not verify (altered after signing, or forged): ignored");
                out.checks
                    .push(Check::skipped(format!("attestation {label}"), &found.note));
            }
            Signer::Unverifiable { why } => {
                found.note = format!("{why}: ignored");
                out.checks
                    .push(Check::skipped(format!("attestation {label}"), &found.note));
            }
        }
        out.found.push(found);
    }
    if keyed {
        if out.found.is_empty() {
            out.checks.push(Check::fail(
                "attestations",
                if built_by_stele(walk) {
                    format!("--key was given, but no attestation about this image is stored beside it (no referrer); {STELE_BUILT} {DROPPED}. An image built with `--attest none` has none: build it with `stele build --sign-key`")
                } else {
                    format!("--key was given, but no attestation about this image is stored beside it (no referrer): build it with `stele build --sign-key`; if it was signed, {DROPPED}")
                },
            ));
        }
        out.checks
            .extend(coverage(subject, walk, required, &valid, &out.found));
    } else {
        let listed: Vec<&str> = out.found.iter().map(|f| f.label.as_str()).collect();
        out.checks
            .push(if listed.is_empty() && built_by_stele(walk) {
                Check::skipped(
                    "attestations",
                    format!("the image has no attestations beside it; {STELE_BUILT} {DROPPED}"),
                )
            } else if listed.is_empty() {
                Check::skipped("attestations", "the image has no attestations")
            } else {
                Check::pass(
                    "attestations",
                    format!("{} found: {}", listed.len(), listed.join(", ")),
                )
            });
    }
    out
}

/// Reads an artifact's manifest; a failure is the artifact's blob check
/// (failed without keys, listed with them).
fn read_manifest(
    subject: &Subject,
    d: &Descriptor,
    label: &str,
    keyed: bool,
    checks: &mut Vec<Check>,
) -> Option<ImageManifest> {
    let result = our_digest(d.digest())
        .map_err(|_| format!("{} is not a sha256 digest stele can verify", d.digest()))
        .and_then(|digest| {
            subject
                .store
                .read_verified(&digest, Some(d.size()), MANIFEST_LIMIT)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<ImageManifest>(&b)
                        .map_err(|e| format!("{digest} is not a manifest: {e}"))
                })
        });
    match result {
        Ok(m) => Some(m),
        Err(e) if keyed => {
            checks.push(Check::skipped(
                format!("attestation {label}"),
                format!("{e}: ignored"),
            ));
            None
        }
        Err(e) => {
            checks.push(Check::fail(format!("attestation {label} blobs"), e));
            None
        }
    }
}

fn subject_check(
    label: &str,
    about: Option<&Digest>,
    mine: bool,
    subject: &Subject,
    digest: &Digest,
) -> Check {
    let name = format!("attestation {label} subject");
    match (about, mine) {
        (Some(a), true) => Check::pass(name, a.to_string()),
        (Some(a), false) => Check::fail(
            name,
            format!(
                "attestation {digest} is about {a}, which is not this image ({}) nor one of its manifests: it is stale, left from an image that was replaced",
                subject.digest().as_ref().map_or("?".into(), Digest::to_string)
            ),
        ),
        (None, _) => Check::fail(name, format!("artifact {digest} names no sha256 subject")),
    }
}

/// One check per required kind and subject: the index (or the single
/// manifest) for provenance, each platform's manifest for SBOMs, both
/// for image signatures (containers/image checks the index and the
/// instance it pulls).
fn coverage(
    subject: &Subject,
    walk: &Walk,
    required: &Required,
    valid: &BTreeMap<(Kind, Digest), Vec<String>>,
    found: &[Found],
) -> Vec<Check> {
    let keys = required
        .keys
        .iter()
        .map(|k| k.keyid())
        .collect::<Vec<_>>()
        .join(", ");
    let Some(top) = subject.digest() else {
        return vec![Check::fail(
            "attestations",
            "the image's descriptor names no sha256 digest",
        )];
    };
    let images: Vec<(String, Digest)> = walk
        .images
        .iter()
        .filter(|i| i.runnable)
        .filter_map(|i| Some((i.label.clone(), i.digest.clone()?)))
        .collect();
    let mut checks = Vec::new();
    for kind in required.kinds {
        let mut wanted: Vec<(String, Digest)> = Vec::new();
        match kind {
            Kind::Provenance => wanted.push((String::new(), top.clone())),
            Kind::Spdx | Kind::CycloneDx => {
                wanted.extend(images.iter().map(|(l, d)| (format!(" {l}"), d.clone())))
            }
            Kind::Signature => {
                if walk.indexes.is_empty() {
                    wanted.push((String::new(), top.clone()));
                } else {
                    wanted.push((" index".into(), top.clone()));
                    wanted.extend(images.iter().map(|(l, d)| (format!(" {l}"), d.clone())));
                }
            }
        }
        for (where_, digest) in wanted {
            let name = format!("signed {}{where_}", kind.name());
            checks.push(match valid.get(&(*kind, digest.clone())) {
                Some(by) => Check::pass(name, by.join(", ")),
                None => {
                    let others: Vec<String> = found
                        .iter()
                        .filter(|f| {
                            f.kind == Some(kind.name())
                                && f.subject.as_deref() == Some(&digest.to_string())
                        })
                        .map(|f| format!("{} ({})", short(&f.digest), f.note))
                        .collect();
                    Check::fail(
                        name,
                        if others.is_empty() {
                            format!("no {} about {digest} is signed by key {keys}: build with `stele build --sign-key` (and push with stele, or a copy tool that keeps referrers)", kind.name())
                        } else {
                            format!(
                                "no {} about {digest} is signed by key {keys}; found only: {}",
                                kind.name(),
                                others.join("; ")
                            )
                        },
                    )
                }
            });
        }
    }
    checks
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

/// `provenance`, `sbom-spdx linux/amd64 (bundle)`, `signature of
/// sha256:…`, or the digest of an artifact that is not stele's.
fn label_of(d: &Descriptor) -> String {
    let ann = d.annotations().clone().unwrap_or_default();
    let artifact_type = d
        .artifact_type()
        .as_ref()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let form = if artifact_type == MEDIA_TYPE_BUNDLE {
        " (bundle)"
    } else {
        ""
    };
    match ann.get(ANNOTATION_ATTESTATION) {
        Some(kind) if artifact_type == SIGNATURE_ARTIFACT_TYPE || kind == "signature" => {
            format!("{kind} {}", short(d.digest().as_ref()))
        }
        Some(kind) => match ann.get(ANNOTATION_PLATFORM) {
            Some(p) => format!("{kind} {p}{form}"),
            None => format!("{kind}{form}"),
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

/// The statement (or SBOM document, or signature payload) parses and is
/// about the artifact's subject, and a provenance's subjects are all this
/// image's.
fn statement_check(
    opened: &artifact::Opened,
    walk: &Walk,
    label: &str,
) -> (Check, Result<Option<Statement>, ()>) {
    let name = format!("attestation {label} statement");
    let checked = match opened.check(&opened.subject) {
        Ok(c) => c,
        Err(e) => return (Check::fail(name, e.to_string()), Err(())),
    };
    if let Some(claims) = &checked.claims {
        return (
            Check::pass(
                name,
                format!("signs {} as {}", short(&claims.digest), claims.identity),
            ),
            Ok(None),
        );
    }
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
                Err(()),
            );
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

/// Without keys nothing is verified; the check says who the artifact
/// says signed it.
fn unkeyed_signature_check(opened: &artifact::Opened, signer: &Signer, label: &str) -> Check {
    let name = format!("attestation {label} signature");
    match signer {
        Signer::Unsigned => Check::skipped(name, "not checked: unsigned, and no --key given"),
        Signer::Unverifiable { why } => Check::skipped(name, format!("not checked: {why}")),
        Signer::Other { who } => Check::skipped(
            name,
            format!(
                "not checked: signed by {who}{}; give --key to check",
                if opened.form == Form::Dsse {
                    " (DSSE)"
                } else {
                    ""
                }
            ),
        ),
        Signer::Key { .. } | Signer::Altered { .. } => unreachable!("no keys were given"),
    }
}
