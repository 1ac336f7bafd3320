//! One build: a checked recipe (and its lock) in, an image or index out,
//! every blob written to the given store.

use std::collections::BTreeMap;

use oci_spec::image::{ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, RootFsBuilder};

use crate::fstree::Node;
use crate::layer::{self, PROFILE_ID};
use crate::oci::{model::ANNOTATION_ENCODING, Built, Image, LayerBlob, Platform};
use crate::recipe::Recipe;
use crate::store::BlobStore;
use crate::timefmt::rfc3339;
use crate::BuildError;

/// What the CLI decided for this build; nothing below reads flags or env.
#[derive(Clone, Debug, Default)]
pub struct BuildSettings {}

/// The default PATH buildkit gives scratch images; without one, an image
/// whose entrypoint is a bare name cannot start.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A layer of this build with the line its history entry gets.
struct PlannedLayer {
    blob: LayerBlob,
    created_by: String,
}

pub fn build(
    recipe: &Recipe,
    _settings: &BuildSettings,
    store: &BlobStore,
) -> Result<Built, BuildError> {
    let epoch = recipe.epoch;
    let dir_template = Node::dir(0o755, 0, 0, epoch);

    let mut recipe_layer = crate::assemble::recipe_tree(recipe, None)?;
    let mut layers = Vec::new();
    if !recipe_layer.is_empty() {
        recipe_layer.complete_parents(&dir_template)?;
        let blob = layer::write_layer(&recipe_layer, recipe.compression, store)?;
        layers.push(PlannedLayer {
            blob,
            created_by: "stele: recipe files, paths and accounts".into(),
        });
    }

    let mut annotations = recipe.annotations.clone();
    annotations.insert(ANNOTATION_ENCODING.into(), PROFILE_ID.into());
    let mut images = Vec::new();
    for platform in &recipe.platforms {
        images.push(assemble_image(recipe, platform, &layers, &annotations)?);
    }
    let built = Built::new(images, &annotations);
    for image in &built.images {
        store.put_bytes(&image.config.bytes)?;
        store.put_bytes(&image.manifest.bytes)?;
    }
    if let Some(index) = &built.index {
        store.put_bytes(&index.bytes)?;
    }
    Ok(built)
}

fn assemble_image(
    recipe: &Recipe,
    platform: &Platform,
    layers: &[PlannedLayer],
    annotations: &BTreeMap<String, String>,
) -> Result<Image, BuildError> {
    let created = rfc3339(recipe.epoch);
    let c = &recipe.config;
    let mut env = c.env.clone();
    env.entry("PATH".into())
        .or_insert_with(|| DEFAULT_PATH.into());
    let mut cb = ConfigBuilder::default().env(
        env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
    );
    if let Some(e) = &c.entrypoint {
        cb = cb.entrypoint(e.clone());
    }
    if let Some(v) = &c.cmd {
        cb = cb.cmd(v.clone());
    }
    if let Some(v) = &c.workdir {
        cb = cb.working_dir(v.clone());
    }
    if let Some(v) = &c.user {
        cb = cb.user(v.clone());
    }
    if !c.labels.is_empty() {
        cb = cb.labels(
            c.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    if !c.exposed_ports.is_empty() {
        cb = cb.exposed_ports(c.exposed_ports.clone());
    }
    if !c.volumes.is_empty() {
        cb = cb.volumes(c.volumes.clone());
    }
    if let Some(v) = &c.stop_signal {
        cb = cb.stop_signal(v.clone());
    }
    let config = cb
        .build()
        .map_err(|e| BuildError::Unsupported(format!("image config: {e}")))?;
    let history = layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(l.created_by.clone())
                .build()
                .expect("history fields are set")
        })
        .collect::<Vec<_>>();
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|l| l.blob.diff_id.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("rootfs fields are set");
    let mut ib = ImageConfigurationBuilder::default()
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
    let image_config = ib
        .build()
        .map_err(|e| BuildError::Unsupported(format!("image config: {e}")))?;
    Ok(Image::new(
        platform.clone(),
        image_config,
        layers.iter().map(|l| l.blob.clone()).collect(),
        annotations,
    ))
}
