//! PgBouncer's terms, and the server connections its pools open.

use super::*;
use crate::read::settings::ServiceSettings;
use crate::service::Scope;
use crate::units::ByteSize;

/// Server connections PgBouncer may open: per database, pool_size +
/// reserve_pool_size, capped by max_db_connections. Assumes one user per
/// database (pools are per database and user).
pub fn pgbouncer_server_conns(b: &ServiceSettings) -> (u64, String) {
    let global = |k: &str, d: u64| {
        b.get(&format!("pgbouncer.{k}"))
            .and_then(|e| e.value.parse::<u64>().ok())
            .unwrap_or(d)
            .min(1 << 24)
    };
    let default_pool = global("default_pool_size", 20);
    let reserve = global("reserve_pool_size", 0);
    let max_db_global = global("max_db_connections", 0);
    let mut total = 0;
    let mut parts = Vec::new();
    for (key, entries) in &b.entries {
        let Some(db) = key.strip_prefix("databases.") else {
            continue;
        };
        let e = entries.last().expect("entries are never empty");
        let param = |k: &str| {
            e.value
                .split_whitespace()
                .find_map(|kv| {
                    let (pk, pv) = kv.split_once('=')?;
                    (pk == k).then(|| pv.parse::<u64>().ok()).flatten()
                })
                .map(|v| v.min(1 << 24))
        };
        let pool =
            param("pool_size").unwrap_or(default_pool) + param("reserve_pool").unwrap_or(reserve);
        let cap = param("max_db_connections").unwrap_or(max_db_global);
        let n = if cap > 0 { pool.min(cap) } else { pool };
        total += n;
        parts.push(format!("{db} {n} at {}", e.at));
    }
    (total, parts.join(", "))
}

pub(super) fn pgbouncer_terms(b: &ServiceSettings, terms: &mut Vec<Term>) {
    let get = |k: &str, d: u64| {
        b.get(&format!("pgbouncer.{k}"))
            .and_then(|e| e.value.parse::<u64>().ok())
            .unwrap_or(d)
            .min(1 << 24)
    };
    let clients = get("max_client_conn", 100);
    let pkt_buf = get("pkt_buf", 4096);
    let (servers, _) = pgbouncer_server_conns(b);
    let per_conn = ByteSize(pkt_buf) + ByteSize::kib(1);
    let worst = per_conn * (clients + servers) + ByteSize::mib(2);
    let src = b
        .get("pgbouncer.max_client_conn")
        .map_or("default".into(), |e| e.at.to_string());
    terms.push(Term {
        service: Scope::Pgbouncer,
        name: "connections".into(),
        worst,
        typical: ByteSize::mib(2) + per_conn * servers,
        source: format!(
            "({clients} clients at {src} + {servers} server) x (pkt_buf {pkt_buf} B + 1 KiB) + 2 MiB"
        ),
    });
}
