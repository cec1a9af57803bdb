//! Advice from an observation: each rule reads what the host did
//! (`observation`), proposes a setting with the evidence and the threshold
//! it crossed, and every proposal is judged by the same budget check-budget
//! uses. A raise that does not fit for every connection is scoped to the
//! role that needs it, or takes its room from a setting the observation
//! shows is oversized, and says which. Pure: no I/O.
//!
//! docs/advise.md documents each rule, its threshold and why.

use std::fmt;

use serde::Serialize;

use crate::observation::{Observation, ObservedSetting};
use crate::read::report::{self, Level};
use crate::read::settings::{HostSettings, Location, ServiceSettings};
use crate::service::Scope;
use crate::target::Host;
use crate::units::ByteSize;
use crate::version::PgVersion;

/// One proposed change, with why.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Proposal {
    pub service: Scope,
    pub setting: String,
    pub current: String,
    pub proposed: String,
    /// Where it is set: `system` (ALTER SYSTEM, CONFIG SET, the ini),
    /// `role NAME` (ALTER ROLE ... SET) or `database NAME`.
    pub applies_to: String,
    /// The rule's name (docs/advise.md).
    pub rule: &'static str,
    /// The counters, the window, the rate and the threshold crossed.
    pub evidence: String,
    /// Whether the server must restart for it.
    pub restart: bool,
    /// Where the memory for a raise comes from, when the budget needed
    /// room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<9} {} = {}  (now {}; {}{}) [{}]",
            self.service.name(),
            self.setting,
            self.proposed,
            self.current,
            self.applies_to,
            if self.restart {
                ", needs a restart"
            } else {
                ""
            },
            self.rule
        )?;
        write!(f, "  evidence: {}", self.evidence)?;
        if let Some(r) = &self.room {
            write!(f, "\n  room: {r}")?;
        }
        Ok(())
    }
}

/// What advise says: the proposals, what it could not judge and why, and
/// the budget before and after the system-wide ones.
#[derive(Clone, Debug, Serialize)]
pub struct Advice {
    pub schema: u32,
    pub advice: Vec<Proposal>,
    pub notes: Vec<String>,
    pub budget: BudgetChange,
}

#[derive(Clone, Debug, Serialize)]
pub struct BudgetChange {
    pub ram: ByteSize,
    /// The total at the default gate (check-budget's busy level).
    pub before: ByteSize,
    pub after: ByteSize,
    pub level: Level,
}

/// The observed settings as the read side reads files, with `changes`
/// (scope, name, value) applied.
fn settings(obs: &Observation, changes: &[(Scope, String, String)]) -> HostSettings {
    let service = |scope: Scope, list: &[ObservedSetting], prefix: &str| {
        let mut s = ServiceSettings {
            files: vec![format!("observed {}", scope.name())],
            ..Default::default()
        };
        for x in list {
            let name = format!("{prefix}{}", x.name.to_ascii_lowercase());
            let value = changes
                .iter()
                .find(|(sc, n, _)| *sc == scope && format!("{prefix}{n}") == name)
                .map_or_else(|| x.value.clone(), |(_, _, v)| v.clone());
            s.push(
                &name,
                value,
                Location {
                    file: format!("observed {} ({})", scope.name(), x.source),
                    line: 0,
                },
            );
        }
        s
    };
    HostSettings {
        pg_version: obs
            .postgres
            .as_ref()
            .map_or(PgVersion::DEFAULT, |p| PgVersion::nearest(p.major)),
        pg_build: obs.postgres.as_ref().map(|p| p.build.clone()),
        pg_release: obs.postgres.as_ref().map(|p| p.version.clone()),
        postgres: obs
            .postgres
            .as_ref()
            .map(|p| service(Scope::Postgres, &p.settings, "")),
        redis: obs
            .redis
            .as_ref()
            .map(|r| service(Scope::Redis, &r.settings, "")),
        pgbouncer: obs
            .pgbouncer
            .as_ref()
            .map(|b| service(Scope::Pgbouncer, &b.settings, "pgbouncer.")),
        ..Default::default()
    }
}

/// The total at the default gate with `changes`, and whether it fits.
fn judge(obs: &Observation, host: &Host, changes: &[(Scope, String, String)]) -> (ByteSize, bool) {
    let r = report::check_running(&settings(obs, changes), host).at_level(Level::Busy);
    (r.level_total(Level::Busy), r.level_fits(Level::Busy))
}

fn pg_setting<'a>(obs: &'a Observation, name: &str) -> Option<&'a ObservedSetting> {
    obs.postgres
        .as_ref()?
        .settings
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
}

/// A PostgreSQL setting in bytes (its unit applied).
fn pg_bytes(obs: &Observation, name: &str) -> Option<f64> {
    let s = pg_setting(obs, name)?;
    let n: f64 = s.value.parse().ok()?;
    let unit = match s.unit.as_deref() {
        Some("8kB") => 8192.0,
        Some(u) => crate::read::pgvalue::memory_unit_bytes(u)?,
        None => 1.0,
    };
    Some(n * unit)
}

/// A PostgreSQL setting in seconds.
fn pg_seconds(obs: &Observation, name: &str) -> Option<f64> {
    let s = pg_setting(obs, name)?;
    let n: f64 = s.value.parse().ok()?;
    Some(
        n * match s.unit.as_deref() {
            Some("ms") => 0.001,
            Some("min") => 60.0,
            Some("h") => 3600.0,
            _ => 1.0,
        },
    )
}

fn pg_number(obs: &Observation, name: &str) -> Option<f64> {
    pg_setting(obs, name)?.value.parse().ok()
}

/// max_connections kept when unused ones are the room: twice the peak
/// seen, at least 10 above it, at least 20.
fn connections_kept(peak: f64) -> f64 {
    (peak * 2.0).max(peak + 10.0).max(20.0).ceil()
}

/// The largest max_wal_size advise proposes (see `checkpoints`).
const MAX_WAL_SIZE_CAP: ByteSize = ByteSize::gib(16);

/// The next power of two at or above `bytes`, in whole MiB at least.
fn round_up_mib(bytes: f64) -> ByteSize {
    let mib = (bytes / 1048576.0).ceil().max(1.0) as u64;
    ByteSize::mib(mib.next_power_of_two())
}

fn mib(bytes: f64) -> String {
    ByteSize(bytes.max(0.0) as u64).to_string()
}

/// Every rule over `obs`, each proposal judged by the budget of `host`.
pub fn advise(obs: &Observation, host: &Host) -> Advice {
    let mut advice = Vec::new();
    let mut notes = Vec::new();
    checkpoints(obs, host, &mut advice, &mut notes);
    wal_buffers(obs, &mut advice);
    commit_flushes(obs, &mut advice, &mut notes);
    jit_overhead(obs, &mut advice);
    cache_hits(obs, host, &mut advice, &mut notes);
    temp_spills(obs, host, &mut advice, &mut notes);
    redis_evictions(obs, host, &mut advice, &mut notes);
    pgbouncer_waiting(obs, &mut advice, &mut notes);
    connections_over_budget(obs, host, &mut advice, &mut notes);
    idle_in_transaction(obs, &mut advice);
    autovacuum(obs, &mut advice, &mut notes);
    connections_near_limit(obs, host, &mut advice, &mut notes);
    shared_buffers_oversized(obs, host, &mut advice);
    redis_fragmentation(obs, &mut advice);
    redis_fork(obs, &mut notes);
    let (before, _) = judge(obs, host, &[]);
    let system: Vec<(Scope, String, String)> = advice
        .iter()
        .filter(|p| p.applies_to == "system")
        .map(|p| (p.service, p.setting.clone(), raw_value(p)))
        .collect();
    let (after, _) = judge(obs, host, &system);
    Advice {
        schema: 1,
        advice,
        notes,
        budget: BudgetChange {
            ram: host.ram.value,
            before,
            after,
            level: Level::Busy,
        },
    }
}

/// A proposal's value as the read side reads a file's (`64MB`, `3`).
fn raw_value(p: &Proposal) -> String {
    p.proposed.clone()
}

/// Checkpoints requested by WAL volume rather than by time: max_wal_size
/// sized from the observed WAL rate. PostgreSQL starts a checkpoint when
/// the WAL since the last one reaches max_wal_size / (1 +
/// checkpoint_completion_target) (xlog.c, CalculateCheckpointSegments), so
/// one checkpoint_timeout of WAL at the observed rate needs max_wal_size
/// of at least that times (1 + checkpoint_completion_target).
fn checkpoints(obs: &Observation, host: &Host, out: &mut Vec<Proposal>, notes: &mut Vec<String>) {
    let Some(p) = &obs.postgres else { return };
    let wal = p.counters.get("wal");
    let rate = wal
        .and_then(|c| {
            c.per_second
                .get("wal_bytes")
                .or(c.per_second.get("wal_position_bytes"))
        })
        .copied();
    let (Some(rate), Some(max_wal), Some(timeout)) = (
        rate,
        pg_bytes(obs, "max_wal_size"),
        pg_seconds(obs, "checkpoint_timeout"),
    ) else {
        if wal.is_some_and(|c| c.reset.is_some()) {
            notes.push("checkpoints: no WAL rate (the counters were reset in the window)".into());
        }
        return;
    };
    let cct = pg_number(obs, "checkpoint_completion_target").unwrap_or(0.9);
    let (req, timed) = match (p.counters.get("checkpointer"), p.counters.get("bgwriter")) {
        (Some(c), _) if c.get("num_requested").is_some() => (
            c.get("num_requested").unwrap_or(0.0),
            c.get("num_timed").unwrap_or(0.0),
        ),
        (_, Some(b)) => (
            b.get("checkpoints_req").unwrap_or(0.0),
            b.get("checkpoints_timed").unwrap_or(0.0),
        ),
        _ => (0.0, 0.0),
    };
    let per_cycle = rate * timeout;
    let trigger = max_wal / (1.0 + cct);
    if per_cycle <= trigger && req == 0.0 {
        return;
    }
    let need = per_cycle * (1.0 + cct);
    // pg_wal may grow past max_wal_size, and a full disk stops PostgreSQL:
    // the proposal stops at 16 GB (PGTune's largest), and at a tenth of
    // pg_wal's filesystem where the host's facts give its size (render's
    // own cap); otherwise the evidence says to check the disk.
    let space = host.wal_space.as_ref();
    let cap = space.map_or(MAX_WAL_SIZE_CAP, |w| {
        MAX_WAL_SIZE_CAP.min(crate::plan::postgres::wal_space_cap(w.value))
    });
    let proposed = round_up_mib(need).min(cap);
    if (proposed.bytes() as f64) <= max_wal {
        // Requested checkpoints at a rate max_wal_size already covers:
        // something else asked for them (CHECKPOINT, a base backup).
        notes.push(format!(
            "checkpoints: {req:.0} requested, but {} of WAL per checkpoint_timeout fits \
             max_wal_size {}: requested by something other than WAL volume",
            mib(per_cycle),
            mib(max_wal)
        ));
        return;
    }
    out.push(Proposal {
        service: Scope::Postgres,
        setting: "max_wal_size".into(),
        current: ByteSize(max_wal as u64).pg(),
        proposed: proposed.pg(),
        applies_to: "system".into(),
        rule: "checkpoints-by-wal-volume",
        evidence: format!(
            "{req:.0} checkpoint(s) requested and {timed:.0} timed in {:.0} s; WAL {}/s is {} per \
             checkpoint_timeout ({timeout:.0} s), over the {} that starts a checkpoint \
             (max_wal_size / (1 + checkpoint_completion_target {cct})); the proposal holds one \
             checkpoint_timeout of WAL, rounded up to a power of two, at most {}",
            obs.seconds,
            mib(rate),
            mib(per_cycle),
            mib(trigger),
            match space {
                Some(w) => format!(
                    "{} (a tenth of pg_wal's filesystem, {} ({}), and at most 16GB: pg_wal may grow \
                     past it, and a full disk stops the server)",
                    cap.pg(),
                    w.value,
                    w.source
                ),
                None => "16GB (pg_wal may grow past it, and a full disk stops the server: check the \
                         free space first)"
                    .to_string(),
            }
        ),
        restart: false,
        room: None,
    });
}

/// WAL written by backends because wal_buffers was full (pg_stat_wal,
/// 14+): at one a second or more, wal_buffers up to PostgreSQL's own
/// automatic size's cap (16MB: 1/32 of shared_buffers, at most one WAL
/// segment), or twice the current value when it is already there, at most
/// 64MB.
fn wal_buffers(obs: &Observation, out: &mut Vec<Proposal>) {
    let Some(p) = &obs.postgres else { return };
    let Some(full) = p
        .counters
        .get("wal")
        .and_then(|w| w.get("wal_buffers_full"))
    else {
        return;
    };
    let Some(current) = pg_bytes(obs, "wal_buffers") else {
        return;
    };
    if full < obs.seconds || current >= 64.0 * 1048576.0 {
        return;
    }
    let proposed = if current < 16.0 * 1048576.0 {
        ByteSize::mib(16)
    } else {
        round_up_mib(2.0 * current).min(ByteSize::mib(64))
    };
    out.push(Proposal {
        service: Scope::Postgres,
        setting: "wal_buffers".into(),
        current: ByteSize(current as u64).pg(),
        proposed: proposed.pg(),
        applies_to: "system".into(),
        rule: "wal-buffers-full",
        evidence: format!(
            "WAL buffers were full {full:.0} time(s) in {:.0} s (pg_stat_wal wal_buffers_full, \
             threshold one a second): each time a backend wrote WAL itself while holding the \
             write lock",
            obs.seconds
        ),
        restart: true,
        room: Some(format!(
            "{} more shared memory, inside shared_buffers' order of magnitude",
            ByteSize(proposed.bytes().saturating_sub(current as u64))
        )),
    });
}

/// The fewest WAL syncs a second worth a look (a host committing less
/// often than this has no flush to share).
const COMMIT_FLUSHES_MIN_PER_SECOND: f64 = 50.0;

/// The share of the window the WAL was being flushed from which commits
/// queue behind the flush rather than find it idle.
const COMMIT_FLUSHES_BUSY: f64 = 0.5;

/// The shortest mean flush whose half is worth waiting: a sleep under 100
/// microseconds is stretched by half or more by the kernel's timer slack
/// (50 microseconds by default).
const COMMIT_FLUSH_MIN_MS: f64 = 0.2;

/// Commits waiting on a slow WAL flush one after another: commit_delay =
/// half the mean flush, the starting point PostgreSQL's docs give, when
/// the WAL was being flushed half the window or more, each flush took 0.2
/// ms or more, and on average at least commit_siblings + 1 backends were
/// active (the delay only waits when that many others are in a
/// transaction). One flush then carries several commits; each commit
/// still waits for its own flush, so nothing is lost in a crash. The
/// flush's time counts only with track_wal_io_timing on: without it, a
/// note says to turn it on for a window.
fn commit_flushes(obs: &Observation, out: &mut Vec<Proposal>, notes: &mut Vec<String>) {
    let Some(p) = &obs.postgres else { return };
    let current = pg_number(obs, "commit_delay").unwrap_or(0.0);
    let Some((syncs, ms)) = p.wal_syncs() else {
        return;
    };
    let rate = syncs / obs.seconds;
    if current > 0.0 || rate < COMMIT_FLUSHES_MIN_PER_SECOND {
        return;
    }
    // The delay waits only while commit_siblings others are in a
    // transaction: with fewer active, nothing to judge.
    let siblings = pg_number(obs, "commit_siblings").unwrap_or(5.0);
    let active = p.peaks.get("active").map_or(0.0, |x| x.mean);
    if active < siblings + 1.0 {
        return;
    }
    let timed = pg_setting(obs, "track_wal_io_timing").is_some_and(|s| s.value == "on");
    if !timed || ms <= 0.0 {
        notes.push(format!(
            "commit-flushes: {rate:.0} WAL syncs a second with {active:.1} backends active on \
             average, but not how long the syncs took: track_wal_io_timing is off; turn it on for \
             an observation (it times each WAL write and sync) to let advise judge commit_delay"
        ));
        return;
    }
    let flush_ms = ms / syncs;
    let busy = ms / 1000.0 / obs.seconds;
    if busy < COMMIT_FLUSHES_BUSY || flush_ms < COMMIT_FLUSH_MIN_MS {
        return;
    }
    // In 10 microsecond steps, at most the server's own maximum (0.1 s).
    let delay = (((flush_ms * 1000.0 / 2.0) / 10.0).floor() * 10.0).min(100_000.0);
    let commits = p
        .counters
        .get("database")
        .and_then(|c| c.get("xact_commit"))
        .map(|n| format!(", {:.0} commits a second", n / obs.seconds))
        .unwrap_or_default();
    out.push(Proposal {
        service: Scope::Postgres,
        setting: "commit_delay".into(),
        current: format!("{current:.0}"),
        proposed: format!("{delay:.0}"),
        applies_to: "system".into(),
        rule: "commit-flushes",
        evidence: format!(
            "{rate:.0} WAL syncs a second took {flush_ms:.2} ms each: the WAL was being flushed \
             {:.0}% of the {:.0} s (threshold {:.0}%, and 0.2 ms a flush){commits}; {active:.1} \
             backends active on average (commit_siblings {siblings:.0}): commits queue behind the \
             flush. Half the mean flush, the docs' starting point, lets one flush carry several \
             commits; each still waits for its own, and a commit waits at most this long",
            busy * 100.0,
            obs.seconds,
            COMMIT_FLUSHES_BUSY * 100.0
        ),
        restart: false,
        room: None,
    });
}

/// JIT that costs more than it saves: over the statements it compiled
/// (pg_stat_statements' jit_* columns, 15+), a quarter or more of their
/// execution time went to generating, inlining, optimizing and emitting
/// code, and they are short (under a second each on average). PostgreSQL's
/// docs: JIT pays off mainly for long-running CPU-bound queries. Proposes
/// jit_above_cost ten times higher (so only queries ten times costlier
/// compile), or jit = off when it is already at 1e6 or more.
fn jit_overhead(obs: &Observation, out: &mut Vec<Proposal>) {
    let Some(p) = &obs.postgres else { return };
    let (mut jit, mut exec, mut calls) = (0.0, 0.0, 0.0);
    for s in &p.statements {
        let c = &s.counters;
        if c.get("jit_functions").unwrap_or(0.0) == 0.0 {
            continue;
        }
        jit += [
            "jit_generation_time",
            "jit_inlining_time",
            "jit_optimization_time",
            "jit_emission_time",
            "jit_deform_time",
        ]
        .iter()
        .filter_map(|k| c.get(k))
        .sum::<f64>();
        exec += c.get("total_exec_time").unwrap_or(0.0);
        calls += c.get("calls").unwrap_or(0.0);
    }
    if exec <= 0.0 || calls == 0.0 || jit / exec < 0.25 || exec / calls >= 1000.0 {
        return;
    }
    let Some(cost) = pg_number(obs, "jit_above_cost") else {
        return;
    };
    let (setting, current, proposed) = if cost < 1e6 {
        (
            "jit_above_cost",
            format!("{cost:.0}"),
            format!("{:.0}", (cost * 10.0).clamp(1e6, 1e9)),
        )
    } else {
        (
            "jit",
            pg_setting(obs, "jit").map_or("on".into(), |s| s.value.clone()),
            "off".to_string(),
        )
    };
    out.push(Proposal {
        service: Scope::Postgres,
        setting: setting.into(),
        current,
        proposed,
        applies_to: "system".into(),
        rule: "jit-overhead",
        evidence: format!(
            "{calls:.0} call(s) compiled by JIT in {:.0} s spent {jit:.1} ms in JIT of {exec:.1} ms \
             executing ({:.0}%, threshold 25%), {:.1} ms a call (short: under 1 s)",
            obs.seconds,
            100.0 * jit / exec,
            exec / calls
        ),
        restart: false,
        room: None,
    });
}

/// Reads that missed shared_buffers on a database larger than it: under
/// 99% hits with a thousand blocks read or more, shared_buffers up to the
/// data (rounded up to a power of two), as far as the budget holds it.
fn cache_hits(obs: &Observation, host: &Host, out: &mut Vec<Proposal>, notes: &mut Vec<String>) {
    let Some(p) = &obs.postgres else { return };
    let Some(db) = p.counters.get("database") else {
        return;
    };
    // Before PostgreSQL 16 a block a table grows by counts as read: take
    // the databases' growth out of the reads.
    let growth = p
        .gauges
        .get("database_growth_bytes")
        .copied()
        .unwrap_or(0.0);
    let grown = if p.major < 16 {
        growth.max(0.0) / 8192.0
    } else {
        0.0
    };
    let (hits, reads) = (
        db.get("blks_hit").unwrap_or(0.0),
        (db.get("blks_read").unwrap_or(0.0) - grown).max(0.0),
    );
    let (Some(sb), Some(size)) = (
        pg_bytes(obs, "shared_buffers"),
        p.gauges.get("database_bytes"),
    ) else {
        return;
    };
    if reads < 1000.0 || hits / (hits + reads) >= 0.99 || *size <= sb {
        return;
    }
    let ratio = hits / (hits + reads);
    let mut target = round_up_mib(*size);
    while target.bytes() as f64 > sb {
        let (_, fits) = judge(
            obs,
            host,
            &[(Scope::Postgres, "shared_buffers".into(), target.pg())],
        );
        if fits {
            out.push(Proposal {
                service: Scope::Postgres,
                setting: "shared_buffers".into(),
                current: ByteSize(sb as u64).pg(),
                proposed: target.pg(),
                applies_to: "system".into(),
                rule: "cache-misses",
                evidence: format!(
                    "{:.2}% of {:.0} block reads hit shared_buffers in {:.0} s (threshold 99%, \
                     with at least 1000 read{}), and the databases hold {} against shared_buffers {}",
                    100.0 * ratio,
                    hits + reads,
                    obs.seconds,
                    if grown > 0.0 {
                        format!(
                            "; {grown:.0} blocks the databases grew by are not counted as reads, \
                             as PostgreSQL {} counts them",
                            p.major
                        )
                    } else {
                        String::new()
                    },
                    ByteSize(*size as u64),
                    ByteSize(sb as u64)
                ),
                restart: true,
                room: Some(format!(
                    "the budget at the busy level holds it on {}",
                    host.ram.value
                )),
            });
            return;
        }
        target = ByteSize(target.bytes() / 2);
    }
    notes.push(format!(
        "cache-misses: {:.2}% hits, but no larger shared_buffers fits the budget",
        100.0 * ratio
    ));
}

/// Sorts and hashes that spill to temp files: work_mem for the role (or
/// database) whose statements spill, sized from the temp bytes per call.
/// An in-memory sort holds its tuples with headers and pointers, so it
/// needs more than the file it would write: twice the file, rounded up to
/// a power of two (tests/it/advise.rs applies it and the spill is gone).
/// For everyone only when the budget holds it for every connection.
fn temp_spills(obs: &Observation, host: &Host, out: &mut Vec<Proposal>, notes: &mut Vec<String>) {
    let Some(p) = &obs.postgres else { return };
    let Some(work_mem) = pg_bytes(obs, "work_mem") else {
        return;
    };
    // (scope, bytes per spill, evidence)
    let mut needs: Vec<(String, f64, String)> = Vec::new();
    if !p.statements.is_empty() {
        let mut by_role: std::collections::BTreeMap<&str, (f64, f64, f64)> = Default::default();
        for s in &p.statements {
            let blocks = s.counters.get("temp_blks_written").unwrap_or(0.0);
            let calls = s.counters.get("calls").unwrap_or(0.0);
            if blocks > 0.0 && calls > 0.0 {
                let e = by_role.entry(&s.role).or_default();
                e.0 = e.0.max(blocks * 8192.0 / calls);
                e.1 += calls;
                e.2 += blocks * 8192.0;
            }
        }
        for (role, (per_call, calls, bytes)) in by_role {
            needs.push((
                format!("role {role}"),
                per_call,
                format!(
                    "{calls:.0} call(s) of role {role}'s statements wrote {} of temp files in {:.0} s \
                     (pg_stat_statements temp_blks_written), up to {} per call, with work_mem {}",
                    mib(bytes),
                    obs.seconds,
                    mib(per_call),
                    mib(work_mem)
                ),
            ));
        }
    } else {
        for (db, c) in &p.databases {
            let (files, bytes) = (
                c.get("temp_files").unwrap_or(0.0),
                c.get("temp_bytes").unwrap_or(0.0),
            );
            if files > 0.0 && bytes > 0.0 {
                needs.push((
                    format!("database {db}"),
                    bytes / files,
                    format!(
                        "{files:.0} temp file(s), {} in {:.0} s in database {db} (pg_stat_database; \
                         no pg_stat_statements to tell which statements), {} per file, with work_mem {}",
                        mib(bytes),
                        obs.seconds,
                        mib(bytes / files),
                        mib(work_mem)
                    ),
                ));
            }
        }
    }
    let Some(widest) = needs.iter().map(|n| n.1).reduce(f64::max) else {
        return;
    };
    let size = |b: f64| round_up_mib((2.0 * b).max(2.0 * work_mem)).min(ByteSize::gib(2));
    // For everyone, if the budget holds the widest need at every connection.
    let global = size(widest);
    let (total, fits) = judge(
        obs,
        host,
        &[(Scope::Postgres, "work_mem".into(), global.pg())],
    );
    // The raise for everyone, with where its room came from.
    let for_everyone = |room: String| Proposal {
        service: Scope::Postgres,
        setting: "work_mem".into(),
        current: ByteSize(work_mem as u64).pg(),
        proposed: global.pg(),
        applies_to: "system".into(),
        rule: "temp-spills",
        evidence: needs
            .iter()
            .map(|n| n.2.clone())
            .collect::<Vec<_>>()
            .join("; "),
        restart: false,
        room: Some(room),
    };
    if fits {
        out.push(for_everyone(format!(
            "the budget holds it for every connection: busy level {total} of {}",
            host.ram.value
        )));
        return;
    }
    // Room from connections the window never used: max_connections down
    // to twice the peak (at least 10 above it, at least 20).
    let peak = p.peaks.get("client_backends").map_or(0.0, |x| x.max);
    if let Some(max_conn) = pg_number(obs, "max_connections") {
        let fewer = connections_kept(peak);
        if fewer < max_conn {
            let changes = [
                (Scope::Postgres, "work_mem".to_string(), global.pg()),
                (
                    Scope::Postgres,
                    "max_connections".to_string(),
                    format!("{fewer:.0}"),
                ),
            ];
            let (with_room, fits) = judge(obs, host, &changes);
            if fits {
                out.push(Proposal {
                    service: Scope::Postgres,
                    setting: "max_connections".into(),
                    current: format!("{max_conn:.0}"),
                    proposed: format!("{fewer:.0}"),
                    applies_to: "system".into(),
                    rule: "connections-unused",
                    evidence: format!(
                        "at most {peak:.0} client backend(s) at once in {:.0} s (sampled every \
                         {:.1} s) of max_connections {max_conn:.0}: the budget counts every \
                         connection's worst case; twice the peak (at least 10 more, at least 20) \
                         is kept. Observe a busy period before applying: a peak the window missed \
                         would be refused connections",
                        obs.seconds,
                        obs.seconds / f64::from(obs.samples.max(1))
                    ),
                    restart: true,
                    room: None,
                });
                out.push(for_everyone(format!(
                    "from max_connections {max_conn:.0} -> {fewer:.0} (connections-unused): the \
                     busy level is then {with_room} of {} (it would be {total} with every \
                     connection kept)",
                    host.ram.value
                )));
                return;
            }
        }
    }
    for (scope, need, evidence) in needs {
        out.push(Proposal {
            service: Scope::Postgres,
            setting: "work_mem".into(),
            current: ByteSize(work_mem as u64).pg(),
            proposed: size(need).pg(),
            applies_to: scope.clone(),
            rule: "temp-spills",
            evidence,
            restart: false,
            room: Some(format!(
                "not for every connection: at work_mem {} the busy level would be {total} of {}; \
                 only {scope}'s sessions get it (ALTER {} SET work_mem)",
                global.pg(),
                host.ram.value,
                scope.split(' ').next().unwrap_or("ROLE").to_uppercase()
            )),
        });
    }
    notes.push(
        "temp-spills: a raise for one role or database is outside the budget's work_mem term; \
         its sessions can use that much more each"
            .into(),
    );
}

/// A Redis that evicts: maxmemory up as far as the budget allows (at most
/// twice), when keys were evicted in the window and lookups missed.
fn redis_evictions(
    obs: &Observation,
    host: &Host,
    out: &mut Vec<Proposal>,
    notes: &mut Vec<String>,
) {
    let Some(r) = &obs.redis else { return };
    let evicted = r.counters.get("evicted_keys").unwrap_or(0.0);
    if evicted == 0.0 {
        return;
    }
    let Some(max) = r.gauges.get("maxmemory").copied().filter(|m| *m > 0.0) else {
        return;
    };
    let (hits, misses) = (
        r.counters.get("keyspace_hits").unwrap_or(0.0),
        r.counters.get("keyspace_misses").unwrap_or(0.0),
    );
    let hit_rate = if hits + misses > 0.0 {
        hits / (hits + misses)
    } else {
        1.0
    };
    // Twice, then less while the budget does not hold it.
    let mut proposed = None;
    for factor in [2.0, 1.5, 1.25] {
        let value = ByteSize((max * factor) as u64).floor_to(ByteSize::kib(1));
        let (_, fits) = judge(
            obs,
            host,
            &[(Scope::Redis, "maxmemory".into(), value.bytes().to_string())],
        );
        if fits {
            proposed = Some(value);
            break;
        }
    }
    let evidence = format!(
        "{evicted:.0} key(s) evicted in {:.0} s at maxmemory {} (used memory peaked at {}), hit rate \
         {:.1}%",
        obs.seconds,
        mib(max),
        mib(r.peaks.get("used_memory").map_or(0.0, |p| p.max)),
        100.0 * hit_rate
    );
    match proposed {
        Some(v) => out.push(Proposal {
            service: Scope::Redis,
            setting: "maxmemory".into(),
            current: ByteSize(max as u64).redis(),
            proposed: v.redis(),
            applies_to: "system".into(),
            rule: "redis-evictions",
            evidence,
            restart: false,
            room: Some(format!(
                "the budget at the busy level holds it on {}",
                host.ram.value
            )),
        }),
        None => notes.push(format!(
            "redis-evictions: {evidence}; no room: even 1.25x maxmemory does not fit the budget \
             (lower PostgreSQL's share or give the host memory)"
        )),
    }
}

/// Clients waiting for a server connection: default_pool_size up by the
/// most that waited at once, within PostgreSQL's max_connections when the
/// observation has it.
fn pgbouncer_waiting(obs: &Observation, out: &mut Vec<Proposal>, notes: &mut Vec<String>) {
    let Some(b) = &obs.pgbouncer else { return };
    let waiting = b.peaks.get("clients_waiting").map_or(0.0, |p| p.max);
    let wait = b.peaks.get("longest_wait_seconds").map_or(0.0, |p| p.max);
    // PgBouncer's own advice: clients waiting more than about a second
    // means the pool is too small for the load (SHOW POOLS, maxwait).
    if waiting < 1.0 || wait < 0.5 {
        return;
    }
    let Some(current) = b
        .settings
        .iter()
        .find(|s| s.name == "default_pool_size")
        .and_then(|s| s.value.parse::<f64>().ok())
    else {
        return;
    };
    let mut proposed = current + waiting;
    let mut room = None;
    if let Some(max) = pg_number(obs, "max_connections") {
        let reserved = pg_number(obs, "superuser_reserved_connections").unwrap_or(3.0);
        let cap = (max - reserved).max(current);
        if proposed > cap {
            proposed = cap;
            room = Some(format!(
                "capped by PostgreSQL's max_connections {max:.0} less {reserved:.0} reserved"
            ));
        }
    } else {
        notes.push(
            "pgbouncer-waiting: PostgreSQL was not observed, so the pool is not checked against \
             its max_connections"
                .into(),
        );
    }
    if proposed <= current {
        return;
    }
    out.push(Proposal {
        service: Scope::Pgbouncer,
        setting: "default_pool_size".into(),
        current: format!("{current:.0}"),
        proposed: format!("{proposed:.0}"),
        applies_to: "system".into(),
        rule: "pgbouncer-waiting",
        evidence: format!(
            "up to {waiting:.0} client(s) waited at once for a server connection, the longest \
             {wait:.1} s (SHOW POOLS cl_waiting, maxwait, sampled every {:.1} s)",
            obs.seconds / f64::from(obs.samples.max(1))
        ),
        restart: false,
        room,
    });
}

/// A set that does not fit the host at the busy level, with connections
/// the window never used: max_connections down to twice the peak (at
/// least 10 above it, at least 20), the cheapest room there is. When a
/// raise already took that room (`temp-spills`), nothing more.
fn connections_over_budget(
    obs: &Observation,
    host: &Host,
    out: &mut Vec<Proposal>,
    notes: &mut Vec<String>,
) {
    let Some(p) = &obs.postgres else { return };
    if out.iter().any(|x| x.setting == "max_connections") {
        return;
    }
    let (before, fits) = judge(obs, host, &[]);
    if fits {
        return;
    }
    let peak = p.peaks.get("client_backends").map_or(0.0, |x| x.max);
    let Some(max_conn) = pg_number(obs, "max_connections") else {
        return;
    };
    let fewer = connections_kept(peak);
    if fewer >= max_conn {
        notes.push(format!(
            "connections-unused: the set does not fit at the busy level ({before} of {}), and \
             max_connections {max_conn:.0} is already within twice the peak {peak:.0}: the room \
             must come from work_mem, shared_buffers or another service",
            host.ram.value
        ));
        return;
    }
    let (after, fits_after) = judge(
        obs,
        host,
        &[(
            Scope::Postgres,
            "max_connections".into(),
            format!("{fewer:.0}"),
        )],
    );
    out.push(Proposal {
        service: Scope::Postgres,
        setting: "max_connections".into(),
        current: format!("{max_conn:.0}"),
        proposed: format!("{fewer:.0}"),
        applies_to: "system".into(),
        rule: "connections-unused",
        evidence: format!(
            "the set does not fit at the busy level ({before} of {}), and at most {peak:.0} client \
             backend(s) were seen at once in {:.0} s (sampled every {:.1} s) of max_connections \
             {max_conn:.0}; twice the peak (at least 10 more, at least 20) is kept. Observe a \
             busy period before applying: a peak the window missed would be refused connections",
            host.ram.value,
            obs.seconds,
            obs.seconds / f64::from(obs.samples.max(1))
        ),
        restart: true,
        room: Some(if fits_after {
            format!("frees memory: the busy level goes from {before} to {after}, which fits")
        } else {
            format!(
                "frees memory: the busy level goes from {before} to {after}, still over {}: more \
                 must give",
                host.ram.value
            )
        }),
    });
}

/// A session idle inside a transaction for a minute or more, with no
/// timeout set: it holds its locks and its snapshot, so VACUUM cannot
/// remove the rows that snapshot may still see (PostgreSQL's documentation
/// of idle_in_transaction_session_timeout). The timeout proposed is twice
/// the longest idle seen, at least 5 minutes, so the sessions the window
/// saw are not cut short.
fn idle_in_transaction(obs: &Observation, out: &mut Vec<Proposal>) {
    let Some(p) = &obs.postgres else { return };
    let longest = p
        .peaks
        .get("longest_idle_in_transaction_seconds")
        .map_or(0.0, |x| x.max);
    let sessions = p.peaks.get("idle_in_transaction").map_or(0.0, |x| x.max);
    let Some(current) = pg_seconds(obs, "idle_in_transaction_session_timeout") else {
        return;
    };
    if longest < IDLE_IN_TRANSACTION_SECONDS || current > 0.0 {
        return;
    }
    let minutes = ((2.0 * longest) / 60.0).ceil().max(5.0);
    out.push(Proposal {
        service: Scope::Postgres,
        setting: "idle_in_transaction_session_timeout".into(),
        current: "0".into(),
        proposed: format!("{minutes:.0}min"),
        applies_to: "system".into(),
        rule: "idle-in-transaction",
        evidence: format!(
            "up to {sessions:.0} session(s) idle in a transaction at once, the longest for \
             {longest:.0} s (pg_stat_activity, sampled every {:.1} s; threshold {IDLE_IN_TRANSACTION_SECONDS:.0} s), \
             with no timeout: each holds its locks and keeps VACUUM from removing rows its \
             snapshot may see. A session idle longer than the timeout is ended and its \
             transaction rolled back: find the code path that leaves transactions open first",
            obs.seconds / f64::from(obs.samples.max(1))
        ),
        restart: false,
        room: None,
    });
}

/// Idle in a transaction this long counts.
const IDLE_IN_TRANSACTION_SECONDS: f64 = 60.0;

/// Dead rows autovacuum has not removed: with autovacuum off, turn it on;
/// with it on and the dead rows more than twice its own trigger (50 rows +
/// autovacuum_vacuum_scale_factor of the live ones, summed over the
/// tables), give its workers more I/O (autovacuum_vacuum_cost_limit). A
/// transaction ID age past autovacuum_freeze_max_age is said: an
/// anti-wraparound vacuum is due, whatever the settings.
fn autovacuum(obs: &Observation, out: &mut Vec<Proposal>, notes: &mut Vec<String>) {
    let Some(p) = &obs.postgres else { return };
    let (Some(dead), Some(live)) = (
        p.gauges.get("dead_tuples").copied(),
        p.gauges.get("live_tuples").copied(),
    ) else {
        return;
    };
    if let (Some(age), Some(freeze)) = (
        p.gauges.get("oldest_xid_age").copied(),
        pg_number(obs, "autovacuum_freeze_max_age"),
    ) {
        if age > freeze {
            notes.push(format!(
                "autovacuum: the oldest database's transaction ID age is {age:.0}, past \
                 autovacuum_freeze_max_age {freeze:.0}: an anti-wraparound vacuum is due or \
                 running; at 2^31 - 3 million PostgreSQL refuses new transactions. Check \
                 pg_stat_progress_vacuum and long transactions holding the horizon"
            ));
        }
    }
    let scale = pg_number(obs, "autovacuum_vacuum_scale_factor").unwrap_or(0.2);
    let base = pg_number(obs, "autovacuum_vacuum_threshold").unwrap_or(50.0);
    let trigger = base + scale * live;
    if dead < AUTOVACUUM_MIN_DEAD || dead < 2.0 * trigger {
        return;
    }
    let evidence = |what: &str| {
        format!(
            "{dead:.0} dead rows against {live:.0} live in the user tables at the end of the \
             {:.0} s window (pg_stat_user_tables), over twice autovacuum's trigger ({base:.0} + \
             {scale} x live = {trigger:.0}) and over {AUTOVACUUM_MIN_DEAD:.0}: {what}",
            obs.seconds
        )
    };
    let on = pg_setting(obs, "autovacuum").map(|s| s.value.as_str());
    if on == Some("off") {
        out.push(Proposal {
            service: Scope::Postgres,
            setting: "autovacuum".into(),
            current: "off".into(),
            proposed: "on".into(),
            applies_to: "system".into(),
            rule: "autovacuum-behind",
            evidence: evidence(
                "autovacuum is off, so nothing removes them but a manual VACUUM, and tables \
                 and indexes grow (anti-wraparound vacuums still run)",
            ),
            restart: false,
            room: None,
        });
        return;
    }
    // -1 means vacuum_cost_limit (200 by default).
    let limit = match pg_number(obs, "autovacuum_vacuum_cost_limit") {
        Some(l) if l > 0.0 => l,
        _ => pg_number(obs, "vacuum_cost_limit").unwrap_or(200.0),
    };
    if limit >= AUTOVACUUM_COST_LIMIT_CAP {
        notes.push(format!(
            "autovacuum-behind: {}; its cost limit is already {limit:.0}: look for long \
             transactions holding back the horizon, or vacuum the largest tables by hand",
            evidence("autovacuum is behind")
        ));
        return;
    }
    let proposed = (limit * 4.0).min(AUTOVACUUM_COST_LIMIT_CAP);
    out.push(Proposal {
        service: Scope::Postgres,
        setting: "autovacuum_vacuum_cost_limit".into(),
        current: format!("{limit:.0}"),
        proposed: format!("{proposed:.0}"),
        applies_to: "system".into(),
        rule: "autovacuum-behind",
        evidence: evidence(
            "autovacuum is on but behind; its workers sleep each time they have spent the cost \
             limit, shared between them, so a limit four times higher lets them read and dirty \
             four times as many pages between sleeps (more I/O while they run)",
        ),
        restart: false,
        room: None,
    });
}

/// Fewer dead rows than this are never "behind".
const AUTOVACUUM_MIN_DEAD: f64 = 10_000.0;
/// PostgreSQL's upper bound for the cost limit is 10000; past 2000 the
/// I/O it allows matters more than the sleeps.
const AUTOVACUUM_COST_LIMIT_CAP: f64 = 2000.0;

/// Client backends near max_connections: past 80% of the connections
/// ordinary roles may use (max_connections less the reserved ones), a
/// spike is refused with "too many clients". max_connections up by a
/// quarter of the peak when the budget holds it; otherwise a pooler in
/// front (or the one there made smaller) is what fits.
fn connections_near_limit(
    obs: &Observation,
    host: &Host,
    out: &mut Vec<Proposal>,
    notes: &mut Vec<String>,
) {
    let Some(p) = &obs.postgres else { return };
    let peak = p.peaks.get("client_backends").map_or(0.0, |x| x.max);
    let Some(max) = pg_number(obs, "max_connections") else {
        return;
    };
    let reserved = pg_number(obs, "superuser_reserved_connections").unwrap_or(3.0)
        + pg_number(obs, "reserved_connections").unwrap_or(0.0);
    let usable = (max - reserved).max(1.0);
    if peak < CONNECTIONS_NEAR * usable {
        return;
    }
    let evidence = format!(
        "up to {peak:.0} client backend(s) at once in {:.0} s (sampled every {:.1} s) of the \
         {usable:.0} max_connections {max:.0} leaves to ordinary roles (over {:.0}%): a spike \
         past them is refused with \"too many clients already\"",
        obs.seconds,
        obs.seconds / f64::from(obs.samples.max(1)),
        100.0 * CONNECTIONS_NEAR
    );
    let proposed = (peak * 1.25 + reserved).ceil().max(max + 1.0);
    let (total, fits) = judge(
        obs,
        host,
        &[(
            Scope::Postgres,
            "max_connections".into(),
            format!("{proposed:.0}"),
        )],
    );
    if fits {
        out.push(Proposal {
            service: Scope::Postgres,
            setting: "max_connections".into(),
            current: format!("{max:.0}"),
            proposed: format!("{proposed:.0}"),
            applies_to: "system".into(),
            rule: "connections-near-limit",
            evidence,
            restart: true,
            room: Some(format!(
                "the budget at the busy level holds every connection's worst case: {total} of {}",
                host.ram.value
            )),
        });
        return;
    }
    let pooled = obs.pgbouncer.is_some();
    notes.push(format!(
        "connections-near-limit: {evidence}. max_connections {proposed:.0} would not fit the \
         budget ({total} at the busy level of {}): {}",
        host.ram.value,
        if pooled {
            "make PgBouncer's pools smaller (default_pool_size, max_db_connections) so they stay \
             under max_connections, and let clients wait in PgBouncer instead"
        } else {
            "a pooler is needed: PgBouncer in transaction mode in front, with a pool sized to \
             the busy backends (see docs/profiles.md on what transaction pooling asks of the \
             application)"
        }
    ));
}

/// The share of usable connections that counts as near the limit.
const CONNECTIONS_NEAR: f64 = 0.8;

/// shared_buffers far larger than all the data, on a host where it hits:
/// shared_buffers down to twice the data (at least PostgreSQL's default
/// 128MB), so the memory goes to the page cache, work_mem or other
/// services. Only above 128MB and under a 99% hit ratio's worth of
/// evidence; the data's growth in the window is said.
fn shared_buffers_oversized(obs: &Observation, host: &Host, out: &mut Vec<Proposal>) {
    let Some(p) = &obs.postgres else { return };
    let (Some(sb), Some(size)) = (
        pg_bytes(obs, "shared_buffers"),
        p.gauges.get("database_bytes").copied(),
    ) else {
        return;
    };
    let default = 128.0 * 1048576.0;
    if sb <= default || size * 4.0 > sb {
        return;
    }
    let proposed = round_up_mib(2.0 * size).max(ByteSize::mib(128));
    if proposed.bytes() as f64 >= sb {
        return;
    }
    let growth = p
        .gauges
        .get("database_growth_bytes")
        .copied()
        .unwrap_or(0.0);
    let (before, _) = judge(obs, host, &[]);
    let (after, _) = judge(
        obs,
        host,
        &[(Scope::Postgres, "shared_buffers".into(), proposed.pg())],
    );
    out.push(Proposal {
        service: Scope::Postgres,
        setting: "shared_buffers".into(),
        current: ByteSize(sb as u64).pg(),
        proposed: proposed.pg(),
        applies_to: "system".into(),
        rule: "shared-buffers-oversized",
        evidence: format!(
            "every database together holds {} (pg_database_size; {} in the {:.0} s window) \
             against shared_buffers {}, over four times the data: the rest of it is memory no \
             page will use until the data grows; twice the data is kept, at least 128MB. \
             Observe again before applying if the data is about to grow",
            ByteSize(size as u64),
            if growth > 0.0 {
                format!("grew by {}", ByteSize(growth as u64))
            } else {
                "no growth".into()
            },
            obs.seconds,
            ByteSize(sb as u64),
        ),
        restart: true,
        room: Some(format!(
            "frees memory: the busy level goes from {before} to {after} of {}",
            host.ram.value
        )),
    });
}

/// Redis's memory fragmented: RSS at least 1.2 times the data and 100 MB
/// or more of it not data (Redis's own active-defrag-threshold-lower 10%
/// and active-defrag-ignore-bytes 100mb say when defragmentation is worth
/// its CPU), with activedefrag off: turn it on. Only a Redis built with
/// its bundled jemalloc can (CONFIG SET refuses otherwise, and says so);
/// nothing in INFO tells the two builds apart, so the evidence says it.
fn redis_fragmentation(obs: &Observation, out: &mut Vec<Proposal>) {
    let Some(r) = &obs.redis else { return };
    let (Some(ratio), Some(rss), Some(used)) = (
        r.gauges.get("mem_fragmentation_ratio").copied(),
        r.gauges.get("used_memory_rss").copied(),
        r.gauges.get("used_memory").copied(),
    ) else {
        return;
    };
    let waste = rss - used;
    let defrag = r
        .settings
        .iter()
        .find(|s| s.name == "activedefrag")
        .map(|s| s.value.as_str());
    if ratio < 1.2 || waste < 100.0 * 1048576.0 || defrag != Some("no") {
        return;
    }
    out.push(Proposal {
        service: Scope::Redis,
        setting: "activedefrag".into(),
        current: "no".into(),
        proposed: "yes".into(),
        applies_to: "system".into(),
        rule: "redis-fragmentation",
        evidence: format!(
            "RSS {} holds {} of data: fragmentation {ratio:.2} (threshold 1.2) and {} not \
             data (threshold 100MB), memory the budget counts but no key uses; active \
             defragmentation moves values to free whole pages, using up to \
             active-defrag-cycle-max of one CPU while it runs. Needs a Redis built with \
             the jemalloc bundled in its source (its default build); one linked to the \
             system's jemalloc (Debian's package) refuses it at CONFIG SET",
            ByteSize(rss as u64),
            ByteSize(used as u64),
            ByteSize(waste as u64),
        ),
        restart: false,
        room: None,
    });
}

/// Redis's last fork: the time it blocked Redis and what its copy-on-write
/// cost, said when they matter (a fork of more than a second stalls every
/// client; a copy over a quarter of the data is memory the budget must
/// hold each time Redis saves). No setting fixes either: less written
/// during saves, saves less often, or huge pages off (transparent huge
/// pages make each copied page 2 MB).
fn redis_fork(obs: &Observation, notes: &mut Vec<String>) {
    let Some(r) = &obs.redis else { return };
    let fork = r.gauges.get("latest_fork_usec").copied().unwrap_or(0.0) / 1e6;
    let used = r.gauges.get("used_memory").copied().unwrap_or(0.0);
    let cow = ["rdb_last_cow_size", "aof_last_cow_size"]
        .iter()
        .filter_map(|k| r.gauges.get(*k))
        .fold(0.0_f64, |a, b| a.max(*b));
    if fork >= 1.0 {
        notes.push(format!(
            "redis-fork: the last fork blocked Redis for {fork:.2} s (latest_fork_usec) with {} \
             of data: every client waits that long at each save; check that transparent huge \
             pages are off, and save less often",
            ByteSize(used as u64)
        ));
    }
    if let Some(ratio) = r
        .gauges
        .get("mem_fragmentation_ratio")
        .filter(|_| used > 0.0)
    {
        // Tiny datasets read high: the process's own pages over little data.
        if used >= 64.0 * 1048576.0 {
            notes.push(format!(
                "redis-factors: fragmentation {ratio:.2} and a save's copy-on-write {:.2} of the                  data were seen here{}; a profile can state what a busy period shows as [redis]                  fragmentation and fork_copy, and render sizes maxmemory with them instead of the                  worst measured (docs/profiles.md)",
                cow / used,
                if cow == 0.0 { " (no save in this Redis's life)" } else { "" }
            ));
        }
    }
    if used > 0.0 && cow > 0.25 * used && cow > 64.0 * 1048576.0 {
        notes.push(format!(
            "redis-fork: the last save copied {} on write, {:.0}% of the {} of data: that much \
             more memory each time Redis saves; check-budget --observed counts it",
            ByteSize(cow as u64),
            100.0 * cow / used,
            ByteSize(used as u64)
        ));
    }
}

/// The text report: each proposal, the notes, the budget.
pub fn text(a: &Advice) -> String {
    let mut s = String::new();
    if a.advice.is_empty() {
        s.push_str("no advice: no rule's threshold was crossed in the window\n");
    }
    for p in &a.advice {
        s.push_str(&format!("{p}\n"));
    }
    for n in &a.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s.push_str(&format!(
        "budget at the busy level: {} before, {} after the system-wide proposals, of {}\n",
        a.budget.before, a.budget.after, a.budget.ram
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_powers_of_two() {
        assert_eq!(round_up_mib(3.0 * 1048576.0), ByteSize::mib(4));
        assert_eq!(round_up_mib(1.0), ByteSize::mib(1));
        assert_eq!(round_up_mib(64.0 * 1048576.0), ByteSize::mib(64));
    }
}
