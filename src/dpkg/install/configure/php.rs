//! PHP modules enabled as php-common's `phpenmod` (and
//! php-maintscript-helper's `php_invoke enmod`, which calls it) enables
//! them on a first install: for each SAPI whose `conf.d` folder exists,
//! the link `/etc/php/V/SAPI/conf.d/NN-MOD.ini` to
//! `/etc/php/V/mods-available/MOD.ini` (NN from the .ini's
//! `; priority=NN` line, else 20) and the state file
//! `/var/lib/php/modules/V/SAPI/enabled_by_maint/MOD` (`enabled_by_admin`
//! without `-m`); with `-r`, `/var/lib/php/modules/V/registry/MOD`.
//! Folders are made as `mkdir -p` makes them (0755), state files as
//! `touch` (0644, empty). A link already there means the module is
//! enabled: nothing changes.

use super::super::ownership::State;
use super::file_ops::Done;
use crate::dpkg::scripts::PhpEnmod;
use crate::fstree::{self, Content, Node, NodeKind};

/// The names in the folder `key`, sorted.
pub(super) fn children(state: &State, key: &str) -> Vec<String> {
    let prefix = format!("{key}/");
    state
        .holders
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| &k[prefix.len()..])
        .filter(|rest| !rest.contains('/'))
        .map(str::to_string)
        .collect()
}

fn node<'a>(state: &'a State, key: &str) -> Option<&'a Node> {
    let hs = state.holders.get(key)?;
    state.trees[hs[0]].get(key)
}

/// `; priority=NN` as php-helper's `get_priority` reads it, as written.
fn priority(ini: &str) -> String {
    ini.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(';')?.trim_start();
            let rest = rest.strip_prefix("priority")?.trim_start();
            let n = rest.strip_prefix('=')?.trim();
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.to_string())
        })
        .unwrap_or_else(|| String::from("20"))
}

/// `mkdir -p` of `key` and `touch` of `key/name`, as package `j`.
fn touch(state: &mut State, j: usize, dir: &str, name: &str, epoch: u64) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(k) = cur {
        if state.holders.contains_key(k) {
            break;
        }
        missing.push(k.to_string());
        cur = fstree::parent(k);
    }
    for k in missing.into_iter().rev() {
        state
            .place(j, k, Node::dir(0o755, 0, 0, epoch))
            .map_err(|e| e.to_string())?;
    }
    let key = format!("{dir}/{name}");
    if !state.holders.contains_key(&key) {
        let empty = Node::file(Content::bytes(Vec::new()), 0o644, 0, 0, epoch);
        state.place(j, key, empty).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Enables `e.module` as package `j`'s script would.
pub(super) fn enmod(state: &mut State, j: usize, e: &PhpEnmod, epoch: u64) -> Done {
    for tool in ["usr/sbin/phpenmod", "usr/sbin/phpquery"] {
        if node(state, tool).is_none() {
            return Err(format!("/{tool} is not installed (php-common)"));
        }
    }
    let versions = if e.version == "ALL" {
        let mut v: Vec<String> = children(state, "usr/lib/php")
            .into_iter()
            .filter(|n| {
                n.split_once('.').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
                })
            })
            .collect();
        v.reverse();
        v
    } else {
        vec![e.version.clone()]
    };
    let mut done = Vec::new();
    for version in versions {
        let ini_key = format!("etc/php/{version}/mods-available/{}.ini", e.module);
        let ini = match node(state, &ini_key).map(|n| &n.kind) {
            Some(NodeKind::File(c)) => c.read_all().map_err(|err| err.to_string())?,
            _ => {
                done.push(format!(
                    "/{ini_key} does not exist: not enabled for PHP {version}"
                ));
                continue;
            }
        };
        let nn = priority(&String::from_utf8_lossy(&ini));
        let sapis = if e.sapi == "ALL" {
            children(state, &format!("usr/lib/php/{version}/sapi"))
        } else {
            vec![e.sapi.clone()]
        };
        for sapi in sapis {
            let conf_d = format!("etc/php/{version}/{sapi}/conf.d");
            if !matches!(node(state, &conf_d).map(|n| &n.kind), Some(NodeKind::Dir)) {
                done.push(format!("/{conf_d} does not exist: not enabled for {sapi}"));
                continue;
            }
            let link = format!("{conf_d}/{nn}-{}.ini", e.module);
            if node(state, &link).is_some() {
                done.push(format!("/{link} exists: enabled for {sapi} already"));
                continue;
            }
            let target = format!("/{ini_key}");
            state
                .place(j, link.clone(), Node::symlink(target, 0, 0, epoch))
                .map_err(|err| err.to_string())?;
            let by = if e.maint {
                "enabled_by_maint"
            } else {
                "enabled_by_admin"
            };
            let dir = format!("var/lib/php/modules/{version}/{sapi}/{by}");
            touch(state, j, &dir, &e.module, epoch)?;
            done.push(format!("/{link} and /{dir}/{}", e.module));
        }
        if e.register {
            let dir = format!("var/lib/php/modules/{version}/registry");
            touch(state, j, &dir, &e.module, epoch)?;
            done.push(format!("/{dir}/{}", e.module));
        }
    }
    Ok(done.join("; "))
}

#[cfg(test)]
mod tests {
    use super::priority;

    #[test]
    fn the_priority_line_as_php_helper_reads_it() {
        assert_eq!(priority("; configuration for php opcache module\n; priority=10\nzend_extension=opcache.so\n"), "10");
        assert_eq!(priority(";priority = 05 \n"), "05");
        assert_eq!(priority("extension=ffi.so\n"), "20");
        assert_eq!(priority("; priority=ten\n"), "20");
    }
}
