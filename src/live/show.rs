//! What inspect and diff show of live servers: a Display per server state
//! and per drifted setting for the text reports, and the same facts as JSON.

use std::fmt;

use serde_json::{json, Value};

use super::{Drift, PgSetting, PgState, RedisState};

impl PgState {
    /// Settings not at their built-in default (what someone chose).
    pub fn chosen(&self) -> impl Iterator<Item = &PgSetting> {
        self.settings
            .iter()
            .filter(|x| x.source != "default" && x.source != "override")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "target": self.target, "version": self.version, "user": self.user,
            "superuser": self.superuser, "tls": self.tls,
            "connections": self.connections, "max_connections": self.max_connections,
            "cache_hit_ratio": self.cache_hit_ratio,
            "settings": self.chosen().map(|x| json!({
                "name": x.name, "value": x.display(), "source": x.source,
                "at": x.location().to_string(), "pending_restart": x.pending_restart,
            })).collect::<Vec<_>>(),
        })
    }
}

/// inspect's paragraph on a PostgreSQL server, one line per fact.
impl fmt::Display for PgState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "PostgreSQL {} at {} (user {}{}, {})",
            self.version,
            self.target,
            self.user,
            if self.superuser { ", superuser" } else { "" },
            if self.tls {
                "over TLS"
            } else {
                "not encrypted"
            }
        )?;
        let conns: Vec<String> = self
            .connections
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(
            f,
            "  connections: {} (max_connections {})",
            conns.join(", "),
            self.max_connections
        )?;
        if let Some(r) = self.cache_hit_ratio {
            writeln!(f, "  cache hit ratio: {:.2}%", r * 100.0)?;
        }
        writeln!(f, "  settings not at their default:")?;
        for x in self.chosen() {
            writeln!(
                f,
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
            )?;
        }
        Ok(())
    }
}

impl RedisState {
    fn info_or_unknown(&self, k: &str) -> &str {
        self.info.get(k).map_or("?", String::as_str)
    }

    pub fn to_json(&self) -> Value {
        let g = |k: &str| self.info.get(k).cloned();
        json!({
            "target": self.target, "version": g("redis_version"),
            "maxmemory": self.config.get("maxmemory"),
            "maxmemory_policy": self.config.get("maxmemory-policy"),
            "used_memory": g("used_memory"), "used_memory_peak": g("used_memory_peak"),
            "mem_fragmentation_ratio": g("mem_fragmentation_ratio"),
            "keyspace_hits": g("keyspace_hits"), "keyspace_misses": g("keyspace_misses"),
            "evicted_keys": g("evicted_keys"), "connected_clients": g("connected_clients"),
            "rdb_last_bgsave_status": g("rdb_last_bgsave_status"), "aof_enabled": g("aof_enabled"),
            "rdb_changes_since_last_save": g("rdb_changes_since_last_save"),
        })
    }
}

/// inspect's paragraph on a Redis server: memory, cache, persistence.
impl fmt::Display for RedisState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = |k: &str| self.info_or_unknown(k);
        let c = |k: &str| self.config.get(k).map_or("?", String::as_str);
        writeln!(f, "Redis {} at {}", g("redis_version"), self.target)?;
        writeln!(
            f,
            "  maxmemory {} ({}), used {}, peak {}, fragmentation {}",
            c("maxmemory"),
            c("maxmemory-policy"),
            g("used_memory_human"),
            g("used_memory_peak_human"),
            g("mem_fragmentation_ratio")
        )?;
        writeln!(
            f,
            "  hits {}, misses {}, evicted keys {}, clients {}",
            g("keyspace_hits"),
            g("keyspace_misses"),
            g("evicted_keys"),
            g("connected_clients")
        )?;
        writeln!(
            f,
            "  persistence: rdb last save {} ({} changes since), aof {}",
            g("rdb_last_bgsave_status"),
            g("rdb_changes_since_last_save"),
            if g("aof_enabled") == "1" { "on" } else { "off" }
        )
    }
}

/// diff's line for a setting: the file's value where it is set, and the
/// server's.
impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let live = self
            .live
            .as_ref()
            .map_or("(unknown to the server)".to_string(), |v| v.to_string());
        write!(
            f,
            "{:<9} {:<36} file {} ({})  live {live}",
            self.service,
            crate::secret::name(&self.name),
            self.file_value,
            self.at,
        )
    }
}
