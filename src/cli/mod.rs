//! The command line: the only place that reads flags and the environment.
//! Raw arguments become settings once; the library never looks at either.

pub mod build;
pub mod cache;
pub(crate) mod distribute;
pub mod init;
pub mod inspect;
pub mod keys;
pub mod lock;
pub mod output;
pub(crate) mod policy;
pub(crate) mod progress;
pub mod report;
pub mod settings;
pub mod tools;
pub mod verify;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::layer::Profile;

#[derive(Parser, Debug)]
#[command(
    name = "stele",
    version,
    about = "Build byte-reproducible OCI images from declarative recipes",
    after_help = "Examples:\n  stele init hello && stele build hello/recipe.toml\n  stele inspect hello/out/hello"
)]
pub struct Cli {
    /// Print only the result (stdout) and errors: no progress lines.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    pub quiet: bool,
    /// Also print what the caches decided (lockfile used or resolved,
    /// packages unpacked now, each layer written).
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a recipe into an OCI image; prints the digest as the last line.
    Build(build::BuildArgs),
    /// Resolve the recipe's [apt] packages and write <recipe>.lock beside it.
    Lock(lock::LockArgs),
    /// Copy every locked .deb into a folder, for offline rebuilds.
    Vendor(lock::VendorArgs),
    /// Push an image (layout, archive, registry or recipe) to a registry;
    /// prints HOST/REPO[:TAG]@sha256:… as the last line.
    Push(distribute::PushArgs),
    /// Pull an image from a registry into an OCI layout; prints its digest.
    Pull(distribute::PullArgs),
    /// Check an image: blobs, DiffIDs, media types, pin, attestations, rebuild.
    Verify(verify::VerifyArgs),
    /// Compare two images and name the likely cause of a digest difference.
    Diff(verify::DiffArgs),
    /// Show an image: platforms, config, layers and what each holds,
    /// packages, attestations, and (--files) its file tree.
    Inspect(inspect::InspectArgs),
    /// Manage the local cache folder.
    #[command(
        subcommand,
        after_help = "Examples:\n  stele cache prune --max-size 10GB"
    )]
    Cache(cache::CacheCommand),
    /// Manage signing keys for attestations.
    #[command(subcommand, after_help = "Examples:\n  stele key generate ci.key")]
    Key(keys::KeyCommand),
    /// Write a commented recipe.toml to start from (scratch, debian, python).
    Init(init::InitArgs),
    /// Print a shell completion script (bash, zsh, fish, …) on stdout.
    Completions(tools::CompletionsArgs),
    /// Print stele's man page (roff) on stdout.
    #[command(after_help = "Examples:\n  stele man > stele.1 && man ./stele.1")]
    Man,
    /// Print the recipe's JSON Schema on stdout (for editors and CI).
    #[command(after_help = "Examples:\n  stele schema > recipe.schema.json")]
    Schema,
    /// Print stele's version and encoding profile.
    #[command(after_help = "Examples:\n  stele version")]
    Version,
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let r = &report::Reporter::new(cli.quiet, cli.verbose);
    match cli.command {
        Command::Build(args) => build::cmd_build(args, r),
        Command::Lock(args) => lock::cmd_lock(args, r),
        Command::Vendor(args) => lock::cmd_vendor(args, r),
        Command::Key(cmd) => keys::run(cmd, r),
        Command::Cache(cmd) => cache::run(cmd, r),
        Command::Push(args) => distribute::cmd_push(args, r),
        Command::Pull(args) => distribute::cmd_pull(args, r),
        Command::Version => {
            println!("stele {}", env!("CARGO_PKG_VERSION"));
            // Newest first: the one a new build gets.
            for p in Profile::ALL.into_iter().rev() {
                let default = if p == Profile::default() {
                    " (default)"
                } else {
                    ""
                };
                println!("encoding profile {p}{default}: {}", p.description());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => verify::cmd_verify(args, r),
        Command::Diff(args) => verify::cmd_diff(args),
        Command::Init(args) => init::cmd_init(args, r),
        Command::Inspect(args) => inspect::cmd_inspect(args),
        Command::Completions(args) => tools::cmd_completions(args),
        Command::Man => tools::cmd_man(),
        Command::Schema => tools::cmd_schema(),
    }
}

/// Prints an error and its causes on stderr. Each message of the chain is
/// printed once because no error repeats its cause: a cause is
/// interpolated into the message or attached as its source, never both
/// (`error_rule` checks every error type of the crate).
pub fn print_error(err: &anyhow::Error) {
    for line in error_lines(err) {
        eprintln!("{line}");
    }
}

fn error_lines(err: &anyhow::Error) -> Vec<String> {
    let mut lines = vec![format!("error: {err}")];
    lines.extend(err.chain().skip(1).map(|c| format!("  caused by: {c}")));
    lines
}

#[cfg(test)]
mod error_rule;
