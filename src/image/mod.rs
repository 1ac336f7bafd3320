//! One build: a checked recipe, its opened base and its installed packages
//! in; an image per platform (and an index over them) out, every blob
//! written to the given store. Nothing here reads the network, the clock
//! or the environment: the CLI opened and fetched everything beforehand.

use std::collections::BTreeMap;

use crate::attest::{BaseRef, Distro, SbomPackage};
use crate::fstree::{Content, FsTree, Node, NodeKind};
use crate::oci::{Built, Image, LayerBlob, Platform};
use crate::recipe::Recipe;
use crate::source::view::{self, LayerViews};
use crate::source::Opened;
use crate::store::BlobStore;

mod config;
mod error;
mod package_layers;
pub mod provenance;
mod source_groups;
mod write;
use config::assemble_image;
pub use error::BaseError;
pub use error::BuildError;
pub use package_layers::Packages;
pub use write::{LayerDecision, LayerSource, LayerStats};
// `LayerProgress` is defined beside `BuildSettings`, which carries it.

/// What the CLI decided for this build; nothing below reads flags or env.
#[derive(Clone)]
pub struct BuildSettings<'a> {
    /// Layers written at once (0 counts as 1). The bytes never depend on it.
    pub jobs: usize,
    /// Where each layer is looked up before it is written (the local
    /// layer cache, then `--cache-from`; every answer checked) and
    /// recorded after; `None` writes every layer and records none.
    pub caches: Option<std::sync::Arc<crate::cache::Chain>>,
    /// Told how the layer step advances (from its threads), for the
    /// CLI's progress; never changes what is written.
    pub progress: Option<&'a (dyn Fn(LayerProgress) + Sync)>,
}

/// How far the layer step is, as it writes: sizes are bytes of file
/// content, so `Started`'s total is reached when every layer is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerProgress {
    /// The distinct layers this build has, and their content.
    Started { layers: usize, bytes: u64 },
    /// Content written into a layer (from its writing thread).
    Bytes(u64),
    /// A layer is done, taken from a cache or written: `bytes` is what of
    /// its content `Bytes` had not counted.
    Done { bytes: u64 },
}

impl std::fmt::Debug for BuildSettings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildSettings")
            .field("jobs", &self.jobs)
            .field("caches", &self.caches)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for BuildSettings<'_> {
    fn default() -> Self {
        BuildSettings {
            jobs: 1,
            caches: None,
            progress: None,
        }
    }
}

/// The recipe's `[base]`, opened and checked: it has an image for every
/// platform the recipe builds.
pub struct BaseImage {
    pub(crate) opened: Opened,
    /// How provenance and the base annotations name it.
    pub(crate) reference: BaseRef,
    /// Whether `reference.name` is a portable name (a registry reference)
    /// worth recording in the image; a local layout's path is not.
    pub(crate) portable_name: bool,
    /// Per recipe platform, the index of its image in `opened.built`.
    images: BTreeMap<String, usize>,
    /// Every layer of `opened`, by digest, as the build sees it; each
    /// one's DiffID is the one its config lists.
    views: LayerViews,
}

impl BaseImage {
    /// Checks that `opened` has an image for each of `platforms`. An
    /// arm64 platform without a variant matches `arm64/v8`, the only arm64
    /// variant there is.
    /// `views` must hold every layer of `opened` (`cache::ViewCache::views_of`).
    pub fn new(
        opened: Opened,
        views: LayerViews,
        reference: BaseRef,
        portable_name: bool,
        platforms: &[Platform],
    ) -> Result<BaseImage, BaseError> {
        let norm = |p: &Platform| {
            let mut p = p.clone();
            if p.architecture == "arm64" && p.variant.as_deref() == Some("v8") {
                p.variant = None;
            }
            p
        };
        let mut images = BTreeMap::new();
        for platform in platforms {
            let want = norm(platform);
            let found = opened
                .built
                .images
                .iter()
                .position(|i| norm(&i.platform) == want)
                .ok_or_else(|| BaseError::NoPlatform {
                    image: opened.name.clone(),
                    platform: platform.clone(),
                    has: opened
                        .built
                        .images
                        .iter()
                        .map(|i| i.platform.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            if let Some(l) = opened.built.images[found]
                .layers
                .iter()
                .find(|l| !views.views.contains_key(&l.digest))
            {
                return Err(BaseError::NoView {
                    image: opened.name.clone(),
                    layer: l.digest.clone(),
                });
            }
            images.insert(platform.to_string(), found);
        }
        Ok(BaseImage {
            opened,
            reference,
            portable_name,
            images,
            views,
        })
    }

    pub fn reference(&self) -> &BaseRef {
        &self.reference
    }

    fn image(&self, platform: &Platform) -> Option<&Image> {
        let i = *self.images.get(&platform.to_string())?;
        self.opened.built.images.get(i)
    }
}

/// What the build starts from, already fetched and verified by the
/// pipeline's resolve stage: scratch or an opened base, and the packages
/// exactly when the recipe has `[apt]`.
#[derive(Default)]
pub struct BuildInputs {
    /// The recipe's `[base]`, opened; `None` for scratch.
    pub base: Option<BaseImage>,
    /// The lock and unpacked .debs of the recipe's `[apt]`.
    pub packages: Option<Packages>,
    /// `[python]` and `[node]`: each platform's chosen packages, unpacked.
    pub apps: crate::apps::AppInputs,
}

/// A finished build: the images, and per platform the packages installed
/// (for SBOMs), and the base as provenance names it.
pub struct BuildOutput {
    pub built: Built,
    pub packages: BTreeMap<String, Vec<SbomPackage>>,
    /// Per platform, the image's operating system as SBOMs name it, when
    /// its packages say (an os-release, else the suite they come from).
    pub distros: BTreeMap<String, Distro>,
    pub base: Option<BaseRef>,
    pub layers: LayerStats,
    /// Per platform with packages, what their maintainer scripts would
    /// have done and what became of it.
    pub scripts: BTreeMap<String, crate::dpkg::install::ScriptReport>,
    /// The base's distinct layers: known from the view cache, and read
    /// (decompressed) by this build; `None` for scratch.
    pub base_layers: Option<BaseLayerStats>,
}

/// How a build came to know its base's layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseLayerStats {
    pub cached: usize,
    pub read: usize,
}

/// The default PATH buildkit gives scratch images; without one, an image
/// whose entrypoint is a bare name cannot start.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
    packages: Option<package_layers::PackageLayers>,
    /// `[python]`/`[node]` layers: each one's index in `layers` and the
    /// packages it holds.
    apps: Vec<(usize, Vec<crate::attest::DebPackage>)>,
    distro: Option<Distro>,
}

pub fn build(
    recipe: &Recipe,
    inputs: &BuildInputs,
    settings: &BuildSettings<'_>,
    store: &BlobStore,
) -> Result<BuildOutput, BuildError> {
    let base_ref = inputs.base.as_ref().map(|b| b.reference.clone());
    // The recipe cannot set a fact's key (refused when it is read), so
    // the facts never overwrite a recipe annotation.
    let facts = provenance::facts(recipe, inputs);
    let mut annotations = recipe.annotations.clone();
    annotations.extend(facts.clone());

    // Every platform's layers are planned first (trees, whose contents stay
    // where they are), then written together, so independent layers of
    // all platforms share the threads; then assembled in recipe order.
    let mut plans = Vec::new();
    for platform in &recipe.platforms {
        plans.push(plan_platform(recipe, inputs, platform, store)?);
    }
    let all: Vec<&LayerPlan> = plans.iter().flat_map(|p| &p.layers).collect();
    let encoding = crate::layer::Encoding {
        profile: provenance::profile(recipe, inputs),
        compression: recipe.compression,
    };
    let (mut blobs, stats) = write::write_layers(&all, encoding, settings, store)?;
    let mut images = Vec::new();
    let mut sbom = BTreeMap::new();
    let mut scripts = BTreeMap::new();
    let mut distros = BTreeMap::new();
    for plan in plans {
        if let Some(d) = &plan.distro {
            distros.insert(plan.platform.to_string(), d.clone());
        }
        let rest = blobs.split_off(plan.layers.len());
        let mine = std::mem::replace(&mut blobs, rest);
        if let Some(p) = &plan.packages {
            sbom.insert(plan.platform.to_string(), p.sbom(&mine));
            scripts.insert(plan.platform.to_string(), p.script_report().clone());
        }
        for (at, packages) in &plan.apps {
            let listed: &mut Vec<SbomPackage> = sbom.entry(plan.platform.to_string()).or_default();
            listed.extend(packages.iter().map(|deb| SbomPackage {
                deb: deb.clone(),
                layer_digest: mine[*at].digest.clone(),
            }));
            listed.sort();
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
            &facts,
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
        distros,
        base: base_ref,
        layers: stats,
        scripts,
        base_layers: inputs.base.as_ref().map(|b| BaseLayerStats {
            cached: b.views.views.len() - b.views.read,
            read: b.views.read,
        }),
    })
}

/// The new layers of `platform`'s image, in order: the packages', then
/// the recipe's. The base's blobs are copied into `store` here.
fn plan_platform<'a>(
    recipe: &Recipe,
    inputs: &'a BuildInputs,
    platform: &'a Platform,
    store: &BlobStore,
) -> Result<PlatformPlan<'a>, BuildError> {
    let base = match &inputs.base {
        Some(b) => {
            let image = b.image(platform).ok_or_else(|| BaseError::NoPlatform {
                image: b.opened.name.clone(),
                platform: platform.clone(),
                has: String::from("other platforms than the recipe's"),
            })?;
            Some((b, image))
        }
        None => None,
    };
    let mut lower = FsTree::new();
    if let Some((b, image)) = &base {
        let mut views = Vec::new();
        for l in &image.layers {
            store.copy_stamped_from(
                &b.opened.store,
                &l.digest,
                l.size,
                b.views.stamps.get(&l.digest),
            )?;
            // `BaseImage::new` checked every layer has its view.
            views.push(&b.views.views[&l.digest]);
        }
        lower = view::merged(&views);
    }
    let mut layers = Vec::new();
    let mut masters = None;
    let mut accounts = Vec::new();
    let mut shared = FsTree::new();
    let mut package_step = None;
    if let Some(pi) = &inputs.packages {
        let mut p = package_layers::package_layers(recipe, pi, platform, &lower)?;
        // Package layers come first, so the step's layer numbers stay
        // the image's new-layer numbers.
        layers.append(&mut p.layers);
        lower.overlay(std::mem::take(&mut p.tree));
        masters = p.masters.take();
        accounts = std::mem::take(&mut p.accounts);
        shared = std::mem::take(&mut p.shared);
        package_step = Some(p);
    }
    let mut apps = Vec::new();
    for layer in
        crate::apps::app_layers(recipe, &inputs.apps, platform, &lower).map_err(Box::new)?
    {
        lower.overlay(layer.tree.clone());
        apps.push((layers.len(), layer.packages));
        layers.push(LayerPlan {
            tree: layer.tree,
            created_by: layer.created_by,
        });
    }
    // The packages' own os-release (base-files'), else their suite's
    // release: what scanners qualify package URLs by.
    let distro = package_step.as_ref().and_then(|_| {
        let suites = inputs
            .packages
            .iter()
            .flat_map(|i| &i.lock().sources)
            .map(|s| s.suite.as_str());
        Distro::of_tree(&lower, suites)
    });
    let sbom = recipe.sbom.then(|| {
        let mut packages = package_step
            .as_ref()
            .map(package_layers::PackageLayers::deb_packages)
            .unwrap_or_default();
        packages.extend(apps.iter().flat_map(|(_, p)| p.iter().cloned()));
        crate::attest::spdx::embedded_document(&crate::attest::spdx::Embedded {
            image_name: &recipe.name,
            platform,
            epoch: recipe.epoch,
            base: inputs.base.as_ref().map(|b| &b.reference),
            packages: &packages,
            distro: distro.as_ref(),
        })
    });
    let installs = |name| package_step.as_ref().is_some_and(|p| p.installs(name));
    let tools = crate::assemble::local_ca::CaTools {
        ca_certificates: installs("ca-certificates"),
        java: installs("ca-certificates-java"),
    };
    let layer = recipe_layer(recipe, &lower, masters, &accounts, shared, tools, sbom)?;
    check_user(recipe, platform, &lower, layer.as_ref().map(|l| &l.tree))?;
    layers.extend(layer);
    Ok(PlatformPlan {
        platform,
        base: base.map(|(_, i)| i),
        layers,
        packages: package_step,
        apps,
        distro,
    })
}

/// `[config] user` by name must be an account of the image, or the
/// container fails only when it starts ("unable to find user"). Numeric
/// ids need no account, as in Docker.
fn check_user(
    recipe: &Recipe,
    platform: &Platform,
    lower: &FsTree,
    top: Option<&FsTree>,
) -> Result<(), BuildError> {
    let Some(user) = &recipe.config.user else {
        return Ok(());
    };
    let (name, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user.as_str(), None),
    };
    let names = |key: &str| -> Result<Vec<String>, BuildError> {
        let node = top.and_then(|t| t.get(key)).or_else(|| lower.get(key));
        match node.map(|n| &n.kind) {
            Some(NodeKind::File(c)) => {
                let bytes = c.read_all()?;
                Ok(String::from_utf8_lossy(&bytes)
                    .lines()
                    .filter_map(|l| l.split(':').next())
                    .map(str::to_string)
                    .collect())
            }
            _ => Ok(Vec::new()),
        }
    };
    let loc = recipe
        .config
        .user_loc
        .as_ref()
        .map_or_else(|| recipe.path.display().to_string(), |l| l.0.clone());
    for (what, value, key, file) in [
        ("user", Some(name), "etc/passwd", "/etc/passwd"),
        ("group", group, "etc/group", "/etc/group"),
    ] {
        let Some(value) = value.filter(|v| v.parse::<u32>().is_err()) else {
            continue;
        };
        if !names(key)?.iter().any(|n| n == value) {
            return Err(BuildError::UnknownAccount {
                loc: loc.clone(),
                what,
                name: value.to_string(),
                platform: platform.to_string(),
                file,
            });
        }
    }
    Ok(())
}

/// The layer of the recipe's own files, paths and accounts, over `lower`
/// (the layers below it): account files merge with the lower ones, missing
/// parents repeat the lower directories, and `absent` paths become
/// whiteouts only where there is something below to remove.
/// `masters` is base-passwd's, when the packages install it: like its
/// postinst, the account files are then written even without `[accounts]`,
/// unless the base already has them. `accounts` are those the packages
/// declare, merged into the base's files or the masters. `tools` says
/// which certificate packages this build installs: certificates the
/// recipe adds under /usr/local/share/ca-certificates then join the
/// bundle, links and Java's store here (`assemble::local_ca`), so the
/// package layers never depend on them. `sbom` is the embedded SBOM's bytes;
/// without one, an SBOM the layers below carry (a stele-built base's) is
/// whited out, since it describes another image.
fn recipe_layer(
    recipe: &Recipe,
    lower: &FsTree,
    masters: Option<(String, String)>,
    accounts: &[crate::dpkg::install::Declared],
    shared: FsTree,
    tools: crate::assemble::local_ca::CaTools,
    sbom: Option<Vec<u8>>,
) -> Result<Option<LayerPlan>, BuildError> {
    let text = |key: &str| file_text(lower, key);
    let declared = !recipe.users.is_empty() || !recipe.groups.is_empty() || !accounts.is_empty();
    let masters = match (text("etc/passwd")?, text("etc/group")?) {
        (Some(p), Some(g)) if declared => Some((p, g)),
        (Some(_), Some(_)) => None,
        _ => masters,
    };
    let mut tree = crate::assemble::recipe_tree(
        recipe,
        masters.as_ref().map(|(p, g)| (p.as_str(), g.as_str())),
        accounts,
    )?;
    // What update-ca-certificates would make of the recipe's local CAs,
    // unless the recipe writes the path.
    let cas =
        crate::assemble::local_ca::changes(lower, &tree, tools, recipe.epoch).map_err(|error| {
            crate::assemble::AssembleError::LocalCa {
                recipe: recipe.path.clone(),
                error: Box::new(error),
            }
        })?;
    for (key, node) in cas {
        if tree.get(&key).is_none() {
            tree.replace(key, node);
        }
    }
    // The dpkg database's shared files, unless the recipe writes the path.
    for (key, node) in shared.iter() {
        if tree.get(key).is_none() {
            tree.replace(key.clone(), node.clone());
        }
    }
    let pointless: Vec<String> = tree
        .iter()
        .filter(|(k, n)| n.kind == NodeKind::Whiteout && lower.get(k).is_none())
        .map(|(k, _)| k.clone())
        .collect();
    for k in pointless {
        tree.remove(&k);
    }
    let sbom_key = provenance::SBOM_PATH.trim_start_matches('/');
    let taken = tree.get(sbom_key).is_some();
    if taken && sbom.is_some() {
        return Err(BuildError::SbomPathTaken {
            recipe: recipe.path.clone(),
            path: provenance::SBOM_PATH,
        });
    }
    match sbom {
        Some(bytes) => {
            let file = Node::file(Content::bytes(bytes), 0o644, 0, 0, recipe.epoch);
            tree.replace(sbom_key.to_string(), file);
        }
        None if !taken && lower.get(sbom_key).is_some() => {
            let whiteout = Node {
                kind: NodeKind::Whiteout,
                ..Node::dir(0, 0, 0, recipe.epoch)
            };
            tree.replace(sbom_key.to_string(), whiteout);
        }
        None => {}
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

/// The text of a non-empty file of `tree` (the account files below a
/// layer), `None` when there is none.
pub(crate) fn file_text(tree: &FsTree, key: &str) -> Result<Option<String>, BuildError> {
    match tree.get(key).map(|n| &n.kind) {
        Some(NodeKind::File(c)) if c.size() > 0 => {
            let bytes = c.read_all()?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        _ => Ok(None),
    }
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
