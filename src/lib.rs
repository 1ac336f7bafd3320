//! stele: reproducible OCI images from declarative recipes.
//!
//! Data flow (see ARCHITECTURE.md): recipe → (lock) → fetch → tree →
//! layers → image/index → sink. The `pipeline` module strings the stages
//! together; everything below `cli` is a function of its arguments: no
//! clock, no environment, no host metadata except the files a recipe
//! names.

pub mod apt;
pub mod assemble;
pub mod attest;
pub mod build;
pub mod cli;
pub mod deb;
pub mod fstree;
pub mod layer;
pub mod lock;
pub mod oci;
pub mod parallel;
pub mod pipeline;
pub mod recipe;
pub mod registry;
pub mod sink;
pub mod source;
pub mod store;
pub mod timefmt;
pub mod verify;

pub use build::{build, BuildError, BuildInputs, BuildOutput, BuildSettings};
