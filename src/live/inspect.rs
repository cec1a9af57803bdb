//! `inspect`: what runs, its health, and the memory budget of it, judged
//! by the same read side check-budget uses.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::servers::*;
use crate::cli::InspectArgs;
use crate::console;
use crate::error::EXIT_NO;
use crate::note;
use crate::read::budget;
use crate::read::findings::Finding;
use crate::read::report::{self, Report, Verdict};
use crate::service::Scope;

pub(super) fn health(live: &Live) -> Vec<Finding> {
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

/// inspect's last lines: each level and where the set fits, then the
/// report's verdict with the numbers behind it, at the level judged.
fn verdict_line(r: &Report) -> String {
    let b = &r.budget;
    let level = r.level.name();
    let total = r.level_total(r.level);
    let last = match r.verdict() {
        Verdict::DoesNotFit => format!(
            "does not fit: {level} {total} is {} more than {}",
            total - b.ram,
            b.ram
        ),
        Verdict::Unsafe => format!(
            "unsafe: {} error(s), {} of them can lose data or stop a server; the {level} total {total} \
             would fit {}",
            r.errors(),
            r.unsafe_errors(),
            b.ram
        ),
        Verdict::Invalid => format!(
            "{} error(s); the {level} total {total} would fit {}",
            r.errors(),
            b.ram
        ),
        Verdict::Fits => format!("fits: {level} {total} of {}", b.ram),
    };
    format!("levels: {}\n{last}", report::levels_text(r))
}

/// What runs, its health and its budget, judged as check-budget judges
/// files (the same safety rules, budget and verdict), plus what only a
/// running server shows (hit ratio, connections, evictions...).
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
    let report = report::check_running(&live_settings(&live), &host)
        .at_level(args.level)
        .with_findings(health(&live));
    let budget = &report.budget;
    let out = if args.json {
        let doc = json!({
            "schema": 1,
            "verdict": report.verdict(),
            "postgres": live.pg.as_ref().map(|(_, s)| s.to_json()),
            "redis": live.redis.as_ref().map(|(_, r)| r.to_json()),
            "findings": report.findings,
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
        for f in &report.findings {
            out.push_str(&format!("{f}\n"));
        }
        out.push_str(&budget::Table(budget).to_string());
        out.push_str(&format!("\n{}\n", verdict_line(&report)));
        out
    };
    console::print(&out)?;
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}
