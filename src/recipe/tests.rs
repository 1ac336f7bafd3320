use std::path::Path;

use super::*;

fn err_of(text: &str) -> String {
    parse(Path::new("r.toml"), text, None)
        .unwrap_err()
        .to_string()
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
}

#[test]
fn errors_name_location_and_fix() {
    let e = err_of("[image]\nname = \"x\"\nbogus = 1\n");
    assert!(e.starts_with("r.toml:3:1: unknown field `bogus`"), "{e}");
    let e = err_of("[image]\nname = 5\n");
    assert!(e.starts_with("r.toml:2:8:"), "{e}");
    let e = err_of("[image]\nname = \"x\"\n[[paths]]\npath = \"tmp\"\nkind = \"dir\"\n");
    assert!(
        e.starts_with("r.toml:4:8:") && e.contains("not an absolute path"),
        "{e}"
    );
    let e = err_of(
        "[image]\nname = \"x\"\n[[paths]]\npath = \"/tmp\"\nkind = \"dir\"\nmode = \"999\"\n",
    );
    assert!(e.contains("octal"), "{e}");
    let e = err_of("[image]\nname = \"x\"\n[base]\nimage = \"reg.example/a:1\"\n");
    assert!(e.contains("has no digest"), "{e}");
    for (written, fix) in [
        ("0755", "\"0755\""),
        ("755", "\"0755\""),
        ("600", "\"0600\""),
    ] {
        let e = err_of(&format!(
            "[image]\nname = \"x\"\n[[paths]]\npath = \"/a\"\nkind = \"dir\"\nmode = {written}\n"
        ));
        assert_eq!(
            e,
            format!("r.toml:6:8: mode = {written} is not a string: write mode as a string, {fix}")
        );
    }
}

#[test]
fn values_other_tools_cannot_read_are_refused_at_their_line() {
    let e = err_of("[image]\nname = \"x\"\nepoch = 253402300800\n");
    assert!(
        e.starts_with("r.toml:3:") && e.contains("past the year 9999"),
        "{e}"
    );
    assert!(parse(
        Path::new("r.toml"),
        "[image]\nname = \"x\"\nepoch = 253402300799\n",
        None
    )
    .is_ok());
    let e = parse(
        Path::new("r.toml"),
        "[image]\nname = \"x\"\n",
        Some(u64::MAX),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("SOURCE_DATE_EPOCH"), "{e}");
    for (accounts, line) in [
        ("[[accounts.users]]\nname = \"root\"\nuid = 1000\n", 4),
        ("[[accounts.users]]\nname = \"admin\"\nuid = 0\n", 4),
        ("[[accounts.groups]]\nname = \"root\"\ngid = 5\n", 4),
        ("[[accounts.groups]]\nname = \"wheel\"\ngid = 0\n", 4),
    ] {
        let e = err_of(&format!("[image]\nname = \"x\"\n{accounts}"));
        assert!(
            e.starts_with(&format!("r.toml:{line}:")) && e.contains("root's"),
            "{e}"
        );
    }
    assert!(parse(
        Path::new("r.toml"),
        "[image]\nname = \"x\"\n[[accounts.users]]\nname = \"root\"\nuid = 0\n",
        None
    )
    .is_ok());
    for key in ["\"\"", "\"A=B\""] {
        let e = err_of(&format!(
            "[image]\nname = \"x\"\n[config]\nenv = {{ OK = \"1\", {key} = \"v\" }}\n"
        ));
        assert!(
            e.starts_with("r.toml:4:") && e.contains("not a variable name"),
            "{e}"
        );
    }
    let e = err_of("[image]\nname = \"x\"\n[annotations]\n\"\" = \"v\"\n");
    assert!(e.starts_with("r.toml:4:") && e.contains("empty"), "{e}");
}

#[test]
fn a_recipe_that_is_not_utf8_is_named_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(&path, b"[image]\nname = \"x\"\n# caf\xe9\n").unwrap();
    let e = load(&path, None).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:3:6:", path.display())) && e.contains("not UTF-8"),
        "{e}"
    );
}

#[test]
fn keys_stele_sets_are_refused_at_their_line() {
    let e = err_of("[image]\nname = \"x\"\n[config]\nlabels = { \"dev.stele.recipe.digest\" = \"sha256:0\" }\n");
    assert!(
        e.starts_with("r.toml:4:") && e.contains("set by stele"),
        "{e}"
    );
    let e = err_of(
        "[image]\nname = \"x\"\n[annotations]\n\"org.opencontainers.image.created\" = \"2020\"\n",
    );
    assert!(
        e.starts_with("r.toml:4:") && e.contains("from the epoch"),
        "{e}"
    );
    let e = err_of("[image]\nname = \"x\"\n[config]\nlabels = { \"org.opencontainers.image.source\" = \"a\" }\n[annotations]\n\"org.opencontainers.image.source\" = \"b\"\n");
    assert!(
        e.starts_with("r.toml:4:") && e.contains("make them agree"),
        "{e}"
    );
    let same = "[image]\nname = \"x\"\n[config]\nlabels = { \"org.opencontainers.image.source\" = \"a\" }\n[annotations]\n\"org.opencontainers.image.source\" = \"a\"\n";
    let r = parse(Path::new("r.toml"), same, None).unwrap();
    // Spanned values serialize as the bare value: the canonical recipe
    // (and so every recipe digest) is what it was before they were spanned.
    let canonical = String::from_utf8(r.canonical).unwrap();
    assert!(
        canonical.contains(r#""labels":{"org.opencontainers.image.source":"a"}"#),
        "{canonical}"
    );
}

#[test]
fn sbom_is_on_by_default_and_only_a_written_value_enters_the_digest() {
    let plain = parse(Path::new("r.toml"), "[image]\nname = \"x\"\n", None).unwrap();
    let on = parse(
        Path::new("r.toml"),
        "[image]\nname = \"x\"\nsbom = true\n",
        None,
    )
    .unwrap();
    let off = parse(
        Path::new("r.toml"),
        "[image]\nname = \"x\"\nsbom = false\n",
        None,
    )
    .unwrap();
    assert!(plain.sbom && on.sbom && !off.sbom);
    assert!(!String::from_utf8_lossy(&plain.canonical).contains("sbom"));
    assert_ne!(plain.digest(), off.digest());
}

#[test]
fn input_digest_leaves_out_where_packages_come_from() {
    let recipe = |mirror: &str, keyring: &str, suite: &str| {
        let text = format!("[image]\nname = \"x\"\n[apt]\nsources = [{{ mirror = \"{mirror}\", suite = \"{suite}\", keyring = \"{keyring}\" }}]\npackages = [\"hello\"]\n");
        parse(Path::new("r.toml"), &text, None).unwrap()
    };
    let a = recipe("host", "k.gpg", "stable");
    let b = recipe("http://127.0.0.1:1", "other.gpg", "stable");
    let c = recipe("host", "k.gpg", "testing");
    assert_ne!(a.digest(), b.digest());
    assert_eq!(a.input_digest(), b.input_digest());
    assert_ne!(a.input_digest(), c.input_digest());
}

fn two_platforms(packages: &str) -> String {
    format!("[image]\nname = \"x\"\nplatforms = [\"linux/arm64\", \"linux/amd64\"]\n[apt]\nsources = [{{ mirror = \"host\", suite = \"bookworm\" }}]\npackages = {packages}\n")
}

#[test]
fn packages_can_be_limited_to_some_platforms() {
    let text = two_platforms(
        "[\"base-files\", { name = \"libx=1\", platforms = [\"linux/arm64\"] }, { name = \"libx=2\", platforms = [\"linux/amd64\"] }]",
    );
    let r = parse(Path::new("r.toml"), &text, None).unwrap();
    let apt = r.apt.as_ref().unwrap();
    let amd64 = Platform::linux("amd64");
    let arm64: Platform = "linux/arm64".parse().unwrap();
    assert_eq!(apt.packages_for(&amd64), ["base-files", "libx=2"]);
    assert_eq!(apt.packages_for(&arm64), ["base-files", "libx=1"]);
    // Written back as written: strings stay strings.
    let canonical = String::from_utf8(r.canonical.clone()).unwrap();
    assert!(
        canonical
            .contains(r#""packages":["base-files",{"name":"libx=1","platforms":["linux/arm64"]}"#),
        "{canonical}"
    );

    // Which platforms an entry has is part of what resolves, so of
    // the lock's staleness digest; a plain list keeps the digest it
    // had before tables existed.
    let digest = |packages: &str| {
        let r = parse(Path::new("r.toml"), &two_platforms(packages), None).unwrap();
        crate::apt::locking::resolution_digest(&r, r.apt.as_ref().unwrap())
    };
    let everywhere = digest("[\"a1\", \"b1\"]");
    let on_amd64 = digest("[\"a1\", { name = \"b1\", platforms = [\"linux/amd64\"] }]");
    let on_arm64 = digest("[\"a1\", { name = \"b1\", platforms = [\"linux/arm64\"] }]");
    let on_both =
        digest("[\"a1\", { name = \"b1\", platforms = [\"linux/arm64\", \"linux/amd64\"] }]");
    let on_both_reordered =
        digest("[\"a1\", { name = \"b1\", platforms = [\"linux/amd64\", \"linux/arm64\"] }]");
    assert_ne!(on_amd64, on_arm64);
    assert_ne!(everywhere, on_amd64);
    assert_eq!(on_both, on_both_reordered);
    let inputs = serde_json::json!({
        "sources": [{ "suite": "bookworm", "components": ["main"] }],
        "packages": ["a1", "b1"],
        "platforms": ["linux/amd64", "linux/arm64"],
    });
    assert_eq!(
        everywhere,
        Digest::of(&crate::oci::json::to_canonical_vec(&inputs))
    );
}

#[test]
fn package_platforms_are_checked_at_their_line() {
    let e = err_of(&two_platforms(
        "[\"a1\",\n  { name = \"b1\", platforms = [\"linux/s390x\"] }]",
    ));
    assert!(
        e.starts_with("r.toml:7:31: package `b1` names platform linux/s390x, which the recipe does not build ([image] platforms is [linux/amd64, linux/arm64])"),
        "{e}"
    );
    let e = err_of(&two_platforms("[{ name = \"b1\", platforms = [] }]"));
    assert!(
        e.starts_with("r.toml:6:40: package `b1` has an empty platforms list"),
        "{e}"
    );
    let e = err_of(&two_platforms(
        "[{ name = \"b1\", platforms = [\"linux/amd64\", \"linux/amd64\"] }]",
    ));
    assert!(
        e.contains("platform linux/amd64 is listed twice for package `b1`"),
        "{e}"
    );
    let e = err_of(&two_platforms(
        "[\"b1\", { name = \"b1\", platforms = [\"linux/arm64\"] }]",
    ));
    assert!(
        e.starts_with("r.toml:6:19: package `b1` is listed twice for linux/arm64"),
        "{e}"
    );
    let e = err_of(&two_platforms(
        "[{ name = \"B\", platforms = [\"linux/arm64\"] }]",
    ));
    assert!(
        e.starts_with("r.toml:6:22: `B` is not a Debian package name"),
        "{e}"
    );
    let e = err_of(&two_platforms("[{ name = \"b1\", arch = \"arm64\" }]"));
    assert!(e.contains("unknown field `arch`"), "{e}");
    let e = err_of(&two_platforms("[5]"));
    assert!(e.contains("a package name, or a table"), "{e}");
}

#[test]
fn canonical_ignores_formatting() {
    let a = parse(
        Path::new("r.toml"),
        "[image]\nname = \"x\"\nepoch = 5\n",
        None,
    )
    .unwrap();
    let b = parse(
        Path::new("r.toml"),
        "# note\n[image]\nepoch   = 5\nname = 'x'\n",
        None,
    )
    .unwrap();
    assert_eq!(a.digest(), b.digest());
}

/// Only `mirror = "host"` may leave the keyring out, and that is checked
/// when the recipe is read, not when a mirror is first reached.
#[test]
fn a_mirror_other_than_host_needs_a_keyring() {
    let recipe = |mirror: &str| {
        let text = format!("[image]\nname = \"x\"\n[apt]\nsources = [{{ mirror = \"{mirror}\", suite = \"stable\" }}]\npackages = [\"hello\"]\n");
        parse(Path::new("r.toml"), &text, None)
    };
    assert!(recipe("host").is_ok());
    for mirror in ["http://127.0.0.1:1/debian", "LOCAL", "file:///srv/repo"] {
        let e = recipe(mirror).unwrap_err().to_string();
        assert!(
            e.starts_with("r.toml:4:23: mirror") && e.contains("has no keyring"),
            "{e}"
        );
    }
}

/// Each package entry keeps its line, found by name with or without a
/// pin, on the platforms it applies to.
#[test]
fn package_entries_keep_their_lines() {
    let text =
        two_platforms("[\"base-files\",\n  { name = \"libx=1\", platforms = [\"linux/arm64\"] }]");
    let r = parse(Path::new("r.toml"), &text, None).unwrap();
    let apt = r.apt.as_ref().unwrap();
    let arm64: Platform = "linux/arm64".parse().unwrap();
    assert_eq!(
        apt.request_loc(&Platform::linux("amd64"), "base-files")
            .unwrap()
            .0,
        "r.toml:6:13"
    );
    assert_eq!(apt.request_loc(&arm64, "libx").unwrap().0, "r.toml:7:12");
    assert!(apt.request_loc(&Platform::linux("amd64"), "libx").is_none());
}

/// `[[files]] src` is read from the build context: the recipe's folder,
/// or the folder `--context` names; a src missing there is named at its
/// line, with the folder it was looked for in.
#[test]
fn files_are_read_from_the_build_context() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("deploy/app.toml");
    std::fs::create_dir_all(recipe.parent().unwrap()).unwrap();
    std::fs::create_dir_all(dir.path().join("build")).unwrap();
    std::fs::write(dir.path().join("build/app"), "x").unwrap();
    std::fs::write(
        &recipe,
        "[image]\nname = \"x\"\n[[files]]\nsrc = \"build/app\"\ndest = \"/app\"\n",
    )
    .unwrap();
    let mut r = crate::recipe::load(&recipe, None).unwrap();
    let digest = r.digest();
    let e = r.clone().read_files_from(None).unwrap_err().to_string();
    assert!(
        e.contains("app.toml:4:7: src `build/app` does not exist in the recipe's folder")
            && e.contains("--context"),
        "{e}"
    );
    r.read_files_from(Some(dir.path())).unwrap();
    assert_eq!(r.files[0].src, dir.path().join("build/app"));
    assert_eq!(r.digest(), digest, "the context is not part of the recipe");
    let e = r
        .read_files_from(Some(&dir.path().join("nowhere")))
        .unwrap_err();
    assert!(e.to_string().starts_with("--context "), "{e}");
}

/// `[image] layers` sets the packages' strategy; it needs `[apt]`, a
/// known strategy and a budget of at least one, and never stands beside
/// `[apt] layers`. Without it the canonical recipe is as before.
#[test]
fn image_layers_group_packages_by_source() {
    let apt =
        "[apt]\nsources = [{ mirror = \"host\", suite = \"bookworm\" }]\npackages = [\"libc6\"]\n";
    let with = |image_extra: &str, apt_extra: &str| {
        format!("[image]\nname = \"x\"\n{image_extra}\n{apt}{apt_extra}")
    };
    let r = parse(Path::new("r.toml"), &with("", ""), None).unwrap();
    assert_eq!(r.apt.as_ref().unwrap().layers, AptLayers::Single);
    let canonical: serde_json::Value = serde_json::from_slice(&r.canonical).unwrap();
    assert!(canonical["image"].get("layers").is_none(), "{canonical}");
    let text = with("layers = { strategy = \"source\", budget = 4 }", "");
    let r = parse(Path::new("r.toml"), &text, None).unwrap();
    assert_eq!(r.apt.unwrap().layers, AptLayers::BySource { budget: 4 });
    let text = with("layers = { strategy = \"source\" }", "");
    let r = parse(Path::new("r.toml"), &text, None).unwrap();
    let budget = DEFAULT_LAYER_BUDGET;
    assert_eq!(r.apt.unwrap().layers, AptLayers::BySource { budget });

    let e = err_of(&with("layers = { strategy = \"origin\" }", ""));
    assert!(
        e.starts_with("r.toml:3:23:") && e.contains("\"source\""),
        "{e}"
    );
    let e = err_of(&with("layers = { strategy = \"source\", budget = 0 }", ""));
    assert!(
        e.starts_with("r.toml:3:42:") && e.contains("1 or more"),
        "{e}"
    );
    let e = err_of(&with(
        "layers = { strategy = \"source\" }",
        "layers = \"per-package\"\n",
    ));
    assert!(
        e.starts_with("r.toml:7:10:") && e.contains("keep one"),
        "{e}"
    );
    let e = err_of("[image]\nname = \"x\"\nlayers = { strategy = \"source\" }\n");
    assert!(e.contains("has no [apt]"), "{e}");
}
