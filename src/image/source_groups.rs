//! `[image] layers = { strategy = "source", budget = N }`: packages laid
//! into layers by Debian source package, as apko's "origin" strategy lays
//! them by origin. The binary packages one source builds are released
//! together (a security update of openssl replaces libssl3 and openssl at
//! once), so a group changes as one, and a node that holds the previous
//! image pulls only the groups that changed.
//!
//! With more groups than the budget, the `budget - 1` heaviest get a
//! layer each and the rest share the last. Which groups those are must
//! not move when a package is updated, or an update would change layers
//! it has nothing to do with: groups are ranked by their size to within a
//! factor of two (a power-of-two class of their file bytes), then by
//! source name, never by exact bytes. A group only moves when an update
//! takes it across a power of two. The layers keep dpkg's install order:
//! each group sits where its first package is installed.

use std::collections::BTreeMap;

/// One package as the grouping sees it, in install order.
pub(super) struct Member<'a> {
    /// The source package (`Source:`, else the package's own name).
    pub source: &'a str,
    /// Bytes of file content the package installs.
    pub bytes: u64,
}

/// A layer's packages, as indexes into the members, in install order.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Group {
    /// The source packages it holds, by name.
    pub sources: Vec<String>,
    pub members: Vec<usize>,
}

/// The members grouped by source into at most `budget` groups (at least
/// one), in install order of each group's first member.
pub(super) fn group_by_source(members: &[Member], budget: usize) -> Vec<Group> {
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        by_source.entry(m.source).or_default().push(i);
    }
    let class = |indexes: &Vec<usize>| {
        let bytes: u64 = indexes.iter().map(|&i| members[i].bytes).sum();
        u64::BITS - bytes.leading_zeros()
    };
    let mut ranked: Vec<(&str, Vec<usize>)> = by_source.into_iter().collect();
    // Stable: equal classes stay in name order.
    ranked.sort_by_key(|(_, indexes)| std::cmp::Reverse(class(indexes)));
    let budget = budget.max(1);
    let mut groups: Vec<Group> = Vec::new();
    if ranked.len() > budget {
        let rest = ranked.split_off(budget - 1);
        let mut shared = Group {
            sources: rest.iter().map(|(s, _)| s.to_string()).collect(),
            members: rest.into_iter().flat_map(|(_, m)| m).collect(),
        };
        shared.sources.sort();
        shared.members.sort();
        groups.push(shared);
    }
    groups.extend(ranked.into_iter().map(|(source, members)| Group {
        sources: vec![source.to_string()],
        members,
    }));
    groups.sort_by_key(|g| g.members[0]);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&'static str, u64)]) -> Vec<Member<'static>> {
        list.iter()
            .map(|&(source, bytes)| Member { source, bytes })
            .collect()
    }

    fn sources(groups: &[Group]) -> Vec<Vec<String>> {
        groups.iter().map(|g| g.sources.clone()).collect()
    }

    const IMAGE: [(&str, u64); 7] = [
        ("glibc", 12_000_000),
        ("gcc-12", 200_000),
        ("openssl", 5_000_000),
        ("glibc", 300_000),
        ("tzdata", 3_000_000),
        ("openssl", 1_500_000),
        ("netbase", 40_000),
    ];

    #[test]
    fn binaries_of_one_source_share_a_layer_in_install_order() {
        let groups = group_by_source(&members(&IMAGE), 10);
        assert_eq!(
            groups.iter().map(|g| g.members.clone()).collect::<Vec<_>>(),
            [vec![0, 3], vec![1], vec![2, 5], vec![4], vec![6]]
        );
    }

    #[test]
    fn past_the_budget_the_lightest_groups_share_the_last_layer() {
        let groups = group_by_source(&members(&IMAGE), 3);
        assert_eq!(
            sources(&groups),
            [
                vec!["glibc".to_string()],
                vec!["gcc-12".into(), "netbase".into(), "tzdata".into()],
                vec!["openssl".into()],
            ]
        );
        assert_eq!(groups[1].members, [1, 4, 6]);
        assert_eq!(group_by_source(&members(&IMAGE), 1).len(), 1);
        assert_eq!(group_by_source(&members(&IMAGE), 0).len(), 1);
    }

    /// An update that changes a group's size within its power of two
    /// changes no other group: the grouping is the same.
    #[test]
    fn an_update_within_a_size_class_moves_nothing() {
        let before = group_by_source(&members(&IMAGE), 3);
        let mut updated = IMAGE;
        // tzdata and openssl's libssl grow and shrink, each in its class.
        updated[4].1 = 3_900_000;
        updated[2].1 = 4_300_000;
        assert_eq!(group_by_source(&members(&updated), 3), before);
    }
}
