//! Redis's terms: data x fragmentation, client buffers and backlog, the
//! copy-on-write of a fork, the process.

use super::*;
use crate::calibration;
use crate::model::*;
use crate::read::settings::ServiceSettings;
use crate::service::Scope;
use crate::units::{parse_redis_memory, ByteSize};

pub(super) fn redis_terms(
    r: &ServiceSettings,
    c: &calibration::RedisMemory,
    a: &Assumptions,
    terms: &mut Vec<Term>,
) {
    let maxmemory = r
        .get("maxmemory")
        .and_then(|e| parse_redis_memory(&e.value));
    let mm_src = r
        .get("maxmemory")
        .map_or("default".to_string(), |e| e.at.to_string());
    let Some(mm) = maxmemory.filter(|m| m.bytes() > 0) else {
        terms.push(Term::new(
            Scope::Redis,
            "data (unbounded)",
            ByteSize::ZERO,
            ByteSize::ZERO,
            mm_src,
        ));
        return;
    };
    let measured = c.source();
    terms.push(Term::new(
        Scope::Redis,
        "data x fragmentation",
        mm.scale(c.fragmentation),
        mm.scale(a.redis_frag_typical.min(c.fragmentation)),
        format!(
            "maxmemory {mm} ({mm_src}) x {:.2} worst ({measured}) / {} typical (assumed)",
            c.fragmentation,
            // Rounded, as the worst is: below the worst, the role's bound.
            (a.redis_frag_typical.min(c.fragmentation) * 100.0).round() / 100.0
        ),
    ));
    let (clients, clients_src) = redis_clients(r, mm, c);
    let backlog = r
        .get("repl-backlog-size")
        .and_then(|e| parse_redis_memory(&e.value))
        .unwrap_or(ByteSize::mib(1));
    terms.push(Term::new(
        Scope::Redis,
        "client buffers + backlog",
        clients + backlog,
        backlog + clients.scale(0.1),
        format!("clients {clients} ({clients_src}), repl-backlog-size {backlog}"),
    ));
    terms.extend(redis_fork(r, mm, c, &measured));
    terms.extend(redis_aof_buffer(r, a));
    terms.push(Term::new(
        Scope::Redis,
        "process",
        ByteSize(c.process),
        ByteSize(c.process),
        format!(
            "an empty server (measured on Redis {}, {})",
            c.release,
            calibration::REDIS_SOURCE
        ),
    ));
}

/// The client buffers Redis allows: maxmemory-clients (bytes or a share of
/// maxmemory), else every client idle at its measured size, with a warning
/// that their growth is unbounded.
fn redis_clients(
    r: &ServiceSettings,
    mm: ByteSize,
    c: &calibration::RedisMemory,
) -> (ByteSize, String) {
    let maxclients: u64 = r
        .get("maxclients")
        .and_then(|e| e.value.parse::<u64>().ok())
        .unwrap_or(10000)
        .min(1 << 24);
    match r.get("maxmemory-clients") {
        Some(e) if e.value.ends_with('%') => {
            let pct: f64 = e.value.trim_end_matches('%').parse().unwrap_or(0.0);
            (mm.scale(pct / 100.0), e.at.to_string())
        }
        Some(e) if parse_redis_memory(&e.value).is_some_and(|v| v.bytes() > 0) => (
            parse_redis_memory(&e.value).unwrap_or_default(),
            e.at.to_string(),
        ),
        _ => {
            (
                ByteSize(c.client) * maxclients,
                format!(
                    "maxmemory-clients unset: {maxclients} idle clients x {} (measured), growth unbounded",
                    ByteSize(c.client)
                ),
            )
        }
    }
}

/// The AOF buffer, when `appendfsync everysec` lets writes wait in it
/// while a background fsync lags.
fn redis_aof_buffer(r: &ServiceSettings, a: &Assumptions) -> Option<Term> {
    let aof = r
        .get("appendonly")
        .filter(|e| e.value.eq_ignore_ascii_case("yes"))?;
    let fsync = r.get("appendfsync");
    // Redis's default is everysec; `always` writes and fsyncs before each
    // reply, `no` never waits for an fsync.
    if fsync.is_some_and(|e| !e.value.eq_ignore_ascii_case("everysec")) {
        return None;
    }
    let at = fsync.map_or_else(
        || {
            format!(
                "appendonly yes ({}), appendfsync everysec by default",
                aof.at
            )
        },
        |e| format!("appendfsync everysec ({})", e.at),
    );
    Some(Term::new(
        Scope::Redis,
        "AOF buffer",
        crate::model::redis_aof_buffer(a.redis_write_rate),
        ByteSize::ZERO,
        format!(
            "{at}: while a background fsync lags, writes wait in the buffer, outside maxmemory, \
             up to {AOF_POSTPONE_SECONDS} s of them, and a fork copies their pages: 2 x \
             {AOF_POSTPONE_SECONDS} s x {}/s of writes at peak ({}); typical: the disk keeps up",
            a.redis_write_rate,
            if a.redis_write_rate == REDIS_WRITE_RATE {
                "assumed, --redis-write-rate"
            } else {
                "stated"
            }
        ),
    ))
}

/// The copy-on-write of a fork, when RDB saves or AOF rewrites fork.
fn redis_fork(
    r: &ServiceSettings,
    mm: ByteSize,
    c: &calibration::RedisMemory,
    measured: &str,
) -> Option<Term> {
    let saves = r.all("save");
    let rdb = match saves.last() {
        None => true, // Redis saves by default (3600 1 300 100 60 10000)
        Some(e) => !e.value.trim().trim_matches('"').is_empty(),
    };
    let aof = r
        .get("appendonly")
        .is_some_and(|e| e.value.eq_ignore_ascii_case("yes"));
    let what = match (rdb, aof) {
        (true, true) => "RDB saves and AOF rewrites fork",
        (true, false) => "RDB saves fork",
        (false, true) => "AOF rewrites fork",
        (false, false) => return None,
    };
    let at = saves
        .last()
        .map(|e| e.at.to_string())
        .or_else(|| r.get("appendonly").map(|e| e.at.to_string()))
        .unwrap_or_else(|| "default save rules".into());
    Some(Term::new(
        Scope::Redis,
        "fork copy-on-write",
        mm.scale(c.fork_factor()),
        mm.scale(0.1_f64.min(c.fork_factor())),
        format!(
            "{what} ({at}): {}, maxmemory x {:.2} ({measured}); typical 10%",
            if c.fork_counts_every_page() {
                "the child may copy every resident page"
            } else {
                "the child copies the pages written while it saves"
            },
            c.fork_factor()
        ),
    ))
}
