//! The image config and manifest of one platform: the base's config with
//! the recipe's over it, and the layers in order.

use std::collections::BTreeMap;

use oci_spec::image::{ConfigBuilder, History, HistoryBuilder, ImageConfiguration};

use super::BuildError;
use super::{as_oci_layer, PlannedLayer, DEFAULT_PATH};
use crate::oci::{Image, LayerBlob, Platform};
use crate::recipe::Recipe;
use crate::timefmt::rfc3339;

/// The image config: the base's, with the recipe's settings over it the way
/// a Dockerfile's instructions override its FROM image (an ENTRYPOINT resets
/// the inherited CMD; env, labels, ports and volumes merge).
pub(super) fn assemble_image(
    recipe: &Recipe,
    platform: &Platform,
    base: Option<&Image>,
    layers: &[PlannedLayer],
    annotations: &BTreeMap<String, String>,
    facts: &BTreeMap<String, String>,
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
    let labels = super::provenance::labels(
        inherited
            .and_then(|i| i.labels().clone())
            .unwrap_or_default()
            .into_iter()
            .collect(),
        recipe,
        facts,
    );
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
    let config = cb.build().map_err(|e| BuildError::ImageConfig {
        platform: platform.to_string(),
        message: e.to_string(),
    })?;

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
    let image_config: ImageConfiguration = ib.build().map_err(|e| BuildError::ImageConfig {
        platform: platform.to_string(),
        message: e.to_string(),
    })?;
    Ok(Image::new(
        platform.clone(),
        image_config,
        all_layers,
        annotations,
    ))
}
