//! `update-alternatives --install` and `--remove`, as postinsts call them.

use super::{Action, AltInstall};

/// The registration `args` (after the command name) make, when the reader
/// follows every option and each link and path is absolute.
pub(super) fn parse(args: &[&str]) -> Option<Action> {
    let mut it = args
        .iter()
        .copied()
        .filter(|a| !matches!(*a, "--quiet" | "--force"));
    match it.next()? {
        "--install" => {
            let link = it.next()?.to_string();
            let name = it.next()?.to_string();
            let path = it.next()?.to_string();
            let priority = it.next()?.parse().ok()?;
            let mut slaves = Vec::new();
            while let Some(opt) = it.next() {
                if opt != "--slave" {
                    return None;
                }
                slaves.push((
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                ));
            }
            let abs = |p: &str| p.starts_with('/');
            if !abs(&link) || !abs(&path) || slaves.iter().any(|(l, _, p)| !abs(l) || !abs(p)) {
                return None;
            }
            Some(Action::AltInstall(AltInstall {
                link,
                name,
                path,
                priority,
                slaves,
            }))
        }
        "--remove" => {
            let name = it.next()?.to_string();
            let path = it.next()?.to_string();
            it.next()
                .is_none()
                .then_some(Action::AltRemove { name, path })
        }
        _ => None,
    }
}
