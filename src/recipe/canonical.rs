//! The canonical recipe: its JSON in canonical form (what provenance
//! records and the lockfile's recipe digest is taken over), the input
//! digest the image records, and the `--annotation`/`--label` a build adds
//! to it.

use super::Recipe;
use crate::oci::Digest;

impl Recipe {
    pub fn digest(&self) -> Digest {
        Digest::of(&self.canonical)
    }

    /// The digest the image records as `dev.stele.recipe.digest`: of the
    /// canonical recipe without where `[apt]` sources are fetched from
    /// (`mirror`, `keyring`, `snapshot`). Mirrors are locations and the lock's digests
    /// are identity, so another name for the same archive or a moved
    /// keyring must not change the image; everything else in the recipe
    /// does change this digest.
    pub fn input_digest(&self) -> Digest {
        self.input_digest.clone()
    }

    /// Adds `[annotations]` and `[config] labels` given beside the recipe
    /// (`build --annotation/--label`), replacing the recipe's value for
    /// the same key. The canonical recipe takes them too, so provenance and
    /// the recipe digest describe what was built, as if they were written
    /// in the file.
    pub(crate) fn add_metadata(
        &mut self,
        annotations: &[(String, String)],
        labels: &[(String, String)],
    ) {
        if annotations.is_empty() && labels.is_empty() {
            return;
        }
        let mut doc: serde_json::Value =
            serde_json::from_slice(&self.canonical).expect("the canonical recipe is JSON");
        for (k, v) in annotations {
            self.annotations.insert(k.clone(), v.clone());
            doc["annotations"][k] = v.clone().into();
        }
        for (k, v) in labels {
            self.config.labels.insert(k.clone(), v.clone());
            doc["config"]["labels"][k] = v.clone().into();
        }
        self.input_digest = Digest::of(&input_canonical_value(doc.clone()));
        self.canonical = crate::oci::json::to_canonical_vec(&doc);
    }
}

/// The canonical JSON of a recipe document without its sources' locations.
pub(super) fn input_canonical_value(mut value: serde_json::Value) -> Vec<u8> {
    if let Some(sources) = value
        .get_mut("apt")
        .and_then(|a| a.get_mut("sources"))
        .and_then(serde_json::Value::as_array_mut)
    {
        for source in sources
            .iter_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            source.remove("mirror");
            source.remove("keyring");
            source.remove("snapshot");
        }
    }
    // Where Python and npm packages are downloaded from is a location
    // too: the locks' hashes are their identity.
    for (table, key) in [("python", "index"), ("node", "registry")] {
        if let Some(t) = value
            .get_mut(table)
            .and_then(serde_json::Value::as_object_mut)
        {
            t.remove(key);
        }
    }
    crate::oci::json::to_canonical_vec(&value)
}
