//! The image config and manifest of one platform: the base's config with
//! the recipe's over it, and the layers in order. What the config says is
//! decided here; `oci::config` writes it as the document.

use std::collections::BTreeMap;

use oci_spec::image::History;

use super::BuildError;
use super::{as_oci_layer, PlannedLayer, DEFAULT_PATH};
use crate::oci::config::{history_entry, image_config, ConfigValues};
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
    let pick = |ours: &Option<String>, theirs: Option<String>| ours.clone().or(theirs);
    let labels = super::provenance::labels(
        inherited
            .and_then(|i| i.labels().clone())
            .unwrap_or_default()
            .into_iter()
            .collect(),
        recipe,
        facts,
    );
    let union = |ours: &[String], theirs: Option<Vec<String>>| {
        let mut all: Vec<String> = theirs.unwrap_or_default();
        all.extend(ours.iter().cloned());
        all.sort();
        all.dedup();
        all
    };
    let mut history: Vec<History> = base
        .and_then(|b| b.config.value.history().clone())
        .unwrap_or_default();
    history.extend(
        layers
            .iter()
            .map(|l| history_entry(&created, &l.created_by)),
    );
    let mut all_layers: Vec<LayerBlob> = base
        .map(|b| b.layers.iter().map(as_oci_layer).collect())
        .unwrap_or_default();
    all_layers.extend(layers.iter().map(|l| l.blob.clone()));
    let values = ConfigValues {
        created,
        env,
        entrypoint,
        cmd,
        working_dir: pick(&c.workdir, inherited.and_then(|i| i.working_dir().clone())),
        user: pick(&c.user, inherited.and_then(|i| i.user().clone())),
        stop_signal: pick(
            &c.stop_signal,
            inherited.and_then(|i| i.stop_signal().clone()),
        ),
        labels,
        exposed_ports: union(
            &c.exposed_ports,
            inherited.and_then(|i| i.exposed_ports().clone()),
        ),
        volumes: union(&c.volumes, inherited.and_then(|i| i.volumes().clone())),
        history,
        diff_ids: all_layers.iter().map(|l| l.diff_id.clone()).collect(),
    };
    let image_config = image_config(platform, values).map_err(|e| BuildError::ImageConfig {
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
