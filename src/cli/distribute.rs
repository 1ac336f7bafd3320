//! `stele push` and `stele pull`: the CLI's half of the registry client
//! (flags, auth file locations, the cache folder).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::registry::{PushOptions, Reference, RegistrySettings};
use crate::sink::layout::LayoutStaging;
use crate::source::registry::pull_registry;
use crate::source::{Opened, RegistryAccess, Target};
use crate::store::BlobStore;

#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Allow plain HTTP (and a plain-HTTP token service) to any registry;
    /// localhost and 127.0.0.1 always allow it.
    #[arg(long)]
    pub insecure: bool,
    /// Read credentials from this auth file first (docker/containers
    /// format), before $REGISTRY_AUTH_FILE and the usual locations.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
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
    /// Content-addressed download cache, for a registry SOURCE (default
    /// $XDG_CACHE_HOME/stele, else ~/.cache/stele).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// HOST[:PORT]/REPO[:TAG][@sha256:…]
    pub reference: String,
    /// The OCI layout folder to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Content-addressed download cache (default $XDG_CACHE_HOME/stele,
    /// else ~/.cache/stele).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where podman, skopeo and docker keep credentials, in the order they
/// are consulted: the flag, `$REGISTRY_AUTH_FILE`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `~/.config/containers/auth.json`, `~/.docker/config.json`.
pub fn auth_files(flag: &Option<PathBuf>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files.extend(flag.clone());
    files.extend(env_path("REGISTRY_AUTH_FILE"));
    if let Some(run) = env_path("XDG_RUNTIME_DIR") {
        files.push(run.join("containers/auth.json"));
    }
    if let Some(home) = env_path("HOME") {
        files.push(home.join(".config/containers/auth.json"));
        files.push(home.join(".docker/config.json"));
    }
    files
}

pub fn registry_settings(args: &RegistryArgs) -> RegistrySettings {
    RegistrySettings {
        auth_files: auth_files(&args.authfile),
        insecure: args.insecure,
        ..RegistrySettings::default()
    }
}

pub fn open_cache(flag: &Option<PathBuf>) -> Result<BlobStore> {
    let dir = super::packages::cache_dir(flag)?;
    BlobStore::open(&dir).with_context(|| format!("opening the cache {}", dir.display()))
}

/// Opens any image a user names (layout, archive, registry reference);
/// the cache is opened only when a registry is involved.
pub fn open_target(target: &str, args: &RegistryArgs, cache: &Option<PathBuf>) -> Result<Opened> {
    let target = Target::parse(target)?;
    if let Target::Registry { .. } = target {
        let cache = open_cache(cache)?;
        let settings = registry_settings(args);
        let access = RegistryAccess {
            settings: &settings,
            cache: &cache,
        };
        return Ok(crate::source::open(&target, Some(&access))?);
    }
    Ok(crate::source::open(&target, None)?)
}

/// `stele push RECIPE REF`: builds the recipe (default options, the lock
/// as `stele build` would use it) into a temp store, then pushes it with
/// its attestations. `stele build --push` takes every build flag.
fn build_for_push(recipe_path: &std::path::Path, args: &PushArgs) -> Result<Opened> {
    let recipe = crate::recipe::load(recipe_path, super::source_date_epoch()?)?;
    let temp = tempfile::Builder::new()
        .prefix("stele-push-")
        .tempdir()
        .context("making a temp folder for the build")?;
    let store = BlobStore::open(temp.path())?;
    let opts = super::build::BuildOptions {
        selection: crate::attest::Selection::All,
        key: None,
        packages: super::packages::PackageArgs {
            cache_dir: args.cache_dir.clone(),
            ..Default::default()
        },
        layer_cache: true,
        registry: registry_settings(&args.registry),
    };
    eprintln!("building {}", recipe_path.display());
    let produced = super::build::produce(&recipe, &opts, &store)?;
    Ok(Opened {
        name: recipe_path.display().to_string(),
        referrers: produced.referrers(),
        built: produced.output.built,
        store,
        temp: Some(temp),
    })
}

pub fn cmd_push(args: PushArgs) -> Result<ExitCode> {
    let mut reference = Reference::parse(&args.reference)?;
    if reference.tag.is_none() && reference.digest.is_none() {
        eprintln!("no tag given: tagging `latest`");
        reference.tag = Some("latest".into());
    }
    let source = std::path::Path::new(&args.source);
    let opened = if source.extension().is_some_and(|e| e == "toml") && source.is_file() {
        build_for_push(source, &args)?
    } else {
        open_target(&args.source, &args.registry, &args.cache_dir)?
    };
    eprintln!(
        "pushing {} ({}) to {}",
        opened.name,
        opened.digest(),
        reference
    );
    let options = PushOptions {
        mount_from: args.mount_from.clone(),
    };
    let mut settings = registry_settings(&args.registry);
    if let Some(c) = args.chunk_size {
        if c == 0 {
            bail!("--chunk-size must be at least 1 byte");
        }
        settings.chunk_size = c;
    }
    let (digest, report) =
        crate::sink::registry::push_opened(&opened, &reference, &settings, &options)
            .with_context(|| format!("pushing {} to {reference}", opened.name))?;
    eprintln!("pushed: {report}");
    if let Some(path) = &args.report {
        let json = serde_json::to_vec(&report).expect("a report always serializes");
        super::write_atomic(path, &json)?;
    }
    let pinned = Reference {
        digest: None,
        ..reference
    }
    .with_digest(digest);
    writeln!(std::io::stdout().lock(), "{pinned}")?;
    Ok(ExitCode::SUCCESS)
}

pub fn cmd_pull(args: PullArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let cache = open_cache(&args.cache_dir)?;
    let settings = registry_settings(&args.registry);
    eprintln!("pulling {reference}");
    let (opened, blobs) = pull_registry(&reference, &settings, &cache)
        .with_context(|| format!("pulling {reference}"))?;
    let staging = LayoutStaging::new(&args.output)?;
    for digest in &blobs {
        staging
            .store()
            .copy_from(&cache, digest)
            .with_context(|| format!("copying {digest} into {}", args.output.display()))?;
    }
    let tag = reference.tag.as_deref().unwrap_or("latest");
    staging.commit(&opened.built, tag, &opened.referrers)?;
    eprintln!("wrote {}", args.output.display());
    writeln!(std::io::stdout().lock(), "{}", opened.digest())?;
    Ok(ExitCode::SUCCESS)
}
