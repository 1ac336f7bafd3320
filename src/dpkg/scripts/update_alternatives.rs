//! `update-alternatives --install` and `--remove`, as postinsts call them,
//! checked as update-alternatives checks them and more: a name becomes a
//! file name under /etc/alternatives and /var/lib/dpkg/alternatives, and a
//! link a path in the image, so neither may leave its folder.

use super::{Action, AltInstall};

/// The registration `args` (after the command name) make, or why it is
/// not followed (options the reader does not know) or refused (a name or
/// path that would leave its folder).
pub(super) fn parse(args: &[&str]) -> Result<Action, String> {
    let unknown = || String::from("update-alternatives with options the reader does not follow");
    let mut it = args
        .iter()
        .copied()
        .filter(|a| !matches!(*a, "--quiet" | "--force"));
    match it.next().ok_or_else(unknown)? {
        "--install" => {
            let mut next = || it.next().map(str::to_string).ok_or_else(unknown);
            let link = next()?;
            let name = next()?;
            let path = next()?;
            let priority = next()?.parse().map_err(|_| unknown())?;
            let mut slaves = Vec::new();
            while let Some(opt) = it.next() {
                if opt != "--slave" {
                    return Err(unknown());
                }
                let mut next = || it.next().map(str::to_string).ok_or_else(unknown);
                slaves.push((next()?, next()?, next()?));
            }
            check_name(&name)?;
            check_path("link", &link)?;
            check_path("path", &path)?;
            for (l, n, p) in &slaves {
                check_name(n)?;
                check_path("link", l)?;
                check_path("path", p)?;
            }
            Ok(Action::AltInstall(AltInstall {
                link,
                name,
                path,
                priority,
                slaves,
            }))
        }
        "--remove" => {
            let name = it.next().ok_or_else(unknown)?.to_string();
            let path = it.next().ok_or_else(unknown)?.to_string();
            if it.next().is_some() {
                return Err(unknown());
            }
            check_name(&name)?;
            Ok(Action::AltRemove { name, path })
        }
        _ => Err(unknown()),
    }
}

/// update-alternatives' rule for names (no `/`, no blanks), and no
/// control characters, `.` or `..`.
fn check_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(format!(
            "refused: the alternative name `{}` is not a file name (update-alternatives allows no `/`, blanks or control characters)",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// An absolute path that stays under the root.
fn check_path(what: &str, path: &str) -> Result<(), String> {
    match crate::fstree::normalize_abs(path) {
        Ok(_) if !path.chars().any(char::is_control) => Ok(()),
        Ok(_) => Err(format!(
            "refused: the {what} `{}` holds control characters",
            path.escape_debug()
        )),
        Err(e) => Err(format!("refused: the {what} {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_that_leave_their_folder_are_refused() {
        let install =
            |link: &str, name: &str, path: &str| parse(&["--install", link, name, path, "10"]);
        assert!(install("/usr/bin/x", "x", "/usr/bin/x.real").is_ok());
        for (link, name, path) in [
            ("/usr/bin/x", "../../../../tmp/x", "/usr/bin/x.real"),
            ("/usr/bin/x", "a/b", "/usr/bin/x.real"),
            ("/usr/bin/x", "..", "/usr/bin/x.real"),
            ("/usr/bin/x", "a\nb", "/usr/bin/x.real"),
            ("/usr/bin/../../tmp/x", "x", "/usr/bin/x.real"),
            ("usr/bin/x", "x", "/usr/bin/x.real"),
            ("/usr/bin/x", "x", "/usr/../../etc/shadow"),
        ] {
            let why = install(link, name, path).unwrap_err();
            assert!(why.starts_with("refused"), "{link} {name} {path}: {why}");
        }
        let slave = parse(&[
            "--install",
            "/usr/bin/x",
            "x",
            "/usr/bin/x.real",
            "10",
            "--slave",
            "/usr/bin/y",
            "../y",
            "/usr/bin/y.real",
        ]);
        assert!(slave.unwrap_err().starts_with("refused"));
        assert!(parse(&["--remove", "../x", "/p"])
            .unwrap_err()
            .starts_with("refused"));
    }
}
