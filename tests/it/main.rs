//! The integration tests, as one binary (the layout ripgrep and uv use):
//! cargo compiles and links the shared helpers once, and every test runs
//! in one harness. Each module is one area of `stele`; all of them share
//! [`support`].

mod support;

mod apps;
mod apt_fetch;
mod archive;
mod archive_source;
mod attest;
mod base_layout;
mod cache_prune;
mod ci_pipelines;
mod core_build;
mod core_errors;
mod core_realparts;
mod crash;
mod diff;
mod docker_client;
mod everyday;
mod generated_files;
mod golden;
mod hostile;
mod hostile_packages;
mod layer_cache;
mod live;
mod local_ca;
mod network;
mod network_limits;
mod network_promotion;
mod packages;
mod parity;
mod pipeline;
mod provenance;
mod refused;
mod registry_faults;
mod registry_real;
mod remote_cache;
mod source_layout;
mod speed;
mod transfers;
mod trust;
mod verify;
mod year_later;
