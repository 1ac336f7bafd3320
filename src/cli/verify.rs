//! `stele verify` and `stele diff`. Both exit 0 when all is well (verified,
//! identical), 1 when it is not (a check failed, the images differ) and 2
//! when they could not find out (a target that cannot be read, a key or
//! recipe that is invalid), so CI can tell a bad image from a bad setup.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::report::Reporter;
use anyhow::{Context, Result};

use super::settings::{
    registry_settings, registry_transport, CacheArgs, JobsArgs, Making, PackageArgs, Reader,
    RecipeFlags, RegistryArgs, RemoteCacheArgs,
};
use crate::attest::PublicKey;
use crate::lock::Lock;
use crate::oci::Digest;
use crate::pipeline::AttestOptions;
use crate::registry::Progress;
use crate::source::{Opened, Target};
use crate::store::BlobStore;
use crate::verify::{self, report, Options};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele verify out/hello --digest sha256:… --key stele.pub\n  stele verify localhost:5000/hello:1.0 --rebuild recipe.toml --offline"
)]
pub struct VerifyArgs {
    /// The image: a layout folder (oci:PATH[@sha256:…]), an archive or a
    /// registry reference.
    pub target: String,
    /// The digest the image must have (what the deployment pins).
    #[arg(long, value_name = "sha256:…")]
    pub digest: Option<String>,
    /// Public key attestations must be signed with (repeatable: any one
    /// of them will do). Each required kind (--require) needs at least one
    /// attestation it signed; what other keys signed is listed and
    /// ignored. Without it, signatures are not checked.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// What a key must have signed (repeatable): provenance, sbom (both
    /// formats), sbom-spdx, sbom-cyclonedx, signature (cosign's image
    /// signature) or all; default provenance and sbom.
    #[arg(long, value_name = "KIND")]
    pub require: Vec<String>,
    /// A verification policy (TOML): its signers' keys, the predicate
    /// types they must have signed, and what their provenance must say
    /// (builder id, source repository and revision, recipe digest,
    /// allowed bases, maximum age). See the README's "Deploy-time
    /// policy".
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Check, without building, that the image says it was made from this
    /// recipe and its lockfile (beside it), and that its embedded SBOM
    /// lists exactly the lock's packages.
    #[arg(long, value_name = "RECIPE")]
    pub recipe: Option<PathBuf>,
    /// Build this recipe again (into a temp store) and compare digests.
    #[arg(long, value_name = "RECIPE")]
    pub rebuild: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// For `--rebuild`: use only the cache (and --vendor), never the
    /// network. The lock is always taken as it is: a rebuild never resolves.
    #[arg(long)]
    pub offline: bool,
    /// For `--rebuild`: import .debs from a folder written by `stele vendor`
    /// before fetching.
    #[arg(long, value_name = "DIR")]
    pub vendor: Option<PathBuf>,
    /// For `--rebuild`: read `[[files]] src` from this folder, as the
    /// build did (`stele build --context DIR`).
    #[arg(long, value_name = "DIR")]
    pub context: Option<PathBuf>,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub remote_cache: RemoteCacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  stele diff out/hello oci-archive:/tmp/other-build.tar")]
pub struct DiffArgs {
    /// The first image (any target form `verify` takes).
    pub a: String,
    /// The second image.
    pub b: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

const COULD_NOT_CHECK: u8 = 2;

/// Prints an error the way `main` does, and the exit status for "could not
/// check"; in JSON mode CI also gets a document saying so.
fn could_not_check(err: anyhow::Error, target: &str, json: bool) -> ExitCode {
    super::print_error(&err);
    if json {
        let mut out = report::error_json(target, &format!("{err:#}"));
        out.push(b'\n');
        let _ = std::io::stdout().write_all(&out);
    }
    ExitCode::from(COULD_NOT_CHECK)
}

pub(crate) fn cmd_verify(args: VerifyArgs, r: &Reporter) -> Result<ExitCode> {
    match run_verify(&args, r) {
        Ok(report) => {
            let mut stdout = std::io::stdout().lock();
            if args.json {
                stdout.write_all(&report::verify_json(&report))?;
                stdout.write_all(b"\n")?;
            } else {
                // `-q`: the result line and what failed, not every check.
                let every_check = r.level > super::report::Level::Quiet;
                stdout.write_all(report::verify_text(&report, every_check).as_bytes())?;
            }
            Ok(if report.verified() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(e) => Ok(could_not_check(e, &args.target, args.json)),
    }
}

/// Everything `stele verify` does, decided before any check.
pub(crate) struct VerifySettings {
    pub target: Target,
    pub options: Options,
    /// `--rebuild`: the recipe made again as `stele build --locked` would,
    /// without the layer cache, and its path as given.
    pub rebuild: Option<(PathBuf, Making)>,
    pub reader: Reader,
}

impl VerifySettings {
    pub fn resolve(args: &VerifyArgs, r: &Reporter) -> Result<VerifySettings> {
        let pin = match &args.digest {
            Some(d) => Some(
                d.parse::<Digest>()
                    .with_context(|| "--digest must be the digest the image is pinned by")?,
            ),
            None => None,
        };
        let keys = args
            .keys
            .iter()
            .map(|p| PublicKey::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        let require = super::policy::parse_required(&args.require)?;
        let policy = match &args.policy {
            Some(path) => Some(super::policy::load(path, now())?),
            None => None,
        };
        if keys.is_empty() && policy.is_none() && !require.is_empty() {
            anyhow::bail!(
                "--require names what a key must have signed: give --key (or --policy) too"
            );
        }
        let transport = registry_transport(&args.registry)?;
        // The recipe is read before the image, so a bad recipe is reported
        // without a page of checks above it.
        let rebuild = match &args.rebuild {
            Some(path) => {
                let locked = PackageArgs {
                    locked: true,
                    offline: args.offline,
                    vendor: args.vendor.clone(),
                };
                let making = Making::resolve(
                    &RecipeFlags {
                        // A rebuild that took layers from the cache would
                        // compare the image with an earlier build of this
                        // machine, not with a build.
                        layer_cache: false,
                        packages: &locked,
                        context: args.context.as_deref(),
                        ..RecipeFlags::defaults(path, &args.remote_cache, &args.cache, &args.jobs)
                    },
                    // Only the image is compared.
                    AttestOptions::none(),
                    registry_settings(&args.registry, &args.jobs, &transport, Progress::default())?,
                    &transport,
                )?;
                // Checking an image needs no cache folder; building one
                // does. Said before any check runs, not after them.
                making.run.cache.open_writable().with_context(|| {
                    format!(
                        "--rebuild {} builds the recipe, which needs a writable cache folder for its downloads and unpacked packages (checking the image alone needs none): pass --cache-dir DIR",
                        path.display()
                    )
                })?;
                Some((path.clone(), making))
            }
            None => None,
        };
        let expected = match &args.recipe {
            Some(path) => Some(expected_from(path)?),
            None => None,
        };
        let target = Target::parse(&args.target)?;
        Ok(VerifySettings {
            target,
            options: Options {
                pin,
                keys,
                require,
                recipe: expected,
                policy,
                jobs: super::settings::work_jobs(&args.jobs),
            },
            rebuild,
            reader: Reader::resolve(
                &args.registry,
                &args.jobs,
                &args.cache,
                &transport,
                Progress::default(),
            )?
            .verbose(r.level >= super::report::Level::Verbose),
        })
    }
}

/// Seconds since 1970, now: what a policy's `max_age` is measured from.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn run_verify(args: &VerifyArgs, r: &Reporter) -> Result<verify::Report> {
    let settings = VerifySettings::resolve(args, r)?;
    let subject = settings.reader.with_access(&settings.target, |access| {
        Ok(verify::locate(&settings.target, access)?)
    })?;
    let mut report = verify::verify(&subject, &settings.options);
    if let Some((path, making)) = &settings.rebuild {
        r.info(format_args!("rebuilding {}", path.display()));
        let rebuilt = rebuild(making, r)
            .with_context(|| format!("rebuilding {} to compare", path.display()))?;
        let opened = subject.into_opened();
        verify::rebuild::compare(
            &mut report,
            opened.as_ref(),
            &rebuilt,
            &path.display().to_string(),
            making.recipe.epoch,
        );
    }
    Ok(report)
}

/// What `--recipe` checks the image against: the recipe's digest and,
/// when it has `[apt]`, its lockfile's bytes exactly as they are on disk
/// (the file a commit holds; an edited lock is a different lock).
fn expected_from(path: &Path) -> Result<verify::embedded::Expected> {
    // The epoch does not enter the recipe digest, so SOURCE_DATE_EPOCH is
    // not read here.
    let recipe = crate::recipe::load(path, None)?;
    if recipe.apt.is_none() {
        return Ok(verify::embedded::Expected::new(&recipe, None));
    }
    let lock_path = Lock::path_for(path);
    let bytes = std::fs::read(&lock_path).with_context(|| {
        format!(
            "reading {}, the lockfile of {} (run `stele lock` to make it)",
            lock_path.display(),
            path.display()
        )
    })?;
    let lock = Lock::load(&lock_path)?;
    let shown = lock_path.display().to_string();
    Ok(verify::embedded::Expected::new(
        &recipe,
        Some((shown, &bytes, lock)),
    ))
}

/// Builds the recipe with the same `produce` as `stele build`, into a
/// temp store that goes away with the returned value: the user's output
/// folder is never touched.
fn rebuild(making: &Making, r: &Reporter) -> Result<Opened> {
    let temp = tempfile::Builder::new()
        .prefix("stele-rebuild-")
        .tempdir()
        .context("making a temp folder for the rebuild")?;
    let store = BlobStore::open(temp.path())?;
    let produced = making.produce(&store, &r.progress())?;
    Ok(Opened {
        name: format!("rebuild of {}", making.recipe.path.display()),
        store,
        built: produced.output.built,
        referrers: Vec::new(),
        temp: Some(temp),
        warnings: Vec::new(),
    })
}

/// Everything `stele diff` does, decided from its flags.
pub(crate) struct DiffSettings {
    pub a: String,
    pub b: String,
    pub json: bool,
    pub reader: Reader,
}

impl DiffSettings {
    pub fn resolve(args: DiffArgs) -> Result<DiffSettings> {
        Ok(DiffSettings {
            reader: Reader::for_reading(&args.registry, &args.cache)?,
            a: args.a,
            b: args.b,
            json: args.json,
        })
    }
}

pub(crate) fn cmd_diff(args: DiffArgs) -> Result<ExitCode> {
    let settings = DiffSettings::resolve(args)?;
    let open = |s: &str| -> Result<Opened> { settings.reader.open(s) };
    let (a, b) = match (open(&settings.a), open(&settings.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) => return Ok(could_not_check(e, &settings.a, settings.json)),
        (_, Err(e)) => return Ok(could_not_check(e, &settings.b, settings.json)),
    };
    let d = match verify::diff::diff(&a, &b) {
        Ok(d) => d,
        Err(e) => {
            let target = format!("{} {}", settings.a, settings.b);
            return Ok(could_not_check(e.into(), &target, settings.json));
        }
    };
    let mut stdout = std::io::stdout().lock();
    if settings.json {
        stdout.write_all(&report::diff_json(&d))?;
        stdout.write_all(b"\n")?;
    } else {
        stdout.write_all(report::diff_text(&d).as_bytes())?;
    }
    Ok(if d.identical() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
