//! What every SBOM stele writes is made of, whatever the ecosystem: the
//! operating system the image's packages belong to, and one
//! [`Component`] per package, each named by a purl. The SPDX and
//! CycloneDX writers know nothing of Debian; a new package ecosystem adds
//! a conversion to `Component` beside [`DebPackage::component`].
//!
//! Debian packages' purls are what scanners match advisories by
//! (purl-spec's `deb` type, with the qualifiers Syft writes and Grype and
//! Trivy read): `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12
//! &upstream=SOURCE` (`upstream=SOURCE@VERSION` when the source's version
//! differs). Debian's security tracker is keyed by source package, so a
//! binary package's advisories are found through `upstream`.

use std::collections::BTreeMap;

use super::DebPackage;
use crate::oci::Digest;

/// The operating system of an image, as os-release(5) names it: `ID`
/// (`debian`) and `VERSION_ID` (`12`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Distro {
    pub id: String,
    pub version_id: String,
}

/// Debian's release codenames and versions, for an image without an
/// os-release (no base-files installed): the suite the lock names. A
/// suite such as `bookworm-security` is its release's.
const DEBIAN_RELEASES: [(&str, &str); 6] = [
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("duke", "15"),
];

/// The largest os-release read.
const OS_RELEASE_LIMIT: u64 = 64 << 10;

impl Distro {
    /// The `distro` qualifier value: `debian-12`.
    pub fn qualifier(&self) -> String {
        format!("{}-{}", self.id, self.version_id)
    }

    /// From an os-release file's text: `ID` and `VERSION_ID` (both
    /// required; a rolling release without `VERSION_ID` gives none).
    pub fn from_os_release(text: &str) -> Option<Distro> {
        let mut id = None;
        let mut version = None;
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
            match k.trim() {
                "ID" => id = Some(v),
                "VERSION_ID" => version = Some(v),
                _ => {}
            }
        }
        let ok = |s: &String| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        match (id, version) {
            (Some(id), Some(version_id)) if ok(&id) && ok(&version_id) => Some(Distro {
                id: id.to_ascii_lowercase(),
                version_id,
            }),
            _ => None,
        }
    }

    /// Debian's release named by `suite` (`bookworm`,
    /// `bookworm-updates`), when it is one stele knows.
    pub fn from_debian_suite(suite: &str) -> Option<Distro> {
        let codename = suite.split(['-', '/']).next().unwrap_or(suite);
        DEBIAN_RELEASES
            .iter()
            .find(|(c, _)| *c == codename)
            .map(|(_, v)| Distro {
                id: "debian".into(),
                version_id: (*v).into(),
            })
    }

    /// The image's distro from its tree (`/etc/os-release`, else
    /// `/usr/lib/os-release`, regular files only), else from the suites.
    pub(crate) fn of_tree<'a>(
        tree: &crate::fstree::FsTree,
        suites: impl IntoIterator<Item = &'a str>,
    ) -> Option<Distro> {
        for key in ["etc/os-release", "usr/lib/os-release"] {
            if let Some(crate::fstree::NodeKind::File(c)) = tree.get(key).map(|n| &n.kind) {
                if c.size() <= OS_RELEASE_LIMIT {
                    if let Some(d) = c
                        .read_all()
                        .ok()
                        .and_then(|b| Distro::from_os_release(&String::from_utf8_lossy(&b)))
                    {
                        return Some(d);
                    }
                }
            }
        }
        suites.into_iter().find_map(Distro::from_debian_suite)
    }

    /// The purl namespace of its Debian-format packages.
    fn deb_namespace(&self) -> &str {
        match self.id.as_str() {
            "ubuntu" => "ubuntu",
            _ => "debian",
        }
    }
}

/// One package an SBOM lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub version: String,
    pub purl: String,
    /// sha256 of the file the package came from (a .deb, a wheel, …).
    pub sha256: Option<Digest>,
    /// SPDX license expression it declares, when stele could read one.
    pub license: Option<String>,
    /// The source package it was built from, and that source's version.
    pub source: Option<(String, String)>,
    /// Whether it belongs to the operating system (listed under the OS
    /// component, where scanners look for OS packages).
    pub os_package: bool,
    /// Digest of the image layer holding its files, when known.
    pub layer: Option<Digest>,
    /// Further facts, as `stele:` properties.
    pub properties: BTreeMap<String, String>,
}

impl DebPackage {
    /// The package as SBOMs list it, its purl qualified by `distro`.
    pub fn component(&self, distro: Option<&Distro>, layer: Option<&Digest>) -> Component {
        // A Python or npm package: its ecosystem's purl, no Debian source,
        // and not one of the operating system's packages.
        if let Some(purl) = &self.purl {
            return Component {
                name: self.name.clone(),
                version: self.version.clone(),
                purl: purl.clone(),
                sha256: Some(self.sha256.clone()),
                license: self.license.clone(),
                source: None,
                os_package: false,
                layer: layer.cloned(),
                properties: BTreeMap::new(),
            };
        }
        let source_version = self
            .source_version
            .clone()
            .unwrap_or_else(|| self.version.clone());
        Component {
            name: self.name.clone(),
            version: self.version.clone(),
            purl: deb_purl(self, distro),
            sha256: Some(self.sha256.clone()),
            license: self.license.clone(),
            source: Some((self.source_package.clone(), source_version)),
            os_package: true,
            layer: layer.cloned(),
            properties: BTreeMap::from([(
                "stele:architecture".to_string(),
                self.architecture.clone(),
            )]),
        }
    }
}

/// The purl of a Debian binary package, qualifiers in key order as the
/// canonical form wants them, values percent-encoded the way the
/// reference purl implementation does (`+` → `%2B`, `@` → `%40`, `:` and
/// `~` kept).
pub(crate) fn deb_purl(p: &DebPackage, distro: Option<&Distro>) -> String {
    let namespace = distro.map_or("debian", Distro::deb_namespace);
    let mut qualifiers = BTreeMap::from([("arch", p.architecture.clone())]);
    if let Some(d) = distro {
        qualifiers.insert("distro", d.qualifier());
    }
    let upstream = match &p.source_version {
        Some(v) if v != &p.version => format!("{}@{v}", p.source_package),
        _ => p.source_package.clone(),
    };
    // Syft leaves `upstream` out when the source is the package itself.
    if upstream != p.name {
        qualifiers.insert("upstream", upstream);
    }
    let mut s = format!(
        "pkg:deb/{namespace}/{}@{}",
        purl_encode(&p.name),
        purl_encode(&p.version)
    );
    push_qualifiers(&mut s, &qualifiers);
    s
}

/// purl for an OCI image by digest (purl-spec `oci` type).
pub(crate) fn oci_purl(name: &str, digest: &Digest, qualifiers: &BTreeMap<&str, String>) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    let mut s = format!(
        "pkg:oci/{}@{}",
        purl_encode(&last.to_ascii_lowercase()),
        purl_encode(&digest.to_string())
    );
    push_qualifiers(&mut s, qualifiers);
    s
}

fn push_qualifiers(s: &mut String, qualifiers: &BTreeMap<&str, String>) {
    let mut sep = '?';
    for (k, v) in qualifiers {
        s.push(sep);
        s.push_str(k);
        s.push('=');
        s.push_str(&purl_encode(v));
        sep = '&';
    }
}

fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str, source: &str, source_version: Option<&str>) -> DebPackage {
        DebPackage {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            license: None,
            source_package: source.into(),
            source_version: source_version.map(str::to_string),
            sha256: Digest::of(b""),
            purl: None,
        }
    }

    #[test]
    fn purls_carry_distro_and_upstream_as_scanners_read_them() {
        let bookworm = Distro::from_debian_suite("bookworm-security").unwrap();
        assert_eq!(bookworm.qualifier(), "debian-12");
        assert_eq!(
            deb_purl(
                &deb("libc6", "2.36-9+deb12u4", "glibc", None),
                Some(&bookworm)
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        // A binNMU: the source's version differs from the binary's.
        assert_eq!(
            deb_purl(
                &deb("busybox-static", "1:1.35.0-4+b3", "busybox", Some("1:1.35.0-4")),
                Some(&bookworm)
            ),
            "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bb3?arch=amd64&distro=debian-12&upstream=busybox%401:1.35.0-4"
        );
        // Its own source: no upstream, as Syft writes it.
        assert_eq!(
            deb_purl(&deb("tzdata", "2024a-0+deb12u1", "tzdata", None), None),
            "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=amd64"
        );
        assert_eq!(
            deb_purl(
                &deb("libstdc++6", "12.2.0-14", "gcc-12", None),
                Some(&bookworm)
            ),
            "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12"
        );
    }

    #[test]
    fn distro_from_os_release_and_suites() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(
            Distro::from_os_release(text),
            Some(Distro {
                id: "debian".into(),
                version_id: "12".into()
            })
        );
        assert_eq!(Distro::from_os_release("ID=debian\n"), None);
        assert_eq!(Distro::from_debian_suite("stable"), None);
        assert_eq!(
            Distro::from_debian_suite("trixie").unwrap().qualifier(),
            "debian-13"
        );
    }

    #[test]
    fn oci_purls_match_the_reference_encoding() {
        let d = Digest::of(b"");
        let q = BTreeMap::from([("tag", "latest".to_string()), ("arch", "amd64".into())]);
        assert_eq!(
            oci_purl("reg.example/team/Hello", &d, &q),
            format!("pkg:oci/hello@sha256:{}?arch=amd64&tag=latest", d.hex())
        );
    }
}
