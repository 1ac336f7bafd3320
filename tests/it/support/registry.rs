//! An in-process OCI registry (the distribution-spec subset a push and a
//! pull use) on 127.0.0.1, with authentication modes and injected faults,
//! to test how the client copes with a misbehaving registry. Every
//! request is logged with the headers the tests look at. One response per
//! connection, then the connection is closed.
//!
//! ```ignore
//! let reg = FakeRegistry::start(Auth::None);
//! reg.fault("PATCH", "/blobs/uploads/", 1, 1, Fault::DropMidBody(300)); // the 2nd PATCH
//! // … push to reg.host() …
//! assert_eq!(reg.blob("sha256:…"), Some(bytes));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine as _;
use stele::oci::Digest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// 401 with a Bearer challenge; `/token` hands out tokens for these
    /// basic credentials (GET), or for `password` as an OAuth2 refresh
    /// token (POST `grant_type=refresh_token&refresh_token=…`).
    Bearer {
        user: String,
        password: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a distribution error body with `code`.
    Status(u16, &'static str),
    /// Close the connection before reading the body or answering.
    Drop,
    /// Read (and keep, as a registry that wrote them would) this many body
    /// bytes of an upload, then close without answering.
    DropMidBody(usize),
    /// Answer as usual, but with a wrong `Docker-Content-Digest`.
    WrongDigest,
    /// Answer a PATCH with 201 (and a Location) instead of 202.
    Created,
    /// Answer as usual, but without the `Location` header.
    NoLocation,
    /// Answer as usual (full `Content-Length`), but send only half the
    /// body, then close.
    HalfBody,
    /// Answer as usual, sending the body `chunk` bytes at a time, one
    /// chunk every `every`, until done or the client hangs up.
    Trickle {
        chunk: usize,
        every: std::time::Duration,
    },
    /// Answer as usual, send this many body bytes, then nothing, keeping
    /// the connection open until the client closes it.
    StallAfter(usize),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub content_range: Option<String>,
    pub range: Option<String>,
}

struct Rule {
    method: String,
    path_contains: String,
    skip: u32,
    count: u32,
    seen: u32,
    fired: u32,
    fault: Fault,
}

#[derive(Default)]
struct State {
    auth: Option<Auth>,
    tokens: BTreeSet<String>,
    blobs: BTreeMap<String, Vec<u8>>,
    links: BTreeSet<(String, String)>,
    manifests: BTreeMap<(String, String), (String, Vec<u8>)>,
    uploads: BTreeMap<String, (String, Vec<u8>)>,
    next_id: u64,
    rules: Vec<Rule>,
    log: Vec<Logged>,
    redirect_blobs: Option<String>,
    referrers_api: bool,
    /// Upload requests (`/blobs/uploads`) being answered now, the most
    /// there ever were at once, and how long each is held.
    uploads_in_flight: u32,
    max_uploads_in_flight: u32,
    upload_delay: std::time::Duration,
}

pub struct FakeRegistry {
    addr: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeRegistry {
    pub fn start(auth: Auth) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State {
            auth: Some(auth),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop, addr) = (state.clone(), stop.clone(), addr.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, addr) = (state.clone(), addr.clone());
                    std::thread::spawn(move || {
                        let _ = handle(conn, &state, &addr);
                    });
                }
            })
        };
        FakeRegistry {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, the registry part of a reference.
    pub fn host(&self) -> &str {
        &self.addr
    }

    /// Requests matching `method` whose path (with `?query`, when there is
    /// one) contains `path_contains`: after letting `skip` through, the
    /// next `count` get `fault`.
    pub fn fault(&self, method: &str, path_contains: &str, skip: u32, count: u32, fault: Fault) {
        self.state.lock().unwrap().rules.push(Rule {
            method: method.into(),
            path_contains: path_contains.into(),
            skip,
            count,
            seen: 0,
            fired: 0,
            fault,
        });
    }

    /// Blob GETs answer 307 to the same path on `base` (another server).
    pub fn redirect_blobs_to(&self, base: &str) {
        self.state.lock().unwrap().redirect_blobs = Some(base.to_string());
    }

    /// Each upload request (`/blobs/uploads`) is held this long before it
    /// is answered, so uploads that run at once overlap measurably.
    pub fn slow_uploads(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().upload_delay = delay;
    }

    /// The most upload requests that were being answered at once.
    pub fn max_uploads_in_flight(&self) -> u32 {
        self.state.lock().unwrap().max_uploads_in_flight
    }

    pub fn enable_referrers_api(&self) {
        self.state.lock().unwrap().referrers_api = true;
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.state.lock().unwrap().blobs.get(digest).cloned()
    }

    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = Digest::of(bytes).to_string();
        let mut st = self.state.lock().unwrap();
        st.blobs.insert(digest.clone(), bytes.to_vec());
        st.links.insert((repo.into(), digest.clone()));
        digest
    }

    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(String, Vec<u8>)> {
        self.state
            .lock()
            .unwrap()
            .manifests
            .get(&(repo.to_string(), reference.to_string()))
            .cloned()
    }

    /// Stores `bytes` as the manifest `reference` (a tag or digest) of
    /// `repo`, as a PUT would, without checking what they hold.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: Vec<u8>) {
        self.state.lock().unwrap().manifests.insert(
            (repo.to_string(), reference.to_string()),
            (media_type.to_string(), bytes),
        );
    }

    /// Replaces the bytes stored under a manifest reference (a registry or
    /// proxy that changed them).
    pub fn tamper_manifest(&self, repo: &str, reference: &str, bytes: Vec<u8>) {
        let mut st = self.state.lock().unwrap();
        let entry = st
            .manifests
            .get_mut(&(repo.to_string(), reference.to_string()))
            .expect("manifest to tamper with");
        entry.1 = bytes;
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Response {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn body(mut self, b: Vec<u8>) -> Response {
        self.body = b;
        self
    }
    fn error(status: u16, code: &str) -> Response {
        Response::new(status)
            .header("Content-Type", "application/json")
            .body(
                format!(r#"{{"errors":[{{"code":"{code}","message":"injected {code}","detail":null}}]}}"#)
                    .into_bytes(),
            )
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
            {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(mut conn: TcpStream, state: &Mutex<State>, addr: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let (path, query_text) = target.split_once('?').unwrap_or((&target, ""));
    let query = query_text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let req = Request {
        method: method.clone(),
        path: percent_decode(path),
        query,
        headers,
    };
    let length: usize = req
        .headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let fault = {
        let mut st = state.lock().unwrap();
        st.log.push(Logged {
            method: method.clone(),
            path: req.path.clone(),
            query: query_text.to_string(),
            authorization: req.headers.get("authorization").cloned(),
            content_range: req.headers.get("content-range").cloned(),
            range: req.headers.get("range").cloned(),
        });
        let mut chosen = None;
        let target = if query_text.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{query_text}", req.path)
        };
        for r in st.rules.iter_mut() {
            if r.method == method && target.contains(&r.path_contains) {
                r.seen += 1;
                if chosen.is_none() && r.seen > r.skip && r.fired < r.count {
                    r.fired += 1;
                    chosen = Some(r.fault.clone());
                }
            }
        }
        chosen
    };
    if fault == Some(Fault::Drop) {
        return conn.shutdown(Shutdown::Both);
    }
    if let Some(Fault::DropMidBody(n)) = fault {
        let mut part = vec![0; n.min(length)];
        reader.read_exact(&mut part)?;
        let mut st = state.lock().unwrap();
        if let Some(id) = req.path.rsplit('/').next() {
            if let Some(u) = st.uploads.get_mut(id) {
                u.1.extend_from_slice(&part);
            }
        }
        drop(st);
        return conn.shutdown(Shutdown::Both);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let upload = req.path.contains("/blobs/uploads");
    if upload {
        let delay = {
            let mut st = state.lock().unwrap();
            st.uploads_in_flight += 1;
            st.max_uploads_in_flight = st.max_uploads_in_flight.max(st.uploads_in_flight);
            st.upload_delay
        };
        std::thread::sleep(delay);
    }
    let mut resp = match fault {
        Some(Fault::Status(code, name)) => Response::error(code, name),
        _ => route(&req, body, state, addr),
    };
    if upload {
        state.lock().unwrap().uploads_in_flight -= 1;
    }
    match fault {
        Some(Fault::WrongDigest) => {
            resp.headers.retain(|(k, _)| k != "Docker-Content-Digest");
            resp.headers.push((
                "Docker-Content-Digest".into(),
                Digest::of(b"not what was sent").to_string(),
            ));
        }
        Some(Fault::Created) if resp.status == 202 => resp.status = 201,
        Some(Fault::NoLocation) => resp.headers.retain(|(k, _)| k != "Location"),
        _ => {}
    }
    let reason = match resp.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Requested Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        resp.body.len()
    ));
    conn.write_all(head.as_bytes())?;
    if method != "HEAD" {
        match fault {
            Some(Fault::Trickle { chunk, every }) => {
                for part in resp.body.chunks(chunk.max(1)) {
                    conn.write_all(part)?;
                    conn.flush()?;
                    std::thread::sleep(every);
                }
            }
            Some(Fault::StallAfter(n)) => {
                conn.write_all(&resp.body[..n.min(resp.body.len())])?;
                conn.flush()?;
                // Until the client gives up and closes.
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                return Ok(());
            }
            _ => {
                let send = if fault == Some(Fault::HalfBody) {
                    resp.body.len() / 2
                } else {
                    resp.body.len()
                };
                conn.write_all(&resp.body[..send])?;
            }
        }
    }
    conn.flush()?;
    conn.shutdown(Shutdown::Both)
}

/// The repository and what follows it: `/v2/a/b/blobs/x` → (`a/b`, `blobs`, `x`).
fn split_path(path: &str) -> Option<(String, &'static str, String)> {
    let rest = path.strip_prefix("/v2/")?;
    for kind in ["blobs/uploads", "blobs", "manifests", "referrers"] {
        let marker = format!("/{kind}/");
        if let Some(i) = rest.rfind(&marker) {
            return Some((
                rest[..i].to_string(),
                kind,
                rest[i + marker.len()..].to_string(),
            ));
        }
        let end = format!("/{kind}");
        if kind == "blobs/uploads" && rest.ends_with(&end) {
            return Some((
                rest[..rest.len() - end.len()].to_string(),
                kind,
                String::new(),
            ));
        }
    }
    None
}

fn authorized(req: &Request, st: &State, addr: &str, repo: &str) -> Result<(), Response> {
    let given = req.headers.get("authorization");
    match st.auth.as_ref().unwrap() {
        Auth::None => Ok(()),
        Auth::Basic { user, password } => {
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            if given == Some(&want) {
                Ok(())
            } else {
                Err(Response::error(401, "UNAUTHORIZED")
                    .header("WWW-Authenticate", r#"Basic realm="fake""#))
            }
        }
        Auth::Bearer { .. } => {
            let ok = given
                .and_then(|g| g.strip_prefix("Bearer "))
                .is_some_and(|t| st.tokens.contains(t));
            if ok {
                Ok(())
            } else {
                Err(Response::error(401, "UNAUTHORIZED").header(
                    "WWW-Authenticate",
                    format!(r#"Bearer realm="http://{addr}/token",service="fake-registry",scope="repository:{repo}:pull""#),
                ))
            }
        }
    }
}

fn route(req: &Request, body: Vec<u8>, state: &Mutex<State>, addr: &str) -> Response {
    let mut st = state.lock().unwrap();
    if req.path == "/token" {
        let Some(Auth::Bearer { user, password }) = st.auth.clone() else {
            return Response::new(404);
        };
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let form: BTreeMap<String, String> = String::from_utf8_lossy(&body)
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect();
        let refreshed = req.method == "POST"
            && form.get("grant_type").map(String::as_str) == Some("refresh_token")
            && form.get("refresh_token") == Some(&password);
        if !refreshed && req.headers.get("authorization") != Some(&want) {
            return Response::error(401, "UNAUTHORIZED");
        }
        st.next_id += 1;
        let token = format!("token-{}", st.next_id);
        st.tokens.insert(token.clone());
        return Response::new(200)
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"token":"{token}","expires_in":300}}"#).into_bytes());
    }
    if req.path == "/v2/" || req.path == "/v2" {
        if let Err(r) = authorized(req, &st, addr, "") {
            return r;
        }
        return Response::new(200).body(b"{}".to_vec());
    }
    let Some((repo, kind, rest)) = split_path(&req.path) else {
        return Response::error(404, "NAME_UNKNOWN");
    };
    if let Err(r) = authorized(req, &st, addr, &repo) {
        return r;
    }
    let m = req.method.as_str();
    match (kind, m) {
        ("blobs", "HEAD" | "GET") => {
            if !st.links.contains(&(repo.clone(), rest.clone())) {
                return Response::error(404, "BLOB_UNKNOWN");
            }
            if m == "GET" {
                if let Some(base) = &st.redirect_blobs {
                    return Response::new(307).header("Location", format!("{base}{}", req.path));
                }
            }
            let bytes = st.blobs[&rest].clone();
            let r = Response::new(200)
                .header("Docker-Content-Digest", rest.clone())
                .header("Content-Type", "application/octet-stream")
                .header("Accept-Ranges", "bytes");
            if m == "HEAD" {
                return head_with_length(r, bytes.len());
            }
            // `Range: bytes=N-`, as distribution serves blobs.
            let start = req
                .headers
                .get("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(n) = start.filter(|n| *n < bytes.len()) {
                let mut partial = r.header(
                    "Content-Range",
                    format!("bytes {n}-{}/{}", bytes.len() - 1, bytes.len()),
                );
                partial.status = 206;
                return partial.body(bytes[n..].to_vec());
            }
            r.body(bytes)
        }
        ("blobs/uploads", "POST") => {
            if let (Some(d), Some(from)) = (req.query.get("mount"), req.query.get("from")) {
                if st.links.contains(&(from.clone(), d.clone())) {
                    st.links.insert((repo.clone(), d.clone()));
                    return Response::new(201)
                        .header("Location", format!("/v2/{repo}/blobs/{d}"))
                        .header("Docker-Content-Digest", d.clone());
                }
            }
            st.next_id += 1;
            let id = format!("u{}", st.next_id);
            st.uploads.insert(id.clone(), (repo.clone(), Vec::new()));
            Response::new(202)
                .header("Location", format!("/v2/{repo}/blobs/uploads/{id}"))
                .header("Range", "0-0")
        }
        ("blobs/uploads", "PATCH" | "GET" | "PUT") => {
            let Some((_, data)) = st.uploads.get_mut(&rest) else {
                return Response::error(404, "BLOB_UPLOAD_UNKNOWN");
            };
            if m == "PATCH" {
                if let Some(cr) = req.headers.get("content-range") {
                    let start: usize = cr
                        .split('-')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .unwrap_or(usize::MAX);
                    if start != data.len() {
                        return Response::error(416, "BLOB_UPLOAD_INVALID");
                    }
                }
                data.extend_from_slice(&body);
            }
            let range = format!("0-{}", data.len().saturating_sub(1));
            let location = format!("/v2/{repo}/blobs/uploads/{rest}");
            match m {
                "PATCH" => Response::new(202)
                    .header("Location", location)
                    .header("Range", range),
                "GET" => Response::new(204)
                    .header("Location", location)
                    .header("Range", range),
                _ => {
                    data.extend_from_slice(&body);
                    let data = data.clone();
                    let digest = Digest::of(&data).to_string();
                    if req.query.get("digest") != Some(&digest) {
                        return Response::error(400, "DIGEST_INVALID");
                    }
                    st.uploads.remove(&rest);
                    st.blobs.insert(digest.clone(), data);
                    st.links.insert((repo.clone(), digest.clone()));
                    Response::new(201)
                        .header("Location", format!("/v2/{repo}/blobs/{digest}"))
                        .header("Docker-Content-Digest", digest)
                }
            }
        }
        ("manifests", "PUT") => {
            let digest = Digest::of(&body).to_string();
            let ct = req.headers.get("content-type").cloned().unwrap_or_default();
            st.manifests
                .insert((repo.clone(), rest.clone()), (ct.clone(), body.clone()));
            st.manifests
                .insert((repo.clone(), digest.clone()), (ct, body));
            Response::new(201)
                .header("Location", format!("/v2/{repo}/manifests/{digest}"))
                .header("Docker-Content-Digest", digest)
        }
        ("manifests", "GET" | "HEAD") => match st.manifests.get(&(repo.clone(), rest.clone())) {
            Some((ct, bytes)) => {
                let bytes = bytes.clone();
                let r = Response::new(200)
                    .header("Content-Type", ct.clone())
                    .header("Docker-Content-Digest", Digest::of(&bytes).to_string());
                if m == "HEAD" {
                    head_with_length(r, bytes.len())
                } else {
                    r.body(bytes)
                }
            }
            None => Response::error(404, "MANIFEST_UNKNOWN"),
        },
        ("referrers", "GET") if st.referrers_api => {
            let mut list = Vec::new();
            for ((r, reference), (_, bytes)) in &st.manifests {
                if r != &repo || !reference.starts_with("sha256:") {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
                if v["subject"]["digest"] == rest.as_str() {
                    list.push(serde_json::json!({
                        "mediaType": v["mediaType"], "digest": reference, "size": bytes.len(),
                        "artifactType": v["artifactType"],
                    }));
                }
            }
            let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list});
            Response::new(200)
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                .body(serde_json::to_vec(&index).unwrap())
        }
        _ => Response::error(404, "UNSUPPORTED"),
    }
}

/// A HEAD answer carries the length of what a GET would send.
fn head_with_length(mut r: Response, len: usize) -> Response {
    // `handle` writes Content-Length from the body; HEAD sends none of it.
    r.body = vec![0; len];
    r
}
