//! `stele build`: open the base, build, attest, write the output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::packages::PackageArgs;
use crate::attest::{self, AttestInput, Attestation, PrivateKey, Selection};
use crate::oci::Platform;
use crate::recipe::{BaseSpec, Recipe};
use crate::sink::archive::check_replaceable;
use crate::sink::docker_archive::write_docker_archive;
use crate::sink::layout::LayoutStaging;
use crate::sink::oci_archive::write_oci_archive;
use crate::source::layout::{open_layout, Selector};
use crate::source::target::ArchiveKind;
use crate::source::Opened;
use crate::store::BlobStore;

#[derive(clap::Args, Debug)]
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
    /// The platform a docker-archive holds, for multi-platform recipes.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
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
    #[command(flatten)]
    pub packages: PackageArgs,
    #[command(flatten)]
    pub registry: super::distribute::RegistryArgs,
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

/// The builder id provenance names: this command-line tool on a machine
/// the attestation does not identify further.
pub fn builder_id() -> String {
    format!("{}/builders/cli", crate::attest::URI_BASE)
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
fn docker_platform(recipe: &Recipe, wanted: Option<&Platform>) -> Result<Platform> {
    let listed = || {
        recipe
            .platforms
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (wanted, recipe.platforms.as_slice()) {
        (Some(p), platforms) if platforms.contains(p) => Ok(p.clone()),
        (Some(p), _) => bail!(
            "--platform {p} is not one of the recipe's platforms ({}); pass one of them",
            listed()
        ),
        (None, [only]) => Ok(only.clone()),
        (None, _) => bail!(
            "a docker-archive holds one platform and {} builds {} ({}); pass --platform with one of them",
            recipe.path.display(),
            recipe.platforms.len(),
            listed()
        ),
    }
}

/// Opens the recipe's `[base]`, checking it is the image the recipe pins.
/// A registry base is pulled through the cache: once cached, later builds
/// make no request at all.
pub fn open_base(recipe: &Recipe, opts: &BuildOptions) -> Result<Option<Opened>> {
    match &recipe.base {
        BaseSpec::Scratch => Ok(None),
        BaseSpec::Layout {
            path, digest, loc, ..
        } => {
            let opened = open_layout(path, &Selector::Digest(digest.clone()))
                .with_context(|| format!("{loc}: opening the base layout"))?;
            Ok(Some(opened))
        }
        BaseSpec::Image {
            reference,
            digest,
            loc,
        } => {
            let pinned = crate::registry::Reference::parse(&format!("{reference}@{digest}"))
                .with_context(|| format!("{loc}: the base image reference"))?;
            let cache = super::distribute::open_cache(&opts.packages.cache_dir)?;
            if opts.packages.offline && !cache.contains(digest) {
                bail!("{loc}: --offline, and the base image {reference}@{digest} is not in the cache {}; build once online (or `stele pull` it) first", cache.root().display());
            }
            let opened = crate::source::registry::open_registry(&pinned, &opts.registry, &cache)
                .with_context(|| format!("{loc}: pulling the base image"))?;
            Ok(Some(opened))
        }
    }
}

/// This executable, as the layer cache's keys name it: its version and
/// the size and modification time of its file, so a rebuilt stele never
/// takes layers another build of it wrote.
fn builder_identity() -> String {
    let meta = std::env::current_exe().and_then(std::fs::metadata);
    let (size, mtime) = match meta {
        Ok(m) => {
            use std::os::unix::fs::MetadataExt;
            (m.size(), format!("{}.{:09}", m.mtime(), m.mtime_nsec()))
        }
        // Unknown: a key no other process shares, so nothing is reused.
        Err(_) => (0, format!("pid {}", std::process::id())),
    };
    format!("stele {} {size} {mtime}", env!("CARGO_PKG_VERSION"))
}

/// Everything `stele build` decided from its flags, for `produce`.
pub struct BuildOptions {
    pub selection: Selection,
    pub key: Option<PrivateKey>,
    pub packages: PackageArgs,
    /// Reuse and record layers in the cache folder's layer cache.
    pub layer_cache: bool,
    /// For registry base images.
    pub registry: crate::registry::RegistrySettings,
}

impl BuildOptions {
    pub fn from_args(args: &BuildArgs) -> Result<BuildOptions> {
        let selection: Selection = args.attest.parse()?;
        let key = match &args.sign_key {
            Some(p) => Some(PrivateKey::load(p)?),
            None => None,
        };
        if key.is_some() && selection == Selection::None {
            bail!("--sign-key signs attestations, but --attest none makes none; drop one of them");
        }
        Ok(BuildOptions {
            selection,
            key,
            packages: args.packages.clone(),
            layer_cache: !args.no_layer_cache,
            registry: super::distribute::registry_settings(&args.registry),
        })
    }
}

/// A build and its attestations, every blob in the store it was given.
pub struct Produced {
    pub output: crate::BuildOutput,
    pub attestations: Vec<Attestation>,
}

impl Produced {
    /// The attestations as index.json and referrers lists name them.
    pub fn referrers(&self) -> Vec<oci_spec::image::Descriptor> {
        self.attestations
            .iter()
            .map(|a| a.index_descriptor())
            .collect()
    }
}

/// Opens the base, builds `recipe` into `store` and attests the result:
/// what `build` writes and what `verify --rebuild` compares.
pub fn produce(recipe: &Recipe, opts: &BuildOptions, store: &BlobStore) -> Result<Produced> {
    let base = open_base(recipe, opts)?;
    let prepared = super::packages::prepare(recipe, &opts.packages)?;
    let inputs = crate::BuildInputs {
        base: base.as_ref(),
        packages: prepared.as_ref().map(|p| crate::build::PackageInputs {
            lock: &p.lock,
            lock_path: &p.lock_path,
            debs: &p.debs,
        }),
    };
    let layer_cache = if opts.layer_cache {
        let dir = super::packages::cache_dir(&opts.packages.cache_dir)?;
        let cache =
            crate::layer::LayerCache::open(&dir, &builder_identity()).with_context(|| {
                format!(
                    "opening the layer cache in {}; pass --no-layer-cache to build without it",
                    dir.display()
                )
            })?;
        Some(cache)
    } else {
        None
    };
    let settings = crate::BuildSettings {
        jobs: opts.packages.work_jobs(),
        layer_cache,
    };
    let output = crate::build(recipe, &inputs, &settings, store)?;
    let stats = output.layers;
    if opts.layer_cache {
        eprintln!(
            "layer cache: hits {}, misses {}",
            stats.reused, stats.written
        );
    } else {
        eprintln!("layer cache: off, {} layers written", stats.written);
    }
    let attestations = if opts.selection == Selection::None {
        Vec::new()
    } else {
        let input = AttestInput {
            built: &output.built,
            recipe,
            lock: prepared.as_ref().map(|p| &p.lock),
            packages: output.packages.clone(),
            base: output.base.clone(),
            builder_id: builder_id(),
            stele_version: env!("CARGO_PKG_VERSION").into(),
            invocation_started: None,
            invocation_finished: None,
        };
        attest::attest(&input, opts.selection, opts.key.as_ref(), store)?
    };
    Ok(Produced {
        output,
        attestations,
    })
}

/// `--push`: the image and its attestations, from the staging store,
/// before the output is written (the store moves when it is committed).
fn push(
    to: &Option<crate::registry::Reference>,
    produced: &Produced,
    store: &BlobStore,
    args: &BuildArgs,
) -> Result<()> {
    let Some(reference) = to else { return Ok(()) };
    let settings = super::distribute::registry_settings(&args.registry);
    let (digest, report) = crate::registry::push_built(
        &produced.output.built,
        store,
        &produced.referrers(),
        reference,
        &settings,
        &crate::registry::PushOptions::default(),
    )
    .with_context(|| format!("pushing to {reference}"))?;
    eprintln!("pushed: {report}");
    let pinned = crate::registry::Reference {
        digest: None,
        ..reference.clone()
    }
    .with_digest(digest);
    writeln!(std::io::stdout().lock(), "{pinned}")?;
    Ok(())
}

pub fn cmd_build(args: BuildArgs) -> Result<ExitCode> {
    let epoch = super::source_date_epoch()?;
    let mut opts = BuildOptions::from_args(&args)?;
    let recipe = crate::recipe::load(&args.recipe, epoch)?;
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
            if opts.key.is_some() {
                bail!("--sign-key signs attestations, and a docker-archive carries none; use --format oci or oci-archive to keep signed attestations");
            }
            // `docker load` would not know attestations: none are made.
            opts.selection = Selection::None;
            Some(docker_platform(&recipe, args.platform.as_ref())?)
        }
        _ if args.platform.is_some() => {
            bail!("--platform chooses the platform of a docker-archive; an OCI layout or oci-archive holds every platform the recipe builds")
        }
        _ => None,
    };
    // Parsed before the build, so a bad reference fails at once.
    let push_to = match &args.push {
        Some(r) => {
            let mut r = crate::registry::Reference::parse(r)?;
            if r.digest.is_some() {
                bail!("--push {r}: push to a tag (HOST/REPO:TAG); the digest is what the build decides");
            }
            if r.tag.is_none() {
                r.tag = Some(tag.clone());
            }
            Some(r)
        }
        None => None,
    };
    eprintln!(
        "building {} ({} platform{})",
        args.recipe.display(),
        recipe.platforms.len(),
        if recipe.platforms.len() == 1 { "" } else { "s" }
    );
    let built = match args.format {
        Format::Oci => {
            let staging = LayoutStaging::new(&out)?;
            let produced = produce(&recipe, &opts, staging.store())?;
            push(&push_to, &produced, staging.store(), &args)?;
            staging.commit(&produced.output.built, &tag, &produced.referrers())?;
            produced.output.built
        }
        Format::OciArchive => {
            check_replaceable(&out, ArchiveKind::Oci)?;
            let staging = LayoutStaging::beside(&out)?;
            let produced = produce(&recipe, &opts, staging.store())?;
            push(&push_to, &produced, staging.store(), &args)?;
            let built = produced.output.built.clone();
            write_oci_archive(
                &out,
                staging.store(),
                &built,
                &tag,
                &produced.referrers(),
                recipe.epoch,
            )?;
            built
        }
        Format::DockerArchive => {
            check_replaceable(&out, ArchiveKind::Docker)?;
            let platform = docker_platform.expect("decided above for docker-archive");
            let staging = LayoutStaging::beside(&out)?;
            let produced = produce(&recipe, &opts, staging.store())?;
            push(&push_to, &produced, staging.store(), &args)?;
            let built = produced.output.built;
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
                eprintln!(
                    "the docker-archive holds the {platform} image {} of the index below",
                    image.manifest.digest
                );
            }
            built
        }
    };
    // The build's digest whatever the format: the same recipe pins the same value.
    let digest = built.digest().to_string();
    if let Some(f) = &args.digest_file {
        super::write_atomic(f, format!("{digest}\n").as_bytes())?;
    }
    eprintln!("wrote {}", out.display());
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{digest}")?;
    Ok(ExitCode::SUCCESS)
}
