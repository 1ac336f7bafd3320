//! `stele cache`: the local cache folder, and a registry cache.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use super::report::{human_bytes, print_json, Reporter};
use super::settings::{
    cache_dir, registry_settings, transport, unix_now, CacheArgs, JobsArgs, RegistryArgs,
};
use crate::cache::prune::{self, PruneOptions};

#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// Remove the least recently used entries of the local cache, after
    /// waiting for running commands that use it; or, with --remote, the
    /// oldest entries of a registry cache.
    #[command(
        after_help = "Examples:\n  stele cache prune --max-size 10GB\n  stele cache prune --older-than 7d --dry-run\n  stele cache prune --remote registry.example/team/debs --older-than 52w --keep app.lock"
    )]
    Prune(PruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Keep the cache at most SIZE (500MB, 10GiB, 1048576 bytes),
    /// removing the least recently used entries first.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Remove the entries no command used for DURATION (45s, 30m, 12h,
    /// 7d, 2w).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail at once when a command is using the cache, instead of
    /// waiting for it to finish.
    #[arg(long)]
    pub no_wait: bool,
    /// Print what was removed as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Prune this registry cache (HOST[:PORT]/REPO, what --cache-to fills)
    /// instead of the local folder, through the registry's API: entries
    /// pushed longer ago than --older-than, then the oldest until the rest
    /// is at most --max-size. The registry must allow deletes; its garbage
    /// collection frees the storage.
    #[arg(long, value_name = "REF", conflicts_with = "no_wait")]
    pub remote: Option<String>,
    /// With --remote: never remove the .debs this lockfile names
    /// (repeatable): the archive a rebuild of it needs.
    #[arg(long, value_name = "LOCKFILE", requires = "remote")]
    pub keep: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub(crate) fn run(cmd: CacheCommand, r: &Reporter) -> Result<ExitCode> {
    match cmd {
        CacheCommand::Prune(args) => cmd_prune(args, r),
    }
}

fn cmd_prune(args: PruneArgs, r: &Reporter) -> Result<ExitCode> {
    if args.max_size.is_none() && args.older_than.is_none() {
        bail!("say what to remove: --max-size SIZE, --older-than DURATION, or both (--max-size 0 empties the cache)");
    }
    if let Some(remote) = &args.remote {
        return prune_remote(remote, &args, r);
    }
    let dir = cache_dir(&args.cache)?;
    if !dir.join("blobs").is_dir() {
        bail!(
            "{} is not a stele cache (it has no blobs folder); check --cache-dir",
            dir.display()
        );
    }
    let cannot_lock = || format!("cannot lock the cache {}", dir.display());
    let _lock = match crate::cache::lock(&dir, true, false).with_context(cannot_lock)? {
        Some(l) => l,
        None if args.no_wait => bail!(
            "a running stele command is using the cache {}; prune when it is done, or without --no-wait to wait for it",
            dir.display()
        ),
        None => {
            r.info(format_args!(
                "waiting for the stele commands using the cache {} to finish",
                dir.display()
            ));
            crate::cache::lock(&dir, true, true)
                .with_context(cannot_lock)?
                .with_context(cannot_lock)?
        }
    };
    let options = PruneOptions {
        max_size: args.max_size,
        older_than: args.older_than,
        now: SystemTime::now(),
        dry_run: args.dry_run,
    };
    let report = prune::prune(&dir, &options)?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    r.info(format_args!(
        "{verb} {} blob(s), {}, and {} record(s); {} blob(s), {}, {}",
        report.blobs_removed,
        human_bytes(report.bytes_removed),
        report.records_removed,
        report.blobs_kept,
        human_bytes(report.bytes_kept),
        if args.dry_run { "would stay" } else { "stay" }
    ));
    if report.links_skipped > 0 {
        r.info(format_args!(
            "left alone {} link(s) inside the cache: stele never follows them",
            report.links_skipped
        ));
    }
    if args.json {
        print_json(&serde_json::json!({
            "cache": dir.display().to_string(),
            "dry_run": args.dry_run,
            "removed": {
                "blobs": report.blobs_removed,
                "bytes": report.bytes_removed,
                "records": report.records_removed,
            },
            "kept": {
                "blobs": report.blobs_kept,
                "bytes": report.bytes_kept,
            },
            "links_skipped": report.links_skipped,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `stele cache prune --remote REF`.
fn prune_remote(remote: &str, args: &PruneArgs, r: &Reporter) -> Result<ExitCode> {
    use crate::cache::remote::prune::{prune, RemotePruneOptions};
    let reference = crate::registry::Reference::parse(remote)?;
    if reference.tag.is_some() || reference.digest.is_some() {
        bail!(
            "--remote {remote} names a tag or digest; name the cache repository only, e.g. {}/{}",
            reference.registry,
            reference.repository
        );
    }
    let mut keep = std::collections::BTreeSet::new();
    for path in &args.keep {
        let lock = crate::lock::Lock::load(path)?;
        keep.extend(
            lock.platforms
                .values()
                .flat_map(|p| p.packages.iter().map(|p| p.sha256.clone())),
        );
    }
    let transport = transport(&args.registry.tls)?;
    let registry = registry_settings(
        &args.registry,
        &JobsArgs::default(),
        &transport,
        crate::registry::Progress::default(),
    )?;
    let options = RemotePruneOptions {
        older_than: args.older_than,
        max_size: args.max_size,
        keep,
        now: unix_now(),
        dry_run: args.dry_run,
    };
    let report = prune(&reference, &registry, &options)?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for tag in &report.removed {
        r.detail(format_args!("  {verb}: {tag}"));
    }
    r.info(format_args!(
        "{reference}: {verb} {} entries, {}; {} entries, {}, {}",
        report.entries_removed,
        human_bytes(report.bytes_removed),
        report.entries_kept,
        human_bytes(report.bytes_kept),
        if args.dry_run { "would stay" } else { "stay" }
    ));
    if args.json {
        let mut doc = serde_json::to_value(&report)?;
        doc["remote"] = serde_json::Value::from(reference.to_string());
        doc["dry_run"] = serde_json::Value::from(args.dry_run);
        print_json(&doc)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `10GB`, `500MiB`, `1.5G`, `4096`: decimal units (kB, MB, GB, TB) are
/// powers of 1000, binary ones (KiB, MiB, GiB, TiB) of 1024; a bare
/// number is bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(format!(
            "`{text}` is not a size; write it like 500MB or 10GiB"
        ));
    }
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}`; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write it like 500MB or 10GiB"))?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{text}` is not a size stele can count"));
    }
    Ok(bytes.round() as u64)
}

/// `45s`, `30m`, `12h`, `7d`, `2w`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not a duration; write it like 45s, 30m, 12h, 7d or 2w");
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1500));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("GB").is_err());
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("7y").is_err());
    }
}
