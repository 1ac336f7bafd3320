//! Deadlines on a connection's reads, as curl's `--speed-limit` and
//! `--speed-time` have them, kept by the socket itself so that a reused
//! connection, the answer's head and its body are all held to them.
//!
//! - Waiting for an answer to begin (after anything was written: a
//!   request, a body, a handshake message) may take `idle`: a registry
//!   may think a while before it answers a finished upload.
//! - Once an answer flows, reading it below `speed_limit` bytes per second
//!   over `speed_time` of waiting abandons it; a stall (no byte at all) is
//!   abandoned after `speed_time`. Only time spent waiting for the far
//!   side counts: a reader that is slow itself (hashing, writing to disk)
//!   is not the server's fault.
//!
//! The total a request may take is the retry layer's (`Budget`), handed to
//! each attempt as its deadline.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How patient reads and writes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pace {
    /// The wait for an answer to begin, and for a write to make progress.
    pub idle: Duration,
    /// Bytes per second an answer must keep to; 0: no floor (stalls are
    /// then abandoned after `idle`).
    pub speed_limit: u64,
    /// The window the floor is measured over.
    pub speed_time: Duration,
}

/// Why a read was abandoned; the source of the I/O error a read returns,
/// so the failure's message says which deadline it broke.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Abandoned {
    #[error("no answer came for {} s", .0.as_secs())]
    NoAnswer(Duration),
    #[error("the answer stalled: no byte came for {} s (the floor is {limit} bytes/s over {} s)", .window.as_secs(), .window.as_secs())]
    Stalled { window: Duration, limit: u64 },
    #[error("the answer came at {rate:.1} bytes/s over {} s, below the floor of {limit} bytes/s", .window.as_secs())]
    TooSlow {
        rate: f64,
        window: Duration,
        limit: u64,
    },
}

/// A connection's socket with [`Pace`]'s deadlines on every read and
/// write. It sets the socket's timeouts itself before each call, since
/// whoever pooled the connection may have changed them.
pub(super) struct Paced {
    socket: TcpStream,
    pace: Pace,
    /// Something was written and no byte of the answer has come yet.
    awaiting: bool,
    /// Time spent waiting in reads since the window began, and the bytes
    /// they brought.
    waited: Duration,
    bytes: u64,
}

impl std::fmt::Debug for Paced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paced")
            .field("socket", &self.socket)
            .field("pace", &self.pace)
            .finish_non_exhaustive()
    }
}

impl Paced {
    pub fn new(socket: TcpStream, pace: Pace) -> Paced {
        Paced {
            socket,
            pace,
            awaiting: true,
            waited: Duration::ZERO,
            bytes: 0,
        }
    }

    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Holds the connection to `pace` from now on (a tunnel's CONNECT is
    /// held to the connect timeout, what goes through it to the run's).
    pub fn set_pace(&mut self, pace: Pace) {
        self.pace = pace;
    }

    /// The longest one read may block now.
    fn read_timeout(&self) -> Duration {
        let t = if self.awaiting || self.pace.speed_limit == 0 {
            self.pace.idle
        } else {
            self.pace.speed_time.min(self.pace.idle)
        };
        // A zero timeout means "none" to the socket.
        t.max(Duration::from_millis(1))
    }

    /// Counts `n` bytes that came after `waited`; an error when the
    /// window closes below the floor.
    fn arrived(&mut self, n: usize, waited: Duration) -> Result<(), Abandoned> {
        if self.awaiting {
            // The wait for an answer to begin is not its speed.
            self.awaiting = false;
            self.waited = Duration::ZERO;
            self.bytes = 0;
            return Ok(());
        }
        self.waited += waited;
        self.bytes += n as u64;
        if self.pace.speed_limit == 0 || self.waited < self.pace.speed_time {
            return Ok(());
        }
        let rate = self.bytes as f64 / self.waited.as_secs_f64();
        let window = self.waited;
        self.waited = Duration::ZERO;
        self.bytes = 0;
        if rate < self.pace.speed_limit as f64 {
            return Err(Abandoned::TooSlow {
                rate,
                window,
                limit: self.pace.speed_limit,
            });
        }
        Ok(())
    }
}

impl Abandoned {
    /// Abandoned for the throughput floor (a stall or a trickle), not
    /// for an answer that never began.
    pub fn below_floor(&self) -> bool {
        !matches!(self, Abandoned::NoAnswer(_))
    }
}

/// Whether `e` is a read abandoned for the throughput floor.
pub(crate) fn below_floor(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Abandoned>())
        .is_some_and(Abandoned::below_floor)
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Read for Paced {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = self.read_timeout();
        self.socket.set_read_timeout(Some(timeout))?;
        let started = Instant::now();
        match self.socket.read(buf) {
            Ok(n) => {
                if n > 0 {
                    self.arrived(n, started.elapsed())
                        .map_err(|why| io::Error::new(io::ErrorKind::TimedOut, why))?;
                }
                Ok(n)
            }
            Err(e) if timed_out(&e) => {
                let why = if self.awaiting || self.pace.speed_limit == 0 {
                    Abandoned::NoAnswer(timeout)
                } else {
                    Abandoned::Stalled {
                        window: timeout,
                        limit: self.pace.speed_limit,
                    }
                };
                Err(io::Error::new(io::ErrorKind::TimedOut, why))
            }
            Err(e) => Err(e),
        }
    }
}

impl Write for Paced {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.awaiting = true;
        self.socket
            .set_write_timeout(Some(self.pace.idle.max(Duration::from_millis(1))))?;
        self.socket.write(buf)
    }

    // rustls hands its queued records over at once, and its last gasp
    // after a failed handshake is one call: an alert queued behind a
    // ChangeCipherSpec goes only if every buffer is written.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.awaiting = true;
        self.socket
            .set_write_timeout(Some(self.pace.idle.max(Duration::from_millis(1))))?;
        self.socket.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

impl ureq::ReadWrite for Paced {
    fn socket(&self) -> Option<&TcpStream> {
        Some(&self.socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair(pace: Pace) -> (Paced, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (Paced::new(client, pace), server)
    }

    const QUICK: Pace = Pace {
        idle: Duration::from_millis(1500),
        speed_limit: 1000,
        speed_time: Duration::from_millis(300),
    };

    #[test]
    fn a_trickle_below_the_floor_is_abandoned_after_the_window() {
        let (mut paced, mut server) = pair(QUICK);
        paced.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let trickle = std::thread::spawn(move || {
            for _ in 0..40 {
                if server.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let started = Instant::now();
        let mut buf = [0; 64];
        let e = loop {
            match paced.read(&mut buf) {
                Ok(0) => panic!("the trickle ended before the floor was seen"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(e.to_string().contains("below the floor of 1000"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        drop(paced);
        trickle.join().unwrap();
    }

    #[test]
    fn a_stall_is_abandoned_after_the_window_and_the_first_byte_may_take_idle() {
        let (mut paced, mut server) = pair(QUICK);
        paced.write_all(b"request").unwrap();
        let answer = std::thread::spawn(move || {
            // Longer than the window, shorter than idle: the server thinks.
            std::thread::sleep(Duration::from_millis(600));
            server.write_all(b"0123456789").unwrap();
            // Then never another byte.
            std::thread::sleep(Duration::from_secs(3));
        });
        let mut buf = [0; 10];
        assert_eq!(paced.read(&mut buf).unwrap(), 10);
        let started = Instant::now();
        let e = paced.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("stalled"), "{e}");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1200), "{took:?}");
        drop(paced);
        drop(answer);
    }

    #[test]
    fn an_answer_that_never_begins_waits_idle() {
        let (mut paced, _server) = pair(Pace {
            idle: Duration::from_millis(200),
            ..QUICK
        });
        paced.write_all(b"request").unwrap();
        let e = paced.read(&mut [0; 4]).unwrap_err();
        assert!(e.to_string().contains("no answer came"), "{e}");
    }
}
