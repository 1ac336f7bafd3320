//! `stele push` and `stele pull`: the CLI's half of the registry client
//! (flags, auth file locations, the cache folder).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::report::Reporter;
use anyhow::{bail, Context, Result};

use super::output::{write_atomic, Pending};
use super::settings::{
    open_cache, registry_settings, source_date_epoch, CacheArgs, JobsArgs, PackageArgs,
    PipelineArgs, RegistryArgs, RemoteCacheArgs,
};
use crate::pipeline::AttestOptions;
use crate::registry::{PushOptions, Reference, RegistrySettings};
use crate::sink::layout::LayoutStaging;
use crate::source::registry::pull_registry;
use crate::source::{Opened, RegistryAccess, Target};
use crate::store::BlobStore;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele push out/hello localhost:5000/hello:1.0\n  stele push recipe.toml localhost:5000/team/app",
    mut_arg("jobs", |a| a.help("Blobs sent at once (default 4), and for a recipe how much of its build runs at once; what the registry holds is the same for any value"))
)]
pub struct PushArgs {
    /// The image: a layout folder, oci:PATH[@sha256:…], oci-archive:PATH,
    /// a registry reference (copied), or a recipe (.toml, built first).
    pub source: String,
    /// Where to: HOST[:PORT]/REPO[:TAG] (the tag defaults to `latest`).
    pub reference: String,
    /// Another repository on the same registry that may hold some blobs:
    /// they are mounted from there instead of uploaded. Repeatable.
    #[arg(long, value_name = "REPO")]
    pub mount_from: Vec<String>,
    /// Blobs larger than this are uploaded in chunks of this many bytes
    /// (default 16 MiB); smaller ones in one request.
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
    /// Write what was sent (blobs uploaded, bytes, …) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print one JSON document (the pushed reference, digest, layers,
    /// referrers, what was sent) on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub remote_cache: RemoteCacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele pull localhost:5000/hello:1.0 -o base/hello",
    mut_arg("jobs", |a| a.help("Blobs fetched at once (default 4); the layout is the same for any value"))
)]
pub struct PullArgs {
    /// HOST[:PORT]/REPO[:TAG][@sha256:…]
    pub reference: String,
    /// The OCI layout folder to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Print one JSON document (digest, platforms, layers, referrers) on
    /// stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Opens any image a user names (layout, archive, registry reference);
/// the cache is opened only when a registry is involved.
pub(crate) fn open_target(
    target: &str,
    settings: &RegistrySettings,
    cache: &CacheArgs,
) -> Result<Opened> {
    let target = Target::parse(target)?;
    if let Target::Registry { .. } = target {
        let cache = open_cache(cache)?;
        let access = RegistryAccess {
            settings,
            cache: cache.blobs(),
        };
        return Ok(crate::source::open_on(
            &target,
            Some(&access),
            settings.jobs,
        )?);
    }
    Ok(crate::source::open_on(&target, None, settings.jobs)?)
}

/// `stele push RECIPE REF`: builds the recipe (default options, the lock
/// as `stele build` would use it) into a temp store, then pushes it with
/// its attestations. `stele build --push` takes every build flag.
fn build_for_push(
    recipe_path: &std::path::Path,
    args: &PushArgs,
    registry: RegistrySettings,
    r: &Reporter,
) -> Result<(Opened, String)> {
    let recipe = crate::recipe::load(recipe_path, source_date_epoch()?)?;
    let temp = tempfile::Builder::new()
        .prefix("stele-push-")
        .tempdir()
        .context("making a temp folder for the build")?;
    let store = BlobStore::open(temp.path())?;
    let settings = PipelineArgs {
        cache: &args.cache,
        jobs: &args.jobs,
        packages: &PackageArgs::default(),
        registry: &args.registry,
        layer_cache: true,
        remote_cache: Some(&args.remote_cache),
    }
    .settings_with(registry)?;
    r.info(format_args!("building {}", recipe_path.display()));
    let produced = crate::pipeline::produce(
        &recipe,
        &settings,
        &AttestOptions::default(),
        &store,
        &r.progress(),
    )?;
    let opened = Opened {
        name: recipe_path.display().to_string(),
        referrers: produced.referrers(),
        built: produced.output.built,
        store,
        temp: Some(temp),
    };
    Ok((opened, recipe.tag))
}

pub(crate) fn cmd_push(args: PushArgs, r: &Reporter) -> Result<ExitCode> {
    let mut reference = Reference::parse(&args.reference)?;
    if let Some(c) = args.chunk_size {
        if c == 0 {
            bail!("--chunk-size must be at least 1 byte");
        }
    }
    // One transport for the run: the source's registry (or the build's
    // mirrors and caches) and the destination share it.
    let mut settings = registry_settings(&args.registry, &args.jobs);
    let source = std::path::Path::new(&args.source);
    let (opened, source_tag) =
        if source.extension().is_some_and(|e| e == "toml") && source.is_file() {
            let (opened, tag) = build_for_push(source, &args, settings.clone(), r)?;
            (opened, Some(tag))
        } else {
            let tag = source_tag(&args.source);
            (open_target(&args.source, &settings, &args.cache)?, tag)
        };
    if reference.tag.is_none() && reference.digest.is_none() {
        // The image keeps the tag it has, as `build --push` does.
        let tag = match source_tag {
            Some(t) => {
                r.info(format_args!("no tag given: tagging `{t}`, the source's"));
                t
            }
            None => {
                r.info(format_args!(
                    "no tag given and the source has none: tagging `latest`"
                ));
                "latest".into()
            }
        };
        reference.tag = Some(tag);
    }
    r.info(format_args!(
        "pushing {} ({}) to {}",
        opened.name,
        opened.digest(),
        reference
    ));
    let mut mount_from = args.mount_from.clone();
    // A copy within one registry: its blobs are mounted from the source
    // repository, as crane and skopeo do, instead of travelling twice.
    if let Ok(Target::Registry { reference: source }) = Target::parse(&args.source) {
        if let Ok(source) = Reference::parse(&source) {
            if source.registry == reference.registry && !mount_from.contains(&source.repository) {
                mount_from.push(source.repository);
            }
        }
    }
    let options = PushOptions { mount_from };
    settings.progress = r.transfers("sending");
    if let Some(c) = args.chunk_size {
        settings.chunk_size = c;
    }
    let mut pending = Pending::default();
    if let Some(path) = &args.report {
        // Staged now so an unwritable folder fails before the push.
        pending.file(path, b"")?;
    }
    let (digest, report) =
        crate::sink::registry::push_opened(&opened, &reference, &settings, &options)
            .with_context(|| format!("pushing {} to {reference}", opened.name))?;
    r.info(format_args!("pushed: {report}"));
    drop(pending);
    if let Some(path) = &args.report {
        let json = serde_json::to_vec(&report).expect("a report always serializes");
        write_atomic(path, &json)?;
    }
    let pinned = Reference {
        digest: None,
        ..reference
    }
    .with_digest(digest);
    if args.json {
        let mut doc = super::report::image_json(&opened.built);
        doc["pushed"] = pinned.to_string().into();
        doc["referrers"] = super::report::referrers_json(&opened.referrers);
        doc["report"] = serde_json::to_value(&report).expect("a report always serializes");
        super::report::print_json(&doc)?;
    } else {
        writeln!(std::io::stdout().lock(), "{pinned}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cmd_pull(args: PullArgs, r: &Reporter) -> Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let cache = open_cache(&args.cache)?;
    let mut settings = registry_settings(&args.registry, &args.jobs);
    settings.progress = r.transfers("fetching");
    r.info(format_args!("pulling {reference}"));
    let (opened, blobs) = pull_registry(&reference, &settings, cache.blobs())
        .with_context(|| format!("pulling {reference}"))?;
    let staging = LayoutStaging::new(&args.output)?;
    for digest in &blobs {
        staging
            .store()
            .copy_from(cache.blobs(), digest)
            .with_context(|| format!("copying {digest} into {}", args.output.display()))?;
    }
    let tag = reference.tag.as_deref().unwrap_or("latest");
    staging.commit(&opened.built, tag, &opened.referrers)?;
    r.info(format_args!("wrote {}", args.output.display()));
    if args.json {
        let mut doc = super::report::image_json(&opened.built);
        doc["output"] = args.output.display().to_string().into();
        doc["tag"] = tag.into();
        doc["referrers"] = super::report::referrers_json(&opened.referrers);
        super::report::print_json(&doc)?;
    } else {
        writeln!(std::io::stdout().lock(), "{}", opened.digest())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The tag a source image carries: the ref name it was chosen by or, in
/// a layout holding one image, that image's ref name; a registry
/// reference's tag. `None` when it has none or is named by digest.
fn source_tag(source: &str) -> Option<String> {
    use crate::source::layout::Selector;
    match Target::parse(source).ok()? {
        Target::Registry { reference } => Reference::parse(&reference).ok()?.tag,
        Target::Layout {
            selector: Selector::RefName(n),
            ..
        }
        | Target::Archive {
            selector: Selector::RefName(n),
            ..
        } => Some(n),
        Target::Layout {
            path,
            selector: Selector::Only,
        } => layout_ref_name(&path),
        _ => None,
    }
}

/// The ref name of the image a layout's index.json lists first (our
/// layouts list the image first, then its attestations).
fn layout_ref_name(dir: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join("index.json"))
        .ok()?
        .take(crate::oci::media::MANIFEST_LIMIT)
        .read_to_end(&mut bytes)
        .ok()?;
    let index: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    index["manifests"][0]["annotations"][crate::oci::model::ANNOTATION_REF_NAME]
        .as_str()
        .filter(|t| crate::recipe::valid_tag(t))
        .map(str::to_string)
}
