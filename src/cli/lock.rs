//! `stele lock` and `stele vendor`: the lockfile and the packages it names.

use std::path::PathBuf;
use std::process::ExitCode;

use super::report::Reporter;
use anyhow::{bail, Result};

use super::output::write_atomic;
use super::settings::resolved::RunFlags;
use super::settings::{
    registry_settings, source_date_epoch, transport, CacheArgs, JobsArgs, PackageArgs,
    RegistryArgs, Run, TlsArgs,
};
use crate::apt::debs::{self, CheckedLock};
use crate::apt::locking;
use crate::lock::Lock;
use crate::pipeline::{check_lock, lock_in_force, LockStatus};
use crate::recipe::Recipe;
use crate::registry::Progress;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele lock recipe.toml\n  stele lock --check recipe.toml   # in CI: exit 1 when the lock is stale",
    mut_arg("cache_dir", |a| a.help("Cache of downloaded indexes (default $XDG_CACHE_HOME/stele, else ~/.cache/stele)"))
)]
pub struct LockArgs {
    /// The recipe (TOML); the lock is written as <stem>.lock beside it.
    pub recipe: PathBuf,
    /// Change nothing: exit 0 when the lockfile answers the recipe, 1 when
    /// it is missing or stale (for CI: "is the lock current?").
    #[arg(long)]
    pub check: bool,
    /// Print one JSON document (lockfile, status, packages per platform)
    /// on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele vendor recipe.toml vendor/ && stele build recipe.toml --offline --vendor vendor/",
    mut_arg("jobs", |a| a.help("Downloads at once (default 4)")),
    mut_arg("cache_dir", |a| a.help("Cache of downloaded packages (default $XDG_CACHE_HOME/stele, else ~/.cache/stele)"))
)]
pub struct VendorArgs {
    /// The recipe (TOML), with its lockfile beside it.
    pub recipe: PathBuf,
    /// Folder to copy every locked .deb into.
    pub dir: PathBuf,
    /// Use only the cache: never touch the network.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

/// The pipeline run `lock` and `vendor` make: no registry flags, no
/// layer or remote cache; `packages` says offline, locked, vendored.
fn run_for_packages(
    cache: &CacheArgs,
    tls: &TlsArgs,
    jobs: &JobsArgs,
    packages: &PackageArgs,
) -> Result<Run> {
    let transport = transport(tls)?;
    Run::resolve(
        &RunFlags {
            cache,
            jobs,
            packages,
            remote_cache: None,
            layer_cache: false,
            only_platforms: &[],
        },
        registry_settings(
            &RegistryArgs::default(),
            jobs,
            &transport,
            Progress::default(),
        )?,
        &transport,
    )
}

/// Everything `stele lock` does, decided from its flags.
pub(crate) struct LockSettings {
    pub recipe: Recipe,
    pub check: bool,
    pub json: bool,
    /// Resolving downloads indexes through the cache folder.
    pub run: Run,
}

impl LockSettings {
    pub fn resolve(args: LockArgs) -> Result<LockSettings> {
        Ok(LockSettings {
            recipe: crate::recipe::load(&args.recipe, source_date_epoch()?)?,
            check: args.check,
            json: args.json,
            run: run_for_packages(
                &args.cache,
                &args.tls,
                &JobsArgs::default(),
                &PackageArgs::default(),
            )?,
        })
    }
}

/// Everything `stele vendor` does, decided from its flags.
pub(crate) struct VendorSettings {
    pub recipe: Recipe,
    pub dir: PathBuf,
    /// The lock is taken as it is: vendoring never resolves.
    pub run: Run,
}

impl VendorSettings {
    pub fn resolve(args: VendorArgs) -> Result<VendorSettings> {
        Ok(VendorSettings {
            recipe: crate::recipe::load(&args.recipe, source_date_epoch()?)?,
            dir: args.dir,
            run: run_for_packages(
                &args.cache,
                &args.tls,
                &args.jobs,
                &PackageArgs {
                    offline: args.offline,
                    locked: true,
                    vendor: None,
                },
            )?,
        })
    }
}

fn lock_json(path: &std::path::Path, status: &str, lock: Option<&Lock>) -> serde_json::Value {
    let platforms: serde_json::Map<String, serde_json::Value> = lock
        .map(|l| {
            l.platforms
                .iter()
                .map(|(p, locked)| {
                    let packages: Vec<serde_json::Value> = locked
                        .packages
                        .iter()
                        .map(|p| {
                            serde_json::json!({
                                "name": p.name,
                                "version": p.version,
                                "architecture": p.architecture,
                                "sha256": p.sha256.to_string(),
                                "size": p.size,
                            })
                        })
                        .collect();
                    (p.clone(), packages.into())
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "lockfile": path.display().to_string(),
        "status": status,
        "platforms": platforms,
    })
}

pub(crate) fn cmd_lock(args: LockArgs, r: &Reporter) -> Result<ExitCode> {
    let settings = LockSettings::resolve(args)?;
    let recipe = &settings.recipe;
    let Some(apt) = &recipe.apt else {
        bail!(
            "{} has no [apt] section: there is nothing to lock",
            recipe.path.display()
        );
    };
    let path = Lock::path_for(&recipe.path);
    if settings.check {
        let (lock, status) = check_lock(recipe, apt)?;
        let status = match status {
            LockStatus::Fresh => "fresh",
            LockStatus::Created => "missing",
            LockStatus::Updated => "stale",
        };
        if settings.json {
            super::report::print_json(&lock_json(&path, status, lock.as_ref()))?;
        }
        return Ok(if status == "fresh" {
            r.info(format_args!(
                "{} answers {}",
                path.display(),
                recipe.path.display()
            ));
            ExitCode::SUCCESS
        } else {
            r.info(format_args!(
                "the lockfile {} is {status}; run `stele lock {}` and commit the result",
                path.display(),
                recipe.path.display()
            ));
            ExitCode::FAILURE
        });
    }
    let pipeline = settings.run.open()?;
    let fetcher = crate::pipeline::fetcher(&pipeline, false);
    let mut lock = locking::resolve_lock(recipe, apt, &fetcher, &pipeline.apt)?;
    crate::apps::locking::update(recipe, &mut lock)?;
    write_atomic(&path, lock.to_text().as_bytes())?;
    for (platform, p) in &lock.platforms {
        r.info(format_args!("{platform}: {} package(s)", p.packages.len()));
    }
    if settings.json {
        super::report::print_json(&lock_json(&path, "written", Some(&lock)))?;
    } else {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cmd_vendor(args: VendorArgs, r: &Reporter) -> Result<ExitCode> {
    let settings = VendorSettings::resolve(args)?;
    let recipe = &settings.recipe;
    let Some(apt) = &recipe.apt else {
        bail!(
            "{} has no [apt] section: there is nothing to vendor",
            recipe.path.display()
        );
    };
    let pipeline = settings.run.open()?;
    let fetcher = crate::pipeline::fetcher(&pipeline, pipeline.offline);
    let outcome = lock_in_force(recipe, apt, &pipeline, &fetcher, &r.progress())?;
    let checked = CheckedLock::check(outcome.lock, &outcome.path, apt, &recipe.platforms)?;
    let files = debs::fetch_locked(&checked, &fetcher, &pipeline.apt, &|d| {
        r.event(crate::pipeline::download_event(d))
    })?;
    let n = debs::vendor(&checked.lock, &files, &settings.dir)?;
    r.info(format_args!(
        "copied {n} package(s) into {}",
        settings.dir.display()
    ));
    if recipe.python.is_some() || recipe.node.is_some() {
        let resolved = crate::pipeline::resolve_apps(recipe, &pipeline, Some(&checked.lock), None)?;
        let n = crate::apps::resolve::vendor(&resolved, pipeline.cache.blobs(), &settings.dir)?;
        r.info(format_args!(
            "copied {n} Python and npm package(s) into {}",
            settings.dir.display()
        ));
    }
    println!(
        "rebuild offline with: stele build {} --offline --vendor {}",
        recipe.path.display(),
        settings.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
