//! Progress as people see it, on stderr. On a terminal a phase (downloads,
//! unpacking, layer writing, blob transfers) keeps one status line,
//! redrawn in place at most ten times a second and cleared before any
//! other line is printed. Elsewhere (CI logs, a pipe) only whole lines: a
//! phase that is still going says how far it is every `interval` (five
//! seconds unless `STELE_PROGRESS_INTERVAL` says otherwise), so a long
//! build is never silent and a short one adds nothing. A `Ticker` shows
//! the pipeline's phase on time even while nothing moves (one large
//! package being unpacked). `-q` shows none of it. Nothing here colors
//! its output.

use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::report::{human_bytes, Level};

/// A terminal's status line is redrawn at most this often.
const REDRAW: Duration = Duration::from_millis(100);

/// Where every line a command tells people goes: one lock, so lines from
/// several threads never mix, and a status line is cleared before a whole
/// line is printed under it.
#[derive(Debug)]
pub(crate) struct Screen {
    level: Level,
    terminal: bool,
    /// Between two progress lines of a phase, off a terminal.
    interval: Duration,
    /// Whether a status line is on the terminal now.
    status_shown: Mutex<bool>,
}

impl Screen {
    pub fn new(level: Level, terminal: bool, interval: Duration) -> Screen {
        Screen {
            level,
            terminal,
            interval,
            status_shown: Mutex::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        // A poisoned lock only means a progress line was lost.
        self.status_shown.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A whole line, shown at `at` or a more talkative level.
    pub fn line(&self, at: Level, text: impl Display) {
        if self.level < at {
            return;
        }
        let mut shown = self.lock();
        if *shown {
            eprint!("\r\x1b[2K");
            *shown = false;
        }
        eprintln!("{text}");
    }

    /// Shows what `meter` has to show at `now`, if anything: after it
    /// moved (`Why::Moved`), or as time passed (`Why::Tick`).
    pub fn show(&self, meter: &mut Meter, now: Instant, why: Why) {
        if self.level < Level::Normal {
            return;
        }
        match meter.due(now, self.terminal, self.interval, why) {
            Show::Nothing => {}
            Show::Status(text) => {
                let mut shown = self.lock();
                eprint!("\r\x1b[2K{text}");
                *shown = true;
            }
            Show::Line(text) => self.line(Level::Normal, text),
        }
    }

    /// How often a `Ticker` looks at the phase: a terminal's line shows
    /// the rate and time as they change; a log's is looked at four times
    /// an interval, so a line is never much later than its interval.
    pub fn tick_period(&self) -> Duration {
        if self.terminal {
            Duration::from_secs(1)
        } else {
            (self.interval / 4).max(Duration::from_millis(200))
        }
    }

    /// Removes the status line, if one is shown.
    pub fn clear(&self) {
        let mut shown = self.lock();
        if *shown {
            eprint!("\r\x1b[2K");
            *shown = false;
        }
    }
}

/// Why a meter is asked what to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// It advanced.
    Moved,
    /// Time passed: a log gets a line even when nothing moved, so a phase
    /// stuck on one large item is still seen to be alive.
    Tick,
}

/// A thread that shows the pipeline's phase as time passes, stopped
/// (and joined) when dropped.
pub(crate) struct Ticker {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    pub fn start(screen: Arc<Screen>, phase: Arc<Mutex<Option<Meter>>>) -> Ticker {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let period = screen.tick_period();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period)
            {
                // A poisoned lock only means a progress line was lost.
                let mut phase = phase.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(meter) = phase.as_mut() {
                    screen.show(meter, Instant::now(), Why::Tick);
                }
            }
        });
        Ticker {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticker")
    }
}

/// What a meter has to show now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Show {
    Nothing,
    /// The terminal's status line, redrawn.
    Status(String),
    /// A whole line, for a log.
    Line(String),
}

/// One phase's progress: what it has to do (items and bytes), what is
/// done, and when it was last shown.
#[derive(Debug)]
pub(crate) struct Meter {
    /// "unpacking", "writing layers", "sending", …
    verb: &'static str,
    /// What items are called, as "package(s)".
    unit: &'static str,
    items: usize,
    bytes: u64,
    done_items: usize,
    done_bytes: u64,
    started: Instant,
    /// When the status line was last drawn.
    drawn: Option<Instant>,
    /// When the last whole line was printed (the phase's start counts),
    /// and at what percentage and item count.
    lined: (Instant, (u64, usize)),
}

impl Meter {
    pub fn new(verb: &'static str, unit: &'static str, items: usize, bytes: u64) -> Meter {
        let now = Instant::now();
        Meter {
            verb,
            unit,
            items,
            bytes,
            done_items: 0,
            done_bytes: 0,
            started: now,
            drawn: None,
            lined: (now, (0, 0)),
        }
    }

    pub fn advance(&mut self, items: usize, bytes: u64) {
        self.done_items = (self.done_items + items).min(self.items);
        self.done_bytes = (self.done_bytes + bytes).min(self.bytes);
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// `3 of 4 blob(s) done (1.2 MB of 2.0 MB)`, for a closing line.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} {} done ({} of {})",
            self.done_items,
            self.items,
            self.unit,
            human_bytes(self.done_bytes),
            human_bytes(self.bytes)
        )
    }

    /// Done, in whole percent: by bytes when the phase has any, else by
    /// items.
    fn percent(&self) -> u64 {
        match (self.bytes, self.items) {
            (0, 0) => 100,
            (0, items) => (self.done_items * 100 / items) as u64,
            (bytes, _) => (u128::from(self.done_bytes) * 100 / u128::from(bytes)) as u64,
        }
    }

    /// On a terminal a status line, at most every `REDRAW` but for the
    /// last step; elsewhere a whole line when `interval` has passed since
    /// the last one and the phase moved since (on a tick, whether or not
    /// it moved).
    pub fn due(&mut self, now: Instant, terminal: bool, interval: Duration, why: Why) -> Show {
        if terminal {
            // The last step is always drawn: the line ends as the phase did.
            let complete = self.done_items == self.items && self.done_bytes == self.bytes;
            if !complete
                && self
                    .drawn
                    .is_some_and(|t| now.saturating_duration_since(t) < REDRAW)
            {
                return Show::Nothing;
            }
            self.drawn = Some(now);
            return Show::Status(self.status_text(now));
        }
        let (at, shown) = self.lined;
        let moved = (self.percent(), self.done_items);
        if now.saturating_duration_since(at) < interval || (why == Why::Moved && moved == shown) {
            return Show::Nothing;
        }
        self.lined = (now, moved);
        Show::Line(self.line_text(now))
    }

    fn counts(&self) -> String {
        let mut text = format!("{}/{} {}", self.done_items, self.items, self.unit);
        if self.bytes > 0 {
            text.push_str(&format!(
                ", {} of {}",
                human_bytes(self.done_bytes),
                human_bytes(self.bytes)
            ));
        }
        text
    }

    /// `  unpacking: 5/18 package(s), 20.1 MB of 44.1 MB, 12.3 MB/s`
    fn status_text(&self, now: Instant) -> String {
        let secs = now
            .saturating_duration_since(self.started)
            .as_secs_f64()
            .max(0.001);
        let mut text = format!("  {}: {}", self.verb, self.counts());
        if self.bytes > 0 {
            text.push_str(&format!(
                ", {}/s",
                human_bytes((self.done_bytes as f64 / secs) as u64)
            ));
        }
        text
    }

    /// `unpacking: 5/18 package(s), 20.1 MB of 44.1 MB (45%), 3.2 s`
    fn line_text(&self, now: Instant) -> String {
        format!(
            "{}: {} ({}%), {:.1} s",
            self.verb,
            self.counts(),
            self.percent(),
            now.saturating_duration_since(self.started).as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(meter: &Meter, ms: u64) -> Instant {
        meter.started() + Duration::from_millis(ms)
    }

    /// A terminal gets the status line at once, then at most every 100 ms,
    /// and the last step whenever it comes.
    #[test]
    fn a_terminal_redraws_at_most_ten_times_a_second() {
        let mut m = Meter::new("unpacking", "package(s)", 4, 4_000_000);
        m.advance(1, 1_000_000);
        let first = m.due(at(&m, 10), true, Duration::from_secs(5), Why::Moved);
        assert_eq!(
            first,
            Show::Status("  unpacking: 1/4 package(s), 1.0 MB of 4.0 MB, 100.0 MB/s".into())
        );
        m.advance(1, 1_000_000);
        assert_eq!(
            m.due(at(&m, 60), true, Duration::from_secs(5), Why::Moved),
            Show::Nothing
        );
        assert!(matches!(
            m.due(at(&m, 110), true, Duration::from_secs(5), Why::Moved),
            Show::Status(t) if t.contains("2/4 package(s)")
        ));
        m.advance(2, 2_000_000);
        assert!(
            matches!(
                m.due(at(&m, 120), true, Duration::from_secs(5), Why::Moved),
                Show::Status(t) if t.contains("4/4 package(s)")
            ),
            "the last step is drawn at once"
        );
    }

    /// A log gets a whole line once the interval has passed, and only when
    /// the phase moved: a stalled phase does not repeat itself.
    #[test]
    fn a_log_gets_a_line_per_interval() {
        let every = Duration::from_secs(5);
        let moved = Why::Moved;
        let mut m = Meter::new("writing layers", "layer(s)", 2, 1000);
        m.advance(0, 250);
        assert_eq!(m.due(at(&m, 4_000), false, every, moved), Show::Nothing);
        assert_eq!(
            m.due(at(&m, 5_000), false, every, moved),
            Show::Line("writing layers: 0/2 layer(s), 250 B of 1.0 kB (25%), 5.0 s".into())
        );
        assert_eq!(m.due(at(&m, 6_000), false, every, moved), Show::Nothing);
        assert_eq!(
            m.due(at(&m, 11_000), false, every, moved),
            Show::Nothing,
            "no move"
        );
        // A tick shows the phase alive though it did not move.
        assert_eq!(
            m.due(at(&m, 11_000), false, every, Why::Tick),
            Show::Line("writing layers: 0/2 layer(s), 250 B of 1.0 kB (25%), 11.0 s".into())
        );
        m.advance(1, 500);
        assert_eq!(m.due(at(&m, 11_500), false, every, moved), Show::Nothing);
        assert!(matches!(
            m.due(at(&m, 16_000), false, every, moved),
            Show::Line(t) if t.contains("1/2 layer(s)") && t.contains("(75%)")
        ));
    }

    /// Counts never pass their totals, and a phase of items only shows
    /// no bytes.
    #[test]
    fn counts_stay_within_their_totals() {
        let mut m = Meter::new("sending", "blob(s)", 2, 0);
        m.advance(3, 10);
        assert_eq!(m.percent(), 100);
        assert!(matches!(
            m.due(at(&m, 1), false, Duration::ZERO, Why::Moved),
            Show::Line(t) if t.starts_with("sending: 2/2 blob(s) (100%)")
        ));
    }
}
