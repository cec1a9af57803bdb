//! Every profile value within its bounds, reported at its line: profile
//! values end up in config files and a shell script.

use super::*;

use std::path::Path;

use anyhow::Result;

use crate::doc::*;
use crate::error::Error;
use crate::units::ByteSize;

impl Profile {
    /// Parses and checks a profile; `path` names it in errors. Every value
    /// is checked here, with its line, before anything uses it: profile
    /// values end up in config files and a shell script.
    pub fn parse(text: &str, path: &Path) -> Result<Profile, Error> {
        let hint = "see docs/profiles.md for every field and its default";
        let p: Profile = toml::from_str(text).map_err(|e| {
            let err = Error::from_toml(path, text, &e, hint);
            // A layout dbtune does not know: say which it does.
            let at_layout = err
                .place()
                .and_then(|pl| pl.line)
                .and_then(|n| text.lines().nth(n.saturating_sub(1)))
                .is_some_and(|l| {
                    l.trim_start()
                        .strip_prefix("layout")
                        .is_some_and(|r| r.trim_start().starts_with('='))
                });
            if at_layout {
                err.with_hint(LAYOUT_HINT)
            } else {
                err
            }
        })?;
        if let Err(bad) = p.check() {
            let keys: Vec<&str> = bad.path.iter().map(String::as_str).collect();
            let line = toml_line(text, &keys);
            return Err(Error::input(
                crate::error::Place::line(path.display(), line).setting(bad.path.join(".")),
                bad.message,
                bad.hint,
            ));
        }
        Ok(p)
    }

    /// Ranges, enumerations, addresses, names and plain text.
    pub fn check(&self) -> Result<(), BadValue> {
        let top = |key: &'static str| BadValue::at(None, key);
        if !is_profile_name(&self.name) {
            return Err(top("name").says(
                format!("`{}` is not a profile name", self.name.escape_debug()),
                "lowercase letters, digits, - and _, at most 64, starting with a letter or digit",
            ));
        }
        text_ok(&self.description, 200, top("description"))?;
        self.host.check()?;
        for (i, r) in self.reserve.iter().enumerate() {
            crate::model::check_reserve(&format!("reserve.{i}"), &r.name, r.memory)?;
        }
        self.os.check()?;
        self.postgres.check()?;
        crate::model::check_assumptions(&self.assumptions(), "postgres", "busy_share")?;
        self.redis.check()?;
        self.pgbouncer.check()?;
        self.zfs.check()?;
        if self.redis.share.0 + self.zfs.arc_share.0 > 0.8 {
            return Err(BadValue::at(Some("redis"), "share").says(
                format!(
                    "redis.share ({}) + zfs.arc_share ({}) leave PostgreSQL less than 20% of the memory",
                    self.redis.share.0, self.zfs.arc_share.0
                ),
                "lower one of them; PostgreSQL gets what the others leave",
            ));
        }
        Ok(())
    }
}

/// The layouts a profile's `layout` may name, and what each renders.
const LAYOUT_HINT: &str = "layout is one of systemd (the host's services, with systemd drop-ins; \
     the default), compose (every service in its official image on a compose network), cnpg (a \
     CloudNativePG Cluster) or patroni (a Patroni fragment); `render --layout` overrides it";

fn is_profile_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A host name as DNS writes it: labels of letters, digits and `-`.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn is_address(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok() || is_hostname(s)
}

/// An absolute path of plain characters: written into config files as is.
fn path_ok(s: &str) -> bool {
    s.starts_with('/')
        && s.len() <= 4096
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.-+@".contains(c))
        && !s.split('/').any(|c| c == "..")
}

/// `listen_addresses` / `listen_addr`: `*`, or addresses and host names
/// separated by commas (and spaces). No other character, so nothing can
/// end the line it is written on.
fn listen_list_ok(s: &str) -> bool {
    if s.chars().any(|c| c.is_control()) {
        return false;
    }
    let s = s.trim_matches(' ');
    s == "*" || (!s.is_empty() && s.split(',').map(|a| a.trim_matches(' ')).all(is_address))
}

/// Redis `bind`: addresses separated by single spaces, each optionally
/// prefixed with `-` (skip it when unavailable).
fn redis_bind_ok(s: &str) -> bool {
    !s.chars().any(|c| c.is_control())
        && !s.trim_matches(' ').is_empty()
        && s.split(' ')
            .filter(|a| !a.is_empty())
            .all(|a| is_address(a.strip_prefix('-').unwrap_or(a)) || a == "*" || a == "-*")
}

/// Whether a ZFS property value is one ZFS accepts for that property.
pub fn zfs_value_ok(prop: &str, v: &str) -> bool {
    let one_of = |list: &[&str]| list.contains(&v);
    let numbered = |prefix: &str, lo: u32, hi: u32| {
        v.strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (lo..=hi).contains(&n))
    };
    match prop {
        "atime" => one_of(&["on", "off"]),
        "checksum" => one_of(&[
            "on",
            "off",
            "fletcher2",
            "fletcher4",
            "sha256",
            "noparity",
            "sha512",
            "skein",
            "edonr",
            "blake3",
        ]),
        "compression" => {
            one_of(&[
                "on",
                "off",
                "lzjb",
                "gzip",
                "zle",
                "lz4",
                "zstd",
                "zstd-fast",
            ]) || numbered("gzip-", 1, 9)
                || numbered("zstd-", 1, 19)
                || numbered("zstd-fast-", 1, 1000)
        }
        "logbias" => one_of(&["latency", "throughput"]),
        "primarycache" | "secondarycache" => one_of(&["all", "none", "metadata"]),
        "redundant_metadata" => one_of(&["all", "most", "some", "none"]),
        "sync" => one_of(&["standard", "always", "disabled"]),
        "xattr" => one_of(&["on", "off", "sa", "dir"]),
        "recordsize" => {
            let lower = v.to_ascii_lowercase();
            let (num, mult) = match lower.strip_suffix('k') {
                Some(n) => (n, 1024u64),
                None => match lower.strip_suffix('m') {
                    Some(n) => (n, 1024 * 1024),
                    None => (lower.as_str(), 1),
                },
            };
            num.parse::<u64>()
                .ok()
                .map(|n| n * mult)
                .is_some_and(|b| b.is_power_of_two() && (512..=16 << 20).contains(&b))
        }
        _ => false,
    }
}

fn port_ok(section: &str, v: u16) -> Result<(), BadValue> {
    if v == 0 {
        return Err(BadValue::at(Some(section), "port")
            .says(format!("{section}.port = 0 is not a port"), "1 to 65535"));
    }
    Ok(())
}

impl NominalHost {
    fn check(&self) -> Result<(), BadValue> {
        range_size(
            "host",
            "ram",
            self.ram,
            ByteSize::mib(256),
            crate::facts::MAX_RAM,
            "the RAM of the host the profile was written for",
        )?;
        range_u32(
            "host",
            "cpus",
            self.cpus,
            1,
            crate::facts::MAX_CPUS,
            "logical CPUs",
        )?;
        if !self
            .filesystem
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            || self.filesystem.is_empty()
            || self.filesystem.len() > 64
        {
            return Err(BadValue::at(Some("host"), "filesystem").says(
                format!(
                    "`{}` is not a filesystem type",
                    self.filesystem.escape_debug()
                ),
                "ext4, xfs, zfs, btrfs...",
            ));
        }
        Ok(())
    }
}

impl OsPolicy {
    fn check(&self) -> Result<(), BadValue> {
        range_size(
            "os",
            "reserve_min",
            self.reserve_min,
            ByteSize::ZERO,
            crate::facts::MAX_RAM,
            "memory kept for the kernel and system services",
        )?;
        // Linux accepts 0-200 since 5.8 (0-100 before).
        range_u32("os", "swappiness", self.swappiness, 0, 200, "vm.swappiness")
    }
}

/// PostgreSQL's own limits for the values a profile gives.
const PG_MAX_BACKENDS: u32 = 262_143;

const PG_MAX_KB_SIZE: ByteSize = ByteSize(2_147_483_647 * 1024);

impl PostgresPolicy {
    fn check(&self) -> Result<(), BadValue> {
        let s = "postgres";
        if !listen_list_ok(&self.listen) {
            return Err(BadValue::at(Some(s), "listen").says(
                format!("`{}` is not a listen address list", self.listen.escape_debug()),
                "`*`, or IP addresses and host names separated by commas, e.g. \"127.0.0.1\" or \"10.0.0.5, ::1\"",
            ));
        }
        port_ok(s, self.port)?;
        for (key, v) in [
            ("max_connections", self.max_connections),
            ("app_connections", self.app_connections),
        ] {
            if let Some(v) = v {
                range_u32(s, key, v, 1, PG_MAX_BACKENDS, "PostgreSQL's range")?;
            }
        }
        if self.min_connections == 0
            || self
                .max_connections
                .is_some_and(|m| self.min_connections > m)
        {
            return Err(BadValue::at(Some(s), "min_connections").says(
                "min_connections must be at least 1 and at most max_connections",
                "render lowers max_connections toward min_connections to fit memory",
            ));
        }
        self.check_sizes(s)?;
        self.check_counts(s)
    }

    /// Memory sizes inside PostgreSQL's ranges.
    fn check_sizes(&self, s: &str) -> Result<(), BadValue> {
        // (key, value, PostgreSQL's range, what the range is)
        let sizes = [
            (
                "shared_buffers_max",
                self.shared_buffers_max,
                ByteSize::kib(128),
                ByteSize(1_073_741_823 * 8192),
                "PostgreSQL's range for shared_buffers",
            ),
            (
                "work_mem_min",
                self.work_mem_min,
                ByteSize::kib(64),
                PG_MAX_KB_SIZE,
                "PostgreSQL's range for work_mem",
            ),
            (
                "work_mem_max",
                self.work_mem_max,
                ByteSize::kib(64),
                PG_MAX_KB_SIZE,
                "PostgreSQL's range for work_mem",
            ),
            (
                "maintenance_work_mem",
                self.maintenance_work_mem.unwrap_or(ByteSize::mib(64)),
                ByteSize::mib(1),
                PG_MAX_KB_SIZE,
                "PostgreSQL's range",
            ),
            (
                "autovacuum_work_mem",
                self.autovacuum_work_mem,
                ByteSize::mib(1),
                PG_MAX_KB_SIZE,
                "PostgreSQL's range",
            ),
        ];
        for (key, v, lo, hi, what) in sizes {
            range_size(s, key, v, lo, hi, what)?;
        }
        if self.work_mem_min < crate::plan::memory::WORK_MEM_FLOOR {
            return Err(BadValue::at(Some(s), "work_mem_min").says(
                format!(
                    "work_mem_min {} is below dbtune's floor, {} (PostgreSQL's default work_mem): \
                     under it sorts and hashes a default server does in memory spill to temp files",
                    self.work_mem_min,
                    crate::plan::memory::WORK_MEM_FLOOR
                ),
                "leave it out (4MiB); render lowers connections, or refuses, before it goes below",
            ));
        }
        if self.work_mem_min > self.work_mem_max {
            return Err(BadValue::at(Some(s), "work_mem_min")
                .says("work_mem_min is larger than work_mem_max", "swap them"));
        }
        Ok(())
    }

    /// Workers inside PostgreSQL's range (the budget's assumptions are
    /// [`check_assumptions`]'s).
    fn check_counts(&self, s: &str) -> Result<(), BadValue> {
        range_u32(
            s,
            "autovacuum_max_workers",
            self.autovacuum_max_workers,
            1,
            PG_MAX_BACKENDS,
            "PostgreSQL's range",
        )
    }
}

impl RedisPolicy {
    fn check(&self) -> Result<(), BadValue> {
        let s = "redis";
        if !redis_bind_ok(&self.listen) {
            return Err(BadValue::at(Some(s), "listen").says(
                format!("`{}` is not a Redis bind list", self.listen.escape_debug()),
                "IP addresses separated by spaces, e.g. \"127.0.0.1\" or \"10.0.0.5 -::1\"",
            ));
        }
        port_ok(s, self.port)?;
        if !path_ok(&self.dir) {
            return Err(BadValue::at(Some(s), "dir").says(
                format!("`{}` is not a directory path dbtune writes", self.dir.escape_debug()),
                "an absolute path of letters, digits and / _ . - + @, e.g. \"/var/lib/redis\" or \"/data\"",
            ));
        }
        range_size(
            s,
            "maxmemory_max",
            self.maxmemory_max,
            ByteSize::mib(16),
            crate::facts::MAX_RAM,
            "the cap on Redis's maxmemory",
        )?;
        if let Some(f) = self.fragmentation {
            if !(1.0..=3.0).contains(&f) {
                return Err(BadValue::at(Some(s), "fragmentation").says(
                    format!("fragmentation = {f} is out of range"),
                    "1.0 to 3.0: the highest mem_fragmentation_ratio `dbtune observe` saw on this \
                     host (resident memory over the data)",
                ));
            }
        }
        if let Some(f) = self.fork_copy {
            if !(0.0..=3.0).contains(&f) {
                return Err(BadValue::at(Some(s), "fork_copy").says(
                    format!("fork_copy = {f} is out of range"),
                    "0.0 to 3.0: a save's copy-on-write over the data (rdb_last_cow_size / \
                     used_memory in `dbtune observe`), at its busiest save",
                ));
            }
        }
        range_size(
            s,
            "write_rate",
            self.write_rate,
            ByteSize::ZERO,
            ByteSize::gib(10),
            "bytes of writes a second at Redis's busiest moment, e.g. \"32MiB\": up to 3 s of \
             them wait in the AOF buffer while an fsync lags",
        )?;
        range_u32(
            s,
            "maxclients",
            self.maxclients,
            1,
            MAX_CLIENTS,
            "Redis refuses 0 clients, and each client is an open file: the kernel's fs.nr_open \
             (1048576) bounds them",
        )?;
        if !self.role.allows(self.eviction()) {
            return Err(BadValue::at(Some(s), "policy").says(
                format!(
                    "policy `{}` can evict what a Redis of role `{}` must keep",
                    self.eviction(),
                    self.role
                ),
                format!(
                    "leave policy out (role `{}` gets `{}`), or say the Redis is a cache \
                     (role = \"cache\") if the application can lose any key",
                    self.role,
                    self.role.policy()
                ),
            ));
        }
        if matches!(self.role, RedisRole::Queue | RedisRole::Mixed)
            && self.persistence == Persistence::None
        {
            return Err(BadValue::at(Some(s), "persistence").says(
                format!(
                    "persistence `none` with role `{}`: a restart loses every queued task",
                    self.role
                ),
                "use \"rdb+aof\" or \"aof\" (or \"rdb\", which loses the writes since the last save)",
            ));
        }
        for c in &self.disable_commands {
            let ok = c.len() <= 64
                && c.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
            if !ok {
                return Err(BadValue::at(Some(s), "disable_commands").says(
                    format!("`{}` is not a Redis command name", c.escape_debug()),
                    "command names such as FLUSHALL, DEBUG, KEYS",
                ));
            }
        }
        Ok(())
    }
}

impl PgBouncerPolicy {
    fn check(&self) -> Result<(), BadValue> {
        let s = "pgbouncer";
        if !listen_list_ok(&self.listen) {
            return Err(BadValue::at(Some(s), "listen").says(
                format!(
                    "`{}` is not a listen address list",
                    self.listen.escape_debug()
                ),
                "`*`, or IP addresses and host names separated by commas",
            ));
        }
        port_ok(s, self.port)?;
        if !path_ok(&self.auth_file) {
            return Err(BadValue::at(Some(s), "auth_file").says(
                format!(
                    "`{}` is not a file path dbtune writes",
                    self.auth_file.escape_debug()
                ),
                "an absolute path of letters, digits and / _ . - + @",
            ));
        }
        let db_ok = self.database.len() <= 63
            && self
                .database
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && self
                .database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !db_ok {
            return Err(BadValue::at(Some(s), "database").says(
                format!(
                    "`{}` is not a database name dbtune writes",
                    self.database.escape_debug()
                ),
                "letters, digits, _ - and ., starting with a letter or _, at most 63",
            ));
        }
        range_u32(
            s,
            "max_client_conn",
            self.max_client_conn,
            1,
            1_000_000,
            "client connections PgBouncer accepts",
        )?;
        if self.enabled && self.pool_size == 0 {
            return Err(BadValue::at(Some(s), "pool_size").says(
                "pgbouncer.pool_size is 0: no client could ever be served",
                "set pool_size to the number of server connections PgBouncer may open",
            ));
        }
        range_u32(
            s,
            "pool_size",
            self.pool_size,
            0,
            PG_MAX_BACKENDS,
            "server connections per pool",
        )?;
        range_u32(
            s,
            "min_pool_size",
            self.min_pool_size,
            0,
            PG_MAX_BACKENDS,
            "server connections kept open",
        )?;
        range_u32(
            s,
            "reserve_pool_size",
            self.reserve_pool_size,
            0,
            PG_MAX_BACKENDS,
            "extra server connections",
        )?;
        range_u32(
            s,
            "direct_connections",
            self.direct_connections,
            0,
            PG_MAX_BACKENDS,
            "PostgreSQL slots for clients that bypass PgBouncer",
        )
    }
}

impl ZfsPolicy {
    fn check(&self) -> Result<(), BadValue> {
        if !is_zfs_name(&self.pool, true) {
            return Err(BadValue::at(Some("zfs"), "pool").says(
                format!("`{}` is not a ZFS pool name", self.pool.escape_debug()),
                "letters, digits and _ - . :, starting with a letter",
            ));
        }
        if self.dataset.split('/').any(|c| !is_zfs_name(c, false)) {
            return Err(BadValue::at(Some("zfs"), "dataset").says(
                format!(
                    "`{}` is not a ZFS dataset name",
                    self.dataset.escape_debug()
                ),
                "components of letters, digits and _ - . : separated by /",
            ));
        }
        for (table, props) in [("zfs.data", &self.data), ("zfs.wal", &self.wal)] {
            for (k, v) in props {
                if !ZFS_PROPERTIES.contains(&k.as_str()) {
                    return Err(BadValue::at(Some(table), k.as_str()).says(
                        format!(
                            "`{}` in [{table}] is not a ZFS property dbtune sets",
                            k.escape_debug()
                        ),
                        format!("known properties: {}", ZFS_PROPERTIES.join(", ")),
                    ));
                }
                if !zfs_value_ok(k, v) {
                    return Err(BadValue::at(Some(table), k.as_str()).says(
                        format!("`{}` is not a value ZFS accepts for {k}", v.escape_debug()),
                        match k.as_str() {
                            "compression" => {
                                "on, off, lz4, zstd, zstd-N, gzip, gzip-N, zle, lzjb".to_string()
                            }
                            "recordsize" => {
                                "a power of two from 512 to 16M, like 16K or 128K".to_string()
                            }
                            _ => "see `man zfsprops`".to_string(),
                        },
                    ));
                }
            }
        }
        Ok(())
    }
}
