//! The command line: the only place that reads flags and the environment.
//! Raw arguments become settings once; the library never looks at either.

pub mod build;
pub mod distribute;
pub mod keys;
pub mod packages;
pub mod verify;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::layer::profile::{PROFILE_DESCRIPTION, PROFILE_ID};

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
    Build(build::BuildArgs),
    /// Resolve the recipe's [apt] packages and write <recipe>.lock beside it.
    Lock(packages::LockArgs),
    /// Copy every locked .deb into a folder, for offline rebuilds.
    Vendor(packages::VendorArgs),
    /// Push an image (layout, archive, registry or recipe) to a registry;
    /// prints HOST/REPO[:TAG]@sha256:… as the last line.
    Push(distribute::PushArgs),
    /// Pull an image from a registry into an OCI layout; prints its digest.
    Pull(distribute::PullArgs),
    /// Check an image: blobs, DiffIDs, media types, pin, attestations, rebuild.
    Verify(verify::VerifyArgs),
    /// Compare two images and name the likely cause of a digest difference.
    Diff(verify::DiffArgs),
    /// Manage signing keys for attestations.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Print stele's version and encoding profile.
    Version,
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::cmd_build(args),
        Command::Lock(args) => {
            packages::cmd_lock(args, source_date_epoch()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Vendor(args) => {
            packages::cmd_vendor(args, source_date_epoch()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(cmd) => keys::run(cmd),
        Command::Push(args) => distribute::cmd_push(args),
        Command::Pull(args) => distribute::cmd_pull(args),
        Command::Version => {
            println!("stele {}", env!("CARGO_PKG_VERSION"));
            println!("encoding profile {PROFILE_ID}: {PROFILE_DESCRIPTION}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => verify::cmd_verify(args),
        Command::Diff(args) => verify::cmd_diff(args),
    }
}

/// Reads `SOURCE_DATE_EPOCH` (reproducible-builds.org spec): a decimal
/// integer of seconds; anything else is an error rather than ignored.
pub fn source_date_epoch() -> Result<Option<u64>> {
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
    let mut tmp = crate::store::temp_file_in(dir, ".stele-tmp-")
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
