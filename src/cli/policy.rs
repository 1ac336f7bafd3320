//! `stele verify --policy FILE` and `--require`: the policy file read into
//! `verify::policy::Policy`. A policy is TOML, checked strictly (an
//! unknown key is an error at its line, so a typo never weakens a gate);
//! key paths are relative to the policy file.
//!
//! ```toml
//! [[signer]]
//! name = "release CI"
//! key = "keys/release.pub"        # or key_data = """-----BEGIN PUBLIC KEY-----…"""
//!
//! [require]
//! predicate_types = ["https://slsa.dev/provenance/v1", "https://spdx.dev/Document"]
//! image_signature = true
//! builder_id = "https://ci.example/builders/release"
//! source_repository = "https://git.example/team/app"
//! source_revision = "8f3c…"
//! recipe_digest = "sha256:…"
//! base_digests = ["sha256:…"]
//! max_age = "30d"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::attest::{Kind, PublicKey};
use crate::oci::Digest;
use crate::verify::policy::Policy;

/// The largest policy file read.
const POLICY_LIMIT: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    signer: Vec<SignerEntry>,
    #[serde(default)]
    require: RequireEntry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerEntry {
    name: Option<String>,
    key: Option<PathBuf>,
    key_data: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RequireEntry {
    predicate_types: Option<Vec<String>>,
    #[serde(default)]
    image_signature: bool,
    builder_id: Option<String>,
    source_repository: Option<String>,
    source_revision: Option<String>,
    recipe_digest: Option<String>,
    base_digests: Option<Vec<String>>,
    max_age: Option<String>,
}

/// `--require KIND`: provenance, sbom (both formats), sbom-spdx,
/// sbom-cyclonedx, signature.
pub(crate) fn parse_required(words: &[String]) -> Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    for w in words {
        match w.as_str() {
            "sbom" => kinds.extend([Kind::Spdx, Kind::CycloneDx]),
            "all" => kinds.extend(Kind::ALL),
            other => match Kind::from_name(other) {
                Some(k) => kinds.push(k),
                None => bail!("--require {other}: use provenance, sbom, sbom-spdx, sbom-cyclonedx, signature or all"),
            },
        }
    }
    Ok(kinds)
}

/// Reads the policy at `path`; `now` is when the check runs.
pub(crate) fn load(path: &Path, now: u64) -> Result<Policy> {
    let shown = path.display().to_string();
    let text = read_limited(path).with_context(|| format!("reading the policy {shown}"))?;
    let file: PolicyFile = toml::from_str(&text).map_err(|e| {
        let place = e
            .span()
            .map(|s| {
                let line = text[..s.start].matches('\n').count() + 1;
                format!(":{line}")
            })
            .unwrap_or_default();
        anyhow::anyhow!("{shown}{place}: {}", e.message())
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut signers = Vec::new();
    for (i, s) in file.signer.iter().enumerate() {
        let name = s
            .name
            .clone()
            .unwrap_or_else(|| format!("signer {}", i + 1));
        let key = match (&s.key, &s.key_data) {
            (Some(p), None) => PublicKey::load(&dir.join(p))?,
            (None, Some(pem)) => PublicKey::from_pem(pem, &PathBuf::from(format!("{shown} [[signer]] {name}")))?,
            _ => bail!("{shown}: [[signer]] {name} needs exactly one of `key` (a public key file, relative to the policy) and `key_data` (the PEM text)"),
        };
        signers.push((name, key));
    }
    if signers.is_empty() {
        bail!("{shown}: a policy needs at least one [[signer]] with the public key its attestations must be signed by");
    }
    let r = file.require;
    let mut kinds = Vec::new();
    for t in r.predicate_types.unwrap_or_else(|| {
        [Kind::Provenance, Kind::Spdx, Kind::CycloneDx]
            .iter()
            .map(|k| k.predicate_type().to_string())
            .collect()
    }) {
        match Kind::of_predicate(&t) {
            Some(k) => kinds.push(k),
            None => bail!(
                "{shown}: predicate type {t} is none stele attests: use {}, {} or {}",
                Kind::Provenance.predicate_type(),
                Kind::Spdx.predicate_type(),
                Kind::CycloneDx.predicate_type()
            ),
        }
    }
    if r.image_signature {
        kinds.push(Kind::Signature);
    }
    let digest = |what: &str, d: &str| -> Result<Digest> {
        d.parse::<Digest>()
            .map_err(|e| anyhow::anyhow!("{shown}: {what} {d}: {e}"))
    };
    let recipe_digest = match &r.recipe_digest {
        Some(d) => Some(digest("recipe_digest", d)?),
        None => None,
    };
    let base_digests = match &r.base_digests {
        Some(list) => Some(
            list.iter()
                .map(|d| digest("base_digests", d))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let max_age = match &r.max_age {
        Some(t) => Some(
            super::cache::parse_duration(t)
                .map_err(|e| anyhow::anyhow!("{shown}: max_age: {e}"))?
                .as_secs(),
        ),
        None => None,
    };
    Ok(Policy {
        path: shown,
        signers,
        kinds,
        builder_id: r.builder_id,
        source_repository: r.source_repository,
        source_revision: r.source_revision,
        recipe_digest,
        base_digests,
        max_age,
        now,
    })
}

fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(POLICY_LIMIT + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > POLICY_LIMIT {
        return Err(std::io::Error::other(format!(
            "larger than {POLICY_LIMIT} bytes: not a policy"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_reads_with_its_keys_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::attest::PrivateKey::from_seed(&[4; 32]);
        std::fs::write(dir.path().join("ci.pub"), key.public().to_pem()).unwrap();
        let p = dir.path().join("policy.toml");
        std::fs::write(
            &p,
            "[[signer]]\nkey = \"ci.pub\"\n[require]\npredicate_types = [\"https://slsa.dev/provenance/v1\"]\nimage_signature = true\nmax_age = \"7d\"\nbase_digests = []\n",
        )
        .unwrap();
        let policy = load(&p, 1000).unwrap();
        assert_eq!(policy.signers[0].1, *key.public());
        assert_eq!(policy.kinds, [Kind::Provenance, Kind::Signature]);
        assert_eq!(policy.max_age, Some(7 * 86_400));
        assert_eq!(policy.base_digests, Some(vec![]));

        std::fs::write(
            &p,
            "[[signer]]\nkey = \"ci.pub\"\n[require]\nbuider_id = \"x\"\n",
        )
        .unwrap();
        let e = format!("{:#}", load(&p, 0).unwrap_err());
        assert!(
            e.contains("policy.toml:4") && e.contains("buider_id"),
            "{e}"
        );
        std::fs::write(&p, "[require]\nmax_age = \"7d\"\n").unwrap();
        let e = format!("{:#}", load(&p, 0).unwrap_err());
        assert!(e.contains("[[signer]]"), "{e}");
        assert!(parse_required(&["sbom".into()]).unwrap().len() == 2);
        assert!(parse_required(&["sboms".into()]).is_err());
    }
}
