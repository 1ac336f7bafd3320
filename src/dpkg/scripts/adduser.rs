//! The account commands of maintainer scripts: adduser and addgroup
//! (Debian's), useradd and groupadd (shadow's).

use super::{Action, AddUser};

/// `adduser --system`, `addgroup --system`, `useradd -r`, `groupadd -r`
/// and `adduser USER GROUP`, with literal names.
pub(super) fn parse(args: &[&str]) -> Option<Action> {
    // Names are checked as adduser checks them where the account is
    // made (`install::accounts::check`), so a refusal names the rule.
    let valid = |n: &str| !n.is_empty() && !n.starts_with('-');
    let tool = args[0];
    let mut system = false;
    let mut user = AddUser {
        create_home: true,
        ..AddUser::default()
    };
    let mut group_only = matches!(tool, "addgroup" | "groupadd");
    let mut names = Vec::new();
    let mut it = args[1..].iter().copied();
    while let Some(a) = it.next() {
        match a {
            "--system" | "-r" => system = true,
            "--group" if tool == "adduser" => user.own_group = true,
            "--group" if tool == "addgroup" => group_only = true,
            "-U" | "--user-group" => user.own_group = true,
            "--force-badname" | "--allow-bad-names" | "--allow-badname" => user.bad_names = true,
            "--quiet"
            | "-q"
            | "--disabled-password"
            | "--disabled-login"
            | "--no-log-init"
            | "-l"
            | "--debug" => {}
            "--no-create-home" | "-M" => user.create_home = false,
            "--create-home" | "-m" => user.create_home = true,
            "--home" | "-d" => user.home = Some(it.next()?.to_string()),
            "--shell" | "-s" => user.shell = Some(it.next()?.to_string()),
            "--gecos" | "--comment" | "-c" => user.gecos = it.next()?.to_string(),
            "--uid" | "-u" => user.uid = Some(it.next()?.parse().ok()?),
            "--gid" | "-g" => {
                let g = it.next()?;
                match g.parse() {
                    Ok(n) => user.gid = Some(n),
                    Err(_) => user.group = Some(g.to_string()),
                }
            }
            "--ingroup" => user.group = Some(it.next()?.to_string()),
            n if !n.starts_with('-') => names.push(n),
            _ => return None,
        }
    }
    match (tool, names.as_slice()) {
        ("adduser", [u, g]) if !system && valid(u) && valid(g) => Some(Action::AddMember {
            user: u.to_string(),
            group: g.to_string(),
        }),
        (_, [n]) if (system || user.uid.or(user.gid).is_some()) && valid(n) && group_only => {
            Some(Action::AddGroup {
                name: n.to_string(),
                gid: user.uid.or(user.gid),
            })
        }
        (_, [n]) if system && valid(n) => {
            user.name = n.to_string();
            if tool == "useradd" {
                // useradd names /home/NAME but makes it only when told (-m).
                user.create_home = args.contains(&"-m") || args.contains(&"--create-home");
                if user.home.is_none() {
                    user.home = Some(format!("/home/{n}"));
                }
            }
            // (A comment the account check refuses is reported as given.)
            let plain = !user.gecos.contains(|c: char| c == ':' || c.is_control());
            if tool == "adduser" && !user.gecos.is_empty() && plain {
                // adduser sets the comment with `chfn -f NAME [-r ROOM …]`,
                // which writes the four GECOS fields.
                let fields = user.gecos.split(',').count();
                for _ in fields..4 {
                    user.gecos.push(',');
                }
            }
            Some(Action::AddUser(user))
        }
        _ => None,
    }
}
