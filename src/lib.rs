//! stele: reproducible OCI images from declarative recipes.
//!
//! Data flow (see ARCHITECTURE.md): recipe → (lock) → fetch → tree →
//! layers → image/index → sink. The `pipeline` module strings the stages
//! together; everything below `cli` is a function of its arguments: no
//! clock, no environment, no host metadata except the files a recipe
//! names.

pub mod apps;
pub mod apt;
pub(crate) mod assemble;
pub mod attest;
pub mod cache;
pub mod cli;
pub mod dpkg;
pub mod fstree;
pub mod image;
pub mod layer;
pub mod lock;
pub mod node;
pub mod oci;
pub(crate) mod parallel;
pub mod pipeline;
pub mod python;
pub mod recipe;
pub mod registry;
pub mod sink;
pub mod source;
pub mod store;
pub(crate) mod timefmt;
pub mod transport;
pub mod verify;

#[cfg(test)]
mod proptests;

// The facade: the pipeline an embedder runs, and the pure build it calls.
// Modules are public where the integration tests or an embedder read
// their types; everything else in them is `pub(crate)`, so the compiler
// finds what nothing uses.
pub use image::{build, BuildError, BuildInputs, BuildOutput, BuildSettings};
pub use pipeline::{produce, resolve, AttestOptions, Event, PipelineError, Produced, Settings};
