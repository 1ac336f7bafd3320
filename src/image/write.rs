//! Writing a build's new layers: each one found in the caches or written
//! in one streaming pass, independent layers on parallel threads.
//! A layer's bytes are the same whatever the thread count: profile 2026.1
//! gives each layer its own single-threaded compressor, and 2026.2's
//! blocks (compressed on one pool of `jobs` threads all the layers share)
//! each depend only on their own input. The results come back in the
//! order the layers were planned, which is the recipe's.

use super::BuildError;
use super::{BuildSettings, LayerPlan, LayerProgress};
use crate::cache::lookup::LayerQuery;
use crate::fstree::NodeKind;
use crate::layer::{self, layer_key, BlockPool, Encoding};
use crate::oci::{Digest, LayerBlob};
use crate::store::BlobStore;

/// What the layer step did, for the user to see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Layers taken from the layer cache.
    pub reused: usize,
    /// Layers written (compressed) by this build.
    pub written: usize,
    /// Each distinct layer in plan order: its history line, its blob, and
    /// whether the layer cache had it.
    pub decisions: Vec<LayerDecision>,
}

/// One layer's cache decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDecision {
    pub created_by: String,
    /// Its key (`layer::layer_key`): what cache entries answer.
    pub key: Digest,
    pub layer: LayerBlob,
    pub source: LayerSource,
}

/// Where a layer's blob came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerSource {
    Written,
    LayerCache,
}

/// The blob of every planned layer, in plan order, each in `store`.
/// Layers with the same key (an architecture-independent package on two
/// platforms) are written once.
pub(super) fn write_layers(
    plans: &[&LayerPlan],
    encoding: Encoding,
    settings: &BuildSettings<'_>,
    store: &BlobStore,
) -> Result<(Vec<LayerBlob>, LayerStats), BuildError> {
    let caches = settings.caches.as_deref();
    let keys: Vec<Digest> = plans
        .iter()
        .map(|p| match caches {
            Some(c) => c.key(&p.tree, encoding),
            None => layer_key(&p.tree, encoding, ""),
        })
        .collect();
    let mut unique: Vec<usize> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if !keys[..i].contains(key) {
            unique.push(i);
        }
    }
    let progress = |p| {
        if let Some(f) = settings.progress {
            f(p)
        }
    };
    let sizes: Vec<u64> = plans.iter().map(|p| content_size(p)).collect();
    progress(LayerProgress::Started {
        layers: unique.len(),
        bytes: unique.iter().map(|&i| sizes[i]).sum(),
    });
    // Started by the first layer written (a warm build starts none). With
    // one job the calling thread compresses: a pool thread would make it
    // two busy threads.
    let pool = std::sync::OnceLock::new();
    let results = crate::parallel::map(
        &unique,
        settings.jobs,
        |&i| sizes[i],
        |&i| -> Result<(LayerBlob, LayerSource), BuildError> {
            let query = LayerQuery {
                key: &keys[i],
                tree: &plans[i].tree,
                encoding,
            };
            if let Some(blob) = caches.and_then(|c| c.layer(&query, store)) {
                progress(LayerProgress::Done { bytes: sizes[i] });
                return Ok((blob, LayerSource::LayerCache));
            }
            let pool =
                (settings.jobs > 1).then(|| pool.get_or_init(|| BlockPool::new(settings.jobs)));
            // The tar's bytes counted against the layer's content, so the
            // headers and padding never carry the count past its total.
            let counted = std::cell::Cell::new(0u64);
            let count = |n: u64| {
                let before = counted.get().min(sizes[i]);
                counted.set(counted.get().saturating_add(n));
                let now = counted.get().min(sizes[i]);
                if now > before {
                    progress(LayerProgress::Bytes(now - before));
                }
            };
            let blob = layer::write_layer_to(
                &plans[i].tree,
                encoding,
                store,
                caches.and_then(|c| c.layer_store()),
                pool,
                &count,
            )?;
            progress(LayerProgress::Done {
                bytes: sizes[i] - counted.get().min(sizes[i]),
            });
            if let Some(c) = caches {
                c.written(&keys[i], &blob)?;
            }
            Ok((blob, LayerSource::Written))
        },
    )?;
    let mut stats = LayerStats::default();
    for (&i, (blob, source)) in unique.iter().zip(&results) {
        match source {
            LayerSource::LayerCache => stats.reused += 1,
            LayerSource::Written => stats.written += 1,
        }
        stats.decisions.push(LayerDecision {
            created_by: plans[i].created_by.clone(),
            key: keys[i].clone(),
            layer: blob.clone(),
            source: *source,
        });
    }
    let blobs = keys
        .iter()
        .map(|key| {
            let j = unique
                .iter()
                .position(|&i| &keys[i] == key)
                .expect("every key has its first layer");
            results[j].0.clone()
        })
        .collect();
    Ok((blobs, stats))
}

/// Bytes of content in a layer: how long writing it takes, roughly.
fn content_size(plan: &LayerPlan) -> u64 {
    plan.tree
        .iter()
        .map(|(_, n)| match &n.kind {
            NodeKind::File(c) => c.size(),
            _ => 0,
        })
        .sum()
}
