//! `stele build`: flags become `BuildCommandSettings` once (what to make, where
//! it goes, the policy between them); the command runs the pipeline, then
//! publishes its outputs (push, the layout or archive, the digest file)
//! only once all of it succeeded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::output::Pending;
use super::report::Reporter;
use super::settings::resolved::{check_platforms, listed};
use super::settings::{
    registry_settings, registry_transport, BuildOptions, CacheArgs, JobsArgs, MadeFor, Making,
    RegistryArgs,
};
use crate::oci::Platform;
use crate::pipeline::Produced;
use crate::recipe::Recipe;
use crate::registry::Reference;
use crate::sink::{Destination, Output, Stored, Target, WriteOptions, Written};
use crate::source::target::ArchiveKind;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele build recipe.toml --locked --digest-file image.digest\n  stele build recipe.toml --format docker-archive --platform linux/arm64"
)]
pub struct BuildArgs {
    /// The recipe (TOML).
    pub recipe: PathBuf,
    /// Output path (default: out/<image name> beside the recipe, with
    /// `.tar` for archives).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// What to write: an OCI layout folder, an oci-archive or a
    /// docker-archive (for `docker load` / `podman load`).
    #[arg(long, value_enum, default_value = "oci")]
    pub format: Format,
    /// Also write the digest (sha256:…) to this file.
    #[arg(long)]
    pub digest_file: Option<PathBuf>,
    /// Tag written as the layout's ref name and in a docker-archive's RepoTags
    /// (default: [image] tag, else latest).
    #[arg(long)]
    pub tag: Option<String>,
    /// Also push the image (and its attestations) to this registry
    /// reference, HOST[:PORT]/REPO[:TAG]; prints REF@sha256:… before the
    /// digest line.
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,
    /// Print one JSON document (digest, platforms, layers, attestations,
    /// lock status, cache hits) on stdout instead of the digest line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub options: BuildOptions,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// What `stele build` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An OCI image layout folder.
    Oci,
    /// The layout in a tar file (skopeo's oci-archive:).
    OciArchive,
    /// The `docker save` format, also an oci-archive (docker/podman load).
    DockerArchive,
}

/// Everything `stele build` does, decided from its flags and the
/// environment before any work, and not changed after.
pub(crate) struct BuildCommandSettings {
    /// The recipe as given, for messages.
    pub recipe_path: PathBuf,
    pub making: Making,
    /// The layout or archive, its tag decided.
    pub output: Destination,
    /// `--push`: a registry, its tag defaulting to the output's.
    pub push: Option<Destination>,
    /// The one platform a docker-archive holds (the build makes them all,
    /// so the digest is the recipe's whatever the format).
    pub docker_platform: Option<Platform>,
    pub format: Format,
    pub tag: String,
    pub digest_file: Option<PathBuf>,
    pub json: bool,
}

impl BuildCommandSettings {
    pub fn resolve(args: BuildArgs, r: &Reporter) -> Result<BuildCommandSettings> {
        let transport = registry_transport(&args.registry)?;
        let docker = args.format == Format::DockerArchive;
        let making = Making::from_options(
            &args.recipe,
            &args.options,
            if docker {
                MadeFor::DockerArchive
            } else {
                MadeFor::Oci
            },
            args.push.clone(),
            &args.cache,
            &args.jobs,
            registry_settings(
                &args.registry,
                &args.jobs,
                &transport,
                r.transfers("fetching"),
            )?,
            &transport,
        )?;
        let recipe = &making.recipe;
        let tag = args.tag.clone().unwrap_or_else(|| recipe.tag.clone());
        if !crate::recipe::valid_tag(&tag) {
            bail!("--tag `{tag}` is not valid: use up to 128 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`");
        }
        let docker_platform = match docker {
            true => Some(docker_platform(recipe, &args.options.platform)?),
            false => None,
        };
        let push = match &args.push {
            Some(words) => Some(Destination {
                target: Target::Registry {
                    reference: push_reference(words, &tag)?,
                },
                options: WriteOptions {
                    registry: registry_settings(
                        &args.registry,
                        &args.jobs,
                        &transport,
                        r.transfers("sending"),
                    )?,
                    ..WriteOptions::default()
                },
            }),
            None => None,
        };
        // Without --sign-identity, the image signature names the --push
        // reference with the tag it is pushed by.
        let mut making = making;
        if args.options.sign_identity.is_none() {
            if let Some(Destination {
                target: Target::Registry { reference },
                ..
            }) = &push
            {
                making.attest.identity = Some(reference.to_string());
            }
        }
        let recipe = &making.recipe;
        let path = args
            .output
            .clone()
            .unwrap_or_else(|| default_output(&args.recipe, &recipe.name, args.format));
        let tagged = Some(tag.clone());
        let target = match args.format {
            Format::Oci => Target::Layout { path, tag: tagged },
            Format::OciArchive => Target::Archive {
                path,
                kind: ArchiveKind::Oci,
                tag: tagged,
            },
            Format::DockerArchive => Target::Archive {
                path,
                kind: ArchiveKind::Docker,
                tag: tagged,
            },
        };
        let output = Destination {
            target,
            options: WriteOptions {
                name: recipe.name.clone(),
                mtime: recipe.epoch,
                ..WriteOptions::default()
            },
        };
        Ok(BuildCommandSettings {
            recipe_path: args.recipe,
            making,
            output,
            push,
            docker_platform,
            format: args.format,
            tag,
            digest_file: args.digest_file,
            json: args.json,
        })
    }
}

/// `--push REF`: a registry reference (a sink target that names a file
/// is refused), tagged `tag` when it names none; never a digest, which
/// the build decides.
fn push_reference(words: &str, tag: &str) -> Result<Reference> {
    let mut to = match Target::parse(words)? {
        Target::Registry { reference } => reference,
        other => bail!(
            "--push {words}: that is {}, and --push sends to a registry; give HOST[:PORT]/REPO[:TAG], or write files with -o and --format",
            other.noun()
        ),
    };
    if to.digest.is_some() {
        bail!("--push {to}: push to a tag (HOST/REPO:TAG); the digest is what the build decides");
    }
    if to.tag.is_none() {
        to.tag = Some(tag.to_string());
    }
    Ok(to)
}

fn default_output(recipe_path: &Path, name: &str, format: Format) -> PathBuf {
    let dir = recipe_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match format {
        Format::Oci => dir.join("out").join(name),
        Format::OciArchive | Format::DockerArchive => dir.join("out").join(format!("{name}.tar")),
    }
}

/// The platform a docker-archive of `recipe` holds: the only one, or the
/// one `--platform` names among the recipe's.
fn docker_platform(recipe: &Recipe, wanted: &[Platform]) -> Result<Platform> {
    check_platforms(recipe, wanted)?;
    match (wanted, recipe.platforms.as_slice()) {
        ([p], _) => Ok(p.clone()),
        ([_, _, ..], _) => bail!(
            "a docker-archive holds one platform: pass --platform once (or use --format oci or oci-archive for several)"
        ),
        ([], [only]) => Ok(only.clone()),
        ([], _) => bail!(
            "a docker-archive holds one platform and {} builds {} ({}); pass --platform with one of them",
            recipe.path.display(),
            recipe.platforms.len(),
            listed(recipe)
        ),
    }
}

/// Says what the build did: each platform's scripts summary, and with
/// `-v` each manifest and layer.
fn report_built(produced: &Produced, r: &Reporter) {
    let scripts = &produced.output.scripts;
    for (platform, report) in scripts {
        if report.effects.is_empty() {
            continue;
        }
        let which = if scripts.len() > 1 {
            format!(" ({platform})")
        } else {
            String::new()
        };
        r.info(format_args!(
            "scripts{which}: {}; see --json",
            report.summary()
        ));
    }
    for image in &produced.output.built.images {
        r.detail(format_args!(
            "{}: manifest {}, config {}",
            image.platform, image.manifest.digest, image.config.digest
        ));
        // History entries that made a layer, in layer order: what each holds.
        let history = image.config.value.history().clone().unwrap_or_default();
        let mut created_by = history
            .iter()
            .filter(|h| !h.empty_layer().unwrap_or(false))
            .map(|h| h.created_by().clone().unwrap_or_default());
        for layer in &image.layers {
            r.detail(format_args!(
                "  layer {} ({} bytes, DiffID {}): {}",
                layer.digest,
                layer.size,
                layer.diff_id,
                created_by.next().unwrap_or_default()
            ));
        }
    }
}

pub(crate) fn cmd_build(args: BuildArgs, r: &Reporter) -> Result<ExitCode> {
    let settings = BuildCommandSettings::resolve(args, r)?;
    // Before the cache, the network or the build: an output that may not
    // be replaced, or whose folder cannot be written, fails at once,
    // named, instead of after minutes of work. Dropped unwritten, it
    // removes what it made.
    let output = Output::prepare(settings.output.clone())?;
    // And a registry to push to: reachable, the credentials accepted,
    // pushing allowed.
    let push_output = match &settings.push {
        Some(to) => Some(Output::prepare(to.clone()).with_context(|| push_context(to))?),
        None => None,
    };
    let building = settings.making.building();
    r.info(format_args!(
        "building {} ({} platform{})",
        settings.recipe_path.display(),
        building,
        if building == 1 { "" } else { "s" }
    ));
    let store = output
        .store()
        .expect("a layout or archive is staged beside its destination")
        .clone();
    let produced = settings.making.produce(&store, &r.progress())?;
    report_built(&produced, r);
    let built = &produced.output.built;
    // The build's digest whatever the format: the same recipe pins the same value.
    let digest = built.digest().to_string();

    // Everything below publishes; the small files are staged first, so a
    // folder that cannot take them fails before anything changed.
    let mut pending = Pending::default();
    if let Some(f) = &settings.digest_file {
        pending.file(f, format!("{digest}\n").as_bytes())?;
    }
    let referrers = produced.referrers();
    let image = Stored {
        built,
        store: &store,
        referrers: &referrers,
    };
    let pushed = match (push_output, &settings.push) {
        (Some(output), Some(to)) => Some(push(image, output, to, r)?),
        _ => None,
    };
    let out = match &settings.docker_platform {
        Some(platform) => {
            let one = built
                .only(platform)
                .expect("the build makes every recipe platform");
            let out = written_path(output.write(Stored {
                built: &one,
                ..image
            })?);
            if built.images.len() > 1 {
                r.info(format_args!(
                    "the docker-archive holds the {platform} image {} of the index below",
                    one.digest()
                ));
            }
            out
        }
        None => written_path(output.write(image)?),
    };
    pending.publish()?;
    r.info(format_args!("wrote {}", out.display()));
    if settings.json {
        let doc = build_json(&settings, &produced, &out, pushed.as_ref());
        return super::report::print_json(&doc).map(|()| ExitCode::SUCCESS);
    }
    let mut stdout = std::io::stdout().lock();
    if let Some(pinned) = &pushed {
        writeln!(stdout, "{pinned}")?;
    }
    writeln!(stdout, "{digest}")?;
    Ok(ExitCode::SUCCESS)
}

fn written_path(written: Written) -> PathBuf {
    match written {
        Written::File { path } => path,
        Written::Pushed { .. } => unreachable!("a layout or archive is written to a file"),
    }
}

/// `--push`: the image and its attestations, from the staging store.
/// Returns the reference pushed, pinned by digest.
fn push(image: Stored<'_>, output: Output, to: &Destination, r: &Reporter) -> Result<Reference> {
    let context = || match &to.target {
        Target::Registry { reference } => format!("pushing to {reference}"),
        other => unreachable!("--push names a registry, not {}", other.noun()),
    };
    match output.write(image).with_context(context)? {
        Written::Pushed { pinned, report } => {
            r.info(format_args!("pushed: {report}"));
            for w in &report.warnings {
                r.info(format_args!("warning: {w}"));
            }
            Ok(pinned)
        }
        Written::File { .. } => unreachable!("a registry target is pushed to"),
    }
}

/// What a failed check of `--push`'s registry says it was.
fn push_context(to: &Destination) -> String {
    match &to.target {
        Target::Registry { reference } => {
            format!("checking {reference} before the build (--push)")
        }
        other => unreachable!("--push names a registry, not {}", other.noun()),
    }
}

/// `--json`: the image, where it went, and what the build decided.
fn build_json(
    settings: &BuildCommandSettings,
    produced: &Produced,
    out: &Path,
    pushed: Option<&Reference>,
) -> serde_json::Value {
    let stats = &produced.output.layers;
    let mut doc = super::report::image_json(&produced.output.built);
    doc["output"] = out.display().to_string().into();
    doc["format"] = format!("{:?}", settings.format).to_lowercase().into();
    doc["tag"] = settings.tag.clone().into();
    doc["pushed"] = pushed.map(|p| p.to_string()).into();
    doc["attestations"] = super::report::attestations_json(&produced.attestations);
    doc["scripts"] = serde_json::json!(&produced.output.scripts);
    doc["layer_cache"] = serde_json::json!({
        "enabled": settings.making.run.layer_cache,
        "hits": stats.reused,
        "misses": stats.written,
    });
    doc["base_layers"] = match produced.output.base_layers {
        Some(b) => serde_json::json!({ "cached": b.cached, "read": b.read }),
        None => serde_json::Value::Null,
    };
    doc["remote_cache"] =
        serde_json::to_value(&produced.remote_cache).expect("a report serializes");
    doc["lock"] = match &produced.lock {
        Some(l) => serde_json::json!({
            "path": l.path.display().to_string(),
            "status": l.status.as_str(),
        }),
        None => serde_json::Value::Null,
    };
    doc
}
