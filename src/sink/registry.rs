//! A registry target: the image (from a build, a layout, an archive or
//! another registry) and its referrers pushed, the tag last, then what
//! cosign 2.x reads of its referrers added to its `.sig` and `.att` tags.

use super::{SinkError, Stored, Written};
use crate::registry::{push_built, PushOptions, Reference, RegistrySettings};

/// Pushes `image` and its referrers to `reference` (tagged when it has a
/// tag).
pub(super) fn push(
    image: Stored<'_>,
    reference: &Reference,
    settings: &RegistrySettings,
    options: &PushOptions,
) -> Result<Written, SinkError> {
    let attachments = crate::attest::cosign::attachments(image.store, image.referrers)
        .map_err(|error| SinkError::Attachments { error })?;
    let options = PushOptions {
        attachments,
        ..options.clone()
    };
    let (digest, report) = push_built(
        image.built,
        image.store,
        image.referrers,
        reference,
        settings,
        &options,
    )?;
    let pinned = Reference {
        digest: None,
        ..reference.clone()
    }
    .with_digest(digest);
    Ok(Written::Pushed { pinned, report })
}
