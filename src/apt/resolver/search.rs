//! The depth-first search with undo behind `resolve`.

use std::collections::{BTreeMap, BTreeSet};

use super::{Relations, Universe, ATTEMPT_LIMIT};
use crate::apt::control::{display_group, Relation};
use crate::dpkg::version;

/// Why a candidate could not be installed: the path of relations that led
/// to it and what went wrong there.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) chain: Vec<String>,
    pub(super) reason: String,
    pub(super) too_complex: bool,
}

/// A relation with the field (`Conflicts` or `Breaks`) it came from.
type FieldRelation = (&'static str, Relation);

pub(super) struct Chosen {
    pub(super) index: usize,
    /// The chain of relations it was chosen for, for messages.
    why: String,
}

pub(super) struct State<'u> {
    u: &'u Universe,
    pins: BTreeMap<String, String>,
    pub(super) requested: BTreeSet<String>,
    pub(super) chosen: BTreeMap<String, Chosen>,
    /// Virtual name → chosen packages providing it (with the version).
    provided: BTreeMap<String, Vec<(usize, Option<String>)>>,
    /// Name → chosen packages whose Conflicts/Breaks name it.
    conflicts_on: BTreeMap<String, Vec<(usize, FieldRelation)>>,
    /// Chosen packages in the order chosen, so failures can be undone.
    trail: Vec<usize>,
    attempts: usize,
}

impl<'u> State<'u> {
    pub(super) fn new(
        u: &'u Universe,
        pins: BTreeMap<String, String>,
        requested: BTreeSet<String>,
    ) -> State<'u> {
        State {
            u,
            pins,
            requested,
            chosen: BTreeMap::new(),
            provided: BTreeMap::new(),
            conflicts_on: BTreeMap::new(),
            trail: Vec::new(),
            attempts: 0,
        }
    }

    fn relations(&self, i: usize) -> &'u Relations {
        self.u.relations[i]
            .as_ref()
            .expect("only packages with parsed relations are chosen")
    }

    /// The name a relation refers to on our single architecture, or None
    /// when it names another architecture.
    fn target<'r>(&self, r: &'r Relation) -> Option<&'r str> {
        match r.arch_qualifier.as_deref() {
            None | Some("any" | "native") => Some(&r.name),
            Some(q) if q == self.u.arch => Some(&r.name),
            Some(_) => None,
        }
    }

    fn satisfied(&self, r: &Relation, providers: bool) -> bool {
        let Some(name) = self.target(r) else {
            return false;
        };
        self.chosen
            .get(name)
            .is_some_and(|c| r.accepts_version(Some(&self.u.packages[c.index].version)))
            || providers
                && self
                    .provided
                    .get(name)
                    .is_some_and(|ps| ps.iter().any(|(_, v)| r.accepts_version(v.as_deref())))
    }

    /// Whether `i` may be chosen as far as its name goes: it is the chosen
    /// package of that name, or the name is free and `i` honours any pin.
    fn admissible(&self, i: usize) -> bool {
        let p = &self.u.packages[i];
        match self.chosen.get(&p.name) {
            Some(c) => c.index == i,
            None => self
                .pins
                .get(&p.name)
                .map_or(true, |pin| version::compare(&p.version, pin).is_eq()),
        }
    }

    /// Packages that would satisfy `r`, most preferred first; those that
    /// Provide it only if `providers`.
    fn candidates(&self, r: &Relation, providers: bool) -> Vec<usize> {
        let Some(name) = self.target(r) else {
            return Vec::new();
        };
        let real = self
            .u
            .by_name
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| r.accepts_version(Some(&self.u.packages[i].version)));
        let virtual_ = self
            .u
            .providers
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(_, v)| providers && r.accepts_version(v.as_deref()))
            .map(|(i, _)| *i);
        let mut out: Vec<usize> = Vec::new();
        for i in real.chain(virtual_) {
            if self.admissible(i) && !out.contains(&i) {
                out.push(i);
            }
        }
        out
    }

    fn choose(&mut self, i: usize, why: String) {
        let rels = self.relations(i);
        self.chosen
            .insert(self.u.packages[i].name.clone(), Chosen { index: i, why });
        for (name, v) in &rels.provides {
            self.provided
                .entry(name.clone())
                .or_default()
                .push((i, v.clone()));
        }
        for (field, r) in &rels.conflicts {
            self.conflicts_on
                .entry(r.name.clone())
                .or_default()
                .push((i, (field, r.clone())));
        }
        self.trail.push(i);
    }

    fn rollback(&mut self, mark: usize) {
        while self.trail.len() > mark {
            let i = self.trail.pop().expect("trail longer than mark");
            self.chosen.remove(&self.u.packages[i].name);
            let rels = self.relations(i);
            let names = rels
                .provides
                .iter()
                .map(|(n, _)| n)
                .chain(rels.conflicts.iter().map(|(_, r)| &r.name));
            for name in names {
                remove_owned(&mut self.provided, name, i);
                remove_owned(&mut self.conflicts_on, name, i);
            }
        }
    }

    /// Whether `i` conflicts with a chosen package, or one with it.
    fn conflict(&self, i: usize) -> Option<String> {
        let p = &self.u.packages[i];
        let rels = self.relations(i);
        let ours = |field: &str, r: &Relation, other: usize| {
            let why = &self.chosen[&self.u.packages[other].name].why;
            format!(
                "{} has `{field}: {r}`, and {} is already chosen (for {why})",
                self.u.label(i),
                self.u.label(other)
            )
        };
        // A relation naming another architecture cannot match anything
        // installed here.
        for (field, r) in rels
            .conflicts
            .iter()
            .filter(|(_, r)| self.target(r).is_some())
        {
            if let Some(c) = self.chosen.get(&r.name).filter(|c| c.index != i) {
                if r.accepts_version(Some(&self.u.packages[c.index].version)) {
                    return Some(ours(field, r, c.index));
                }
            }
            for (other, v) in self.provided.get(&r.name).into_iter().flatten() {
                if *other != i && r.accepts_version(v.as_deref()) {
                    return Some(ours(field, r, *other));
                }
            }
        }
        let own = std::iter::once((&p.name, Some(p.version.clone())))
            .chain(rels.provides.iter().map(|(n, v)| (n, v.clone())));
        for (name, v) in own {
            for (holder, (field, r)) in self.conflicts_on.get(name).into_iter().flatten() {
                if *holder != i && self.target(r).is_some() && r.accepts_version(v.as_deref()) {
                    let why = &self.chosen[&self.u.packages[*holder].name].why;
                    return Some(format!(
                        "{} cannot be added: {} (chosen for {why}) has `{field}: {r}`",
                        self.u.label(i),
                        self.u.label(*holder)
                    ));
                }
            }
        }
        None
    }

    fn tick(&mut self, chain: &[String]) -> Result<(), Failure> {
        self.attempts += 1;
        if self.attempts > ATTEMPT_LIMIT {
            return Err(Failure {
                chain: chain.to_vec(),
                reason: String::new(),
                too_complex: true,
            });
        }
        Ok(())
    }

    /// Chooses `i` and, recursively, what it depends on. On failure the
    /// caller rolls back to its mark.
    fn install(&mut self, i: usize, chain: &[String]) -> Result<(), Failure> {
        self.tick(chain)?;
        if self
            .chosen
            .get(&self.u.packages[i].name)
            .is_some_and(|c| c.index == i)
        {
            return Ok(());
        }
        let fail = |reason: String| Failure {
            chain: chain.to_vec(),
            reason,
            too_complex: false,
        };
        let rels = match &self.u.relations[i] {
            Ok(r) => r,
            Err(message) => return Err(fail(message.clone())),
        };
        if let Some(reason) = self.conflict(i) {
            return Err(fail(reason));
        }
        self.choose(i, chain.join(" -> "));
        for group in &rels.depends {
            self.satisfy(group, chain)?;
        }
        Ok(())
    }

    /// Satisfies one OR group of a dependency field.
    fn satisfy(&mut self, group: &[Relation], chain: &[String]) -> Result<(), Failure> {
        self.satisfy_with(group, chain, true)
    }

    /// Satisfies a request: a request for a real package wants that
    /// package, not something that Provides its name.
    pub(super) fn satisfy_request(&mut self, r: &Relation, real: bool) -> Result<(), Failure> {
        self.satisfy_with(std::slice::from_ref(r), &[], !real)
    }

    fn satisfy_with(
        &mut self,
        group: &[Relation],
        chain: &[String],
        providers: bool,
    ) -> Result<(), Failure> {
        if group.iter().any(|r| self.satisfied(r, providers)) {
            return Ok(());
        }
        let mut tries: Vec<(&Relation, usize)> = group
            .iter()
            .flat_map(|r| {
                self.candidates(r, providers)
                    .into_iter()
                    .map(move |i| (r, i))
            })
            .collect();
        // Stable: what the recipe names first, otherwise the field's order.
        tries.sort_by_key(|(_, i)| !self.requested.contains(&self.u.packages[*i].name));
        let mut first_failure = None;
        for (r, i) in tries {
            let mut step = r.to_string();
            if self.u.packages[i].name != r.name {
                step = format!("{step} [{}]", self.u.label(i));
            }
            let mut next = chain.to_vec();
            next.push(step);
            let mark = self.trail.len();
            match self.install(i, &next) {
                Ok(()) => return Ok(()),
                Err(f) if f.too_complex => return Err(f),
                Err(f) => {
                    self.rollback(mark);
                    first_failure.get_or_insert(f);
                }
            }
        }
        Err(first_failure.unwrap_or_else(|| {
            let mut chain = chain.to_vec();
            chain.push(display_group(group));
            let reasons: Vec<String> = group.iter().map(|r| self.unavailable(r)).collect();
            Failure {
                chain,
                reason: format!("no candidate; {}", reasons.join("; ")),
                too_complex: false,
            }
        }))
    }

    /// What the sources offer for `r`, when none of it fits.
    fn unavailable(&self, r: &Relation) -> String {
        let Some(name) = self.target(r) else {
            return format!(
                "{r} names another architecture, and only {} and all are installed",
                self.u.arch
            );
        };
        if let Some(c) = self.chosen.get(name) {
            return format!(
                "{} is already chosen (for {})",
                self.u.label(c.index),
                c.why
            );
        }
        let mut parts = Vec::new();
        if let Some(candidates) = self.u.by_name.get(name) {
            let versions: Vec<String> = candidates
                .iter()
                .map(|&i| {
                    format!(
                        "{} (source {})",
                        self.u.packages[i].version, self.u.packages[i].source_index
                    )
                })
                .collect();
            let mut text = format!("{name} has {}", versions.join(", "));
            if let Some(pin) = self.pins.get(name) {
                text.push_str(&format!(", and [apt] packages pins it to {pin}"));
            }
            parts.push(text);
        }
        if let Some(providers) = self.u.providers.get(name) {
            let list: Vec<String> = providers
                .iter()
                .map(|(i, v)| match v {
                    Some(v) => format!("{} (= {v})", self.u.label(*i)),
                    None => format!(
                        "{} (unversioned, which cannot satisfy a versioned dependency)",
                        self.u.label(*i)
                    ),
                })
                .collect();
            parts.push(format!("{name} is provided by {}", list.join(", ")));
        }
        if parts.is_empty() {
            return format!("{name} is not in the sources for {}", self.u.arch);
        }
        parts.join("; ")
    }
}

/// Removes package `i`'s entries under `name`.
fn remove_owned<T>(map: &mut BTreeMap<String, Vec<(usize, T)>>, name: &str, i: usize) {
    if let Some(list) = map.get_mut(name) {
        list.retain(|(owner, _)| *owner != i);
        if list.is_empty() {
            map.remove(name);
        }
    }
}
