//! The order to install a resolved set in.

use std::collections::{BTreeMap, BTreeSet};

use crate::apt::control::{parse_relation_list, parse_relations};
use crate::apt::Package;

/// An installation order for `packages`: indices such that each package
/// comes after those it Depends or Pre-Depends on within the set (through
/// Provides too), the least name first among packages that are ready.
/// Dependency cycles are broken at the package with the least name whose
/// remaining dependencies are only Depends (Pre-Depends are honoured
/// when at all possible, as dpkg does), else the least name.
pub fn install_order(packages: &[Package]) -> Vec<usize> {
    let arch = packages
        .iter()
        .map(|p| p.architecture.as_str())
        .find(|a| *a != "all")
        .unwrap_or("all");
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in packages.iter().enumerate() {
        by_name.entry(p.name.clone()).or_default().push(i);
        for r in parse_relation_list(&p.provides, arch).unwrap_or_default() {
            by_name.entry(r.name).or_default().push(i);
        }
    }
    // needs[i]: dependency → whether it is (also) a Pre-Depends. The
    // resolver has already refused fields that do not parse.
    let mut needs: Vec<BTreeMap<usize, bool>> = vec![BTreeMap::new(); packages.len()];
    let mut needed_by: Vec<Vec<usize>> = vec![Vec::new(); packages.len()];
    for (i, p) in packages.iter().enumerate() {
        for (field, pre) in [(&p.pre_depends, true), (&p.depends, false)] {
            for r in parse_relations(field, arch)
                .unwrap_or_default()
                .into_iter()
                .flatten()
            {
                for &j in by_name
                    .get(&r.name)
                    .into_iter()
                    .flatten()
                    .filter(|&&j| j != i)
                {
                    *needs[i].entry(j).or_default() |= pre;
                }
            }
        }
        for &j in needs[i].keys() {
            needed_by[j].push(i);
        }
    }
    let key = |i: usize| (packages[i].name.as_str(), i);
    let mut unmet: Vec<usize> = needs.iter().map(BTreeMap::len).collect();
    let mut placed = vec![false; packages.len()];
    let mut ready: BTreeSet<(&str, usize)> = (0..packages.len())
        .filter(|&i| unmet[i] == 0)
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(packages.len());
    while order.len() < packages.len() {
        let next = match ready.pop_first() {
            Some((_, i)) => i,
            None => {
                // Every remaining package waits on another: break a cycle,
                // in a group of packages that wait only on each other (so
                // nothing is configured before a dependency outside its
                // cycle), at its least name whose remaining dependencies
                // are only Depends.
                let cycle = waiting_only_on_each_other(&needs, &placed);
                let only_depends = |i: &usize| needs[*i].iter().all(|(j, pre)| placed[*j] || !pre);
                cycle
                    .iter()
                    .copied()
                    .filter(only_depends)
                    .min_by_key(|&i| key(i))
                    .or_else(|| cycle.iter().copied().min_by_key(|&i| key(i)))
                    .expect("a package remains")
            }
        };
        placed[next] = true;
        order.push(next);
        for &k in &needed_by[next] {
            unmet[k] -= 1;
            if unmet[k] == 0 && !placed[k] {
                ready.insert(key(k));
            }
        }
    }
    order
}

/// The packages of the strongly connected groups of the unplaced ones
/// (by what each still needs) that need nothing unplaced outside
/// themselves. Such a group exists whenever every unplaced package waits
/// on another.
fn waiting_only_on_each_other(needs: &[BTreeMap<usize, bool>], placed: &[bool]) -> Vec<usize> {
    let n = needs.len();
    let edges = |i: usize| needs[i].keys().copied().filter(|&j| !placed[j]);
    // What each unplaced package reaches through what it needs.
    let reach = |from: usize| -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([from]);
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            for j in edges(i) {
                if seen.insert(j) {
                    stack.push(j);
                }
            }
        }
        seen
    };
    let reaches: Vec<Option<BTreeSet<usize>>> =
        (0..n).map(|i| (!placed[i]).then(|| reach(i))).collect();
    // A package of a group needing nothing outside itself: every package
    // it reaches reaches it back. All such groups together, so the choice
    // among them is by name, not by the order packages were listed in.
    let members: Vec<usize> = (0..n)
        .filter(|&i| {
            reaches[i].as_ref().is_some_and(|r| {
                r.iter()
                    .all(|&j| reaches[j].as_ref().is_some_and(|rj| rj.contains(&i)))
            })
        })
        .collect();
    if members.is_empty() {
        (0..n).filter(|&i| !placed[i]).collect()
    } else {
        members
    }
}
