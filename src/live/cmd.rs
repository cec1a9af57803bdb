//! inspect, diff and apply: the commands that talk to live servers.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::conn::{self, Target};
use super::{
    pg_alter, pg_auto_conf, pg_drift, pg_reload, pg_same, pg_state, redis_config_set, redis_drift,
    redis_rewrite, redis_state, Drift, PgPrevious, PgSnapshot, PgState, RedisPrevious,
    RedisSnapshot, RedisState, Snapshot,
};
use crate::budget::{self, Assumptions, Budget, HostReserve};
use crate::check;
use crate::cli::{ApplyArgs, DiffArgs, InspectArgs};
use crate::error::{InputError, Refusal, EXIT_NO};
use crate::facts::detect::Detector;
use crate::facts::Facts;
use crate::settings::HostSettings;
use crate::units::ByteSize;
use crate::validate::{Finding, Severity};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// At most one PostgreSQL and one Redis, from the arguments or, when none
/// are given, the environment.
fn targets(args: &[String]) -> Result<(Option<Target>, Option<Target>)> {
    let list = if args.is_empty() {
        conn::env_targets()?
    } else {
        args.iter()
            .map(|a| conn::parse_target(a))
            .collect::<Result<Vec<_>>>()?
    };
    if list.is_empty() {
        return Err(InputError::plain(
            "no server to talk to",
            "give postgres://... and/or redis://... URLs, or set PGHOST/PGUSER/... and REDIS_URL",
        )
        .into());
    }
    let (mut pg, mut redis) = (None, None);
    for t in list {
        let slot = match t {
            Target::Postgres { .. } => &mut pg,
            Target::Redis { .. } => &mut redis,
        };
        if let Some(prev) = slot.as_ref() {
            return Err(InputError::plain(
                format!(
                    "two servers of one kind: {} and {}",
                    Target::shown(prev),
                    t.shown()
                ),
                "inspect one host at a time",
            )
            .into());
        }
        *slot = Some(t);
    }
    Ok((pg, redis))
}

struct Live {
    pg: Option<(tokio_postgres::Client, PgState)>,
    redis: Option<(redis::aio::MultiplexedConnection, RedisState)>,
}

async fn connect(pg: &Option<Target>, redis: &Option<Target>, t: Duration) -> Result<Live> {
    let pg = match pg {
        Some(Target::Postgres { config, tls, shown }) => {
            let c = conn::connect_postgres(config, *tls, shown, t).await?;
            let s = pg_state(&c, shown, t).await?;
            Some((c, s))
        }
        _ => None,
    };
    let redis = match redis {
        Some(Target::Redis { url, shown }) => {
            let mut c = conn::connect_redis(url, shown, t).await?;
            let s = redis_state(&mut c, shown, t).await?;
            Some((c, s))
        }
        _ => None,
    };
    Ok(Live { pg, redis })
}

/// RAM of the servers' host: the flag, the facts file, a manifest, or this
/// machine when every server runs on it.
fn ram_for(
    ram: Option<ByteSize>,
    facts: Option<&Path>,
    manifest: Option<&crate::render::output::Manifest>,
    all_local: bool,
) -> Result<(ByteSize, String, Vec<HostReserve>, Assumptions)> {
    let (ram, src) = if let Some(r) = ram {
        (r, "--ram".to_string())
    } else if let Some(f) = facts {
        (
            Facts::load(f)?.memory.effective(),
            format!("facts file {}", f.display()),
        )
    } else if let Some(m) = manifest {
        return Ok((
            m.host.ram,
            format!("manifest: {}", m.host.ram_source),
            m.reserves.clone(),
            m.assumptions.clone(),
        ));
    } else if all_local {
        let f = Detector::host().detect(None);
        (
            f.memory.effective(),
            "this machine (the servers run on it)".to_string(),
        )
    } else {
        return Err(InputError::plain(
            "the servers are not on this machine, so its RAM says nothing about theirs",
            "pass --ram SIZE or --facts FILE for the servers' host",
        )
        .into());
    };
    Ok((
        ram,
        src,
        check::default_reserves(ram),
        Assumptions::default(),
    ))
}

fn health(live: &Live) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some((_, pg)) = &live.pg {
        if let Some(r) = pg.cache_hit_ratio.filter(|r| *r < 0.99) {
            out.push(Finding::warning(
                "postgres",
                None,
                format!("cache hit ratio is {:.1}%, under 99%", r * 100.0),
                Some("the working set does not fit shared_buffers + page cache, or the server just started".into()),
            ));
        }
        let clients: i64 = pg.connections.values().sum();
        if pg.max_connections > 0 && clients * 10 >= pg.max_connections * 8 {
            out.push(Finding::warning(
                "postgres",
                None,
                format!(
                    "{clients} of max_connections {} are in use",
                    pg.max_connections
                ),
                Some("near the limit: put PgBouncer in front, or find idle sessions".into()),
            ));
        }
        for s in pg.settings.iter().filter(|s| s.pending_restart) {
            out.push(Finding::warning(
                "postgres",
                Some(&s.location()),
                format!(
                    "`{}` waits for a restart (running value: {})",
                    s.name,
                    s.display()
                ),
                Some("restart PostgreSQL to apply it".into()),
            ));
        }
    }
    if let Some((_, r)) = &live.redis {
        if r.info_num("evicted_keys").unwrap_or(0.0) > 0.0 {
            out.push(Finding::warning(
                "redis",
                None,
                format!("{} keys evicted", r.info["evicted_keys"]),
                Some("expected for a cache; for queues and sessions raise maxmemory or use volatile-* policies".into()),
            ));
        }
        let used = r.info_num("used_memory").unwrap_or(0.0);
        if used > 64.0 * 1024.0 * 1024.0
            && r.info_num("mem_fragmentation_ratio").unwrap_or(1.0) > 1.5
        {
            out.push(Finding::warning(
                "redis",
                None,
                format!(
                    "memory fragmentation ratio {}",
                    r.info["mem_fragmentation_ratio"]
                ),
                Some("RSS is much larger than the data; a restart returns it".into()),
            ));
        }
        for k in ["rdb_last_bgsave_status", "aof_last_write_status"] {
            if r.info.get(k).is_some_and(|v| v != "ok") {
                out.push(Finding::error(
                    "redis",
                    None,
                    format!("{k} is {}: the last save failed", r.info[k]),
                    Some("check the Redis log, disk space and vm.overcommit_memory".into()),
                ));
            }
        }
        let hits = r.info_num("keyspace_hits").unwrap_or(0.0);
        let misses = r.info_num("keyspace_misses").unwrap_or(0.0);
        if hits + misses > 1000.0 && hits / (hits + misses) < 0.9 {
            out.push(Finding::warning(
                "redis",
                None,
                format!("hit rate {:.1}%", 100.0 * hits / (hits + misses)),
                Some("many lookups miss: check TTLs and eviction".into()),
            ));
        }
    }
    out
}

fn live_settings(live: &Live) -> HostSettings {
    HostSettings {
        pg_version: live.pg.as_ref().map_or(16, |(_, s)| s.major.clamp(13, 18)),
        postgres: live.pg.as_ref().map(|(_, s)| s.service_settings()),
        redis: live.redis.as_ref().map(|(_, s)| s.service_settings()),
        ..Default::default()
    }
}

fn verdict(budget: &Budget, findings: &[Finding]) -> (String, bool) {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let ok = errors == 0 && budget.total_fits();
    let line = if !budget.total_fits() {
        format!(
            "does not fit: worst case {} is {} more than {}",
            budget.worst,
            budget.worst - budget.ram,
            budget.ram
        )
    } else if errors > 0 {
        format!(
            "{errors} error(s); the worst case {} would fit {}",
            budget.worst, budget.ram
        )
    } else {
        format!("fits: worst case {} of {}", budget.worst, budget.ram)
    };
    (line, ok)
}

pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = targets(&args.targets)?;
    let all_local = pg_t.iter().chain(&redis_t).all(|x| x.is_local());
    let (ram, ram_src, reserves, assumptions) =
        ram_for(args.ram, args.facts.as_deref(), None, all_local)?;
    let rt = runtime()?;
    let live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    let settings = live_settings(&live);
    let budget = budget::compute(&settings, ram, &ram_src, &reserves, &assumptions);
    let mut findings = budget.problems.clone();
    findings.extend(health(&live));
    let (line, ok) = verdict(&budget, &findings);
    let mut out = String::new();
    if args.json {
        let pg = live.pg.as_ref().map(|(_, s)| {
            json!({
                "target": s.target, "version": s.version, "user": s.user, "superuser": s.superuser, "tls": s.tls,
                "connections": s.connections, "max_connections": s.max_connections,
                "cache_hit_ratio": s.cache_hit_ratio,
                "settings": s.settings.iter().filter(|x| x.source != "default" && x.source != "override").map(|x| json!({
                    "name": x.name, "value": x.display(), "source": x.source,
                    "at": x.location().to_string(), "pending_restart": x.pending_restart,
                })).collect::<Vec<_>>(),
            })
        });
        let redis = live.redis.as_ref().map(|(_, r)| {
            let g = |k: &str| r.info.get(k).cloned();
            json!({
                "target": r.target, "version": g("redis_version"),
                "maxmemory": r.config.get("maxmemory"), "maxmemory_policy": r.config.get("maxmemory-policy"),
                "used_memory": g("used_memory"), "used_memory_peak": g("used_memory_peak"),
                "mem_fragmentation_ratio": g("mem_fragmentation_ratio"),
                "keyspace_hits": g("keyspace_hits"), "keyspace_misses": g("keyspace_misses"),
                "evicted_keys": g("evicted_keys"), "connected_clients": g("connected_clients"),
                "rdb_last_bgsave_status": g("rdb_last_bgsave_status"), "aof_enabled": g("aof_enabled"),
                "rdb_changes_since_last_save": g("rdb_changes_since_last_save"),
            })
        });
        let doc = json!({
            "schema": 1, "verdict": if ok { "fits" } else if budget.total_fits() { "invalid" } else { "does-not-fit" },
            "postgres": pg, "redis": redis, "findings": findings,
            "ram": budget.ram, "ram_source": budget.ram_source, "worst": budget.worst, "typical": budget.typical,
            "terms": budget.terms,
        });
        out = serde_json::to_string_pretty(&doc)? + "\n";
    } else {
        if let Some((_, s)) = &live.pg {
            let _ = writeln!(
                out,
                "PostgreSQL {} at {} (user {}{}, {})",
                s.version,
                s.target,
                s.user,
                if s.superuser { ", superuser" } else { "" },
                if s.tls { "over TLS" } else { "not encrypted" }
            );
            let conns: Vec<String> = s
                .connections
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                out,
                "  connections: {} (max_connections {})",
                conns.join(", "),
                s.max_connections
            );
            if let Some(r) = s.cache_hit_ratio {
                let _ = writeln!(out, "  cache hit ratio: {:.2}%", r * 100.0);
            }
            let _ = writeln!(out, "  settings not at their default:");
            for x in s
                .settings
                .iter()
                .filter(|x| x.source != "default" && x.source != "override")
            {
                let _ = writeln!(
                    out,
                    "    {} = {}  ({}, {}){}",
                    x.name,
                    x.display(),
                    x.source,
                    x.location(),
                    if x.pending_restart {
                        "  [pending restart]"
                    } else {
                        ""
                    }
                );
            }
        }
        if let Some((_, r)) = &live.redis {
            let g = |k: &str| r.info.get(k).map_or("?", String::as_str);
            let _ = writeln!(out, "Redis {} at {}", g("redis_version"), r.target);
            let _ = writeln!(
                out,
                "  maxmemory {} ({}), used {}, peak {}, fragmentation {}",
                r.config.get("maxmemory").map_or("?", String::as_str),
                r.config.get("maxmemory-policy").map_or("?", String::as_str),
                g("used_memory_human"),
                g("used_memory_peak_human"),
                g("mem_fragmentation_ratio")
            );
            let _ = writeln!(
                out,
                "  hits {}, misses {}, evicted keys {}, clients {}",
                g("keyspace_hits"),
                g("keyspace_misses"),
                g("evicted_keys"),
                g("connected_clients")
            );
            let _ = writeln!(
                out,
                "  persistence: rdb last save {} ({} changes since), aof {}",
                g("rdb_last_bgsave_status"),
                g("rdb_changes_since_last_save"),
                if g("aof_enabled") == "1" { "on" } else { "off" }
            );
        }
        out.push('\n');
        for f in &findings {
            let _ = writeln!(out, "{f}");
        }
        let mut b = budget.clone();
        b.problems.clear();
        out.push_str(&b.table());
        let _ = writeln!(out, "\n{line}");
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

fn drifts(live: &Live, files: &HostSettings) -> Vec<Drift> {
    let mut out = Vec::new();
    if let (Some(f), Some((_, s))) = (&files.postgres, &live.pg) {
        out.extend(pg_drift(f, s));
    }
    if let (Some(f), Some((_, s))) = (&files.redis, &live.redis) {
        out.extend(redis_drift(f, s));
    }
    out
}

fn load_dir(dir: &Path, pg_version: u32) -> Result<(HostSettings, check::Found)> {
    let found = check::discover(&[dir.to_path_buf()])?;
    let settings = check::load_found(&found, pg_version)?;
    Ok((settings, found))
}

pub fn diff(args: DiffArgs) -> Result<ExitCode> {
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = targets(&args.targets)?;
    let rt = runtime()?;
    let live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    let version = live.pg.as_ref().map_or(16, |(_, s)| s.major.clamp(13, 18));
    let (files, _) = load_dir(&args.dir, version)?;
    if files.postgres.is_some() && live.pg.is_none() {
        eprintln!("note: no PostgreSQL server given: postgresql.conf is not compared");
    }
    if files.redis.is_some() && live.redis.is_none() {
        eprintln!("note: no Redis server given: redis.conf is not compared");
    }
    let d = drifts(&live, &files);
    let differ: Vec<&Drift> = d.iter().filter(|x| !x.same).collect();
    let mut out = String::new();
    if args.json {
        out = serde_json::to_string_pretty(
            &json!({"schema": 1, "same": d.len() - differ.len(), "settings": d}),
        )? + "\n";
    } else {
        for x in &differ {
            let _ = writeln!(
                out,
                "{:<9} {:<36} file {} ({})  live {}",
                x.service,
                x.name,
                x.file_value,
                x.at,
                x.live.as_deref().unwrap_or("(unknown to the server)")
            );
        }
        let _ = writeln!(
            out,
            "{} setting(s) differ, {} the same",
            differ.len(),
            d.len() - differ.len()
        );
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(if differ.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

/// Where a server listens and keeps its files: apply never moves those
/// (clients and the service manager would lose it); diff still shows them.
const PG_NEVER: &[&str] = &[
    "port",
    "listen_addresses",
    "unix_socket_directories",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
];
const REDIS_NEVER: &[&str] = &[
    "port",
    "bind",
    "dir",
    "unixsocket",
    "tls-port",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "logfile",
    "pidfile",
    "daemonize",
    "supervised",
];

/// `reload` or `restart`, from pg_settings.context.
fn pg_needs(context: &str) -> &'static str {
    match context {
        "postmaster" => "restart",
        "internal" => "initdb",
        _ => "reload",
    }
}

fn write_snapshot(dir: &Path, snap: &Snapshot) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create snapshot directory `{}`", dir.display()))?;
    let mut path = dir.join(format!("dbtune-snapshot-{}.json", snap.created_unix));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("dbtune-snapshot-{}-{n}.json", snap.created_unix));
        n += 1;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in `{}`", dir.display()))?;
    tmp.write_all((serde_json::to_string_pretty(snap)? + "\n").as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(path)
}

pub fn apply(args: ApplyArgs) -> Result<ExitCode> {
    if let Some(snap) = &args.rollback {
        return rollback(&args, snap);
    }
    let (dir, urls) = args
        .args
        .split_first()
        .expect("clap requires DIR without --rollback");
    let dir = std::path::PathBuf::from(dir);
    if dir.to_string_lossy().contains("://") {
        return Err(InputError::plain(
            format!(
                "`{}` is a server, but apply needs the directory to apply first",
                conn::redact(&dir.to_string_lossy())
            ),
            "dbtune apply DIR [URL...]",
        )
        .into());
    }
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = targets(urls)?;
    let all_local = pg_t.iter().chain(&redis_t).all(|x| x.is_local());
    let rt = runtime()?;
    let mut live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    let version = live.pg.as_ref().map_or(16, |(_, s)| s.major.clamp(13, 18));
    let (files, found) = load_dir(&dir, version)?;
    let (ram, ram_src, reserves, assumptions) = ram_for(
        args.ram,
        args.facts.as_deref(),
        found.manifest.as_ref(),
        all_local,
    )?;

    // What would change, and what cannot be changed from here.
    let mut pg_changes: Vec<(String, String, String, &'static str)> = Vec::new(); // name, from, to, needs
    let mut redis_changes: Vec<(String, String, String)> = Vec::new();
    let mut notes = Vec::new();
    for d in drifts(&live, &files).into_iter().filter(|d| !d.same) {
        let never = if d.service == "postgres" {
            PG_NEVER
        } else {
            REDIS_NEVER
        };
        if never.contains(&d.name.as_str()) {
            notes.push(format!(
                "{} {}: {} -> {} not applied: it moves where clients or the service manager find the server; change it by hand",
                d.service,
                d.name,
                d.live.as_deref().unwrap_or("?"),
                d.file_value
            ));
            continue;
        }
        match d.service {
            "postgres" => {
                let s = live.pg.as_ref().and_then(|(_, s)| s.get(&d.name));
                match s {
                    None => notes.push(format!("postgres {}: unknown to this server, skipped", d.name)),
                    Some(s) if s.source == "command line" || s.source == "override" => notes.push(format!(
                        "postgres {}: set on the server's command line ({}), which ALTER SYSTEM cannot override",
                        d.name,
                        s.display()
                    )),
                    Some(s) if s.context == "internal" => {
                        notes.push(format!("postgres {}: fixed at initdb, skipped", d.name))
                    }
                    Some(s) => pg_changes.push((d.name.clone(), s.display(), d.file_value.clone(), pg_needs(&s.context))),
                }
            }
            _ => redis_changes.push((
                d.name.clone(),
                d.live.unwrap_or_default(),
                d.file_value.clone(),
            )),
        }
    }

    // The set after the change must fit, like any other.
    let mut target = live_settings(&live);
    if let (Some(t), Some(f)) = (target.postgres.as_mut(), files.postgres.as_ref()) {
        for (name, _, _, _) in &pg_changes {
            if let Some(e) = f.get(name) {
                t.entries.insert(name.clone(), vec![e.clone()]);
            }
        }
    }
    if let (Some(t), Some(f)) = (target.redis.as_mut(), files.redis.as_ref()) {
        for (name, _, _) in &redis_changes {
            t.entries.insert(name.clone(), f.all(name).to_vec());
        }
    }
    let budget = budget::compute(&target, ram, &ram_src, &reserves, &assumptions);
    if !budget.fits() {
        let mut msg = String::from(
            "the servers would not fit their memory after this change; nothing was changed\n",
        );
        msg.push_str(&budget.table());
        return Err(Refusal(msg).into());
    }

    let mut out = std::io::stdout().lock();
    for n in &notes {
        writeln!(out, "note: {n}")?;
    }
    for (name, from, to, needs) in &pg_changes {
        writeln!(
            out,
            "postgres  {name}: {from} -> {to}  (ALTER SYSTEM, needs a {needs})"
        )?;
    }
    for (name, from, to) in &redis_changes {
        writeln!(out, "redis     {name}: {from} -> {to}  (CONFIG SET)")?;
    }
    let total = pg_changes.len() + redis_changes.len();
    if total == 0 {
        writeln!(
            out,
            "nothing to change: the servers run what {} says",
            dir.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        writeln!(
            out,
            "dry run: {total} change(s), worst case after them {} of {}; run again with --yes to apply them \
             (a snapshot of the current values is written first)",
            budget.worst, budget.ram
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    drop(out);

    // Privileges before anything is written.
    if let Some((_, s)) = &live.pg {
        if !pg_changes.is_empty() && !s.superuser {
            return Err(InputError::plain(
                format!("PostgreSQL user `{}` is not a superuser: nothing was changed", s.user),
                "apply needs a superuser: ALTER SYSTEM, and reading postgresql.auto.conf for the rollback snapshot",
            )
            .into());
        }
    }

    let names: Vec<String> = pg_changes.iter().map(|c| c.0.clone()).collect();
    let auto = match &live.pg {
        Some((c, _)) if !names.is_empty() => rt.block_on(pg_auto_conf(c, &names, t))?,
        _ => Default::default(),
    };
    let snapshot = Snapshot {
        dbtune_version: env!("CARGO_PKG_VERSION").into(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        postgres: live
            .pg
            .as_ref()
            .filter(|_| !pg_changes.is_empty())
            .map(|(_, s)| PgSnapshot {
                target: s.target.clone(),
                changes: pg_changes
                    .iter()
                    .map(|(n, from, _, _)| PgPrevious {
                        name: n.clone(),
                        previous_setting: from.clone(),
                        previous_auto_conf: auto.get(n).cloned(),
                    })
                    .collect(),
            }),
        redis: live
            .redis
            .as_ref()
            .filter(|_| !redis_changes.is_empty())
            .map(|(_, r)| RedisSnapshot {
                target: r.target.clone(),
                rewrite: r.info.get("config_file").is_some_and(|f| !f.is_empty()),
                changes: redis_changes
                    .iter()
                    .map(|(n, from, _)| RedisPrevious {
                        name: n.clone(),
                        previous: from.clone(),
                    })
                    .collect(),
            }),
    };
    let snap_path = write_snapshot(&args.snapshot_dir, &snapshot)?;
    eprintln!("snapshot of the previous values: {}", snap_path.display());
    let undo = format!(
        "undo with: dbtune apply --rollback {} --yes [URL...]",
        snap_path.display()
    );

    let mut applied: Vec<String> = Vec::new();
    let fail = |applied: &[String], what: String| -> anyhow::Error {
        InputError::plain(
            format!(
                "{what}\napplied before the failure: {}",
                if applied.is_empty() {
                    "nothing".to_string()
                } else {
                    applied.join(", ")
                }
            ),
            undo.clone(),
        )
        .into()
    };
    if let Some((c, _)) = &live.pg {
        for (name, _, to, _) in &pg_changes {
            if let Err(e) = rt.block_on(pg_alter(c, name, Some(to), t)) {
                return Err(fail(&applied, format!("{e:#}")));
            }
            applied.push(format!("postgres {name}"));
        }
        if !pg_changes.is_empty() {
            rt.block_on(pg_reload(c, t))
                .map_err(|e| fail(&applied, format!("{e:#}")))?;
        }
    }
    let mut redis_restart = Vec::new();
    if let Some((c, r)) = live.redis.as_mut() {
        for (name, _, to) in &redis_changes {
            match rt.block_on(redis_config_set(c, name, to, t)) {
                Ok(()) => applied.push(format!("redis {name}")),
                Err(e) if e.contains("immutable") => redis_restart.push(name.clone()),
                Err(e) => {
                    return Err(fail(
                        &applied,
                        format!("CONFIG SET {name} {to} failed: {e}"),
                    ))
                }
            }
        }
        if r.info.get("config_file").is_some_and(|f| !f.is_empty()) {
            rt.block_on(redis_rewrite(c, t))
                .map_err(|e| fail(&applied, format!("{e:#}")))?;
        }
    }

    // Read back: what took effect, what waits for a restart.
    let mut out = std::io::stdout().lock();
    if let Some((c, s)) = live.pg.as_mut() {
        *s = rt.block_on(pg_state(c, &s.target.clone(), t))?;
        for (name, _, to, _) in &pg_changes {
            let now = s.get(name).expect("known before");
            let status = if now.pending_restart {
                "set; takes effect after a restart".to_string()
            } else if pg_same(to, now) {
                "in effect".to_string()
            } else {
                format!(
                    "not in effect: the server runs {} ({})",
                    now.display(),
                    now.source
                )
            };
            writeln!(out, "postgres  {name} = {to}: {status}")?;
        }
    }
    for name in &redis_restart {
        writeln!(out, "redis     {name}: immutable while Redis runs; takes effect after a restart with the file")?;
    }
    for (name, _, to) in redis_changes
        .iter()
        .filter(|c| !redis_restart.contains(&c.0))
    {
        writeln!(out, "redis     {name} = {to}: in effect")?;
    }
    writeln!(out, "{undo}")?;
    Ok(ExitCode::SUCCESS)
}

fn rollback(args: &ApplyArgs, path: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read snapshot `{}`", path.display()))?;
    let snap: Snapshot = serde_json::from_str(&text).map_err(|e| {
        InputError::new(
            format!("{}:{}", path.display(), e.line()),
            format!("not a dbtune snapshot: {e}"),
            "pass the file `dbtune apply --yes` wrote",
        )
    })?;
    let t = Duration::from_secs(args.live.timeout);
    // Servers from the command line (with passwords), else the snapshot's
    // own URLs when they need none.
    let given = if args.args.is_empty() {
        conn::env_targets()?
    } else {
        args.args
            .iter()
            .map(|a| conn::parse_target(a))
            .collect::<Result<Vec<_>>>()?
    };
    let pick = |want_pg: bool, recorded: Option<&str>| -> Result<Option<Target>> {
        if let Some(t) = given
            .iter()
            .find(|t| matches!(t, Target::Postgres { .. }) == want_pg)
        {
            return Ok(Some(t.clone()));
        }
        match recorded {
            Some(u) if !u.contains("***") && !u.contains("(from") => {
                conn::parse_target(u).map(Some)
            }
            Some(u) => Err(InputError::plain(
                format!(
                    "the snapshot was taken from {u}; give that server's URL with its password"
                ),
                "dbtune apply --rollback SNAPSHOT --yes postgres://user:password@host/db",
            )
            .into()),
            None => Ok(None),
        }
    };
    let pg_t = pick(true, snap.postgres.as_ref().map(|p| p.target.as_str()))?;
    let redis_t = pick(false, snap.redis.as_ref().map(|r| r.target.as_str()))?;
    let mut out = std::io::stdout().lock();
    if let Some(p) = &snap.postgres {
        for c in &p.changes {
            match &c.previous_auto_conf {
                Some(v) => writeln!(out, "postgres  {}: ALTER SYSTEM SET back to {v}", c.name)?,
                None => writeln!(
                    out,
                    "postgres  {}: ALTER SYSTEM RESET (was {} from outside postgresql.auto.conf)",
                    c.name, c.previous_setting
                )?,
            }
        }
    }
    if let Some(r) = &snap.redis {
        for c in &r.changes {
            writeln!(
                out,
                "redis     {}: CONFIG SET back to {}",
                c.name, c.previous
            )?;
        }
    }
    if !args.yes {
        writeln!(out, "dry run: run again with --yes to restore these values")?;
        return Ok(ExitCode::SUCCESS);
    }
    drop(out);
    let rt = runtime()?;
    let mut live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    if let (Some(p), Some((c, s))) = (&snap.postgres, &live.pg) {
        if !s.superuser {
            return Err(InputError::plain(
                format!("PostgreSQL user `{}` is not a superuser", s.user),
                "roll back as a superuser",
            )
            .into());
        }
        for ch in &p.changes {
            rt.block_on(pg_alter(c, &ch.name, ch.previous_auto_conf.as_deref(), t))?;
        }
        rt.block_on(pg_reload(c, t))?;
    }
    if let (Some(r), Some((c, _))) = (&snap.redis, live.redis.as_mut()) {
        for ch in &r.changes {
            if let Err(e) = rt.block_on(redis_config_set(c, &ch.name, &ch.previous, t)) {
                if !e.contains("immutable") {
                    return Err(anyhow::anyhow!(
                        "CONFIG SET {} {} failed: {e}",
                        ch.name,
                        ch.previous
                    ));
                }
            }
        }
        if r.rewrite {
            rt.block_on(redis_rewrite(c, t))?;
        }
    }
    println!("restored the values recorded in {}", path.display());
    if let Some((c, s)) = live.pg.as_ref() {
        let now = rt.block_on(pg_state(c, &s.target, t))?;
        let pending: Vec<&str> = now
            .settings
            .iter()
            .filter(|x| {
                x.pending_restart
                    && snap
                        .postgres
                        .iter()
                        .flat_map(|p| &p.changes)
                        .any(|c| c.name == x.name)
            })
            .map(|x| x.name.as_str())
            .collect();
        if !pending.is_empty() {
            println!(
                "note: PostgreSQL marks {} as waiting for a restart: it does so for any restart-only parameter \
                 removed from its files, even when the value does not change",
                pending.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
