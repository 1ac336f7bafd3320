//! Hermetic fixtures for integration tests: Debian packages built in
//! memory ([`deb`]), signed apt repositories on disk ([`repo`]), a
//! loopback HTTP server with fault injection ([`http`]) and an in-process
//! OCI registry that misbehaves on request ([`registry`]). Nothing here
//! touches the network beyond 127.0.0.1.
//!
//! Use from a test file with `mod support;` and `use support::*;`.

// Each integration test binary uses a different subset.
#![allow(dead_code, unused_imports)]

pub mod deb;
pub mod http;
pub mod registry;
pub mod repo;

pub use deb::{build_deb, Compression, Deb, DebEntry, EntryKind, FIXTURE_MTIME};
pub use http::{Fault, HttpServer};
pub use repo::{AptRepo, AptRepoBuilder, PublishedDeb, Signing, Tamper, TestKey};

/// Whether a test that needs an external tool must fail rather than skip
/// when the tool is missing (`CI=true`).
pub fn require_tool(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required when CI=true"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    found
}
