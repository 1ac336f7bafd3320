//! Which wheels an interpreter can install: wheel file names read into
//! their tags (the binary distribution format's file name convention,
//! with compressed tag sets), and the tags an image's CPython on Linux
//! supports, best first, as the platform compatibility tags
//! specification orders them (PEP 425, manylinux per PEP 600, abi3).

use std::fmt;

/// The interpreter a platform's image runs, as far as wheels care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpreter {
    /// `(3, 11)`.
    pub version: (u32, u32),
    /// `3.11.2`: `python_full_version`.
    pub full_version: String,
    /// The C library: glibc's `(2, 36)`, or `None` when there is none
    /// (no manylinux wheel fits then).
    pub glibc: Option<(u32, u32)>,
    /// `x86_64`, `aarch64`, … (`platform.machine()`).
    pub machine: String,
}

/// `platform.machine()` on Linux for an OCI platform.
pub fn machine_of(platform: &crate::oci::Platform) -> Option<&'static str> {
    Some(
        match (platform.architecture.as_str(), platform.variant.as_deref()) {
            ("amd64", _) => "x86_64",
            ("arm64", _) => "aarch64",
            ("arm", Some("v7")) => "armv7l",
            ("arm", Some("v6")) => "armv6l",
            ("386", _) => "i686",
            ("ppc64le", _) => "ppc64le",
            ("s390x", _) => "s390x",
            ("riscv64", _) => "riscv64",
            _ => return None,
        },
    )
}

/// One `interpreter-abi-platform` tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// A wheel's file name: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`,
/// each tag part possibly several, joined by dots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelName {
    pub name: String,
    pub version: String,
    pub tags: Vec<Tag>,
}

impl WheelName {
    pub fn parse(file_name: &str) -> Option<WheelName> {
        let stem = file_name.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, python, abi, platform) = match parts.as_slice() {
            [n, v, p, a, pl] | [n, v, _, p, a, pl] => (*n, *v, *p, *a, *pl),
            _ => return None,
        };
        if [name, version, python, abi, platform]
            .iter()
            .any(|p| p.is_empty())
        {
            return None;
        }
        let mut tags = Vec::new();
        for p in python.split('.') {
            for a in abi.split('.') {
                for pl in platform.split('.') {
                    tags.push(Tag {
                        python: p.to_string(),
                        abi: a.to_string(),
                        platform: pl.to_string(),
                    });
                }
            }
        }
        Some(WheelName {
            name: name.to_string(),
            version: version.to_string(),
            tags,
        })
    }
}

/// The oldest glibc manylinux names (PEP 600's `manylinux_2_5`).
const MANYLINUX_OLDEST_MINOR: u32 = 5;

impl Interpreter {
    /// The platform tags of the image, best first: `manylinux_2_N` from
    /// the image's glibc down (with the legacy aliases `manylinux2014`,
    /// `manylinux2010` and `manylinux1` beside the versions they name),
    /// then `linux_<machine>`.
    pub fn platforms(&self) -> Vec<String> {
        let arch = &self.machine;
        let mut out = Vec::new();
        if let Some((2, minor)) = self.glibc {
            // manylinux2014 and older exist only for these machines
            // (PEP 599); PEP 600 names every machine.
            let legacy = |alias: &str, since: &[&str]| {
                since
                    .contains(&arch.as_str())
                    .then(|| format!("{alias}_{arch}"))
            };
            // aarch64 and the others start at glibc 2.17 (manylinux2014).
            let oldest = if matches!(arch.as_str(), "x86_64" | "i686") {
                MANYLINUX_OLDEST_MINOR
            } else {
                17
            };
            for m in (oldest..=minor).rev() {
                out.push(format!("manylinux_2_{m}_{arch}"));
                let alias = match m {
                    17 => legacy(
                        "manylinux2014",
                        &[
                            "x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x",
                        ],
                    ),
                    12 => legacy("manylinux2010", &["x86_64", "i686"]),
                    5 => legacy("manylinux1", &["x86_64", "i686"]),
                    _ => None,
                };
                out.extend(alias);
            }
        }
        out.push(format!("linux_{arch}"));
        out
    }

    /// Every tag this interpreter installs, best first, in the order
    /// CPython's installers rank them: its own ABI, then the stable ABI
    /// (abi3) of this and older 3.x, then `none`, for each platform tag;
    /// then pure-Python tags for this and older 3.x versions, platform
    /// specific before `any`.
    pub fn supported_tags(&self) -> Vec<Tag> {
        let (major, minor) = self.version;
        let cp = format!("cp{major}{minor}");
        let platforms = self.platforms();
        let tag = |python: &str, abi: &str, platform: &str| Tag {
            python: python.to_string(),
            abi: abi.to_string(),
            platform: platform.to_string(),
        };
        let mut out = Vec::new();
        for p in &platforms {
            out.push(tag(&cp, &cp, p));
        }
        for p in &platforms {
            out.push(tag(&cp, "abi3", p));
        }
        for p in &platforms {
            out.push(tag(&cp, "none", p));
        }
        // abi3 wheels built for older 3.x run on newer ones (from 3.2).
        for older in (2..minor).rev() {
            for p in &platforms {
                out.push(tag(&format!("cp{major}{older}"), "abi3", p));
            }
        }
        let pythons: Vec<String> = std::iter::once(format!("py{major}{minor}"))
            .chain(std::iter::once(format!("py{major}")))
            .chain((0..minor).rev().map(|m| format!("py{major}{m}")))
            .collect();
        for p in &platforms {
            for py in &pythons {
                out.push(tag(py, "none", p));
            }
        }
        out.push(tag(&cp, "none", "any"));
        for py in &pythons {
            out.push(tag(py, "none", "any"));
        }
        out
    }
}

/// The rank of the best of `tags` in `supported` (lower is better), or
/// `None` when none is supported.
pub fn rank(tags: &[Tag], supported: &[Tag]) -> Option<usize> {
    tags.iter()
        .filter_map(|t| supported.iter().position(|s| s == t))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bookworm(machine: &str) -> Interpreter {
        Interpreter {
            version: (3, 11),
            full_version: "3.11.2".into(),
            glibc: Some((2, 36)),
            machine: machine.into(),
        }
    }

    #[test]
    fn wheel_names_expand_compressed_tag_sets() {
        let w = WheelName::parse(
            "pyyaml-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.name, "pyyaml");
        assert_eq!(w.version, "6.0.2");
        assert_eq!(w.tags.len(), 2);
        assert_eq!(w.tags[1].to_string(), "cp311-cp311-manylinux2014_x86_64");
        let built = WheelName::parse("a-1.0-1build-py2.py3-none-any.whl").unwrap();
        assert_eq!(built.tags.len(), 2);
        assert!(WheelName::parse("a-1.0.tar.gz").is_none());
        assert!(WheelName::parse("a-1.0-py3.whl").is_none());
    }

    #[test]
    fn the_best_fitting_wheel_wins_as_pip_ranks_it() {
        let amd = bookworm("x86_64").supported_tags();
        let arm = bookworm("aarch64").supported_tags();
        let r =
            |name: &str, supported: &[Tag]| rank(&WheelName::parse(name).unwrap().tags, supported);
        let native = "m-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
        let newer = "m-1-cp311-cp311-manylinux_2_28_x86_64.whl";
        let abi3 = "m-1-cp38-abi3-manylinux_2_17_x86_64.whl";
        let pure = "m-1-py3-none-any.whl";
        assert!(r(newer, &amd) < r(native, &amd));
        assert!(r(native, &amd) < r(abi3, &amd));
        assert!(r(abi3, &amd) < r(pure, &amd));
        // Other interpreters, machines, C libraries and systems do not fit.
        for no in [
            "m-1-cp312-cp312-manylinux_2_17_x86_64.whl",
            "m-1-cp311-cp311-manylinux_2_39_x86_64.whl",
            "m-1-cp311-cp311-musllinux_1_2_x86_64.whl",
            "m-1-cp311-cp311-win_amd64.whl",
            "m-1-cp311-cp311-macosx_11_0_arm64.whl",
            "m-1-cp311-cp311t-manylinux_2_17_x86_64.whl",
            "m-1-py2-none-any.whl",
        ] {
            assert_eq!(r(no, &amd), None, "{no}");
        }
        assert_eq!(r(native, &arm), None);
        assert!(r("m-1-cp311-cp311-manylinux2014_aarch64.whl", &arm).is_some());
        // aarch64 has no manylinux1.
        assert_eq!(r("m-1-cp311-cp311-manylinux1_aarch64.whl", &arm), None);
        assert!(r("m-1-cp311-cp311-manylinux1_x86_64.whl", &amd).is_some());
    }
}
