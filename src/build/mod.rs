//! One build: a checked recipe, its opened base and its installed packages
//! in; an image per platform (and an index over them) out, every blob
//! written to the given store. Nothing here reads the network, the clock
//! or the environment: the CLI opened and fetched everything beforehand.

use std::collections::BTreeMap;

use crate::attest::{BaseRef, SbomPackage};
use crate::fstree::{FsTree, Node, NodeKind};
use crate::layer::{LayerCache, PROFILE_ID};
use crate::oci::model::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME, ANNOTATION_ENCODING};
use crate::oci::{Built, Image, LayerBlob, Platform};
use crate::recipe::{BaseSpec, Recipe};
use crate::source::unpack::merged_view;
use crate::source::Opened;
use crate::store::BlobStore;
use crate::BuildError;

mod config;
mod packages;
mod write;
use config::assemble_image;
pub use packages::PackageInputs;
pub use write::LayerStats;

/// What the CLI decided for this build; nothing below reads flags or env.
#[derive(Clone, Debug)]
pub struct BuildSettings {
    /// Layers written at once (0 counts as 1). The bytes never depend on it.
    pub jobs: usize,
    /// Layers of earlier builds; `None` writes every layer.
    pub layer_cache: Option<LayerCache>,
}

impl Default for BuildSettings {
    fn default() -> BuildSettings {
        BuildSettings {
            jobs: 1,
            layer_cache: None,
        }
    }
}

/// What the build starts from, already fetched and verified by the caller.
#[derive(Default)]
pub struct BuildInputs<'a> {
    /// The recipe's `[base]` image or layout, opened; `None` for scratch.
    pub base: Option<&'a Opened>,
    /// The lock and fetched .debs, when the recipe has `[apt]`.
    pub packages: Option<PackageInputs<'a>>,
}

/// A finished build: the images, and per platform the packages installed
/// (for SBOMs), and the base as provenance names it.
pub struct BuildOutput {
    pub built: Built,
    pub packages: BTreeMap<String, Vec<SbomPackage>>,
    pub base: Option<BaseRef>,
    pub layers: LayerStats,
}

/// The default PATH buildkit gives scratch images; without one, an image
/// whose entrypoint is a bare name cannot start.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Files of the base image a build reads: the account files it merges with.
const BASE_FILES_READ: [&str; 2] = ["etc/passwd", "etc/group"];

/// A layer this build makes, before it is written: its complete tree and
/// the line its history entry gets.
struct LayerPlan {
    tree: FsTree,
    created_by: String,
}

/// A layer of this build, written, with the line its history entry gets.
struct PlannedLayer {
    blob: LayerBlob,
    created_by: String,
}

/// One platform's image before its layers are written.
struct PlatformPlan<'a> {
    platform: &'a Platform,
    base: Option<&'a Image>,
    layers: Vec<LayerPlan>,
    packages: Option<packages::PackageLayers<'a>>,
}

pub fn build(
    recipe: &Recipe,
    inputs: &BuildInputs,
    settings: &BuildSettings,
    store: &BlobStore,
) -> Result<BuildOutput, BuildError> {
    let base_ref = match (&recipe.base, inputs.base) {
        (BaseSpec::Scratch, _) => None,
        (
            BaseSpec::Image {
                reference, digest, ..
            },
            Some(_),
        ) => Some(BaseRef {
            name: reference.clone(),
            digest: digest.clone(),
        }),
        (
            BaseSpec::Layout {
                written, digest, ..
            },
            Some(_),
        ) => Some(BaseRef {
            name: written.clone(),
            digest: digest.clone(),
        }),
        (_, None) => {
            return Err(BuildError::Unsupported(
                "the recipe names a base image but none was opened".into(),
            ))
        }
    };
    let mut annotations = recipe.annotations.clone();
    annotations.insert(ANNOTATION_ENCODING.into(), PROFILE_ID.into());
    if let (Some(r), BaseSpec::Image { .. }) = (&base_ref, &recipe.base) {
        annotations.insert(ANNOTATION_BASE_NAME.into(), r.name.clone());
    }
    if let Some(r) = &base_ref {
        annotations.insert(ANNOTATION_BASE_DIGEST.into(), r.digest.to_string());
    }

    // Every platform's layers are planned first (trees, whose contents stay
    // where they are), then written together, so independent layers of
    // all platforms share the threads; then assembled in recipe order.
    let mut plans = Vec::new();
    for platform in &recipe.platforms {
        plans.push(plan_platform(recipe, inputs, platform, store)?);
    }
    let all: Vec<&LayerPlan> = plans.iter().flat_map(|p| &p.layers).collect();
    let (mut blobs, stats) = write::write_layers(&all, recipe.compression, settings, store)?;
    let mut images = Vec::new();
    let mut sbom = BTreeMap::new();
    for plan in plans {
        let rest = blobs.split_off(plan.layers.len());
        let mine = std::mem::replace(&mut blobs, rest);
        if let Some(p) = &plan.packages {
            sbom.insert(plan.platform.to_string(), p.sbom(&mine));
        }
        let layers: Vec<PlannedLayer> = plan
            .layers
            .into_iter()
            .zip(mine)
            .map(|(l, blob)| PlannedLayer {
                blob,
                created_by: l.created_by,
            })
            .collect();
        images.push(assemble_image(
            recipe,
            plan.platform,
            plan.base,
            &layers,
            &annotations,
        )?);
    }
    let built = Built::new(images, &annotations);
    for image in &built.images {
        store.put_bytes(&image.config.bytes)?;
        store.put_bytes(&image.manifest.bytes)?;
    }
    if let Some(index) = &built.index {
        store.put_bytes(&index.bytes)?;
    }
    Ok(BuildOutput {
        built,
        packages: sbom,
        base: base_ref,
        layers: stats,
    })
}

/// The new layers of `platform`'s image, in order: the packages', then
/// the recipe's. The base's blobs are copied into `store` here.
fn plan_platform<'a>(
    recipe: &Recipe,
    inputs: &BuildInputs<'a>,
    platform: &'a Platform,
    store: &BlobStore,
) -> Result<PlatformPlan<'a>, BuildError> {
    let base = match inputs.base {
        Some(opened) => Some((opened, base_image(opened, platform)?)),
        None => None,
    };
    let mut lower = FsTree::new();
    if let Some((opened, image)) = &base {
        for l in &image.layers {
            store.copy_checked_from(&opened.store, &l.digest, l.size)?;
        }
        lower = merged_view(&opened.store, &image.layers, &|p| {
            BASE_FILES_READ.contains(&p)
        })
        .map_err(|e| BuildError::Base {
            image: opened.name.clone(),
            source: e,
        })?;
    }
    let mut layers = Vec::new();
    let mut masters = None;
    let mut package_step = None;
    match (&recipe.apt, &inputs.packages) {
        (Some(apt), Some(pi)) => {
            let mut p = packages::package_layers(recipe, apt, pi, platform, &lower)?;
            // Package layers come first, so the step's layer numbers stay
            // the image's new-layer numbers.
            layers.append(&mut p.layers);
            lower.overlay(std::mem::take(&mut p.tree));
            masters = p.masters.take();
            package_step = Some(p);
        }
        (Some(apt), None) => {
            return Err(BuildError::Unsupported(format!(
                "{}: the recipe installs packages but none were fetched",
                apt.loc
            )))
        }
        _ => {}
    }
    if let Some(layer) = recipe_layer(recipe, &lower, masters)? {
        layers.push(layer);
    }
    Ok(PlatformPlan {
        platform,
        base: base.map(|(_, i)| i),
        layers,
        packages: package_step,
    })
}

/// The base's image for `platform`. An arm64 platform without a variant
/// matches `arm64/v8`, the only arm64 variant there is.
fn base_image<'a>(opened: &'a Opened, platform: &Platform) -> Result<&'a Image, BuildError> {
    let norm = |p: &Platform| {
        let mut p = p.clone();
        if p.architecture == "arm64" && p.variant.as_deref() == Some("v8") {
            p.variant = None;
        }
        p
    };
    let want = norm(platform);
    opened
        .built
        .images
        .iter()
        .find(|i| norm(&i.platform) == want)
        .ok_or_else(|| {
            let has = opened
                .built
                .images
                .iter()
                .map(|i| i.platform.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            BuildError::Unsupported(format!(
                "base {} has no image for {platform} (it has {has}); drop {platform} from [image] platforms or pick a base that has it",
                opened.name
            ))
        })
}

/// The layer of the recipe's own files, paths and accounts, over `lower`
/// (the layers below it): account files merge with the lower ones, missing
/// parents repeat the lower directories, and `absent` paths become
/// whiteouts only where there is something below to remove.
/// `masters` is base-passwd's, when the packages install it: like its
/// postinst, the account files are then written even without `[accounts]`,
/// unless the base already has them.
fn recipe_layer(
    recipe: &Recipe,
    lower: &FsTree,
    masters: Option<(String, String)>,
) -> Result<Option<LayerPlan>, BuildError> {
    let text = |key: &str| -> Result<Option<String>, BuildError> {
        match lower.get(key).map(|n| &n.kind) {
            Some(NodeKind::File(c)) if c.size() > 0 => {
                let bytes = c.read_all()?;
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            _ => Ok(None),
        }
    };
    let declared = !recipe.users.is_empty() || !recipe.groups.is_empty();
    let masters = match (text("etc/passwd")?, text("etc/group")?) {
        (Some(p), Some(g)) if declared => Some((p, g)),
        (Some(_), Some(_)) => None,
        _ => masters,
    };
    let mut tree = crate::assemble::recipe_tree(
        recipe,
        masters.as_ref().map(|(p, g)| (p.as_str(), g.as_str())),
    )?;
    let pointless: Vec<String> = tree
        .iter()
        .filter(|(k, n)| n.kind == NodeKind::Whiteout && lower.get(k).is_none())
        .map(|(k, _)| k.clone())
        .collect();
    for k in pointless {
        tree.remove(&k);
    }
    if tree.is_empty() {
        return Ok(None);
    }
    tree.complete_parents_over(Some(lower), &Node::dir(0o755, 0, 0, recipe.epoch))?;
    Ok(Some(LayerPlan {
        tree,
        created_by: "stele: recipe files, paths and accounts".into(),
    }))
}

/// A base layer as an OCI manifest lists it. Docker's layer media types
/// name the same bytes (image-spec media-types.md, "Compatibility Matrix"),
/// so only the descriptor changes and the blob passes through untouched.
pub(crate) fn as_oci_layer(layer: &LayerBlob) -> LayerBlob {
    LayerBlob {
        media_type: crate::oci::media::oci_layer_type(&layer.media_type),
        ..layer.clone()
    }
}
