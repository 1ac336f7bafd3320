//! Who we are to a registry: credentials from docker/containers auth files,
//! and the `WWW-Authenticate` challenge a registry answers a 401 with
//! (RFC 7235; the token flow is Docker's "Token Authentication
//! Specification", which every OCI registry with bearer auth follows).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use super::RegistryError;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token (docker's `identitytoken`, or a helper's
    /// answer for user `<token>`): exchanged at the token service with
    /// `grant_type=refresh_token`, never sent as a password.
    pub identity_token: Option<String>,
}

// Never print a password, not even in a debug dump.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.username)
    }
}

impl Credentials {
    fn password(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
            identity_token: None,
        }
    }

    fn token(username: &str, token: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: String::new(),
            identity_token: Some(token.to_string()),
        }
    }

    /// `Basic …` of user and password; `None` for an identity token,
    /// which only a token service may see.
    pub(crate) fn basic_header(&self) -> Option<String> {
        if self.identity_token.is_some() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }
}

/// The most an auth file may be; they are a few hundred bytes.
const AUTH_FILE_LIMIT: u64 = 1 << 20;

/// Credentials for `registry` (`host[:port]`) from the first of `files`
/// that has them, with where they came from (for messages). Files that do
/// not exist are skipped; a file that exists but cannot be read or parsed
/// is an error naming it, since silently going anonymous would hide the
/// user's mistake.
///
/// In each file, in docker's order: `credHelpers.<host>` (a
/// `docker-credential-NAME` program), then `auths.<key>` (`auth`, base64
/// `user:pass`; `username`/`password`; or `identitytoken`, an OAuth2
/// refresh token), then `credsStore` (a program for every host). A helper
/// that answers "credentials not found" passes to the next file. Keys may
/// carry a scheme or a path (`https://host/v1/`) as docker writes them;
/// the host part is compared, case-insensitively.
pub(crate) fn find_credentials(
    registry: &str,
    files: &[PathBuf],
    limits: HelperLimits,
) -> Result<Option<(Credentials, String)>, RegistryError> {
    for path in files {
        if let Some(found) = credentials_in(registry, path, limits)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn credentials_in(
    registry: &str,
    path: &Path,
    limits: HelperLimits,
) -> Result<Option<(Credentials, String)>, RegistryError> {
    let fail = |message: String| RegistryError::AuthFile {
        path: path.to_path_buf(),
        message,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e.to_string())),
    };
    if meta.len() > AUTH_FILE_LIMIT {
        return Err(fail(format!(
            "{} bytes is too large for an auth file",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: BTreeMap<String, Entry>,
        #[serde(default, rename = "credHelpers")]
        cred_helpers: BTreeMap<String, String>,
        #[serde(default, rename = "credsStore")]
        creds_store: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
        identitytoken: Option<String>,
        registrytoken: Option<String>,
    }
    let file: File = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("not a docker/containers auth file: {e}")))?;
    let want = registry.to_ascii_lowercase();
    let from_file = format!("auth file {}", path.display());
    let helper =
        |name: &str, field: &str| -> Result<Option<(Credentials, String)>, RegistryError> {
            let origin = format!(
                "credential helper docker-credential-{name} ({field} in {})",
                path.display()
            );
            Ok(run_helper(name, registry, path, field, limits)?.map(|c| (c, origin)))
        };
    if let Some((_, name)) = file
        .cred_helpers
        .iter()
        .find(|(key, _)| normalize_key(key) == want)
    {
        return helper(name, &format!("credHelpers.{registry}"));
    }
    for (key, entry) in &file.auths {
        if normalize_key(key) != want {
            continue;
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    fail(format!("auths.{key}.auth is not base64 of `user:password`"))
                })?;
            let (u, p) = decoded.split_once(':').ok_or_else(|| {
                fail(format!("auths.{key}.auth is not base64 of `user:password`"))
            })?;
            if let Some(t) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
                return Ok(Some((Credentials::token(u, t), from_file)));
            }
            return Ok(Some((Credentials::password(u, p), from_file)));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some((Credentials::password(u, p), from_file)));
        }
        if let Some(t) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            let user = entry.username.as_deref().unwrap_or("<token>");
            return Ok(Some((Credentials::token(user, t), from_file)));
        }
        if entry.registrytoken.is_some() {
            return Err(fail(format!(
                "auths.{key} holds only a `registrytoken`, which stele does not use; log in again (e.g. `podman login {registry}`) to store a password or identity token"
            )));
        }
        // An empty entry: docker writes one beside a credsStore.
    }
    if let Some(name) = file.creds_store.as_deref().filter(|n| !n.is_empty()) {
        return helper(name, "credsStore");
    }
    Ok(None)
}

/// What a docker-credential helper's `get` may answer when it has nothing
/// for the host (the protocol's "credentials not found" message).
const NOT_FOUND: &str = "credentials not found";

/// The most a helper's answer may be: `{"ServerURL","Username","Secret"}`
/// is a few hundred bytes, a token a few kB.
pub(crate) const HELPER_ANSWER_LIMIT: usize = 64 << 10;
/// How much of a failing helper's stderr a message quotes.
const HELPER_STDERR_QUOTED: usize = 512;

/// How a credential helper is run: the most it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperLimits {
    pub timeout: Duration,
}

impl Default for HelperLimits {
    fn default() -> Self {
        HelperLimits {
            timeout: Duration::from_secs(30),
        }
    }
}

/// The start of `bytes` for a message: at most `limit` bytes, printable,
/// and how many more there were.
fn quoted(bytes: &[u8], more: u64) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() && c != ' ' { ' ' } else { c })
        .collect();
    let text = text.trim();
    if more > 0 {
        format!("{text}… ({more} more bytes)")
    } else {
        text.to_string()
    }
}

/// What a helper's output pipes gave: its stdout (whole, or `None` when
/// it went past the limit), and the start of its stderr with the count of
/// the rest, which is read and dropped so the helper never blocks on it.
enum Output {
    Stdout(Option<Vec<u8>>),
}

/// Runs `docker-credential-NAME get` with `registry` on stdin (the
/// docker-credential-helpers protocol) and reads its
/// `{"Username","Secret"}`. `None` when it has nothing for the host. The
/// helper is untrusted as any input is: it gets `limits.timeout` to
/// answer, its answer may be at most [`HELPER_ANSWER_LIMIT`] bytes, and
/// only the start of what it says on stderr is kept. A helper that
/// breaks a limit is killed, with whatever it started (its process
/// group).
fn run_helper(
    name: &str,
    registry: &str,
    file: &Path,
    field: &str,
    limits: HelperLimits,
) -> Result<Option<Credentials>, RegistryError> {
    use std::io::{Read, Write as _};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{name}");
    let fail = |message: String| RegistryError::CredentialHelper {
        helper: format!("{program} ({field} in {})", file.display()),
        registry: registry.to_string(),
        message,
    };
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(fail("not a credential helper name".into()));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail("it is not on PATH; install it, or remove the entry to use the auth file's own `auths`".into())
            } else {
                fail(e.to_string())
            }
        })?;
    let group = child.id() as libc::pid_t;
    // Kills the helper and everything it started.
    let kill = || {
        // SAFETY: a signal to the process group the helper leads.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its answer.
        let _ = stdin.write_all(registry.as_bytes());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        let mut answer = Vec::new();
        let read = (&mut stdout)
            .take(HELPER_ANSWER_LIMIT as u64 + 1)
            .read_to_end(&mut answer);
        let whole = read.is_ok() && answer.len() <= HELPER_ANSWER_LIMIT;
        let _ = tx.send(Output::Stdout(whole.then_some(answer)));
    });
    let stderr_seen = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), 0u64)));
    let mut stderr = child.stderr.take().expect("piped");
    let seen = stderr_seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                return;
            }
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            let room = HELPER_STDERR_QUOTED.saturating_sub(seen.0.len()).min(n);
            seen.0.extend_from_slice(&buf[..room]);
            seen.1 += (n - room) as u64;
        }
    });
    let deadline = std::time::Instant::now() + limits.timeout;
    let mut answer = None;
    let status = loop {
        let now = std::time::Instant::now();
        if now >= deadline {
            kill();
            let _ = child.wait();
            return Err(fail(format!(
                "it did not answer within {} s; it was stopped",
                limits.timeout.as_secs_f32()
            )));
        }
        if answer.is_none() {
            match rx.recv_timeout((deadline - now).min(Duration::from_millis(20))) {
                Ok(Output::Stdout(Some(bytes))) => answer = Some(bytes),
                Ok(Output::Stdout(None)) => {
                    kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "its answer goes on past {HELPER_ANSWER_LIMIT} bytes; it was stopped (a credential is a few hundred bytes)"
                    )));
                }
                Err(_) => continue,
            }
        }
        match child.try_wait().map_err(|e| fail(e.to_string()))? {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    // Whatever it left running goes with it.
    kill();
    let answer = answer.unwrap_or_default();
    if !status.success() {
        let (start, more) = stderr_seen
            .lock()
            .map(|g| (g.0.clone(), g.1))
            .unwrap_or_default();
        let said = format!(
            "{} {}",
            quoted(&answer[..answer.len().min(HELPER_STDERR_QUOTED)], 0),
            quoted(&start, more)
        );
        if said.to_ascii_lowercase().contains(NOT_FOUND) {
            return Ok(None);
        }
        return Err(fail(format!("it failed ({status}): {}", said.trim())));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let a: Answer = serde_json::from_slice(&answer).map_err(|e| {
        fail(format!(
            "its answer is not the protocol's {{\"Username\",\"Secret\"}} JSON: {e}"
        ))
    })?;
    if a.username == "<token>" {
        return Ok(Some(Credentials::token(&a.username, &a.secret)));
    }
    Ok(Some(Credentials::password(&a.username, &a.secret)))
}

/// `https://Host:5000/v1/` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k).to_ascii_lowercase()
}

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`.
/// Parameter values may be quoted (with `\` escapes) or bare tokens.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// The token endpoint's answer: `token`, or OAuth2's `access_token`.
pub(crate) fn parse_token(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let t: TokenAnswer = serde_json::from_slice(body).ok()?;
    t.token
        .filter(|t| !t.is_empty())
        .or(t.access_token.filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        let c =
            parse_challenge(r#"bearer realm=https://auth.example/t, error="insufficient_scope""#)
                .unwrap();
        assert!(matches!(
            c,
            Challenge::Bearer {
                service: None,
                scope: None,
                ..
            }
        ));
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=\"x\""),
            None,
            "realm is required"
        );
    }

    #[test]
    fn reads_auth_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.json");
        let second = dir.path().join("second.json");
        let missing = dir.path().join("missing.json");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3:cret");
        std::fs::write(
            &first,
            format!(r#"{{"auths":{{"other.example":{{"auth":"{b64}"}},"id.example":{{"identitytoken":"x"}}}}}}"#),
        )
        .unwrap();
        std::fs::write(
            &second,
            format!(r#"{{"auths":{{"https://Registry.example:5000/v1/":{{"auth":"{b64}"}},"id.example":{{"username":"bob","password":"pw"}}}}}}"#),
        )
        .unwrap();
        let files = vec![missing, first.clone(), second.clone()];
        let (c, from) = find_credentials("registry.example:5000", &files, HelperLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3:cret")
        );
        assert_eq!(from, format!("auth file {}", second.display()));
        let (c, _) = find_credentials("other.example", &files, HelperLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "alice");
        // identitytoken alone is a refresh token, from the first file.
        let (c, _) = find_credentials("id.example", &files, HelperLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(c.identity_token.as_deref(), Some("x"));
        assert_eq!(c.basic_header(), None);
        assert!(
            find_credentials("none.example", &files, HelperLimits::default())
                .unwrap()
                .is_none()
        );
        let (c, _) = find_credentials("registry.example:5000", &files, HelperLimits::default())
            .unwrap()
            .unwrap();
        assert!(!format!("{c:?}").contains("s3:cret"));

        // Docker's bare registry token is named, not silently skipped.
        std::fs::write(&first, r#"{"auths":{"tok.example":{"registrytoken":"x"}}}"#).unwrap();
        let e = find_credentials("tok.example", &files, HelperLimits::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("auths.tok.example") && e.contains("registrytoken"),
            "{e}"
        );

        std::fs::write(&first, "{not json").unwrap();
        let e = find_credentials("x.example", &files, HelperLimits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("first.json"), "{e}");
    }
}
