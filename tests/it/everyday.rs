//! Everyday use of the CLI (issue 16): how much it says (`-q`, `-v`), the
//! messages people meet first, `[[files]] exclude` and `.steleignore`,
//! `init`, `completions`, `man`, `schema`, `inspect`, and the build
//! overrides (`--annotation`, `--label`, `--platform`).

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

/// A recipe folder with a small files-only recipe, and its own cache.
struct Fixture {
    tmp: tempfile::TempDir,
}

const SMALL_RECIPE: &str = r#"
[image]
name = "everyday"
epoch = 1700000000
platforms = ["linux/amd64", "linux/arm64"]

[[files]]
src = "app"
dest = "/opt/app"

[config]
entrypoint = ["/opt/app/run"]
"#;

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_recipe(SMALL_RECIPE)
    }

    fn with_recipe(recipe: &str) -> Fixture {
        let tmp = tempdir();
        write_file(&tmp.path().join("src/recipe.toml"), recipe, 0o644);
        write_file(
            &tmp.path().join("src/app/run"),
            "#!/bin/sh\necho hi\n",
            0o755,
        );
        write_file(&tmp.path().join("src/app/data.txt"), "data\n", 0o644);
        Fixture { tmp }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn recipe(&self) -> PathBuf {
        self.path("src/recipe.toml")
    }

    /// `stele ARGS…` with this fixture's own cache folder.
    fn stele(&self, args: &[&str]) -> Command {
        let mut c = stele();
        c.args(args);
        c.env("XDG_CACHE_HOME", self.path("cache"));
        c
    }

    /// `stele build RECIPE -o OUT ARGS…`, run.
    fn build(&self, out: &str, args: &[&str]) -> Run {
        let mut c = self.stele(&["build"]);
        c.arg(self.recipe())
            .arg("-o")
            .arg(self.path(out))
            .args(args);
        run(&mut c)
    }
}

#[track_caller]
fn digest_of(r: &Run) -> String {
    r.expect_ok();
    let d = r.last_line().to_string();
    assert!(is_digest(&d), "not a digest: {:?}", r.stdout);
    d
}

// ---- item 1: -q / -v ------------------------------------------------------

#[test]
fn quiet_prints_only_the_result() {
    let f = Fixture::new();
    let r = f.build("out", &["-q"]);
    digest_of(&r);
    assert_eq!(r.stderr, "", "-q printed on stderr");
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    // Global: accepted after the subcommand and before it.
    let mut c = f.stele(&["-q", "build"]);
    c.arg(f.recipe()).arg("-o").arg(f.path("out2"));
    let r2 = run(&mut c);
    assert_eq!(digest_of(&r2), digest_of(&r));
    assert_eq!(r2.stderr, "");
}

#[test]
fn normal_and_verbose_progress_on_stderr() {
    let f = Fixture::new();
    let normal = f.build("out", &[]);
    let digest = digest_of(&normal);
    assert!(normal.stderr.contains("building "), "{}", normal.stderr);
    assert!(
        !normal.stderr.contains("  layer sha256:"),
        "{}",
        normal.stderr
    );
    let verbose = f.build("out", &["-v"]);
    assert_eq!(digest_of(&verbose), digest);
    assert!(
        // One recipe layer per platform: each holds its platform's SBOM.
        verbose.stderr.contains("layer cache: hits 2, misses 0")
            && verbose.stderr.matches("cache hit: sha256:").count() == 2,
        "{}",
        verbose.stderr
    );
    assert!(
        verbose.stderr.contains("linux/arm64: manifest sha256:")
            && verbose.stderr.contains("  layer sha256:")
            && verbose
                .stderr
                .contains("): stele: recipe files, paths and accounts"),
        "{}",
        verbose.stderr
    );
    // stdout holds the result only, whatever the level.
    assert_eq!(verbose.stdout, normal.stdout);
    let both = f.build("out", &["-q", "-v"]);
    both.expect_fail();
}

// ---- item 2 and 8: messages said once, snapshotted -------------------------

/// Replaces the test's temp folder with `[TMP]` so snapshots hold still.
fn snapshot_filters(f: &Fixture) -> Vec<(String, &'static str)> {
    vec![(regex_escape(&f.tmp.path().display().to_string()), "[TMP]")]
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

macro_rules! assert_stderr_snapshot {
    ($f:expr, $name:expr, $text:expr) => {{
        let filters = snapshot_filters($f);
        let filters: Vec<(&str, &str)> = filters.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        insta::with_settings!({ filters => filters, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}

#[test]
fn integer_mode_says_write_it_as_a_string() {
    for (name, written) in [
        ("everyday_mode_leading_zero", "0755"),
        ("everyday_mode_integer", "755"),
    ] {
        let f = Fixture::with_recipe(&format!(
            "[image]\nname = \"x\"\n\n[[files]]\nsrc = \"app\"\ndest = \"/app\"\nmode = {written}\n"
        ));
        let r = f.build("out", &[]);
        r.expect_fail();
        assert_stderr_snapshot!(&f, name, r.stderr);
    }
}

#[test]
fn unwritable_output_folder_is_named_before_any_work() {
    let f = Fixture::new();
    let locked = f.path("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    // root writes anywhere it is allowed to; /sys/fs refuses even root.
    let root = std::fs::write(locked.join("probe"), "").is_ok();
    let out = if root {
        PathBuf::from("/sys/fs/stele-out")
    } else {
        locked.join("out")
    };
    let mut c = f.stele(&["build"]);
    c.arg(f.recipe()).arg("-o").arg(&out);
    let r = run(&mut c);
    r.expect_fail();
    let stderr = r
        .stderr
        .replace(&out.display().to_string(), "[OUT]")
        .replace(&out.parent().unwrap().display().to_string(), "[FOLDER]");
    assert!(!stderr.contains(".stele-tmp-"), "{stderr}");
    assert!(
        !stderr.contains("building"),
        "checked before the build: {stderr}"
    );
    assert_stderr_snapshot!(&f, "everyday_unwritable_output", stderr);
}

#[test]
fn missing_recipe_is_named() {
    let f = Fixture::new();
    let mut c = f.stele(&["build"]);
    c.arg(f.path("src/nope.toml"));
    let r = run(&mut c);
    r.expect_fail();
    assert_stderr_snapshot!(&f, "everyday_missing_recipe", r.stderr);
}

// ---- item 3: [[files]] exclude and .steleignore -----------------------------

const EXCLUDE_RECIPE: &str = r#"
[image]
name = "excludes"
epoch = 1700000000

[[files]]
src = "app"
dest = "/opt/app"
exclude = ["**/__pycache__", "*.pyc"]
"#;

/// Paths in the image's only layer.
fn layer_paths(layout: &std::path::Path) -> Vec<String> {
    let l = check_layout(layout);
    l.layers
        .iter()
        .flat_map(|(media_type, blob)| tar_entries(&decompress(media_type, blob)))
        .map(|e| e.path)
        .collect()
}

#[test]
fn excluded_files_are_left_out_and_the_digest_is_as_without_them() {
    let f = Fixture::with_recipe(EXCLUDE_RECIPE);
    write_file(&f.path("src/app/lib/mod.py"), "x = 1\n", 0o644);
    let clean = digest_of(&f.build("clean", &[]));
    write_file(&f.path("src/app/__pycache__/x.pyc"), "bytecode", 0o644);
    write_file(
        &f.path("src/app/lib/__pycache__/mod.cpython.pyc"),
        "b",
        0o644,
    );
    write_file(&f.path("src/app/stray.pyc"), "bytecode", 0o644);
    let stray = digest_of(&f.build("stray", &[]));
    assert_eq!(clean, stray, "excluded files changed the image");
    let paths = layer_paths(&f.path("stray"));
    assert!(paths.iter().any(|p| p == "opt/app/run"), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("pyc") || p.contains("__pycache__")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p == "opt/app/lib/mod.py"), "{paths:?}");
}

#[test]
fn steleignore_excludes_and_is_not_copied() {
    let f = Fixture::with_recipe(EXCLUDE_RECIPE);
    let clean = digest_of(&f.build("clean", &[]));
    write_file(
        &f.path("src/app/.steleignore"),
        "# scratch files\n*.log\ntmp/\n",
        0o644,
    );
    write_file(&f.path("src/app/debug.log"), "noise", 0o644);
    write_file(&f.path("src/app/tmp/cache.bin"), "noise", 0o644);
    let ignored = digest_of(&f.build("ignored", &[]));
    assert_eq!(clean, ignored);
    let paths = layer_paths(&f.path("ignored"));
    assert!(
        !paths.iter().any(|p| p.contains(".steleignore")),
        "{paths:?}"
    );
}

#[test]
fn exclude_is_checked_at_its_line() {
    let f = Fixture::with_recipe(
        "[image]\nname = \"x\"\n\n[[files]]\nsrc = \"app/run\"\ndest = \"/run\"\nexclude = [\"*.pyc\"]\n",
    );
    let r = f.build("out", &[]);
    r.expect_fail();
    assert!(
        r.stderr
            .contains("recipe.toml:7:12: exclude applies to a folder"),
        "{}",
        r.stderr
    );
}

// ---- item 4: init, completions, man, schema ----------------------------------

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Validates each TOML file against the schema with Python's jsonschema
/// (an independent validator), converting TOML with tomllib.
fn validate_with_python(schema: &std::path::Path, recipes: &[PathBuf]) -> Run {
    const SCRIPT: &str = r#"
import json, sys, tomllib
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        recipe = tomllib.load(f)
    for error in validator.iter_errors(recipe):
        bad += 1
        print(f"{path}: {error.json_path}: {error.message}")
print(f"checked {len(sys.argv) - 2} recipe(s)")
sys.exit(1 if bad else 0)
"#;
    run(Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(schema)
        .args(recipes))
}

#[test]
fn schema_is_published_and_validates_every_recipe() {
    let published = PathBuf::from(REPO).join("schema/recipe.schema.json");
    let r = run(stele().arg("schema"));
    r.expect_ok();
    assert_eq!(
        r.stdout,
        std::fs::read_to_string(&published).unwrap(),
        "schema/recipe.schema.json is not what `stele schema` prints: run `stele schema > schema/recipe.schema.json`"
    );
    let mut recipes: Vec<PathBuf> = std::fs::read_dir(PathBuf::from(REPO).join("recipes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    recipes.sort();
    assert!(!recipes.is_empty());
    // The templates `stele init` writes are recipes too.
    let f = Fixture::new();
    for template in ["scratch", "debian", "python"] {
        let dir = f.path(&format!("init-{template}"));
        run(f.stele(&["init", "--template", template]).arg(&dir)).expect_ok();
        recipes.push(dir.join("recipe.toml"));
    }
    // A package entry limited to some platforms is a table.
    let per_platform = f.path("per-platform.toml");
    write_file(
        &per_platform,
        "[image]\nname = \"x\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n[apt]\nsources = [{ mirror = \"host\", suite = \"bookworm\" }]\npackages = [\"libc6\", { name = \"libc6-i386\", platforms = [\"linux/amd64\"] }]\n",
        0o644,
    );
    recipes.push(per_platform);
    let v = validate_with_python(&published, &recipes);
    v.expect_ok();
    assert!(
        v.stdout
            .contains(&format!("checked {} recipe(s)", recipes.len())),
        "{}",
        v.stdout
    );
    // And it refuses what the loader refuses: an integer mode, an unknown key.
    let wrong = f.path("wrong.toml");
    write_file(
        &wrong,
        "[image]\nname = \"x\"\nbogus = 1\n[[files]]\nsrc = \"a\"\ndest = \"/a\"\nmode = 755\n",
        0o644,
    );
    let v = validate_with_python(&published, &[wrong]);
    v.expect_fail();
    assert!(
        v.stdout.contains("bogus") && v.stdout.contains("$.files[0].mode"),
        "{}",
        v.stdout
    );
}

#[test]
fn init_scratch_builds_as_written() {
    let f = Fixture::new();
    let dir = f.path("hello");
    let r = run(f.stele(&["init"]).arg(&dir));
    r.expect_ok();
    assert_eq!(
        r.stdout.trim(),
        dir.join("recipe.toml").display().to_string()
    );
    let recipe = std::fs::read_to_string(dir.join("recipe.toml")).unwrap();
    assert!(
        recipe.contains("name = \"hello\"") && recipe.contains("# "),
        "{recipe}"
    );
    let mut c = f.stele(&["build"]);
    c.arg(dir.join("recipe.toml"));
    let built = run(&mut c);
    digest_of(&built);
    let paths = layer_paths(&dir.join("out/hello"));
    assert!(paths.iter().any(|p| p == "app/hello.txt"), "{paths:?}");
    // Never replaces what is there.
    let again = run(f.stele(&["init"]).arg(&dir));
    again.expect_fail();
    assert!(
        again.stderr.contains("recipe.toml exists"),
        "{}",
        again.stderr
    );
}

#[test]
fn init_apt_templates_load_and_need_a_lock() {
    let f = Fixture::new();
    for template in ["debian", "python"] {
        let dir = f.path(template);
        run(f.stele(&["init", "--template", template]).arg(&dir)).expect_ok();
        let mut c = f.stele(&["lock", "--check", "--json"]);
        c.arg(dir.join("recipe.toml"));
        let r = run(&mut c);
        r.expect_code(1);
        let doc = json(r.stdout.as_bytes());
        assert_eq!(doc["status"], "missing", "{}", r.stdout);
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let r = run(stele().args(["completions", shell]));
        r.expect_ok();
        assert!(r.stdout.len() > 200, "{shell}: {}", r.stdout);
        assert!(r.stdout.contains("build"), "{shell} completion lacks build");
    }
    let r = run(stele().args(["completions", "tcsh"]));
    r.expect_fail();
}

#[test]
fn man_page_is_roff() {
    let r = run(stele().arg("man"));
    r.expect_ok();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH stele"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    assert!(r.stdout.contains("build"));
}

// ---- item 5: inspect -------------------------------------------------------

const INSPECT_RECIPE: &str = r#"
[image]
name = "inspected"
epoch = 1700000000

[[files]]
src = "app"
dest = "/opt/app"

[[paths]]
path = "/var/lib/dpkg/status.d/tool"
kind = "file"
content = """
Package: tool
Status: install ok installed
Version: 1.2-3
Architecture: amd64
"""

[config]
entrypoint = ["/opt/app/run"]
env = { GREETING = "hi" }
user = "65532:65532"
workdir = "/opt/app"
labels = { "org.example.role" = "test" }
"#;

#[test]
fn inspect_shows_config_layers_packages_attestations_and_files() {
    let f = Fixture::with_recipe(INSPECT_RECIPE);
    let key = f.path("stele.key");
    let keyid = run(f.stele(&["key", "generate"]).arg(&key))
        .expect_ok()
        .last_line()
        .to_string();
    let digest = digest_of(&f.build("out", &["--sign-key", key.to_str().unwrap()]));
    let mut c = f.stele(&["inspect", "--json", "--files"]);
    c.arg(f.path("out"));
    let r = run(&mut c);
    r.expect_ok();
    let doc = json(r.stdout.as_bytes());
    assert_eq!(doc["digest"], digest.as_str());
    assert_eq!(doc["platforms"], serde_json::json!(["linux/amd64"]));
    let image = &doc["images"][0];
    let config = &image["config"];
    assert_eq!(config["entrypoint"], serde_json::json!(["/opt/app/run"]));
    assert_eq!(config["user"], "65532:65532");
    assert_eq!(config["workdir"], "/opt/app");
    assert_eq!(config["labels"]["org.example.role"], "test");
    assert!(config["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "GREETING=hi"));
    let layer = &image["layers"][0];
    assert!(is_digest(layer["digest"].as_str().unwrap()));
    assert!(
        layer["created_by"].as_str().unwrap().starts_with("stele: "),
        "{layer}"
    );
    assert_eq!(
        image["packages"],
        serde_json::json!([{"name": "tool", "version": "1.2-3", "architecture": "amd64"}])
    );
    let files = image["files"].as_array().unwrap();
    let run_file = files.iter().find(|e| e["path"] == "/opt/app/run").unwrap();
    assert_eq!(
        (&run_file["mode"], &run_file["owner"], &run_file["size"]),
        (&"0755".into(), &"0:0".into(), &18.into())
    );
    let attestations = doc["attestations"].as_array().unwrap();
    assert!(!attestations.is_empty());
    // Signed: the bundles, each naming its key; unsigned: the SBOMs' plain
    // copies for scanners.
    for a in attestations {
        let signed = a["form"] == "sigstore-bundle";
        assert_eq!(a["signed"], signed, "{a}");
        if signed {
            assert_eq!(a["keyid"], keyid.as_str(), "{a}");
        }
    }
    assert!(attestations.iter().any(|a| a["kind"] == "provenance"));

    // Text: the same facts for people; files only when asked.
    let mut c = f.stele(&["inspect"]);
    c.arg(f.path("out"));
    let t = run(&mut c);
    t.expect_ok();
    assert!(
        t.stdout.contains(&format!("digest     {digest}")),
        "{}",
        t.stdout
    );
    assert!(t.stdout.contains("    tool 1.2-3 amd64"), "{}", t.stdout);
    assert!(t.stdout.contains("provenance"), "{}", t.stdout);
    assert!(
        t.stdout.contains(&format!("signed by key {keyid}")),
        "{}",
        t.stdout
    );
    assert!(!t.stdout.contains("/opt/app/run\n"), "{}", t.stdout);
    // An oci-archive is a target too.
    let archive = f.path("img.tar");
    digest_of(&f.build("img.tar", &["--format", "oci-archive"]));
    let mut c = f.stele(&["inspect", "--json"]);
    c.arg(format!("oci-archive:{}", archive.display()));
    let a = run(&mut c);
    a.expect_ok();
    assert_eq!(json(a.stdout.as_bytes())["digest"], digest.as_str());
}

// ---- item 6: --annotation, --label, --platform ------------------------------

#[test]
fn annotation_and_label_flags_build_as_if_written_in_the_recipe() {
    let written = Fixture::with_recipe(&format!(
        "{SMALL_RECIPE}labels = {{ \"org.example.build\" = \"42\" }}\n\n[annotations]\n\"org.opencontainers.image.revision\" = \"abc=1\"\n"
    ));
    let from_file = digest_of(&written.build("out", &[]));
    let f = Fixture::new();
    let plain = digest_of(&f.build("plain", &[]));
    let flagged = digest_of(&f.build(
        "out",
        &[
            "--annotation",
            "org.opencontainers.image.revision=abc=1",
            "--label",
            "org.example.build=42",
        ],
    ));
    assert_ne!(plain, flagged);
    assert_eq!(
        from_file, flagged,
        "flags differ from the same keys in the recipe"
    );
    let mut c = f.stele(&["inspect", "--json"]);
    c.arg(f.path("out"));
    let doc = json(run(&mut c).expect_ok().stdout.as_bytes());
    assert_eq!(
        doc["images"][0]["config"]["labels"]["org.example.build"],
        "42"
    );
    let index = json(&std::fs::read(f.path("out/index.json")).unwrap());
    let top = descriptor_blob(&f.path("out"), &index["manifests"][0]);
    assert_eq!(
        json(&top)["annotations"]["org.opencontainers.image.revision"],
        "abc=1"
    );
    let bad = f.build("bad", &["--label", "=x"]);
    bad.expect_fail();
    assert!(bad.stderr.contains("is not KEY=VALUE"), "{}", bad.stderr);
}

#[test]
fn platform_builds_a_subset_for_oci_outputs() {
    let f = Fixture::new();
    let all = digest_of(&f.build("all", &[]));
    let index = json(&blob(&f.path("all"), &all));
    let arm = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let one = f.build("one", &["--platform", "linux/arm64"]);
    assert_eq!(
        digest_of(&one),
        arm,
        "the subset is the full build's arm64 image"
    );
    assert!(one.stderr.contains("(1 platform)"), "{}", one.stderr);
    let both = f.build(
        "both.tar",
        &[
            "--format",
            "oci-archive",
            "--platform",
            "linux/arm64",
            "--platform",
            "linux/amd64",
        ],
    );
    assert_eq!(digest_of(&both), all);
    let missing = f.build("x", &["--platform", "linux/s390x"]);
    missing.expect_fail();
    assert!(
        missing
            .stderr
            .contains("--platform linux/s390x is not one of the platforms"),
        "{}",
        missing.stderr
    );
    let two_docker = f.build(
        "d.tar",
        &[
            "--format",
            "docker-archive",
            "--platform",
            "linux/arm64",
            "--platform",
            "linux/amd64",
        ],
    );
    two_docker.expect_fail();
    assert!(
        two_docker.stderr.contains("holds one platform"),
        "{}",
        two_docker.stderr
    );
}

// ---- item 7: each --help with its own options and an example ----------------

#[test]
fn every_command_help_has_an_example() {
    let commands: &[&[&str]] = &[
        &[],
        &["build"],
        &["lock"],
        &["vendor"],
        &["push"],
        &["pull"],
        &["verify"],
        &["diff"],
        &["inspect"],
        &["init"],
        &["completions"],
        &["man"],
        &["schema"],
        &["key"],
        &["key", "generate"],
        &["version"],
    ];
    for command in commands {
        let r = run(stele().args(*command).arg("--help"));
        r.expect_ok();
        let examples = r
            .stdout
            .split_once("Examples:\n")
            .unwrap_or_else(|| panic!("stele {command:?} --help has no Examples:\n{}", r.stdout))
            .1;
        assert!(
            examples.trim_start().starts_with("stele"),
            "{command:?}: {examples}"
        );
    }
}

#[test]
fn lock_and_vendor_help_list_only_what_they_use() {
    // The options part, above the examples (which may show other commands).
    let help = |c: &str| {
        let out = run(stele().args([c, "--help"])).expect_ok().stdout.clone();
        out.split("Examples:").next().unwrap().to_string()
    };
    let lock = help("lock");
    for absent in [
        "--jobs",
        "--offline",
        "--locked",
        "--vendor",
        "--insecure",
        "--format",
    ] {
        assert!(
            !lock.contains(absent),
            "lock --help lists {absent}:\n{lock}"
        );
    }
    // vendor talks to a registry (`--to`), so it takes registry flags.
    let vendor = help("vendor");
    for absent in ["--locked", "--vendor", "--format", "--json"] {
        assert!(
            !vendor.contains(absent),
            "vendor --help lists {absent}:\n{vendor}"
        );
    }
    assert!(!help("verify").contains("--locked"));
}

// ---- item 8: the help people read first, snapshotted -------------------------

#[test]
fn help_snapshots() {
    let top = run(stele().arg("--help"));
    top.expect_ok();
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("everyday_help", top.stdout);
    });
    let build = run(stele().args(["build", "--help"]));
    build.expect_ok();
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("everyday_build_help", build.stdout);
    });
}
