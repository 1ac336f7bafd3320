use std::fmt;
use std::str::FromStr;

/// `os/arch[/variant]` as written in recipes and `--platform`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not a platform: write it as os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformParseError {
    pub input: String,
}

impl Platform {
    pub fn linux(arch: &str) -> Platform {
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    /// The Debian architecture name for this platform (`dpkg --print-architecture`).
    pub fn debian_arch(&self) -> Option<&'static str> {
        Some(
            match (self.architecture.as_str(), self.variant.as_deref()) {
                ("amd64", _) => "amd64",
                ("arm64", _) => "arm64",
                ("arm", Some("v7")) => "armhf",
                ("arm", Some("v5")) | ("arm", Some("v6")) => "armel",
                ("386", _) => "i386",
                ("ppc64le", _) => "ppc64el",
                ("s390x", _) => "s390x",
                ("mips64le", _) => "mips64el",
                ("riscv64", _) => "riscv64",
                _ => return None,
            },
        )
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PlatformParseError {
            input: s.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let valid =
            |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if valid(os) && valid(arch) && valid(v) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}
