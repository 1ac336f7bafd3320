//! The options that say how a recipe is made into an image: defined once,
//! flattened into `stele build` and `stele push RECIPE`, and resolved by
//! one `Making::from_options`, so the two commands cannot drift apart (a
//! push that skipped `--locked` rewrote the lock and pushed unsigned).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::resolved::{attest_options, Making, RecipeFlags};
use super::signing::ProvenanceArgs;
use super::{CacheArgs, JobsArgs, PackageArgs, RemoteCacheArgs};
use crate::oci::Platform;
use crate::pipeline::AttestOptions;
use crate::registry::RegistrySettings;
use crate::transport::Transport;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct BuildOptions {
    /// Read `[[files]] src` from this folder instead of the recipe's (as
    /// `buildah build -f RECIPE DIR`); links out of it are refused. Not
    /// part of the recipe digest or provenance: the files' bytes are.
    #[arg(long, value_name = "DIR")]
    pub context: Option<PathBuf>,
    /// Build only this platform of the recipe's (repeatable): the index
    /// lists only these (for a docker-archive, the one platform it holds).
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
    /// Attestations to attach: none, provenance, sbom or all (default all).
    #[arg(long, value_name = "WHAT")]
    pub attest: Option<String>,
    /// Sign with this private key (ECDSA P-256 or Ed25519, PEM; cosign's
    /// encrypted keys with STELE_KEY_PASSWORD or COSIGN_PASSWORD):
    /// attestations as Sigstore bundles, and the image itself as cosign
    /// signs it when it is pushed (or --sign-identity names it).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// The repository the image signature names (cosign's
    /// docker-reference, HOST[:PORT]/REPO[:TAG]); default: the reference
    /// pushed to. The containers policy matches it against the image
    /// pulled.
    #[arg(long, value_name = "REF")]
    pub sign_identity: Option<String>,
    /// Write every layer anew: neither use nor fill the layer cache (in
    /// the cache folder, beside the packages).
    #[arg(long)]
    pub no_layer_cache: bool,
    #[command(flatten)]
    pub packages: PackageArgs,
    #[command(flatten)]
    pub remote_cache: RemoteCacheArgs,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

/// What the image is written as, where that changes how it is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MadeFor {
    /// An OCI layout, an oci-archive or a registry: every option holds.
    Oci,
    /// A docker-archive: no attestations (`docker load` would not know
    /// them), and every platform built, the one it holds picked after.
    DockerArchive,
}

impl BuildOptions {
    /// The options given on the command line, by flag, for a command
    /// whose source turned out not to be a recipe (environment variables
    /// such as `STELE_CACHE_FROM` are a CI's standing setting, not a
    /// request, and are not listed).
    pub fn given(&self) -> Vec<&'static str> {
        let p = &self.packages;
        let r = &self.remote_cache;
        [
            ("--context", self.context.is_some()),
            ("--platform", !self.platform.is_empty()),
            ("--annotation", !self.annotation.is_empty()),
            ("--label", !self.label.is_empty()),
            ("--attest", self.attest.is_some()),
            ("--sign-key", self.sign_key.is_some()),
            ("--sign-identity", self.sign_identity.is_some()),
            ("--builder-id", self.provenance.builder_id.is_some()),
            ("--build-type", self.provenance.build_type.is_some()),
            ("--no-layer-cache", self.no_layer_cache),
            ("--locked", p.locked),
            ("--offline", p.offline),
            ("--vendor", p.vendor.is_some()),
            ("--cache-from", !r.cache_from.is_empty()),
            ("--cache-to", !r.cache_to.is_empty()),
            ("--cache-timeout", r.cache_timeout.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

impl Making {
    /// `recipe` made as `options` say: the one resolve `build` and
    /// `push RECIPE` share. `registry` and `transport` are the command's,
    /// made once. `pushed_to` is the registry reference the image goes
    /// to, when it does: what its signature names without
    /// `--sign-identity`.
    #[allow(clippy::too_many_arguments)]
    pub fn from_options(
        recipe: &Path,
        options: &BuildOptions,
        made_for: MadeFor,
        pushed_to: Option<String>,
        cache: &CacheArgs,
        jobs: &JobsArgs,
        registry: RegistrySettings,
        transport: &Transport,
    ) -> Result<Making> {
        let identity = match &options.sign_identity {
            Some(words) => Some(sign_identity(words)?),
            None => pushed_to,
        };
        let attest = attest_options(
            options.attest.as_deref().unwrap_or("all"),
            options.sign_key.as_deref(),
            identity,
        )?;
        let docker = made_for == MadeFor::DockerArchive;
        let attest = if docker {
            if attest.key.is_some() {
                bail!("--sign-key signs attestations, and a docker-archive carries none; use --format oci or oci-archive to keep signed attestations");
            }
            AttestOptions::none()
        } else {
            attest
        };
        Making::resolve(
            &RecipeFlags {
                recipe,
                context: options.context.as_deref(),
                annotation: &options.annotation,
                label: &options.label,
                // A subset: the index lists only these; the lock and base
                // still answer every platform of the recipe. A
                // docker-archive's one platform is chosen from them all.
                only_platforms: if docker { &[] } else { &options.platform },
                layer_cache: !options.no_layer_cache,
                packages: &options.packages,
                remote_cache: &options.remote_cache,
                cache,
                jobs,
                provenance: &options.provenance,
            },
            attest,
            registry,
            transport,
        )
    }
}

/// `--sign-identity REF`: a repository, with a tag or not; never a
/// digest, which the signature names already.
fn sign_identity(words: &str) -> Result<String> {
    let reference = crate::registry::Reference::parse(words)?;
    if reference.digest.is_some() {
        bail!("--sign-identity {words}: name the repository (HOST[:PORT]/REPO[:TAG]); the signature already names the digest");
    }
    Ok(reference.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Both {
        #[command(flatten)]
        options: BuildOptions,
    }

    /// Every flag of the shared options is listed by `given`, so a
    /// push of an image refuses each one instead of ignoring it.
    #[test]
    fn every_option_is_named_when_given() {
        let all = Both::try_parse_from([
            "x",
            "--context",
            "d",
            "--platform",
            "linux/amd64",
            "--annotation",
            "a=b",
            "--label",
            "c=d",
            "--attest",
            "none",
            "--sign-key",
            "k",
            "--sign-identity",
            "h/r",
            "--builder-id",
            "https://b",
            "--build-type",
            "https://t",
            "--no-layer-cache",
            "--locked",
            "--offline",
            "--vendor",
            "v",
            "--cache-from",
            "h/r",
            "--cache-to",
            "h/r",
            "--cache-timeout",
            "5s",
        ])
        .unwrap();
        let given = all.options.given();
        let command = <Both as clap::CommandFactory>::command();
        let flags: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .filter(|f| f != "--help")
            .collect();
        assert_eq!(given.len(), flags.len(), "{given:?} against {flags:?}");
        for f in &flags {
            assert!(given.contains(&f.as_str()), "{f} is not listed by given()");
        }
        assert!(Both::try_parse_from(["x"])
            .unwrap()
            .options
            .given()
            .is_empty());
    }
}
