//! A loopback static-file HTTP/1.1 server for hermetic network tests, with
//! fault injection for retry tests. Each connection gets one response and
//! is closed. The server stops when the [`HttpServer`] is dropped.
//!
//! ```ignore
//! let (url, server) = HttpServer::serve(dir.path());   // "http://127.0.0.1:PORT"
//! server.fail_first("/dists/s/InRelease", 2, Fault::Status(500));
//! // … fetch …
//! assert_eq!(server.hits("/dists/s/InRelease"), 3);
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What a faulty response looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Send the headers (with the full Content-Length) and half the body,
    /// then close.
    Truncate,
    /// Send the headers and half the body, then nothing for 10 seconds
    /// (past a client's idle timeout), then close.
    Stall,
}

#[derive(Default)]
struct State {
    /// path → (remaining faulty responses, fault)
    faults: BTreeMap<String, (u32, Fault)>,
    /// `METHOD /path` of every request, in arrival order.
    log: Vec<String>,
    /// Answer `Range: bytes=N-` with 206 and say `Accept-Ranges: bytes`.
    ranges: bool,
    /// `(path, N)` of every `Range: bytes=N-` request.
    range_requests: Vec<(String, u64)>,
    /// Serve as a snapshot archive: `/<YYYYMMDDTHHMMSSZ>/PATH` is `PATH`
    /// of the folder, whatever the time (the archive as it was).
    snapshots: bool,
}

pub struct HttpServer {
    url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves the files below `dir` on `127.0.0.1` at a free port. Returns
    /// the base URL (no trailing `/`) and the server handle.
    pub fn serve(dir: &Path) -> (String, HttpServer) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let dir = dir.to_path_buf();
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (dir, state) = (dir.clone(), state.clone());
                    std::thread::spawn(move || {
                        let _ = handle(conn, &dir, &state);
                    });
                }
            })
        };
        let server = HttpServer {
            url: url.clone(),
            state,
            stop,
            thread: Some(thread),
        };
        (url, server)
    }

    /// Serves the files below `dir` as a snapshot archive would serve the
    /// archive they are, at any time: `/<YYYYMMDDTHHMMSSZ>/PATH` answers
    /// with `PATH` (a path without such a time is a 404). The log keeps
    /// the time.
    pub fn serve_snapshots(dir: &Path) -> (String, HttpServer) {
        let served = HttpServer::serve(dir);
        served.1.state.lock().unwrap().snapshots = true;
        served
    }

    /// The next `n` requests for `path` (URL path, e.g. `/dists/s/InRelease`)
    /// get `fault` instead of the file.
    pub fn fail_first(&self, path: &str, n: u32, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(path.to_string(), (n, fault));
    }

    /// From now on, serve byte ranges (`Range: bytes=N-`) and say so.
    pub fn accept_ranges(&self) {
        self.state.lock().unwrap().ranges = true;
    }

    /// The start offsets of the range requests for `path`, in order.
    pub fn range_requests(&self, path: &str) -> Vec<u64> {
        self.state
            .lock()
            .unwrap()
            .range_requests
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, n)| *n)
            .collect()
    }

    /// Every request so far as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// How many requests (any method) asked for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.split_once(' ').map(|(_, p)| p) == Some(path))
            .count()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut conn: TcpStream, dir: &Path, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range_start = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range:") {
            range_start = v
                .trim()
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<u64>().ok());
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = percent_decode(target.split('?').next().unwrap_or(""));
    let (fault, ranges, snapshots) = {
        let mut st = state.lock().unwrap();
        st.log.push(format!("{method} {path}"));
        if let Some(n) = range_start {
            st.range_requests.push((path.clone(), n));
        }
        let ranges = st.ranges;
        let fault = match st.faults.get_mut(&path) {
            Some((n, fault)) if *n > 0 => {
                *n -= 1;
                Some(*fault)
            }
            _ => None,
        };
        (fault, ranges, st.snapshots)
    };
    let path = if snapshots {
        match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
            Some((time, rest)) if is_snapshot_time(time) => format!("/{rest}"),
            // Not a time: nothing (the folder itself is no file).
            _ => String::new(),
        }
    } else {
        path
    };
    let extra = if ranges {
        "Accept-Ranges: bytes\r\n"
    } else {
        ""
    };
    let respond = |conn: &mut TcpStream, status: &str, body: &[u8], send: usize| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n{extra}Connection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes())?;
        if method != "HEAD" {
            conn.write_all(&body[..send])?;
        }
        conn.flush()
    };
    if method != "GET" && method != "HEAD" {
        respond(&mut conn, "405 Method Not Allowed", b"", 0)?;
        return conn.shutdown(Shutdown::Both);
    }
    let file = resolve(dir, &path).and_then(|p| std::fs::read(p).ok());
    if let (true, Some(start), None, Some(body)) = (ranges, range_start, fault, &file) {
        let start = (start as usize).min(body.len());
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\n{extra}Connection: close\r\n\r\n",
            body.len() - start,
            body.len().saturating_sub(1),
            body.len()
        );
        conn.write_all(head.as_bytes())?;
        conn.write_all(&body[start..])?;
        conn.flush()?;
        return conn.shutdown(Shutdown::Both);
    }
    match (fault, file) {
        (Some(Fault::Stall), Some(body)) => {
            respond(&mut conn, "200 OK", &body, body.len() / 2)?;
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
        (Some(Fault::Drop), _) => {}
        (Some(Fault::Status(code)), _) => respond(&mut conn, &format!("{code} Injected"), b"", 0)?,
        (Some(Fault::Truncate), Some(body)) => respond(&mut conn, "200 OK", &body, body.len() / 2)?,
        (_, Some(body)) => respond(&mut conn, "200 OK", &body, body.len())?,
        (_, None) => respond(&mut conn, "404 Not Found", b"", 0)?,
    }
    conn.shutdown(Shutdown::Both)
}

/// `20010909T014640Z`: a time as snapshot archives name one.
fn is_snapshot_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || i == 15 || c.is_ascii_digit())
}

/// The file for a URL path, refusing anything that would leave `dir`.
fn resolve(dir: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let full = dir.join(rel);
    full.is_file().then_some(full)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex_digits = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex_digits, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
