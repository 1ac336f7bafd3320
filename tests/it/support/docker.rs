//! Docker as a client of our images: Debian's `docker.io` daemon started
//! for one test, with its own data root, exec root and socket in a temp
//! folder, vfs storage and no bridge or iptables (what these sandboxes
//! allow). Stopped with SIGTERM on drop, so it stops the containerd it
//! started too.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{have_tool, run, skip, tempdir};

/// A `dockerd` of one test's own.
pub struct Docker {
    child: Child,
    dir: tempfile::TempDir,
}

impl Docker {
    /// Starts the daemon and waits until it answers. `None` (a skip)
    /// outside CI when docker is not installed or the daemon cannot run
    /// here (it needs root); under `CI=true` both are failures.
    pub fn start() -> Option<Docker> {
        if !have_tool("dockerd") || !have_tool("docker") {
            return None;
        }
        let dir = tempdir();
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--bridge=none",
            ])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", d.join("sock").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting dockerd");
        let mut docker = Docker { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if docker
                .cmd()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Some(docker);
            }
            let exited = docker.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let why = format!("dockerd did not come up ({exited:?}): {}", docker.log());
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{why}");
                }
                skip(&why);
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `docker` talking to this daemon; add a subcommand.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("--host")
            .arg(format!("unix://{}", self.dir.path().join("sock").display()))
            // No credentials or contexts of the developer's.
            .env("DOCKER_CONFIG", self.dir.path().join("config"));
        c
    }

    /// `docker run --rm` of `image` with the limits these sandboxes need.
    pub fn run_image(&self, image: &str, args: &[&str]) -> super::Run {
        run(self
            .cmd()
            .args(["run", "--rm", "--network", "none"])
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=1000:1000",
            ])
            .arg(image)
            .args(args))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
