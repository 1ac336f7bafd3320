//! `stele lock` and `stele vendor`: the lockfile and the packages it names.

use std::path::PathBuf;
use std::process::ExitCode;

use super::report::Reporter;
use anyhow::{bail, Result};

use super::output::write_atomic;
use super::settings::resolved::RunFlags;
use super::settings::{
    registry_settings, source_date_epoch, transport, unix_now, CacheArgs, JobsArgs, PackageArgs,
    RegistryArgs, Run, TlsArgs,
};
use crate::apt::debs::{self, CheckedLock};
use crate::apt::locking::{self, Change, Keep, Upgrade};
use crate::cache::lookup::EntryStore;
use crate::cache::{Chain, Repository, Roles};
use crate::lock::Lock;
use crate::pipeline::{check_lock, lock_in_force, LockStatus};
use crate::recipe::Recipe;
use crate::registry::{Progress, Reference};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele lock recipe.toml\n  stele lock recipe.toml --update openssl libssl3   # only these, and what they need\n  stele lock --check recipe.toml   # in CI: exit 1 when the lock is stale\n  stele lock --check --upgradable recipe.toml   # nightly: exit 1 when the suites offer newer versions",
    mut_arg("cache_dir", |a| a.help("Cache of downloaded indexes (default $XDG_CACHE_HOME/stele, else ~/.cache/stele)"))
)]
pub struct LockArgs {
    /// The recipe (TOML); the lock is written as <stem>.lock beside it.
    /// (Required; it may also end the --update list.)
    pub recipe: Option<PathBuf>,
    /// Re-resolve against the suites as they are now: every package, or
    /// only the PKGs named and what they need (the others stay at their
    /// locked versions). Prints what changed.
    #[arg(long, value_name = "PKG", num_args = 0.., conflicts_with = "check")]
    pub update: Option<Vec<String>>,
    /// Change nothing: exit 0 when the lockfile answers the recipe, 1 when
    /// it is missing or stale (for CI: "is the lock current?"), saying
    /// what changed.
    #[arg(long)]
    pub check: bool,
    /// With --check: also ask the suites, and exit 1 when they offer a
    /// newer version of a locked package, listing them (security updates
    /// first).
    #[arg(long, requires = "check")]
    pub upgradable: bool,
    /// Print one JSON document (lockfile, status, packages per platform,
    /// changes) on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele vendor recipe.toml vendor/ && stele build recipe.toml --offline --vendor vendor/\n  stele vendor recipe.toml --to registry.example/team/debs   # then: stele build --cache-from registry.example/team/debs",
    mut_arg("jobs", |a| a.help("Downloads and uploads at once (default 4)")),
    mut_arg("cache_dir", |a| a.help("Cache of downloaded packages (default $XDG_CACHE_HOME/stele, else ~/.cache/stele)"))
)]
pub struct VendorArgs {
    /// The recipe (TOML), with its lockfile beside it.
    pub recipe: PathBuf,
    /// Folder to copy every locked .deb into.
    #[arg(required_unless_present = "to")]
    pub dir: Option<PathBuf>,
    /// Push every locked .deb to this registry repository (HOST[:PORT]/REPO)
    /// as the package archive `--cache-from` reads, without building.
    #[arg(long, value_name = "REF")]
    pub to: Option<String>,
    /// Use only the cache: never touch the network (with --to, only to
    /// push).
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

/// The pipeline run `lock` and `vendor` make: no layer or remote cache;
/// `packages` says offline, locked, vendored.
fn run_for_packages(
    cache: &CacheArgs,
    registry: &RegistryArgs,
    jobs: &JobsArgs,
    packages: &PackageArgs,
) -> Result<Run> {
    let transport = transport(&registry.tls)?;
    Run::resolve(
        &RunFlags {
            cache,
            jobs,
            packages,
            remote_cache: None,
            layer_cache: false,
            only_platforms: &[],
        },
        registry_settings(registry, jobs, &transport, Progress::default())?,
        &transport,
    )
}

/// What `stele lock` is asked to do.
pub(crate) enum LockMode {
    /// Resolve everything and write the lock.
    Write,
    /// Resolve the named packages (and what they need) anew, keep the rest.
    Update(Vec<String>),
    /// Change nothing; with `upgradable`, ask the suites too.
    Check { upgradable: bool },
}

/// Everything `stele lock` does, decided from its flags.
pub(crate) struct LockSettings {
    pub recipe: Recipe,
    pub mode: LockMode,
    pub json: bool,
    /// Resolving downloads indexes through the cache folder.
    pub run: Run,
}

impl LockSettings {
    pub fn resolve(mut args: LockArgs) -> Result<LockSettings> {
        // `--update` takes every word after it, so `stele lock --update
        // PKG recipe.toml` hands it the recipe too: a last word that is a
        // recipe file is the recipe.
        let recipe = match args.recipe.take() {
            Some(r) => r,
            None => match args.update.as_mut().and_then(|u| {
                u.last()
                    .filter(|w| w.ends_with(".toml") || std::path::Path::new(w).is_file())
                    .cloned()
                    .inspect(|_| {
                        u.pop();
                    })
            }) {
                Some(r) => PathBuf::from(r),
                None => bail!("name the recipe to lock: stele lock RECIPE [--update [PKG…]]"),
            },
        };
        let mode = match (args.check, args.update) {
            (true, _) => LockMode::Check {
                upgradable: args.upgradable,
            },
            (false, Some(names)) if !names.is_empty() => LockMode::Update(names),
            (false, _) => LockMode::Write,
        };
        Ok(LockSettings {
            recipe: crate::recipe::load(&recipe, source_date_epoch()?)?,
            mode,
            json: args.json,
            run: run_for_packages(
                &args.cache,
                &RegistryArgs {
                    tls: args.tls,
                    ..RegistryArgs::default()
                },
                &JobsArgs::default(),
                &PackageArgs::default(),
            )?,
        })
    }
}

/// Everything `stele vendor` does, decided from its flags.
pub(crate) struct VendorSettings {
    pub recipe: Recipe,
    pub dir: Option<PathBuf>,
    pub to: Option<Reference>,
    /// The lock is taken as it is: vendoring never resolves.
    pub run: Run,
}

impl VendorSettings {
    pub fn resolve(args: VendorArgs) -> Result<VendorSettings> {
        let to = match &args.to {
            None => None,
            Some(text) => {
                let r = Reference::parse(text)?;
                if r.tag.is_some() || r.digest.is_some() {
                    bail!("--to {text} names a tag or digest; name the repository only, e.g. {}/{}: stele tags each .deb itself", r.registry, r.repository);
                }
                Some(r)
            }
        };
        Ok(VendorSettings {
            recipe: crate::recipe::load(&args.recipe, source_date_epoch()?)?,
            dir: args.dir,
            to,
            run: run_for_packages(
                &args.cache,
                &args.registry,
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

/// `name old → new (suite) [platforms]`, as `stele lock` prints a change.
fn change_line(c: &Change, all_platforms: usize) -> String {
    let versions = match (&c.old, &c.new) {
        (Some(o), Some(n)) => format!("{o} → {n}"),
        (None, Some(n)) => format!("added {n}"),
        (Some(o), None) => format!("removed (was {o})"),
        (None, None) => String::new(),
    };
    let suite = c
        .suite
        .as_ref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let platforms = if c.platforms.len() < all_platforms {
        format!(" [{}]", c.platforms.join(", "))
    } else {
        String::new()
    };
    format!("{} {versions}{suite}{platforms}", c.name)
}

fn upgrade_line(u: &Upgrade) -> String {
    format!(
        "{}{} {} → {} ({}){}",
        if u.security { "security: " } else { "" },
        u.name,
        u.locked,
        u.offered,
        u.suite,
        if u.platforms.is_empty() {
            String::new()
        } else {
            format!(" [{}]", u.platforms.join(", "))
        }
    )
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
    if let LockMode::Check { upgradable } = settings.mode {
        return check(&settings, apt, &path, upgradable, r);
    }
    let pipeline = settings.run.open()?;
    let fetcher = crate::pipeline::fetcher(&pipeline, false);
    let old = match path.exists() {
        true => Some(Lock::load(&path)?),
        false => None,
    };
    let updated = match (&settings.mode, &old) {
        (LockMode::Update(names), Some(old)) => locking::update_lock(
            recipe,
            apt,
            &fetcher,
            &pipeline.apt,
            Some(Keep {
                lock: old,
                update: names,
            }),
        )?,
        (LockMode::Update(_), None) => bail!(
            "--update PKG keeps the other packages of the lockfile {}, which does not exist; run `stele lock {}` first",
            path.display(),
            recipe.path.display()
        ),
        _ => locking::update_lock(recipe, apt, &fetcher, &pipeline.apt, None)?,
    };
    let mut lock = updated.lock;
    crate::apps::locking::update(recipe, &mut lock)?;
    write_atomic(&path, lock.to_text().as_bytes())?;
    let changes = locking::changes(old.as_ref(), &lock, apt);
    for c in &changes {
        r.info(format_args!("{}", change_line(c, lock.platforms.len())));
    }
    for m in &updated.moved {
        r.info(format_args!("warning: not kept: {m}"));
    }
    if old.is_some() && changes.is_empty() {
        r.info(format_args!("no package changed"));
    }
    for (platform, p) in &lock.platforms {
        r.info(format_args!("{platform}: {} package(s)", p.packages.len()));
    }
    if settings.json {
        let mut doc = lock_json(&path, "written", Some(&lock));
        doc["changes"] = serde_json::to_value(&changes).expect("changes serialize");
        doc["not_kept"] = serde_json::to_value(&updated.moved).expect("strings serialize");
        super::report::print_json(&doc)?;
    } else {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `stele lock --check [--upgradable]`: is the lock current, and (asking
/// the suites) is anything in it out of date?
fn check(
    settings: &LockSettings,
    apt: &crate::recipe::AptSpec,
    path: &std::path::Path,
    upgradable: bool,
    r: &Reporter,
) -> Result<ExitCode> {
    let recipe = &settings.recipe;
    let (lock, status) = check_lock(recipe, apt)?;
    let (status, why) = match status {
        LockStatus::Fresh => ("fresh", Vec::new()),
        LockStatus::Created => ("missing", Vec::new()),
        LockStatus::Updated => (
            "stale",
            lock.as_ref()
                .map(|l| locking::why_stale(recipe, apt, l))
                .unwrap_or_default(),
        ),
    };
    let upgrades = match (&lock, upgradable) {
        (Some(lock), true) => {
            let pipeline = settings.run.open()?;
            let fetcher = crate::pipeline::fetcher(&pipeline, false);
            locking::upgradable(recipe, apt, lock, &fetcher, &pipeline.apt)?
        }
        _ => Vec::new(),
    };
    if settings.json {
        let mut doc = lock_json(path, status, lock.as_ref());
        doc["stale_because"] = serde_json::to_value(&why).expect("strings serialize");
        if upgradable {
            doc["upgradable"] = serde_json::to_value(&upgrades).expect("upgrades serialize");
        }
        super::report::print_json(&doc)?;
    }
    let mut current = true;
    if status == "fresh" {
        r.info(format_args!(
            "{} answers {}",
            path.display(),
            recipe.path.display()
        ));
    } else {
        current = false;
        let because = if why.is_empty() {
            String::new()
        } else {
            format!(": {}", why.join("; "))
        };
        r.info(format_args!(
            "the lockfile {} is {status}{because}; run `stele lock {}` and commit the result",
            path.display(),
            recipe.path.display()
        ));
    }
    if upgradable {
        if upgrades.is_empty() {
            r.info(format_args!("the suites offer nothing newer than the lock"));
        } else {
            current = false;
            let security = upgrades.iter().filter(|u| u.security).count();
            r.info(format_args!(
                "the suites offer {} newer package(s), {security} from security archives:",
                upgrades.len()
            ));
            for u in &upgrades {
                r.info(format_args!("  {}", upgrade_line(u)));
            }
            let names: Vec<&str> = upgrades.iter().map(|u| u.name.as_str()).collect();
            r.info(format_args!(
                "update them with `stele lock {} --update {}` (this changes the image), then build and commit",
                recipe.path.display(),
                names.join(" ")
            ));
        }
    }
    Ok(if current {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    // Pushed with the registry settings of the command itself, not the
    // remote cache's short budget: the push is this command's work, and
    // a failure fails it.
    let remotes: Vec<(Box<dyn EntryStore>, Roles)> = match &settings.to {
        Some(to) => vec![(
            Box::new(Repository::open(to, &pipeline.registry, unix_now())?),
            Roles::TO,
        )],
        None => Vec::new(),
    };
    let chain = Chain::new(
        crate::cache::Local::new(&pipeline.cache, None),
        remotes,
        &pipeline.builder.identity,
    );
    let wanted = checked.wanted();
    let packages: Vec<&crate::lock::LockedPackage> = wanted.values().copied().collect();
    let routes = crate::pipeline::Routes {
        apt: &pipeline.apt,
        vendor: None,
    };
    let from = crate::pipeline::fetch_debs(&checked, &packages, &fetcher, &chain, &routes, &|d| {
        r.event(crate::pipeline::download_event(d))
    })?;
    if !from.is_empty() {
        r.event(crate::pipeline::Event::DebRoutes { routes: &from });
    }
    if let Some(dir) = &settings.dir {
        let files = wanted
            .keys()
            .map(|d| (d.clone(), fetcher.cache().path(d)))
            .collect();
        let n = debs::vendor(&checked.lock, &files, dir)?;
        r.info(format_args!("copied {n} package(s) into {}", dir.display()));
        if recipe.python.is_some() || recipe.node.is_some() {
            let resolved =
                crate::pipeline::resolve_apps(recipe, &pipeline, Some(&checked.lock), None)?;
            let n = crate::apps::resolve::vendor(&resolved, pipeline.cache.blobs(), dir)?;
            r.info(format_args!(
                "copied {n} Python and npm package(s) into {}",
                dir.display()
            ));
        }
        println!(
            "rebuild offline with: stele build {} --offline --vendor {}",
            recipe.path.display(),
            dir.display()
        );
    }
    if let Some(to) = &settings.to {
        crate::pipeline::push_debs(&chain, packages.into_iter(), &pipeline.cache, pipeline.jobs);
        let report = chain.report();
        if !report.warnings.is_empty() {
            bail!("pushing the .debs to {to}: {}", report.warnings.join("; "));
        }
        r.info(format_args!(
            "pushed {} .deb(s) ({} bytes) to {to}, {} already there",
            report.entries_pushed, report.bytes_uploaded, report.entries_present
        ));
        println!(
            "build from them with: stele build {} --cache-from {to}",
            recipe.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
