//! The command line: the only place that reads flags and the environment.
//! Raw arguments become settings once; the library never looks at either.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::layer::profile::{PROFILE_DESCRIPTION, PROFILE_ID};
use crate::sink::layout::LayoutStaging;

pub mod distribute;

#[derive(Parser, Debug)]
#[command(
    name = "stele",
    version,
    about = "Build byte-reproducible OCI images from declarative recipes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a recipe into an OCI image; prints the digest as the last line.
    Build(BuildArgs),
    /// Print stele's version and encoding profile.
    Version,
    /// Push an image (layout, archive or registry) to a registry; prints
    /// HOST/REPO[:TAG]@sha256:… as the last line.
    Push(distribute::PushArgs),
    /// Pull an image from a registry into an OCI layout; prints its digest.
    Pull(distribute::PullArgs),
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The recipe (TOML).
    pub recipe: PathBuf,
    /// Output path (default: out/<image name> beside the recipe).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Also write the digest (sha256:…) to this file.
    #[arg(long)]
    pub digest_file: Option<PathBuf>,
}

/// Reads `SOURCE_DATE_EPOCH` (reproducible-builds.org spec): a decimal
/// integer of seconds; anything else is an error rather than ignored.
fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH=`{v}` is not a whole number of seconds since 1970; unset it or fix it")),
        Err(_) => Ok(None),
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build(args) => cmd_build(args),
        Command::Push(args) => distribute::cmd_push(args),
        Command::Pull(args) => distribute::cmd_pull(args),
        Command::Version => {
            println!("stele {}", env!("CARGO_PKG_VERSION"));
            println!("encoding profile {PROFILE_ID}: {PROFILE_DESCRIPTION}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn default_output(recipe_path: &Path, name: &str) -> PathBuf {
    let dir = recipe_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join("out").join(name)
}

fn cmd_build(args: BuildArgs) -> Result<ExitCode> {
    let epoch = source_date_epoch()?;
    let recipe = crate::recipe::load(&args.recipe, epoch)?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.recipe, &recipe.name));
    eprintln!(
        "building {} ({} platform{})",
        args.recipe.display(),
        recipe.platforms.len(),
        if recipe.platforms.len() == 1 { "" } else { "s" }
    );
    let staging = LayoutStaging::new(&out)?;
    let built = crate::build(&recipe, &crate::BuildSettings::default(), staging.store())?;
    staging.commit(&built, &recipe.tag)?;
    let digest = built.digest().to_string();
    if let Some(f) = &args.digest_file {
        write_atomic(f, format!("{digest}\n").as_bytes())?;
    }
    eprintln!("wrote {}", out.display());
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{digest}")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a small file through a temp file and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        bail!(
            "cannot write {}: folder {} does not exist",
            path.display(),
            dir.display()
        );
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
