//! The image model every source and sink speaks: descriptors, configs,
//! manifests and indexes, built eagerly into plain values with their
//! canonical bytes.

pub mod artifact;
pub mod config;
pub mod cosign;
pub mod digest;
pub mod docker;
pub mod json;
pub mod layout;
pub mod media;
pub mod model;
pub mod platform;

pub use digest::{Digest, HashingWriter};
pub use model::*;
pub use platform::Platform;
