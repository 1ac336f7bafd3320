use super::*;
use crate::apt::control::parse_packages_index;

/// Parses hand-written stanzas as one source's Packages index, filling in
/// the fields the resolver does not look at.
fn index(text: &str, source: usize) -> Vec<Package> {
    let mut full = String::new();
    for stanza in text.split("\n\n").map(str::trim).filter(|s| !s.is_empty()) {
        full.push_str(stanza);
        full.push('\n');
        if !stanza.contains("Architecture:") {
            full.push_str("Architecture: amd64\n");
        }
        full.push_str(&format!(
            "Filename: pool/{source}/x.deb\nSize: 1\nSHA256: {}\n\n",
            "ab".repeat(32)
        ));
    }
    parse_packages_index(&full, "test", source).unwrap()
}

fn universe(text: &str) -> Universe {
    Universe::new(index(text, 0), "amd64").unwrap()
}

fn req(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `name version` of each resolved package, in result order.
fn resolved(u: &Universe, names: &[&str]) -> Vec<String> {
    resolve(u, &req(names))
        .unwrap()
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect()
}

fn error(u: &Universe, names: &[&str]) -> String {
    resolve(u, &req(names)).unwrap_err().to_string()
}

const BASIC: &str = "
Package: hello
Version: 2.10-3
Depends: libfoo (>= 2.0), libc6

Package: libfoo
Version: 2.1-1
Depends: libc6 (>= 2.36)

Package: libfoo
Version: 1.0-1

Package: libfoo
Version: 2.0-1

Package: libc6
Version: 2.36-9

Package: base-files
Version: 12.4
Essential: yes
Priority: required

Package: unrelated
Version: 1
Depends: broken (((
";

#[test]
fn follows_depends_and_picks_the_highest_fitting_version() {
    let u = universe(BASIC);
    assert_eq!(
        resolved(&u, &["hello"]),
        ["hello 2.10-3", "libc6 2.36-9", "libfoo 2.1-1"]
    );
    assert_eq!(
        resolved(&u, &["libfoo=2.0-1", "hello"]),
        ["hello 2.10-3", "libc6 2.36-9", "libfoo 2.0-1"]
    );
    // A pin applies to dependencies even when it is listed after them.
    assert_eq!(
        resolved(&u, &["hello", "libfoo=2.0-1"]),
        ["hello 2.10-3", "libc6 2.36-9", "libfoo 2.0-1"]
    );
    assert_eq!(
        resolved(&u, &["base-files"]),
        ["base-files 12.4"],
        "named essential packages are added"
    );
}

#[test]
fn a_preferred_version_is_kept_while_it_fits() {
    let prefer = |pairs: &[(&str, &str)]| {
        let preferred: BTreeMap<String, String> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Universe::preferring(index(BASIC, 0), "amd64", &preferred).unwrap()
    };
    // libfoo stays at 2.0-1 although 2.1-1 is newer.
    assert_eq!(
        resolved(&prefer(&[("libfoo", "2.0-1")]), &["hello"]),
        ["hello 2.10-3", "libc6 2.36-9", "libfoo 2.0-1"]
    );
    // 1.0-1 does not satisfy hello's `libfoo (>= 2.0)`: the newest that
    // does is taken, as an update of what hello needs.
    assert_eq!(
        resolved(&prefer(&[("libfoo", "1.0-1")]), &["hello"]),
        ["hello 2.10-3", "libc6 2.36-9", "libfoo 2.1-1"]
    );
}

#[test]
fn results_do_not_depend_on_index_order() {
    let stanzas: Vec<&str> = BASIC.split("\n\n").collect();
    let reversed: Vec<&str> = stanzas.iter().rev().copied().collect();
    let u = universe(&reversed.join("\n\n"));
    assert_eq!(
        resolved(&u, &["hello"]),
        ["hello 2.10-3", "libc6 2.36-9", "libfoo 2.1-1"]
    );
}

#[test]
fn unsatisfiable_dependencies_print_the_chain() {
    let u = universe(&BASIC.replace("libfoo (>= 2.0)", "libfoo (>= 3.0)"));
    assert_eq!(
        error(&u, &["hello"]),
        "cannot satisfy hello -> libfoo (>= 3.0): no candidate; libfoo has 2.1-1 (source 0), 2.0-1 (source 0), 1.0-1 (source 0)"
    );
    let u = universe(
        &BASIC
            .replace("libc6 (>= 2.36)", "libc6 (>= 2.40)")
            .replace("libfoo (>= 2.0), libc6", "libfoo (>= 2.1)"),
    );
    assert_eq!(error(&u, &["hello"]), "cannot satisfy hello -> libfoo (>= 2.1) -> libc6 (>= 2.40): no candidate; libc6 has 2.36-9 (source 0)");
    let e = error(&u, &["hello=2.10-3", "libfoo=1.0-1"]);
    assert_eq!(e, "cannot satisfy hello (= 2.10-3) -> libfoo (>= 2.1): no candidate; libfoo has 2.1-1 (source 0), 2.0-1 (source 0), 1.0-1 (source 0), and [apt] packages pins it to 1.0-1");
    let u = universe("Package: a\nVersion: 1\nDepends: ghost");
    assert_eq!(
        error(&u, &["a"]),
        "cannot satisfy a -> ghost: no candidate; ghost is not in the sources for amd64"
    );
}

#[test]
fn a_failing_version_falls_back_to_the_next_one() {
    let u = universe(&BASIC.replace("libc6 (>= 2.36)", "libc6 (>= 2.40)"));
    assert_eq!(
        resolved(&u, &["hello"]),
        ["hello 2.10-3", "libc6 2.36-9", "libfoo 2.0-1"]
    );
}

#[test]
fn essential_packages_are_not_added_on_their_own() {
    let u = universe(BASIC);
    let names: Vec<String> = resolve(&u, &req(&["libc6"]))
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["libc6"]);
}

#[test]
fn malformed_fields_only_matter_for_packages_that_are_tried() {
    let u = universe(BASIC);
    let e = error(&u, &["unrelated"]);
    assert!(e.starts_with("cannot satisfy unrelated: unrelated 1 has a malformed Depends field: relation `broken (((`"), "{e}");
}

#[test]
fn missing_and_bad_requests() {
    let u = universe(BASIC);
    assert_eq!(
        error(&u, &["libfo"]),
        "no package named `libfo` in the sources for amd64; did you mean libfoo?"
    );
    assert_eq!(
        error(&u, &["helo"]),
        "no package named `helo` in the sources for amd64; did you mean hello?"
    );
    assert_eq!(
        error(&u, &["libfooo"]),
        "no package named `libfooo` in the sources for amd64; did you mean libfoo?"
    );
    let e = error(&u, &["zzzzzzzz"]);
    assert!(
        e.ends_with("check the name and the sources' components"),
        "{e}"
    );
    assert_eq!(error(&u, &["libfoo=9"]), "`libfoo=9` in [apt] packages: the sources have no such version; libfoo has 2.1-1, 2.0-1, 1.0-1");
    assert!(error(&u, &["libfoo=2.0-1", "libfoo=1.0-1"]).contains("libfoo is also pinned to 2.0-1"));
    assert_eq!(
        resolved(&u, &["libfoo=2.0-1", "libfoo=0:2.0-1"]),
        ["libfoo 2.0-1"],
        "the same pin twice is fine"
    );
    for bad in ["", "a b", "libfoo=", "libfoo (>= 1)", "x:amd64"] {
        assert!(
            matches!(
                resolve(&u, &req(&[bad])),
                Err(DependencyError::BadRequest { .. })
            ),
            "{bad:?}"
        );
    }
}

const ALTERNATIVES: &str = "
Package: app
Version: 1
Depends: first | second, either-a | either-b

Package: first
Version: 1
Depends: missing-lib

Package: first-dep
Version: 1

Package: second
Version: 1

Package: either-a
Version: 1

Package: either-b
Version: 1
";

#[test]
fn alternatives_take_the_first_installable_one_and_undo_the_rest() {
    let u =
        universe(&ALTERNATIVES.replace("Depends: missing-lib", "Depends: first-dep, missing-lib"));
    // `first` cannot be installed, so nothing it pulled in (first-dep) stays.
    assert_eq!(resolved(&u, &["app"]), ["app 1", "either-a 1", "second 1"]);
    // Already chosen, or named by the recipe, beats field order.
    assert_eq!(
        resolved(&u, &["either-b", "app"]),
        ["app 1", "either-b 1", "second 1"]
    );
    assert_eq!(
        resolved(&u, &["app", "either-b"]),
        ["app 1", "either-b 1", "second 1"]
    );
    // When every alternative fails, the first deeper failure is reported.
    let u = universe(&ALTERNATIVES.replace(
        "Package: second\nVersion: 1",
        "Package: second\nVersion: 1\nDepends: also-missing",
    ));
    assert_eq!(error(&u, &["app"]), "cannot satisfy app -> first -> missing-lib: no candidate; missing-lib is not in the sources for amd64");
    let u = universe("Package: app\nVersion: 1\nDepends: x (>= 2) | y\n\nPackage: x\nVersion: 1");
    assert_eq!(error(&u, &["app"]), "cannot satisfy app -> x (>= 2) | y: no candidate; x has 1 (source 0); y is not in the sources for amd64");
}

const VIRTUAL: &str = "
Package: app
Version: 1
Depends: mail-transport-agent, awk

Package: exim4
Version: 4.96
Provides: mail-transport-agent
Conflicts: mail-transport-agent

Package: postfix
Version: 3.7
Provides: mail-transport-agent
Conflicts: mail-transport-agent

Package: mawk
Version: 1.3.4
Provides: awk

Package: gawk
Version: 5.2.1
Provides: awk

Package: libssl
Version: 3.0.11
Provides: libssl-abi (= 3)

Package: old-libssl
Version: 1.1
Provides: libssl-abi

Package: needs-abi
Version: 1
Depends: libssl-abi (= 3)

Package: needs-old-abi
Version: 1
Depends: libssl-abi (>= 4)
";

#[test]
fn virtual_packages_resolve_through_provides() {
    let u = universe(VIRTUAL);
    // Providers are tried by name; mutually exclusive providers do not
    // block themselves.
    assert_eq!(
        resolved(&u, &["app"]),
        ["app 1", "exim4 4.96", "gawk 5.2.1"]
    );
    assert_eq!(
        resolved(&u, &["app", "postfix", "mawk"]),
        ["app 1", "mawk 1.3.4", "postfix 3.7"]
    );
    let e = error(&u, &["app", "postfix", "exim4"]);
    assert_eq!(
        e,
        "cannot satisfy postfix: postfix 3.7 has `Conflicts: mail-transport-agent`, \
         and exim4 4.96 is already chosen (for app -> mail-transport-agent [exim4 4.96])"
    );
    assert_eq!(
        resolved(&u, &["needs-abi"]),
        ["libssl 3.0.11", "needs-abi 1"],
        "versioned Provides satisfy versioned relations"
    );
    let e = error(&u, &["needs-old-abi"]);
    assert_eq!(
        e,
        "cannot satisfy needs-old-abi -> libssl-abi (>= 4): no candidate; libssl-abi is provided by libssl 3.0.11 (= 3), \
         old-libssl 1.1 (unversioned, which cannot satisfy a versioned dependency)"
    );
}

#[test]
fn requests_for_virtual_names() {
    let u = universe(VIRTUAL);
    assert_eq!(error(&u, &["awk"]), "`awk` is a virtual package provided by gawk, mawk; name the one you want in [apt] packages");
    assert_eq!(resolved(&u, &["awk", "mawk"]), ["mawk 1.3.4"]);
    assert_eq!(resolved(&u, &["mawk", "awk"]), ["mawk 1.3.4"]);
    assert!(error(&u, &["libssl-abi"]).contains("provided by libssl, old-libssl;"));
    let u = universe("Package: mawk\nVersion: 1.3.4\nProvides: awk\n\nPackage: mawk\nVersion: 1.3.3\nProvides: awk");
    assert_eq!(
        resolved(&u, &["awk"]),
        ["mawk 1.3.4"],
        "a single provider stands for the name"
    );
}

#[test]
fn a_request_for_a_real_package_is_not_met_by_a_provider() {
    let u = universe("Package: foo-ng\nVersion: 2\nProvides: foo\n\nPackage: foo\nVersion: 1");
    assert_eq!(resolved(&u, &["foo-ng", "foo"]), ["foo 1", "foo-ng 2"]);
    let u = universe(
        "Package: app\nVersion: 1\nDepends: foo\n\nPackage: foo-ng\nVersion: 2\nProvides: foo",
    );
    assert_eq!(
        resolved(&u, &["foo-ng", "app"]),
        ["app 1", "foo-ng 2"],
        "a dependency is met by a provider"
    );
}

#[test]
fn conflicts_naming_another_architecture_do_not_apply() {
    let u = universe("Package: a\nVersion: 1\nConflicts: b:arm64\n\nPackage: b\nVersion: 1\nBreaks: c:i386\n\nPackage: c\nVersion: 1");
    assert_eq!(resolved(&u, &["a", "b", "c"]), ["a 1", "b 1", "c 1"]);
    let u = universe("Package: a\nVersion: 1\nConflicts: b:any\n\nPackage: b\nVersion: 1");
    assert!(error(&u, &["a", "b"]).contains("`Conflicts: b:any`"));
}

#[test]
fn conflicts_and_breaks_skip_candidates_both_ways() {
    let text = "
Package: tool
Version: 1
Depends: libx

Package: libx
Version: 2.0
Conflicts: legacy

Package: libx
Version: 1.0

Package: legacy
Version: 5

Package: guard
Version: 1
Breaks: libx (<< 2.0)
";
    let u = universe(text);
    assert_eq!(resolved(&u, &["tool"]), ["libx 2.0", "tool 1"]);
    // libx 2.0 would conflict with the chosen legacy: the next version.
    assert_eq!(
        resolved(&u, &["legacy", "tool"]),
        ["legacy 5", "libx 1.0", "tool 1"]
    );
    // Chosen first, guard's Breaks rules out libx 1.0 as well.
    let e = error(&u, &["guard", "legacy", "tool"]);
    assert_eq!(e, "cannot satisfy tool -> libx: libx 2.0 has `Conflicts: legacy`, and legacy 5 is already chosen (for legacy)");
    let e = error(&u, &["libx=1.0", "guard"]);
    assert_eq!(e, "cannot satisfy guard: guard 1 has `Breaks: libx (<< 2.0)`, and libx 1.0 is already chosen (for libx (= 1.0))");
    let e = error(&u, &["guard", "libx=1.0"]);
    assert_eq!(e, "cannot satisfy libx (= 1.0): libx 1.0 cannot be added: guard 1 (chosen for guard) has `Breaks: libx (<< 2.0)`");
}

#[test]
fn pre_depends_cycles_and_arch_qualifiers() {
    let text = "
Package: a
Version: 1
Pre-Depends: b
Depends: python3:any, libz:native

Package: b
Version: 1
Depends: a

Package: python3
Version: 3.11
Architecture: all

Package: libz
Version: 1

Package: libz
Version: 9
Architecture: arm64

Package: c
Version: 1
Architecture: all
Depends: libz:arm64
";
    let u = universe(text);
    assert_eq!(
        resolved(&u, &["a"]),
        ["a 1", "b 1", "libz 1", "python3 3.11"]
    );
    assert_eq!(
        u.packages.iter().filter(|p| p.name == "libz").count(),
        1,
        "arm64 packages are dropped for amd64"
    );
    assert_eq!(
        error(&u, &["c"]),
        "cannot satisfy c -> libz:arm64: no candidate; libz:arm64 names another architecture, and only amd64 and all are installed"
    );
    let arm = Universe::new(index(text, 0), "arm64").unwrap();
    assert_eq!(resolved(&arm, &["c"]), ["c 1", "libz 9"]);
}

#[test]
fn several_sources_prefer_higher_versions_then_the_earlier_source() {
    let mut all = index("Package: p\nVersion: 1.0\n\nPackage: q\nVersion: 2.0", 0);
    all.extend(index(
        "Package: p\nVersion: 1.0\n\nPackage: q\nVersion: 2.0+deb12u1\n\nPackage: q\nVersion: 2.0",
        1,
    ));
    let u = Universe::new(all, "amd64").unwrap();
    let got: Vec<(String, String, usize)> = resolve(&u, &req(&["p", "q"]))
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.version, p.source_index))
        .collect();
    assert_eq!(
        got,
        [
            ("p".into(), "1.0".into(), 0),
            ("q".into(), "2.0+deb12u1".into(), 1)
        ]
    );
    let e = error(&u, &["q=3"]);
    assert!(e.ends_with("q has 2.0+deb12u1, 2.0, 2.0"), "{e}");
}

#[test]
fn a_universe_without_the_architecture_is_an_error() {
    let all = index("Package: p\nVersion: 1\nArchitecture: arm64", 0);
    let e = Universe::new(all, "amd64")
        .err()
        .expect("no amd64 packages")
        .to_string();
    assert_eq!(e, "the package indexes hold 1 packages but none for amd64 or `all`; check that the recipe's sources carry architecture amd64");
    assert!(Universe::new(Vec::new(), "amd64").is_ok());
}

#[test]
fn pathological_backtracking_is_bounded() {
    // Each level has two versions and the bottom is missing, so trying
    // every combination would take 2^20 attempts.
    let mut text = String::new();
    for level in 0..20 {
        for version in [1, 2] {
            text.push_str(&format!(
                "Package: p{level}\nVersion: {version}\nDepends: p{}\n\n",
                level + 1
            ));
        }
    }
    let u = universe(&text);
    let e = resolve(&u, &req(&["p0"])).unwrap_err();
    assert!(
        matches!(&e, DependencyError::TooComplex { request, limit } if request == "p0" && *limit == ATTEMPT_LIMIT),
        "{e}"
    );
}

fn order_of(text: &str) -> Vec<String> {
    let packages = index(text, 0);
    install_order(&packages)
        .into_iter()
        .map(|i| packages[i].name.clone())
        .collect()
}

#[test]
fn install_order_puts_dependencies_first() {
    let text = "
Package: app
Version: 1
Depends: libfoo | libother, awk

Package: libfoo
Version: 1
Pre-Depends: libc6

Package: mawk
Version: 1
Provides: awk

Package: libc6
Version: 1

Package: zzz
Version: 1
";
    assert_eq!(order_of(text), ["libc6", "libfoo", "mawk", "app", "zzz"]);
}

#[test]
fn install_order_breaks_cycles_by_name_keeping_pre_depends() {
    let cycle = "Package: b\nVersion: 1\nDepends: a\n\nPackage: a\nVersion: 1\nDepends: b\n\nPackage: c\nVersion: 1\nDepends: a";
    assert_eq!(order_of(cycle), ["a", "b", "c"]);
    // a Pre-Depends on b: breaking the cycle at a would unpack it first.
    let pre = "Package: b\nVersion: 1\nDepends: a\n\nPackage: a\nVersion: 1\nPre-Depends: b";
    assert_eq!(order_of(pre), ["b", "a"]);
    assert!(install_order(&[]).is_empty());
    // A cycle is broken inside itself: `aa` (the least name) waits on the
    // cycle of `x` and `y`, which waits on the cycle of `w` and `z`, so
    // the one of `w` and `z` is broken first and `aa` comes only once `x`
    // is in.
    let outside = "Package: aa\nVersion: 1\nDepends: x\n\nPackage: x\nVersion: 1\nDepends: y, z\n\nPackage: y\nVersion: 1\nDepends: x\n\nPackage: z\nVersion: 1\nDepends: w\n\nPackage: w\nVersion: 1\nDepends: z";
    assert_eq!(order_of(outside), ["w", "z", "x", "aa", "y"]);
}
