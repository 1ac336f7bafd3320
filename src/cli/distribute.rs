//! `stele push` and `stele pull`: an image from a source to a sink. Flags
//! become `PushSettings` or `PullSettings` once (both sides' registry
//! settings, the tag, what may be mounted); the commands open the source
//! and write it through `sink`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::output::{write_atomic, Pending};
use super::report::Reporter;
use super::settings::resolved::ReadInto;
use super::settings::{
    registry_transport, sided_registry_settings, sided_transport, BuildOptions, CacheArgs,
    CacheFolder, JobsArgs, MadeFor, Making, Reader, RegistryArgs, SideArgs,
};
use crate::registry::{Progress, PushOptions, Reference, RegistrySettings};
use crate::sink::{Destination, Output, Stored, WriteOptions, Written};
use crate::source::registry::pull_registry;
use crate::source::{Opened, Target};
use crate::store::BlobStore;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele push out/hello localhost:5000/hello:1.0\n  stele push recipe.toml localhost:5000/team/app --locked --sign-key ci.key",
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
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub sides: SideArgs,
    /// How a recipe SOURCE is built: the options of `stele build`.
    #[command(flatten, next_help_heading = "Build options (SOURCE a recipe)")]
    pub options: BuildOptions,
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

/// Everything `stele push` does, decided before any work.
pub(crate) struct PushSettings {
    pub source: PushSource,
    /// How an image source is read (a registry source's side).
    pub reader: Reader,
    /// The registry, its tag decided: the one given, else the source's,
    /// else `latest`.
    pub destination: Destination,
    /// How the tag was chosen, for the message.
    pub tag_choice: TagChoice,
    pub report: Option<PathBuf>,
    pub json: bool,
}

/// What `stele push` sends.
pub(crate) enum PushSource {
    /// A recipe, built first (into a temp store) as `stele build` would
    /// with the same options.
    // Boxed: a recipe's settings are large beside a name.
    Recipe(Box<Making>),
    /// An image a user names: a layout, an archive or a registry image,
    /// read as `PushSettings::reader` says.
    Image(String),
}

/// How a push's tag was chosen.
pub(crate) enum TagChoice {
    /// The reference names a tag or a digest.
    Given,
    /// The source's own tag.
    Source(String),
    /// Neither had one.
    Latest,
}

impl PushSettings {
    pub fn resolve(args: PushArgs, r: &Reporter) -> Result<PushSettings> {
        let mut reference = registry_destination(&args.reference)?;
        if args.chunk_size == Some(0) {
            bail!("--chunk-size must be at least 1 byte");
        }
        // Each side's registry gets its side's TLS and plain-HTTP flags.
        let source_registry = match Target::parse(&args.source) {
            Ok(Target::Registry { reference }) => {
                Reference::parse(&reference).ok().map(|r| r.registry)
            }
            _ => None,
        };
        if args.sides.any_source() && source_registry.is_none() {
            bail!(
                "--src-tls-verify, --src-cert-dir and --src-insecure are for a registry source, and `{}` is not one",
                args.source
            );
        }
        let destination_registry = reference.registry.clone();
        let mut sides = vec![args.sides.destination(&destination_registry)];
        if let Some(registry) = &source_registry {
            sides.push(args.sides.source(registry));
        }
        let transport = sided_transport(&args.registry, &sides)?;
        // The source side: how the image is read or built.
        let reading = sided_registry_settings(
            &args.registry,
            &sides,
            &args.jobs,
            &transport,
            Progress::default(),
        )?;
        let path = Path::new(&args.source);
        let reader = Reader::new(reading, CacheFolder::resolve(&args.cache))
            .verbose(r.level >= super::report::Level::Verbose);
        let (source, source_tag) = if path.extension().is_some_and(|e| e == "toml")
            && path.is_file()
        {
            let making = Making::from_options(
                path,
                &args.options,
                MadeFor::Oci,
                Some(reference.to_string()),
                &args.cache,
                &args.jobs,
                reader.registry.clone(),
                &transport,
            )?;
            let tag = making.recipe.tag.clone();
            (PushSource::Recipe(Box::new(making)), Some(tag))
        } else {
            let given = args.options.given();
            if !given.is_empty() {
                bail!(
                        "{} say{} how a recipe is built, and `{}` is an image, pushed as it is: drop {}, or push the recipe (a .toml file) to build it",
                        given.join(", "),
                        if given.len() == 1 { "s" } else { "" },
                        args.source,
                        if given.len() == 1 { "it" } else { "them" }
                    );
            }
            (
                PushSource::Image(args.source.clone()),
                source_tag(&args.source),
            )
        };
        // The image keeps the tag it has, as `build --push` does.
        let tag_choice = match (&reference.tag, &reference.digest, source_tag) {
            (None, None, Some(t)) => TagChoice::Source(t),
            (None, None, None) => TagChoice::Latest,
            _ => TagChoice::Given,
        };
        match &tag_choice {
            TagChoice::Source(t) => reference.tag = Some(t.clone()),
            TagChoice::Latest => reference.tag = Some("latest".into()),
            TagChoice::Given => {}
        }
        let mut mount_from = args.mount_from.clone();
        // A copy within one registry: its blobs are mounted from the source
        // repository, as crane and skopeo do, instead of travelling twice.
        if let Ok(Target::Registry { reference: source }) = Target::parse(&args.source) {
            if let Ok(source) = Reference::parse(&source) {
                if source.registry == reference.registry && !mount_from.contains(&source.repository)
                {
                    mount_from.push(source.repository);
                }
            }
        }
        // The destination side.
        let sending = sided_registry_settings(
            &args.registry,
            &sides,
            &args.jobs,
            &transport,
            r.transfers("sending"),
        )?;
        let destination = Destination {
            target: crate::sink::Target::Registry { reference },
            options: WriteOptions {
                registry: RegistrySettings {
                    chunk_size: args.chunk_size.unwrap_or(sending.chunk_size),
                    ..sending
                },
                push: PushOptions {
                    mount_from,
                    ..PushOptions::default()
                },
                ..WriteOptions::default()
            },
        };
        Ok(PushSettings {
            source,
            reader,
            destination,
            tag_choice,
            report: args.report,
            json: args.json,
        })
    }

    fn reference(&self) -> &Reference {
        match &self.destination.target {
            crate::sink::Target::Registry { reference } => reference,
            _ => unreachable!("push sends to a registry"),
        }
    }
}

/// `stele push`'s destination: a sink target that names a registry; a
/// layout folder or an archive is refused, with where they are written.
fn registry_destination(words: &str) -> Result<Reference> {
    match crate::sink::Target::parse(words)? {
        crate::sink::Target::Registry { reference } => Ok(reference),
        other => bail!(
            "`{words}` is {}, and `stele push` sends to a registry: give HOST[:PORT]/REPO[:TAG] (`stele build -o`/`--format` and `stele pull -o` write layouts and archives)",
            other.noun()
        ),
    }
}

/// Everything `stele pull` does, decided before any work.
pub(crate) struct PullSettings {
    pub reference: Reference,
    /// The layout folder, named by the reference's tag (else `latest`).
    pub output: Destination,
    pub reader: Reader,
    pub json: bool,
}

impl PullSettings {
    pub fn resolve(args: PullArgs, r: &Reporter) -> Result<PullSettings> {
        let reference = Reference::parse(&args.reference)?;
        let transport = registry_transport(&args.registry)?;
        let reader = Reader::resolve(
            &args.registry,
            &args.jobs,
            &args.cache,
            &transport,
            r.transfers("fetching"),
        )?
        .verbose(r.level >= super::report::Level::Verbose);
        let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
        let output = Destination {
            target: crate::sink::Target::Layout {
                path: args.output,
                tag: Some(tag),
            },
            options: WriteOptions::default(),
        };
        Ok(PullSettings {
            reference,
            output,
            reader,
            json: args.json,
        })
    }
}

/// `stele push RECIPE`: builds the recipe into a temp store, then it is
/// pushed with its attestations like any opened image.
fn build_for_push(making: &Making, r: &Reporter) -> Result<Opened> {
    let temp = tempfile::Builder::new()
        .prefix("stele-push-")
        .tempdir()
        .context("making a temp folder for the build")?;
    let store = BlobStore::open(temp.path())?;
    r.info(format_args!("building {}", making.recipe.path.display()));
    let produced = making.produce(&store, &r.progress())?;
    Ok(Opened {
        name: making.recipe.path.display().to_string(),
        referrers: produced.referrers(),
        built: produced.output.built,
        store,
        temp: Some(temp),
        warnings: Vec::new(),
    })
}

pub(crate) fn cmd_push(args: PushArgs, r: &Reporter) -> Result<ExitCode> {
    let settings = PushSettings::resolve(args, r)?;
    // The destination is checked (reachable, the credentials taken,
    // pushing allowed) before the work that takes time: a build, or a
    // pull from another registry. A local image is read first: what is
    // wrong with it is named whatever the destination says.
    let check = |before: &str| {
        Output::prepare(settings.destination.clone())
            .with_context(|| format!("checking {} before {before}", settings.reference()))
    };
    // The layers of an image checked before (a build's, a push's) are not
    // uncompressed again: said in one line.
    let open_reporting = |words: &str| -> Result<Opened> {
        let (opened, checked) = settings.reader.open_checking(words, true)?;
        if let Some(checked) = checked {
            r.info(format_args!("{checked}"));
        }
        Ok(opened)
    };
    let (output, opened) = match &settings.source {
        PushSource::Recipe(making) => {
            let output = check("the build")?;
            (output, build_for_push(making, r)?)
        }
        PushSource::Image(words) if matches!(Target::parse(words), Ok(Target::Registry { .. })) => {
            let output = check("pulling the image")?;
            (output, open_reporting(words)?)
        }
        PushSource::Image(words) => {
            let opened = open_reporting(words)?;
            (check("sending the image")?, opened)
        }
    };
    for w in &opened.warnings {
        r.info(format_args!("warning: {w}"));
    }
    match &settings.tag_choice {
        TagChoice::Source(t) => r.info(format_args!("no tag given: tagging `{t}`, the source's")),
        TagChoice::Latest => r.info(format_args!(
            "no tag given and the source has none: tagging `latest`"
        )),
        TagChoice::Given => {}
    }
    let reference = settings.reference();
    r.info(format_args!(
        "pushing {} ({}) to {}",
        opened.name,
        opened.digest(),
        reference
    ));
    let mut pending = Pending::default();
    if let Some(path) = &settings.report {
        // Staged now so an unwritable folder fails before the push.
        pending.file(path, b"")?;
    }
    let written = output
        .write(Stored::from(&opened))
        .with_context(|| format!("pushing {} to {reference}", opened.name))?;
    let Written::Pushed { pinned, report } = written else {
        unreachable!("push sends to a registry")
    };
    r.info(format_args!("pushed: {report}"));
    for w in &report.warnings {
        r.info(format_args!("warning: {w}"));
    }
    drop(pending);
    if let Some(path) = &settings.report {
        let json = serde_json::to_vec(&report).expect("a report always serializes");
        write_atomic(path, &json)?;
    }
    if settings.json {
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
    let settings = PullSettings::resolve(args, r)?;
    let reference = &settings.reference;
    // Before the network: an output that may not be replaced, or whose
    // folder cannot be written, fails at once.
    let output = Output::prepare(settings.output.clone())?;
    let into = settings.reader.read_into()?;
    r.info(format_args!("pulling {reference}"));
    let (opened, checked) = match &into {
        ReadInto::Cache(cache) => {
            let (opened, checked) = pull_checked(&settings, cache, &output)
                .with_context(|| format!("pulling {reference}"))?;
            (opened, Some(checked))
        }
        ReadInto::Scratch(store) => {
            let opened = pull_registry(reference, &settings.reader.registry, store)
                .and_then(|u| u.check(settings.reader.registry.jobs))
                .with_context(|| format!("pulling {reference}"))?;
            (opened, None)
        }
    };
    if let Some(checked) = checked {
        r.info(format_args!("{checked}"));
    }
    for w in &opened.warnings {
        r.info(format_args!("warning: {w}"));
    }
    let Written::File { path } = output.write(Stored::from(&opened))? else {
        unreachable!("pull writes a layout")
    };
    r.info(format_args!("wrote {}", path.display()));
    if settings.json {
        let tag = match &settings.output.target {
            crate::sink::Target::Layout { tag, .. } => tag.clone(),
            _ => None,
        };
        let mut doc = super::report::image_json(&opened.built);
        doc["output"] = path.display().to_string().into();
        doc["tag"] = tag.into();
        doc["referrers"] = super::report::referrers_json(&opened.referrers);
        super::report::print_json(&doc)?;
    } else {
        writeln!(std::io::stdout().lock(), "{}", opened.digest())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `stele pull`'s work before the output is published: the image pulled
/// into `cache` while a thread beside the download uncompresses each
/// layer as it lands (`CheckedLayers::check_while`), then every layer
/// checked while the blobs are copied into the output's staging folder.
fn pull_checked(
    settings: &PullSettings,
    cache: &crate::cache::Cache,
    output: &Output,
) -> Result<(Opened, crate::cache::CheckReport)> {
    let memo = cache.checked();
    let (pulled, landed) = memo.check_while(cache.blobs(), || {
        pull_registry(
            &settings.reference,
            &settings.reader.registry,
            cache.blobs(),
        )
    });
    let unchecked = pulled?;
    let image = unchecked.image();
    let (built, referrers) = (image.built.clone(), image.referrers.clone());
    let jobs = settings.reader.registry.jobs;
    let (checked, staged) = std::thread::scope(|s| {
        let staging = s.spawn(|| {
            output.stage(Stored {
                built: &built,
                store: cache.blobs(),
                referrers: &referrers,
            })
        });
        let checked = memo.check_landed(unchecked, jobs, landed);
        (checked, staging.join().expect("staging does not panic"))
    });
    let checked = checked?;
    staged?;
    Ok(checked)
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
