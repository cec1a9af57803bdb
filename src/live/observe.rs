//! `observe`: what PostgreSQL, Redis and PgBouncer did over a window. Two
//! reads of each server's cumulative counters (at the start and the end)
//! and samples in between for the peaks; read-only, bounded in time, and
//! written as an [`Observation`] with no secret in it. What the role may
//! not read, or the release does not have, is said, never guessed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use tokio_postgres::SimpleQueryMessage;

use super::conn;
use super::servers::*;
use super::state::{pg_query, pg_state, redis_state, timed};
use super::Target;
use crate::cli::ObserveArgs;
use crate::console;
use crate::error::Error;
use crate::note;
use crate::observation::*;
use crate::secret;
use crate::service::Scope;

/// Fields of a counter row that are not counters: identifiers, gauges,
/// and per-statement extremes that can go down without a reset.
fn is_counter(name: &str) -> bool {
    !matches!(
        name,
        "datid" | "numbackends" | "userid" | "dbid" | "queryid" | "op_bytes" | "toplevel"
    ) && !["min_", "max_", "mean_", "stddev_", "avg_"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn counters_only(mut s: Snapshot) -> Snapshot {
    s.values.retain(|k, _| is_counter(k));
    s
}

/// Redis INFO fields that only grow (until a restart or CONFIG RESETSTAT).
const REDIS_COUNTERS: &[&str] = &[
    "total_connections_received",
    "total_commands_processed",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "rejected_connections",
    "expired_keys",
    "evicted_keys",
    "evicted_clients",
    "keyspace_hits",
    "keyspace_misses",
    "total_forks",
    "total_error_replies",
    "total_eviction_exceeded_time",
    "sync_full",
    "sync_partial_ok",
    "sync_partial_err",
    "client_query_buffer_limit_disconnections",
    "client_output_buffer_limit_disconnections",
];

/// Redis INFO fields read once at the end.
const REDIS_GAUGES: &[&str] = &[
    "used_memory",
    "used_memory_rss",
    "used_memory_peak",
    "maxmemory",
    "mem_fragmentation_ratio",
    "latest_fork_usec",
    "rdb_last_cow_size",
    "aof_last_cow_size",
    "rdb_changes_since_last_save",
    "connected_clients",
];

/// The servers to observe: at most one of each kind.
#[derive(Default)]
struct Targets {
    pg: Option<Target>,
    redis: Option<Target>,
    bouncer: Option<Target>,
}

/// `pgbouncer://user@host:port` is PgBouncer's admin console (database
/// `pgbouncer`); so is a postgres:// URL whose database is `pgbouncer`.
fn parse_targets(args: &[String]) -> Result<Targets> {
    let list = if args.is_empty() {
        conn::env_targets()?
    } else {
        let mut v = Vec::new();
        for a in args {
            v.push(match a.strip_prefix("pgbouncer://") {
                Some(rest) => {
                    let path_at = rest.find(['/', '?']);
                    let url = match path_at.map(|i| (&rest[..i], &rest[i..])) {
                        Some((hp, tail)) if tail.starts_with('/') => {
                            format!("postgres://{hp}{tail}")
                        }
                        Some((hp, tail)) => format!("postgres://{hp}/pgbouncer{tail}"),
                        None => format!("postgres://{rest}/pgbouncer"),
                    };
                    conn::parse_target(&url)?
                }
                None => conn::parse_target(a)?,
            });
        }
        v
    };
    let mut t = Targets::default();
    for target in list {
        let slot = match &target {
            Target::Postgres { config, .. } if config.get_dbname() == Some("pgbouncer") => {
                &mut t.bouncer
            }
            Target::Postgres { .. } => &mut t.pg,
            Target::Redis { .. } => &mut t.redis,
        };
        if let Some(prev) = slot.as_ref() {
            return Err(Error::plain(
                format!(
                    "two servers of one kind: {} and {}",
                    prev.shown(),
                    target.shown()
                ),
                "observe one host at a time",
            )
            .into());
        }
        *slot = Some(target);
    }
    if t.pg.is_none() && t.redis.is_none() && t.bouncer.is_none() {
        return Err(Error::plain(
            "no server to observe",
            "give postgres://..., redis://... and pgbouncer://user@host:6432 URLs, or set \
             PGHOST/PGUSER/... and REDIS_URL",
        )
        .into());
    }
    Ok(t)
}

async fn connect_pg(t: &Target, timeout: Duration) -> Result<tokio_postgres::Client> {
    match t {
        Target::Postgres {
            config,
            tls,
            root_cert,
            shown,
        } => conn::connect_postgres(config, *tls, root_cert.as_deref(), shown, timeout).await,
        Target::Redis { .. } => Err(anyhow!("not a PostgreSQL target")),
    }
}

pub fn observe(args: ObserveArgs) -> Result<ExitCode> {
    let targets = parse_targets(&args.targets)?;
    if let Some(out) = &args.out {
        if std::fs::symlink_metadata(out).is_ok() {
            return Err(Error::plain(
                format!(
                    "`{}` already exists: an observation is never written over",
                    out.display()
                ),
                "name a new file",
            )
            .into());
        }
    }
    let obs = collect(&targets, &args)?;
    let text = serde_json::to_string_pretty(&obs)? + "\n";
    match &args.out {
        Some(out) => {
            write_new(out, text.as_bytes())?;
            note!("wrote {}", out.display());
        }
        None => console::print(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Observes the servers `args` name over its window (advise's first step
/// when it is given URLs).
pub fn observe_for(args: &ObserveArgs) -> Result<Observation> {
    collect(&parse_targets(&args.targets)?, args)
}

fn collect(targets: &Targets, args: &ObserveArgs) -> Result<Observation> {
    let t = Duration::from_secs(args.live.timeout);
    let window = Duration::from_secs(args.seconds);
    let interval = Duration::from_secs(args.interval);
    let rt = runtime()?;
    let obs = rt.block_on(run(targets, args, window, interval, t))?;
    summarize(&obs);
    Ok(obs)
}

/// Writes `out` as a new file (never over one that appeared meanwhile).
fn write_new(out: &Path, data: &[u8]) -> Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("`{}` is not a file name", out.display()))?;
    crate::atomic::create_new(
        dir,
        ".dbtune-observation-",
        std::iter::once(name.to_string()),
        data,
        0o644,
    )
    .with_context(|| format!("cannot write `{}`", out.display()))?;
    Ok(())
}

async fn run(
    targets: &Targets,
    args: &ObserveArgs,
    window: Duration,
    interval: Duration,
    t: Duration,
) -> Result<Observation> {
    let mut pg = match &targets.pg {
        Some(target) => Some(PgReader::connect(target, t).await?),
        None => None,
    };
    let mut redis = match &targets.redis {
        Some(Target::Redis { url, shown }) => Some(RedisReader::connect(url, shown, t).await?),
        _ => None,
    };
    let mut bouncer = match &targets.bouncer {
        Some(target) => Some(BouncerReader::connect(target, t).await?),
        None => None,
    };
    let host = observed_host(targets, pg.as_ref(), args)?;
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = Instant::now();
    if let Some(p) = pg.as_mut() {
        p.before = Some(p.snapshot(t).await?);
    }
    if let Some(r) = redis.as_mut() {
        r.before = Some(r.info(t).await?);
    }
    if let Some(b) = bouncer.as_mut() {
        b.before = Some(b.stats(t).await?);
    }
    note!(
        "observing for {} s (first read done; peaks every {} s)",
        window.as_secs(),
        interval.as_secs()
    );
    let mut samples = 0u32;
    loop {
        if let Some(p) = pg.as_mut() {
            p.sample(t).await;
        }
        if let Some(r) = redis.as_mut() {
            r.sample(t).await;
        }
        if let Some(b) = bouncer.as_mut() {
            b.sample(t).await;
        }
        samples += 1;
        let elapsed = start.elapsed();
        if elapsed >= window {
            break;
        }
        tokio::time::sleep(interval.min(window - elapsed)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Observation {
        schema: SCHEMA,
        dbtune: env!("CARGO_PKG_VERSION").to_string(),
        started_unix,
        seconds,
        samples,
        host,
        postgres: match (pg, &targets.pg) {
            (Some(p), Some(target)) => Some(p.finish(target, seconds, t).await?),
            _ => None,
        },
        redis: match redis {
            Some(r) => Some(r.finish(seconds, t).await?),
            None => None,
        },
        pgbouncer: match bouncer {
            Some(b) => Some(b.finish(seconds, t).await?),
            None => None,
        },
    })
}

/// The host, resolved as inspect resolves it: flags, facts, else this
/// machine when every server runs on it.
fn observed_host(
    targets: &Targets,
    pg: Option<&PgReader>,
    args: &ObserveArgs,
) -> Result<ObservedHost> {
    let all_local = [&targets.pg, &targets.redis, &targets.bouncer]
        .into_iter()
        .flatten()
        .all(Target::is_local);
    let flags = host_flags(&args.host);
    let postgres = pg.map(|p| crate::target::LivePostgres {
        major: p.state.major,
        build: p.state.build_features(),
        release: p.state.version.clone(),
    });
    let host = crate::target::resolve(
        &flags,
        None,
        crate::target::Purpose::Live {
            all_local,
            postgres: postgres.as_ref(),
            data_dir: None,
        },
    )?;
    Ok(ObservedHost {
        ram_bytes: host.ram.value.bytes(),
        ram_source: host.ram.source.clone(),
        cpus: host.cpus.value,
        cpus_source: host.cpus.source.clone(),
    })
}

/// One read of PostgreSQL's counters.
struct PgSnap {
    /// Every database's size, summed.
    size: Option<f64>,
    started: String,
    groups: BTreeMap<String, Snapshot>,
    databases: BTreeMap<String, Snapshot>,
    /// (role, database, queryid[, toplevel]) -> counters.
    statements: BTreeMap<(String, String, String), Snapshot>,
}

struct PgReader {
    client: tokio_postgres::Client,
    state: super::PgState,
    before: Option<PgSnap>,
    peaks: Peaks,
    unavailable: Vec<Unavailable>,
    /// Whether pg_stat_statements can be read in this database.
    statements: bool,
    /// A sample failed (the server went away): sampling stops.
    broken: bool,
}

impl PgReader {
    async fn connect(target: &Target, t: Duration) -> Result<PgReader> {
        let client = connect_pg(target, t).await?;
        // observe's own queries must not show up as the host's load: a
        // server at a small work_mem would count their sorts as spills.
        // Only this session changes; it is named so people can tell it.
        timed("SET", t, async {
            client
                .batch_execute("SET work_mem = '16MB'; SET application_name = 'dbtune observe'")
                .await
                .map_err(|e| anyhow!("SET failed: {}", conn::pg_error_text(&e)))
        })
        .await?;
        // Its own queries out of pg_stat_statements where the role may say
        // so (a superuser); otherwise they are in it, and said to be.
        let untracked = client
            .batch_execute("SET pg_stat_statements.track = 'none'")
            .await
            .is_ok();
        // The settings as the server runs them: pg_settings shows this
        // session's SETs, so those rows take the value the session started
        // with (reset_val).
        let mut state = pg_state(&client, target.shown(), t).await?;
        let own = pg_query(
            &client,
            "SELECT name, reset_val FROM pg_settings WHERE source = 'session'",
            &[],
            t,
        )
        .await?;
        for row in own {
            let (name, reset): (String, Option<String>) = (row.get(0), row.get(1));
            if let Some(s) = state.settings.iter_mut().find(|s| s.name == name) {
                s.setting = reset.unwrap_or_default();
                s.source = "before observe's own SET (reset_val)".into();
                s.sourcefile = None;
                s.sourceline = None;
            }
        }
        let mut unavailable = Vec::new();
        let sees_all: bool = pg_query(
            &client,
            "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')",
            &[],
            t,
        )
        .await?
        .first()
        .is_some_and(|r| r.get(0));
        if !sees_all {
            unavailable.push(Unavailable {
                what: "other roles' sessions and statements".into(),
                why: format!(
                    "`{}` is neither a superuser nor a member of pg_read_all_stats (pg_monitor \
                     includes it): their state and statements are hidden, so the peaks count only \
                     this role's",
                    state.user
                ),
            });
        }
        if !untracked && state.get("pg_stat_statements.track").is_some() {
            unavailable.push(Unavailable {
                what: "observe's own statements left out of pg_stat_statements".into(),
                why: format!(
                    "`{}` may not set pg_stat_statements.track (superuser only): observe's own \
                     queries are among the statements, under its role",
                    state.user
                ),
            });
        }
        let mut r = PgReader {
            client,
            state,
            before: None,
            peaks: Peaks::new(),
            unavailable,
            statements: false,
            broken: false,
        };
        r.statements = r.probe_statements(t).await;
        if r.state.major < 14 {
            r.unavailable.push(Unavailable {
                what: "pg_stat_wal".into(),
                why: "PostgreSQL 13 has no pg_stat_wal (14+): WAL is the position's advance only, \
                      without records, full-page images or wal_buffers_full"
                    .into(),
            });
        }
        if r.state.major < 16 {
            r.unavailable.push(Unavailable {
                what: "pg_stat_io".into(),
                why: format!("PostgreSQL {} has no pg_stat_io (16+)", r.state.major),
            });
        }
        Ok(r)
    }

    /// Whether pg_stat_statements answers here; if not, why goes in
    /// `unavailable`.
    async fn probe_statements(&mut self, t: Duration) -> bool {
        let installed = pg_query(
            &self.client,
            "SELECT to_regclass('pg_stat_statements') IS NOT NULL",
            &[],
            t,
        )
        .await
        .ok()
        .and_then(|rows| rows.first().map(|r| r.get::<_, bool>(0)))
        .unwrap_or(false);
        let why = if !installed {
            let db = self
                .client
                .query_one("SELECT current_database()", &[])
                .await
                .map(|r| r.get::<_, String>(0))
                .unwrap_or_default();
            format!(
                "the extension is not installed in database `{db}` (CREATE EXTENSION \
                 pg_stat_statements, with it in shared_preload_libraries)"
            )
        } else {
            match pg_query(
                &self.client,
                "SELECT 1 FROM pg_stat_statements LIMIT 1",
                &[],
                t,
            )
            .await
            {
                Ok(_) => return true,
                Err(e) => format!("{e:#}"),
            }
        };
        self.unavailable.push(Unavailable {
            what: "pg_stat_statements".into(),
            why,
        });
        false
    }

    /// Rows of `sql`, each `(key, to_jsonb(row)::text)`, as snapshots.
    async fn rows(&self, sql: &str, t: Duration) -> Result<BTreeMap<String, Snapshot>> {
        let mut out = BTreeMap::new();
        for row in pg_query(&self.client, sql, &[], t).await? {
            let key: String = row.get(0);
            let json: String = row.get(1);
            let v: serde_json::Value = serde_json::from_str(&json)?;
            out.insert(key, counters_only(Snapshot::from_json(&v)));
        }
        Ok(out)
    }

    async fn snapshot(&self, t: Duration) -> Result<PgSnap> {
        let major = self.state.major;
        let started: String = pg_query(
            &self.client,
            "SELECT pg_postmaster_start_time()::text",
            &[],
            t,
        )
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or_default();
        let mut groups = BTreeMap::new();
        let one = "SELECT '', to_jsonb(s)::text FROM";
        groups.extend(
            self.rows(&format!("{one} pg_stat_bgwriter s"), t)
                .await?
                .into_values()
                .map(|s| ("bgwriter".to_string(), s)),
        );
        if major >= 17 {
            groups.extend(
                self.rows(&format!("{one} pg_stat_checkpointer s"), t)
                    .await?
                    .into_values()
                    .map(|s| ("checkpointer".to_string(), s)),
            );
        }
        let mut wal = if major >= 14 {
            self.rows(&format!("{one} pg_stat_wal s"), t)
                .await?
                .into_values()
                .next()
                .unwrap_or_default()
        } else {
            Snapshot::default()
        };
        // The WAL position on every major (none on a standby).
        if let Some(pos) = pg_query(
            &self.client,
            "SELECT CASE WHEN pg_is_in_recovery() THEN NULL \
             ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 END",
            &[],
            t,
        )
        .await?
        .first()
        .and_then(|r| r.get::<_, Option<f64>>(0))
        {
            wal.values.insert("wal_position_bytes".into(), pos);
        }
        groups.insert("wal".into(), wal);
        if major >= 16 {
            for (k, s) in self
                .rows(
                    "SELECT backend_type || '/' || object || '/' || context, to_jsonb(i)::text \
                     FROM pg_stat_io i",
                    t,
                )
                .await?
            {
                groups.insert(format!("io {k}"), s);
            }
        }
        let databases = self
            .rows(
                "SELECT datname, to_jsonb(d)::text FROM pg_stat_database d WHERE datname IS NOT NULL",
                t,
            )
            .await?;
        // The sum over every database, the "database" group, is made from
        // each database's own counters at the end of the window
        // (`Counters::sum`): whether one was reset is a question for each.
        let mut size = None;
        // The databases' growth: before PostgreSQL 16 a block added to a
        // relation counts as a block read (blks_read), so advice needs it
        // to tell reads that missed the cache from a table growing.
        if let Some(bytes) = pg_query(
            &self.client,
            "SELECT sum(pg_database_size(oid))::float8 FROM pg_database WHERE datallowconn",
            &[],
            t,
        )
        .await
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.get::<_, Option<f64>>(0)))
        {
            size = Some(bytes);
        }
        let mut statements = BTreeMap::new();
        if self.statements {
            let rows = pg_query(
                &self.client,
                "SELECT coalesce(r.rolname, s.userid::text), coalesce(d.datname, s.dbid::text), \
                 s.queryid::text || coalesce('/' || (to_jsonb(s) ->> 'toplevel'), ''), \
                 (to_jsonb(s) - 'query')::text \
                 FROM pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid \
                 LEFT JOIN pg_database d ON d.oid = s.dbid WHERE s.queryid IS NOT NULL",
                &[],
                t,
            )
            .await?;
            for row in rows {
                let v: serde_json::Value = serde_json::from_str(row.get::<_, &str>(3))?;
                statements.insert(
                    (row.get(0), row.get(1), row.get(2)),
                    counters_only(Snapshot::from_json(&v)),
                );
            }
        }
        Ok(PgSnap {
            size,
            started,
            groups,
            databases,
            statements,
        })
    }

    async fn sample(&mut self, t: Duration) {
        if self.broken {
            return;
        }
        let sql = "SELECT count(*)::float8, \
                   count(*) FILTER (WHERE state = 'active')::float8, \
                   count(*) FILTER (WHERE state LIKE 'idle in transaction%')::float8, \
                   count(*) FILTER (WHERE wait_event_type = 'Lock')::float8, \
                   coalesce(max(extract(epoch FROM now() - state_change)) \
                     FILTER (WHERE state LIKE 'idle in transaction%'), 0)::float8 \
                   FROM pg_stat_activity \
                   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()";
        match pg_query(&self.client, sql, &[], t).await {
            Ok(rows) => {
                if let Some(r) = rows.first() {
                    sample(
                        &mut self.peaks,
                        &[
                            ("client_backends", r.get(0)),
                            ("active", r.get(1)),
                            ("idle_in_transaction", r.get(2)),
                            ("waiting_on_locks", r.get(3)),
                            ("longest_idle_in_transaction_seconds", r.get(4)),
                        ],
                    );
                }
            }
            Err(_) => self.broken = true,
        }
    }

    async fn gauges(&mut self, t: Duration) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let queries: [(&str, &str); 4] = [
            (
                "database_bytes",
                "SELECT sum(pg_database_size(oid))::float8 FROM pg_database WHERE datallowconn",
            ),
            (
                "oldest_xid_age",
                "SELECT max(age(datfrozenxid))::float8 FROM pg_database",
            ),
            (
                "dead_tuples",
                "SELECT coalesce(sum(n_dead_tup), 0)::float8 FROM pg_stat_user_tables",
            ),
            (
                "live_tuples",
                "SELECT coalesce(sum(n_live_tup), 0)::float8 FROM pg_stat_user_tables",
            ),
        ];
        for (name, sql) in queries {
            match pg_query(&self.client, sql, &[], t).await {
                Ok(rows) => {
                    if let Some(v) = rows.first().and_then(|r| r.get::<_, Option<f64>>(0)) {
                        out.insert(name.to_string(), v);
                    }
                }
                Err(e) => self.unavailable.push(Unavailable {
                    what: name.to_string(),
                    why: format!("{e:#}"),
                }),
            }
        }
        out
    }

    async fn finish(mut self, target: &Target, seconds: f64, t: Duration) -> Result<PgObservation> {
        let before = self.before.take().context("no first read of PostgreSQL")?;
        // A server that restarted closed our connection: connect again once
        // to tell a restart from a server that is gone.
        let after = match self.snapshot(t).await {
            Ok(s) => s,
            Err(_) => {
                self.client = connect_pg(target, t).await?;
                let _ = self
                    .client
                    .batch_execute("SET work_mem = '16MB'; SET application_name = 'dbtune observe'")
                    .await;
                let _ = self
                    .client
                    .batch_execute("SET pg_stat_statements.track = 'none'")
                    .await;
                self.snapshot(t).await?
            }
        };
        let restarted = before.started != after.started;
        let mut gauges = self.gauges(t).await;
        if let (Some(b), Some(a)) = (before.size, after.size) {
            gauges.insert("database_growth_bytes".into(), a - b);
        }
        let compare = |b: &BTreeMap<String, Snapshot>, a: &BTreeMap<String, Snapshot>| {
            a.iter()
                .map(|(k, s)| {
                    let c = match b.get(k) {
                        _ if restarted => Counters::reset(format!(
                            "the server restarted inside the window (started {} -> {})",
                            before.started, after.started
                        )),
                        Some(prev) => Counters::between(prev, s, seconds),
                        // A database created in the window counts from zero.
                        None => Counters::between(&s.zeroed(), s, seconds),
                    };
                    (k.clone(), c)
                })
                .collect::<BTreeMap<_, _>>()
        };
        let mut counters = compare(&before.groups, &after.groups);
        // pg_stat_io has dozens of rows: keep the ones that moved.
        counters.retain(|k, c| !k.starts_with("io ") || !c.is_idle());
        let databases = compare(&before.databases, &after.databases);
        counters.insert("database".into(), Counters::sum(&databases));
        let mut statements: Vec<StatementDelta> = Vec::new();
        if !restarted {
            for (key, s) in &after.statements {
                // A statement first seen in the window counts from zero.
                let prev = before
                    .statements
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| s.zeroed());
                let c = Counters::between(&prev, s, seconds);
                if c.get("calls").is_some_and(|n| n > 0.0) {
                    statements.push(StatementDelta {
                        queryid: key.2.clone(),
                        role: key.0.clone(),
                        database: key.1.clone(),
                        counters: c,
                    });
                }
            }
        }
        let time = |s: &StatementDelta| s.counters.get("total_exec_time").unwrap_or(0.0);
        statements.sort_by(|a, b| time(b).total_cmp(&time(a)));
        statements.truncate(100);
        Ok(PgObservation {
            target: self.state.target.clone(),
            version: self.state.version.clone(),
            major: self.state.major,
            build: self.state.build_features(),
            restarted,
            settings: self
                .state
                .settings
                .iter()
                .map(|s| ObservedSetting {
                    name: s.name.clone(),
                    value: secret::show(Scope::Postgres, &s.name, &s.setting),
                    unit: s.unit.clone(),
                    source: s.source.clone(),
                })
                .collect(),
            counters,
            databases,
            statements,
            peaks: self.peaks,
            gauges,
            unavailable: self.unavailable,
        })
    }
}

struct RedisReader {
    con: redis::aio::MultiplexedConnection,
    url: String,
    shown: String,
    config: BTreeMap<String, String>,
    before: Option<BTreeMap<String, String>>,
    peaks: Peaks,
    broken: bool,
}

impl RedisReader {
    async fn connect(url: &str, shown: &str, t: Duration) -> Result<RedisReader> {
        let mut con = conn::connect_redis(url, shown, t).await?;
        let state = redis_state(&mut con, shown, t).await?;
        Ok(RedisReader {
            con,
            url: url.to_string(),
            shown: shown.to_string(),
            config: state.config,
            before: None,
            peaks: Peaks::new(),
            broken: false,
        })
    }

    async fn info(&mut self, t: Duration) -> Result<BTreeMap<String, String>> {
        super::state::redis_info(&mut self.con, t).await
    }

    async fn sample(&mut self, t: Duration) {
        if self.broken {
            return;
        }
        match self.info(t).await {
            Ok(info) => {
                let num = |k: &str| {
                    info.get(k)
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0)
                };
                sample(
                    &mut self.peaks,
                    &[
                        ("used_memory", num("used_memory")),
                        ("used_memory_rss", num("used_memory_rss")),
                        ("connected_clients", num("connected_clients")),
                        ("blocked_clients", num("blocked_clients")),
                    ],
                );
            }
            Err(_) => self.broken = true,
        }
    }

    async fn finish(mut self, seconds: f64, t: Duration) -> Result<RedisObservation> {
        let before = self.before.take().context("no first read of Redis")?;
        let after = match self.info(t).await {
            Ok(i) => i,
            Err(_) => {
                self.con = conn::connect_redis(&self.url, &self.shown, t).await?;
                self.info(t).await?
            }
        };
        let restarted = before.get("run_id") != after.get("run_id");
        let pairs = |m: &BTreeMap<String, String>| {
            Snapshot::from_pairs(
                m.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                REDIS_COUNTERS,
            )
        };
        let counters = if restarted {
            Counters::reset("Redis restarted inside the window (its run_id changed)".into())
        } else {
            Counters::between(&pairs(&before), &pairs(&after), seconds)
        };
        let mut gauges: BTreeMap<String, f64> = Snapshot::from_pairs(
            after.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            REDIS_GAUGES,
        )
        .values;
        // db0:keys=12,expires=3,avg_ttl=0
        let (mut keys, mut expires) = (0.0, 0.0);
        for (k, v) in &after {
            if k.starts_with("db") && k[2..].chars().all(|c| c.is_ascii_digit()) {
                for part in v.split(',') {
                    match part.split_once('=') {
                        Some(("keys", n)) => keys += n.parse::<f64>().unwrap_or(0.0),
                        Some(("expires", n)) => expires += n.parse::<f64>().unwrap_or(0.0),
                        _ => {}
                    }
                }
            }
        }
        gauges.insert("keys".into(), keys);
        gauges.insert("keys_with_ttl".into(), expires);
        let mut unavailable = Vec::new();
        if self.config.is_empty() {
            unavailable.push(Unavailable {
                what: "CONFIG GET".into(),
                why:
                    "CONFIG is renamed or denied to this user: settings are not in the observation"
                        .into(),
            });
        }
        Ok(RedisObservation {
            target: self.shown.clone(),
            version: after.get("redis_version").cloned().unwrap_or_default(),
            restarted,
            settings: self
                .config
                .iter()
                .map(|(k, v)| ObservedSetting {
                    name: k.clone(),
                    value: secret::show(Scope::Redis, k, v),
                    unit: None,
                    source: "CONFIG GET".into(),
                })
                .collect(),
            counters,
            peaks: self.peaks,
            gauges,
            unavailable,
        })
    }
}

struct BouncerReader {
    client: tokio_postgres::Client,
    shown: String,
    version: String,
    settings: Vec<ObservedSetting>,
    before: Option<BTreeMap<String, Snapshot>>,
    peaks: Peaks,
    broken: bool,
}

/// Rows of an admin console command, each as column -> text.
async fn show(
    c: &tokio_postgres::Client,
    what: &str,
    t: Duration,
) -> Result<Vec<BTreeMap<String, String>>> {
    let messages = timed(what, t, async {
        c.simple_query(what)
            .await
            .map_err(|e| anyhow!("{what} failed: {}", conn::pg_error_text(&e)))
    })
    .await?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), r.get(i).unwrap_or("").to_string()))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

impl BouncerReader {
    async fn connect(target: &Target, t: Duration) -> Result<BouncerReader> {
        let client = connect_pg(target, t).await?;
        let version = show(&client, "SHOW VERSION", t)
            .await?
            .first()
            .and_then(|r| r.values().next().cloned())
            .unwrap_or_default();
        let settings = show(&client, "SHOW CONFIG", t)
            .await?
            .iter()
            .filter_map(|r| {
                let key = r.get("key")?;
                Some(ObservedSetting {
                    name: key.clone(),
                    value: secret::show(Scope::Pgbouncer, key, r.get("value")?),
                    unit: None,
                    source: "SHOW CONFIG".into(),
                })
            })
            .collect();
        Ok(BouncerReader {
            client,
            shown: target.shown().to_string(),
            version,
            settings,
            before: None,
            peaks: Peaks::new(),
            broken: false,
        })
    }

    async fn stats(&self, t: Duration) -> Result<BTreeMap<String, Snapshot>> {
        Ok(show(&self.client, "SHOW STATS", t)
            .await?
            .into_iter()
            .filter_map(|r| {
                let db = r.get("database")?.clone();
                let mut s = Snapshot::default();
                for (k, v) in &r {
                    if k.starts_with("total_") {
                        if let Ok(n) = v.parse::<f64>() {
                            s.values.insert(k.clone(), n);
                        }
                    }
                }
                Some((db, s))
            })
            .collect())
    }

    async fn sample(&mut self, t: Duration) {
        if self.broken {
            return;
        }
        match show(&self.client, "SHOW POOLS", t).await {
            Ok(pools) => {
                let num = |r: &BTreeMap<String, String>, k: &str| {
                    r.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
                };
                let sum = |k: &str| pools.iter().map(|r| num(r, k)).sum::<f64>();
                let wait = pools
                    .iter()
                    .map(|r| num(r, "maxwait") + num(r, "maxwait_us") / 1e6)
                    .fold(0.0, f64::max);
                sample(
                    &mut self.peaks,
                    &[
                        ("clients_active", sum("cl_active")),
                        ("clients_waiting", sum("cl_waiting")),
                        ("servers_active", sum("sv_active")),
                        ("longest_wait_seconds", wait),
                    ],
                );
            }
            Err(_) => self.broken = true,
        }
    }

    async fn finish(mut self, seconds: f64, t: Duration) -> Result<BouncerObservation> {
        let before = self.before.take().context("no first read of PgBouncer")?;
        let mut unavailable = Vec::new();
        let period = self
            .settings
            .iter()
            .find(|s| s.name == "stats_period")
            .and_then(|s| s.value.parse::<f64>().ok())
            .unwrap_or(60.0);
        if period * 2.0 > seconds {
            unavailable.push(Unavailable {
                what: "SHOW STATS totals over the window".into(),
                why: format!(
                    "PgBouncer updates them every stats_period ({period} s): over a {seconds:.0} s \
                     window they lag by up to that much; observe for several periods"
                ),
            });
        }
        let after = self.stats(t).await?;
        let databases = after
            .iter()
            .map(|(db, s)| {
                let c = match before.get(db) {
                    Some(b) => Counters::between(b, s, seconds),
                    // A pool first used in the window: its totals start there.
                    None => Counters::between(&s.zeroed(), s, seconds),
                };
                (db.clone(), c)
            })
            .collect();
        Ok(BouncerObservation {
            target: self.shown,
            version: self.version,
            settings: self.settings,
            databases,
            peaks: self.peaks,
            unavailable,
        })
    }
}

/// What the window showed, in a few lines on stderr.
fn summarize(o: &Observation) {
    note!("observed {:.1} s ({} samples)", o.seconds, o.samples);
    if let Some(p) = &o.postgres {
        let db = p.counters.get("database");
        let get = |k: &str| db.and_then(|c| c.get(k)).unwrap_or(0.0);
        let peak = |k: &str| p.peaks.get(k).map_or(0.0, |x| x.max);
        match db.and_then(|c| c.reset.as_deref()) {
            Some(why) => note!("postgres {}: no deltas: {why}", p.version),
            None => note!(
                "postgres {}: {:.0} commits, {:.0} temp files ({} bytes), {:.0} blocks read; peak {:.0} \
                 client backends, {:.0} active",
                p.version,
                get("xact_commit"),
                get("temp_files"),
                get("temp_bytes"),
                get("blks_read"),
                peak("client_backends"),
                peak("active")
            ),
        }
        for u in &p.unavailable {
            note!("postgres: not read: {}: {}", u.what, u.why);
        }
    }
    if let Some(r) = &o.redis {
        match &r.counters.reset {
            Some(why) => note!("redis {}: no deltas: {why}", r.version),
            None => note!(
                "redis {}: {:.0} commands, {:.0} hits, {:.0} misses, {:.0} evicted; peak used memory {:.0} bytes",
                r.version,
                r.counters.get("total_commands_processed").unwrap_or(0.0),
                r.counters.get("keyspace_hits").unwrap_or(0.0),
                r.counters.get("keyspace_misses").unwrap_or(0.0),
                r.counters.get("evicted_keys").unwrap_or(0.0),
                r.peaks.get("used_memory").map_or(0.0, |x| x.max)
            ),
        }
        for u in &r.unavailable {
            note!("redis: not read: {}: {}", u.what, u.why);
        }
    }
    if let Some(b) = &o.pgbouncer {
        let peak = |k: &str| b.peaks.get(k).map_or(0.0, |x| x.max);
        note!(
            "pgbouncer {}: peak {:.0} clients active, {:.0} waiting (longest wait {:.1} s)",
            b.version,
            peak("clients_active"),
            peak("clients_waiting"),
            peak("longest_wait_seconds")
        );
        for u in &b.unavailable {
            note!("pgbouncer: not read: {}: {}", u.what, u.why);
        }
    }
}
