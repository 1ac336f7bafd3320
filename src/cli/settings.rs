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

pub(crate) mod apps;
pub(crate) mod build_options;
pub(crate) mod resolved;
pub(crate) mod signing;

pub use build_options::BuildOptions;
pub(crate) use build_options::MadeFor;
pub(crate) use resolved::{CacheFolder, Making, Reader, RecipeFlags, Run};
pub use signing::ProvenanceArgs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::apt::sources::AptSettings;
use crate::cache::{Cache, RemoteCacheSettings};
use crate::pipeline::Builder;
use crate::registry::config::RegistriesConf;
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

/// Registry repositories as a shared archive of the locked .debs, for
/// fleets of CI runners and rebuilds after the mirror moved on.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RemoteCacheArgs {
    /// Take locked .debs from this registry repository (HOST[:PORT]/REPO),
    /// each checked against the lock, before asking the mirror;
    /// repeatable, asked in order. Also STELE_CACHE_FROM (comma- or
    /// space-separated).
    #[arg(long, value_name = "REF")]
    pub cache_from: Vec<String>,
    /// Push this build's locked .debs to this registry repository after a
    /// successful build; repeatable. Also STELE_CACHE_TO (comma- or
    /// space-separated).
    #[arg(long, value_name = "REF")]
    pub cache_to: Vec<String>,
    /// How long a remote cache request may make no progress (5s by
    /// default, also STELE_CACHE_TIMEOUT): past it, that registry is down
    /// for the rest of the run, lookups and pushes alike.
    #[arg(long, value_name = "DURATION", value_parser = super::cache::parse_duration)]
    pub cache_timeout: Option<std::time::Duration>,
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
    /// Per-registry settings (insecure, mirrors, locations, blocked) from
    /// this containers-registries.conf(5) file only; default
    /// $CONTAINERS_REGISTRIES_CONF, else the user's and the system's files
    /// podman reads.
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// `stele push`'s two sides, each with its own TLS and plain-HTTP
/// settings, as skopeo copy has them: a promotion from a TLS registry to
/// a plain one is one command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SideArgs {
    /// Check the source registry's TLS certificate (default: as
    /// --tls-verify says).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub src_tls_verify: Option<bool>,
    /// Check the destination registry's TLS certificate (default: as
    /// --tls-verify says).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dest_tls_verify: Option<bool>,
    /// CAs and client certificate for the source registry (as --cert-dir),
    /// searched first.
    #[arg(long, value_name = "DIR")]
    pub src_cert_dir: Option<PathBuf>,
    /// CAs and client certificate for the destination registry (as
    /// --cert-dir), searched first.
    #[arg(long, value_name = "DIR")]
    pub dest_cert_dir: Option<PathBuf>,
    /// The source registry may speak plain HTTP (it is switched to HTTPS
    /// when it answers as a TLS server).
    #[arg(long)]
    pub src_insecure: bool,
    /// The destination registry may speak plain HTTP (it is switched to
    /// HTTPS when it answers as a TLS server).
    #[arg(long)]
    pub dest_insecure: bool,
}

/// One side's settings, for the registry it names.
pub(crate) struct Side<'a> {
    /// `--src` or `--dest`, for messages.
    pub flag: &'static str,
    pub registry: &'a str,
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<&'a Path>,
    pub insecure: bool,
}

impl SideArgs {
    /// Whether any source-side flag was given.
    pub(crate) fn any_source(&self) -> bool {
        self.src_tls_verify.is_some() || self.src_cert_dir.is_some() || self.src_insecure
    }

    pub(crate) fn source<'a>(&'a self, registry: &'a str) -> Side<'a> {
        Side {
            flag: "--src",
            registry,
            tls_verify: self.src_tls_verify,
            cert_dir: self.src_cert_dir.as_deref(),
            insecure: self.src_insecure,
        }
    }

    pub(crate) fn destination<'a>(&'a self, registry: &'a str) -> Side<'a> {
        Side {
            flag: "--dest",
            registry,
            tls_verify: self.dest_tls_verify,
            cert_dir: self.dest_cert_dir.as_deref(),
            insecure: self.dest_insecure,
        }
    }
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
/// registry), made once per command from the flags and environment: for
/// commands that reach no registry (`lock`, `vendor`).
pub(crate) fn transport(args: &TlsArgs) -> Result<Transport> {
    Ok(Transport::new(network_settings(args)?))
}

/// The transport of a command that reaches registries: as [`transport`],
/// with what registries.conf says per registry (an `insecure` one's
/// certificate is not checked).
pub(crate) fn registry_transport(args: &RegistryArgs) -> Result<Transport> {
    sided_transport(args, &[])
}

/// [`registry_transport`] with `sides`' own settings for their registries
/// (`stele push`'s `--src-*` and `--dest-*`). One registry on both sides
/// with different settings is refused: the one transport holds one
/// setting per registry.
pub(crate) fn sided_transport(args: &RegistryArgs, sides: &[Side]) -> Result<Transport> {
    let mut network = network_settings(&args.tls)?;
    let conf = registries_conf(args)?;
    for host in conf.insecure_registries() {
        let key = tls_host_key(&host.to_ascii_lowercase());
        network.tls.hosts.entry(key).or_default().verify = Some(false);
    }
    let mut claimed: Vec<(&str, &Side)> = Vec::new();
    for side in sides {
        if side.tls_verify.is_none() && side.cert_dir.is_none() {
            continue;
        }
        let host = side.registry.to_ascii_lowercase();
        if let Some((_, other)) = claimed.iter().find(|(h, _)| h.eq_ignore_ascii_case(&host)) {
            if other.tls_verify != side.tls_verify || other.cert_dir != side.cert_dir {
                bail!(
                    "{} is on both sides with different TLS settings ({}-tls-verify/{}-cert-dir and {}-tls-verify/{}-cert-dir); give both sides the same, or use --tls-verify/--cert-dir",
                    side.registry, other.flag, other.flag, side.flag, side.flag
                );
            }
        }
        claimed.push((side.registry, side));
        let entry = network.tls.hosts.entry(tls_host_key(&host)).or_default();
        if let Some(v) = side.tls_verify {
            entry.verify = Some(v);
            if !v {
                warn_unverified();
            }
        }
        if let Some(d) = side.cert_dir {
            entry.cert_dir = Some(d.to_path_buf());
        }
    }
    Ok(Transport::new(network))
}

/// How TLS settings name a registry: `host:port`, or `host` for 443 (as
/// certs.d folders do); brackets kept for IPv6.
fn tls_host_key(registry: &str) -> String {
    registry
        .strip_suffix(":443")
        .unwrap_or(registry)
        .to_string()
}

fn warn_unverified() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        eprintln!("warning: --tls-verify=false: TLS certificates are not checked; anyone on the path can read and change what is sent and received");
    });
}

/// The registries.conf files in force: `--registries-conf`, else
/// `$CONTAINERS_REGISTRIES_CONF`, else the user's
/// (`$XDG_CONFIG_HOME/containers/registries.conf`, else
/// `~/.config/containers/registries.conf`) when it exists or the system's
/// (`/etc/containers/registries.conf`), each followed by its
/// `registries.conf.d/*.conf` drop-ins in name order, as
/// containers-registries.conf(5) reads them.
fn registries_conf_files(args: &RegistryArgs) -> Vec<PathBuf> {
    if let Some(f) = args
        .registries_conf
        .clone()
        .or_else(|| env_path("CONTAINERS_REGISTRIES_CONF"))
    {
        return vec![f];
    }
    let user_dir = match (env_path("XDG_CONFIG_HOME"), env_path("HOME")) {
        (Some(c), _) => Some(c.join("containers")),
        (None, Some(h)) => Some(h.join(".config/containers")),
        (None, None) => None,
    };
    let system_dir = PathBuf::from("/etc/containers");
    let main = match &user_dir {
        Some(d) if d.join("registries.conf").is_file() => d.join("registries.conf"),
        _ => system_dir.join("registries.conf"),
    };
    let mut files = vec![main];
    for dir in std::iter::once(system_dir).chain(user_dir) {
        let mut dropins: Vec<PathBuf> = std::fs::read_dir(dir.join("registries.conf.d"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                    .collect()
            })
            .unwrap_or_default();
        dropins.sort();
        files.extend(dropins);
    }
    files
}

fn registries_conf(args: &RegistryArgs) -> Result<RegistriesConf> {
    let files = registries_conf_files(args);
    if let Some(named) = &args.registries_conf {
        if !named.exists() {
            bail!("--registries-conf {}: no such file", named.display());
        }
    }
    Ok(RegistriesConf::load(&files)?)
}

/// A duration from the environment: `20s`, `2m`, `1h`, or seconds.
fn env_duration(name: &str) -> Result<Option<std::time::Duration>> {
    let Some(v) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Ok(Some(std::time::Duration::from_secs(secs)));
    }
    super::cache::parse_duration(&v)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// How requests go out, for registries and apt mirrors alike:
/// - trust: the system CA bundle plus `SSL_CERT_FILE` and the PEM files in
///   `SSL_CERT_DIR` (each adds, none replaces), and per host the certs.d
///   folders: `--cert-dir`, then `$STELE_CERTS_D` (a `:` list, for tests
///   and unusual layouts) or else `/etc/containers/certs.d` and
///   `/etc/docker/certs.d`;
/// - proxies: `http_proxy`/`HTTP_PROXY`, `https_proxy`/`HTTPS_PROXY`,
///   `no_proxy`/`NO_PROXY`.
/// - deadlines: `STELE_SPEED_LIMIT` (bytes per second an answer must
///   keep to, e.g. `1KiB`; `0` for no floor) over `STELE_SPEED_TIME` (the
///   window, e.g. `20s`), `STELE_MAX_TIME` (the most one request, its
///   retries included, may take, e.g. `1h`; `0` for no limit), and
///   `STELE_CREDENTIAL_HELPER_TIMEOUT` is read with the registry settings.
fn network_settings(args: &TlsArgs) -> Result<NetworkSettings> {
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
        warn_unverified();
    }
    let no_proxy = env_first(&["no_proxy", "NO_PROXY"])
        .map(|v| {
            v.split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let defaults = NetworkSettings::default();
    let speed_limit = match std::env::var("STELE_SPEED_LIMIT") {
        Ok(v) if !v.trim().is_empty() => super::cache::parse_size(&v)
            .map_err(|e| anyhow::anyhow!("STELE_SPEED_LIMIT (bytes per second): {e}"))?,
        _ => defaults.speed_limit,
    };
    let speed_time = env_duration("STELE_SPEED_TIME")?.unwrap_or(defaults.speed_time);
    if speed_limit > 0 && speed_time.is_zero() {
        bail!("STELE_SPEED_TIME must be at least 1s while STELE_SPEED_LIMIT is set (0 turns the floor off)");
    }
    Ok(NetworkSettings {
        tls,
        proxy: ProxySettings {
            http: env_first(&["http_proxy", "HTTP_PROXY"]),
            https: env_first(&["https_proxy", "HTTPS_PROXY"]),
            no_proxy,
        },
        speed_limit,
        speed_time,
        max_time: env_duration("STELE_MAX_TIME")?.unwrap_or(defaults.max_time),
        ..defaults
    })
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
) -> Result<RegistrySettings> {
    let registries = registries_conf(args)?;
    let mut helper_limits = crate::registry::auth::HelperLimits::default();
    if let Some(t) = env_duration("STELE_CREDENTIAL_HELPER_TIMEOUT")? {
        helper_limits.timeout = t;
    }
    Ok(RegistrySettings {
        auth_files: auth_files(&args.authfile),
        insecure: args.insecure,
        insecure_registries: registries.insecure_registries(),
        registries,
        transport: transport.clone(),
        jobs: transfer_jobs(jobs),
        progress,
        helper_limits,
        ..RegistrySettings::default()
    })
}

/// [`registry_settings`] with `sides`' `--src-insecure`/`--dest-insecure`.
pub(crate) fn sided_registry_settings(
    args: &RegistryArgs,
    sides: &[Side],
    jobs: &JobsArgs,
    transport: &Transport,
    progress: Progress,
) -> Result<RegistrySettings> {
    let mut settings = registry_settings(args, jobs, transport, progress)?;
    for side in sides.iter().filter(|s| s.insecure) {
        if !settings
            .insecure_registries
            .iter()
            .any(|r| r.eq_ignore_ascii_case(side.registry))
        {
            settings.insecure_registries.push(side.registry.to_string());
        }
    }
    Ok(settings)
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
pub(crate) fn builder(cache: &Path, provenance: &signing::Provenance) -> Builder {
    let digest = std::env::current_exe()
        .ok()
        .and_then(|exe| crate::cache::memo::executable_digest(cache, &exe));
    Builder {
        id: provenance.builder_id.clone(),
        build_type: provenance.build_type.clone(),
        run: provenance.run.clone(),
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
    let timeout = match (args.cache_timeout, std::env::var("STELE_CACHE_TIMEOUT")) {
        (Some(t), _) => t,
        (None, Ok(v)) if !v.trim().is_empty() => super::cache::parse_duration(&v)
            .map_err(|e| anyhow::anyhow!("STELE_CACHE_TIMEOUT: {e}"))?,
        _ => crate::cache::remote::DEFAULT_TIMEOUT,
    };
    if timeout.is_zero() {
        anyhow::bail!("--cache-timeout (or STELE_CACHE_TIMEOUT) must be at least 1s");
    }
    Ok(RemoteCacheSettings {
        from: cache_refs(&args.cache_from, "STELE_CACHE_FROM")?,
        to: cache_refs(&args.cache_to, "STELE_CACHE_TO")?,
        timeout,
        now: unix_now(),
    })
}

/// The clock, once, for what the CLI hands down as "now".
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
        assert!(builder(cache.path(), &signing::Provenance::defaults())
            .identity
            .ends_with(&crate::oci::Digest::of(&exe).to_string()));
    }
}
