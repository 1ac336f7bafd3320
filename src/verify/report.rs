//! How verify and diff results are shown: text for people (a summary line
//! first, then details, long sections cut with a count of the rest) and
//! one canonical JSON document for CI.

use std::fmt::Write;

use serde_json::{json, Value};

use super::diff::Diff;
use super::{Report, Status};
use crate::oci::json::to_canonical_vec;

/// Items shown per diff section before "… and N more".
pub const SECTION_CAP: usize = 12;

/// Longest value shown on one line; longer ones get lines of their own.
const INLINE: usize = 48;

/// The summary line, then each check (only the failed ones when
/// `every_check` is false: what `verify -q` prints).
pub(crate) fn verify_text(r: &Report, every_check: bool) -> String {
    let mut out = String::new();
    let digest = r
        .digest
        .as_ref()
        .map_or("(no digest)".to_string(), ToString::to_string);
    let (pass, fail, skipped) = (
        r.count(Status::Pass),
        r.count(Status::Fail),
        r.count(Status::Skipped),
    );
    let not_run = if skipped > 0 {
        format!(", {skipped} not checked")
    } else {
        String::new()
    };
    if r.verified() {
        let _ = writeln!(
            out,
            "VERIFIED {} {digest}: {pass} checks passed{not_run}",
            r.target
        );
    } else {
        let _ = writeln!(
            out,
            "NOT VERIFIED {} {digest}: {fail} of {} checks failed{not_run}",
            r.target,
            r.checks.len()
        );
    }
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let shown = r
        .checks
        .iter()
        .filter(|c| every_check || c.status == Status::Fail);
    for c in shown {
        let status = match c.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skip",
        };
        let _ = writeln!(out, "  {status}  {:width$}  {}", c.name, c.detail);
    }
    if let Some(d) = &r.rebuild_diff {
        let _ = writeln!(out, "\nrebuild {}", diff_text(d));
    }
    out
}

pub(crate) fn verify_json(r: &Report) -> Vec<u8> {
    let checks: Vec<Value> = r
        .checks
        .iter()
        .map(|c| json!({"name": c.name, "status": c.status, "detail": c.detail}))
        .collect();
    let mut doc = json!({
        "target": r.target,
        "digest": r.digest.as_ref().map(ToString::to_string),
        "verified": r.verified(),
        "counts": {
            "pass": r.count(Status::Pass),
            "fail": r.count(Status::Fail),
            "skipped": r.count(Status::Skipped),
        },
        "checks": checks,
        "attestations": r.attestations,
    });
    if let Some(d) = &r.rebuild_diff {
        doc["rebuild_diff"] = diff_value(d);
    }
    to_canonical_vec(&doc)
}

/// What CI reads when the target could not be checked at all (exit 2).
pub(crate) fn error_json(target: &str, error: &str) -> Vec<u8> {
    to_canonical_vec(&json!({
        "target": target,
        "verified": false,
        "error": error,
        "checks": [],
    }))
}

pub(crate) fn diff_text(d: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", d.summary());
    let _ = writeln!(out, "  A  {}  {}", d.a.name, d.a.digest);
    let _ = writeln!(out, "  B  {}  {}", d.b.name, d.b.digest);
    for s in &d.sections {
        let _ = writeln!(
            out,
            "\n{} ({} difference{})",
            s.title,
            s.items.len(),
            if s.items.len() == 1 { "" } else { "s" }
        );
        for i in s.items.iter().take(SECTION_CAP) {
            let a = i.a.as_deref().unwrap_or("(absent)");
            let b = i.b.as_deref().unwrap_or("(absent)");
            let cause = i
                .cause
                .map_or(String::new(), |c| format!("  [{}]", c.name()));
            if a.len() <= INLINE && b.len() <= INLINE {
                let _ = writeln!(out, "  {}: {a} → {b}{cause}", i.what);
            } else {
                let _ = writeln!(out, "  {}{cause}", i.what);
                let _ = writeln!(out, "    A: {a}");
                let _ = writeln!(out, "    B: {b}");
            }
        }
        if s.items.len() > SECTION_CAP {
            let _ = writeln!(out, "  … and {} more", s.items.len() - SECTION_CAP);
        }
    }
    out
}

fn diff_value(d: &Diff) -> Value {
    json!({
        "identical": d.identical(),
        "summary": d.summary(),
        "cause": d.likely_cause(),
        "causes": d.causes().iter().map(|c| c.name()).collect::<Vec<_>>(),
        "a": d.a,
        "b": d.b,
        "sections": d.sections,
    })
}

pub(crate) fn diff_json(d: &Diff) -> Vec<u8> {
    to_canonical_vec(&diff_value(d))
}
