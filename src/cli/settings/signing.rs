//! What provenance says about a run and who signs it, read here from
//! flags and the environment (the CI's own variables among them) and
//! nowhere else: the builder id and build type, the CI's invocation id
//! and start time, the clock the finish time comes from, and the password
//! of an encrypted signing key. None of it reaches an image: it rides in
//! the attestations beside it.

use std::path::Path;

use anyhow::{bail, Result};

use crate::attest::slsa::{default_build_type, default_builder_id};
use crate::attest::PrivateKey;
use crate::pipeline::RunClock;

/// The environment variables an encrypted key's password is read from,
/// in order: stele's own, then cosign's (so a CI that signs with cosign
/// needs nothing new).
pub(crate) const PASSWORD_VARIABLES: [&str; 2] = ["STELE_KEY_PASSWORD", "COSIGN_PASSWORD"];

/// The provenance flags of a command that builds.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProvenanceArgs {
    /// SLSA builder.id provenance names: a URI for the build platform this
    /// runs on and what it vouches for (default: the README's "Builder
    /// id" section; also STELE_BUILDER_ID).
    #[arg(long, value_name = "URI")]
    pub builder_id: Option<String>,
    /// SLSA buildType provenance names (default: the README's "Build type
    /// v1" section; also STELE_BUILD_TYPE).
    #[arg(long, value_name = "URI")]
    pub build_type: Option<String>,
}

/// No provenance flags: the environment and the defaults decide.
pub(crate) static NO_PROVENANCE_FLAGS: ProvenanceArgs = ProvenanceArgs {
    builder_id: None,
    build_type: None,
};

/// Provenance's facts of this run, decided once.
#[derive(Clone, Debug)]
pub(crate) struct Provenance {
    pub builder_id: String,
    pub build_type: String,
    pub run: RunClock,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A URI provenance may name: an absolute URI with a scheme, no spaces.
fn check_uri(what: &str, value: &str) -> Result<()> {
    let scheme_ok = value.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
            && !rest.is_empty()
    });
    if !scheme_ok || value.chars().any(char::is_whitespace) {
        bail!("{what} `{value}` is not a URI: give an absolute URI such as https://ci.example/builders/release");
    }
    Ok(())
}

/// Seconds since 1970, now: the one clock provenance reads.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Provenance {
    /// The defaults, for runs that make no attestations (`lock`,
    /// `vendor`): no environment read.
    pub fn defaults() -> Provenance {
        Provenance {
            builder_id: default_builder_id(),
            build_type: default_build_type(),
            run: RunClock {
                invocation_id: None,
                started_on: None,
                clock: None,
            },
        }
    }

    /// From the flags, else `STELE_BUILDER_ID` / `STELE_BUILD_TYPE`, else
    /// the defaults; the invocation from the CI's variables (GitHub
    /// Actions, GitLab CI) when it runs in one.
    pub fn resolve(args: &ProvenanceArgs) -> Result<Provenance> {
        let builder_id = args
            .builder_id
            .clone()
            .or_else(|| env("STELE_BUILDER_ID"))
            .unwrap_or_else(default_builder_id);
        let build_type = args
            .build_type
            .clone()
            .or_else(|| env("STELE_BUILD_TYPE"))
            .unwrap_or_else(default_build_type);
        check_uri("--builder-id (or STELE_BUILDER_ID)", &builder_id)?;
        check_uri("--build-type (or STELE_BUILD_TYPE)", &build_type)?;
        // A run is recorded when a CI runs it: its invocation and times.
        // A local build records none, so building twice gives the same
        // provenance, as it gives the same image.
        let run = match ci_invocation() {
            Some((invocation_id, ci_started)) => RunClock {
                invocation_id,
                started_on: Some(ci_started.unwrap_or_else(now)),
                clock: Some(now),
            },
            None => RunClock {
                invocation_id: None,
                started_on: None,
                clock: None,
            },
        };
        Ok(Provenance {
            builder_id,
            build_type,
            run,
        })
    }
}

/// The CI's name for this run and when its job started, when stele runs
/// in GitHub Actions or GitLab CI (`None` elsewhere): the run attempt's
/// URL (what SLSA's GitHub builders record as `invocationId`), or the
/// job's URL and `CI_JOB_STARTED_AT`.
fn ci_invocation() -> Option<(Option<String>, Option<u64>)> {
    if env("GITHUB_ACTIONS").as_deref() == Some("true") {
        let id = match (
            env("GITHUB_SERVER_URL"),
            env("GITHUB_REPOSITORY"),
            env("GITHUB_RUN_ID"),
        ) {
            (Some(server), Some(repo), Some(run)) => Some(format!(
                "{server}/{repo}/actions/runs/{run}/attempts/{}",
                env("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())
            )),
            _ => None,
        };
        return Some((id, None));
    }
    if env("GITLAB_CI").as_deref() == Some("true") {
        let started = env("CI_JOB_STARTED_AT").and_then(|t| crate::timefmt::parse_rfc3339(&t));
        return Some((env("CI_JOB_URL"), started));
    }
    None
}

/// The password of an encrypted key: `STELE_KEY_PASSWORD`, else
/// `COSIGN_PASSWORD` (set and empty is an empty password, as cosign
/// takes it).
pub(crate) fn key_password() -> Option<Vec<u8>> {
    PASSWORD_VARIABLES
        .iter()
        .find_map(std::env::var_os)
        .map(|v| {
            use std::os::unix::ffi::OsStrExt;
            v.as_bytes().to_vec()
        })
}

/// Loads the signing key at `path`, decrypting it with the password from
/// the environment when it is encrypted.
pub(crate) fn load_signing_key(path: &Path) -> Result<PrivateKey> {
    Ok(PrivateKey::load(path, key_password().as_deref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_checked() {
        assert!(check_uri("x", "https://ci.example/builders/a@refs/heads/main").is_ok());
        assert!(check_uri("x", "urn:example:builder").is_ok());
        assert!(check_uri("x", "just words").is_err());
        assert!(check_uri("x", "no-scheme").is_err());
        assert!(check_uri("x", "https:").is_err());
    }
}
