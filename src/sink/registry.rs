//! A registry target: the image (from a build, a layout, an archive or
//! another registry) and its referrers pushed, the tag last, then what
//! cosign 2.x reads of its referrers added to its `.sig` and `.att` tags.

use super::{SinkError, Stored, Written};
use crate::registry::{push_built_with, Client, PushOptions, Reference};

/// Pushes `image` and its referrers to `reference` (tagged when it has a
/// tag) through `client`, the one that checked the target.
pub(super) fn push(
    image: Stored<'_>,
    reference: &Reference,
    client: &Client,
    options: &PushOptions,
) -> Result<Written, SinkError> {
    let attachments = crate::attest::cosign::attachments(image.store, image.referrers)
        .map_err(|error| SinkError::Attachments { error })?;
    let options = PushOptions {
        attachments,
        ..options.clone()
    };
    let (digest, report) = push_built_with(
        client,
        image.built,
        image.store,
        image.referrers,
        reference,
        &options,
    )?;
    let pinned = Reference {
        digest: None,
        ..reference.clone()
    }
    .with_digest(digest);
    Ok(Written::Pushed { pinned, report })
}
