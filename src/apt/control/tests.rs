use super::*;

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn index() -> String {
    format!(
        "Package: hello
Source: hello-src (2.10-3)
Version: 2.10-3+b1
Installed-Size: 280
Maintainer: Someone <someone@example.invalid>
Architecture: amd64
Depends: libc6 (>= 2.34),
 libfoo | libbar
Description: example package
 greets the world
Multi-Arch: foreign
Priority: optional
Filename: pool/main/h/hello/hello_2.10-3+b1_amd64.deb
Size: 53128
SHA256: {SHA_A}

package: base-files
version: 12.4
architecture: all
essential: yes
pre-depends: awk
provides: base
conflicts: old-base
breaks: initscripts (<< 2.88)
replaces: base, dpkg (<= 1.15)
filename: pool/main/b/base-files/base-files_12.4_all.deb
size: 70000
sha256: {}
",
        SHA_B.to_uppercase()
    )
}

#[test]
fn parses_stanzas_and_fields() {
    let text = index();
    let packages = parse_packages_index(&text, "suite main/binary-amd64/Packages", 3).unwrap();
    assert_eq!(packages.len(), 2);
    let hello = &packages[0];
    assert_eq!(hello.name, "hello");
    assert_eq!(hello.version, "2.10-3+b1");
    assert_eq!(hello.architecture, "amd64");
    assert_eq!(hello.source, "hello-src");
    assert_eq!(hello.multi_arch, "foreign");
    assert_eq!(hello.priority, "optional");
    assert!(!hello.essential);
    assert_eq!(hello.depends, "libc6 (>= 2.34),\n libfoo | libbar");
    assert_eq!(
        hello.filename,
        "pool/main/h/hello/hello_2.10-3+b1_amd64.deb"
    );
    assert_eq!(hello.size, 53128);
    assert_eq!(hello.sha256.hex(), SHA_A);
    assert_eq!(hello.source_index, 3);
    assert!(hello
        .stanza
        .starts_with("Package: hello\nSource: hello-src"));
    assert!(hello.stanza.ends_with(&format!("SHA256: {SHA_A}\n")));
    assert_eq!(hello.stanza.lines().count(), 15);

    let base = &packages[1];
    assert_eq!(base.name, "base-files");
    assert_eq!(base.source, "base-files");
    assert!(base.essential);
    assert_eq!(base.pre_depends, "awk");
    assert_eq!(base.provides, "base");
    assert_eq!(base.conflicts, "old-base");
    assert_eq!(base.breaks, "initscripts (<< 2.88)");
    assert_eq!(base.replaces, "base, dpkg (<= 1.15)");
    assert_eq!(
        base.sha256.hex(),
        SHA_B,
        "uppercase hex is accepted and normalized"
    );
    assert!(base.stanza.starts_with("package: base-files\n"));
}

#[test]
fn blank_lines_with_spaces_and_comments_separate_nothing_else() {
    let text = format!("\n\n# a comment\nPackage: a\nVersion: 1\nArchitecture: all\nFilename: a.deb\nSize: 1\nSHA256: {SHA_A}\n \t\n\n\nPackage: b\nVersion: 1\nArchitecture: all\nFilename: b.deb\nSize: 2\nSHA256: {SHA_A}");
    let packages = parse_packages_index(&text, "idx", 0).unwrap();
    let names: Vec<_> = packages.iter().map(|p| (p.name.as_str(), p.size)).collect();
    assert_eq!(names, [("a", 1), ("b", 2)]);
    assert!(parse_packages_index("", "idx", 0).unwrap().is_empty());
}

#[test]
fn missing_fields_name_index_line_package_and_field() {
    let full = index();
    for field in ["Version", "Architecture", "Filename", "Size", "SHA256"] {
        let text: String = full
            .lines()
            .filter(|l| !l.starts_with(&format!("{field}:")))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = parse_packages_index(&text, "IDX", 0).unwrap_err();
        match &e {
            ControlError::MissingField {
                index,
                line,
                package,
                field: f,
            } => {
                assert_eq!(
                    (index.as_str(), *line, package.as_deref(), *f),
                    ("IDX", 1, Some("hello"), field)
                );
            }
            other => panic!("{field}: {other:?}"),
        }
        let message = e.to_string();
        assert!(
            message.starts_with(&format!("IDX line 1: package hello has no {field} field")),
            "{message}"
        );
    }
    let text = format!("Package: a\nVersion: 1\nArchitecture: all\nFilename: a.deb\nSize: 1\nSHA256: {SHA_A}\n\nVersion: 1\n");
    let e = parse_packages_index(&text, "IDX", 0).unwrap_err();
    assert!(
        matches!(
            &e,
            ControlError::MissingField {
                line: 8,
                package: None,
                field: "Package",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("the stanza starting here has no Package field"),
        "{e}"
    );
}

#[test]
fn bad_values_are_refused_with_their_line() {
    let text = index().replace("Size: 53128", "Size: -5");
    let e = parse_packages_index(&text, "IDX", 0).unwrap_err();
    assert!(
        matches!(&e, ControlError::BadSize { line: 14, package, value, .. } if package == "hello" && value == "-5"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("IDX line 14: package hello has Size `-5`"),
        "{e}"
    );

    for bad in ["abc", &SHA_A[1..], &format!("{}g", &SHA_A[1..])] {
        let text = index().replace(&format!("SHA256: {SHA_A}"), &format!("SHA256: {bad}"));
        let e = parse_packages_index(&text, "IDX", 0).unwrap_err();
        assert!(
            matches!(&e, ControlError::BadSha256 { line: 15, value, .. } if value == bad),
            "{e:?}"
        );
    }

    let e = parse_packages_index("Package: a\nthis is not a field\n", "IDX", 0).unwrap_err();
    assert!(matches!(&e, ControlError::BadLine { line: 2, .. }), "{e:?}");
    let e = parse_packages_index(" continuation first\n", "IDX", 0).unwrap_err();
    assert!(matches!(&e, ControlError::BadLine { line: 1, .. }), "{e:?}");
}

fn rel(name: &str, qualifier: Option<&str>, constraint: Option<(Op, &str)>) -> Relation {
    Relation {
        name: name.to_string(),
        arch_qualifier: qualifier.map(str::to_string),
        constraint: constraint.map(|(op, v)| (op, v.to_string())),
    }
}

#[test]
fn relations_and_alternatives() {
    let groups = parse_relations(
        "libc6 (>= 2.34), libfoo:any | libbar (<< 2:1.0~rc1) ,\n python3:native,zlib1g(=1:1.2.13)",
        "amd64",
    )
    .unwrap();
    assert_eq!(
        groups,
        vec![
            vec![rel("libc6", None, Some((Op::Ge, "2.34")))],
            vec![
                rel("libfoo", Some("any"), None),
                rel("libbar", None, Some((Op::Lt, "2:1.0~rc1")))
            ],
            vec![rel("python3", Some("native"), None)],
            vec![rel("zlib1g", None, Some((Op::Eq, "1:1.2.13")))],
        ]
    );
    assert_eq!(
        display_group(&groups[1]),
        "libfoo:any | libbar (<< 2:1.0~rc1)"
    );
    assert!(parse_relations("", "amd64").unwrap().is_empty());
    assert_eq!(parse_relations("a,", "amd64").unwrap().len(), 1);
}

#[test]
fn every_operator_including_the_obsolete_ones() {
    let cases = [
        ("<<", Op::Lt),
        ("<=", Op::Le),
        ("=", Op::Eq),
        (">=", Op::Ge),
        (">>", Op::Gt),
        ("<", Op::Le),
        (">", Op::Ge),
    ];
    for (text, op) in cases {
        let groups = parse_relations(&format!("p ({text} 1.0)"), "amd64").unwrap();
        assert_eq!(
            groups,
            vec![vec![rel("p", None, Some((op, "1.0")))]],
            "{text}"
        );
    }
    let le = rel("p", None, Some((Op::Le, "1.0")));
    assert!(
        le.accepts_version(Some("1.0"))
            && le.accepts_version(Some("0.9"))
            && !le.accepts_version(Some("1.0-1"))
    );
    let lt = rel("p", None, Some((Op::Lt, "1.0")));
    assert!(!lt.accepts_version(Some("1.0")) && lt.accepts_version(Some("1.0~rc1")));
    let gt = rel("p", None, Some((Op::Gt, "1.0")));
    assert!(!gt.accepts_version(Some("1.0-0")) && gt.accepts_version(Some("1.0+1")));
    let eq = rel("p", None, Some((Op::Eq, "1.0")));
    assert!(eq.accepts_version(Some("0:1.0")) && !eq.accepts_version(Some("1.0.0")));
    assert!(
        !eq.accepts_version(None),
        "an unversioned Provides never satisfies a versioned relation"
    );
    assert!(rel("p", None, None).accepts_version(None));
}

#[test]
fn architecture_restrictions_drop_relations_for_other_architectures() {
    let field = "a [amd64 arm64], b [!amd64], c [linux-any] | d, e [any-arm] | f [!armhf], g <!nocheck> <stage1 cross>";
    let names = |arch: &str| -> Vec<String> {
        parse_relations(field, arch)
            .unwrap()
            .iter()
            .map(|g| display_group(g))
            .collect()
    };
    assert_eq!(names("amd64"), ["a", "c | d", "f", "g"]);
    assert_eq!(names("arm64"), ["a", "b", "c | d", "f", "g"]);
    assert_eq!(names("armhf"), ["b", "c | d", "e", "g"]);
    assert_eq!(names("hurd-i386"), ["b", "d", "f", "g"]);
    assert!(arch_matches("any-amd64", "amd64") && arch_matches("linux-amd64", "amd64"));
    assert!(!arch_matches("kfreebsd-any", "amd64") && arch_matches("hurd-any", "hurd-i386"));
    assert!(arch_matches("any-arm", "armel") && !arch_matches("any-arm", "arm64"));
}

#[test]
fn malformed_relations_are_errors_naming_the_relation() {
    for bad in [
        "(>= 1)",
        "a (>= 1",
        "a (1.0)",
        "a (>= )",
        "a (>= 1 2)",
        "a [amd64",
        "a [amd64 !arm64]",
        "a []",
        "a <nocheck",
        "a b",
        "a |",
        "a:",
        "a | | b",
    ] {
        let e = parse_relations(bad, "amd64").expect_err(bad);
        assert!(
            bad.starts_with(&e.relation) || e.relation.is_empty(),
            "{bad}: {e}"
        );
    }
    let e = parse_relations("libc6, foo (~ 1)", "amd64").unwrap_err();
    assert_eq!(
        e.to_string(),
        "relation `foo (~ 1)`: the version needs an operator (<<, <=, =, >=, >>)"
    );
}

#[test]
fn lists_refuse_alternatives() {
    assert_eq!(
        parse_relation_list("a (= 1.0), b", "amd64").unwrap(),
        vec![rel("a", None, Some((Op::Eq, "1.0"))), rel("b", None, None)]
    );
    let e = parse_relation_list("a | b", "amd64").unwrap_err();
    assert!(e.to_string().contains("alternatives"), "{e}");
}
