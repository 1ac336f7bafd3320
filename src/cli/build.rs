//! `stele build`: open the base, build, attest, write the output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::attest::{self, AttestInput, Attestation, PrivateKey, Selection};
use crate::recipe::{BaseSpec, Recipe};
use crate::sink::layout::LayoutStaging;
use crate::source::layout::{open_layout, Selector};
use crate::source::Opened;
use crate::store::BlobStore;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The recipe (TOML).
    pub recipe: PathBuf,
    /// Output path (default: out/<image name> beside the recipe).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Also write the digest (sha256:…) to this file.
    #[arg(long)]
    pub digest_file: Option<PathBuf>,
    /// Tag written as the layout's ref name (default: [image] tag, else latest).
    #[arg(long)]
    pub tag: Option<String>,
    /// Attestations to attach: none, provenance, sbom or all.
    #[arg(long, default_value = "all", value_name = "WHAT")]
    pub attest: String,
    /// Sign attestations (DSSE) with this ed25519 key (`stele key generate`).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
}

/// The builder id provenance names: this command-line tool on a machine
/// the attestation does not identify further.
pub fn builder_id() -> String {
    format!("{}/builders/cli", crate::attest::URI_BASE)
}

fn default_output(recipe_path: &Path, name: &str) -> PathBuf {
    let dir = recipe_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join("out").join(name)
}

/// Opens the recipe's `[base]`, checking it is the image the recipe pins.
pub fn open_base(recipe: &Recipe) -> Result<Option<Opened>> {
    match &recipe.base {
        BaseSpec::Scratch => Ok(None),
        BaseSpec::Layout {
            path, digest, loc, ..
        } => {
            let opened = open_layout(path, &Selector::Digest(digest.clone()))
                .with_context(|| format!("{loc}: opening the base layout"))?;
            Ok(Some(opened))
        }
        BaseSpec::Image { loc, .. } => {
            bail!("{loc}: registry base images are not supported by this build of stele yet; use `layout = \"path@sha256:…\"`")
        }
    }
}

/// Everything `stele build` decided from its flags, for `produce`.
pub struct BuildOptions {
    pub selection: Selection,
    pub key: Option<PrivateKey>,
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
        Ok(BuildOptions { selection, key })
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
    let base = open_base(recipe)?;
    let inputs = crate::BuildInputs {
        base: base.as_ref(),
    };
    let output = crate::build(recipe, &inputs, &crate::BuildSettings::default(), store)?;
    let attestations = if opts.selection == Selection::None {
        Vec::new()
    } else {
        let input = AttestInput {
            built: &output.built,
            recipe,
            lock: None,
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

pub fn cmd_build(args: BuildArgs) -> Result<ExitCode> {
    let epoch = super::source_date_epoch()?;
    let opts = BuildOptions::from_args(&args)?;
    let recipe = crate::recipe::load(&args.recipe, epoch)?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.recipe, &recipe.name));
    let tag = args.tag.clone().unwrap_or_else(|| recipe.tag.clone());
    eprintln!(
        "building {} ({} platform{})",
        args.recipe.display(),
        recipe.platforms.len(),
        if recipe.platforms.len() == 1 { "" } else { "s" }
    );
    let staging = LayoutStaging::new(&out)?;
    let produced = produce(&recipe, &opts, staging.store())?;
    staging.commit(&produced.output.built, &tag, &produced.referrers())?;
    let digest = produced.output.built.digest().to_string();
    if let Some(f) = &args.digest_file {
        super::write_atomic(f, format!("{digest}\n").as_bytes())?;
    }
    eprintln!("wrote {}", out.display());
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{digest}")?;
    Ok(ExitCode::SUCCESS)
}
