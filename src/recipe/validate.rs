//! Each table of the recipe but `[image]` checked into its spec: the base,
//! `[apt]`, `[[files]]`, `[[paths]]`, `[accounts]` and `[config]`. Every
//! error names the value's file:line:column and what would fix it.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::load::Ctx;
use super::schema::*;
use super::*;
use crate::fstree::normalize_abs;

fn split_pinned(
    ctx: &Ctx,
    s: &Spanned<String>,
    what: &str,
) -> Result<(String, Digest), RecipeError> {
    let v = s.get_ref();
    match v.rsplit_once('@') {
        Some((head, d)) => {
            let digest = d.parse::<Digest>().map_err(|e| ctx.err(s, format!("{what} `{v}`: {e}")))?;
            Ok((head.to_string(), digest))
        }
        None => Err(ctx.err(s, format!(
            "{what} `{v}` has no digest: pin it as `{v}@sha256:<digest>` (`skopeo inspect --format '{{{{.Digest}}}}'` or `stele pull` prints it), so the build cannot change when the tag moves"
        ))),
    }
}

pub(super) fn parse_base(ctx: &Ctx, b: &BaseTable, dir: &Path) -> Result<BaseSpec, RecipeError> {
    let given = [b.scratch.is_some(), b.image.is_some(), b.layout.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if given > 1 {
        let s = b
            .image
            .as_ref()
            .or(b.layout.as_ref())
            .expect("at least two given");
        return Err(ctx.err(s, "[base] takes exactly one of scratch, image and layout"));
    }
    if let Some(s) = &b.scratch {
        if !s.get_ref() {
            return Err(ctx.err(s, "`scratch = false` says nothing: name a base with `image` or `layout`, or write `scratch = true`"));
        }
    }
    if let Some(i) = &b.image {
        let (reference, digest) = split_pinned(ctx, i, "base image")?;
        return Ok(BaseSpec::Image {
            reference,
            digest,
            loc: ctx.loc(i),
        });
    }
    if let Some(l) = &b.layout {
        let (p, digest) = split_pinned(ctx, l, "base layout")?;
        return Ok(BaseSpec::Layout {
            path: dir.join(&p),
            written: p,
            digest,
            loc: ctx.loc(l),
        });
    }
    Ok(BaseSpec::Scratch)
}

/// The `platforms` of a `{ name, platforms }` package entry: each parsed,
/// one of the recipe's, none twice; sorted so the order written does not
/// matter.
fn package_platforms(
    ctx: &Ctx,
    name: &str,
    list: &Spanned<Vec<Spanned<String>>>,
    recipe_platforms: &[Platform],
) -> Result<Vec<Platform>, RecipeError> {
    if list.get_ref().is_empty() {
        return Err(ctx.err(
            list,
            format!("package `{name}` has an empty platforms list: name at least one of the recipe's platforms, or write the package as a plain string to install it everywhere"),
        ));
    }
    let mut platforms = Vec::new();
    for p in list.get_ref() {
        let parsed: Platform = p
            .get_ref()
            .parse()
            .map_err(|e: crate::oci::platform::PlatformParseError| ctx.err(p, e.to_string()))?;
        if !recipe_platforms.contains(&parsed) {
            let built: Vec<String> = recipe_platforms.iter().map(|p| p.to_string()).collect();
            return Err(ctx.err(
                p,
                format!(
                    "package `{name}` names platform {parsed}, which the recipe does not build ([image] platforms is [{}]); add it there or remove it here",
                    built.join(", ")
                ),
            ));
        }
        if platforms.contains(&parsed) {
            return Err(ctx.err(
                p,
                format!("platform {parsed} is listed twice for package `{name}`"),
            ));
        }
        platforms.push(parsed);
    }
    platforms.sort();
    Ok(platforms)
}

pub(super) fn parse_apt(
    ctx: &Ctx,
    a: &AptTable,
    dir: &Path,
    recipe_platforms: &[Platform],
) -> Result<AptSpec, RecipeError> {
    if a.sources.get_ref().is_empty() {
        return Err(ctx.err(
            &a.sources,
            "[apt] sources is empty: add e.g. { mirror = \"host\", suite = \"bookworm\" }",
        ));
    }
    let mut sources = Vec::new();
    for s in a.sources.get_ref() {
        let m = s.mirror.get_ref();
        let located = |m: &str| {
            m.starts_with("http://")
                || m.starts_with("https://")
                || m.starts_with("file://")
                || (!m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        };
        if let Some(snapshot) = &s.snapshot {
            let v = snapshot.get_ref();
            if !located(v) || v == "host" {
                return Err(ctx.err(snapshot, format!(
                    "snapshot `{v}` is not an http(s):// URL or a NAME (letters, digits, `_`) read from STELE_MIRROR_<NAME>; it names a snapshot archive, where URL/<YYYYMMDDTHHMMSSZ>/ is the archive at that time"
                )));
            }
        }
        let ok = m == "host" || located(m);
        if !ok {
            return Err(ctx.err(&s.mirror, format!(
                "mirror `{m}` is not \"host\", an http(s):// URL, or a NAME (letters, digits, `_`) read from STELE_MIRROR_<NAME>"
            )));
        }
        let suite = s.suite.get_ref();
        if suite.is_empty() || suite.contains(['/', ' ']) && !suite.ends_with('/') {
            return Err(ctx.err(
                &s.suite,
                format!("suite `{suite}` is not a suite name such as bookworm"),
            ));
        }
        // Checked here, not when the mirror is first reached: a build
        // whose lock and packages are all cached never reaches it, and
        // must refuse the recipe all the same.
        if m != "host" && s.keyring.is_none() {
            return Err(ctx.err(&s.mirror, format!(
                "mirror `{m}` has no keyring: add `keyring = \"path/to/keyring.gpg\"` to this source (binary or armored OpenPGP keys); only mirror = \"host\" may leave it out, taking the machine's apt keys (its Signed-By)"
            )));
        }
        sources.push(AptSource {
            mirror: m.clone(),
            suite: suite.clone(),
            components: s.components.clone(),
            keyring: s.keyring.as_ref().map(|k| dir.join(k.get_ref())),
            snapshot: s.snapshot.as_ref().map(|v| v.get_ref().clone()),
            loc: ctx.loc(&s.mirror),
        });
    }
    let mut packages: Vec<PackageRequest> = Vec::new();
    for entry in a.packages.get_ref() {
        let (name, only) = match entry.get_ref() {
            PackageEntry::Name(name) => (name, None),
            PackageEntry::Table(t) => (t.name.get_ref(), Some(&t.platforms)),
        };
        let base = name.split_once('=').map_or(name.as_str(), |(n, _)| n);
        let ok = base.len() >= 2
            && base
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.:".contains(&b));
        if !ok {
            let message = format!("`{name}` is not a Debian package name (lowercase letters, digits, `+`, `-`, `.`; optionally `=VERSION`)");
            return Err(match entry.get_ref() {
                PackageEntry::Table(t) => ctx.err(&t.name, message),
                PackageEntry::Name(_) => ctx.err(entry, message),
            });
        }
        let platforms = only
            .map(|list| package_platforms(ctx, name, list, recipe_platforms))
            .transpose()?;
        let request = PackageRequest {
            name: name.clone(),
            platforms,
            loc: match entry.get_ref() {
                PackageEntry::Table(t) => ctx.loc(&t.name),
                PackageEntry::Name(_) => ctx.loc(entry),
            },
        };
        // The same entry twice is a slip; `x` for amd64 and `x` for arm64
        // in two tables is what per-platform lists are for.
        if let Some(p) = recipe_platforms.iter().find(|p| {
            request.applies_to(p)
                && packages
                    .iter()
                    .any(|q| q.name == request.name && q.applies_to(p))
        }) {
            let message = if recipe_platforms.len() == 1 {
                format!("package `{name}` is listed twice")
            } else {
                format!("package `{name}` is listed twice for {p}")
            };
            return Err(ctx.err(entry, message));
        }
        packages.push(request);
    }
    let layers = match a.layers.as_ref().map(|l| l.get_ref().as_str()) {
        None | Some("single") => AptLayers::Single,
        Some("per-package") => AptLayers::PerPackage,
        Some(other) => {
            return Err(ctx.err(
                a.layers.as_ref().expect("some"),
                format!("layers = \"{other}\" is not known: use \"single\" or \"per-package\""),
            ));
        }
    };
    let mut alternatives = BTreeMap::new();
    for (name, path) in &a.alternatives {
        if name.is_empty() || name.contains(['/', ' ']) {
            return Err(ctx.err(
                path,
                format!("alternatives: `{name}` is not an alternative name such as \"java\""),
            ));
        }
        let p = path.get_ref();
        if !p.starts_with('/')
            || normalize_abs(p).ok().map(|k| format!("/{k}")).as_deref() != Some(p.as_str())
        {
            return Err(ctx.err(path, format!("alternatives: `{p}` for `{name}` is not a normalized absolute path, such as the one `update-alternatives --list {name}` prints")));
        }
        alternatives.insert(name.clone(), (p.clone(), ctx.loc(path)));
    }
    let variant = match a.variant.as_ref().map(|v| v.get_ref().as_str()) {
        None => None,
        Some("essential") => Some(AptVariant::Essential),
        Some("apt") => Some(AptVariant::Apt),
        Some("minbase" | "required") => Some(AptVariant::Minbase),
        Some("important") => Some(AptVariant::Important),
        Some("standard") => Some(AptVariant::Standard),
        Some(other) => {
            return Err(ctx.err(
                a.variant.as_ref().expect("some"),
                format!("variant = \"{other}\" is not known: use \"essential\", \"apt\", \"minbase\", \"important\" or \"standard\""),
            ));
        }
    };
    Ok(AptSpec {
        sources,
        packages,
        layers,
        alternatives,
        variant,
        loc: ctx.loc(&a.sources),
    })
}

/// `[image] layers` over the `[apt]` it groups: a strategy in place of
/// `[apt] layers`, never beside it.
pub(super) fn parse_layers(
    ctx: &Ctx,
    l: &LayersTable,
    apt: Option<&mut AptSpec>,
    apt_layers: Option<&Spanned<String>>,
) -> Result<(), RecipeError> {
    let strategy = l.strategy.get_ref();
    if strategy != "source" {
        return Err(ctx.err(
            &l.strategy,
            format!("[image] layers strategy = \"{strategy}\" is not known: use \"source\" (one layer per Debian source package), or [apt] layers for \"single\" and \"per-package\""),
        ));
    }
    let budget = match &l.budget {
        None => DEFAULT_LAYER_BUDGET,
        Some(b) => match usize::try_from(*b.get_ref()) {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(ctx.err(
                    b,
                    format!(
                        "[image] layers budget = {} is not a layer count: give 1 or more",
                        b.get_ref()
                    ),
                ))
            }
        },
    };
    if let Some(written) = apt_layers {
        return Err(ctx.err(
            written,
            "[apt] layers and [image] layers both say how packages are laid into layers: keep one",
        ));
    }
    let Some(apt) = apt else {
        return Err(ctx.err(
            &l.strategy,
            "[image] layers groups the packages of [apt], and this recipe has no [apt]: remove it",
        ));
    };
    apt.layers = AptLayers::BySource { budget };
    Ok(())
}

fn parse_mode(ctx: &Ctx, m: &Spanned<String>) -> Result<u32, RecipeError> {
    let v = m.get_ref();
    let digits = v.strip_prefix("0o").unwrap_or(v);
    match u32::from_str_radix(digits, 8) {
        Ok(n) if !digits.is_empty() && digits.len() <= 4 && n <= 0o7777 => Ok(n),
        _ => Err(ctx.err(m, format!("mode `{v}` is not an octal mode: write up to four octal digits as a string, e.g. \"0644\" or \"0755\""))),
    }
}

fn parse_owner(ctx: &Ctx, o: &Option<Spanned<String>>) -> Result<(u32, u32), RecipeError> {
    let Some(o) = o else { return Ok((0, 0)) };
    let v = o.get_ref();
    let parsed = v
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)));
    parsed.ok_or_else(|| ctx.err(o, format!("owner `{v}` is not numeric `uid:gid`, e.g. \"65532:65532\" (names are not looked up: the image's /etc/passwd is not read)")))
}

fn parse_dest(ctx: &Ctx, d: &Spanned<String>) -> Result<String, RecipeError> {
    normalize_abs(d.get_ref()).map_err(|e| ctx.err(d, e.to_string()))
}

pub(super) fn parse_file(ctx: &Ctx, f: &FileTable, dir: &Path) -> Result<FileSpec, RecipeError> {
    let src_written = f.src.get_ref().clone();
    if src_written.is_empty() {
        return Err(ctx.err(
            &f.src,
            "src is empty: name a file or directory beside the recipe",
        ));
    }
    let rel = Path::new(&src_written);
    if rel.is_absolute() {
        return Err(ctx.err(&f.src, format!("src `{src_written}` is absolute: sources are relative to the recipe's folder ({}), or to the folder `--context` names, so the recipe builds the same anywhere", dir.display())));
    }
    if rel
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ctx.err(&f.src, format!("src `{src_written}` climbs out of the recipe's folder with `..`: move the file beside the recipe, or build with `--context DIR` naming a folder that holds both, and write src relative to it")));
    }
    let dest = parse_dest(ctx, &f.dest)?;
    let mode = f.mode.as_ref().map(|m| parse_mode(ctx, m)).transpose()?;
    let owner = parse_owner(ctx, &f.owner)?;
    let mut exclude = Vec::new();
    for pattern in &f.exclude {
        let mut check = ignore::gitignore::GitignoreBuilder::new(dir);
        if let Err(e) = check.add_line(None, pattern.get_ref()) {
            return Err(ctx.err(
                pattern,
                format!(
                    "exclude pattern `{}` is not a gitignore pattern: {e}",
                    pattern.get_ref()
                ),
            ));
        }
        exclude.push(pattern.get_ref().clone());
    }
    // Whether src exists, and is a folder when it has `exclude`, depends
    // on the build context: checked by `Recipe::read_files_from`.
    Ok(FileSpec {
        src: dir.join(rel),
        src_written,
        dest,
        mode,
        owner,
        exclude,
        exclude_loc: f.exclude.first().map(|p| ctx.loc(p)),
        loc: ctx.loc(&f.src),
    })
}

pub(super) fn parse_path(ctx: &Ctx, p: &PathTable) -> Result<PathSpec, RecipeError> {
    let key = parse_dest(ctx, &p.path)?;
    let kind_s = p.kind.get_ref().as_str();
    let wrong_extra = |what: &str, s: &Spanned<String>| {
        ctx.err(
            s,
            format!("`{what}` does not apply to kind = \"{kind_s}\": remove it"),
        )
    };
    let kind = match kind_s {
        "dir" | "absent" => {
            if let Some(c) = &p.content {
                return Err(wrong_extra("content", c));
            }
            if let Some(t) = &p.target {
                return Err(wrong_extra("target", t));
            }
            if kind_s == "dir" {
                PathKind::Dir
            } else {
                PathKind::Absent
            }
        }
        "file" => {
            if let Some(t) = &p.target {
                return Err(wrong_extra("target", t));
            }
            PathKind::File(
                p.content
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default(),
            )
        }
        "symlink" => {
            if let Some(c) = &p.content {
                return Err(wrong_extra("content", c));
            }
            match &p.target {
                Some(t) if !t.get_ref().is_empty() && !t.get_ref().contains('\0') => {
                    PathKind::Symlink(t.get_ref().clone())
                }
                Some(t) => return Err(ctx.err(t, "symlink target is empty")),
                None => return Err(ctx.err(&p.kind, "kind = \"symlink\" needs `target = \"...\"`")),
            }
        }
        other => {
            return Err(ctx.err(
                &p.kind,
                format!(
                    "kind `{other}` is not known: use \"dir\", \"file\", \"symlink\" or \"absent\""
                ),
            ));
        }
    };
    let mode = p.mode.as_ref().map(|m| parse_mode(ctx, m)).transpose()?;
    if let (Some(m), PathKind::Symlink(_) | PathKind::Absent) = (&p.mode, &kind) {
        return Err(wrong_extra("mode", m));
    }
    let owner = parse_owner(ctx, &p.owner)?;
    Ok(PathSpec {
        key,
        kind,
        mode,
        owner,
        loc: ctx.loc(&p.path),
    })
}

fn valid_account_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && !n.starts_with('-')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub(super) fn parse_accounts(
    ctx: &Ctx,
    a: &AccountsTable,
) -> Result<(Vec<UserSpec>, Vec<GroupSpec>), RecipeError> {
    let mut users = Vec::new();
    for u in &a.users {
        let name = u.name.get_ref();
        if !valid_account_name(name) {
            return Err(ctx.err(
                &u.name,
                format!(
                    "user name `{name}` is not valid: letters, digits, `.`, `_`, `-`, at most 32"
                ),
            ));
        }
        if users.iter().any(|x: &UserSpec| &x.name == name) {
            return Err(ctx.err(&u.name, format!("user `{name}` is defined twice")));
        }
        if users.iter().any(|x: &UserSpec| x.uid == *u.uid.get_ref()) {
            return Err(ctx.err(
                &u.uid,
                format!("uid {} is used by two users", u.uid.get_ref()),
            ));
        }
        let uid = *u.uid.get_ref();
        if (name == "root") != (uid == 0) {
            return Err(ctx.err(
                &u.name,
                format!("user `{name}` with uid {uid}: uid 0 is root's and root's uid is 0; another pairing would take root's entry out of /etc/passwd, which tools that look up uid 0 or `root` rely on"),
            ));
        }
        let home = match &u.home {
            Some(h) => {
                normalize_abs(h.get_ref()).map_err(|e| ctx.err(h, e.to_string()))?;
                h.get_ref().clone()
            }
            None => format!("/home/{name}"),
        };
        let shell = u.shell.clone().unwrap_or_else(|| "/sbin/nologin".into());
        if shell.contains([':', '\n']) || home.contains([':', '\n']) {
            return Err(ctx.err(&u.name, "home and shell may not contain `:` or newlines"));
        }
        users.push(UserSpec {
            name: name.clone(),
            uid: *u.uid.get_ref(),
            gid: u.gid.unwrap_or(*u.uid.get_ref()),
            home,
            shell,
        });
    }
    let mut groups = Vec::new();
    for g in &a.groups {
        let name = g.name.get_ref();
        if !valid_account_name(name) {
            return Err(ctx.err(
                &g.name,
                format!(
                    "group name `{name}` is not valid: letters, digits, `.`, `_`, `-`, at most 32"
                ),
            ));
        }
        let gid = *g.gid.get_ref();
        if (name == "root") != (gid == 0) {
            return Err(ctx.err(
                &g.name,
                format!("group `{name}` with gid {gid}: gid 0 is root's and root's gid is 0; another pairing would take root's entry out of /etc/group"),
            ));
        }
        if groups.iter().any(|x: &GroupSpec| &x.name == name) {
            return Err(ctx.err(&g.name, format!("group `{name}` is defined twice")));
        }
        if groups.iter().any(|x: &GroupSpec| x.gid == *g.gid.get_ref()) {
            return Err(ctx.err(
                &g.gid,
                format!("gid {} is used by two groups", g.gid.get_ref()),
            ));
        }
        for m in &g.members {
            if !valid_account_name(m) {
                return Err(ctx.err(
                    &g.name,
                    format!("group member `{m}` is not a valid user name"),
                ));
            }
        }
        groups.push(GroupSpec {
            name: name.clone(),
            gid: *g.gid.get_ref(),
            members: g.members.clone(),
        });
    }
    Ok((users, groups))
}

pub(super) fn parse_config(ctx: &Ctx, c: &ConfigTable) -> Result<ConfigSpec, RecipeError> {
    for (k, v) in &c.env {
        if k.is_empty() || k.contains('=') {
            return Err(ctx.err(
                v,
                format!("[config] env key `{k}` is not a variable name (non-empty, no `=`)"),
            ));
        }
    }
    let workdir = match &c.workdir {
        Some(w) if !w.get_ref().starts_with('/') => {
            return Err(ctx.err(
                w,
                format!(
                    "workdir `{}` must be absolute, e.g. \"/{}\"",
                    w.get_ref(),
                    w.get_ref()
                ),
            ));
        }
        Some(w) => Some(w.get_ref().clone()),
        None => None,
    };
    let mut exposed_ports = Vec::new();
    for p in &c.exposed_ports {
        let v = p.get_ref();
        let (port, proto) = v.split_once('/').unwrap_or((v, "tcp"));
        let ok =
            port.parse::<u16>().is_ok_and(|n| n > 0) && ["tcp", "udp", "sctp"].contains(&proto);
        if !ok {
            return Err(ctx.err(p, format!("exposed port `{v}` is not PORT/PROTOCOL, e.g. \"8080/tcp\" (protocol tcp, udp or sctp)")));
        }
        let norm = format!("{port}/{proto}");
        if !exposed_ports.contains(&norm) {
            exposed_ports.push(norm);
        }
    }
    exposed_ports.sort();
    let mut volumes = Vec::new();
    for v in &c.volumes {
        if !v.get_ref().starts_with('/') {
            return Err(ctx.err(
                v,
                format!("volume `{}` must be an absolute path", v.get_ref()),
            ));
        }
        volumes.push(v.get_ref().clone());
    }
    volumes.sort();
    volumes.dedup();
    if let Some(u) = &c.user {
        if u.get_ref().is_empty() || u.get_ref().contains(char::is_whitespace) {
            return Err(ctx.err(
                u,
                "user must be `uid`, `uid:gid`, `name` or `name:group`, without spaces",
            ));
        }
    }
    if let Some(s) = &c.stop_signal {
        let v = s.get_ref();
        let ok = v.parse::<u32>().is_ok()
            || (v.starts_with("SIG")
                && v.len() > 3
                && v[3..].bytes().all(|b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-'
                }));
        if !ok {
            return Err(ctx.err(
                s,
                format!("stop_signal `{v}` is not a signal: write e.g. \"SIGTERM\" or \"15\""),
            ));
        }
    }
    Ok(ConfigSpec {
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        env: c
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect(),
        workdir,
        user: c.user.as_ref().map(|u| u.get_ref().clone()),
        user_loc: c.user.as_ref().map(|u| ctx.loc(u)),
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect(),
        exposed_ports,
        volumes,
        stop_signal: c.stop_signal.as_ref().map(|s| s.get_ref().clone()),
    })
}
