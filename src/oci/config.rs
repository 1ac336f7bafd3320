//! The image config document (image-spec `config.md`) from plain values:
//! what to run and how, the history, the layers' DiffIDs. The build
//! decides the values (the base's config with the recipe's over it); the
//! document's shape is decided here, so every config stele writes has the
//! same fields present or absent for the same values.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{
    Arch, ConfigBuilder, History, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    Os, RootFsBuilder,
};
use oci_spec::OciSpecError;

use super::{Digest, Platform};

/// What an image config says. Empty lists and maps are left out of the
/// document, but `env`, which is always written.
#[derive(Clone, Debug, Default)]
pub struct ConfigValues {
    /// `created`, RFC 3339: the build's epoch.
    pub created: String,
    /// `Env`, `KEY=VALUE` in the order they apply.
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `ExposedPorts` (`8080/tcp`), sorted and without repeats.
    pub exposed_ports: Vec<String>,
    /// `Volumes`, sorted and without repeats.
    pub volumes: Vec<String>,
    /// One entry per layer that made one, the base's first.
    pub history: Vec<History>,
    /// The layers' DiffIDs, bottom first.
    pub diff_ids: Vec<Digest>,
}

/// A history entry for a layer: when (the epoch) and what made it.
pub fn history_entry(created: &str, created_by: &str) -> History {
    HistoryBuilder::default()
        .created(created.to_string())
        .created_by(created_by.to_string())
        .build()
        .expect("history fields are set")
}

/// The config document of `platform`'s image.
pub fn image_config(
    platform: &Platform,
    values: ConfigValues,
) -> Result<ImageConfiguration, OciSpecError> {
    let ConfigValues {
        created,
        env,
        entrypoint,
        cmd,
        working_dir,
        user,
        stop_signal,
        labels,
        exposed_ports,
        volumes,
        history,
        diff_ids,
    } = values;
    let mut cb = ConfigBuilder::default().env(env);
    if let Some(e) = entrypoint {
        cb = cb.entrypoint(e);
    }
    if let Some(v) = cmd {
        cb = cb.cmd(v);
    }
    if let Some(v) = working_dir {
        cb = cb.working_dir(v);
    }
    if let Some(v) = user {
        cb = cb.user(v);
    }
    if let Some(v) = stop_signal {
        cb = cb.stop_signal(v);
    }
    if !labels.is_empty() {
        cb = cb.labels(labels.into_iter().collect::<HashMap<_, _>>());
    }
    if !exposed_ports.is_empty() {
        cb = cb.exposed_ports(exposed_ports);
    }
    if !volumes.is_empty() {
        cb = cb.volumes(volumes);
    }
    let config = cb.build()?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>())
        .build()
        .expect("rootfs fields are set");
    let mut ib = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(platform.architecture.as_str()))
        .os(Os::from(platform.os.as_str()))
        .config(config)
        .rootfs(rootfs);
    if !history.is_empty() {
        ib = ib.history(history);
    }
    if let Some(v) = &platform.variant {
        ib = ib.variant(v.clone());
    }
    ib.build()
}
