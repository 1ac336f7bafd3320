//! One build: a checked recipe, its opened base and its installed packages
//! in; an image per platform (and an index over them) out, every blob
//! written to the given store. Nothing here reads the network, the clock
//! or the environment: the CLI opened and fetched everything beforehand.

use std::collections::BTreeMap;

use oci_spec::image::{ConfigBuilder, History, HistoryBuilder, ImageConfiguration};

use crate::attest::{BaseRef, SbomPackage};
use crate::fstree::{FsTree, Node, NodeKind};
use crate::layer::{self, PROFILE_ID};
use crate::oci::model::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME, ANNOTATION_ENCODING};
use crate::oci::{Built, Image, LayerBlob, Platform};
use crate::recipe::{BaseSpec, Recipe};
use crate::source::unpack::merged_view;
use crate::source::Opened;
use crate::store::BlobStore;
use crate::timefmt::rfc3339;
use crate::BuildError;

/// What the CLI decided for this build; nothing below reads flags or env.
#[derive(Clone, Debug, Default)]
pub struct BuildSettings {}

/// What the build starts from, already fetched and verified by the caller.
#[derive(Default)]
pub struct BuildInputs<'a> {
    /// The recipe's `[base]` image or layout, opened; `None` for scratch.
    pub base: Option<&'a Opened>,
}

/// A finished build: the images, and per platform the packages installed
/// (for SBOMs), and the base as provenance names it.
pub struct BuildOutput {
    pub built: Built,
    pub packages: BTreeMap<String, Vec<SbomPackage>>,
    pub base: Option<BaseRef>,
}

/// The default PATH buildkit gives scratch images; without one, an image
/// whose entrypoint is a bare name cannot start.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Files of the base image a build reads: the account files it merges with.
const BASE_FILES_READ: [&str; 2] = ["etc/passwd", "etc/group"];

/// A layer of this build with the line its history entry gets.
struct PlannedLayer {
    blob: LayerBlob,
    created_by: String,
}

pub fn build(
    recipe: &Recipe,
    inputs: &BuildInputs,
    _settings: &BuildSettings,
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

    let mut images = Vec::new();
    for platform in &recipe.platforms {
        let base = match inputs.base {
            Some(opened) => Some((opened, base_image(opened, platform)?)),
            None => None,
        };
        let mut layers = Vec::new();
        let mut lower = FsTree::new();
        if let Some((opened, image)) = &base {
            for l in &image.layers {
                store.copy_from(&opened.store, &l.digest)?;
            }
            lower = merged_view(&opened.store, &image.layers, &|p| {
                BASE_FILES_READ.contains(&p)
            })
            .map_err(|e| BuildError::Base {
                image: opened.name.clone(),
                source: e,
            })?;
        }
        if let Some(layer) = recipe_layer(recipe, &lower, store)? {
            layers.push(layer);
        }
        images.push(assemble_image(
            recipe,
            platform,
            base.map(|(_, i)| i),
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
        packages: BTreeMap::new(),
        base: base_ref,
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
fn recipe_layer(
    recipe: &Recipe,
    lower: &FsTree,
    store: &BlobStore,
) -> Result<Option<PlannedLayer>, BuildError> {
    let text = |key: &str| match lower.get(key).map(|n| &n.kind) {
        Some(NodeKind::File(crate::fstree::Content::Bytes(b))) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    };
    let masters = match (text("etc/passwd"), text("etc/group")) {
        (Some(p), Some(g)) if !recipe.users.is_empty() || !recipe.groups.is_empty() => Some((p, g)),
        _ => None,
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
    let blob = layer::write_layer(&tree, recipe.compression, store)?;
    Ok(Some(PlannedLayer {
        blob,
        created_by: "stele: recipe files, paths and accounts".into(),
    }))
}

/// The image config: the base's, with the recipe's settings over it the way
/// a Dockerfile's instructions override its FROM image (an ENTRYPOINT resets
/// the inherited CMD; env, labels, ports and volumes merge).
fn assemble_image(
    recipe: &Recipe,
    platform: &Platform,
    base: Option<&Image>,
    layers: &[PlannedLayer],
    annotations: &BTreeMap<String, String>,
) -> Result<Image, BuildError> {
    let created = rfc3339(recipe.epoch);
    let c = &recipe.config;
    let inherited = base.and_then(|b| b.config.value.config().clone());
    let inherited = inherited.as_ref();

    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut env_order: Vec<String> = Vec::new();
    for kv in inherited.and_then(|i| i.env().clone()).unwrap_or_default() {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if env.insert(k.to_string(), v.to_string()).is_none() {
            env_order.push(k.to_string());
        }
    }
    for (k, v) in &c.env {
        if env.insert(k.clone(), v.clone()).is_none() {
            env_order.push(k.clone());
        }
    }
    if !env.contains_key("PATH") {
        env.insert("PATH".into(), DEFAULT_PATH.into());
        env_order.push("PATH".into());
    }
    // The base's variables keep their order (a later one may refer to an
    // earlier one); the recipe's follow, sorted, as its table is.
    let env: Vec<String> = if base.is_some() {
        env_order
            .iter()
            .map(|k| format!("{k}={}", env[k]))
            .collect()
    } else {
        env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    };

    let mut cb = ConfigBuilder::default().env(env);
    let (entrypoint, cmd) = match (&c.entrypoint, &c.cmd) {
        (Some(e), cmd) => (Some(e.clone()), cmd.clone()),
        (None, Some(cmd)) => (
            inherited.and_then(|i| i.entrypoint().clone()),
            Some(cmd.clone()),
        ),
        (None, None) => (
            inherited.and_then(|i| i.entrypoint().clone()),
            inherited.and_then(|i| i.cmd().clone()),
        ),
    };
    if let Some(e) = entrypoint {
        cb = cb.entrypoint(e);
    }
    if let Some(v) = cmd {
        cb = cb.cmd(v);
    }
    let pick = |ours: &Option<String>, theirs: Option<String>| ours.clone().or(theirs);
    if let Some(v) = pick(&c.workdir, inherited.and_then(|i| i.working_dir().clone())) {
        cb = cb.working_dir(v);
    }
    if let Some(v) = pick(&c.user, inherited.and_then(|i| i.user().clone())) {
        cb = cb.user(v);
    }
    if let Some(v) = pick(
        &c.stop_signal,
        inherited.and_then(|i| i.stop_signal().clone()),
    ) {
        cb = cb.stop_signal(v);
    }
    let mut labels: BTreeMap<String, String> = inherited
        .and_then(|i| i.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(c.labels.clone());
    if !labels.is_empty() {
        cb = cb.labels(
            labels
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    let union = |ours: &[String], theirs: Option<Vec<String>>| {
        let mut all: Vec<String> = theirs.unwrap_or_default();
        all.extend(ours.iter().cloned());
        all.sort();
        all.dedup();
        all
    };
    let ports = union(
        &c.exposed_ports,
        inherited.and_then(|i| i.exposed_ports().clone()),
    );
    if !ports.is_empty() {
        cb = cb.exposed_ports(ports);
    }
    let volumes = union(&c.volumes, inherited.and_then(|i| i.volumes().clone()));
    if !volumes.is_empty() {
        cb = cb.volumes(volumes);
    }
    let config = cb
        .build()
        .map_err(|e| BuildError::Unsupported(format!("image config: {e}")))?;

    let mut history: Vec<History> = base
        .and_then(|b| b.config.value.history().clone())
        .unwrap_or_default();
    for l in layers {
        history.push(
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(l.created_by.clone())
                .build()
                .expect("history fields are set"),
        );
    }
    let mut all_layers: Vec<LayerBlob> = base
        .map(|b| b.layers.iter().map(as_oci_layer).collect())
        .unwrap_or_default();
    all_layers.extend(layers.iter().map(|l| l.blob.clone()));
    let rootfs = oci_spec::image::RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            all_layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("rootfs fields are set");
    let mut ib = oci_spec::image::ImageConfigurationBuilder::default()
        .created(created)
        .architecture(oci_spec::image::Arch::from(platform.architecture.as_str()))
        .os(oci_spec::image::Os::from(platform.os.as_str()))
        .config(config)
        .rootfs(rootfs);
    if !history.is_empty() {
        ib = ib.history(history);
    }
    if let Some(v) = &platform.variant {
        ib = ib.variant(v.clone());
    }
    let image_config: ImageConfiguration = ib
        .build()
        .map_err(|e| BuildError::Unsupported(format!("image config: {e}")))?;
    Ok(Image::new(
        platform.clone(),
        image_config,
        all_layers,
        annotations,
    ))
}

/// A base layer as an OCI manifest lists it. Docker's layer media types
/// name the same bytes (image-spec media-types.md, "Compatibility Matrix"),
/// so only the descriptor changes and the blob passes through untouched.
fn as_oci_layer(layer: &LayerBlob) -> LayerBlob {
    use oci_spec::image::MediaType;
    let media_type = match layer.media_type.to_string().as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => MediaType::ImageLayerZstd,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        _ => layer.media_type.clone(),
    };
    LayerBlob {
        media_type,
        ..layer.clone()
    }
}
