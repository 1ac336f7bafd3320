//! The containers tools that verify `sigstoreSigned` policies, for the
//! trust tests. Debian 12's skopeo and podman cannot (their
//! containers/image is built with sigstore verification patched out), so
//! the tests use Debian 13's, put beside the system by
//! `.ci/trixie-containers.sh DIR` (`STELE_TRIXIE_CONTAINERS=DIR`, default
//! `/opt/stele-trixie-containers`). Missing: the tests fail under
//! `CI=true` and skip with the reason otherwise.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, skip, Run};

pub const DEFAULT_DIR: &str = "/opt/stele-trixie-containers";

pub struct SigstoreTools {
    dir: PathBuf,
}

pub fn sigstore_tools() -> Option<SigstoreTools> {
    let dir = std::env::var_os("STELE_TRIXIE_CONTAINERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let works = Command::new(dir.join("bin/skopeo"))
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new(dir.join("bin/podman"))
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if works {
        return Some(SigstoreTools { dir });
    }
    let msg = format!(
        "no skopeo and podman that verify sigstore signatures in {} (run `.ci/trixie-containers.sh DIR` and set STELE_TRIXIE_CONTAINERS=DIR)",
        dir.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    skip(&msg);
    None
}

/// A containers policy for one registry: `policy.json` requiring
/// signatures by a key, and `registries.d` turning sigstore attachments on.
pub struct ContainersPolicy {
    pub policy: PathBuf,
    pub registries_d: PathBuf,
    /// A HOME whose `.config/containers/registries.d` is `registries_d`
    /// (how podman finds it).
    pub home: PathBuf,
}

impl ContainersPolicy {
    pub fn new(dir: &Path, name: &str, registry: &str, public_key: &Path) -> ContainersPolicy {
        let home = dir.join(format!("{name}-home"));
        let registries_d = home.join(".config/containers/registries.d");
        fs::create_dir_all(&registries_d).unwrap();
        fs::write(
            registries_d.join("stele.yaml"),
            format!("docker:\n  {registry}:\n    use-sigstore-attachments: true\n"),
        )
        .unwrap();
        let policy = dir.join(format!("{name}-policy.json"));
        fs::write(
            &policy,
            serde_json::to_vec_pretty(&serde_json::json!({
                "default": [{ "type": "reject" }],
                "transports": {
                    "docker": { registry: [{
                        "type": "sigstoreSigned",
                        "keyPath": public_key,
                        "signedIdentity": { "type": "matchRepoDigestOrExact" },
                    }]},
                    "dir": { "": [{ "type": "insecureAcceptAnything" }] },
                },
            }))
            .unwrap(),
        )
        .unwrap();
        ContainersPolicy {
            policy,
            registries_d,
            home,
        }
    }
}

impl SigstoreTools {
    /// `skopeo copy` of `image` (a `docker://` reference) into a `dir:`
    /// folder under `into`, under `policy`; `extra` before the images.
    pub fn skopeo_copy(
        &self,
        policy: &ContainersPolicy,
        extra: &[&str],
        image: &str,
        into: &Path,
    ) -> Run {
        let _ = fs::remove_dir_all(into);
        run(Command::new(self.dir.join("bin/skopeo"))
            .arg("copy")
            .arg("--policy")
            .arg(&policy.policy)
            .arg("--registries.d")
            .arg(&policy.registries_d)
            .arg("--src-tls-verify=false")
            .args(extra)
            .arg(image)
            .arg(format!("dir:{}", into.display())))
    }

    /// `podman pull` of `image` into storage under `storage`, under
    /// `policy` (its registries.d through HOME).
    pub fn podman_pull(&self, policy: &ContainersPolicy, image: &str, storage: &Path) -> Run {
        run(Command::new(self.dir.join("bin/podman"))
            .env("HOME", &policy.home)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("PODMAN_IGNORE_CGROUPSV1_WARNING", "1")
            .arg("--root")
            .arg(storage.join("r"))
            .arg("--runroot")
            .arg(storage.join("rr"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .arg("pull")
            .arg("--signature-policy")
            .arg(&policy.policy)
            .arg("--tls-verify=false")
            .arg(image))
    }
}
