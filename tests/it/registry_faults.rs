//! The registry client against a deliberately misbehaving in-process
//! registry (support/registry.rs): retries, resumed and restarted
//! uploads, digests the registry gets wrong, redirects to other hosts,
//! bearer and basic authentication, and the errors a user reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::bytes::noise;
use crate::support::registry::{Auth, FakeRegistry, Fault};
use oci_spec::image::{Arch, Descriptor, ImageConfigurationBuilder, MediaType, Os, RootFsBuilder};
use stele::oci::{Built, Digest, Image, LayerBlob, Platform};
use stele::registry::{
    pull, push_built, PushOptions, PushReport, Reference, RegistryError, RegistrySettings,
};
use stele::store::BlobStore;
use stele::transport::{NetworkSettings, Transport};

fn settings(auth_files: Vec<PathBuf>) -> RegistrySettings {
    RegistrySettings {
        auth_files,
        chunk_size: 1000,
        transport: Transport::new(NetworkSettings {
            retries: 3,
            backoff: Duration::from_millis(1),
            idle_timeout: Duration::from_secs(20),
            ..NetworkSettings::default()
        }),
        ..RegistrySettings::default()
    }
}

/// A one-layer image in its own store.
struct Fixture {
    _dir: tempfile::TempDir,
    store: BlobStore,
    built: Built,
    layer: Vec<u8>,
}

fn fixture(layer_len: usize, seed: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let layer = noise(layer_len, seed);
    let digest = store.put_bytes(&layer).unwrap();
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![digest.to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let image = Image::new(
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        },
        config,
        vec![LayerBlob {
            media_type: MediaType::ImageLayer,
            digest: digest.clone(),
            size: layer.len() as u64,
            diff_id: digest,
        }],
        &BTreeMap::new(),
    );
    store.put_bytes(&image.config.bytes).unwrap();
    store.put_bytes(&image.manifest.bytes).unwrap();
    let built = Built::new(vec![image], &BTreeMap::new());
    Fixture {
        _dir: dir,
        store,
        built,
        layer,
    }
}

fn reference(reg: &FakeRegistry, repo_tag: &str) -> Reference {
    Reference::parse(&format!("{}/{repo_tag}", reg.host())).unwrap()
}

fn push(
    f: &Fixture,
    reg: &FakeRegistry,
    repo_tag: &str,
    s: &RegistrySettings,
) -> Result<(Digest, PushReport), RegistryError> {
    push_built(
        &f.built,
        &f.store,
        &[],
        &reference(reg, repo_tag),
        s,
        &PushOptions::default(),
    )
}

fn layer_digest(f: &Fixture) -> String {
    f.built.images[0].layers[0].digest.to_string()
}

fn count(reg: &FakeRegistry, method: &str, path_contains: &str) -> usize {
    reg.log()
        .iter()
        .filter(|l| l.method == method && l.path.contains(path_contains))
        .count()
}

#[test]
fn server_errors_are_retried_until_the_push_succeeds() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(600, 1);
    reg.fault("HEAD", "/blobs/", 0, 1, Fault::Status(503, "UNAVAILABLE"));
    reg.fault("PUT", "/manifests/", 0, 2, Fault::Status(500, "UNKNOWN"));
    let (digest, report) = push(&f, &reg, "team/app:v1", &settings(vec![])).unwrap();
    assert_eq!(&digest, f.built.digest());
    assert_eq!(report.retries, 3, "{report:?}");
    assert_eq!(report.blobs_uploaded, 2);
    let (_, stored) = reg.manifest("team/app", "v1").unwrap();
    assert_eq!(stored, f.built.images[0].manifest.bytes);
    assert_eq!(reg.blob(&layer_digest(&f)).unwrap(), f.layer);

    // Past the retry budget, the error says what was tried and what came back.
    reg.fault("PUT", "/manifests/", 0, 10, Fault::Status(500, "UNKNOWN"));
    let e = push(&f, &reg, "team/app:v2", &settings(vec![]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("500") && e.contains("UNKNOWN") && e.contains("/v2/team/app/manifests/"),
        "{e}"
    );
}

#[test]
fn a_connection_dropped_mid_upload_resumes_from_the_registrys_range() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(5000, 2);
    // The second chunk: the registry keeps 300 of its 1000 bytes, then the
    // connection drops.
    reg.fault("PATCH", "/blobs/uploads/", 1, 1, Fault::DropMidBody(300));
    let (_, report) = push(&f, &reg, "team/app:v1", &settings(vec![])).unwrap();
    assert_eq!(reg.blob(&layer_digest(&f)).unwrap(), f.layer);
    assert_eq!(report.uploads_resumed, 1, "{report:?}");
    assert_eq!(report.uploads_restarted, 0, "{report:?}");
    // 1000 + 1000 (dropped) + the remaining 3700 from offset 1300, plus the
    // small config: nothing before offset 1300 was sent twice.
    let config = f.built.images[0].config.size();
    assert_eq!(report.bytes_uploaded, 1000 + 1000 + 3700 + config);
    let ranges: Vec<String> = reg
        .log()
        .iter()
        .filter(|l| l.method == "PATCH")
        .map(|l| l.content_range.clone().unwrap())
        .collect();
    assert_eq!(
        ranges,
        [
            "0-999",
            "1000-1999",
            "1300-2299",
            "2300-3299",
            "3300-4299",
            "4300-4999"
        ]
    );
    assert_eq!(
        count(&reg, "GET", "/blobs/uploads/"),
        1,
        "asked how far the upload got"
    );
}

#[test]
fn a_416_on_resume_restarts_the_upload_cleanly() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(3000, 3);
    reg.fault("PATCH", "/blobs/uploads/", 1, 1, Fault::DropMidBody(10));
    reg.fault(
        "PATCH",
        "/blobs/uploads/",
        2,
        1,
        Fault::Status(416, "BLOB_UPLOAD_INVALID"),
    );
    let (_, report) = push(&f, &reg, "team/app:v1", &settings(vec![])).unwrap();
    assert_eq!(reg.blob(&layer_digest(&f)).unwrap(), f.layer);
    assert_eq!(report.uploads_restarted, 1, "{report:?}");
    // Two sessions for the layer (the first abandoned), one for the config.
    assert_eq!(count(&reg, "POST", "/blobs/uploads"), 3);
}

#[test]
fn a_wrong_docker_content_digest_is_an_error_naming_both() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(100, 4);
    reg.fault("PUT", "/manifests/", 0, 1, Fault::WrongDigest);
    let e = push(&f, &reg, "team/app:v1", &settings(vec![])).unwrap_err();
    let text = e.to_string();
    let wrong = Digest::of(b"not what was sent").to_string();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{text}");
    assert!(
        text.contains(&f.built.digest().to_string()) && text.contains(&wrong),
        "{text}"
    );

    // The same for a blob upload's closing answer.
    let g = fixture(100, 5);
    reg.fault("PUT", "/blobs/uploads/", 0, 1, Fault::WrongDigest);
    let text = push(&g, &reg, "team/other:v1", &settings(vec![]))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(&wrong) && text.contains("digest mismatch"),
        "{text}"
    );
}

#[test]
fn a_201_to_a_patch_is_progress_and_a_201_without_location_is_not_trusted() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(2500, 6);
    reg.fault("PATCH", "/blobs/uploads/", 0, 1, Fault::Created);
    push(&f, &reg, "team/app:v1", &settings(vec![])).unwrap();
    assert_eq!(reg.blob(&layer_digest(&f)).unwrap(), f.layer);
    assert_eq!(count(&reg, "PATCH", "/blobs/uploads/"), 3);
    // The upload was still closed with PUT ?digest=.
    let closing = format!("digest={}", layer_digest(&f));
    assert!(reg
        .log()
        .iter()
        .any(|l| l.method == "PUT" && l.query == closing));

    let g = fixture(100, 7);
    reg.fault("PUT", "/blobs/uploads/", 0, 1, Fault::NoLocation);
    let e = push(&g, &reg, "team/app:v2", &settings(vec![]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("without a Location") && e.contains("/blobs/uploads/"),
        "{e}"
    );

    reg.fault("POST", "/blobs/uploads", 0, 1, Fault::NoLocation);
    let h = fixture(100, 8);
    let e = push(&h, &reg, "team/app:v3", &settings(vec![]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("202 without a Location"), "{e}");
}

fn auth_file(dir: &std::path::Path, host: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine as _;
    let path = dir.join("auth.json");
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        &path,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    path
}

#[test]
fn bearer_tokens_are_fetched_with_basic_credentials_and_cached_per_scope() {
    let reg = FakeRegistry::start(Auth::Bearer {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let file = auth_file(dir.path(), reg.host(), "alice", "s3cret");
    let f = fixture(1500, 9);
    push(&f, &reg, "team/app:v1", &settings(vec![file.clone()])).unwrap();
    let log = reg.log();
    let token_requests: Vec<_> = log.iter().filter(|l| l.path == "/token").collect();
    assert_eq!(
        token_requests.len(),
        1,
        "one token for the push scope: {log:#?}"
    );
    let t = token_requests[0];
    assert!(t.query.contains("service=fake-registry"), "{}", t.query);
    assert!(
        t.query
            .contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush"),
        "{}",
        t.query
    );
    assert!(t.authorization.as_deref().unwrap().starts_with("Basic "));
    // Only the first request went without the token.
    let unauthenticated = log
        .iter()
        .filter(|l| l.path.starts_with("/v2/") && l.authorization.is_none())
        .count();
    assert_eq!(unauthenticated, 1);
    assert!(log
        .iter()
        .filter(|l| l.path.starts_with("/v2/"))
        .skip(1)
        .all(|l| l
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer token-")));

    // Pulling back needs a pull-scoped token.
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let pulled = pull(
        &reference(&reg, "team/app:v1"),
        &settings(vec![file]),
        &store,
    )
    .unwrap();
    assert_eq!(
        pulled.top.digest().to_string(),
        f.built.digest().to_string()
    );

    // Wrong password: the error names the file and the user.
    let bad = auth_file(dir.path(), reg.host(), "alice", "wrong");
    let e = push(&f, &reg, "team/app:v2", &settings(vec![bad.clone()]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("alice") && e.contains(&bad.display().to_string()) && e.contains("401"),
        "{e}"
    );
    // No credentials at all: the error says to log in.
    let e = push(&f, &reg, "team/app:v2", &settings(vec![]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no credentials") && e.contains("login"), "{e}");
}

#[test]
fn basic_auth_is_answered_with_the_auth_files_credentials() {
    let reg = FakeRegistry::start(Auth::Basic {
        user: "bob".into(),
        password: "pw".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let file = auth_file(dir.path(), reg.host(), "bob", "pw");
    let f = fixture(200, 10);
    push(&f, &reg, "team/app:v1", &settings(vec![file])).unwrap();
    assert_eq!(reg.blob(&layer_digest(&f)).unwrap(), f.layer);
    let e = push(&f, &reg, "team/app:v2", &settings(vec![])).unwrap_err();
    assert_eq!(e.status(), Some(401));
    let e = e.to_string();
    // The first request is a HEAD, whose 401 has no body to quote.
    assert!(
        e.contains("401 Unauthorized") && e.contains("credentials"),
        "{e}"
    );
}

#[test]
fn redirected_blob_downloads_never_carry_authorization_to_another_host() {
    let storage = FakeRegistry::start(Auth::None);
    let reg = FakeRegistry::start(Auth::Bearer {
        user: "alice".into(),
        password: "pw".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let file = auth_file(dir.path(), reg.host(), "alice", "pw");
    let f = fixture(800, 11);
    push(&f, &reg, "team/app:v1", &settings(vec![file.clone()])).unwrap();
    // The "storage" host serves the same blobs under the same paths.
    let image = &f.built.images[0];
    storage.put_blob("team/app", &f.layer);
    storage.put_blob("team/app", &image.config.bytes);
    reg.redirect_blobs_to(&format!("http://{}", storage.host()));

    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let pulled = pull(
        &reference(&reg, "team/app:v1"),
        &settings(vec![file]),
        &store,
    )
    .unwrap();
    assert_eq!(pulled.blobs.len(), 3);
    assert_eq!(
        std::fs::read(store.path(&image.layers[0].digest)).unwrap(),
        f.layer
    );
    let at_storage = storage.log();
    assert_eq!(
        at_storage.iter().filter(|l| l.method == "GET").count(),
        2,
        "{at_storage:#?}"
    );
    assert!(
        at_storage.iter().all(|l| l.authorization.is_none()),
        "credentials leaked to another host: {at_storage:#?}"
    );
    // The registry itself did get the token on the blob GETs it redirected.
    assert!(reg
        .log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/blobs/sha256:"))
        .all(|l| l
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))));

    // A second pull finds everything in the store: no blob is fetched again.
    let before = storage.log().len();
    let again = pull(
        &reference(&reg, "team/app:v1"),
        &settings(vec![dir.path().join("auth.json")]),
        &store,
    )
    .unwrap();
    assert_eq!(again.blobs, pulled.blobs);
    assert_eq!(storage.log().len(), before);

    // Pinned by digest and fully cached: no request at all (a base image
    // builds offline once it has been pulled).
    let before = reg.log().len();
    let pinned = reference(&reg, "team/app").with_digest(f.built.digest().clone());
    let offline = pull(
        &pinned,
        &settings(vec![dir.path().join("auth.json")]),
        &store,
    )
    .unwrap();
    assert_eq!(offline.blobs, pulled.blobs);
    assert_eq!(reg.log().len(), before);
}

#[test]
fn a_client_error_names_the_url_status_code_and_what_to_do() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(100, 12);
    reg.fault("POST", "/blobs/uploads", 0, 1, Fault::Status(403, "DENIED"));
    let e = push(&f, &reg, "team/app:v1", &settings(vec![])).unwrap_err();
    assert_eq!(e.status(), Some(403));
    let text = e.to_string();
    for want in [
        "POST",
        "/v2/team/app/blobs/uploads/",
        "403 Forbidden",
        "DENIED: injected DENIED",
        "permissions",
    ] {
        assert!(text.contains(want), "{want} missing from: {text}");
    }
    let e = pull(
        &reference(&reg, "team/none:v1"),
        &settings(vec![]),
        &BlobStore::open(tempfile::tempdir().unwrap().keep()).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("404") && e.contains("MANIFEST_UNKNOWN") && e.contains("check the reference"),
        "{e}"
    );
}

#[test]
fn pull_verifies_digests_and_refuses_absurd_sizes_before_downloading() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(400, 13);
    push(&f, &reg, "team/app:v1", &settings(vec![])).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    let digest = f.built.digest().clone();

    // A registry that answers other bytes for a pinned digest.
    let mut other = f.built.images[0].manifest.bytes.clone();
    other.push(b' ');
    reg.tamper_manifest("team/app", &digest.to_string(), other.clone());
    let pinned = reference(&reg, "team/app").with_digest(digest.clone());
    let e = pull(&pinned, &settings(vec![]), &store)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&digest.to_string()) && e.contains(&Digest::of(&other).to_string()),
        "{e}"
    );

    // A layer claiming more than the limit is refused before any blob GET.
    let mut s = settings(vec![]);
    s.blob_limit = 100;
    let e = pull(&reference(&reg, "team/app:v1"), &s, &store)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("400 bytes") && e.contains("100-byte limit"),
        "{e}"
    );
    assert_eq!(count(&reg, "GET", "/blobs/"), 0);
}

/// An attestation-style artifact about `subject`, stored in `store`.
fn referrer(store: &BlobStore, subject: &Descriptor, note: &str) -> Descriptor {
    let empty = store.put_bytes(b"{}").unwrap();
    let content = format!("sbom {note}\n");
    let layer = store.put_bytes(content.as_bytes()).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": layer.to_string(), "size": content.len()}],
        "subject": {"mediaType": subject.media_type().to_string(), "digest": subject.digest().to_string(), "size": subject.size()},
        "annotations": {"org.example.note": note},
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = store.put_bytes(&bytes).unwrap();
    serde_json::from_value(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest.to_string(),
        "size": bytes.len(),
    }))
    .unwrap()
}

#[test]
fn referrers_go_under_the_fallback_tag_when_the_registry_has_no_referrers_api() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(300, 14);
    let subject = f.built.top_descriptor();
    let first = referrer(&f.store, &subject, "one");
    let second = referrer(&f.store, &subject, "two");
    let r = reference(&reg, "team/app:v1");
    let s = settings(vec![]);
    let (_, report) = push_built(
        &f.built,
        &f.store,
        std::slice::from_ref(&first),
        &r,
        &s,
        &PushOptions::default(),
    )
    .unwrap();
    assert_eq!(report.referrers_pushed, 1);
    let tag = format!("sha256-{}", f.built.digest().hex());
    let (ct, bytes) = reg
        .manifest("team/app", &tag)
        .expect("fallback tag written");
    assert_eq!(ct, "application/vnd.oci.image.index.v1+json");
    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], first.digest().to_string());
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.example.note"],
        "one"
    );

    // A second push adds to the list, keeping what was there, once each,
    // sorted by digest.
    push_built(
        &f.built,
        &f.store,
        &[second.clone(), first.clone()],
        &r,
        &s,
        &PushOptions::default(),
    )
    .unwrap();
    let (_, bytes) = reg.manifest("team/app", &tag).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    let mut want = vec![first.digest().to_string(), second.digest().to_string()];
    want.sort();
    assert_eq!(digests, want);

    // With the referrers API, no fallback tag is written.
    let api = FakeRegistry::start(Auth::None);
    api.enable_referrers_api();
    push_built(
        &f.built,
        &f.store,
        &[first],
        &reference(&api, "team/app:v1"),
        &s,
        &PushOptions::default(),
    )
    .unwrap();
    assert!(api.manifest("team/app", &tag).is_none());
}

#[test]
fn a_blob_download_that_breaks_off_goes_on_with_a_range_request() {
    let reg = FakeRegistry::start(Auth::None);
    let f = fixture(40_000, 21);
    push(&f, &reg, "team/app:v1", &settings(vec![])).unwrap();
    let layer = layer_digest(&f);
    // The layer's GET breaks off twice: the first half, then half the rest.
    reg.fault("GET", &layer, 0, 2, Fault::HalfBody);
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::open(cache.path()).unwrap();
    pull(&reference(&reg, "team/app:v1"), &settings(vec![]), &store).unwrap();
    let digest: Digest = layer.parse().unwrap();
    assert_eq!(std::fs::read(store.path(&digest)).unwrap(), f.layer);
    let gets: Vec<_> = reg
        .log()
        .into_iter()
        .filter(|l| l.method == "GET" && l.path.contains(&layer))
        .collect();
    assert_eq!(gets.len(), 3, "{gets:?}");
    // Not started over: each later GET asks for the rest.
    let ranges: Vec<_> = gets.iter().map(|g| g.range.clone()).collect();
    assert_eq!(
        ranges,
        vec![
            None,
            Some("bytes=20000-".to_string()),
            Some("bytes=30000-".to_string())
        ]
    );
}
