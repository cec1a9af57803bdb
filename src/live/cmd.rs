//! inspect, diff and apply: the commands that talk to live servers.

use crate::service::Scope;
use std::fmt;
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
use crate::cli::{ApplyArgs, DiffArgs, InspectArgs};
use crate::console;
use crate::error::{Error, EXIT_NO};
use crate::facts::detect::Detector;
use crate::note;
use crate::read::budget::{self, Budget};
use crate::read::findings::{Finding, Severity};
use crate::read::safety;
use crate::read::settings::HostSettings;
use crate::read::{discover, report};
use crate::secret::Value;
use crate::target::{self, CheckTarget, ThisMachine};
use crate::units::ByteSize;
use crate::version::PgVersion;

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
        return Err(Error::plain(
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
            return Err(Error::plain(
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
        Some(Target::Postgres {
            config,
            tls,
            root_cert,
            shown,
        }) => {
            let c = conn::connect_postgres(config, *tls, root_cert.as_deref(), shown, t).await?;
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

/// The servers' host, resolved as check-budget resolves it (the same
/// code): flags > facts file > manifest > this machine when every server
/// runs on it; the version is the live server's. When PostgreSQL runs
/// here, where its data directory really is decides whether it is on ZFS.
fn servers_host(
    flags: &target::Flags,
    manifest: Option<&crate::render::output::Manifest>,
    live: &Live,
    all_local: bool,
) -> Result<CheckTarget> {
    let version = live.pg.as_ref().map(|(_, s)| s.major);
    let mut host = target::resolve(
        flags,
        manifest,
        ThisMachine::IfServersLocal(all_local),
        version,
    )?;
    // On this machine, where the data directory really is beats any word
    // about it, --filesystem too: `full_page_writes = off` on ext4 because
    // a flag said zfs would lose data at the next crash.
    if let Some((zfs, source)) = local_data_dir_zfs(live, all_local) {
        if let Some(fs) = flags.filesystem {
            if fs.eq_ignore_ascii_case("zfs") != zfs {
                host.notes.push(format!(
                    "note: --filesystem {fs} is not used: {source}, and detection decides for a server on this machine"
                ));
            }
        }
        host.pg_on_zfs = zfs;
        host.pg_on_zfs_source = source;
    }
    Ok(host)
}

/// For a PostgreSQL on this machine: whether its data directory (and
/// pg_wal) is on ZFS, as detection sees it. Detection beats any file.
fn local_data_dir_zfs(live: &Live, all_local: bool) -> Option<(bool, String)> {
    let (_, s) = live.pg.as_ref()?;
    if !all_local {
        return None;
    }
    let dir = s.get("data_directory").map(|d| d.setting.clone())?;
    if dir.is_empty() {
        return None;
    }
    let facts = Detector::host().detect(Some(Path::new(&dir)));
    let fs = facts
        .storage
        .filesystem
        .as_ref()
        .map_or("an unknown filesystem".to_string(), |f| f.value.clone());
    Some((
        facts.data_on_zfs(),
        format!("detected: the server's data_directory {dir} is on {fs}"),
    ))
}

fn health(live: &Live) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some((_, pg)) = &live.pg {
        if let Some(r) = pg.cache_hit_ratio.filter(|r| *r < 0.99) {
            out.push(Finding::warning(
                Scope::Postgres,
                None,
                format!("cache hit ratio is {:.1}%, under 99%", r * 100.0),
                Some("the working set does not fit shared_buffers + page cache, or the server just started".into()),
            ));
        }
        let clients: i64 = pg.connections.values().sum();
        if pg.max_connections > 0 && clients * 10 >= pg.max_connections * 8 {
            out.push(Finding::warning(
                Scope::Postgres,
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
                Scope::Postgres,
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
                Scope::Redis,
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
                Scope::Redis,
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
                    Scope::Redis,
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
                Scope::Redis,
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
        pg_version: live
            .pg
            .as_ref()
            .map_or(PgVersion::DEFAULT, |(_, s)| PgVersion::nearest(s.major)),
        postgres: live.pg.as_ref().map(|(_, s)| s.service_settings()),
        pg_build: live.pg.as_ref().map(|(_, s)| s.build_features()),
        pg_release: live.pg.as_ref().map(|(_, s)| s.version.clone()),
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
    let rt = runtime()?;
    let live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    let flags = host_flags(&args.host);
    let host = servers_host(&flags, None, &live, all_local)?;
    for n in &host.notes {
        note!("{n}");
    }
    let settings = live_settings(&live);
    let budget = budget::compute(
        &settings,
        host.ram,
        &host.ram_source,
        &host.reserves,
        &host.assumptions,
    );
    let mut findings = budget.problems.clone();
    findings.extend(safety::findings(
        &settings,
        &safety::Context {
            pg_on_zfs: host.pg_on_zfs,
            pg_on_zfs_source: host.pg_on_zfs_source.clone(),
            live_huge_pages: None,
        },
        &host.assumptions,
    ));
    findings.extend(health(&live));
    let (line, ok) = verdict(&budget, &findings);
    let out = if args.json {
        let doc = json!({
            "schema": 1,
            "verdict": verdict_name(&budget, &findings, ok),
            "postgres": live.pg.as_ref().map(|(_, s)| s.to_json()),
            "redis": live.redis.as_ref().map(|(_, r)| r.to_json()),
            "findings": findings,
            "ram": budget.ram, "ram_source": budget.ram_source, "worst": budget.worst, "typical": budget.typical,
            "terms": budget.terms,
        });
        serde_json::to_string_pretty(&doc)? + "\n"
    } else {
        let mut out = String::new();
        if let Some((_, s)) = &live.pg {
            out.push_str(&s.to_string());
        }
        if let Some((_, r)) = &live.redis {
            out.push_str(&r.to_string());
        }
        out.push('\n');
        for f in &findings {
            out.push_str(&format!("{f}\n"));
        }
        let mut b = budget.clone();
        b.problems.clear();
        out.push_str(&b.table());
        out.push_str(&format!("\n{line}\n"));
        out
    };
    console::print(&out)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

/// The verdict word of inspect's JSON, as check-budget's.
fn verdict_name(budget: &Budget, findings: &[Finding], ok: bool) -> &'static str {
    if findings
        .iter()
        .any(|f| f.safety && f.severity == Severity::Error)
    {
        "unsafe"
    } else if ok {
        "fits"
    } else if budget.total_fits() {
        "invalid"
    } else {
        "does-not-fit"
    }
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

fn load_dir(dir: &Path, live: &Live) -> Result<(HostSettings, discover::Found)> {
    let found = discover::discover(&[dir.to_path_buf()])?;
    let mut settings = discover::load_found(
        &found,
        live_settings(live).pg_version,
        live.pg.as_ref().map(|(_, s)| s.build_features()),
        None,
    )?;
    settings.pg_release = live.pg.as_ref().map(|(_, s)| s.version.clone());
    Ok((settings, found))
}

pub fn diff(args: DiffArgs) -> Result<ExitCode> {
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = targets(&args.targets)?;
    let rt = runtime()?;
    let live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    let (files, _) = load_dir(&args.dir, &live)?;
    if files.postgres.is_some() && live.pg.is_none() {
        note!("note: no PostgreSQL server given: postgresql.conf is not compared");
    }
    if files.redis.is_some() && live.redis.is_none() {
        note!("note: no Redis server given: redis.conf is not compared");
    }
    let d = drifts(&live, &files);
    let differ: Vec<&Drift> = d.iter().filter(|x| !x.same).collect();
    let out = if args.json {
        serde_json::to_string_pretty(
            &json!({"schema": 1, "same": d.len() - differ.len(), "settings": d}),
        )? + "\n"
    } else {
        let lines: String = differ.iter().map(|x| format!("{x}\n")).collect();
        format!(
            "{lines}{} setting(s) differ, {} the same\n",
            differ.len(),
            d.len() - differ.len()
        )
    };
    console::print(&out)?;
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

/// Redis settings that decide who may run which command: apply never
/// changes them (credentials are recognised by name in `secret`).
const REDIS_ACCESS: &[&str] = &[
    "aclfile",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "protected-mode",
];

/// Why apply never changes Redis setting `name`, when it does not.
fn redis_never(name: &str) -> Option<&'static str> {
    if REDIS_NEVER.contains(&name) {
        Some("it moves where clients or the service manager find the server")
    } else if REDIS_ACCESS.contains(&name) {
        Some("it decides who may run which command")
    } else {
        None
    }
}

/// What makes a PostgreSQL change take effect, from pg_settings.context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Needs {
    Reload,
    Restart,
    /// Fixed when the cluster was created: no ALTER SYSTEM changes it.
    Initdb,
}

impl Needs {
    fn of(context: &str) -> Needs {
        match context {
            "postmaster" => Needs::Restart,
            "internal" => Needs::Initdb,
            _ => Needs::Reload,
        }
    }
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Needs::Reload => "reload",
            Needs::Restart => "restart",
            Needs::Initdb => "initdb",
        })
    }
}

/// Prefix of a snapshot being written: a killed apply leaves one, and the
/// next apply into that directory (under its lock) removes it.
const SNAPSHOT_TEMP_PREFIX: &str = ".dbtune-snapshot-tmp-";

fn write_snapshot(dir: &Path, snap: &Snapshot) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create snapshot directory `{}`", dir.display()))?;
    let t = snap.created_unix;
    let names = (0..1000).map(|n| match n {
        0 => format!("dbtune-snapshot-{t}.json"),
        n => format!("dbtune-snapshot-{t}-{n}.json"),
    });
    crate::atomic::create_new(
        dir,
        SNAPSHOT_TEMP_PREFIX,
        names,
        (serde_json::to_string_pretty(snap)? + "\n").as_bytes(),
        0o600,
    )
}

/// One PostgreSQL setting apply changes with ALTER SYSTEM.
#[derive(Clone, Debug)]
struct PgChange {
    name: String,
    /// What the server runs, as a person reads it.
    from: String,
    to: Value,
    needs: Needs,
}

/// One Redis setting apply changes with CONFIG SET.
#[derive(Clone, Debug)]
struct RedisChange {
    name: String,
    from: Value,
    to: Value,
}

/// Everything apply would do, and what it leaves alone and why.
#[derive(Debug, Default)]
struct ChangeSet {
    pg: Vec<PgChange>,
    redis: Vec<RedisChange>,
    notes: Vec<String>,
}

/// The dry run's list: notes on what apply leaves alone, then each change.
impl fmt::Display for ChangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for c in &self.pg {
            writeln!(
                f,
                "postgres  {}: {} -> {}  (ALTER SYSTEM, needs a {})",
                c.name, c.from, c.to, c.needs
            )?;
        }
        for c in &self.redis {
            writeln!(
                f,
                "redis     {}: {} -> {}  (CONFIG SET)",
                c.name, c.from, c.to
            )?;
        }
        Ok(())
    }
}

impl ChangeSet {
    fn len(&self) -> usize {
        self.pg.len() + self.redis.len()
    }

    fn needs_restart(&self) -> bool {
        self.pg.iter().any(|c| c.needs == Needs::Restart)
    }
}

/// The differences between the directory and the servers, sorted into
/// changes apply makes and notes on the ones it does not.
fn change_set(live: &Live, files: &HostSettings) -> ChangeSet {
    let mut set = ChangeSet::default();
    for d in drifts(live, files).into_iter().filter(|d| !d.same) {
        // A password or a connection string with one: changing it live can
        // lock every client out (requirepass) or break replication, and a
        // snapshot would have to keep the old one in clear. Never applied.
        if d.file_value.holds().is_credential() {
            set.notes.push(format!(
                "{} {}: holds a credential; apply never changes authentication settings \
                 (it could lock clients out, and a snapshot would keep the old one): change it by hand",
                d.service, d.name
            ));
            continue;
        }
        let never = match d.service {
            Scope::Postgres => PG_NEVER
                .contains(&d.name.as_str())
                .then_some("it moves where clients or the service manager find the server"),
            _ => redis_never(&d.name),
        };
        if let Some(why) = never {
            set.notes.push(format!(
                "{} {}: {} -> {} not applied: {why}; change it by hand",
                d.service,
                d.name,
                d.live.as_ref().map_or("?".to_string(), |v| v.to_string()),
                d.file_value
            ));
            continue;
        }
        if d.service == Scope::Redis {
            set.redis.push(RedisChange {
                from: d
                    .live
                    .clone()
                    .unwrap_or_else(|| Value::new(Scope::Redis, &d.name, "")),
                name: d.name,
                to: d.file_value,
            });
            continue;
        }
        match live.pg.as_ref().and_then(|(_, s)| s.get(&d.name)) {
            None => set
                .notes
                .push(format!("postgres {}: unknown to this server, skipped", d.name)),
            Some(s) if s.source == "command line" || s.source == "override" => set.notes.push(format!(
                "postgres {}: set on the server's command line ({}), which ALTER SYSTEM cannot override",
                d.name,
                s.display()
            )),
            Some(s) if s.context == "internal" => set
                .notes
                .push(format!("postgres {}: fixed at initdb, skipped", d.name)),
            Some(s) => set.pg.push(PgChange {
                name: d.name.clone(),
                from: s.display(),
                to: d.file_value,
                needs: Needs::of(&s.context),
            }),
        }
    }
    set
}

/// The live settings with the changes made: what the servers run after.
fn after_change(live: &Live, files: &HostSettings, set: &ChangeSet) -> HostSettings {
    let mut after = live_settings(live);
    if let (Some(t), Some(f)) = (after.postgres.as_mut(), files.postgres.as_ref()) {
        for c in &set.pg {
            if let Some(e) = f.get(&c.name) {
                t.entries.insert(c.name.clone(), vec![e.clone()]);
            }
        }
    }
    if let (Some(t), Some(f)) = (after.redis.as_mut(), files.redis.as_ref()) {
        for c in &set.redis {
            t.entries.insert(c.name.clone(), f.all(&c.name).to_vec());
        }
    }
    after
}

/// Huge pages of one size on this machine, from sysfs (else /proc/meminfo):
/// (free minus reserved, page size).
fn host_huge_pages(size: Option<ByteSize>) -> Option<(u64, ByteSize, String)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |k: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| {
            l.strip_prefix(k)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
    };
    let default = ByteSize::kib(field("Hugepagesize:")?);
    let size = size.filter(|s| *s != ByteSize::ZERO).unwrap_or(default);
    let dir = format!(
        "/sys/kernel/mm/hugepages/hugepages-{}kB",
        size.bytes() / 1024
    );
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(format!("{dir}/{f}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    match (read("free_hugepages"), read("resv_hugepages")) {
        (Some(free), Some(resv)) => Some((
            free.saturating_sub(resv),
            size,
            format!("{dir}: {free} free, {resv} reserved"),
        )),
        _ if size == default => {
            let (free, resv) = (
                field("HugePages_Free:")?,
                field("HugePages_Rsvd:").unwrap_or(0),
            );
            Some((
                free.saturating_sub(resv),
                size,
                format!("/proc/meminfo: HugePages_Free {free}, HugePages_Rsvd {resv}"),
            ))
        }
        _ => None,
    }
}

/// What a PostgreSQL restart could map in huge pages, when `huge_pages =
/// on` is in the set after the change: asked of this machine when the
/// server runs here; on another host apply cannot see, only
/// --huge-pages-reserved (the user's word) lets it through.
fn restart_huge_pages(
    live: &Live,
    after: &HostSettings,
    all_local: bool,
    vouched: bool,
) -> Result<Option<safety::LiveHugePages>> {
    let (Some((_, s)), Some(pg_after)) = (&live.pg, &after.postgres) else {
        return Ok(None);
    };
    let pg = budget::Pg::new(pg_after, after.pg_version);
    if pg.text("huge_pages", "try") != "on" {
        return Ok(None);
    }
    // The user's word counts only where dbtune cannot look: on this
    // machine /proc says how many pages there are.
    if vouched && !all_local {
        return Ok(Some(safety::LiveHugePages {
            available: u64::MAX,
            page_size: ByteSize::mib(2),
            server_reports: None,
            source: "--huge-pages-reserved".into(),
        }));
    }
    if !all_local {
        return Err(Error::Refusal(format!(
            "huge_pages = on: after a restart PostgreSQL will not start unless the host has about {} of \
             huge pages free, and {} is not on this machine, so apply cannot look; nothing was changed\n\
             hint: on the server's host check HugePages_Free in /proc/meminfo (vm.nr_hugepages), then run \
             again with --huge-pages-reserved",
            budget::pg_shared_estimate(&pg),
            s.target
        ))
        .into());
    }
    let size = pg
        .read("huge_page_size")
        .and_then(|v| v.as_f64())
        .map(|kb| ByteSize::kib(kb as u64));
    let Some((free, page, source)) = host_huge_pages(size) else {
        return Ok(Some(safety::LiveHugePages {
            available: 0,
            page_size: ByteSize::mib(2),
            server_reports: None,
            source: "this machine reports no huge pages".into(),
        }));
    };
    // The running server gives back the pages it holds when it restarts.
    let reports: Option<u64> = s
        .get("shared_memory_size_in_huge_pages")
        .and_then(|x| x.setting.parse().ok())
        .filter(|n: &u64| *n > 0);
    let holds = match s.get("huge_pages_status").map(|x| x.setting.as_str()) {
        Some("on") => reports.unwrap_or(0),
        Some(_) => 0,
        None if s.get("huge_pages").is_some_and(|x| x.setting == "on") => reports.unwrap_or(0),
        None => 0,
    };
    Ok(Some(safety::LiveHugePages {
        available: free + holds,
        page_size: page,
        server_reports: reports,
        source: if holds > 0 {
            format!("{source}, plus {holds} the running server holds")
        } else {
            source
        },
    }))
}

fn print_refusal(what: &str, report: &report::Report) -> anyhow::Error {
    Error::Refusal(format!(
        "{what}; nothing was changed\n{}",
        report::text(report, false)
    ))
    .into()
}

/// host:port of a target, as the snapshot records it.
fn host_port(t: &Target) -> String {
    match t {
        Target::Postgres { config, .. } => {
            let host = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
                None => "localhost".into(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            format!("{host}:{port}")
        }
        Target::Redis { url, .. } => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
            let hp = rest[..auth_end].rsplit('@').next().unwrap_or("");
            if hp.contains(':') && !hp.ends_with(']') {
                hp.to_string()
            } else {
                format!("{hp}:6379")
            }
        }
    }
}

/// What the command line says of the servers' host: a live server's
/// versions are its own, so only RAM, facts and filesystem.
fn host_flags(host: &crate::cli::ServersHostArgs) -> target::Flags<'_> {
    target::Flags {
        ram: host.ram,
        facts: host.facts.as_deref(),
        filesystem: host.filesystem.as_deref(),
        ..Default::default()
    }
}

pub fn apply(args: ApplyArgs) -> Result<ExitCode> {
    if let Some(snap) = &args.rollback {
        return rollback(&args, snap);
    }
    let (dir, urls) = apply_dir(&args)?;
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = targets(urls)?;
    let all_local = pg_t.iter().chain(&redis_t).all(|x| x.is_local());
    let rt = runtime()?;
    let mut live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    let (files, found) = load_dir(&dir, &live)?;
    let flags = host_flags(&args.host);
    let host = servers_host(&flags, found.manifest.as_ref(), &live, all_local)?;
    for n in &host.notes {
        note!("{n}");
    }
    let set = change_set(&live, &files);
    let after = after_change(&live, &files, &set);
    let huge = restart_huge_pages(&live, &after, all_local, args.huge_pages_reserved)?;
    let after_report = vet(&files, &after, &host, huge)?;
    if let Some((c, s)) = &live.pg {
        let problems = rt.block_on(pg_preflight(c, s, &set, &after, all_local, t))?;
        if !problems.is_empty() {
            return Err(Error::Refusal(format!(
                "after this change PostgreSQL would not start, or would not load what it is told to; \
                 nothing was changed\n{}",
                problems
                    .iter()
                    .map(|p| format!("  {p}\n"))
                    .collect::<String>()
            ))
            .into());
        }
    }
    if let (true, Some((c, s)), Some(f)) = (args.prove_start, &live.pg, files.postgres.as_ref()) {
        let changes = set
            .pg
            .iter()
            .filter_map(|ch| f.get(&ch.name).map(|e| (ch.name.clone(), e.clone())))
            .collect();
        super::prove::restart(&rt, c, s, changes, t)?;
    }

    let mut out = set.to_string();
    if set.len() == 0 {
        out.push_str(&format!(
            "nothing to change: the servers run what {} says\n",
            dir.display()
        ));
        console::print(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        out.push_str(&format!(
            "dry run: {} change(s), worst case after them {} of {}; run again with --yes to apply them \
             (a snapshot of the current values is written first)\n",
            set.len(),
            after_report.budget.worst,
            after_report.budget.ram
        ));
        console::print(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    console::print(&out)?;
    let snap_path = take_snapshot(&rt, &live, &pg_t, &redis_t, &set, &args.snapshot_dir, t)?;
    note!("snapshot of the previous values: {}", snap_path.display());
    execute(&rt, &mut live, &set, &snap_path, t)
}

/// What the server itself would refuse only at the next reload or
/// restart, asked of the server before anything changes: SSL files that
/// are not there (the reload keeps the old SSL state and logs it), a
/// preloaded library that is not installed, a socket group that does not
/// exist (both stop the next start). Each problem is one line.
async fn pg_preflight(
    c: &tokio_postgres::Client,
    s: &PgState,
    set: &ChangeSet,
    after: &HostSettings,
    all_local: bool,
    t: Duration,
) -> Result<Vec<String>> {
    let changed = |n: &str| set.pg.iter().any(|c| c.name == n);
    let Some(pg_after) = after.postgres.as_ref() else {
        return Ok(Vec::new());
    };
    let value = |n: &str| -> Option<String> {
        pg_after
            .get(n)
            .map(|e| e.value.clone())
            .or_else(|| s.get(n).map(|x| x.setting.clone()))
    };
    let mut out = Vec::new();
    let exists = |path: String| async move {
        super::pg_query(
            c,
            "SELECT (pg_stat_file($1, true)).size IS NOT NULL",
            &[&path],
            t,
        )
        .await
        .map(|rows| rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    };
    let ssl_on = value("ssl").and_then(|v| crate::read::pgvalue::parse_bool(&v)) == Some(true);
    let ssl_changed = [
        "ssl",
        "ssl_cert_file",
        "ssl_key_file",
        "ssl_ca_file",
        "ssl_crl_file",
    ]
    .iter()
    .any(|n| changed(n));
    if ssl_on && ssl_changed {
        for (name, required) in [
            ("ssl_cert_file", true),
            ("ssl_key_file", true),
            ("ssl_ca_file", false),
            ("ssl_crl_file", false),
        ] {
            let Some(path) = value(name).filter(|p| !p.is_empty()) else {
                continue;
            };
            if (required || changed(name)) && !exists(path.clone()).await? {
                out.push(format!(
                    "ssl = on needs {name} `{path}`, which the server cannot find (relative paths are \
                     in its data directory): the reload would keep the old SSL state and say so only in its log"
                ));
            }
        }
    }
    if changed("shared_preload_libraries") {
        let libdir: String = super::pg_query(
            c,
            "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'",
            &[],
            t,
        )
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or_default();
        for lib in value("shared_preload_libraries")
            .unwrap_or_default()
            .split(',')
            .map(|l| l.trim().trim_matches('"'))
            .filter(|l| !l.is_empty())
        {
            let base = lib.replace("$libdir", &libdir);
            let path = if base.contains('/') {
                base
            } else {
                format!("{libdir}/{base}")
            };
            let found = exists(path.clone()).await? || exists(format!("{path}.so")).await?;
            if !found {
                out.push(format!(
                    "shared_preload_libraries names `{lib}`, which is not installed in {libdir}: \
                     PostgreSQL would not start after the restart this change needs"
                ));
            }
        }
    }
    if changed("unix_socket_group") {
        if let Some(group) = value("unix_socket_group").filter(|g| !g.is_empty()) {
            if all_local {
                if !group_exists(&group) {
                    out.push(format!(
                        "unix_socket_group `{group}` is not a group on this machine: PostgreSQL would \
                         not start after the restart this change needs"
                    ));
                }
            } else {
                note!(
                    "note: unix_socket_group `{group}`: the server is not on this machine, so apply \
                     cannot see whether the group exists there; check before the restart"
                );
            }
        }
    }
    Ok(out)
}

/// Whether a group (by name, or a number as PostgreSQL also takes) exists
/// on this machine.
fn group_exists(group: &str) -> bool {
    if group.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let Ok(name) = std::ffi::CString::new(group) else {
        return false;
    };
    // SAFETY: getgrnam reads a NUL-terminated name; the result is only
    // compared with NULL, never dereferenced.
    !unsafe { libc::getgrnam(name.as_ptr()) }.is_null()
}

/// The directory to apply and the server URLs after it.
fn apply_dir(args: &ApplyArgs) -> Result<(std::path::PathBuf, &[String])> {
    let (dir, urls) = args
        .args
        .split_first()
        .expect("clap requires DIR without --rollback");
    if dir.contains("://") {
        return Err(Error::plain(
            format!(
                "`{}` is a server, but apply needs the directory to apply first",
                conn::redact(dir)
            ),
            "dbtune apply DIR [URL...]",
        )
        .into());
    }
    if args.data_dir.is_some() {
        return Err(Error::plain(
            "--data-dir is for `apply --rollback` with PostgreSQL stopped",
            "leave it out: apply changes a running server",
        )
        .into());
    }
    Ok((std::path::PathBuf::from(dir), urls))
}

/// The directory first, exactly as check-budget judges it; then the
/// servers as they would run after the change. The report after the
/// change, or the refusal (printed).
fn vet(
    files: &HostSettings,
    after: &HostSettings,
    host: &target::CheckTarget,
    huge: Option<crate::read::safety::LiveHugePages>,
) -> Result<report::Report> {
    let dir_report = report::check_settings(files, host, huge.clone());
    if !dir_report.ok() {
        let what = match dir_report.verdict() {
            "unsafe" => "the directory holds settings that can lose data or stop a server",
            "does-not-fit" => "the directory's settings would not fit the host's memory",
            _ => "the directory's settings are invalid",
        };
        return Err(print_refusal(what, &dir_report));
    }
    let after_report = report::check_settings(after, host, huge);
    let blocking = after_report.findings.iter().any(|f| {
        f.severity == Severity::Error && (f.safety || after_report.budget.problems.contains(f))
    });
    if !after_report.budget.fits() || blocking {
        let what = if after_report.unsafe_errors() > 0 {
            "after this change the servers would run settings that can lose data or stop them"
        } else {
            "the servers would not fit their memory after this change"
        };
        return Err(print_refusal(what, &after_report));
    }
    Ok(after_report)
}

/// Privileges, then the previous values and the servers' identity, on
/// disk before anything changes.
fn take_snapshot(
    rt: &tokio::runtime::Runtime,
    live: &Live,
    pg_t: &Option<Target>,
    redis_t: &Option<Target>,
    set: &ChangeSet,
    snapshot_dir: &Path,
    t: Duration,
) -> Result<std::path::PathBuf> {
    if let Some((_, s)) = &live.pg {
        if !set.pg.is_empty() && !s.superuser {
            return Err(Error::plain(
                format!("PostgreSQL user `{}` is not a superuser: nothing was changed", s.user),
                "apply needs a superuser: ALTER SYSTEM, and reading postgresql.auto.conf for the rollback snapshot",
            )
            .into());
        }
    }
    let names: Vec<String> = set.pg.iter().map(|c| c.name.clone()).collect();
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
            .filter(|_| !set.pg.is_empty())
            .map(|(_, s)| PgSnapshot {
                target: s.target.clone(),
                host_port: pg_t.as_ref().map(host_port).unwrap_or_default(),
                system_identifier: s.system_identifier.clone(),
                data_directory: s.get("data_directory").map(|d| d.setting.clone()),
                changes: set
                    .pg
                    .iter()
                    .map(|c| PgPrevious {
                        name: c.name.clone(),
                        previous_setting: c.from.clone(),
                        previous_auto_conf: auto.get(&c.name).cloned(),
                        applied: Some(c.to.expose().to_string()),
                    })
                    .collect(),
            }),
        redis: live
            .redis
            .as_ref()
            .filter(|_| !set.redis.is_empty())
            .map(|(_, r)| RedisSnapshot {
                target: r.target.clone(),
                host_port: redis_t.as_ref().map(host_port).unwrap_or_default(),
                rewrite: r.info.get("config_file").is_some_and(|f| !f.is_empty()),
                changes: set
                    .redis
                    .iter()
                    .map(|c| RedisPrevious {
                        name: c.name.clone(),
                        previous: c.from.expose().to_string(),
                        applied: Some(c.to.expose().to_string()),
                    })
                    .collect(),
            }),
    };
    write_snapshot(snapshot_dir, &snapshot)
}

/// Makes the changes, saying each as it lands so that a failure (a server
/// that dies halfway) still shows exactly what was applied.
fn execute(
    rt: &tokio::runtime::Runtime,
    live: &mut Live,
    set: &ChangeSet,
    snap_path: &Path,
    t: Duration,
) -> Result<ExitCode> {
    let mut progress = Progress {
        applied: Vec::new(),
        reloaded: false,
        postgres_changes: !set.pg.is_empty(),
        undo: format!(
            "undo with: dbtune apply --rollback {} --yes [URL...] (with PostgreSQL stopped: add --data-dir PGDATA)",
            snap_path.display()
        ),
    };
    if let Some((c, _)) = &live.pg {
        for ch in &set.pg {
            if let Err(e) = rt.block_on(pg_alter(c, &ch.name, Some(ch.to.expose()), t)) {
                return Err(progress.fail(format!("{e:#}")));
            }
            progress.done(format!("postgres {} = {}", ch.name, ch.to));
        }
        if !set.pg.is_empty() {
            rt.block_on(pg_reload(c, t))
                .map_err(|e| progress.fail(format!("{e:#}")))?;
            progress.reloaded = true;
        }
    }
    let mut redis_restart = Vec::new();
    if let Some((c, r)) = live.redis.as_mut() {
        for ch in &set.redis {
            match rt.block_on(redis_config_set(c, &ch.name, ch.to.expose(), t)) {
                Ok(()) => progress.done(format!("redis {} {}", ch.name, ch.to)),
                Err(e) if e.contains("immutable") => redis_restart.push(ch.name.clone()),
                Err(e) => {
                    return Err(
                        progress.fail(format!("CONFIG SET {} {} failed: {e}", ch.name, ch.to))
                    )
                }
            }
        }
        if r.info.get("config_file").is_some_and(|f| !f.is_empty()) {
            rt.block_on(redis_rewrite(c, t))
                .map_err(|e| progress.fail(format!("{e:#}")))?;
        }
    }
    // Read back: what took effect, what waits for a restart.
    if let Some((c, s)) = live.pg.as_mut() {
        *s = rt
            .block_on(pg_state(c, &s.target.clone(), t))
            .map_err(|e| progress.fail(format!("reading the settings back failed: {e:#}")))?;
    }
    let outcome = Outcome {
        set,
        pg: live.pg.as_ref().map(|(_, s)| s),
        redis_restart: &redis_restart,
        snap_path,
    };
    console::print(&format!("{outcome}{}\n", progress.undo))?;
    Ok(ExitCode::SUCCESS)
}

/// What apply has changed so far, for the error when a change fails.
struct Progress {
    applied: Vec<String>,
    reloaded: bool,
    postgres_changes: bool,
    undo: String,
}

impl Progress {
    fn done(&mut self, change: String) {
        note!("applied: {change}");
        self.applied.push(change);
    }

    /// A failed live change, saying what was applied before it and where
    /// those changes stand.
    fn fail(&self, what: String) -> anyhow::Error {
        Error::LiveChange {
            message: crate::secret::escape_controls(&what).into_owned(),
            applied: self.applied.clone(),
            state: if self.reloaded || !self.postgres_changes {
                "in effect where the server allows it".into()
            } else {
                "PostgreSQL's are in postgresql.auto.conf, not reloaded: they take effect at the \
                 next reload or restart unless rolled back"
                    .into()
            },
            hint: self.undo.clone(),
        }
        .into()
    }
}

/// Each change as the servers report it after apply.
struct Outcome<'a> {
    set: &'a ChangeSet,
    /// PostgreSQL as read back after the changes.
    pg: Option<&'a PgState>,
    redis_restart: &'a [String],
    snap_path: &'a Path,
}

impl fmt::Display for Outcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.pg {
            for ch in &self.set.pg {
                let status = match s.get(&ch.name) {
                    Some(now) if now.pending_restart => {
                        "set; takes effect after a restart".to_string()
                    }
                    Some(now) if pg_same(ch.to.expose(), now, s.major) => "in effect".to_string(),
                    Some(now) => format!(
                        "not in effect: the server runs {} ({})",
                        now.display(),
                        now.source
                    ),
                    None => "gone from pg_settings".to_string(),
                };
                writeln!(f, "postgres  {} = {}: {status}", ch.name, ch.to)?;
            }
        }
        for name in self.redis_restart {
            writeln!(f, "redis     {name}: immutable while Redis runs; takes effect after a restart with the file")?;
        }
        for ch in self
            .set
            .redis
            .iter()
            .filter(|c| !self.redis_restart.contains(&c.name))
        {
            writeln!(f, "redis     {} = {}: in effect", ch.name, ch.to)?;
        }
        if self.set.needs_restart() {
            writeln!(
                f,
                "note: restart PostgreSQL for the settings marked above; if it does not start, \
                 `dbtune apply --rollback {} --data-dir PGDATA --yes` restores them with the server down",
                self.snap_path.display()
            )?;
        }
        Ok(())
    }
}

/// Reads a snapshot and checks that it says only what apply could have
/// written: known keys, none that move a server or change who may do
/// what, plain values. A credential (which apply no longer changes, but
/// an older dbtune did) is left out with a note, not restored.
fn read_snapshot(path: &Path) -> Result<(Snapshot, Vec<String>)> {
    let text = crate::input::read_text(path, "snapshot", crate::input::MAX_CONFIG)?;
    let mut snap: Snapshot = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            format!("{}:{}", path.display(), e.line()),
            format!("not a dbtune snapshot: {e}"),
            "pass the file `dbtune apply --yes` wrote",
        )
    })?;
    let bad = |what: String| -> anyhow::Error {
        Error::plain(
            format!("snapshot `{}` {what}: it was not written by apply, or was edited", path.display()),
            "nothing was changed; roll back with the snapshot apply wrote, or set the values by hand",
        )
        .into()
    };
    let plain = |v: &str| !v.chars().any(|c| c.is_control());
    let mut notes = Vec::new();
    let mut skip_credential = |scope: Scope, name: &str| -> bool {
        let credential = crate::secret::holds(scope, name).is_credential();
        if credential {
            notes.push(format!(
                "note: {scope} {name}: the snapshot records a credential, which apply no longer \
                 changes; it is not restored (set it by hand if it must go back)"
            ));
        }
        credential
    };
    if let Some(p) = &mut snap.postgres {
        for c in &p.changes {
            let name_ok = !c.name.is_empty()
                && c.name.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '.'
                });
            if !name_ok {
                return Err(bad(format!(
                    "names `{}`, which is not a parameter",
                    c.name.escape_debug()
                )));
            }
            if PG_NEVER.contains(&c.name.as_str()) {
                return Err(bad(format!("sets `{}`, which apply never changes", c.name)));
            }
            let values = [
                c.previous_auto_conf.as_deref(),
                Some(&c.previous_setting),
                c.applied.as_deref(),
            ];
            if !values.into_iter().flatten().all(plain) {
                return Err(bad(format!(
                    "gives `{}` a value with a control character",
                    c.name
                )));
            }
        }
        p.changes
            .retain(|c| !skip_credential(Scope::Postgres, &c.name));
    }
    if let Some(r) = &mut snap.redis {
        for c in &r.changes {
            let name_ok = !c.name.is_empty()
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
            if !name_ok {
                return Err(bad(format!(
                    "names `{}`, which is not a Redis setting",
                    c.name.escape_debug()
                )));
            }
            if redis_never(&c.name).is_some() || super::REDIS_FILE_ONLY.contains(&c.name.as_str()) {
                return Err(bad(format!(
                    "sets Redis `{}`, which apply never changes",
                    c.name
                )));
            }
            if ![Some(&c.previous), c.applied.as_ref()]
                .into_iter()
                .flatten()
                .all(|v| plain(v))
            {
                return Err(bad(format!(
                    "gives Redis `{}` a value with a control character",
                    c.name
                )));
            }
        }
        r.changes
            .retain(|c| !skip_credential(Scope::Redis, &c.name));
    }
    let changes = snap.postgres.iter().map(|p| p.changes.len()).sum::<usize>()
        + snap.redis.iter().map(|r| r.changes.len()).sum::<usize>();
    if changes == 0 {
        return Err(Error::plain(
            format!(
                "snapshot `{}` records no change to restore; nothing was changed",
                path.display()
            ),
            "pass the snapshot that `dbtune apply --yes` named when it made the changes",
        )
        .into());
    }
    Ok((snap, notes))
}

fn rollback(args: &ApplyArgs, path: &Path) -> Result<ExitCode> {
    let (snap, notes) = read_snapshot(path)?;
    for n in &notes {
        note!("{n}");
    }
    if let Some(data_dir) = &args.data_dir {
        return super::offline::rollback(&snap, path, data_dir, args.yes);
    }
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = rollback_targets(args, &snap)?;
    let mut out = RollbackPlan(&snap).to_string();
    if !args.yes {
        out.push_str("dry run: run again with --yes to restore these values\n");
        console::print(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    console::print(&out)?;
    let rt = runtime()?;
    let mut live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    if let (Some(p), Some((_, s))) = (&snap.postgres, &live.pg) {
        same_cluster(p, s)?;
    }
    let mut progress = Progress {
        applied: Vec::new(),
        reloaded: false,
        postgres_changes: snap.postgres.is_some(),
        undo: format!(
            "run the same rollback again once the server answers: it restores every value in {} again",
            path.display()
        ),
    };
    if let (Some(p), Some((c, s))) = (&snap.postgres, &live.pg) {
        for ch in &p.changes {
            if let Some(now) = s.get(&ch.name) {
                changed_since_apply(ch, now, s.major);
            }
            rt.block_on(pg_alter(c, &ch.name, ch.previous_auto_conf.as_deref(), t))
                .map_err(|e| progress.fail(format!("{e:#}")))?;
            progress.done(match &ch.previous_auto_conf {
                Some(v) => format!(
                    "postgres {} back to {}",
                    ch.name,
                    Value::new(Scope::Postgres, &ch.name, v.clone())
                ),
                None => format!("postgres {} reset", ch.name),
            });
        }
        rt.block_on(pg_reload(c, t))
            .map_err(|e| progress.fail(format!("{e:#}")))?;
        progress.reloaded = true;
    }
    if let (Some(r), Some((c, _))) = (&snap.redis, live.redis.as_mut()) {
        for ch in &r.changes {
            let previous = Value::new(Scope::Redis, &ch.name, ch.previous.clone());
            match rt.block_on(redis_config_set(c, &ch.name, &ch.previous, t)) {
                Ok(()) => progress.done(format!("redis {} back to {previous}", ch.name)),
                Err(e) if e.contains("immutable") => note!(
                    "note: redis {}: immutable while Redis runs; it goes back with the file at the next restart",
                    ch.name
                ),
                Err(e) => {
                    return Err(progress.fail(format!(
                        "CONFIG SET {} {previous} failed: {e}",
                        ch.name
                    )))
                }
            }
        }
        if r.rewrite {
            rt.block_on(redis_rewrite(c, t))
                .map_err(|e| progress.fail(format!("{e:#}")))?;
        }
    }
    let mut out = format!("restored the values recorded in {}\n", path.display());
    if let Some((c, s)) = live.pg.as_ref() {
        let now = rt.block_on(pg_state(c, &s.target, t))?;
        out.push_str(&pending_after_rollback(&snap, &now));
    }
    console::print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Says when a setting was changed by someone else after apply set it:
/// the server runs neither what apply set nor what was there before (a
/// change apply never reached runs the previous value, and is silent).
fn changed_since_apply(ch: &PgPrevious, now: &super::PgSetting, major: u32) {
    let Some(applied) = &ch.applied else {
        return;
    };
    if now.pending_restart
        || pg_same(applied, now, major)
        || pg_same(&ch.previous_setting, now, major)
        || ch
            .previous_auto_conf
            .as_deref()
            .is_some_and(|v| pg_same(v, now, major))
    {
        return;
    }
    note!(
        "note: postgres {} was changed since apply set it to {} (now {}); restoring it anyway",
        ch.name,
        Value::new(Scope::Postgres, &ch.name, applied.clone()),
        now.display()
    );
}

/// The servers to roll back: those on the command line (with passwords),
/// else the snapshot's own URLs when they need none; a Redis at another
/// address than the snapshot's is refused.
fn rollback_targets(args: &ApplyArgs, snap: &Snapshot) -> Result<(Option<Target>, Option<Target>)> {
    let given = if args.args.is_empty() {
        conn::env_targets()?
    } else {
        args.args
            .iter()
            .map(|a| conn::parse_target(a))
            .collect::<Result<Vec<_>>>()?
    };
    let pick = |want_pg: bool, recorded: Option<&str>| -> Result<Option<Target>> {
        let Some(u) = recorded else {
            return Ok(None);
        };
        if let Some(t) = given
            .iter()
            .find(|t| matches!(t, Target::Postgres { .. }) == want_pg)
        {
            return Ok(Some(t.clone()));
        }
        if !u.contains("***") && !u.contains("(from") {
            return conn::parse_target(u).map(Some);
        }
        Err(Error::plain(
            format!("the snapshot was taken from {u}; give that server's URL with its password"),
            "dbtune apply --rollback SNAPSHOT --yes postgres://user:password@host/db",
        )
        .into())
    };
    let pg_t = pick(true, snap.postgres.as_ref().map(|p| p.target.as_str()))?;
    let redis_t = pick(false, snap.redis.as_ref().map(|r| r.target.as_str()))?;
    if let (Some(r), Some(rt)) = (&snap.redis, &redis_t) {
        let hp = host_port(rt);
        if !r.host_port.is_empty() && r.host_port != hp {
            return Err(Error::plain(
                format!(
                    "the snapshot's Redis changes were made on {}, not {hp}; nothing was changed",
                    r.host_port
                ),
                "give the URL of the server the snapshot was taken from",
            )
            .into());
        }
    }
    Ok((pg_t, redis_t))
}

/// What a rollback restores, one line per setting.
struct RollbackPlan<'a>(&'a Snapshot);

impl fmt::Display for RollbackPlan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.postgres.iter().flat_map(|p| &p.changes) {
            match &c.previous_auto_conf {
                Some(v) => writeln!(f, "postgres  {}: ALTER SYSTEM SET back to {v}", c.name)?,
                None => writeln!(
                    f,
                    "postgres  {}: ALTER SYSTEM RESET (was {} from outside postgresql.auto.conf)",
                    c.name, c.previous_setting
                )?,
            }
        }
        for c in self.0.redis.iter().flat_map(|r| &r.changes) {
            writeln!(f, "redis     {}: CONFIG SET back to {}", c.name, c.previous)?;
        }
        Ok(())
    }
}

/// The server is the cluster the snapshot was taken from (whatever address
/// it was reached at), and the role may change it.
fn same_cluster(p: &PgSnapshot, s: &PgState) -> Result<()> {
    match (&p.system_identifier, &s.system_identifier) {
        (Some(want), Some(have)) if want == have => {}
        (Some(want), Some(have)) => {
            return Err(Error::plain(
                format!(
                    "{} is cluster {have}, but the snapshot was taken from cluster {want} ({}); nothing was changed",
                    s.target, p.host_port
                ),
                "give the URL of the server the snapshot was taken from",
            )
            .into())
        }
        (None, _) => {
            return Err(Error::plain(
                "the snapshot does not record which cluster it was taken from; nothing was changed",
                "it was written by an older dbtune: restore its values by hand with ALTER SYSTEM",
            )
            .into())
        }
        (Some(_), None) => {
            return Err(Error::plain(
                format!("cannot read the system identifier of {}; nothing was changed", s.target),
                "roll back as a superuser",
            )
            .into())
        }
    }
    if !s.superuser {
        return Err(Error::plain(
            format!("PostgreSQL user `{}` is not a superuser", s.user),
            "roll back as a superuser",
        )
        .into());
    }
    Ok(())
}

/// Which rolled-back parameters PostgreSQL marks as waiting for a
/// restart, and why that is not a failure (empty when none).
fn pending_after_rollback(snap: &Snapshot, now: &PgState) -> String {
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
    if pending.is_empty() {
        return String::new();
    }
    format!(
        "note: PostgreSQL marks {} as waiting for a restart: it does so for any restart-only parameter \
         removed from its files, even when the value does not change\n",
        pending.join(", ")
    )
}
