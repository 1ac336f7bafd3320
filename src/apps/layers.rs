//! The layers of `[python]` and `[node]` for one platform (the pure
//! build's part): every wheel installed into one Python layer, every npm
//! package into one `node_modules` layer, each over the layers below it,
//! and what SBOMs say of their packages.

use std::collections::BTreeMap;

use super::resolve::{AppInputs, AppsError};
use crate::attest::DebPackage;
use crate::fstree::{Content, FsTree, Node, NodeKind};
use crate::oci::Platform;
use crate::python::wheel::{self, Scheme};
use crate::python::PythonError;
use crate::recipe::Recipe;

/// A layer `[python]` or `[node]` makes, before it is written.
pub struct AppLayer {
    pub tree: FsTree,
    pub created_by: String,
    /// The packages it holds, as SBOMs list them.
    pub packages: Vec<DebPackage>,
}

/// The application layers of `platform`, in order (Python, then npm),
/// each with its parents completed over `lower`.
pub fn app_layers(
    recipe: &Recipe,
    inputs: &AppInputs,
    platform: &Platform,
    lower: &FsTree,
) -> Result<Vec<AppLayer>, AppsError> {
    let key = platform.to_string();
    let template = Node::dir(0o755, 0, 0, recipe.epoch);
    let mut layers = Vec::new();
    if let Some(python) = &inputs.python {
        let (interpreter, wheels) = &python.platforms[&key];
        let (major, minor) = interpreter.version;
        let binary = format!("usr/bin/python{major}.{minor}");
        // Below the Python layer, or made by the recipe's own layer.
        let made = recipe.paths.iter().any(|p| p.key == binary)
            || recipe.files.iter().any(|f| f.dest == binary);
        if lower.get(&binary).is_none() && !made {
            return Err(PythonError::NoInterpreter {
                loc: python.spec.loc.0.clone(),
                platform: key.clone(),
                why: format!("/{binary} is not in the image below the Python packages"),
            }
            .into());
        }
        let scheme = match &python.spec.venv {
            Some(root) => Scheme::venv(root, interpreter.version),
            None => Scheme::debian(interpreter.version),
        };
        let mut tree = FsTree::new();
        if let Some(root) = &python.spec.venv {
            venv_skeleton(&mut tree, root, interpreter, recipe.epoch);
        }
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        let mut packages = Vec::new();
        for w in wheels {
            let label = format!("{} {}", w.name, w.version);
            let installed = wheel::install(&inputs.archives[&w.sha256], w, &scheme, recipe.epoch)?;
            for (path, node) in installed.tree.iter() {
                if let Some(first) = owner.get(path) {
                    if tree.get(path) != Some(node) {
                        return Err(PythonError::Conflict {
                            platform: key.clone(),
                            first: first.clone(),
                            second: label.clone(),
                            path: format!("/{path}"),
                        }
                        .into());
                    }
                }
                owner.insert(path.clone(), label.clone());
                tree.replace(path.clone(), node.clone());
            }
            packages.push(DebPackage {
                source_version: None,
                name: w.name.clone(),
                version: w.version.clone(),
                architecture: w
                    .file
                    .rsplit('-')
                    .next()
                    .unwrap_or("any")
                    .trim_end_matches(".whl")
                    .to_string(),
                license: None,
                source_package: w.name.clone(),
                sha256: w.sha256.clone(),
                purl: Some(format!(
                    "pkg:pypi/{}@{}",
                    crate::python::pylock::normalize(&w.name),
                    w.version
                )),
            });
        }
        tree.complete_parents_over(Some(lower), &template)
            .map_err(|e| PythonError::Wheel {
                package: python.spec.lock_written.clone(),
                message: e.to_string(),
            })?;
        let n = wheels.len();
        layers.push(AppLayer {
            tree,
            created_by: format!(
                "stele: {n} Python package{} from {}",
                if n == 1 { "" } else { "s" },
                python.spec.lock_written
            ),
            packages,
        });
    }
    if let Some(node) = &inputs.node {
        let chosen = &node.platforms[&key];
        let pairs: Vec<_> = chosen
            .iter()
            .map(|(p, d)| (p, &inputs.archives[d]))
            .collect();
        let mut tree = crate::node::layout::install(&node.spec.dest, &pairs, recipe.epoch, &key)?;
        tree.complete_parents_over(Some(lower), &template)
            .map_err(|e| crate::node::NodeError::Layout {
                platform: key.clone(),
                package: node.spec.lock_written.clone(),
                message: e.to_string(),
            })?;
        let packages = chosen
            .iter()
            .map(|(p, d)| DebPackage {
                source_version: None,
                name: p.name.clone(),
                version: p.version.clone(),
                architecture: "all".into(),
                license: p.license.clone(),
                source_package: p.name.clone(),
                sha256: d.clone(),
                purl: Some(npm_purl(&p.name, &p.version)),
            })
            .collect();
        let n = chosen.len();
        layers.push(AppLayer {
            tree,
            created_by: format!(
                "stele: {n} npm package{} from {}",
                if n == 1 { "" } else { "s" },
                node.spec.lock_written
            ),
            packages,
        });
    }
    Ok(layers)
}

/// purl-spec's npm type: the scope's `@` percent-encoded.
fn npm_purl(name: &str, version: &str) -> String {
    match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
        Some((scope, base)) => format!("pkg:npm/%40{scope}/{base}@{version}"),
        None => format!("pkg:npm/{name}@{version}"),
    }
}

/// What `python3 -m venv --without-pip ROOT` makes on Linux: pyvenv.cfg,
/// the interpreter links, an empty include folder, site-packages, and on
/// 64-bit systems `lib64` → `lib`.
fn venv_skeleton(
    tree: &mut FsTree,
    root: &str,
    interpreter: &crate::python::tags::Interpreter,
    epoch: u64,
) {
    let (major, minor) = interpreter.version;
    let cfg = format!(
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = {}\nexecutable = /usr/bin/python{major}.{minor}\ncommand = /usr/bin/python{major} -m venv --without-pip /{root}\n",
        interpreter.full_version
    );
    let file = |bytes: String| Node::file(Content::bytes(bytes.into_bytes()), 0o644, 0, 0, epoch);
    tree.replace(format!("{root}/pyvenv.cfg"), file(cfg));
    tree.replace(
        format!("{root}/bin/python{major}"),
        Node::symlink(format!("/usr/bin/python{major}"), 0, 0, epoch),
    );
    tree.replace(
        format!("{root}/bin/python"),
        Node::symlink(format!("python{major}"), 0, 0, epoch),
    );
    tree.replace(
        format!("{root}/bin/python{major}.{minor}"),
        Node::symlink(format!("python{major}"), 0, 0, epoch),
    );
    for dir in [
        "include",
        &format!("lib/python{major}.{minor}/site-packages"),
    ] {
        tree.replace(format!("{root}/{dir}"), Node::dir(0o755, 0, 0, epoch));
    }
    if matches!(
        interpreter.machine.as_str(),
        "x86_64" | "aarch64" | "ppc64le" | "s390x" | "riscv64"
    ) {
        tree.replace(format!("{root}/lib64"), Node::symlink("lib", 0, 0, epoch));
    }
    debug_assert!(tree.iter().all(|(_, n)| n.kind != NodeKind::Whiteout));
}

#[cfg(test)]
mod tests {
    #[test]
    fn npm_purls_encode_the_scope() {
        assert_eq!(
            super::npm_purl("express", "4.21.2"),
            "pkg:npm/express@4.21.2"
        );
        assert_eq!(
            super::npm_purl("@esbuild/linux-x64", "0.24.2"),
            "pkg:npm/%40esbuild/linux-x64@0.24.2"
        );
    }
}
