//! Pushing one blob (distribution-spec "Pushing blobs"): HEAD first, then
//! a cross-repository mount when another repository is known to hold it,
//! else an upload: monolithic (POST, then PUT `?digest=`) up to the chunk
//! size, chunked (PATCH with `Content-Range`) above it.
//!
//! A chunked upload that fails mid-way (dropped connection, 5xx) asks the
//! registry how far it got (GET on the upload URL, its `Range`) and goes on
//! from there; a 416 or a lost upload session starts over cleanly. The
//! transport's retry layer decides when and how often: this module only
//! says how to send a part, how to ask, and what one session is. A 201 or
//! 202 is only believed with a `Location`, and a completed blob's
//! `Docker-Content-Digest` must be ours.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::client::{pull_scope, push_scope, Client, Req};
use super::{PushReport, RegistryError, Transfer};
use crate::oci::Digest;
use crate::store::{BlobStore, StoreError};
use crate::transport::{
    resolve_location as resolve, transient_status, PartFailed, Resumable, Transient, TransportError,
};

/// How an upload attempt ended when it did not finish.
enum Step {
    Done,
    /// The registry lost or refused the session: start a new one.
    Restart(String),
}

fn blob_url(client: &Client, repository: &str, digest: &Digest) -> String {
    client.url(&format!("{repository}/blobs/{digest}"))
}

fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// Whether `repository` has the blob (HEAD answers 200 with its size).
pub(crate) fn blob_exists(
    client: &Client,
    repository: &str,
    digest: &Digest,
    size: u64,
    scopes: &[String],
) -> Result<bool, RegistryError> {
    let resp = client.send(
        &Req::new(
            "HEAD",
            blob_url(client, repository, digest),
            scopes.to_vec(),
        )
        .allow(&[404]),
    )?;
    if resp.status() == 404 {
        return Ok(false);
    }
    // A different length under the same digest is a damaged copy there:
    // upload ours.
    let length = resp
        .header("Content-Length")
        .and_then(|l| l.trim().parse::<u64>().ok());
    Ok(length.map_or(true, |l| l == size))
}

/// Pushes the blob `digest` (`size` bytes, in `store`) to `repository`,
/// unless the registry has it. `mount_from` names other repositories of
/// the same registry that may hold it.
pub(crate) fn push_blob(
    client: &Client,
    repository: &str,
    store: &BlobStore,
    digest: &Digest,
    size: u64,
    mount_from: &[String],
    report: &mut PushReport,
) -> Result<(), RegistryError> {
    let scopes = vec![push_scope(repository)];
    if blob_exists(client, repository, digest, size, &scopes)? {
        report.blobs_existing += 1;
        return Ok(());
    }
    let mut session = None;
    for from in mount_from.iter().filter(|f| f.as_str() != repository) {
        let url = client.url(&format!(
            "{repository}/blobs/uploads/?mount={digest}&from={from}"
        ));
        let mount_scopes = vec![push_scope(repository), pull_scope(from)];
        let resp = client.send(&Req::new("POST", url.clone(), mount_scopes).body(&[]))?;
        match resp.status() {
            201 => {
                check_created(&resp, &url, digest)?;
                report.blobs_mounted += 1;
                return Ok(());
            }
            // Not mountable from there; the registry opened an upload
            // session instead. The next candidate may still mount; else the
            // upload below uses the last session opened.
            202 => session = Some(upload_location(&resp, &url)?),
            s => {
                return Err(RegistryError::Protocol {
                    url,
                    message: format!("the registry answered {s} to a mount; expected 201 or 202"),
                })
            }
        }
    }
    upload(client, repository, store, digest, size, session, report)?;
    report.blobs_uploaded += 1;
    Ok(())
}

/// Pushes every blob of `blobs` (`(digest, size)`, each once, all in
/// `store`) to `repository`: the first alone, then the rest up to
/// `settings().jobs` at once, largest first. Each blob is its own upload,
/// so what the registry holds after does not depend on which finished
/// first. After a failure no further blob starts, and the error names the
/// lowest-listed blob that failed, so the same failure reads the same for
/// any number of jobs.
pub(crate) fn push_blobs(
    client: &Client,
    repository: &str,
    store: &BlobStore,
    blobs: &[(Digest, u64)],
    mount_from: &[String],
    report: &mut PushReport,
) -> Result<(), RegistryError> {
    // The first blob goes alone: its requests meet the registry's 401
    // and TLS answers once, and the rest start with what they taught.
    let (first, rest) = blobs.split_at(blobs.len().min(1));
    let jobs = client.settings().jobs;
    let push_one = |(digest, size): &(Digest, u64)| {
        let mut one = PushReport::default();
        push_blob(
            client, repository, store, digest, *size, mount_from, &mut one,
        )
        .map(|()| one)
        .map_err(|e| RegistryError::Blob {
            repository: repository.to_string(),
            digest: digest.clone(),
            cause: Box::new(e),
        })
    };
    let progress = &client.settings().progress;
    progress.emit(Transfer::Started {
        blobs: blobs.len(),
        bytes: blobs.iter().map(|(_, size)| size).sum(),
    });
    let push_one = |blob: &(Digest, u64)| -> Result<PushReport, RegistryError> {
        let one = push_one(blob)?;
        progress.emit(Transfer::Blob {
            bytes: blob.1,
            moved: one.blobs_uploaded > 0,
        });
        Ok(one)
    };
    let result = crate::parallel::map(first, 1, |_| 0, push_one).and_then(|mut reports| {
        reports.extend(crate::parallel::map(
            rest,
            jobs,
            |(_, size)| *size,
            push_one,
        )?);
        Ok(reports)
    });
    progress.emit(Transfer::Finished);
    for one in &result? {
        report.add(one);
    }
    Ok(())
}

/// Why an upload session did not finish, as the transport's retry layer
/// sees it: a lost or refused session is worth a new one.
enum Unfinished {
    Restart { reason: String, attempts: u32 },
    Fatal(RegistryError),
}

impl Transient for Unfinished {
    fn transient(&self) -> bool {
        matches!(self, Unfinished::Restart { .. })
    }
    fn gave_up(self, attempts: u32) -> Self {
        match self {
            Unfinished::Restart { reason, .. } => Unfinished::Restart { reason, attempts },
            fatal => fatal,
        }
    }
}

fn upload(
    client: &Client,
    repository: &str,
    store: &BlobStore,
    digest: &Digest,
    size: u64,
    mut session: Option<String>,
    report: &mut PushReport,
) -> Result<(), RegistryError> {
    let mut first = true;
    // Each attempt is a whole session; the retry layer bounds and spaces
    // them. Chunks resumed inside a session have their own budget.
    let result = client.transport().retrying(true, || {
        if !first {
            report.uploads_restarted += 1;
        }
        first = false;
        let (location, min_chunk) = match session.take() {
            Some(l) => (l, 0),
            None => start_session(client, repository).map_err(Unfinished::Fatal)?,
        };
        let chunk = client.settings().chunk_size.max(min_chunk).max(1);
        let up = Upload {
            client,
            repository,
            store,
            digest,
            size,
            scopes: vec![push_scope(repository)],
        };
        let step = if size <= chunk {
            up.monolithic(location, report)
        } else {
            up.chunked(location, chunk, report)
        };
        match step.map_err(Unfinished::Fatal)? {
            Step::Done => Ok(()),
            Step::Restart(reason) => Err(Unfinished::Restart {
                reason,
                attempts: 1,
            }),
        }
    });
    match result {
        Ok(()) => Ok(()),
        Err(Unfinished::Fatal(e)) => Err(e),
        Err(Unfinished::Restart { reason, attempts }) => Err(RegistryError::Protocol {
            url: blob_url(client, repository, digest),
            message: format!(
                "uploading {digest} failed {attempts} times, the last because {reason}"
            ),
        }),
    }
}

/// POST a new upload session: its URL and the registry's minimum chunk
/// size (`OCI-Chunk-Min-Length`, distribution-spec v1.1).
fn start_session(client: &Client, repository: &str) -> Result<(String, u64), RegistryError> {
    let url = client.url(&format!("{repository}/blobs/uploads/"));
    let resp =
        client.send(&Req::new("POST", url.clone(), vec![push_scope(repository)]).body(&[]))?;
    if resp.status() != 202 {
        return Err(RegistryError::Protocol {
            url,
            message: format!(
                "the registry answered {} to starting an upload; expected 202",
                resp.status()
            ),
        });
    }
    let min = resp
        .header("OCI-Chunk-Min-Length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok((upload_location(&resp, &url)?, min))
}

/// The upload URL a 202 names; a 202 without one cannot be continued.
pub(super) fn upload_location(resp: &ureq::Response, url: &str) -> Result<String, RegistryError> {
    match resp.header("Location") {
        Some(l) if !l.trim().is_empty() => Ok(resolve(url, l.trim())),
        _ => Err(RegistryError::Protocol {
            url: url.to_string(),
            message: format!(
                "the registry answered {} without a Location; the upload cannot go on",
                resp.status()
            ),
        }),
    }
}

/// Checks a 201 that claims the blob `digest` now exists: it must say
/// where, and any digest it reports must be ours.
fn check_created(resp: &ureq::Response, url: &str, digest: &Digest) -> Result<(), RegistryError> {
    let location = resp.header("Location").map(str::trim).unwrap_or("");
    if location.is_empty() {
        return Err(RegistryError::Protocol {
            url: url.to_string(),
            message: format!(
                "the registry answered {} without a Location; not trusting that {digest} was stored",
                resp.status()
            ),
        });
    }
    if let Some(i) = location.find("sha256:") {
        let named = &location[i..];
        if !named.starts_with(&digest.to_string()) {
            return Err(RegistryError::DigestMismatch {
                url: url.to_string(),
                expected: digest.clone(),
                found: named.chars().take(71).collect(),
            });
        }
    }
    if let Some(found) = resp.header("Docker-Content-Digest") {
        if found.trim() != digest.to_string() {
            return Err(RegistryError::DigestMismatch {
                url: url.to_string(),
                expected: digest.clone(),
                found: found.trim().to_string(),
            });
        }
    }
    Ok(())
}

/// The offset after what the registry holds, from `Range: 0-<last>`.
/// distribution answers `0-0` both for nothing and for one byte; taking it
/// as nothing is safe, since a wrong offset is answered with 416 and the
/// upload restarts.
fn range_end(resp: &ureq::Response) -> Option<u64> {
    let r = resp.header("Range")?.trim();
    let r = r.strip_prefix("bytes=").unwrap_or(r);
    let (start, end) = r.split_once('-')?;
    let end: u64 = end.trim().parse().ok()?;
    if start.trim() != "0" {
        return None;
    }
    Some(if end == 0 { 0 } else { end + 1 })
}

struct Upload<'a> {
    client: &'a Client,
    repository: &'a str,
    store: &'a BlobStore,
    digest: &'a Digest,
    size: u64,
    scopes: Vec<String>,
}

impl Upload<'_> {
    fn read(&self, file: &mut File, offset: u64, len: u64) -> Result<Vec<u8>, RegistryError> {
        let path = self.store.path(self.digest);
        let io = |e: std::io::Error| RegistryError::Store {
            reference: self.repository.to_string(),
            error: StoreError::Io {
                path: path.clone(),
                error: e,
            },
        };
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buf = vec![0; len as usize];
        file.read_exact(&mut buf).map_err(io)?;
        Ok(buf)
    }

    /// The blob, opened as every untrusted blob is: no link followed, a
    /// regular file only (the store may be a layout someone else made).
    fn open(&self) -> Result<File, RegistryError> {
        self.store
            .open_blob(self.digest)
            .map(|(file, _)| file)
            .map_err(|error| RegistryError::Store {
                reference: self.repository.to_string(),
                error,
            })
    }

    /// One PUT with the whole blob. A failure starts over: the blob is at
    /// most one chunk, so there is little to save by resuming.
    fn monolithic(&self, location: String, report: &mut PushReport) -> Result<Step, RegistryError> {
        let mut file = self.open()?;
        let body = self.read(&mut file, 0, self.size)?;
        self.finish(location, &body, report)
    }

    /// The closing PUT `?digest=`, with `body` (the whole blob, or nothing
    /// after chunks).
    fn finish(
        &self,
        location: String,
        body: &[u8],
        report: &mut PushReport,
    ) -> Result<Step, RegistryError> {
        let url = with_query(&location, "digest", &self.digest.to_string());
        report.bytes_uploaded += body.len() as u64;
        let req = Req::new("PUT", url.clone(), self.scopes.clone())
            .header("Content-Type", "application/octet-stream")
            .body(body);
        // One attempt: a failure is steered here (did the blob land?).
        let once = self.client.transport().budget(false);
        match self.client.exchange(&once, &req) {
            Ok(resp) if resp.status() == 201 => {
                check_created(&resp, &url, self.digest)?;
                Ok(Step::Done)
            }
            Ok(resp) if (200..300).contains(&resp.status()) => Err(RegistryError::Protocol {
                url,
                message: format!(
                    "the registry answered {} to completing the upload of {}; expected 201",
                    resp.status(),
                    self.digest
                ),
            }),
            Ok(resp) if matches!(resp.status(), 404 | 416) || resp.status() >= 500 => {
                // The answer may be lost after the blob landed.
                if self.exists()? {
                    return Ok(Step::Done);
                }
                Ok(Step::Restart(format!(
                    "the closing PUT was answered {}",
                    resp.status()
                )))
            }
            Ok(resp) => Err(self.client.status_error("PUT", &url, resp)),
            Err(RegistryError::Network(e)) if e.transient() => {
                if self.exists()? {
                    return Ok(Step::Done);
                }
                Ok(Step::Restart(format!("the closing PUT failed: {e}")))
            }
            Err(e) => Err(e),
        }
    }

    fn exists(&self) -> Result<bool, RegistryError> {
        blob_exists(
            self.client,
            self.repository,
            self.digest,
            self.size,
            &self.scopes,
        )
    }

    /// PATCH chunks of `chunk` bytes, resumed by the retry layer from the
    /// registry's `Range` after a failure, then the closing PUT.
    fn chunked(
        &self,
        location: String,
        chunk: u64,
        report: &mut PushReport,
    ) -> Result<Step, RegistryError> {
        let mut chunks = Chunks {
            up: self,
            file: self.open()?,
            location,
            chunk,
            report,
        };
        match self.client.transport().resume(self.size, &mut chunks) {
            Ok(()) => {}
            Err(PartFailed::Broke { why, attempts }) => {
                return Err(TransportError::Connection {
                    method: "PATCH",
                    url: chunks.location,
                    message: why,
                    attempts,
                }
                .into())
            }
            Err(PartFailed::Ended(Unfinished::Restart { reason, .. })) => {
                return Ok(Step::Restart(reason))
            }
            Err(PartFailed::Ended(Unfinished::Fatal(e))) => return Err(e),
        }
        let Chunks {
            location, report, ..
        } = chunks;
        self.finish(location, &[], report)
    }

    /// Asks the registry how much of the upload it holds: the offset to
    /// go on from and the URL to use, or `None` when the session is gone.
    fn status(&self, location: &str) -> Result<Option<(u64, String)>, RegistryError> {
        let resp = self.client.send(
            &Req::new("GET", location.to_string(), self.scopes.clone()).allow(&[400, 404, 416]),
        )?;
        if !(200..300).contains(&resp.status()) {
            return Ok(None);
        }
        let Some(offset) = range_end(&resp) else {
            return Ok(None);
        };
        let next = match resp.header("Location") {
            Some(l) if !l.trim().is_empty() => resolve(location, l.trim()),
            _ => location.to_string(),
        };
        Ok(Some((offset, next)))
    }
}

/// One session's chunks, as the retry layer resumes them: the upload URL
/// moves on with each answer.
struct Chunks<'u, 'r> {
    up: &'u Upload<'u>,
    file: File,
    location: String,
    chunk: u64,
    report: &'r mut PushReport,
}

/// What ends a session's chunks: the registry lost or refused the
/// session (a new one is needed), or anything else.
fn restart(reason: String) -> PartFailed<Unfinished> {
    PartFailed::Ended(Unfinished::Restart {
        reason,
        attempts: 1,
    })
}

fn fatal(e: RegistryError) -> PartFailed<Unfinished> {
    PartFailed::Ended(Unfinished::Fatal(e))
}

impl Resumable for Chunks<'_, '_> {
    type Error = Unfinished;

    fn send_part(&mut self, offset: u64) -> Result<u64, PartFailed<Unfinished>> {
        let up = self.up;
        let end = (offset + self.chunk).min(up.size);
        let body = up
            .read(&mut self.file, offset, end - offset)
            .map_err(fatal)?;
        self.report.bytes_uploaded += body.len() as u64;
        let req = Req::new("PATCH", self.location.clone(), up.scopes.clone())
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{offset}-{}", end - 1))
            .body(&body);
        // One attempt: the retry layer resumes the upload, not the chunk.
        let once = up.client.transport().budget(false);
        let broke = |why: String| PartFailed::Broke { why, attempts: 1 };
        let resp = match up.client.exchange(&once, &req) {
            Ok(resp) => resp,
            Err(RegistryError::Network(e)) if e.transient() => return Err(broke(e.to_string())),
            Err(e) => return Err(fatal(e)),
        };
        match resp.status() {
            // 202 is the spec's answer; a 201 or 204 with a Location is
            // taken as progress, never as completion: only the closing PUT
            // completes an upload.
            201 | 202 | 204 => {
                let next = upload_location(&resp, &self.location).map_err(fatal)?;
                let held = match range_end(&resp) {
                    Some(e) if e > end => {
                        return Err(fatal(RegistryError::Protocol {
                            url: self.location.clone(),
                            message: format!(
                                "the registry claims {e} bytes of {} after {end} were sent",
                                up.digest
                            ),
                        }))
                    }
                    Some(e) => e,
                    None => end,
                };
                self.location = next;
                Ok(held)
            }
            s @ (404 | 416) => Err(restart(format!("a chunk was answered {s}"))),
            s if transient_status(s) => Err(broke(format!("a chunk was answered {s}"))),
            _ => Err(fatal(up.client.status_error("PATCH", &self.location, resp))),
        }
    }

    fn far_side_has(&mut self, why: &str) -> Result<u64, Unfinished> {
        match self.up.status(&self.location).map_err(Unfinished::Fatal)? {
            Some((got, next)) => {
                self.location = next;
                self.report.uploads_resumed += 1;
                Ok(got.min(self.up.size))
            }
            None => Err(Unfinished::Restart {
                reason: format!("the upload session was lost after: {why}"),
                attempts: 1,
            }),
        }
    }
}
