//! What the packages' maintainer scripts (and the declarative files that
//! stand for them) would have done, and what stele made of each: the
//! report `stele build` prints a line of, puts in `--json` and in the
//! provenance, so no effect is dropped silently.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Made declaratively: the image has what the effect would have left.
    Reproduced,
    /// Only a running system needs it (services, caches rebuilt at run time).
    NotNeeded,
    /// Not made: the image lacks it. `detail` says why.
    Skipped,
}

/// One effect of one package, in the order the package's scripts name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ScriptEffect {
    pub package: String,
    /// Where it was found: `postinst:12`, or a declarative file such as
    /// `/usr/lib/sysusers.d/dbus.conf:5`.
    pub source: String,
    /// The command (expanded) or the file line.
    pub effect: String,
    pub outcome: Outcome,
    /// What was made, or why not.
    pub detail: String,
}

/// The effects of every package installed on one platform, packages in
/// install order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScriptReport {
    pub effects: Vec<ScriptEffect>,
    /// Alternative name → the path its link leads to.
    pub alternatives: std::collections::BTreeMap<String, String>,
}

/// How much of the skipped list the stderr line shows.
const SUMMARY_PACKAGES: usize = 4;
const SUMMARY_COMMANDS: usize = 3;

impl ScriptReport {
    /// The stderr line: counts, and per package what was skipped.
    pub fn summary(&self) -> String {
        let skipped = self.count(Outcome::Skipped);
        let mut line = format!(
            "{} effect{} reproduced, {} not needed in an image, {} skipped",
            self.count(Outcome::Reproduced),
            if self.count(Outcome::Reproduced) == 1 {
                ""
            } else {
                "s"
            },
            self.count(Outcome::NotNeeded),
            skipped,
        );
        if skipped > 0 {
            // One stderr line: the first few packages and commands; the
            // whole list is in --json.
            let by_package = self.skipped_by_package();
            let mut parts: Vec<String> = by_package
                .iter()
                .take(SUMMARY_PACKAGES)
                .map(|(p, whats)| {
                    let mut w = whats
                        .iter()
                        .take(SUMMARY_COMMANDS)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ");
                    if whats.len() > SUMMARY_COMMANDS {
                        w.push_str(", …");
                    }
                    format!("{p}: {w}")
                })
                .collect();
            if by_package.len() > SUMMARY_PACKAGES {
                let more = by_package.len() - SUMMARY_PACKAGES;
                let noun = if more == 1 { "package" } else { "packages" };
                parts.push(format!("{more} more {noun}"));
            }
            line.push_str(&format!(" ({})", parts.join("; ")));
        }
        line
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.effects.iter().filter(|e| e.outcome == outcome).count()
    }

    /// Per package with skipped effects, a short list of what: one entry
    /// per package, in install order (`dbus: systemctl ...; ...`).
    pub fn skipped_by_package(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for e in self
            .effects
            .iter()
            .filter(|e| e.outcome == Outcome::Skipped)
        {
            // The command's name; a `.` is named by what it reads, and a
            // script the reader refused whole by the whole placeholder
            // (its first word alone read as "(the").
            let first_word = match e.effect.split_whitespace().next().unwrap_or("") {
                _ if e.effect.starts_with('(') => e.effect.clone(),
                "." | "source" => format!(
                    "source {}",
                    e.effect.split_whitespace().nth(1).unwrap_or("")
                ),
                w => w.to_string(),
            };
            match out.iter_mut().find(|(p, _)| *p == e.package) {
                Some((_, whats)) => {
                    if !whats.contains(&first_word) {
                        whats.push(first_word);
                    }
                }
                _ => out.push((e.package.clone(), vec![first_word])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_first_skipped_packages_and_commands() {
        let e = |package: &str, effect: &str, outcome| ScriptEffect {
            package: package.into(),
            source: String::from("postinst:1"),
            effect: effect.into(),
            outcome,
            detail: String::new(),
        };
        let mut effects = vec![
            e("a", "update-alternatives --install x", Outcome::Reproduced),
            e("a", "systemctl enable a", Outcome::NotNeeded),
        ];
        for p in ["p1", "p2", "p3", "p4", "p5"] {
            for c in ["mkdir x", "chown x", "mkdir y", "ln -s", "touch z"] {
                effects.push(e(p, c, Outcome::Skipped));
            }
        }
        let r = ScriptReport {
            effects,
            alternatives: Default::default(),
        };
        assert_eq!(
            r.summary(),
            "1 effect reproduced, 1 not needed in an image, 25 skipped (p1: mkdir, chown, ln, …; p2: mkdir, chown, ln, …; p3: mkdir, chown, ln, …; p4: mkdir, chown, ln, …; 1 more package)"
        );
    }
}
