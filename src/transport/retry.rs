//! The retry layer: the one place that decides what is worth another try
//! and when it is made.
//!
//! - what is worth another try ([`Transient`]): a refused, reset or
//!   stalled connection, a short read, 429 and 5xx answers. Never a
//!   certificate or other TLS failure, an unknown host name, or another
//!   4xx: asking again gives the same answer, only later.
//! - how many tries one operation gets, and for how long: a [`Budget`] of
//!   `retries + 1` attempts and the total deadline (`max_time`), shared by
//!   the requests of the operation, its retries and the bodies and
//!   uploads resumed inside it, so an operation is bounded as a whole;
//!   each attempt is sent with what is left of the deadline, and no retry
//!   starts (nor waits) past it; waits double from the policy's backoff,
//!   capped.
//! - what is tried again: one request ([`Transport::send`]), an operation
//!   the caller describes as one attempt ([`Transport::retrying`]), a body
//!   from where it broke off ([`ResumingBody`], by `Range`), a chunked
//!   upload from where the far side has it ([`Transport::resume`], through
//!   the upload's [`Resumable`] callbacks).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{NetworkSettings, Request, Transport, TransportError};

const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// The longest a server's `Retry-After` is waited: a service that asks
/// for more is asked again then, and the budget ends it.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// How often and how patiently one use of the transport tries again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further attempts after a transient failure.
    pub retries: u32,
    /// Wait before the first retry; doubled for each one after.
    pub backoff: Duration,
}

impl RetryPolicy {
    pub(super) fn of(settings: &NetworkSettings) -> RetryPolicy {
        RetryPolicy {
            retries: settings.retries,
            backoff: settings.backoff,
        }
    }

    /// The wait before retry number `n` (1-based: the attempt after the
    /// first).
    fn wait(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(BACKOFF_CAP)
    }
}

/// An attempt's failure, as the retry layer sees it.
pub(crate) trait Transient {
    /// Another attempt may succeed.
    fn transient(&self) -> bool;
    /// The final failure after `attempts` attempts (to say so).
    fn gave_up(self, attempts: u32) -> Self;
    /// The final failure when the operation's total of `limit` ran out
    /// after `attempts` attempts; by default as [`Transient::gave_up`].
    fn out_of_time(self, limit: Duration, attempts: u32) -> Self
    where
        Self: Sized,
    {
        let _ = limit;
        self.gave_up(attempts)
    }
}

impl Transient for TransportError {
    fn transient(&self) -> bool {
        matches!(
            self,
            TransportError::Connection { .. } | TransportError::Slow { .. }
        )
    }
    fn gave_up(self, n: u32) -> Self {
        match self {
            TransportError::Connection {
                method,
                url,
                message,
                ..
            } => TransportError::Connection {
                method,
                url,
                message,
                attempts: n,
            },
            TransportError::Slow {
                method,
                url,
                message,
                ..
            } => TransportError::Slow {
                method,
                url,
                message,
                attempts: n,
            },
            other => other,
        }
    }
    fn out_of_time(self, limit: Duration, attempts: u32) -> Self {
        match self {
            TransportError::Connection {
                method,
                url,
                message,
                ..
            }
            | TransportError::Slow {
                method,
                url,
                message,
                ..
            } => TransportError::Deadline {
                method,
                url,
                limit,
                attempts,
                why: message,
            },
            other => other,
        }
    }
}

/// Statuses worth asking again for: rate limiting and server trouble.
pub(crate) fn transient_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// The wait a 429 or 503 answer asks for in `Retry-After` (RFC 9110
/// section 10.2.3), in its delta-seconds form. The HTTP-date form would
/// need the clock, which nothing below the CLI reads; the backoff covers
/// it.
fn retry_after(resp: &ureq::Response) -> Option<Duration> {
    let value = resp.header("Retry-After")?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// What is left of one operation's attempts and time (see
/// [`Transport::budget`]).
pub(crate) struct Budget {
    left: AtomicU32,
    used: AtomicU32,
    /// When the operation must be done by, and the total that gives.
    deadline: Option<(Instant, Duration)>,
    /// A retry was refused because it would have started past the
    /// deadline.
    out_of_time: AtomicBool,
}

impl Budget {
    /// When every attempt must be answered by.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|(d, _)| d)
    }

    /// The total, when it has run out (or no retry fits in what is left).
    pub fn expired(&self) -> Option<Duration> {
        self.deadline
            .filter(|(d, _)| Instant::now() >= *d || self.out_of_time.load(Ordering::Relaxed))
            .map(|(_, limit)| limit)
    }

    /// Takes one more attempt, if there is one left.
    fn take(&self) -> bool {
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            self.used.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Attempts made so far, the first included.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }
}

impl Transport {
    /// The attempts one operation may make: `retries + 1`, or 1 without
    /// `retry` (a request whose repetition its caller steers).
    pub(crate) fn budget(&self, retry: bool) -> Budget {
        let limit = self.max_time;
        Budget {
            left: AtomicU32::new(if retry { self.policy.retries } else { 0 }),
            used: AtomicU32::new(1),
            deadline: (!limit.is_zero()).then(|| (Instant::now() + limit, limit)),
            out_of_time: AtomicBool::new(false),
        }
    }

    /// Whether another attempt may be made within `budget`; if so, takes
    /// it, counts it and waits the backoff first. Every retry of the
    /// crate passes here. None starts, nor waits, past the deadline.
    pub(crate) fn again(&self, budget: &Budget) -> bool {
        self.again_after(budget, None)
    }

    /// [`Transport::again`], waiting at least what the server `asked`
    /// for (its `Retry-After`, capped).
    fn again_after(&self, budget: &Budget, asked: Option<Duration>) -> bool {
        let wait = self
            .policy
            .wait(budget.used())
            .max(asked.unwrap_or_default().min(RETRY_AFTER_CAP));
        if budget
            .deadline()
            .is_some_and(|d| Instant::now() + wait >= d)
        {
            budget.out_of_time.store(true, Ordering::Relaxed);
            return false;
        }
        if !budget.take() {
            return false;
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(wait);
        true
    }

    /// The failure `e` ends the operation after `budget`: said to be the
    /// deadline's doing when that ran out.
    fn ended<E: Transient>(budget: &Budget, e: E) -> E {
        match budget.expired() {
            Some(limit) if e.transient() => e.out_of_time(limit, budget.used()),
            _ => e.gave_up(budget.used()),
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the operation's
    /// budget is spent (`retries + 1` attempts, 1 when `retry` is off).
    /// The caller describes one attempt.
    pub(crate) fn retrying<T, E: Transient>(
        &self,
        retry: bool,
        op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        self.retrying_within(&self.budget(retry), op)
    }

    /// [`Transport::retrying`] within a budget the caller also hands to
    /// the requests and [`ResumingBody`]s of its attempts.
    pub(crate) fn retrying_within<T, E: Transient>(
        &self,
        budget: &Budget,
        mut op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if e.transient() && self.again(budget) => {}
                Err(e) => return Err(Self::ended(budget, e)),
            }
        }
    }

    /// Sends one request through the base sender, again after a transient
    /// failure or a 429/5xx answer while `budget` lasts. When it is spent,
    /// the last answer is returned as it is (its status and body are the
    /// caller's to report), or the last failure.
    pub(crate) fn send(
        &self,
        budget: &Budget,
        req: &Request,
    ) -> Result<ureq::Response, TransportError> {
        loop {
            if let Some(limit) = budget.expired() {
                return Err(TransportError::Deadline {
                    method: req.method,
                    url: req.url.to_string(),
                    limit,
                    attempts: budget.used().saturating_sub(1),
                    why: "no time was left for another attempt".into(),
                });
            }
            match self.sender.send(req, budget.deadline()) {
                Ok(resp)
                    if transient_status(resp.status())
                        && self.again_after(budget, retry_after(&resp)) => {}
                Ok(resp) => return Ok(resp),
                Err(e) if e.transient() && self.again(budget) => {}
                Err(e) => return Err(Self::ended(budget, e)),
            }
        }
    }

    /// `resp`'s body (the answer to a GET of `url`), picked up again by
    /// `reopen` where it broke off, within `budget`: see [`ResumingBody`].
    pub(crate) fn resuming<'a>(
        &'a self,
        budget: &'a Budget,
        url: &str,
        resp: ureq::Response,
        reopen: Box<Reopen<'a>>,
    ) -> ResumingBody<'a> {
        let ranges = resp
            .header("Accept-Ranges")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("bytes"));
        let length = resp
            .header("Content-Length")
            .and_then(|l| l.trim().parse().ok());
        ResumingBody {
            transport: self,
            budget,
            url: url.to_string(),
            body: Box::new(resp.into_reader()),
            offset: 0,
            length,
            ranges,
            reopen,
            failure: None,
        }
    }

    /// Sends `transfer` from offset 0 to `total`. A part that broke is
    /// followed by asking how far the far side got, and sending goes on
    /// from there. The breaks between two answered parts draw on one
    /// budget; each answered part earns the next a fresh one, so a long
    /// upload over a flaky link is bounded per stretch, not as a whole.
    pub(crate) fn resume<R: Resumable>(
        &self,
        total: u64,
        transfer: &mut R,
    ) -> Result<(), PartFailed<R::Error>> {
        let mut offset = 0;
        let mut budget = self.budget(true);
        while offset < total {
            match transfer.send_part(offset) {
                Ok(next) => {
                    offset = next;
                    budget = self.budget(true);
                }
                Err(PartFailed::Broke { why, .. }) if self.again(&budget) => {
                    offset = transfer.far_side_has(&why).map_err(PartFailed::Ended)?;
                }
                Err(PartFailed::Broke { why, .. }) => {
                    return Err(PartFailed::Broke {
                        why,
                        attempts: budget.used(),
                    })
                }
                Err(ended) => return Err(ended),
            }
        }
        Ok(())
    }
}

/// A transfer the far side keeps as it arrives (a chunked upload), so
/// that after a failure it goes on from what the far side holds, not from
/// the start. The transfer supplies the two steps; [`Transport::resume`]
/// decides when, and how often, each is taken.
pub(crate) trait Resumable {
    /// How the transfer ends other than by parts that keep breaking.
    type Error;
    /// Sends the part that starts at `offset`; returns the offset the far
    /// side holds now.
    fn send_part(&mut self, offset: u64) -> Result<u64, PartFailed<Self::Error>>;
    /// After a part broke (`why`): the offset the far side holds, to go on
    /// from. An error ends the transfer (the far side lost it).
    fn far_side_has(&mut self, why: &str) -> Result<u64, Self::Error>;
}

/// How one part of a [`Resumable`] transfer failed.
#[derive(Debug)]
pub(crate) enum PartFailed<E> {
    /// The connection broke, or the far side answered 429 or 5xx: worth
    /// asking how far it got and going on. From [`Transport::resume`]:
    /// the budget is spent after `attempts`.
    Broke { why: String, attempts: u32 },
    /// The transfer ends with this.
    Ended(E),
}

/// Asks again for a body from `offset` on (a `Range` request); the
/// answer is used only when it is a `206` starting exactly there.
pub(crate) type Reopen<'a> = dyn FnMut(u64) -> Result<ureq::Response, TransportError> + 'a;

/// An answer's body that, when it stalls (no progress for the idle
/// timeout), breaks off or ends short of its `Content-Length`, asks again
/// for the rest with a `Range` request, where the server said it serves
/// ranges (`Accept-Ranges: bytes`), within the operation's budget. Else
/// the read fails and [`ResumingBody::failure`] says how, so the caller's
/// attempt can fail transiently and the operation start over.
pub(crate) struct ResumingBody<'a> {
    transport: &'a Transport,
    budget: &'a Budget,
    url: String,
    body: Box<dyn std::io::Read + Send + 'a>,
    offset: u64,
    length: Option<u64>,
    ranges: bool,
    reopen: Box<Reopen<'a>>,
    failure: Option<TransportError>,
}

impl ResumingBody<'_> {
    /// The transient failure that ended reading, if one did.
    pub fn failure(&mut self) -> Option<TransportError> {
        self.failure.take()
    }

    fn broke_off(&self, why: &std::io::Error) -> TransportError {
        let context = format!("the answer broke off after {} bytes: ", self.offset);
        super::failed_read("GET", &self.url, &context, why)
    }

    /// Picks the body up at `offset`, or says why it cannot.
    fn resume(&mut self, why: &std::io::Error) -> Result<(), TransportError> {
        if !self.ranges || !self.transport.again(self.budget) {
            return Err(Transport::ended(self.budget, self.broke_off(why)));
        }
        let resp = (self.reopen)(self.offset)?;
        let starts_here = resp
            .header("Content-Range")
            .and_then(|r| r.trim().strip_prefix("bytes "))
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(start, _)| start.trim().parse::<u64>().ok() == Some(self.offset));
        if resp.status() != 206 || !starts_here {
            return Err(self.broke_off(&std::io::Error::other(format!(
                "{why}; asked for the rest, the server answered {} without the range",
                resp.status()
            ))));
        }
        self.body = Box::new(resp.into_reader());
        Ok(())
    }
}

impl std::io::Read for ResumingBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let why = match self.body.read(buf) {
                Ok(0) if self.length.is_some_and(|l| self.offset < l) => std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the connection closed before the end",
                ),
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) => e,
            };
            if let Err(failure) = self.resume(&why) {
                let message = failure.to_string();
                self.failure = Some(failure);
                return Err(std::io::Error::other(message));
            }
        }
    }
}

/// A body reader that remembers whether reading failed, so a failure of
/// the source (transient: a reset, a stall past the idle timeout, a body
/// ending short) can be told apart from one of whoever consumes it.
pub(crate) struct TrackedRead<R> {
    inner: R,
    read: u64,
    error: Option<std::io::Error>,
}

impl<R: std::io::Read> TrackedRead<R> {
    pub fn new(inner: R) -> TrackedRead<R> {
        TrackedRead {
            inner,
            read: 0,
            error: None,
        }
    }

    /// The transient failure a read met, if one did.
    pub fn failure(&self, method: &'static str, url: &str) -> Option<TransportError> {
        let context = format!("the answer broke off after {} bytes: ", self.read);
        self.error
            .as_ref()
            .map(|e| super::failed_read(method, url, &context, e))
    }
}

impl<R: std::io::Read> std::io::Read for TrackedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                let copy = std::io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_server::{Answer, Scripted};
    use std::io::Read;

    fn quick(retries: u32) -> Transport {
        Transport::new(NetworkSettings {
            retries,
            backoff: Duration::ZERO,
            ..NetworkSettings::default()
        })
    }

    fn refused() -> TransportError {
        TransportError::Connection {
            method: "GET",
            url: "https://registry.example/v2/".into(),
            message: "connection refused".into(),
            attempts: 1,
        }
    }

    /// Runs, through `t`'s retry layer, an operation whose every attempt
    /// is refused; how often it ran, and how it ended.
    fn always_refused(t: &Transport, retry: bool) -> (u32, TransportError) {
        let mut calls = 0;
        let e = t
            .retrying(retry, || -> Result<(), TransportError> {
                calls += 1;
                Err(refused())
            })
            .unwrap_err();
        (calls, e)
    }

    #[test]
    fn only_transient_failures_are_tried_again_within_the_budget() {
        let t = quick(3);
        let mut calls = 0;
        let e = t
            .retrying(true, || -> Result<(), TransportError> {
                calls += 1;
                Err(TransportError::Certificate {
                    method: "GET",
                    url: "https://registry.example/v2/".into(),
                    host: "registry.example:443".into(),
                    problem: "UnknownIssuer".into(),
                })
            })
            .unwrap_err();
        assert_eq!(calls, 1, "{e}");
        let (calls, e) = always_refused(&t, true);
        assert_eq!(calls, 4);
        assert!(e.to_string().contains("gave up after 4 attempt(s)"), "{e}");
        assert_eq!(t.retries(), 3);
        // Without retry: one attempt.
        assert_eq!(always_refused(&t, false).0, 1);
        assert!(transient_status(503) && transient_status(429) && !transient_status(404));
    }

    #[test]
    fn no_retry_starts_past_the_total_and_the_failure_says_so() {
        let t = Transport::new(NetworkSettings {
            retries: 10,
            backoff: Duration::from_millis(150),
            max_time: Duration::from_millis(400),
            ..NetworkSettings::default()
        });
        let started = Instant::now();
        let (calls, e) = always_refused(&t, true);
        // 0 ms, 150 ms, 450 ms (past 400): two attempts.
        assert_eq!(calls, 2, "{e}");
        assert!(started.elapsed() < Duration::from_millis(400));
        assert!(
            matches!(e, TransportError::Deadline { attempts: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("connection refused"), "{e}");
        // A request is sent with what is left, and not at all past it.
        let budget = t.budget(true);
        assert!(budget.deadline().is_some());
        let none = t.with_max_time(Duration::ZERO).budget(true);
        assert!(none.deadline().is_none());
    }

    #[test]
    fn a_rate_limited_answer_is_asked_again_after_the_wait_it_names() {
        let server = Scripted::start(vec![
            Answer::status(429, "slow down").header("Retry-After", "1"),
            Answer::status(200, "fine"),
        ]);
        let t = quick(2);
        let url = server.url("/x");
        let started = std::time::Instant::now();
        let resp = t.send(&t.budget(true), &get(&url)).unwrap();
        assert_eq!(resp.status(), 200);
        // The backoff is zero here: only the server's word made it wait.
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(t.retries(), 1);
        let answer = |h: &str| answer(&format!("HTTP/1.1 429 Slow\r\n{h}"), "");
        assert_eq!(
            retry_after(&answer("Retry-After: 7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&answer("Retry-After: Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }

    #[test]
    fn waits_double_and_are_capped() {
        let p = RetryPolicy {
            retries: 9,
            backoff: Duration::from_millis(500),
        };
        assert_eq!(p.wait(1), Duration::from_millis(500));
        assert_eq!(p.wait(3), Duration::from_secs(2));
        assert_eq!(p.wait(40), BACKOFF_CAP);
    }

    #[test]
    fn a_request_is_sent_again_after_5xx_and_the_last_answer_kept() {
        let server = Scripted::start(vec![
            Answer::status(503, "busy"),
            Answer::status(429, "slow down"),
            Answer::status(200, "fine"),
        ]);
        let t = quick(4);
        let url = server.url("/x");
        let req = Request {
            method: "GET",
            url: &url,
            headers: &[],
            body: None,
        };
        let resp = t.send(&t.budget(true), &req).unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(server.requests().len(), 3);
        assert_eq!(t.retries(), 2);

        // Spent: the last 5xx comes back to say what the server said.
        let server = Scripted::start(vec![Answer::status(500, "no"); 3]);
        let url = server.url("/x");
        let req = Request { url: &url, ..req };
        let resp = quick(1).send(&quick(1).budget(true), &req).unwrap();
        assert_eq!(resp.status(), 500);
        assert_eq!(server.requests().len(), 2);
    }

    fn get(url: &str) -> Request<'_> {
        Request {
            method: "GET",
            url,
            headers: &[],
            body: None,
        }
    }

    /// A reader that gives `data` up to `cut`, then fails.
    struct Breaks(std::io::Cursor<Vec<u8>>, u64);

    impl Read for Breaks {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.position() >= self.1 {
                return Err(std::io::ErrorKind::ConnectionReset.into());
            }
            let room = (self.1 - self.0.position()) as usize;
            let n = buf.len().min(room);
            self.0.read(&mut buf[..n])
        }
    }

    /// A parsed answer: `head` (status line and headers), then `body`.
    fn answer(head: &str, body: &str) -> ureq::Response {
        format!("{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            .parse()
            .unwrap()
    }

    #[test]
    fn a_body_that_breaks_off_is_picked_up_where_it_broke() {
        let data = "0123456789".repeat(10);
        let t = quick(2);
        let budget = t.budget(true);
        let first = answer("HTTP/1.1 200 OK\r\nAccept-Ranges: bytes", &data);
        let mut asked = Vec::new();
        let reopen = |offset: u64| {
            asked.push(offset);
            Ok(answer(
                &format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {offset}-99/100"),
                &data[offset as usize..],
            ))
        };
        let mut body = t.resuming(&budget, "http://h/x", first, Box::new(reopen));
        // The connection resets after 40 bytes.
        body.body = Box::new(Breaks(std::io::Cursor::new(data.clone().into_bytes()), 40));
        let mut got = String::new();
        body.read_to_string(&mut got).unwrap();
        drop(body);
        assert_eq!(got, data);
        assert_eq!(asked, [40]);
        assert_eq!(budget.used(), 2);
        assert_eq!(t.retries(), 1);
    }

    #[test]
    fn a_body_is_not_resumed_without_ranges_nor_from_a_200() {
        let t = quick(2);
        let budget = t.budget(true);
        let first = answer("HTTP/1.1 200 OK", "");
        let mut body = t.resuming(
            &budget,
            "http://h/x",
            first,
            Box::new(|_| panic!("no ranges: never asked")),
        );
        body.body = Box::new(Breaks(std::io::Cursor::new(vec![7; 10]), 5));
        let mut sink = Vec::new();
        assert!(body.read_to_end(&mut sink).is_err());
        let failure = body.failure().unwrap();
        assert!(failure.transient(), "{failure}");
        assert!(failure.to_string().contains("after 5 bytes"), "{failure}");

        // Ranges promised, but the server answers 200 (the whole body).
        let first = answer("HTTP/1.1 200 OK\r\nAccept-Ranges: bytes", "");
        let mut body = t.resuming(
            &budget,
            "http://h/x",
            first,
            Box::new(|_| Ok(answer("HTTP/1.1 200 OK", "0123456789"))),
        );
        body.body = Box::new(Breaks(std::io::Cursor::new(vec![7; 10]), 5));
        assert!(body.read_to_end(&mut sink).is_err());
        let failure = body.failure().unwrap().to_string();
        assert!(failure.contains("without the range"), "{failure}");
    }

    /// A far side that keeps what arrives in parts of `part` bytes, and
    /// drops the connection on the parts starting at `drops`, after
    /// keeping `kept` bytes of them.
    struct Far {
        part: u64,
        total: u64,
        held: u64,
        drops: Vec<u64>,
        kept: u64,
        sent: Vec<u64>,
        asked: u32,
    }

    impl Far {
        fn new(total: u64, drops: Vec<u64>, kept: u64) -> Far {
            Far {
                part: 100,
                total,
                held: 0,
                drops,
                kept,
                sent: Vec::new(),
                asked: 0,
            }
        }
    }

    impl Resumable for Far {
        type Error = ();
        fn send_part(&mut self, offset: u64) -> Result<u64, PartFailed<()>> {
            self.sent.push(offset);
            let end = (offset + self.part).min(self.total);
            if let Some(i) = self.drops.iter().position(|d| *d == offset) {
                self.drops.remove(i);
                self.held = offset + self.kept;
                return Err(PartFailed::Broke {
                    why: "reset".into(),
                    attempts: 1,
                });
            }
            self.held = end;
            Ok(end)
        }
        fn far_side_has(&mut self, why: &str) -> Result<u64, ()> {
            assert_eq!(why, "reset");
            self.asked += 1;
            Ok(self.held)
        }
    }

    #[test]
    fn a_chunked_transfer_goes_on_from_what_the_far_side_holds() {
        let t = quick(1);
        let mut far = Far::new(450, vec![100, 330], 30);
        t.resume(450, &mut far).unwrap();
        // Each drop is followed by a question and the rest from there;
        // one retry a stretch is enough, since progress renews the budget.
        assert_eq!(far.sent, [0, 100, 130, 230, 330, 360]);
        assert_eq!(far.asked, 2);

        // Failing again before any progress spends the budget.
        let mut far = Far::new(300, vec![100, 100], 0);
        let e = t.resume(300, &mut far).unwrap_err();
        assert!(matches!(e, PartFailed::Broke { attempts: 2, .. }), "{e:?}");
        assert_eq!(far.sent, [0, 100, 100]);
        assert_eq!(far.asked, 1);
    }
}
