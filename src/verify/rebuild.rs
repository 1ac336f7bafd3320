//! `verify --rebuild`: the recipe, built again, gives the digest of the
//! image being verified. The build itself is the caller's (the CLI runs
//! the same `produce` as `stele build`, into a temp store); this is the
//! comparison, and on a mismatch the diff that explains it.

use super::diff::{self, Diff};
use super::{Check, Report};
use crate::source::{Opened, SourceError};

/// Adds the `rebuild` check to `report`: `rebuilt` is what `recipe` built
/// just now at `epoch`, `target` the verified image read into the model
/// (or why it could not be).
pub fn compare(
    report: &mut Report,
    target: Result<&Opened, &SourceError>,
    rebuilt: &Opened,
    recipe: &str,
    epoch: u64,
) {
    let name = "rebuild";
    let found = rebuilt.digest();
    let Some(expected) = report.digest.clone() else {
        report.checks.push(Check::fail(
            name,
            format!("{recipe} rebuilds to {found}, but the image names no digest to compare with"),
        ));
        return;
    };
    if found == &expected {
        report
            .checks
            .push(Check::pass(name, format!("{recipe} rebuilds to {found}")));
        return;
    }
    let mut detail = format!("{recipe} rebuilds to {found}, not {expected}");
    match target.map(|t| diff::diff(t, rebuilt)) {
        Ok(Ok(d)) => {
            detail.push_str(&format!("; {}", d.summary()));
            if let Some(hint) = epoch_hint(&d, report.provenance_epoch, epoch) {
                detail.push_str(&format!("; {hint}"));
            }
            report.rebuild_diff = Some(d);
        }
        Ok(Err(e)) => detail.push_str(&format!("; no diff: {e}")),
        Err(e) => detail.push_str(&format!("; no diff, the image cannot be read: {e}")),
    }
    report.checks.push(Check::fail(name, detail));
}

/// A rebuild that differs in time, when provenance records the epoch the
/// image was built at, is most likely missing `SOURCE_DATE_EPOCH`.
fn epoch_hint(d: &Diff, recorded: Option<u64>, used: u64) -> Option<String> {
    let recorded = recorded?;
    let timed = d.causes().contains(&diff::Cause::Timestamps);
    (timed && recorded != used).then(|| {
        format!(
            "the image's provenance records epoch {recorded} but this rebuild used {used}: rebuild with SOURCE_DATE_EPOCH={recorded}"
        )
    })
}
