//! Memory rules that hold whatever the total: settings no budget can
//! hold (an unbounded Redis), or that break on their own (work_mem x
//! max_connections above RAM, pools above max_connections).

use crate::read::budget::*;
use crate::read::effective::*;
use crate::read::findings::Finding;
use crate::read::settings::{HostSettings, ServiceSettings};
use crate::service::Scope;
use crate::units::{parse_redis_memory, ByteSize, MIB};
use crate::version::PgVersion;

/// Every memory rule broken by these settings, each a finding marked as a
/// memory limit (apply refuses a change that breaks one).
pub fn findings(settings: &HostSettings, ram: ByteSize) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(pg) = &settings.postgres {
        work_mem_rule(pg, settings.pg_version, ram, &mut out);
        unknown_libraries(pg, settings.pg_version, &mut out);
        if let Some(b) = &settings.pgbouncer {
            pool_rule(b, pg, settings.pg_version, &mut out);
        }
    }
    if let Some(r) = &settings.redis {
        redis_rules(r, &mut out);
    }
    out.into_iter().map(Finding::memory_limit).collect()
}

/// A preloaded library whose shared memory the model does not know is
/// named: its memory is not 0, and not in the budget.
fn unknown_libraries(s: &ServiceSettings, version: PgVersion, out: &mut Vec<Finding>) {
    for lib in extension_shared_memory(&Pg::new(s, version)).unknown {
        out.push(Finding::warning(
            Scope::Postgres,
            s.get("shared_preload_libraries").map(|e| &e.at),
            format!(
                "`{lib}` in shared_preload_libraries: its shared memory is not in the budget (unknown, not 0)"
            ),
            Some(
                "count it as a reservation (--reserve NAME=SIZE); postgres -C shared_memory_size with and \
                 without it says how much"
                    .into(),
            ),
        ));
    }
}

/// Redis without maxmemory has no bound a budget can hold; without
/// maxmemory-clients its client buffers grow outside maxmemory.
fn redis_rules(r: &ServiceSettings, out: &mut Vec<Finding>) {
    let maxmemory = r
        .get("maxmemory")
        .and_then(|e| parse_redis_memory(&e.value));
    if maxmemory.is_none_or(|m| m.bytes() == 0) {
        // Where it is set, the finding's place says where; unset has none.
        let what = match r.get("maxmemory") {
            Some(_) => "Redis maxmemory is 0",
            None => "Redis maxmemory is unset (the default, 0)",
        };
        out.push(Finding::error(
            Scope::Redis,
            r.get("maxmemory").map(|e| &e.at),
            format!("{what}: its memory is unbounded and no budget can hold it"),
            Some("set maxmemory (and a maxmemory-policy) to what this host can give Redis".into()),
        ));
        return;
    }
    let clients_bounded = r.get("maxmemory-clients").is_some_and(|e| {
        e.value.ends_with('%') || parse_redis_memory(&e.value).is_some_and(|v| v.bytes() > 0)
    });
    if !clients_bounded {
        out.push(Finding::warning(
            Scope::Redis,
            r.get("maxmemory-clients").map(|e| &e.at),
            "maxmemory-clients is unset: client buffers are outside maxmemory, and a client \
             reading large replies can grow without bound"
                .to_string(),
            Some("set maxmemory-clients (e.g. 10% of maxmemory) so Redis disconnects the largest clients first".into()),
        ));
    }
}

/// The mistake PGTune makes on small hosts: work_mem x max_connections alone
/// is more than the RAM.
fn work_mem_rule(
    s: &ServiceSettings,
    version: PgVersion,
    ram: ByteSize,
    problems: &mut Vec<Finding>,
) {
    let pg = Pg::new(s, version);
    let wm = ByteSize(pg.mem("work_mem", 4 * MIB as i64).max(0) as u64);
    let conns = pg.int("max_connections", 100).max(0) as u64;
    if wm * conns > ram {
        problems.push(Finding::error(
            Scope::Postgres,
            s.get("work_mem").or(s.get("max_connections")).map(|e| &e.at),
            format!(
                "work_mem {wm} x max_connections {conns} = {} is more than the {ram} of RAM on its own",
                wm * conns
            ),
            Some("lower work_mem or max_connections (put PgBouncer in front for many clients)".into()),
        ));
    }
}

/// PgBouncer's server connections are PostgreSQL backends: all pools must
/// fit in max_connections minus the slots reserved for superusers.
fn pool_rule(
    b: &ServiceSettings,
    pg: &ServiceSettings,
    version: PgVersion,
    problems: &mut Vec<Finding>,
) {
    let pgs = Pg::new(pg, version);
    let (servers, detail) = pgbouncer_server_conns(b);
    let max_conn = pgs.int("max_connections", 100);
    let reserved = pgs.int("superuser_reserved_connections", 3)
        + if version >= 16 {
            pgs.int("reserved_connections", 0)
        } else {
            0
        };
    let usable = max_conn - reserved;
    if servers as i64 > usable {
        let at = b
            .entries
            .iter()
            .find(|(k, _)| k.starts_with("databases."))
            .and_then(|(_, v)| v.last())
            .map(|e| &e.at);
        problems.push(Finding::error(
            Scope::Pgbouncer,
            at,
            format!(
                "PgBouncer may open {servers} server connections ({detail}) but PostgreSQL accepts \
                 {usable} (max_connections {max_conn} at {} minus {reserved} reserved)",
                pgs.src("max_connections")
            ),
            Some("lower pool_size / reserve_pool or set max_db_connections, or raise max_connections".into()),
        ));
    }
}
