//! What commands print for people (stderr) and for CI (`--json` on
//! stdout): one place, so every command describes an image alike.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::progress::{Meter, Screen, Ticker, Why};
use crate::attest::Attestation;
use crate::image::{LayerProgress, LayerSource};
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
/// output, so `NO_COLOR` holds without being read. A phase's progress
/// (downloads, unpacking, layer writing, blob transfers) is a status line
/// on a terminal and a whole line every few seconds elsewhere (`progress`).
#[derive(Debug)]
pub struct Reporter {
    pub level: Level,
    screen: Arc<Screen>,
    /// The pipeline's phase under way (downloads, unpacking, layers come
    /// one after the other); the pipeline reports it from its threads.
    phase: Arc<Mutex<Option<Meter>>>,
    /// Shows the phase as time passes; `None` with `-q`.
    ticker: Option<Ticker>,
}

/// `STELE_PROGRESS_INTERVAL`: seconds between two progress lines of a
/// phase in a log (not a terminal).
const INTERVAL_VARIABLE: &str = "STELE_PROGRESS_INTERVAL";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

impl Reporter {
    pub fn new(quiet: bool, verbose: bool) -> Reporter {
        let level = match (quiet, verbose) {
            (true, _) => Level::Quiet,
            (false, true) => Level::Verbose,
            (false, false) => Level::Normal,
        };
        use std::io::IsTerminal;
        let interval = match std::env::var(INTERVAL_VARIABLE) {
            Err(_) => DEFAULT_INTERVAL,
            Ok(v) => match v.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
                _ => {
                    eprintln!(
                        "warning: {INTERVAL_VARIABLE}=`{v}` is not a number of seconds; using {}",
                        DEFAULT_INTERVAL.as_secs()
                    );
                    DEFAULT_INTERVAL
                }
            },
        };
        let screen = Arc::new(Screen::new(
            level,
            std::io::stderr().is_terminal(),
            interval,
        ));
        let phase = Arc::new(Mutex::new(None));
        let ticker = (level >= Level::Normal).then(|| Ticker::start(screen.clone(), phase.clone()));
        Reporter {
            level,
            screen,
            phase,
            ticker,
        }
    }

    fn phase(&self) -> MutexGuard<'_, Option<Meter>> {
        // A poisoned lock only means a progress line was lost.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new phase of the pipeline.
    fn start(&self, meter: Meter) {
        *self.phase() = Some(meter);
    }

    /// The phase advanced by `items` and `bytes`.
    fn advance(&self, items: usize, bytes: u64) {
        let mut phase = self.phase();
        if let Some(m) = phase.as_mut() {
            m.advance(items, bytes);
            self.screen.show(m, Instant::now(), Why::Moved);
        }
    }

    /// The phase is over: its status line goes; returns when it started.
    fn finish(&self) -> Option<Instant> {
        let started = self.phase().take().map(|m| m.started());
        self.screen.clear();
        started
    }

    /// A progress line, shown unless `-q`.
    pub(crate) fn info(&self, line: impl std::fmt::Display) {
        self.screen.line(Level::Normal, line);
    }

    /// A line only `-v` shows: a cache decision, a detail of the work.
    pub fn detail(&self, line: impl std::fmt::Display) {
        self.screen.line(Level::Verbose, line);
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
            Event::Unpacking { packages, bytes } => {
                self.start(Meter::new("unpacking", "package(s)", packages, bytes));
                self.info(format_args!(
                    "unpacking {packages} package(s) ({} of .debs)",
                    human_bytes(bytes)
                ));
            }
            Event::UnpackedOne { bytes } => self.advance(1, bytes),
            Event::Unpacked {
                reused,
                fresh,
                unpacked_now,
            } => {
                self.finish();
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
            Event::Writing(LayerProgress::Started { layers, bytes }) => {
                self.start(Meter::new("writing layers", "layer(s)", layers, bytes))
            }
            Event::Writing(LayerProgress::Bytes(bytes)) => self.advance(0, bytes),
            Event::Writing(LayerProgress::Done { bytes }) => self.advance(1, bytes),
            Event::Layers { stats, cache } => {
                self.finish();
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
                self.start(Meter::new("downloading", "package(s)", packages, bytes));
                self.info(format_args!(
                    "downloading {packages} package(s), {}",
                    human_bytes(bytes)
                ));
            }
            Event::Fetched { bytes } => self.advance(1, bytes),
            Event::Downloaded { packages, bytes } => {
                let secs = self.finish().map_or(0.0, |t| t.elapsed().as_secs_f64());
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

    /// The registry client's progress: the totals of every blob in flight
    /// (blobs move on several threads at once, so there is no per-blob
    /// line to update), as a phase of its own; with `-v` a summary line
    /// when they are done. `verb` says what moves them ("sending").
    pub(crate) fn transfers(&self, verb: &'static str) -> Progress {
        let screen = self.screen.clone();
        let state = Mutex::new(None::<(Meter, usize)>);
        Progress::new(move |event| {
            // A poisoned lock only means a progress line was lost.
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                Transfer::Started { blobs, bytes } => {
                    *state = Some((Meter::new(verb, "blob(s)", blobs, bytes), 0));
                }
                Transfer::Blob { bytes, moved } => {
                    let Some((meter, moved_count)) = state.as_mut() else {
                        return;
                    };
                    *moved_count += usize::from(moved);
                    meter.advance(1, bytes);
                    screen.show(meter, Instant::now(), Why::Moved);
                }
                Transfer::Finished => {
                    let Some((meter, moved)) = state.take() else {
                        return;
                    };
                    screen.clear();
                    screen.line(
                        Level::Verbose,
                        format_args!(
                            "{verb}: {}, {moved} moved, in {:.1} s",
                            meter.summary(),
                            meter.started().elapsed().as_secs_f64()
                        ),
                    );
                }
            }
        })
    }
}

impl Drop for Reporter {
    /// No status line is left for an error (printed after the command) to
    /// run into.
    fn drop(&mut self) {
        drop(self.ticker.take());
        self.screen.clear();
    }
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
