//! Docker, the most common client, reads and runs what stele makes:
//! `docker load` of a docker-archive, `docker pull` by digest from the
//! real registry stele pushed to, and `docker run` of both (Debian's
//! `docker.io` daemon, one per test).

use std::fs;
use std::path::Path;

use crate::support::docker::Docker;
use crate::support::docker_registry::{have_registry, DockerRegistry};
use crate::support::*;

const RECIPE: &str = r#"
[image]
name = "hello"
epoch = 1700000000

[[files]]
src = "hello"
dest = "/usr/local/bin/hello"

[[files]]
src = "motd"
dest = "/etc/motd"

[config]
entrypoint = ["/usr/local/bin/hello"]
cmd = ["from-docker"]
env = { GREETING = "hi" }
workdir = "/tmp"
user = "1000:1000"
"#;

/// What the image prints when run with its own command.
const RUN: &str =
    "hello from stele\nuid=1000 gid=1000\ncwd=/tmp\ngreeting=hi\narg=from-docker\nmotd=built by stele\n";

/// The hello recipe in `dir` (None: no static C toolchain, skipped).
fn project(dir: &Path) -> Option<()> {
    crate::support::podman::compile_hello(dir)?;
    fs::write(dir.join("motd"), "built by stele\n").unwrap();
    fs::write(dir.join("recipe.toml"), RECIPE).unwrap();
    Some(())
}

/// `docker image inspect --format FORMAT IMAGE`'s one line.
fn inspect(docker: &Docker, format: &str, image: &str) -> String {
    let r = run(docker
        .cmd()
        .args(["image", "inspect", "--format", format, image]));
    r.expect_ok();
    r.last_line().to_string()
}

#[test]
fn docker_loads_pulls_by_digest_and_runs_what_stele_made() {
    if !have_registry() {
        return;
    }
    let Some(docker) = Docker::start() else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    if project(&src).is_none() {
        return;
    }
    let recipe = src.join("recipe.toml");
    let cache = tmp.path().join("cache");
    let layout = tmp.path().join("layout");
    let digest = build_with(
        &recipe,
        &layout,
        &["--attest", "none", "--cache-dir", cache.to_str().unwrap()],
    );
    let config = check_layout(&layout).manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // docker load: the image ID docker gives it is the config's digest,
    // so docker saw the same image the layout holds.
    let archive = tmp.path().join("hello.tar");
    run(stele()
        .arg("build")
        .arg(&recipe)
        .args(["--format", "docker-archive", "--tag", "loaded", "-o"])
        .arg(&archive)
        .arg("--cache-dir")
        .arg(&cache))
    .expect_ok();
    let r = run(docker.cmd().arg("load").arg("-i").arg(&archive));
    r.expect_ok();
    assert!(
        r.stdout.contains("Loaded image: hello:loaded"),
        "{}",
        r.stdout
    );
    assert_eq!(inspect(&docker, "{{.Id}}", "hello:loaded"), config);
    let r = docker.run_image("hello:loaded", &[]);
    r.expect_ok();
    assert_eq!(r.stdout, RUN, "{}", r.stderr);

    // docker pull by digest from the registry stele pushed to (docker
    // speaks plain HTTP to 127.0.0.1 without being told).
    let reg = DockerRegistry::start(None);
    let reference = format!("{}/stele/hello", reg.host());
    let r = run(stele()
        .arg("push")
        .arg(&layout)
        .arg(format!("{reference}:v1"))
        .arg("--cache-dir")
        .arg(&cache));
    r.expect_ok();
    let by_digest = format!("{reference}@{digest}");
    let r = run(docker.cmd().args(["pull", &by_digest]));
    r.expect_ok();
    assert!(r.stdout.contains(&digest), "{}", r.stdout);
    assert_eq!(inspect(&docker, "{{.Id}}", &by_digest), config);
    let repo_digests = inspect(&docker, "{{json .RepoDigests}}", &by_digest);
    assert!(repo_digests.contains(&by_digest), "{repo_digests}");
    let r = docker.run_image(&by_digest, &["again"]);
    r.expect_ok();
    assert_eq!(
        r.stdout,
        RUN.replace("arg=from-docker", "arg=again"),
        "{}",
        r.stderr
    );
}
