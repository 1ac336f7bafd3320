//! Python packages from a PEP 751 lock (`pylock.toml`), installed for
//! the image's own interpreter without running pip or Python:
//!
//! - `pylock` reads the lock and, per platform, picks each package's
//!   wheel (`markers` judge which packages apply, `tags` which wheels fit
//!   the interpreter, `version` compares versions as PEP 440 does);
//! - `wheel` installs one wheel into a tree, as the binary distribution
//!   format says;
//! - this module finds the interpreter (the Debian python3 the recipe's
//!   lock installs, its glibc from libc6) and puts the wheels of one
//!   platform together.

pub mod markers;
pub mod pylock;
pub mod tags;
pub mod version;
pub mod wheel;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::lock::LockedPackage;
use crate::oci::Platform;
use markers::Environment;
use tags::Interpreter;

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("cannot read the Python lock {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{place}: {message}")]
    Lock { place: String, message: String },
    #[error("{place}: lock-version {version} is from the future (written by {created_by}); this stele reads pylock.toml version 1; update stele, or write the lock with a tool that writes version 1")]
    FutureLock {
        place: String,
        version: String,
        created_by: String,
    },
    #[error("{path} lists environments {environments}, and none of them is {platform} with Python {python}; lock for this platform too (`uv pip compile --universal`, or add it to the lock's environments)")]
    NoEnvironment {
        path: PathBuf,
        platform: String,
        python: String,
        environments: String,
    },
    /// `for_python` is `linux/amd64 is 3.11.2`.
    #[error(
        "{place}: {what} needs Python {specifier}, and the image's interpreter for {for_python}"
    )]
    RequiresPython {
        place: String,
        what: String,
        specifier: String,
        for_python: String,
    },
    #[error("{place}: package {package} has {kind} and no wheel; stele installs wheels only, since building one runs the package's build backend; lock a version that publishes wheels, or build the wheel yourself and lock that file")]
    NoWheels {
        place: String,
        package: String,
        kind: &'static str,
    },
    /// `platform` is `linux/arm64 (Python 3.11.2, glibc 2.36)`; `tags` the
    /// tags looked for and the wheels the lock has.
    #[error("{place}: package {package} has no wheel for {platform}; {tags}. Lock a version with a wheel for this platform, or drop the platform")]
    NoFittingWheel {
        place: String,
        package: String,
        platform: String,
        tags: String,
    },
    #[error("wheel of {package}: {message}")]
    Wheel { package: String, message: String },
    #[error("{loc}: {platform} has no Python interpreter stele can name: {why}; add python3 to [apt] packages, or say which the base has with [python] interpreter = \"3.X.Y\" and glibc = \"2.NN\"")]
    NoInterpreter {
        loc: String,
        platform: String,
        why: String,
    },
    #[error("{platform}: wheels {first} and {second} both install {path}")]
    Conflict {
        platform: String,
        first: String,
        second: String,
        path: String,
    },
}

/// The upstream part of a Debian version: `3.11.2-6+deb12u6` → `3.11.2`,
/// `2.36-9+deb12u10` → `2.36`.
fn upstream(debian_version: &str) -> &str {
    let no_epoch = debian_version
        .split_once(':')
        .map_or(debian_version, |(_, v)| v);
    let no_revision = no_epoch.rsplit_once('-').map_or(no_epoch, |(v, _)| v);
    no_revision.split(['~', '+']).next().unwrap_or(no_revision)
}

fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// What the recipe says about the interpreter, when the packages do not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterpreterHints {
    /// `3.11.2`.
    pub python: Option<String>,
    /// `(2, 36)`.
    pub glibc: Option<(u32, u32)>,
}

/// The interpreter of `platform`'s image: the `python3.X` the locked
/// Debian packages install (its version from the package) and glibc from
/// `libc6`; the recipe's hints fill what the packages do not say (a base
/// image's interpreter).
pub fn interpreter(
    locked: &[LockedPackage],
    hints: &InterpreterHints,
    platform: &Platform,
    loc: &str,
) -> Result<Interpreter, PythonError> {
    let no = |why: String| PythonError::NoInterpreter {
        loc: loc.to_string(),
        platform: platform.to_string(),
        why,
    };
    let machine = tags::machine_of(platform)
        .ok_or_else(|| no(format!("Python names no machine for {platform}")))?;
    // `python3.11` (or its `-minimal`) carries the interpreter itself.
    let from_packages = locked
        .iter()
        .filter(|p| {
            let n = p.name.strip_suffix("-minimal").unwrap_or(&p.name);
            n.strip_prefix("python3.")
                .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|p| upstream(&p.version).to_string())
        .max_by(|a, b| {
            version::Version::parse(a)
                .zip(version::Version::parse(b))
                .map_or(std::cmp::Ordering::Equal, |(x, y)| x.cmp(&y))
        });
    let full = hints
        .python
        .clone()
        .or(from_packages)
        .ok_or_else(|| no("no python3.X package is locked for it".into()))?;
    let version =
        major_minor(&full).ok_or_else(|| no(format!("`{full}` is not a Python version")))?;
    let glibc = hints.glibc.or_else(|| {
        locked
            .iter()
            .find(|p| p.name == "libc6" || p.name == "libc6.1")
            .and_then(|p| major_minor(upstream(&p.version)))
    });
    if glibc.is_none() {
        return Err(no(
            "no libc6 package is locked for it, so its glibc version is unknown".into(),
        ));
    }
    Ok(Interpreter {
        version,
        full_version: full,
        glibc,
        machine: machine.to_string(),
    })
}

/// The PEP 508 marker values of `interpreter` on Linux, with the extras
/// and dependency groups asked for.
pub fn environment(
    interpreter: &Interpreter,
    extras: &BTreeSet<String>,
    groups: &BTreeSet<String>,
) -> Environment {
    let (major, minor) = interpreter.version;
    let mut env = Environment::default();
    for (k, v) in [
        ("os_name", "posix".to_string()),
        ("sys_platform", "linux".into()),
        ("platform_system", "Linux".into()),
        ("platform_machine", interpreter.machine.clone()),
        ("platform_python_implementation", "CPython".into()),
        ("implementation_name", "cpython".into()),
        ("implementation_version", interpreter.full_version.clone()),
        ("python_version", format!("{major}.{minor}")),
        ("python_full_version", interpreter.full_version.clone()),
        // The kernel the image will run on is not known when it is built.
        ("platform_release", String::new()),
        ("platform_version", String::new()),
    ] {
        env.values.insert(k.to_string(), v);
    }
    env.extras = extras.clone();
    env.dependency_groups = groups.clone();
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;

    fn pkg(name: &str, version: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            source: 0,
            path: String::new(),
            size: 1,
            sha256: Digest::of(name.as_bytes()),
            date: None,
        }
    }

    #[test]
    fn the_interpreter_comes_from_the_locked_packages() {
        let locked = [
            pkg("libc6", "2.36-9+deb12u10"),
            pkg("python3.11-minimal", "3.11.2-6+deb12u6"),
            pkg("python3", "3.11.2-1+b1"),
        ];
        let i = interpreter(
            &locked,
            &InterpreterHints::default(),
            &Platform::linux("arm64"),
            "r:1:1",
        )
        .unwrap();
        assert_eq!(i.version, (3, 11));
        assert_eq!(i.full_version, "3.11.2");
        assert_eq!(i.glibc, Some((2, 36)));
        assert_eq!(i.machine, "aarch64");
        let e = interpreter(
            &locked[..1],
            &InterpreterHints::default(),
            &Platform::linux("amd64"),
            "r:1:1",
        )
        .unwrap_err();
        assert!(e.to_string().contains("no python3.X package"), "{e}");
        let hinted = InterpreterHints {
            python: Some("3.12.1".into()),
            glibc: Some((2, 39)),
        };
        let i = interpreter(&[], &hinted, &Platform::linux("amd64"), "r:1:1").unwrap();
        assert_eq!((i.version, i.glibc), ((3, 12), Some((2, 39))));
        assert_eq!(upstream("1:2.36~rc1-1"), "2.36");
    }
}
