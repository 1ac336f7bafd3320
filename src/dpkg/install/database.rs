//! The dpkg database, distroless style (what trivy, grype and syft read
//! when /var/lib/dpkg/status is absent): `status.d/<pkg>` is the control
//! file with `Status: install ok installed`, `status.d/<pkg>.md5sums` the
//! package's md5sums (the shipped file, or one computed as dh_md5sums
//! would). Multi-Arch packages installed for two architectures are told
//! apart as `<pkg>:<arch>`. Each file belongs to its package.

use std::collections::BTreeMap;

use md5::{Digest as _, Md5};

use super::ownership::State;
use super::{package_label, read_error, InstallError, Selected};
use crate::dpkg::deb::DebContents;
use crate::fstree::{self, Content, ContentReader, Node, NodeKind};

const STATUS_DIR: &str = "var/lib/dpkg/status.d";

/// Adds every package's status.d files.
pub(super) fn write(state: &mut State, epoch: u64) -> Result<(), InstallError> {
    let packages = state.packages;
    let mut name_count: BTreeMap<&str, usize> = BTreeMap::new();
    for (p, _) in packages {
        *name_count.entry(&p.name).or_default() += 1;
    }
    for (j, (p, deb)) in packages.iter().enumerate() {
        let file = if name_count[p.name.as_str()] > 1 {
            format!("{}:{}", p.name, p.architecture)
        } else {
            p.name.clone()
        };
        let own_file = |bytes: Vec<u8>| Node::file(Content::bytes(bytes), 0o644, 0, 0, epoch);
        let status = status_text(p, deb)?;
        state.place(
            j,
            format!("{STATUS_DIR}/{file}"),
            own_file(status.into_bytes()),
        )?;
        let md5sums = match deb.control.get("md5sums") {
            Some(m) => m.clone(),
            None => computed_md5sums(p, deb)?,
        };
        if !md5sums.is_empty() {
            state.place(j, format!("{STATUS_DIR}/{file}.md5sums"), own_file(md5sums))?;
        }
    }
    Ok(())
}

fn control_text<'a>(p: &Selected, deb: &'a DebContents) -> Result<&'a str, InstallError> {
    deb.control
        .get("control")
        .and_then(|c| std::str::from_utf8(c).ok())
        .ok_or_else(|| InstallError::NoControl {
            package: package_label(p),
        })
}

/// The control file's paragraph as dpkg's status keeps it: every field as
/// shipped, `Status: install ok installed` right after `Package`.
fn status_text(p: &Selected, deb: &DebContents) -> Result<String, InstallError> {
    let text = control_text(p, deb)?;
    let mut fields: Vec<String> = Vec::new();
    for line in text.lines().skip_while(|l| l.trim().is_empty()) {
        if line.trim().is_empty() {
            break;
        }
        match fields.last_mut() {
            Some(f) if line.starts_with([' ', '\t']) => {
                f.push('\n');
                f.push_str(line);
            }
            _ => fields.push(line.to_string()),
        }
    }
    let name_of = |f: &str| {
        f.split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let mut out = String::new();
    for field in fields.iter().filter(|f| name_of(f) != "status") {
        out.push_str(field);
        out.push('\n');
        if name_of(field) == "package" {
            out.push_str("Status: install ok installed\n");
        }
    }
    Ok(out)
}

/// An md5sums file as dh_md5sums writes it: regular files in byte order of
/// path (it runs `LC_ALL=C sort`), conffiles left out, paths as shipped.
fn computed_md5sums(p: &Selected, deb: &DebContents) -> Result<Vec<u8>, InstallError> {
    let conffiles: Vec<String> = deb
        .control
        .get("conffiles")
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches("remove-on-upgrade").trim())
        .filter_map(|l| fstree::normalize_rel(l).ok())
        .collect();
    let files: BTreeMap<&str, &Content> = deb
        .data
        .iter()
        .filter_map(|e| match &e.node.kind {
            NodeKind::File(c) => Some((e.path.as_str(), c)),
            _ => None,
        })
        .collect();
    let mut lines: BTreeMap<&str, String> = BTreeMap::new();
    for e in &deb.data {
        let content = match &e.node.kind {
            NodeKind::File(c) => c,
            NodeKind::Hardlink(t) => match files.get(t.as_str()) {
                Some(c) => c,
                None => continue,
            },
            _ => continue,
        };
        if conffiles.contains(&e.path) {
            continue;
        }
        let mut md5 = Md5Writer(Md5::new());
        ContentReader::default()
            .copy(content, &mut md5)
            .map_err(|source| read_error(p, &e.path, source))?;
        lines.insert(&e.path, hex::encode(md5.0.finalize()));
    }
    let out: String = lines
        .into_iter()
        .map(|(path, md5)| format!("{md5}  {path}\n"))
        .collect();
    Ok(out.into_bytes())
}

/// Streams file contents into an md5 hash: a package file may be large.
struct Md5Writer(Md5);

impl std::io::Write for Md5Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
