//! `stele build`: run the pipeline, then publish its outputs (push, the
//! layout or archive, the digest file) only once all of it succeeded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::report::Reporter;
use anyhow::{bail, Context, Result};

use super::output::Pending;
use super::settings::{
    CacheArgs, JobsArgs, PackageArgs, PipelineArgs, RegistryArgs, RemoteCacheArgs,
};
use crate::attest::{PrivateKey, Selection};
use crate::oci::Platform;
use crate::pipeline::{AttestOptions, Produced};
use crate::recipe::Recipe;
use crate::registry::Reference;
use crate::sink::archive::check_replaceable;
use crate::sink::docker_archive::write_docker_archive;
use crate::sink::layout::LayoutStaging;
use crate::sink::oci_archive::write_oci_archive;
use crate::source::target::ArchiveKind;
use crate::store::BlobStore;

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
    /// Build only this platform of the recipe's (repeatable): for an OCI
    /// layout or oci-archive, a subset of them; for a docker-archive, the
    /// one platform it holds.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Vec<Platform>,
    /// Add an annotation to the image manifest (and index), as if written
    /// in the recipe's [annotations]; repeatable; replaces the recipe's
    /// value for the same key. Recorded in provenance.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub annotation: Vec<(String, String)>,
    /// Add a label to the image config, as if written in the recipe's
    /// [config] labels; repeatable; replaces the recipe's value for the
    /// same key. Recorded in provenance.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub label: Vec<(String, String)>,
    /// Also write the digest (sha256:…) to this file.
    #[arg(long)]
    pub digest_file: Option<PathBuf>,
    /// Tag written as the layout's ref name and in a docker-archive's RepoTags
    /// (default: [image] tag, else latest).
    #[arg(long)]
    pub tag: Option<String>,
    /// Attestations to attach: none, provenance, sbom or all.
    #[arg(long, default_value = "all", value_name = "WHAT")]
    pub attest: String,
    /// Sign attestations (DSSE) with this ed25519 key (`stele key generate`).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// Also push the image (and its attestations) to this registry
    /// reference, HOST[:PORT]/REPO[:TAG]; prints REF@sha256:… before the
    /// digest line.
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,
    /// Write every layer anew: neither use nor fill the layer cache (in
    /// the cache folder, beside the packages).
    #[arg(long)]
    pub no_layer_cache: bool,
    /// Print one JSON document (digest, platforms, layers, attestations,
    /// lock status, cache hits) on stdout instead of the digest line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub packages: PackageArgs,
    #[command(flatten)]
    pub remote_cache: RemoteCacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `KEY=VALUE`, the key non-empty; the value may hold `=`.
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, _)) if crate::oci::model::set_by_stele(k).is_some() => Err(format!(
            "`{k}` is a key stele sets itself ({}); choose another key",
            crate::oci::model::set_by_stele(k).unwrap_or_default()
        )),
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "`{s}` is not KEY=VALUE (e.g. org.opencontainers.image.source=https://…)"
        )),
    }
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

fn listed(recipe: &Recipe) -> String {
    recipe
        .platforms
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each `--platform` checked to be one of the recipe's.
fn check_platforms(recipe: &Recipe, wanted: &[Platform]) -> Result<()> {
    for p in wanted {
        if !recipe.platforms.contains(p) {
            bail!(
                "--platform {p} is not one of the platforms {} builds ({}); pass one of them",
                recipe.path.display(),
                listed(recipe)
            );
        }
    }
    Ok(())
}

/// The platform a docker-archive of `recipe` holds: the only one, or the
/// one `--platform` names among the recipe's.
fn docker_platform(recipe: &Recipe, wanted: &[Platform]) -> Result<Platform> {
    let listed = || listed(recipe);
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
            listed()
        ),
    }
}

/// The staging folder beside `out`, made now so that an output folder
/// that cannot be created or written is reported as that, with the fix,
/// rather than as a temp file's `Permission denied`.
fn staging_beside(out: &Path) -> Result<LayoutStaging> {
    let folder = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    LayoutStaging::beside(out).map_err(|e| {
        let kind = match &e {
            crate::sink::SinkError::Io { error, .. } => error.kind().to_string(),
            other => other.to_string(),
        };
        let what = if folder.is_dir() {
            "is not writable"
        } else {
            "cannot be created"
        };
        anyhow::anyhow!(
            "cannot write the output {}: the folder {} {what} ({kind}); fix its permissions, or pass -o with a path in a folder you can write",
            out.display(),
            folder.display(),
        )
    })
}

/// The attestations flags, checked against each other.
pub(crate) fn attest_options(attest: &str, sign_key: &Option<PathBuf>) -> Result<AttestOptions> {
    let selection: Selection = attest.parse()?;
    let key = match sign_key {
        Some(p) => Some(PrivateKey::load(p)?),
        None => None,
    };
    if key.is_some() && selection == Selection::None {
        bail!("--sign-key signs attestations, but --attest none makes none; drop one of them");
    }
    Ok(AttestOptions { selection, key })
}

/// `--push`: the image and its attestations, from the staging store.
/// Returns the pinned reference pushed.
fn push(
    reference: &Reference,
    produced: &Produced,
    store: &BlobStore,
    settings: &crate::registry::RegistrySettings,
    r: &Reporter,
) -> Result<Reference> {
    let settings = crate::registry::RegistrySettings {
        progress: r.transfers("sending"),
        ..settings.clone()
    };
    let (digest, report) = crate::registry::push_built(
        &produced.output.built,
        store,
        &produced.referrers(),
        reference,
        &settings,
        &crate::registry::PushOptions::default(),
    )
    .with_context(|| format!("pushing to {reference}"))?;
    r.info(format_args!("pushed: {report}"));
    Ok(Reference {
        digest: None,
        ..reference.clone()
    }
    .with_digest(digest))
}

pub(crate) fn cmd_build(args: BuildArgs, r: &Reporter) -> Result<ExitCode> {
    let epoch = super::settings::source_date_epoch()?;
    let mut attest = attest_options(&args.attest, &args.sign_key)?;
    let mut recipe = crate::recipe::load(&args.recipe, epoch)?;
    recipe.add_metadata(&args.annotation, &args.label);
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.recipe, &recipe.name, args.format));
    let tag = args.tag.clone().unwrap_or_else(|| recipe.tag.clone());
    if !crate::recipe::valid_tag(&tag) {
        bail!("--tag `{tag}` is not valid: use up to 128 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`");
    }
    // Decided before the build, so a wrong flag fails at once.
    let docker_platform = match args.format {
        Format::DockerArchive => {
            if attest.key.is_some() {
                bail!("--sign-key signs attestations, and a docker-archive carries none; use --format oci or oci-archive to keep signed attestations");
            }
            // `docker load` would not know attestations: none are made.
            attest.selection = Selection::None;
            Some(docker_platform(&recipe, &args.platform)?)
        }
        _ => {
            check_platforms(&recipe, &args.platform)?;
            None
        }
    };
    // Parsed before the build, so a bad reference fails at once.
    let push_to = match &args.push {
        Some(given) => {
            let mut to = Reference::parse(given)?;
            if to.digest.is_some() {
                bail!("--push {to}: push to a tag (HOST/REPO:TAG); the digest is what the build decides");
            }
            if to.tag.is_none() {
                to.tag = Some(tag.clone());
            }
            Some(to)
        }
        None => None,
    };
    match args.format {
        Format::Oci => {
            LayoutStaging::check_replaceable(&out)?;
        }
        Format::OciArchive => check_replaceable(&out, ArchiveKind::Oci)?,
        Format::DockerArchive => check_replaceable(&out, ArchiveKind::Docker)?,
    }
    // Before the cache, the network or the build: a folder we cannot
    // write fails at once, named, instead of after minutes of work. The
    // staging folder is that check; dropped unused, it removes what it
    // made.
    let staging = staging_beside(&out)?;
    let mut settings = PipelineArgs {
        cache: &args.cache,
        jobs: &args.jobs,
        packages: &args.packages,
        registry: &args.registry,
        layer_cache: !args.no_layer_cache,
        remote_cache: Some(&args.remote_cache),
    }
    .settings()?;
    settings.registry.progress = r.transfers("fetching");
    let mut building = recipe.platforms.len();
    if args.format != Format::DockerArchive {
        // A subset: the index lists only these; the lock and base still
        // answer every platform of the recipe.
        settings.only_platforms = args.platform.clone();
        if !args.platform.is_empty() {
            building = args.platform.len();
        }
    }
    r.info(format_args!(
        "building {} ({} platform{})",
        args.recipe.display(),
        building,
        if building == 1 { "" } else { "s" }
    ));
    let produced =
        crate::pipeline::produce(&recipe, &settings, &attest, staging.store(), &r.progress())?;
    let built = &produced.output.built;
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
    for image in &built.images {
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
    // The build's digest whatever the format: the same recipe pins the same value.
    let digest = built.digest().to_string();

    // Everything below publishes; the small files are staged first, so a
    // folder that cannot take them fails before anything changed.
    let mut pending = Pending::default();
    if let Some(f) = &args.digest_file {
        pending.file(f, format!("{digest}\n").as_bytes())?;
    }
    let pushed = match &push_to {
        Some(to) => Some(push(to, &produced, staging.store(), &settings.registry, r)?),
        None => None,
    };
    match args.format {
        Format::Oci => staging.commit(built, &tag, &produced.referrers())?,
        Format::OciArchive => write_oci_archive(
            &out,
            staging.store(),
            built,
            &tag,
            &produced.referrers(),
            recipe.epoch,
        )?,
        Format::DockerArchive => {
            let platform = docker_platform.expect("decided above for docker-archive");
            let image = built
                .images
                .iter()
                .find(|i| i.platform == platform)
                .expect("the build makes every recipe platform");
            write_docker_archive(
                &out,
                staging.store(),
                image,
                &recipe.name,
                &tag,
                recipe.epoch,
            )?;
            if built.images.len() > 1 {
                r.info(format_args!(
                    "the docker-archive holds the {platform} image {} of the index below",
                    image.manifest.digest
                ));
            }
        }
    }
    pending.publish()?;
    r.info(format_args!("wrote {}", out.display()));
    if args.json {
        let stats = produced.output.layers;
        let mut doc = super::report::image_json(built);
        doc["output"] = out.display().to_string().into();
        doc["format"] = format!("{:?}", args.format).to_lowercase().into();
        doc["tag"] = tag.clone().into();
        doc["pushed"] = pushed.as_ref().map(|r| r.to_string()).into();
        doc["attestations"] = super::report::attestations_json(&produced.attestations);
        doc["scripts"] = serde_json::json!(scripts);
        doc["layer_cache"] = serde_json::json!({
            "enabled": !args.no_layer_cache,
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
        return super::report::print_json(&doc).map(|()| ExitCode::SUCCESS);
    }
    let mut stdout = std::io::stdout().lock();
    if let Some(pinned) = &pushed {
        writeln!(stdout, "{pinned}")?;
    }
    writeln!(stdout, "{digest}")?;
    Ok(ExitCode::SUCCESS)
}
