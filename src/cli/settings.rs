//! Flags and environment variables become settings here, once per
//! command; nothing below the CLI reads either.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::apt::sources::AptSettings;
use crate::oci::Digest;
use crate::pipeline::{Builder, Cache, LockPolicy, Settings};
use crate::registry::RegistrySettings;
use crate::remote_cache::RemoteCacheSettings;
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

/// Opens the cache folder (once per command).
pub(crate) fn open_cache(args: &CacheArgs) -> Result<Cache> {
    let dir = cache_dir(args)?;
    Cache::open(&dir, std::time::SystemTime::now())
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

/// How requests go out, for registries and apt mirrors alike:
/// - trust: the system CA bundle plus `SSL_CERT_FILE` and the PEM files in
///   `SSL_CERT_DIR` (each adds, none replaces), and per host the certs.d
///   folders: `--cert-dir`, then `$STELE_CERTS_D` (a `:` list, for tests
///   and unusual layouts) or else `/etc/containers/certs.d` and
///   `/etc/docker/certs.d`;
/// - proxies: `http_proxy`/`HTTP_PROXY`, `https_proxy`/`HTTPS_PROXY`,
///   `no_proxy`/`NO_PROXY`.
pub(crate) fn network_settings(args: &RegistryArgs) -> NetworkSettings {
    let mut tls = TlsSettings::default();
    let system = SYSTEM_CA_FILES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    tls.ca_files.extend(system.clone());
    tls.optional_ca_files.extend(system);
    tls.ca_files.extend(env_path("SSL_CERT_FILE"));
    tls.ca_dirs = env_paths("SSL_CERT_DIR");
    tls.direct_cert_dir = args.tls.cert_dir.clone();
    tls.certs_d.extend(args.tls.cert_dir.clone());
    let roots = env_paths("STELE_CERTS_D");
    if roots.is_empty() {
        tls.certs_d.push(PathBuf::from("/etc/containers/certs.d"));
        tls.certs_d.push(PathBuf::from("/etc/docker/certs.d"));
    } else {
        tls.certs_d.extend(roots);
    }
    tls.verify = args.tls.tls_verify.unwrap_or(true);
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

/// Registry settings holding the run's one transport, made here from the
/// network settings: whatever the command reaches (registries, apt
/// mirrors, remote caches) goes through it.
pub(crate) fn registry_settings(args: &RegistryArgs, jobs: &JobsArgs) -> RegistrySettings {
    RegistrySettings {
        auth_files: auth_files(&args.authfile),
        insecure: args.insecure,
        transport: Transport::new(network_settings(args)),
        jobs: transfer_jobs(jobs),
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
/// sha256 of its file (see `executable_digest`).
pub fn builder(cache: &Path) -> Builder {
    Builder {
        id: format!("{}/builders/cli", crate::attest::URI_BASE),
        version: env!("CARGO_PKG_VERSION").into(),
        identity: match executable_digest(cache) {
            Some(digest) => format!("stele {} {digest}", env!("CARGO_PKG_VERSION")),
            None => builder_identity(),
        },
    }
}

/// The sha256 of this executable's file: what the layer cache's keys name
/// stele by, so a rebuilt stele never takes layers another build of it
/// wrote, and runners of a fleet (`--cache-from`) that installed the same
/// binary, however and whenever, share layers. Hashing a release binary
/// costs tens of milliseconds, so the digest is remembered in the cache
/// folder under the file's device, inode, size, mtime and ctime (the
/// stamps base layers use, SECURITY.md): any write to the file moves its
/// ctime, so a remembered digest never outlives the bytes it names.
fn executable_digest(cache: &Path) -> Option<Digest> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe().ok()?;
    let m = std::fs::metadata(&exe).ok()?;
    let stamp = format!(
        "{} {} {} {}.{:09} {}.{:09}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    );
    let dir = "builders";
    let name = Digest::of(stamp.as_bytes()).hex().to_string();
    if let Ok((f, _)) = crate::store::open_untrusted(cache, &format!("{dir}/{name}")) {
        let mut text = String::new();
        use std::io::Read as _;
        if f.take(100).read_to_string(&mut text).is_ok() {
            if let Ok(digest) = text.trim().parse::<Digest>() {
                return Some(digest);
            }
        }
    }
    let (digest, _) = crate::oci::digest::hash_reader(std::fs::File::open(&exe).ok()?).ok()?;
    // Remembering is only a saving: a cache that cannot take it costs the
    // next build one more hash.
    let folder = cache.join(dir);
    let _ = std::fs::create_dir_all(&folder).and_then(|()| {
        let mut temp = crate::store::temp_file_in(&folder, ".builder")?;
        std::io::Write::write_all(&mut temp, format!("{digest}\n").as_bytes())?;
        temp.persist(folder.join(&name)).map_err(|e| e.error)?;
        Ok(())
    });
    Some(digest)
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

/// The flags a pipeline run takes, gathered from whichever command runs it.
pub(crate) struct PipelineArgs<'a> {
    pub cache: &'a CacheArgs,
    pub jobs: &'a JobsArgs,
    pub packages: &'a PackageArgs,
    pub registry: &'a RegistryArgs,
    pub layer_cache: bool,
    /// `None` for commands that build nothing.
    pub remote_cache: Option<&'a RemoteCacheArgs>,
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

impl PipelineArgs<'_> {
    /// The settings of one run: the cache opened, mirrors and auth files
    /// found, the builder named, the run's transport made.
    pub fn settings(&self) -> Result<Settings> {
        self.settings_with(registry_settings(self.registry, self.jobs))
    }

    /// [`PipelineArgs::settings`] with the registry settings (and so the
    /// transport) the command made already, for commands that also reach
    /// a registry outside the pipeline.
    pub fn settings_with(&self, registry: RegistrySettings) -> Result<Settings> {
        let remote_cache = match self.remote_cache {
            Some(args) => remote_cache_settings(args)?,
            None => RemoteCacheSettings::default(),
        };
        let cache = open_cache(self.cache)?;
        Ok(Settings {
            builder: builder(cache.root()),
            cache,
            apt: apt_settings(self.jobs),
            transport: registry.transport.clone(),
            registry,
            jobs: work_jobs(self.jobs),
            offline: self.packages.offline,
            lock: if self.packages.locked {
                LockPolicy::Locked
            } else {
                LockPolicy::Update
            },
            vendor: self.packages.vendor.clone(),
            layer_cache: self.layer_cache,
            remote_cache,
            only_platforms: Vec::new(),
        })
    }
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

    /// The executable's digest is its file's sha256, remembered in the
    /// cache folder; a memo that is not a digest is hashed over again.
    #[test]
    fn the_executable_is_named_by_its_sha256_remembered_per_file() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let expected = Digest::of(&exe);
        let cache = tempfile::tempdir().unwrap();
        assert_eq!(executable_digest(cache.path()).unwrap(), expected);
        let memos: Vec<_> = std::fs::read_dir(cache.path().join("builders"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(memos.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&memos[0]).unwrap(),
            format!("{expected}\n")
        );
        assert_eq!(executable_digest(cache.path()).unwrap(), expected);
        std::fs::write(&memos[0], "not a digest\n").unwrap();
        assert_eq!(executable_digest(cache.path()).unwrap(), expected);
        assert!(builder(cache.path())
            .identity
            .ends_with(&expected.to_string()));
    }
}
