use super::*;
use crate::apps::archive::{unpack, ArchiveKind};
use crate::oci::Digest;
use crate::python::pylock::WheelSource;
use crate::store::BlobStore;

fn record_line(path: &str, bytes: &[u8]) -> String {
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes));
    format!("{path},sha256={hash},{}\n", bytes.len())
}

/// A wheel of `demo 1.0`: a module, a C extension, a script and a data
/// file in `.data`, a console entry point; `tamper` changes a file after
/// RECORD was written.
fn demo_wheel(tamper: bool) -> Vec<u8> {
    let files: Vec<(&str, &[u8], u32)> = vec![
        ("demo/__init__.py", b"def main():\n    return 0\n", 0o100644),
        ("demo/_speedups.cpython-311-x86_64-linux-gnu.so", b"\x7fELF", 0o100755),
        ("demo-1.0.data/scripts/demo-tool", b"#!python\nprint('hi')\n", 0o100755),
        ("demo-1.0.data/data/share/demo/README", b"data\n", 0o100644),
        ("demo-1.0.data/headers/demo.h", b"int x;\n", 0o100644),
        (
            "demo-1.0.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_17_x86_64\n",
            0o100644,
        ),
        ("demo-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n", 0o100644),
        (
            "demo-1.0.dist-info/entry_points.txt",
            b"[console_scripts]\ndemo = demo:main\n\n[demo.plugins]\nx = y:z\n",
            0o100644,
        ),
    ];
    let mut record = String::new();
    for (p, b, _) in &files {
        record.push_str(&record_line(p, b));
    }
    record.push_str("demo-1.0.dist-info/RECORD,,\n");
    let mut members: Vec<(&str, Vec<u8>, u32)> =
        files.iter().map(|(p, b, m)| (*p, b.to_vec(), *m)).collect();
    if tamper {
        members[0].1 = b"def main():\n    return 1\n".to_vec();
    }
    members.push(("demo-1.0.dist-info/RECORD", record.into_bytes(), 0o100644));
    let refs: Vec<(&str, &[u8], u32, bool)> = members
        .iter()
        .map(|(p, b, m)| (*p, b.as_slice(), *m, true))
        .collect();
    crate::apps::zip::tests::make(&refs)
}

fn chosen(sha256: Digest) -> ChosenWheel {
    ChosenWheel {
        name: "demo".into(),
        version: "1.0".into(),
        file: "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl".into(),
        source: WheelSource::Url("https://files.invalid/demo.whl".into()),
        index: None,
        sha256,
        size: None,
    }
}

fn installed(tamper: bool, scheme: &Scheme) -> Result<InstalledWheel, PythonError> {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let bytes = demo_wheel(tamper);
    let digest = store.put_bytes(&bytes).unwrap();
    let u = unpack(
        &store,
        "demo 1.0",
        &digest,
        bytes.len() as u64,
        ArchiveKind::Wheel,
    )
    .unwrap();
    let result = install(&u, &chosen(digest), scheme, 1_700_000_000);
    // Contents are read back while the store is still there.
    if let Ok(w) = &result {
        for (_, node) in w.tree.iter() {
            if let crate::fstree::NodeKind::File(c) = &node.kind {
                c.read_all().unwrap();
            }
        }
    }
    result.map(|w| InstalledWheel {
        tree: materialized(w.tree),
        dist_info: w.dist_info,
    })
}

/// The tree with every content in memory, to outlive the test store.
fn materialized(tree: FsTree) -> FsTree {
    let mut out = FsTree::new();
    for (k, n) in tree.iter() {
        let mut n = n.clone();
        if let crate::fstree::NodeKind::File(c) = &n.kind {
            n.kind = crate::fstree::NodeKind::File(Content::bytes(c.read_all().unwrap()));
        }
        out.replace(k.clone(), n);
    }
    out
}

fn text(tree: &FsTree, key: &str) -> String {
    match &tree
        .get(key)
        .unwrap_or_else(|| panic!("{key} installed"))
        .kind
    {
        crate::fstree::NodeKind::File(c) => String::from_utf8(c.read_all().unwrap()).unwrap(),
        other => panic!("{key} is {other:?}"),
    }
}

#[test]
fn a_wheel_installs_into_debians_scheme() {
    let w = installed(false, &Scheme::debian((3, 11))).unwrap();
    let site = "usr/local/lib/python3.11/dist-packages";
    assert_eq!(w.dist_info, format!("{site}/demo-1.0.dist-info"));
    assert!(w.tree.get(&format!("{site}/demo/__init__.py")).is_some());
    assert_eq!(
        w.tree
            .get(&format!(
                "{site}/demo/_speedups.cpython-311-x86_64-linux-gnu.so"
            ))
            .unwrap()
            .mode,
        0o755
    );
    // `.data` folders go to their scheme paths; #!python names the image's python.
    assert_eq!(
        text(&w.tree, "usr/local/bin/demo-tool"),
        "#!/usr/bin/python3\nprint('hi')\n"
    );
    assert_eq!(w.tree.get("usr/local/bin/demo-tool").unwrap().mode, 0o755);
    assert_eq!(text(&w.tree, "usr/local/share/demo/README"), "data\n");
    assert!(w
        .tree
        .get("usr/local/include/python3.11/demo/demo.h")
        .is_some());
    // The console script's launcher.
    let launcher = text(&w.tree, "usr/local/bin/demo");
    assert!(launcher.starts_with("#!/usr/bin/python3\n"), "{launcher}");
    assert!(launcher.contains("from demo import main"), "{launcher}");
    assert!(launcher.contains("sys.exit(main())"), "{launcher}");
    assert_eq!(
        text(&w.tree, &format!("{site}/demo-1.0.dist-info/INSTALLER")),
        "stele\n"
    );
    let record = text(&w.tree, &format!("{site}/demo-1.0.dist-info/RECORD"));
    assert!(record.contains("../../../bin/demo,sha256="), "{record}");
    assert!(
        record.contains("demo-1.0.dist-info/INSTALLER,sha256="),
        "{record}"
    );
    assert!(record.contains("demo-1.0.dist-info/RECORD,,\n"), "{record}");
    assert!(!record.contains(".data/"), "{record}");
    // Every line but RECORD's own names the installed bytes.
    for line in record.lines().filter(|l| !l.ends_with(",,")) {
        let f = csv_fields(line);
        let mut parts: Vec<&str> = site.split('/').collect();
        for p in f[0].split('/') {
            if p == ".." {
                parts.pop();
            } else {
                parts.push(p);
            }
        }
        let key = parts.join("/");
        let bytes = text(&w.tree, &key);
        assert_eq!(
            line,
            record_line(&f[0], bytes.as_bytes()).trim_end(),
            "{key}"
        );
    }
}

#[test]
fn a_venv_has_its_own_scheme() {
    let w = installed(false, &Scheme::venv("opt/venv", (3, 11))).unwrap();
    assert!(w
        .tree
        .get("opt/venv/lib/python3.11/site-packages/demo/__init__.py")
        .is_some());
    assert!(text(&w.tree, "opt/venv/bin/demo").starts_with("#!/opt/venv/bin/python\n"));
}

#[test]
fn a_file_that_is_not_its_record_is_refused() {
    let e = installed(true, &Scheme::debian((3, 11))).err().unwrap();
    assert!(
        e.to_string()
            .contains("demo/__init__.py does not match its RECORD hash"),
        "{e}"
    );
    assert!(e.to_string().contains("demo 1.0"), "{e}");
}

#[test]
fn records_parse_and_paths_relate() {
    assert_eq!(csv_fields("\"a,b\",x,1"), ["a,b", "x", "1"]);
    assert_eq!(csv_quote("a,b"), "\"a,b\"");
    assert_eq!(relative("usr/lib/p", "usr/bin/x"), "../../bin/x");
    assert_eq!(relative("a/b", "a/b/c"), "c");
    assert!(launcher("/p", "x", "mod.sub:obj.fn [extra]")
        .unwrap()
        .contains("sys.exit(obj.fn())"));
    assert!(launcher("/p", "x", "os;evil:fn").is_err());
}
