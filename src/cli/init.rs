//! `stele init`: a commented recipe that builds as it is, to start from.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::report::Reporter;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele init hello && stele build hello/recipe.toml\n  stele init --template python myapp"
)]
pub struct InitArgs {
    /// What the recipe starts from: files only on an empty base (scratch),
    /// Debian packages from the host's apt sources (debian), or those plus
    /// Python and an app folder (python).
    #[arg(long, value_enum, default_value = "scratch")]
    pub template: Template,
    /// The folder to write recipe.toml (and the template's files) into;
    /// made if missing. Existing files are never replaced.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    Scratch,
    Debian,
    Python,
}

const SCRATCH: &str = r#"# A stele recipe: `stele build recipe.toml` writes out/NAME, an OCI image
# layout, and prints its digest. The same recipe gives the same digest on
# any machine. The recipe reference is in stele's README.

[image]
name = "NAME"
# Every timestamp in the image; SOURCE_DATE_EPOCH overrides it.
epoch = 0
# platforms = ["linux/amd64", "linux/arm64"]

# No [base]: the image starts empty (scratch).

# Files beside this recipe, copied into the image.
[[files]]
src = "app"
dest = "/app"
# Gitignore-style patterns left out of the copy (a .steleignore file in
# app/ adds more).
exclude = ["*.tmp"]
# mode = "0644"       # a string: octal, as chmod takes it
# owner = "0:0"

[config]
workdir = "/app"
# A scratch image has no shell: name an executable you copied in.
# entrypoint = ["/app/server"]
labels = { "org.opencontainers.image.title" = "NAME" }
"#;

const DEBIAN: &str = r#"# A stele recipe: Debian packages from this machine's apt sources.
# `stele lock recipe.toml` resolves them into recipe.lock (commit it);
# `stele build recipe.toml` builds the image and prints its digest.
# The recipe reference is in stele's README.

[image]
name = "NAME"
epoch = 0
# platforms = ["linux/amd64", "linux/arm64"]

[apt]
# "host": the mirrors and keyrings of this machine's /etc/apt. A URL or a
# NAME read from STELE_MIRROR_<NAME> work too.
sources = [{ mirror = "host", suite = "bookworm", components = ["main"] }]
packages = ["base-files", "ca-certificates", "tzdata"]
# layers = "per-package"   # one layer per package instead of one for all

[accounts]
users = [{ name = "app", uid = 65532 }]

[config]
user = "app"
env = { TZ = "UTC" }
"#;

const PYTHON: &str = r#"# A stele recipe: Python from this machine's apt sources, and the app
# beside this recipe. `stele lock recipe.toml` resolves the packages into
# recipe.lock (commit it); `stele build recipe.toml` builds the image.
# The recipe reference is in stele's README.

[image]
name = "NAME"
epoch = 0

[apt]
# "host": the mirrors and keyrings of this machine's /etc/apt.
sources = [{ mirror = "host", suite = "bookworm", components = ["main"] }]
packages = ["python3"]

[[files]]
src = "app"
dest = "/app"
# Bytecode the host's Python left behind never reaches the image.
exclude = ["**/__pycache__", "*.pyc"]

[accounts]
users = [{ name = "app", uid = 65532 }]

[config]
user = "app"
workdir = "/app"
entrypoint = ["/usr/bin/python3", "/app/main.py"]
env = { PYTHONDONTWRITEBYTECODE = "1" }
"#;

/// The image name for a recipe in `dir`: the folder's name made a valid
/// repository name, else `app`.
fn image_name(dir: &Path) -> String {
    let folder = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = folder
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    if name.is_empty() {
        "app".into()
    } else {
        name.chars().take(64).collect()
    }
}

pub(crate) fn cmd_init(args: InitArgs, r: &Reporter) -> Result<ExitCode> {
    let name = image_name(&args.dir);
    let recipe = match args.template {
        Template::Scratch => SCRATCH,
        Template::Debian => DEBIAN,
        Template::Python => PYTHON,
    }
    .replace("NAME", &name);
    let mut files: Vec<(PathBuf, String)> = vec![(args.dir.join("recipe.toml"), recipe)];
    match args.template {
        Template::Scratch => files.push((
            args.dir.join("app/hello.txt"),
            "Hello from an image stele built.\n".into(),
        )),
        Template::Python => files.push((
            args.dir.join("app/main.py"),
            "print(\"Hello from an image stele built.\")\n".into(),
        )),
        Template::Debian => {}
    }
    // Checked before anything is written, so a refusal leaves no half.
    for (path, _) in &files {
        if path.exists() {
            bail!(
                "{} exists: stele init never replaces a file; choose another folder or move it",
                path.display()
            );
        }
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the folder {}", parent.display()))?;
        }
        super::output::write_atomic(path, text.as_bytes())?;
        r.info(format_args!("wrote {}", path.display()));
    }
    let recipe_path = &files[0].0;
    match args.template {
        Template::Scratch => r.info(format_args!(
            "build it with: stele build {}",
            recipe_path.display()
        )),
        Template::Debian | Template::Python => r.info(format_args!(
            "lock its packages with `stele lock {0}`, then build with `stele build {0}`",
            recipe_path.display()
        )),
    }
    println!("{}", recipe_path.display());
    Ok(ExitCode::SUCCESS)
}
