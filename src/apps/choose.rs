//! Which packages each platform installs: a pure function of the recipe,
//! its ecosystem locks and the Debian packages locked (which name each
//! platform's Python interpreter). `resolve` fetches what this chooses;
//! `locking` records it in stele's lock.

use std::collections::BTreeMap;

use super::resolve::AppsError;
use crate::lock::Lock;
use crate::node::lock::{ChosenPackage, PackageLock};
use crate::node::{NodeError, NodePlatform};
use crate::python::pylock::{ChosenWheel, PyLock};
use crate::python::tags::Interpreter;
use crate::python::InterpreterHints;
use crate::recipe::{NodeSpec, PythonSpec, Recipe};

/// Per platform (`linux/amd64`), its interpreter and the wheels `lock`
/// chooses for it, over the Debian packages of `apt`.
pub type PythonChoice = BTreeMap<String, (Interpreter, Vec<ChosenWheel>)>;

pub fn python(
    recipe: &Recipe,
    spec: &PythonSpec,
    lock: &PyLock,
    apt: Option<&Lock>,
) -> Result<PythonChoice, AppsError> {
    let hints = InterpreterHints {
        python: spec.python.clone(),
        glibc: spec.glibc,
    };
    let groups = spec.groups.clone().unwrap_or_else(|| lock.default_groups());
    let mut platforms = BTreeMap::new();
    for platform in &recipe.platforms {
        let key = platform.to_string();
        let locked = apt
            .and_then(|l| l.platforms.get(&key))
            .map_or(&[][..], |p| p.packages.as_slice());
        let interpreter = crate::python::interpreter(locked, &hints, platform, &spec.loc.0)?;
        let env = crate::python::environment(&interpreter, &spec.extras, &groups);
        let wheels = lock.select(&interpreter, &env, &key)?;
        platforms.insert(key, (interpreter, wheels));
    }
    Ok(platforms)
}

/// Per platform, the npm packages `lock` chooses for it.
pub fn node(
    recipe: &Recipe,
    spec: &NodeSpec,
    lock: &PackageLock,
) -> Result<BTreeMap<String, Vec<ChosenPackage>>, AppsError> {
    let mut platforms = BTreeMap::new();
    for platform in &recipe.platforms {
        let np = NodePlatform::of(platform).ok_or_else(|| NodeError::Lock {
            path: spec.lock.clone(),
            message: format!("Node.js names no architecture for {platform}"),
        })?;
        platforms.insert(
            platform.to_string(),
            lock.select(&np, spec.dev, &spec.skip_scripts)?,
        );
    }
    Ok(platforms)
}
