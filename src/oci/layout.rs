//! The top-level files of an image layout (image-spec `image-layout.md`),
//! whether a folder or an archive holds it: `oci-layout` and
//! `index.json`.

use std::collections::BTreeMap;

use oci_spec::image::Descriptor;

use super::json::to_canonical_vec;
use super::model::{annotate, image_index, ANNOTATION_REF_NAME};

/// The `oci-layout` file.
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The annotation cosign's own layouts (`cosign save`) mark the image with,
/// and the one `cosign verify --local-image` looks for to know which
/// image the bundles in a layout are about.
pub(crate) const ANNOTATION_COSIGN_KIND: &str = "kind";
pub(crate) const COSIGN_KIND_IMAGE: &str = "dev.cosignproject.cosign/image";

/// `index.json`: `top` (the image or index) named `ref_name`, then
/// `referrers` (attestation manifests), as OCI 1.1 layouts let readers
/// find them. `extra` annotations go on `top` beside the ref name; with
/// referrers, so does cosign's `kind` mark.
pub(crate) fn layout_index(
    top: Descriptor,
    ref_name: &str,
    extra: &BTreeMap<String, String>,
    referrers: &[Descriptor],
) -> Vec<u8> {
    let mut annotations = extra.clone();
    annotations.insert(ANNOTATION_REF_NAME.to_string(), ref_name.to_string());
    if !referrers.is_empty() {
        annotations.insert(
            ANNOTATION_COSIGN_KIND.to_string(),
            COSIGN_KIND_IMAGE.to_string(),
        );
    }
    let top = annotate(top, &annotations);
    let manifests = std::iter::once(top)
        .chain(referrers.iter().cloned())
        .collect();
    to_canonical_vec(&image_index(manifests, &BTreeMap::new()))
}
