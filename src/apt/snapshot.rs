//! Snapshot archives: a service that keeps every state an archive was
//! ever in, where `URL/<YYYYMMDDTHHMMSSZ>/` is the archive as it was at
//! that time (the scheme of Debian's snapshot archive). A source's
//! `snapshot` names one; the lock records when the indexes it read were
//! made (each InRelease's `Date`), so a .deb the mirror has dropped since
//! is still found there. Where-from only: every .deb is checked against
//! the lock's sha256, so the route never changes the image.
//!
//! Such a service answers a time with the last state it imported at or
//! before it, and it imports an archive state some time after the
//! archive wrote it, so the state at the exact `Date` may be the one
//! before. The root used is therefore the first of a few times from the
//! `Date` on whose `InRelease` is, byte for byte, the one the lock read:
//! then its pool has every .deb the lock names. Services rate-limit, so
//! it is asked only for what neither a registry nor the mirror has, two
//! downloads at once, and its `Retry-After` is honoured.

use super::fetch::{inrelease_url, FetchError, Fetcher, INRELEASE_LIMIT};
use super::sources::AptSettings;
use crate::lock::{LockedPackage, LockedSource};
use crate::oci::Digest;
use crate::recipe::AptSource;
use crate::store::BlobStore;

/// The times tried after the `Date`, in order: within the hours a
/// service takes to import an archive state, and before the next state
/// (Debian's archive is rewritten every six hours) could drop the file.
const STEPS: [u64; 5] = [0, 3600, 2 * 3600, 4 * 3600, 8 * 3600];

/// At most this many downloads at once from a snapshot service, which
/// rate-limits: a 429 or 503 is asked again after the waits of the run's
/// retry policy, doubling, or the `Retry-After` the service names when
/// that is longer (`transport`'s retry layer).
pub(crate) const JOBS: usize = 2;

/// The base URL of `source`'s snapshot archive: the URL as written, or
/// the `STELE_MIRROR_<NAME>` value for a name; `None` when it has none
/// (or the name is not set, which `why_not` explains).
pub(crate) fn base_url(source: &AptSource, settings: &AptSettings) -> Option<String> {
    let s = source.snapshot.as_ref()?;
    if s.contains("://") {
        Some(s.clone())
    } else {
        settings.mirrors.get(s).cloned()
    }
}

/// Why `source` has no snapshot route, for the error that lists routes.
pub(crate) fn why_not(source: &AptSource) -> String {
    match &source.snapshot {
        None => format!(
            "source {} names no snapshot archive (`snapshot = \"URL\"`)",
            source.loc
        ),
        Some(name) => format!("snapshot = \"{name}\" but STELE_MIRROR_{name} is not set"),
    }
}

/// When the archive had the locked package `p` of `source`, in seconds
/// since 1970, and the InRelease the archive had then when it is known:
/// the package's own `date` (one `lock --update` kept from older indexes)
/// or else the source's.
pub(crate) fn package_time<'a>(
    p: &LockedPackage,
    source: &'a LockedSource,
    cache: &BlobStore,
) -> Option<(u64, Option<&'a Digest>)> {
    match &p.date {
        Some(date) => crate::timefmt::parse_rfc3339(date).map(|t| (t, None)),
        None => locked_time(source, cache).map(|t| (t, Some(&source.inrelease_sha256))),
    }
}

/// When the archive looked as `source` of the lock says, in seconds
/// since 1970: its recorded `date`, else (a lock written before dates
/// were recorded) the `Date` of the InRelease it names, when the local
/// cache still has it.
pub(crate) fn locked_time(source: &LockedSource, cache: &BlobStore) -> Option<u64> {
    if let Some(date) = &source.date {
        return crate::timefmt::parse_rfc3339(date);
    }
    let bytes = cache
        .read_verified(&source.inrelease_sha256, None, INRELEASE_LIMIT)
        .ok()?;
    release_date(&bytes)
}

/// The `Date` field of an InRelease (or Release) text, in seconds.
pub(crate) fn release_date(bytes: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().find_map(|l| l.strip_prefix("Date:"))?;
    crate::timefmt::parse_rfc2822(line)
}

/// `base/<time>`: the archive at `time` on the service at `base`.
pub(crate) fn at(base: &str, time: u64) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        crate::timefmt::compact(time)
    )
}

/// The root (`base/<time>`) of the state of `suite` whose InRelease is
/// `inrelease_sha256`, trying the times of `STEPS` from `time` on. When
/// none of them serves that InRelease (or none is named), the root at
/// `time` itself: its pool may still hold the file. An error when the
/// service cannot be reached at all.
pub(crate) fn find_root(
    fetcher: &Fetcher,
    base: &str,
    suite: &str,
    time: u64,
    inrelease_sha256: Option<&Digest>,
) -> Result<String, FetchError> {
    let Some(inrelease_sha256) = inrelease_sha256 else {
        return Ok(at(base, time));
    };
    for step in STEPS {
        let root = at(base, time + step);
        match fetcher.get_bytes(&inrelease_url(&root, suite), INRELEASE_LIMIT) {
            Ok(bytes) if Digest::of(&bytes) == *inrelease_sha256 => return Ok(root),
            Ok(_) | Err(FetchError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at(base, time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;

    #[test]
    fn roots_are_named_by_the_time() {
        assert_eq!(
            at("http://snap.example/archive/debian/", 1_000_000_000),
            "http://snap.example/archive/debian/20010909T014640Z"
        );
        let text = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: x\nDate: Sun, 09 Sep 2001 01:46:40 UTC\n";
        assert_eq!(release_date(text), Some(1_000_000_000));
        assert_eq!(release_date(b"Origin: x\n"), None);
    }

    #[test]
    fn the_root_is_the_first_time_that_serves_the_locked_inrelease() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("snap");
        let wanted = b"the InRelease the lock read".to_vec();
        let older = b"the state before".to_vec();
        let t = 1_000_000_000;
        for (time, bytes) in [(t, &older), (t + 7200, &wanted)] {
            let d = base
                .join(crate::timefmt::compact(time))
                .join("dists/stable");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("InRelease"), bytes).unwrap();
        }
        let cache = BlobStore::open(dir.path().join("cache")).unwrap();
        let fetcher = Fetcher::new(cache, false, Transport::default());
        let url = format!("file://{}", base.display());
        let root = find_root(&fetcher, &url, "stable", t, Some(&Digest::of(&wanted))).unwrap();
        assert_eq!(root, at(&url, t + 7200));
        // None serves it: the time itself.
        let root = find_root(&fetcher, &url, "stable", t, Some(&Digest::of(b"x"))).unwrap();
        assert_eq!(root, at(&url, t));
    }
}
