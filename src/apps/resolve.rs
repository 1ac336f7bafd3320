//! The resolve stage of `[python]` and `[node]`: per platform, the
//! packages the lock chooses; each archive found (the cache folder, a
//! vendor folder, a `--cache-from`, else downloaded from where the user's
//! pip or npm would download it), checked against the lock's hash, and
//! unpacked once into the cache. The only part of them that touches the
//! network or the cache.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::archive::{ArchiveError, ArchiveKind, Unpacked};
use super::fetch::{self, Download, Expected, FetchError, Integrity};
use super::AppSettings;
use crate::cache::AppPacks;
use crate::lock::Lock;
use crate::node::lock::{ChosenPackage, PackageLock};
use crate::node::NodeError;
use crate::oci::Digest;
use crate::python::pylock::{ChosenWheel, PyLock, WheelSource};
use crate::python::tags::Interpreter;
use crate::python::PythonError;
use crate::recipe::{NodeSpec, PythonSpec, Recipe};
use crate::store::BlobStore;
use crate::transport::Transport;

/// A wheel may be large (machine-learning wheels are hundreds of MB),
/// never this large.
const WHEEL_LIMIT: u64 = 4 << 30;
/// An npm tarball's limit (the lock records no size).
const TARBALL_LIMIT: u64 = 2 << 30;
/// A Simple API page of one project.
const SIMPLE_PAGE_LIMIT: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    // Boxed: they carry paths, URLs and lists of tags.
    #[error(transparent)]
    Python(#[from] Box<PythonError>),
    #[error(transparent)]
    Node(#[from] Box<NodeError>),
    #[error(transparent)]
    Fetch(#[from] Box<FetchError>),
    #[error(transparent)]
    Archive(#[from] Box<ArchiveError>),
    #[error("{lock}: package {package} is not in the cache, and no npm registry is configured to download it from (the lock records no `resolved` URL); set one: `npm config set registry URL` (writes ~/.npmrc), `registry=URL` in the project's .npmrc, the npm_config_registry variable, or [node] registry in the recipe (looked in: {searched})")]
    NoRegistry {
        lock: String,
        package: String,
        searched: String,
    },
    #[error("{package}: the index {index} does not list {file}; check that it mirrors the index the lock was written from")]
    NotInIndex {
        package: String,
        index: String,
        file: String,
    },
    #[error("{package}: --offline, and {file} is not in the cache {cache}; build once online, or `stele vendor` first and pass --vendor")]
    Offline {
        package: String,
        file: String,
        cache: std::path::PathBuf,
    },
    #[error("{package}: reading {path}: {error}")]
    LocalFile {
        package: String,
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{package}: {path} is not the file the lock names (expected {expected}, found {found})"
    )]
    LocalMismatch {
        package: String,
        path: std::path::PathBuf,
        expected: Digest,
        found: Digest,
    },
    #[error("cannot open the application package cache")]
    Cache(#[from] crate::store::StoreError),
}

impl From<PythonError> for AppsError {
    fn from(e: PythonError) -> AppsError {
        AppsError::Python(Box::new(e))
    }
}

impl From<NodeError> for AppsError {
    fn from(e: NodeError) -> AppsError {
        AppsError::Node(Box::new(e))
    }
}

impl From<FetchError> for AppsError {
    fn from(e: FetchError) -> AppsError {
        AppsError::Fetch(Box::new(e))
    }
}

impl From<ArchiveError> for AppsError {
    fn from(e: ArchiveError) -> AppsError {
        AppsError::Archive(Box::new(e))
    }
}

/// Everything `[python]` and `[node]` need in the pure build: each
/// platform's chosen packages and every archive they name, unpacked.
#[derive(Default)]
pub struct AppInputs {
    pub python: Option<PythonInputs>,
    pub node: Option<NodeInputs>,
    /// Every archive, unpacked, by its sha256.
    pub archives: BTreeMap<Digest, Unpacked>,
    /// Each archive as a remote cache keeps it: the key its lock names
    /// it by, its sha256 and size.
    pub keys: Vec<(Digest, Digest, u64)>,
}

pub struct PythonInputs {
    pub spec: PythonSpec,
    /// Per platform (`linux/amd64`): its interpreter and wheels.
    pub platforms: BTreeMap<String, (Interpreter, Vec<ChosenWheel>)>,
}

pub struct NodeInputs {
    pub spec: NodeSpec,
    /// Per platform: its packages and each one's archive sha256.
    pub platforms: BTreeMap<String, Vec<(ChosenPackage, Digest)>>,
}

/// What the resolve stage may use.
pub struct Context<'a> {
    pub store: &'a BlobStore,
    pub packs: &'a AppPacks,
    pub transport: &'a Transport,
    pub settings: &'a AppSettings,
    pub offline: bool,
    /// A `stele vendor` folder: `python/<wheel file>`, `npm/<sha256>.tgz`.
    pub vendor: Option<&'a Path>,
    /// The run's caches: an archive missing here is asked of each
    /// `--cache-from` before it is downloaded.
    pub caches: Option<&'a crate::cache::Chain>,
    pub jobs: usize,
}

/// One archive to have in the cache.
struct Wanted {
    label: String,
    /// The file name (a wheel's, `name-version.tgz`).
    file: String,
    kind: ArchiveKind,
    expected: Expected,
    size: Option<u64>,
    /// Where to download it, when it is not cached.
    route: Route,
}

enum Route {
    Url(String),
    /// A wheel beside the lock.
    Local(std::path::PathBuf),
    /// Found through pip's index by file name.
    Index {
        index: String,
        project: String,
    },
    NoRegistry {
        lock: String,
    },
}

/// Chooses, fetches and unpacks every application package of `recipe`;
/// `apt` is the lock in force, whose packages name each platform's
/// interpreter.
pub fn resolve(recipe: &Recipe, apt: Option<&Lock>, cx: &Context) -> Result<AppInputs, AppsError> {
    let mut inputs = AppInputs::default();
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    if let Some(spec) = &recipe.python {
        let lock = PyLock::load(&spec.lock)?;
        let platforms = super::choose::python(recipe, spec, &lock, apt)?;
        for w in platforms.values().flat_map(|(_, wheels)| wheels) {
            wanted
                .entry(w.sha256.to_string())
                .or_insert_with(|| Wanted {
                    label: format!("{} {}", w.name, w.version),
                    file: w.file.clone(),
                    kind: ArchiveKind::Wheel,
                    expected: Expected::Sha256(w.sha256.clone()),
                    size: w.size,
                    route: python_route(spec, cx.settings, w),
                });
        }
        inputs.python = Some(PythonInputs {
            spec: spec.clone(),
            platforms,
        });
    }
    let mut node_chosen = BTreeMap::new();
    if let Some(spec) = &recipe.node {
        let lock = PackageLock::load(&spec.lock)?;
        node_chosen = super::choose::node(recipe, spec, &lock)?;
        for p in node_chosen.values().flatten() {
            wanted.entry(p.integrity.clone()).or_insert_with(|| Wanted {
                label: format!("{}@{}", p.name, p.version),
                file: npm_file(&p.name, &p.version),
                kind: ArchiveKind::NpmTarball,
                expected: Expected::Integrity(
                    Integrity::parse(&p.integrity).expect("checked by select"),
                ),
                size: None,
                route: npm_route(spec, cx.settings, p),
            });
        }
    }
    let items: Vec<&Wanted> = wanted.values().collect();
    let found = crate::parallel::map(
        &items,
        cx.jobs,
        |w| w.size.unwrap_or(1 << 20),
        |w| fetch_one(w, cx),
    )?;
    let mut by_key: BTreeMap<String, Digest> = BTreeMap::new();
    for ((key, w), (digest, unpacked)) in wanted.iter().zip(found) {
        by_key.insert(key.clone(), digest.clone());
        let (_, size) = unpacked.archive_size();
        inputs.keys.push((remote_key(w), digest.clone(), size));
        inputs.archives.insert(digest, unpacked);
    }
    if let Some(spec) = &recipe.node {
        let platforms = node_chosen
            .into_iter()
            .map(|(platform, chosen)| {
                let with_digests = chosen
                    .into_iter()
                    .map(|p| {
                        let d = by_key[&p.integrity].clone();
                        (p, d)
                    })
                    .collect();
                (platform, with_digests)
            })
            .collect();
        inputs.node = Some(NodeInputs {
            spec: spec.clone(),
            platforms,
        });
    }
    Ok(inputs)
}

/// An npm tarball's file name in a vendor folder: the scope kept
/// (`@esbuild+linux-x64-0.24.2.tgz`), so no two packages share one.
pub fn npm_file(name: &str, version: &str) -> String {
    format!("{}-{version}.tgz", name.replace('/', "+"))
}

/// Every archive `inputs` names, as `stele vendor` copies it: its
/// folder (`python`, `npm`), its file name and its sha256 in the cache.
pub fn vendor_files(inputs: &AppInputs) -> BTreeSet<(&'static str, String, Digest)> {
    let mut out = BTreeSet::new();
    if let Some(python) = &inputs.python {
        for (_, wheels) in python.platforms.values() {
            for w in wheels {
                out.insert(("python", w.file.clone(), w.sha256.clone()));
            }
        }
    }
    if let Some(node) = &inputs.node {
        for packages in node.platforms.values() {
            for (p, d) in packages {
                out.insert(("npm", npm_file(&p.name, &p.version), d.clone()));
            }
        }
    }
    out
}

fn python_route(spec: &PythonSpec, settings: &AppSettings, w: &ChosenWheel) -> Route {
    if let WheelSource::File(path) = &w.source {
        return Route::Local(path.clone());
    }
    let index = spec.index.clone().or_else(|| settings.pip_index.clone());
    match (index, &w.source) {
        (Some(index), _) => Route::Index {
            index,
            project: crate::python::pylock::normalize(&w.name),
        },
        (None, WheelSource::Url(url)) => Route::Url(url.clone()),
        (None, WheelSource::File(_)) => unreachable!("handled above"),
    }
}

/// A registry package's tarball: from the registry npm is configured
/// with (as npm itself rewrites a lock's registry host), else the lock's
/// `resolved` URL.
fn npm_route(spec: &NodeSpec, settings: &AppSettings, p: &ChosenPackage) -> Route {
    let scope = p
        .name
        .starts_with('@')
        .then(|| p.name.split('/').next().unwrap_or_default().to_string());
    let registry = spec
        .registry
        .clone()
        .or_else(|| scope.and_then(|s| settings.npm_registries.get(&s).cloned()))
        .or_else(|| settings.npm_registries.get("").cloned());
    match (registry, &p.resolved) {
        (Some(registry), _) => {
            let base = p.name.rsplit('/').next().unwrap_or(&p.name);
            Route::Url(format!("{registry}/{}/-/{base}-{}.tgz", p.name, p.version))
        }
        (None, Some(resolved)) => Route::Url(resolved.clone()),
        (None, None) => Route::NoRegistry {
            lock: spec.lock_written.clone(),
        },
    }
}

/// The npm integrity → sha256 records: npm locks name a tarball by its
/// sha512, the cache by sha256.
fn integrity_key(kind: ArchiveKind, expected: &Expected) -> Option<Digest> {
    match (kind, expected) {
        (ArchiveKind::NpmTarball, Expected::Integrity(i)) => {
            Some(Digest::of(format!("npm-integrity:{}", i.text).as_bytes()))
        }
        _ => None,
    }
}

/// The key a remote cache finds `w` by: a wheel's sha256, an npm
/// integrity hashed.
fn remote_key(w: &Wanted) -> Digest {
    match &w.expected {
        Expected::Sha256(d) => d.clone(),
        Expected::Integrity(_) => integrity_key(w.kind, &w.expected).expect("an npm tarball"),
    }
}

/// Has `w` in the cache (fetching it if needed) and unpacked.
fn fetch_one(w: &Wanted, cx: &Context) -> Result<(Digest, Unpacked), AppsError> {
    let digest = match &w.expected {
        Expected::Sha256(d) if cx.store.contains(d) => Some(d.clone()),
        Expected::Sha256(_) => None,
        Expected::Integrity(_) => integrity_key(w.kind, &w.expected)
            .and_then(|k| cx.packs.integrity(&k))
            .filter(|d| cx.store.contains(d)),
    };
    let digest = match digest {
        Some(d) => d,
        None => {
            let check = |store: &BlobStore, d: &Digest, size: u64| {
                fetch::check_blob(store, d, size, &w.expected)
            };
            let remote = cx
                .caches
                .and_then(|c| c.archive(&remote_key(w), cx.store, &check));
            let (d, _) = match remote {
                Some(found) => found,
                None => obtain(w, cx)?,
            };
            if let Some(k) = integrity_key(w.kind, &w.expected) {
                cx.packs.record_integrity(&k, &d)?;
            }
            d
        }
    };
    let unpacked = match cx.packs.load(&digest, w.kind) {
        Some(u) => u,
        None => {
            let size = cx
                .store
                .path(&digest)
                .metadata()
                .map_err(|error| AppsError::LocalFile {
                    package: w.label.clone(),
                    path: cx.store.path(&digest),
                    error,
                })?
                .len();
            cx.packs.unpack(&w.label, &digest, size, w.kind)?
        }
    };
    Ok((digest, unpacked))
}

/// Puts `w` into the cache: from the vendor folder, a local file, or the
/// network.
fn obtain(w: &Wanted, cx: &Context) -> Result<(Digest, u64), AppsError> {
    if let Some(vendor) = cx.vendor {
        let sub = match w.kind {
            ArchiveKind::Wheel => "python",
            ArchiveKind::NpmTarball => "npm",
        };
        let path = vendor.join(sub).join(&w.file);
        if path.is_file() {
            return store_local(w, &path, cx);
        }
    }
    let offline = || AppsError::Offline {
        package: w.label.clone(),
        file: w.file.clone(),
        cache: cx.store.root().to_path_buf(),
    };
    let url = match &w.route {
        Route::Local(path) => return store_local(w, path, cx),
        Route::NoRegistry { lock } => {
            if cx.offline {
                return Err(offline());
            }
            return Err(AppsError::NoRegistry {
                lock: lock.clone(),
                package: w.label.clone(),
                searched: cx.settings.npm_config_searched.join(", "),
            });
        }
        _ if cx.offline => return Err(offline()),
        Route::Url(url) => url.clone(),
        Route::Index { index, project } => find_in_index(w, index, project, cx)?,
    };
    Ok(fetch::download(
        cx.transport,
        &cx.settings.credentials,
        cx.store,
        &Download {
            url: &url,
            expected: &w.expected,
            size: w.size,
            limit: match w.kind {
                ArchiveKind::Wheel => WHEEL_LIMIT,
                ArchiveKind::NpmTarball => TARBALL_LIMIT,
            },
            label: &w.label,
        },
    )?)
}

/// A file from disk (a vendor folder, a wheel beside the lock), checked
/// as a download is.
fn store_local(w: &Wanted, path: &Path, cx: &Context) -> Result<(Digest, u64), AppsError> {
    let file = std::fs::File::open(path).map_err(|error| AppsError::LocalFile {
        package: w.label.clone(),
        path: path.to_path_buf(),
        error,
    })?;
    let url = format!("file://{}", path.display());
    Ok(fetch::store_checked(
        file,
        cx.store,
        &Download {
            url: &url,
            expected: &w.expected,
            size: w.size,
            limit: WHEEL_LIMIT,
            label: &w.label,
        },
    )?)
}

/// The URL of `w`'s file on the index's Simple API page of `project`
/// (PEP 691 JSON, else PEP 503 HTML), resolved against the page.
fn find_in_index(
    w: &Wanted,
    index: &str,
    project: &str,
    cx: &Context,
) -> Result<String, AppsError> {
    let page_url = format!("{index}/{project}/");
    let page = fetch::get_page(
        cx.transport,
        &cx.settings.credentials,
        &page_url,
        "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
        SIMPLE_PAGE_LIMIT,
        &w.label,
    )?;
    let mut links: BTreeSet<(String, String)> = BTreeSet::new();
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&page) {
        for f in json["files"].as_array().into_iter().flatten() {
            if let (Some(name), Some(url)) = (f["filename"].as_str(), f["url"].as_str()) {
                links.insert((name.to_string(), url.to_string()));
            }
        }
    } else {
        let text = String::from_utf8_lossy(&page);
        for part in text.split("href=").skip(1) {
            let quote = part.chars().next().unwrap_or('"');
            let Some(href) = part[1..].split(quote).next() else {
                continue;
            };
            let href = href.replace("&amp;", "&");
            let name = href
                .split(['#', '?'])
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            links.insert((name, href));
        }
    }
    let href = links
        .into_iter()
        .find(|(name, _)| name == &w.file)
        .map(|(_, href)| href)
        .ok_or_else(|| AppsError::NotInIndex {
            package: w.label.clone(),
            index: index.to_string(),
            file: w.file.clone(),
        })?;
    let href = href.split('#').next().unwrap_or(&href).to_string();
    Ok(crate::transport::resolve_location(&page_url, &href))
}

/// Copies every archive `inputs` names from `store` into `dir/python/`
/// and `dir/npm/` (each through a temp file and a rename), where `build
/// --vendor DIR` finds them; returns how many.
pub fn vendor(inputs: &AppInputs, store: &BlobStore, dir: &Path) -> Result<usize, AppsError> {
    let files = vendor_files(inputs);
    for (sub, file, digest) in &files {
        let folder = dir.join(sub);
        let io = |error| AppsError::LocalFile {
            package: file.clone(),
            path: folder.join(file),
            error,
        };
        std::fs::create_dir_all(&folder).map_err(io)?;
        let mut temp = crate::store::temp_file_in(&folder, ".stele-tmp-").map_err(io)?;
        let (mut blob, _) = store.open_blob(digest)?;
        std::io::copy(&mut blob, &mut temp).map_err(io)?;
        temp.persist(folder.join(file)).map_err(|e| io(e.error))?;
    }
    Ok(files.len())
}
