//! Pushing to a registry: an opened image (from a layout, an archive or
//! another registry) or a fresh build, with its attestations.

use crate::oci::Digest;
use crate::registry::{
    push_built, PushOptions, PushReport, Reference, RegistryError, RegistrySettings,
};
use crate::source::Opened;

/// Pushes `opened` and its referrers to `reference` (tagged when it has a
/// tag). Returns the pushed digest and what was sent.
pub(crate) fn push_opened(
    opened: &Opened,
    reference: &Reference,
    settings: &RegistrySettings,
    options: &PushOptions,
) -> Result<(Digest, PushReport), RegistryError> {
    push_built(
        &opened.built,
        &opened.store,
        &opened.referrers,
        reference,
        settings,
        options,
    )
}
