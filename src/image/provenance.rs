//! Provenance inside the image: the facts about its inputs that an image
//! can carry without breaking the digest contract, because each one is a
//! pure function of the recipe, the lock and the pinned base. They are
//! written both as manifest annotations and as config labels: labels
//! survive `docker save`/`load` (the config is the image ID there), manifest
//! annotations do not. Who built, when the build ran and signatures vary
//! from build to build, so they ride beside the image as attestations.

use std::collections::BTreeMap;

use super::BuildInputs;
use crate::layer::Profile;
use crate::lock::Lock;
use crate::oci::model::{set_by_stele, COPIED_ANNOTATIONS};
use crate::oci::model::{
    ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME, ANNOTATION_CREATED, ANNOTATION_ENCODING,
};
use crate::oci::Digest;
use crate::recipe::Recipe;
use crate::timefmt::rfc3339;

/// Digest of the canonical recipe (`Recipe::digest`).
pub(crate) const KEY_RECIPE_DIGEST: &str = "dev.stele.recipe.digest";
/// sha256 of the lockfile's bytes as `stele lock` writes them; only for
/// recipes with `[apt]`.
pub(crate) const KEY_LOCK_DIGEST: &str = "dev.stele.lock.digest";
/// Where the embedded SBOM is, when the image has one.
pub(crate) const KEY_SBOM: &str = "dev.stele.sbom";

/// The SPDX SBOM inside every image that embeds one (each platform's image
/// has its own, at the same path). Under `/usr/share` beside the other
/// files the build puts there, in a folder of stele's own; the name ends
/// in `.spdx.json`, the suffix SBOM-aware scanners look for.
pub const SBOM_PATH: &str = "/usr/share/stele/sbom/image.spdx.json";

/// sha256 of the lockfile as stele writes it.
pub fn lock_digest(lock: &Lock) -> Digest {
    Digest::of(lock.to_text().as_bytes())
}

/// The encoding profile this build writes: the recipe's, else the lock's,
/// else the newest.
pub fn profile(recipe: &Recipe, inputs: &BuildInputs) -> Profile {
    Profile::in_force(
        recipe.encoding,
        inputs.packages.as_ref().map(|p| p.lock().encoding),
    )
}

/// The facts every image of this build records, the same as annotations
/// and as labels: recipe and lock digests, encoding profile, creation time
/// (the epoch), the base, and the embedded SBOM's path.
pub(super) fn facts(recipe: &Recipe, inputs: &BuildInputs) -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    facts.insert(KEY_RECIPE_DIGEST.into(), recipe.input_digest().to_string());
    if let Some(p) = &inputs.packages {
        facts.insert(KEY_LOCK_DIGEST.into(), lock_digest(p.lock()).to_string());
    }
    facts.insert(
        ANNOTATION_ENCODING.into(),
        profile(recipe, inputs).id().into(),
    );
    facts.insert(ANNOTATION_CREATED.into(), rfc3339(recipe.epoch));
    if let Some(b) = &inputs.base {
        if b.portable_name {
            facts.insert(ANNOTATION_BASE_NAME.into(), b.reference.name.clone());
        }
        facts.insert(
            ANNOTATION_BASE_DIGEST.into(),
            b.reference.digest.to_string(),
        );
    }
    if recipe.sbom {
        facts.insert(KEY_SBOM.into(), SBOM_PATH.into());
    }
    facts
}

/// The labels of an image: the base's, without what described the base
/// itself (its provenance keys and source/revision/version, which `base`
/// labels now name), then the recipe's, then the recipe's copied
/// annotations and the facts.
pub(super) fn labels(
    inherited: BTreeMap<String, String>,
    recipe: &Recipe,
    facts: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = inherited
        .into_iter()
        .filter(|(k, _)| set_by_stele(k).is_none() && !COPIED_ANNOTATIONS.contains(&k.as_str()))
        .collect();
    labels.extend(recipe.config.labels.clone());
    for k in COPIED_ANNOTATIONS {
        if let Some(v) = recipe.annotations.get(k) {
            labels.insert(k.into(), v.clone());
        }
    }
    labels.extend(facts.clone());
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stele_keys_are_reserved() {
        assert!(set_by_stele("dev.stele.encoding").is_some());
        assert!(set_by_stele(KEY_RECIPE_DIGEST).is_some());
        assert!(set_by_stele(ANNOTATION_CREATED).is_some());
        assert!(set_by_stele("org.opencontainers.image.source").is_none());
        assert!(set_by_stele("com.example.team").is_none());
    }

    #[test]
    fn inherited_provenance_is_dropped() {
        let recipe = crate::recipe::parse(
            std::path::Path::new("r.toml"),
            "[image]\nname = \"x\"\n[config]\nlabels = { team = \"a\" }\n[annotations]\n\"org.opencontainers.image.revision\" = \"abc\"\n",
            None,
        )
        .unwrap();
        let inherited = BTreeMap::from([
            (KEY_LOCK_DIGEST.to_string(), "sha256:old".to_string()),
            ("org.opencontainers.image.source".into(), "base-repo".into()),
            ("keep".into(), "me".into()),
        ]);
        let facts = facts(&recipe, &BuildInputs::default());
        let l = labels(inherited, &recipe, &facts);
        assert!(!l.contains_key(KEY_LOCK_DIGEST));
        assert!(!l.contains_key("org.opencontainers.image.source"));
        assert_eq!(l["keep"], "me");
        assert_eq!(l["team"], "a");
        assert_eq!(l["org.opencontainers.image.revision"], "abc");
        assert_eq!(l[KEY_RECIPE_DIGEST], recipe.input_digest().to_string());
        assert_eq!(l[ANNOTATION_CREATED], "1970-01-01T00:00:00Z");
        assert_eq!(l[KEY_SBOM], SBOM_PATH);
    }
}
