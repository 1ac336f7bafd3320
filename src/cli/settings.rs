//! Flags and environment variables become settings here, once per
//! command; nothing below the CLI reads either.
//!
//! This file holds the flag groups commands share and what reads the
//! environment; `resolved` the finished values commands' settings are
//! made of (the cache folder's place, how images are read, how an image
//! is made from a recipe). Each command's own settings type and its one
//! `resolve` sit beside the command (`BuildCommandSettings` in `build.rs`, …):
//! flags + environment in, a value nothing changes afterwards out, the
//! command's policy decided there.

pub(crate) mod build_options;
pub(crate) mod resolved;

pub use build_options::BuildOptions;
pub(crate) use build_options::MadeFor;
pub(crate) use resolved::{CacheFolder, Making, Reader, RecipeFlags, Run};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::apt::sources::AptSettings;
use crate::cache::{Cache, RemoteCacheSettings};
use crate::pipeline::Builder;
use crate::registry::{Progress, RegistrySettings};
use crate::transport::{NetworkSettings, ProxySettings, TlsSettings, Transport};

/// The cache folder flag, shared by every command that reads a cache.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CacheArgs {
    /// Cache of downloads, unpacked packages and layers (default
    /// $XDG_CACHE_HOME/stele, else ~/.cache/stele).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// How much runs at once.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct JobsArgs {
    /// How much runs at once: downloads and registry transfers (default
    /// 4), and package unpacking and layer writing (default: one per CPU).
    /// The image is the same for any value.
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

/// What decides where a build's packages come from.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PackageArgs {
    /// Use only the cache (and --vendor): never touch the network.
    #[arg(long)]
    pub offline: bool,
    /// Fail instead of resolving when the lockfile is missing or stale.
    #[arg(long)]
    pub locked: bool,
    /// Import .debs from a folder written by `stele vendor` before fetching.
    #[arg(long, value_name = "DIR")]
    pub vendor: Option<PathBuf>,
}

/// Registry repositories as a shared cache of layers and unpacked
/// packages, for fleets of CI runners.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RemoteCacheArgs {
    /// Look layers and unpacked packages up in this registry repository
    /// (HOST[:PORT]/REPO) before doing the work; repeatable, asked in
    /// order. Also STELE_CACHE_FROM (comma- or space-separated).
    #[arg(long, value_name = "REF")]
    pub cache_from: Vec<String>,
    /// Push this build's layers and unpacked packages to this registry
    /// repository after a successful build; repeatable. Also
    /// STELE_CACHE_TO (comma- or space-separated).
    #[arg(long, value_name = "REF")]
    pub cache_to: Vec<String>,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Allow plain HTTP (and a plain-HTTP token service) to any registry;
    /// localhost and 127.0.0.1 always allow it (and switch to HTTPS when
    /// they answer as a TLS server).
    #[arg(long)]
    pub insecure: bool,
    /// Read credentials from this auth file first (docker/containers
    /// format), before $REGISTRY_AUTH_FILE and the usual locations.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// How TLS certificates are trusted: for registries and apt mirrors alike.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Trust the CAs and use the client certificate in DIR: DIR/HOST:PORT/
    /// (certs.d layout: *.crt CAs, *.cert + *.key a client pair), or the
    /// files in DIR itself; searched before /etc/containers/certs.d and
    /// /etc/docker/certs.d.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Check TLS certificates (default true); `--tls-verify=false` accepts
    /// any certificate, as podman's flag does.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The cache folder: the flag, else `$XDG_CACHE_HOME/stele`, else `~/.cache/stele`.
pub(crate) fn cache_dir(args: &CacheArgs) -> Result<PathBuf> {
    if let Some(d) = &args.cache_dir {
        return Ok(d.clone());
    }
    if let Some(x) = env_path("XDG_CACHE_HOME") {
        return Ok(x.join("stele"));
    }
    match env_path("HOME") {
        Some(h) => Ok(h.join(".cache").join("stele")),
        None => anyhow::bail!(
            "no cache folder: HOME and XDG_CACHE_HOME are unset; pass --cache-dir DIR"
        ),
    }
}

/// Opens the cache folder at `dir` (once per command).
pub(crate) fn open_cache(dir: &Path) -> Result<Cache> {
    Cache::open(dir, std::time::SystemTime::now())
        .with_context(|| format!("cannot open the cache {}", dir.display()))
}

/// Where podman, skopeo and docker keep credentials, in the order
/// containers-auth.json(5) consults them: the flag, `$REGISTRY_AUTH_FILE`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `$XDG_CONFIG_HOME/containers/auth.json` (else
/// `~/.config/containers/auth.json`), then docker's
/// `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`).
pub fn auth_files(flag: &Option<PathBuf>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files.extend(flag.clone());
    files.extend(env_path("REGISTRY_AUTH_FILE"));
    if let Some(run) = env_path("XDG_RUNTIME_DIR") {
        files.push(run.join("containers/auth.json"));
    }
    let home = env_path("HOME");
    match (env_path("XDG_CONFIG_HOME"), &home) {
        (Some(config), _) => files.push(config.join("containers/auth.json")),
        (None, Some(h)) => files.push(h.join(".config/containers/auth.json")),
        (None, None) => {}
    }
    match (env_path("DOCKER_CONFIG"), &home) {
        (Some(d), _) => files.push(d.join("config.json")),
        (None, Some(h)) => files.push(h.join(".docker/config.json")),
        (None, None) => {}
    }
    files
}

/// The first set of `names` (lower case first, as curl reads them).
fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

fn env_paths(name: &str) -> Vec<PathBuf> {
    std::env::var_os(name)
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Distribution CA bundles; the first that exists is the system's trust.
const SYSTEM_CA_FILES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The run's one transport (its connection pool shared by apt and every
/// registry), made once per command from the flags and environment.
pub(crate) fn transport(args: &TlsArgs) -> Transport {
    Transport::new(network_settings(args))
}

/// How requests go out, for registries and apt mirrors alike:
/// - trust: the system CA bundle plus `SSL_CERT_FILE` and the PEM files in
///   `SSL_CERT_DIR` (each adds, none replaces), and per host the certs.d
///   folders: `--cert-dir`, then `$STELE_CERTS_D` (a `:` list, for tests
///   and unusual layouts) or else `/etc/containers/certs.d` and
///   `/etc/docker/certs.d`;
/// - proxies: `http_proxy`/`HTTP_PROXY`, `https_proxy`/`HTTPS_PROXY`,
///   `no_proxy`/`NO_PROXY`.
fn network_settings(args: &TlsArgs) -> NetworkSettings {
    let mut tls = TlsSettings::default();
    let system = SYSTEM_CA_FILES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    tls.ca_files.extend(system.clone());
    tls.optional_ca_files.extend(system);
    tls.ca_files.extend(env_path("SSL_CERT_FILE"));
    tls.ca_dirs = env_paths("SSL_CERT_DIR");
    tls.direct_cert_dir = args.cert_dir.clone();
    tls.certs_d.extend(args.cert_dir.clone());
    let roots = env_paths("STELE_CERTS_D");
    if roots.is_empty() {
        tls.certs_d.push(PathBuf::from("/etc/containers/certs.d"));
        tls.certs_d.push(PathBuf::from("/etc/docker/certs.d"));
    } else {
        tls.certs_d.extend(roots);
    }
    tls.verify = args.tls_verify.unwrap_or(true);
    if !tls.verify {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            eprintln!("warning: --tls-verify=false: TLS certificates are not checked; anyone on the path can read and change what is sent and received");
        });
    }
    let no_proxy = env_first(&["no_proxy", "NO_PROXY"])
        .map(|v| {
            v.split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    NetworkSettings {
        tls,
        proxy: ProxySettings {
            http: env_first(&["http_proxy", "HTTP_PROXY"]),
            https: env_first(&["https_proxy", "HTTPS_PROXY"]),
            no_proxy,
        },
        ..NetworkSettings::default()
    }
}

/// How registries are reached: the one place registry settings are
/// assembled, from the flags and the command's network settings (made
/// once per command). `progress` says what the transfers are called
/// (nothing, "fetching", "sending").
pub(crate) fn registry_settings(
    args: &RegistryArgs,
    jobs: &JobsArgs,
    transport: &Transport,
    progress: Progress,
) -> RegistrySettings {
    RegistrySettings {
        auth_files: auth_files(&args.authfile),
        insecure: args.insecure,
        transport: transport.clone(),
        jobs: transfer_jobs(jobs),
        progress,
        ..RegistrySettings::default()
    }
}

/// Blobs sent or fetched at once: like package downloads, bound by the
/// network rather than the CPUs.
pub(crate) fn transfer_jobs(jobs: &JobsArgs) -> usize {
    jobs.jobs.unwrap_or(4).max(1)
}

/// `STELE_APT_ROOT` moves where `mirror = "host"` reads `etc/apt` from
/// (a chroot, or a test's own configuration); `STELE_MIRROR_<NAME>`
/// names mirrors.
pub(crate) fn apt_settings(jobs: &JobsArgs) -> AptSettings {
    let host_root = env_path("STELE_APT_ROOT").unwrap_or_else(|| PathBuf::from("/"));
    let mirrors: BTreeMap<String, String> = std::env::vars()
        .filter_map(|(k, v)| k.strip_prefix("STELE_MIRROR_").map(|n| (n.to_string(), v)))
        .collect();
    AptSettings {
        host_root,
        mirrors,
        jobs: transfer_jobs(jobs),
    }
}

/// Threads for unpacking packages and writing layers.
pub(crate) fn work_jobs(jobs: &JobsArgs) -> usize {
    jobs.jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// The builder id provenance names: this command-line tool on a machine
/// the attestation does not identify further, its executable named by the
/// sha256 of its file: what layer keys name stele by, so a rebuilt stele
/// never takes layers another build of it wrote, and runners of a fleet
/// (`--cache-from`) that installed the same binary, however and whenever,
/// share layers. The digest is remembered in the cache folder
/// (`cache::memo`).
pub fn builder(cache: &Path) -> Builder {
    let digest = std::env::current_exe()
        .ok()
        .and_then(|exe| crate::cache::memo::executable_digest(cache, &exe));
    Builder {
        id: format!("{}/builders/cli", crate::attest::URI_BASE),
        version: env!("CARGO_PKG_VERSION").into(),
        identity: match digest {
            Some(digest) => format!("stele {} {digest}", env!("CARGO_PKG_VERSION")),
            None => builder_identity(),
        },
    }
}

/// This executable when its file cannot be read: its version and the size
/// and modification time of its file.
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

/// The flag's repositories, else the environment's (`STELE_CACHE_FROM`,
/// `STELE_CACHE_TO`: comma- or whitespace-separated), each a registry
/// repository without tag or digest.
fn cache_refs(flag: &[String], env: &str) -> Result<Vec<crate::registry::Reference>> {
    let from_env;
    let listed: Vec<&str> = if flag.is_empty() {
        from_env = std::env::var(env).unwrap_or_default();
        from_env
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        flag.iter().map(String::as_str).collect()
    };
    let mut refs = Vec::new();
    for text in listed {
        let r = crate::registry::Reference::parse(text).with_context(|| {
            format!("remote cache `{text}` (from --cache-from/--cache-to or {env})")
        })?;
        if r.tag.is_some() || r.digest.is_some() {
            anyhow::bail!(
                "remote cache `{text}` (from --cache-from/--cache-to or {env}) names a tag or digest; name the repository only, e.g. {}/{}: stele tags each entry itself",
                r.registry,
                r.repository
            );
        }
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    Ok(refs)
}

pub(crate) fn remote_cache_settings(args: &RemoteCacheArgs) -> Result<RemoteCacheSettings> {
    Ok(RemoteCacheSettings {
        from: cache_refs(&args.cache_from, "STELE_CACHE_FROM")?,
        to: cache_refs(&args.cache_to, "STELE_CACHE_TO")?,
    })
}

/// Reads `SOURCE_DATE_EPOCH` (reproducible-builds.org spec): a decimal
/// integer of seconds; anything else is an error rather than ignored.
pub(crate) fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH=`{v}` is not a whole number of seconds since 1970; unset it or fix it")),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder names this executable by its file's sha256.
    #[test]
    fn the_builder_is_named_by_its_executables_sha256() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let cache = tempfile::tempdir().unwrap();
        assert!(builder(cache.path())
            .identity
            .ends_with(&crate::oci::Digest::of(&exe).to_string()));
    }
}
