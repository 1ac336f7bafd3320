//! What commands print for people (stderr) and for CI (`--json` on
//! stdout): one place, so every command describes an image alike.

use serde_json::{json, Value};

use crate::attest::Attestation;
use crate::image::LayerSource;
use crate::oci::Built;
use crate::pipeline::Event;
use crate::registry::{Progress, Transfer};

/// How much a command says on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only errors (the result still goes to stdout).
    Quiet,
    /// The stages of the work, a line each.
    Normal,
    /// Also what the caches decided and why.
    Verbose,
}

/// Everything a command tells people goes through this one value, so
/// `-q` silences all of it and `-v` adds the cache decisions. Errors are
/// printed by `print_error` whatever the level. Nothing here colors its
/// output, so `NO_COLOR` holds without being read. Only a download's
/// status line differs on a terminal (it updates in place); logs and CI
/// get whole lines.
#[derive(Debug)]
pub struct Reporter {
    pub level: Level,
    /// Whether stderr is a terminal: then a download shows a status line
    /// that updates in place; elsewhere (logs, CI) only whole lines.
    terminal: bool,
    /// The download under way; the pipeline reports it from its threads.
    download: std::sync::Mutex<Option<DownloadState>>,
}

#[derive(Debug)]
struct DownloadState {
    started: std::time::Instant,
    packages: usize,
    bytes: u64,
    done_packages: usize,
    done_bytes: u64,
}

impl Reporter {
    pub fn new(quiet: bool, verbose: bool) -> Reporter {
        let level = match (quiet, verbose) {
            (true, _) => Level::Quiet,
            (false, true) => Level::Verbose,
            (false, false) => Level::Normal,
        };
        use std::io::IsTerminal;
        Reporter {
            level,
            terminal: std::io::stderr().is_terminal(),
            download: std::sync::Mutex::new(None),
        }
    }

    fn download(&self) -> std::sync::MutexGuard<'_, Option<DownloadState>> {
        // A poisoned lock only means a progress line was lost.
        self.download.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A progress line, shown unless `-q`.
    pub(crate) fn info(&self, line: impl std::fmt::Display) {
        if self.level >= Level::Normal {
            eprintln!("{line}");
        }
    }

    /// A line only `-v` shows: a cache decision, a detail of the work.
    pub fn detail(&self, line: impl std::fmt::Display) {
        if self.level >= Level::Verbose {
            eprintln!("{line}");
        }
    }

    /// Progress lines as the pipeline reports its stages.
    pub(crate) fn event(&self, event: Event) {
        match event {
            Event::Resolving { lock_path, why } => self.info(format_args!(
                "lockfile {} {why}: resolving",
                lock_path.display()
            )),
            Event::LockWritten { lock_path } => {
                self.info(format_args!("wrote {}", lock_path.display()))
            }
            Event::LockFresh { lock_path } => self.detail(format_args!(
                "lockfile {} answers the recipe: using it as it is",
                lock_path.display()
            )),
            Event::Vendored { count, dir } => self.info(format_args!(
                "imported {count} package(s) from {}",
                dir.display()
            )),
            Event::Unpacked {
                reused,
                fresh,
                unpacked_now,
            } => {
                self.info(format_args!(
                    "packages: {reused} unpacked before, {fresh} unpacked now"
                ));
                for label in unpacked_now {
                    self.detail(format_args!("  unpacked now: {label}"));
                }
            }
            Event::BaseLayers { cached, read } => self.info(format_args!(
                "base layers: {cached} known from the cache, {read} read"
            )),
            Event::DebRoutes { routes } => {
                let from: Vec<String> = routes
                    .iter()
                    .map(|(route, n)| format!("{n} from {route}"))
                    .collect();
                self.info(format_args!(".debs: {}", from.join(", ")));
            }
            Event::Layers { stats, cache } => {
                if cache {
                    self.info(format_args!(
                        "layer cache: hits {}, misses {}",
                        stats.reused, stats.written
                    ));
                } else {
                    self.info(format_args!(
                        "layer cache: off, {} layers written",
                        stats.written
                    ));
                }
                for d in &stats.decisions {
                    self.detail(format_args!(
                        "  {} {} ({} bytes): {}",
                        match d.source {
                            LayerSource::LayerCache => "cache hit:",
                            LayerSource::Written => "written:  ",
                        },
                        d.layer.digest,
                        d.layer.size,
                        d.created_by
                    ));
                }
            }
            Event::RemoteCache { report } => {
                for w in &report.warnings {
                    self.info(format_args!("warning: {w}"));
                }
                let archives = if report.archive_hits + report.archive_misses > 0 {
                    format!(
                        ", Python and npm archives {} hits, {} misses",
                        report.archive_hits, report.archive_misses
                    )
                } else {
                    String::new()
                };
                self.info(format_args!(
                    "remote cache: .debs {} hits, {} misses{archives}; {} bytes downloaded; {} entries pushed ({} bytes), {} already there",
                    report.deb_hits,
                    report.deb_misses,
                    report.bytes_downloaded,
                    report.entries_pushed,
                    report.bytes_uploaded,
                    report.entries_present
                ));
            }
            Event::Downloading { packages, bytes } => {
                *self.download() = Some(DownloadState {
                    started: std::time::Instant::now(),
                    packages,
                    bytes,
                    done_packages: 0,
                    done_bytes: 0,
                });
                self.info(format_args!(
                    "downloading {packages} package(s), {}",
                    human_bytes(bytes)
                ));
            }
            Event::Fetched { bytes } => {
                let mut state = self.download();
                let Some(d) = state.as_mut() else { return };
                d.done_packages += 1;
                d.done_bytes += bytes;
                if self.terminal && self.level == Level::Normal {
                    let secs = d.started.elapsed().as_secs_f64().max(0.001);
                    eprint!(
                        "\r\x1b[2K  {}/{} package(s), {} of {}, {}/s",
                        d.done_packages,
                        d.packages,
                        human_bytes(d.done_bytes),
                        human_bytes(d.bytes),
                        human_bytes((d.done_bytes as f64 / secs) as u64)
                    );
                }
            }
            Event::Downloaded { packages, bytes } => {
                let started = self.download().take().map(|d| d.started);
                if self.terminal && self.level == Level::Normal {
                    // Clear the status line before the summary replaces it.
                    eprint!("\r\x1b[2K");
                }
                let secs = started.map_or(0.0, |t| t.elapsed().as_secs_f64());
                let rate = if secs > 0.0 {
                    format!(", {}/s", human_bytes((bytes as f64 / secs) as u64))
                } else {
                    String::new()
                };
                self.info(format_args!(
                    "downloaded {packages} package(s), {} in {secs:.1} s{rate}",
                    human_bytes(bytes)
                ));
            }
        }
    }

    /// The pipeline's progress callback.
    pub(crate) fn progress(&self) -> impl Fn(Event) + '_ {
        move |e| self.event(e)
    }

    /// The registry client's progress: on a terminal one status line with
    /// the totals of every blob in flight (blobs move on several threads at
    /// once, so there is no per-blob line to update); with `-v` a summary
    /// line when they are done. `verb` says what moves them ("sending").
    pub(crate) fn transfers(&self, verb: &'static str) -> Progress {
        let (level, terminal) = (self.level, self.terminal);
        let state = std::sync::Mutex::new(None::<TransferState>);
        Progress::new(move |event| {
            // A poisoned lock only means a progress line was lost.
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                Transfer::Started { blobs, bytes } => {
                    *state = Some(TransferState {
                        started: std::time::Instant::now(),
                        blobs,
                        bytes,
                        done_blobs: 0,
                        done_bytes: 0,
                        moved: 0,
                    });
                }
                Transfer::Blob { bytes, moved } => {
                    let Some(t) = state.as_mut() else { return };
                    t.done_blobs += 1;
                    t.done_bytes += bytes;
                    t.moved += usize::from(moved);
                    if terminal && level == Level::Normal {
                        let secs = t.started.elapsed().as_secs_f64().max(0.001);
                        eprint!(
                            "\r\x1b[2K  {verb}: {}/{} blob(s), {} of {}, {}/s",
                            t.done_blobs,
                            t.blobs,
                            human_bytes(t.done_bytes),
                            human_bytes(t.bytes),
                            human_bytes((t.done_bytes as f64 / secs) as u64)
                        );
                    }
                }
                Transfer::Finished => {
                    let Some(t) = state.take() else { return };
                    if terminal && level == Level::Normal {
                        eprint!("\r\x1b[2K");
                    }
                    if level >= Level::Verbose {
                        eprintln!(
                            "{verb}: {} of {} blob(s) done ({} of {}), {} moved, in {:.1} s",
                            t.done_blobs,
                            t.blobs,
                            human_bytes(t.done_bytes),
                            human_bytes(t.bytes),
                            t.moved,
                            t.started.elapsed().as_secs_f64()
                        );
                    }
                }
            }
        })
    }
}

/// The blobs of one push or pull, counted as they finish.
struct TransferState {
    started: std::time::Instant,
    blobs: usize,
    bytes: u64,
    done_blobs: usize,
    done_bytes: u64,
    moved: usize,
}

/// A size as people read it: bytes, kB, MB or GB (powers of 1000).
pub(crate) fn human_bytes(n: u64) -> String {
    match n {
        0..=999 => format!("{n} B"),
        1_000..=999_999 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// An image as `--json` documents describe it: its digest, and per
/// platform the manifest, config and layers with their sizes.
pub(crate) fn image_json(built: &Built) -> Value {
    let images: Vec<Value> = built
        .images
        .iter()
        .map(|i| {
            let layers: Vec<Value> = i
                .layers
                .iter()
                .map(|l| {
                    json!({
                        "digest": l.digest.to_string(),
                        "diff_id": l.diff_id.to_string(),
                        "size": l.size,
                        "media_type": l.media_type.to_string(),
                    })
                })
                .collect();
            json!({
                "platform": i.platform.to_string(),
                "manifest": i.manifest.digest.to_string(),
                "config": i.config.digest.to_string(),
                "layers": layers,
            })
        })
        .collect();
    json!({
        "digest": built.digest().to_string(),
        "platforms": built.images.iter().map(|i| i.platform.to_string()).collect::<Vec<_>>(),
        "images": images,
    })
}

pub(crate) fn attestations_json(attestations: &[Attestation]) -> Value {
    attestations
        .iter()
        .map(|a| {
            json!({
                "kind": a.kind.name(),
                "platform": a.platform.as_ref().map(|p| p.to_string()),
                "digest": a.manifest.digest.to_string(),
                "subject": a.subject_digest().to_string(),
                "signed": a.keyid.is_some(),
                "keyid": a.keyid,
                "form": a.form.name(),
            })
        })
        .collect()
}

/// The digests of an image's referrers (its attestations).
pub(crate) fn referrers_json(referrers: &[oci_spec::image::Descriptor]) -> Value {
    referrers
        .iter()
        .map(|d| Value::from(d.digest().to_string()))
        .collect()
}

/// Prints one JSON document on stdout.
pub(crate) fn print_json(doc: &Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, doc)?;
    out.write_all(b"\n")?;
    Ok(())
}
