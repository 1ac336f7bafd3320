//! The apt trust chain and fetcher against generated, signed repositories
//! served from 127.0.0.1: signatures, index and package verification,
//! retries, offline mode and a cache shared by concurrent fetchers.

use std::path::Path;
use std::time::Duration;

use crate::support::*;
use stele::apt::fetch::{FetchError, FetchItem, Fetcher};
use stele::apt::hostconf::{find_host_source, host_sources, load_keyring};
use stele::apt::release::{verify_inrelease, Keyring, ReleaseError};
use stele::oci::Digest;
use stele::store::BlobStore;
use stele::transport::{Transport, TransportError};

fn hello() -> Deb {
    Deb::new("hello", "1.0-1", "amd64")
        .field("Depends", "libc6")
        .entry(DebEntry::dir("usr/bin"))
        .entry(DebEntry::exec("usr/bin/hello", "#!/bin/sh\necho hi\n"))
}

fn repo_with(builder: AptRepoBuilder) -> AptRepo {
    builder
        .suite("stable", &["amd64", "arm64"])
        .deb("stable", hello())
        .deb(
            "stable",
            Deb::new("data", "2:0.5", "all").entry(DebEntry::file("usr/share/data", "x")),
        )
        .build()
}

/// A fetcher that retries fast, so fault tests stay quick.
fn fetcher(cache: &Path, offline: bool) -> Fetcher {
    Fetcher::new(
        BlobStore::open(cache).unwrap(),
        offline,
        Transport::default(),
    )
    .with_retries(4, Duration::from_millis(5))
}

/// Every file in the cache's blob directory, temp files included.
fn cache_files(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn inrelease_verifies_with_binary_and_armored_keyrings() {
    let repo = repo_with(AptRepo::builder());
    let inrelease = repo.inrelease("stable");
    for keyring in [repo.keyring_path(), repo.armored_keyring_path()] {
        let release =
            verify_inrelease(&inrelease, &std::fs::read(&keyring).unwrap(), "InRelease").unwrap();
        assert_eq!(release.suite, "stable");
        assert_eq!(release.architectures, ["amd64", "arm64"]);
        assert_eq!(release.components, ["main"]);
        let packages = std::fs::read(
            repo.root()
                .join("dists/stable/main/binary-arm64/Packages.xz"),
        )
        .unwrap();
        assert_eq!(
            release.sha256_of("main/binary-arm64/Packages.xz"),
            Some((Digest::of(&packages), packages.len() as u64))
        );
    }
    // Same content, same key seed: the same signed bytes.
    assert_eq!(repo_with(AptRepo::builder()).inrelease("stable"), inrelease);
}

#[test]
fn inrelease_by_an_unknown_key_names_file_and_keys() {
    let repo = repo_with(AptRepo::builder().signing(Signing::UnknownKey));
    let err = verify_inrelease(
        &repo.inrelease("stable"),
        &repo.keyring_bytes(),
        "dists/stable/InRelease",
    )
    .unwrap_err();
    assert!(matches!(err, ReleaseError::BadSignature { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("dists/stable/InRelease"), "{msg}");
    assert!(msg.contains(&repo.key.fingerprint()), "{msg}");
    assert!(msg.contains(&repo.key.signing_fingerprint()), "{msg}");
}

#[test]
fn altered_signed_text_fails_and_unsigned_is_distinct() {
    let repo = repo_with(AptRepo::builder());
    let mut altered = repo.inrelease("stable");
    let at = altered.windows(6).position(|w| w == b"stable").unwrap();
    altered[at] = b'S';
    assert!(matches!(
        verify_inrelease(&altered, &repo.keyring_bytes(), "x"),
        Err(ReleaseError::BadSignature { .. })
    ));

    let unsigned = repo_with(AptRepo::builder().signing(Signing::Unsigned));
    let err = verify_inrelease(
        &unsigned.inrelease("stable"),
        &unsigned.keyring_bytes(),
        "u/InRelease",
    )
    .unwrap_err();
    assert!(matches!(err, ReleaseError::Unsigned { .. }), "{err}");
    assert!(err.to_string().contains("u/InRelease"), "{err}");
}

#[test]
fn fetch_index_verifies_prefers_xz_and_caches() {
    let repo = repo_with(AptRepo::builder());
    let (url, server) = repo.serve();
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), false);
    let keyring = Keyring::parse(&repo.keyring_bytes(), "keyring.gpg").unwrap();
    let verified = f.fetch_release(&url, "stable", &keyring).unwrap();
    assert_eq!(
        verified.inrelease_sha256,
        Digest::of(&repo.inrelease("stable"))
    );

    let text = f
        .fetch_index(&url, "stable", "main", "amd64", &verified.release)
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(&repo.deb("hello").stanza), "{text}");
    assert!(
        text.contains("Package: data\n"),
        "arch all is in every arch's index"
    );
    assert_eq!(
        server.hits("/dists/stable/main/binary-amd64/Packages.xz"),
        1
    );
    assert_eq!(server.hits("/dists/stable/main/binary-amd64/Packages"), 0);

    // Offline, the same index and release come from the cache.
    let offline = fetcher(cache.path(), true);
    let again = offline
        .fetch_index(&url, "stable", "main", "amd64", &verified.release)
        .unwrap();
    assert_eq!(again, text.as_bytes());
    let cached = offline
        .cached_release(&verified.inrelease_sha256, &keyring, "cached")
        .unwrap();
    assert_eq!(cached.release, verified.release);
    assert!(matches!(
        offline.fetch_index(&url, "stable", "main", "arm64", &verified.release),
        Err(FetchError::OfflineMiss { .. })
    ));
    assert!(matches!(
        offline.fetch_release(&url, "stable", &keyring),
        Err(FetchError::Offline { .. })
    ));

    let missing = f
        .fetch_index(&url, "stable", "main", "riscv64", &verified.release)
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("main/binary-riscv64/Packages.xz") && missing.contains("amd64 arm64"),
        "{missing}"
    );
}

#[test]
fn fetch_index_falls_back_to_gzip() {
    let repo = repo_with(AptRepo::builder().index_compressions(&[Compression::Gzip]));
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), false);
    let keyring = Keyring::parse(&repo.keyring_bytes(), "k").unwrap();
    let release = f
        .fetch_release(&repo.file_url(), "stable", &keyring)
        .unwrap()
        .release;
    let text = f
        .fetch_index(&repo.file_url(), "stable", "main", "arm64", &release)
        .unwrap();
    assert!(String::from_utf8(text).unwrap().contains("Package: data\n"));
}

#[test]
fn fetch_index_rejects_a_tampered_packages_file() {
    let repo = repo_with(AptRepo::builder().tamper(Tamper::PackagesHashMismatch));
    let (url, _server) = repo.serve();
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), false);
    let keyring = Keyring::parse(&repo.keyring_bytes(), "k").unwrap();
    let verified = f.fetch_release(&url, "stable", &keyring).unwrap();
    let err = f
        .fetch_index(&url, "stable", "main", "amd64", &verified.release)
        .unwrap_err();
    let (expected, _) = verified
        .release
        .sha256_of("main/binary-amd64/Packages.xz")
        .unwrap();
    let served = std::fs::read(
        repo.root()
            .join("dists/stable/main/binary-amd64/Packages.xz"),
    )
    .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::IndexMismatch { .. }), "{msg}");
    assert!(msg.contains("main/binary-amd64/Packages.xz"), "{msg}");
    assert!(msg.contains(&expected.to_string()), "{msg}");
    assert!(msg.contains(&Digest::of(&served).to_string()), "{msg}");
    // Only the verified InRelease made it into the cache.
    assert_eq!(cache_files(cache.path()), [verified.inrelease_sha256.hex()]);
}

#[test]
fn fetch_verified_rejects_a_tampered_deb_and_caches_nothing() {
    let repo = repo_with(AptRepo::builder().tamper(Tamper::DebHashMismatch("hello".into())));
    let (url, server) = repo.serve();
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), false);
    let deb = repo.deb("hello");
    let deb_url = format!("{url}/{}", deb.pool_path);
    let err = f
        .fetch_verified(&deb_url, &deb.sha256, deb.size)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::Mismatch { .. }), "{msg}");
    assert!(msg.contains(&deb_url), "{msg}");
    assert!(msg.contains(&deb.sha256.to_string()), "{msg}");
    assert!(msg.contains(&Digest::of(&deb.bytes).to_string()), "{msg}");
    assert!(
        cache_files(cache.path()).is_empty(),
        "{:?}",
        cache_files(cache.path())
    );
    assert_eq!(
        server.hits(&format!("/{}", deb.pool_path)),
        1,
        "integrity failures are not retried"
    );

    let good = repo.deb("data");
    let path = f
        .fetch_verified(
            &format!("{url}/{}", good.pool_path),
            &good.sha256,
            good.size,
        )
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), good.bytes);
}

#[test]
fn retries_server_errors_dropped_and_truncated_connections() {
    let repo = repo_with(AptRepo::builder());
    let (url, server) = repo.serve();
    let deb = repo.deb("hello");
    let path = format!("/{}", deb.pool_path);
    for (n, fault) in [
        (3, Fault::Status(500)),
        (2, Fault::Drop),
        (2, Fault::Truncate),
    ] {
        let cache = tempfile::tempdir().unwrap();
        let f = fetcher(cache.path(), false);
        let before = server.hits(&path);
        server.fail_first(&path, n, fault);
        let got = f
            .fetch_verified(&format!("{url}{path}"), &deb.sha256, deb.size)
            .unwrap();
        assert_eq!(std::fs::read(got).unwrap(), deb.bytes, "{fault:?}");
        assert_eq!(server.hits(&path) - before, n as usize + 1, "{fault:?}");
        assert_eq!(cache_files(cache.path()), [deb.sha256.hex()], "{fault:?}");
    }

    // Persistent 5xx: gives up after the configured attempts.
    let cache = tempfile::tempdir().unwrap();
    let f = Fetcher::new(
        BlobStore::open(cache.path()).unwrap(),
        false,
        Transport::default(),
    )
    .with_retries(3, Duration::from_millis(1));
    server.fail_first("/dists/stable/InRelease", 100, Fault::Status(503));
    let err = f.fetch_inrelease(&url, "stable").unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 503, .. }),
        "{err}"
    );
    assert_eq!(server.hits("/dists/stable/InRelease"), 3);

    // 4xx: no retry, and the message names the URL.
    let missing = format!("{url}/pool/main/n/nope/nope_1_amd64.deb");
    let err = f.get_bytes(&missing, 1 << 20).unwrap_err();
    assert!(matches!(err, FetchError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&missing), "{err}");
    assert_eq!(server.hits("/pool/main/n/nope/nope_1_amd64.deb"), 1);
}

#[test]
fn connection_refused_is_a_transport_error_after_retries() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cache = tempfile::tempdir().unwrap();
    let f = Fetcher::new(
        BlobStore::open(cache.path()).unwrap(),
        false,
        Transport::default(),
    )
    .with_retries(2, Duration::from_millis(1));
    let url = format!("http://127.0.0.1:{port}/x");
    let err = f.get_bytes(&url, 10).unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Network(TransportError::Connection { attempts: 2, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn offline_cache_miss_names_the_package_then_hits_after_fetch() {
    let repo = repo_with(AptRepo::builder());
    let (url, server) = repo.serve();
    let items: Vec<FetchItem> = repo
        .debs
        .iter()
        .map(|d| FetchItem {
            url: format!("{url}/{}", d.pool_path),
            sha256: d.sha256.clone(),
            size: d.size,
            label: format!("{} {} {}", d.name, d.version, d.arch),
        })
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let err = fetcher(cache.path(), true)
        .fetch_all(&items, 4)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::OfflineMiss { .. }), "{msg}");
    assert!(
        msg.contains("stele vendor") && msg.contains("--offline"),
        "{msg}"
    );
    assert!(items.iter().any(|i| msg.contains(&i.label)), "{msg}");
    assert!(server.requests().is_empty());

    let online = fetcher(cache.path(), false).fetch_all(&items, 4).unwrap();
    let requests = server.requests().len();
    let offline = fetcher(cache.path(), true).fetch_all(&items, 4).unwrap();
    assert_eq!(online, offline);
    assert_eq!(
        server.requests().len(),
        requests,
        "cache hits make no requests"
    );
    for (item, path) in items.iter().zip(&offline) {
        assert_eq!(Digest::of(&std::fs::read(path).unwrap()), item.sha256);
    }
}

#[test]
fn concurrent_fetch_all_into_one_cache() {
    let mut builder = AptRepo::builder();
    for i in 0..24 {
        builder = builder.deb(
            "stable",
            Deb::new(&format!("pkg{i:02}"), "1.0", "amd64").entry(DebEntry::file(
                "usr/share/blob",
                vec![i as u8; 40_000 + i * 1000],
            )),
        );
    }
    let repo = builder.build();
    let (url, _server) = repo.serve();
    let items: Vec<FetchItem> = repo
        .debs
        .iter()
        .map(|d| FetchItem {
            url: format!("{url}/{}", d.pool_path),
            sha256: d.sha256.clone(),
            size: d.size,
            label: d.name.clone(),
        })
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let results: Vec<Vec<std::path::PathBuf>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| fetcher(cache.path(), false).fetch_all(&items, 4).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results[0], results[1]);
    let store = BlobStore::open(cache.path()).unwrap();
    for item in &items {
        store.verify(&item.sha256, item.size).unwrap();
    }
    let mut expected: Vec<String> = items.iter().map(|i| i.sha256.hex().to_string()).collect();
    expected.sort();
    assert_eq!(cache_files(cache.path()), expected, "no temp files left");
}

#[test]
fn fetch_all_reports_a_bad_item_and_caches_only_good_ones() {
    let repo = repo_with(AptRepo::builder().tamper(Tamper::DebHashMismatch("data".into())));
    let (url, _server) = repo.serve();
    let items: Vec<FetchItem> = repo
        .debs
        .iter()
        .map(|d| FetchItem {
            url: format!("{url}/{}", d.pool_path),
            sha256: d.sha256.clone(),
            size: d.size,
            label: d.name.clone(),
        })
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let err = fetcher(cache.path(), false)
        .fetch_all(&items, 1)
        .unwrap_err();
    assert!(
        err.to_string().contains(&repo.deb("data").pool_path),
        "{err}"
    );
    for name in cache_files(cache.path()) {
        assert_eq!(
            name,
            repo.deb("hello").sha256.hex(),
            "only verified blobs are cached"
        );
    }
}

#[test]
fn corrupt_deb_downloads_because_its_listed_hash_matches() {
    let repo = repo_with(AptRepo::builder().tamper(Tamper::CorruptDeb("hello".into())));
    let deb = repo.deb("hello");
    let cache = tempfile::tempdir().unwrap();
    let path = fetcher(cache.path(), false)
        .fetch_verified(
            &format!("{}/{}", repo.file_url(), deb.pool_path),
            &deb.sha256,
            deb.size,
        )
        .unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"!<arch>\n") && bytes.len() < hello().build().len());
}

/// The whole chain as `mirror = "host"` would run it, against a fake root.
#[test]
fn host_configuration_to_verified_index() {
    let repo = repo_with(AptRepo::builder());
    let (url, _server) = repo.serve();
    let root = tempfile::tempdir().unwrap();
    let list_d = root.path().join("etc/apt/sources.list.d");
    std::fs::create_dir_all(&list_d).unwrap();
    std::fs::create_dir_all(root.path().join("usr/share/keyrings")).unwrap();
    std::fs::copy(
        repo.keyring_path(),
        root.path().join("usr/share/keyrings/test.gpg"),
    )
    .unwrap();
    std::fs::write(
        list_d.join("test.sources"),
        format!("Types: deb-src deb\nURIs: {url}/\nSuites: stable\nComponents: main\nSigned-By: /usr/share/keyrings/test.gpg\n"),
    )
    .unwrap();
    let sources = host_sources(root.path()).unwrap();
    let source = find_host_source(&sources, "stable").unwrap();
    assert_eq!(source.uri, url);
    let keyring = load_keyring(root.path(), source).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), false);
    let release = f
        .fetch_release(&source.uri, &source.suite, &keyring)
        .unwrap()
        .release;
    let text = f
        .fetch_index(
            &source.uri,
            &source.suite,
            &source.components[0],
            "amd64",
            &release,
        )
        .unwrap();
    assert!(String::from_utf8(text)
        .unwrap()
        .contains("Package: hello\n"));

    // Without Signed-By, apt's default trusted.gpg.d applies (armored here).
    std::fs::write(
        list_d.join("test.sources"),
        format!("Types: deb\nURIs: {url}\nSuites: stable\nComponents: main\n"),
    )
    .unwrap();
    let trusted = root.path().join("etc/apt/trusted.gpg.d");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::copy(repo.armored_keyring_path(), trusted.join("test.asc")).unwrap();
    let sources = host_sources(root.path()).unwrap();
    let keyring = load_keyring(root.path(), &sources[0]).unwrap();
    f.fetch_release(&url, "stable", &keyring).unwrap();
}

/// The fixtures themselves: dpkg-deb must read what `Deb` writes, for
/// every data compression, and hostile names must come out verbatim.
#[test]
fn fixture_debs_are_what_dpkg_deb_reads() {
    if !have_tool("dpkg-deb") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let deb = hello()
            .data_compression(c)
            .control_compression(c)
            .entry(DebEntry::symlink("usr/bin/hi", "hello"))
            .entry(DebEntry::file("../escape", "x"))
            .entry(DebEntry::file("/etc/x", "y").mode(0o4755).owner(1000, 1000))
            .entry(DebEntry::file(
                &format!("usr/share/{}", "long/".repeat(30)),
                "z",
            ));
        let path = dir.path().join(format!("hello{}.deb", c.suffix()));
        std::fs::write(&path, deb.build()).unwrap();
        let field = std::process::Command::new("dpkg-deb")
            .args(["-f", path.to_str().unwrap(), "Depends"])
            .output()
            .unwrap();
        assert!(
            field.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&field.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&field.stdout).trim(), "libc6");
        let list = std::process::Command::new("dpkg-deb")
            .args(["-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&list.stdout).into_owned();
        let line = |name: &str| {
            list.lines()
                .find(|l| l.ends_with(name))
                .unwrap_or_else(|| panic!("{c:?}: no {name:?} in\n{list}"))
                .to_string()
        };
        assert!(line(" ./usr/bin/").starts_with("drwxr-xr-x root/root"));
        assert!(line(" ./usr/bin/hello").starts_with("-rwxr-xr-x root/root        18 "));
        assert!(line(" ./usr/bin/hi -> hello").starts_with("lrwxrwxrwx root/root"));
        line(" ../escape");
        assert!(line(" /etc/x").starts_with("-rwsr-xr-x 1000/1000         1 "));
        assert!(list.contains("/long/long/"), "{list}");
    }
    let plain = build_deb(
        "p",
        "1",
        "all",
        &[("Section", "misc")],
        &[DebEntry::file("a", "b")],
    );
    assert!(plain.starts_with(b"!<arch>\ndebian-binary   "));
}

/// gpgv (what apt runs) must accept the fixture's InRelease with the
/// fixture's binary keyring: the fixtures sign the way real archives do.
#[test]
fn fixture_inrelease_verifies_with_gpgv() {
    if !have_tool("gpgv") {
        return;
    }
    let repo = repo_with(AptRepo::builder());
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("gpgv")
        .arg("--homedir")
        .arg(home.path())
        .arg("--keyring")
        .arg(repo.keyring_path())
        .arg(repo.inrelease_path("stable"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Good signature"), "{stderr}");
}
