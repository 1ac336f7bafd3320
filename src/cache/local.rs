//! The local folder's entries behind the lookup interface: layers (when
//! the layer cache is on), packs, and the downloaded .debs. Its records
//! were written by stele itself and are checked by digest as they are
//! read; a damaged one is a silent miss and is dropped, never trouble.

use super::folder::Cache;
use super::layers::LayerCache;
use super::lookup::{Answer, DebQuery, Entry, EntryStore, LayerQuery, Stored, Trouble};
use super::packs::PackCache;
use crate::dpkg::unpack::UnpackedDeb;
use crate::oci::{Digest, LayerBlob};
use crate::store::BlobStore;

/// A cache folder's layers and packs.
#[derive(Clone, Debug)]
pub struct Local {
    root: std::path::PathBuf,
    pub(super) packs: PackCache,
    /// `None` with `--no-layer-cache`: no layer is looked up or recorded.
    pub(super) layers: Option<LayerCache>,
}

impl Local {
    /// The entries of `cache`; `layers` is its layer cache, when on.
    pub fn new(cache: &Cache, layers: Option<LayerCache>) -> Local {
        Local {
            root: cache.root().to_path_buf(),
            packs: cache.packs().clone(),
            layers,
        }
    }
}

impl EntryStore for Local {
    fn name(&self) -> String {
        format!("local cache {}", self.root.display())
    }

    fn layer(&self, query: &LayerQuery<'_>, out: &BlobStore) -> Answer<LayerBlob> {
        Ok(self
            .layers
            .as_ref()
            .and_then(|l| l.get(query.key, query.encoding, out)))
    }

    fn pack(&self, deb: &Digest) -> Answer<UnpackedDeb> {
        Ok(self.packs.load(deb))
    }

    /// A .deb is in the local folder when a download or an import put it
    /// there, checked on the way in; `into` is where it would go.
    fn deb(&self, query: &DebQuery<'_>, into: &BlobStore) -> Answer<()> {
        Ok(into.contains(query.sha256).then_some(()))
    }

    fn put(&self, entry: &Entry<'_>) -> Result<Stored, Trouble> {
        let failed = |what: &str, e| Trouble::Entry(format!("cannot record {what}: {e}"));
        match *entry {
            Entry::Layer {
                key, layer, from, ..
            } => {
                let Some(layers) = &self.layers else {
                    return Ok(Stored::Present);
                };
                // A blob a registry answered with landed here already,
                // checked: only its record is missing.
                let stored = if layers.store().contains(&layer.digest) {
                    layers.record(key, layer)
                } else {
                    layers.put(key, layer, from)
                };
                stored.map_err(|e| failed(&format!("the layer {key}"), e))?;
            }
            Entry::Pack { deb, unpacked } => self
                .packs
                .record(deb, unpacked)
                .map_err(|e| failed(&format!("the package {deb}"), e))?,
            // Downloaded straight into the folder's blobs, as archives are
            // kept there by their sha256 already.
            Entry::Deb { .. } | Entry::Archive { .. } => return Ok(Stored::Present),
        }
        Ok(Stored::Sent { bytes: 0 })
    }
}
