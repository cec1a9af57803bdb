//! Profiles: policy. The workload, the host a profile was written for, what
//! else runs on it, and per-service preferences. Built-ins live in
//! `profiles/*.toml` and are embedded; users add their own files.
//!
//! The schema is here; [`check`] holds every value to its bounds (with its
//! line), [`load`] finds built-in and user profiles, [`pick`] says what
//! render tunes when no profile is named.

mod check;
mod load;
mod pick;

pub use check::zfs_value_ok;
pub use load::{load_file, user_profile_dir, Profiles};
pub use pick::unnamed;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};

use crate::doc::*;
use crate::facts::StorageKind;
use crate::units::ByteSize;
use crate::version::PgVersion;

pub const BUILTIN: &[(&str, &str)] = &[
    ("low-memory", include_str!("../../profiles/low-memory.toml")),
    (
        "bulk-ingest",
        include_str!("../../profiles/bulk-ingest.toml"),
    ),
    ("powerhouse", include_str!("../../profiles/powerhouse.toml")),
    (GENERIC, include_str!("../../profiles/postgres-only.toml")),
];

/// The profile render uses when none is named: PostgreSQL alone, for the
/// stated workload.
pub const GENERIC: &str = "postgres-only";

/// What the database is for: a question dbtune asks (`workload =` in a
/// profile, `--workload`), never guesses from the host's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Many short queries from an application (web, OLTP).
    #[serde(alias = "oltp")]
    #[value(alias = "oltp")]
    Web,
    /// Short queries and reports on the same server: the default.
    Mixed,
    /// Long queries over much data (reporting, a warehouse).
    Analytics,
    /// Bulk loads: COPY, big transactions, index builds.
    Ingest,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Web => "web",
            Workload::Mixed => "mixed",
            Workload::Analytics => "analytics",
            Workload::Ingest => "ingest",
        })
    }
}

impl Workload {
    /// The clients a server for this workload is sized for when the profile
    /// does not say: many short sessions for web, a few long ones for
    /// analytics and loads (PGTune's web 200, mixed 100, dw 40). Render
    /// lowers it to fit the memory.
    pub fn connections(self) -> u32 {
        match self {
            Workload::Web => 200,
            Workload::Mixed => 100,
            Workload::Analytics | Workload::Ingest => 40,
        }
    }
}

/// The host a profile was written for; used when no facts are given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NominalHost {
    pub ram: ByteSize,
    pub cpus: u32,
    pub storage: StorageKind,
    #[serde(default = "default_fs")]
    pub filesystem: String,
    pub pg_version: PgVersion,
}

fn default_fs() -> String {
    "ext4".into()
}

/// Memory another process on the host needs (API workers, Celery...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    pub name: String,
    pub memory: ByteSize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OsPolicy {
    /// The kernel, sshd, cron, log shippers: at least this much...
    pub reserve_min: ByteSize,
    /// ...or this fraction of RAM, whichever is larger.
    pub reserve_fraction: Fraction,
    pub swappiness: u32,
}

impl Default for OsPolicy {
    fn default() -> Self {
        OsPolicy {
            reserve_min: ByteSize::mib(512),
            reserve_fraction: Fraction(0.05),
            swappiness: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresPolicy {
    pub listen: String,
    pub port: u16,
    /// Connections clients open directly (without PgBouncer): the target
    /// max_connections when PgBouncer is off. Unset: the workload's.
    pub max_connections: Option<u32>,
    /// The application's own pool: connections it opens at once (workers x
    /// pool size). Unset: not known. Without PgBouncer, a max_connections
    /// below it is refused.
    pub app_connections: Option<u32>,
    /// Below this many connections render refuses rather than shrink further.
    pub min_connections: u32,
    /// Of PostgreSQL's share of memory.
    pub shared_buffers_fraction: Fraction,
    pub shared_buffers_max: ByteSize,
    pub work_mem_min: ByteSize,
    pub work_mem_max: ByteSize,
    /// Unset: sized from the host (a 16th of PostgreSQL's share, at least
    /// 32 MB per parallel index build participant, at most 2 GB).
    pub maintenance_work_mem: Option<ByteSize>,
    pub autovacuum_work_mem: ByteSize,
    pub autovacuum_max_workers: u32,
    /// Keep WAL for replicas and point-in-time recovery. `false` allows
    /// wal_level = minimal: faster bulk loads, no replicas, no PITR.
    pub replication: bool,
    pub huge_pages: bool,
    /// Whether the workload creates temporary tables (temp_buffers counts).
    pub temp_tables: bool,
    /// Sort/hash nodes one query may run at once, each up to work_mem.
    pub sorts_per_query: u32,
    /// Manual VACUUM / CREATE INDEX sessions that may run at once.
    pub manual_maintenance: u32,
    /// Query statistics: pg_stat_statements loaded, its shared memory
    /// budgeted.
    pub query_stats: bool,
    /// Share of connections running a sort or hash at a typical moment
    /// (the budget's typical column).
    pub busy_share: Fraction,
    /// Private memory of a backend when the workload's differs from the one
    /// measured (data/pg-memory.tsv); unset: as measured.
    pub backend_memory: Option<ByteSize>,
}

impl Default for PostgresPolicy {
    fn default() -> Self {
        PostgresPolicy {
            listen: "127.0.0.1".into(),
            port: 5432,
            max_connections: None,
            app_connections: None,
            min_connections: 10,
            shared_buffers_fraction: Fraction(0.25),
            shared_buffers_max: ByteSize::gib(16),
            work_mem_min: crate::plan::memory::WORK_MEM_FLOOR,
            work_mem_max: ByteSize::mib(64),
            maintenance_work_mem: None,
            autovacuum_work_mem: ByteSize::mib(128),
            autovacuum_max_workers: 3,
            replication: true,
            huge_pages: false,
            temp_tables: false,
            sorts_per_query: 2,
            manual_maintenance: 1,
            query_stats: false,
            busy_share: Fraction(0.25),
            backend_memory: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persistence {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "rdb")]
    Rdb,
    #[serde(rename = "aof")]
    Aof,
    #[serde(rename = "rdb+aof")]
    RdbAof,
}

impl Persistence {
    /// RDB saves and AOF rewrites fork; the child shares pages copy-on-write.
    pub fn forks(self) -> bool {
        self != Persistence::None
    }
}

/// Redis's `maxmemory-policy` values.
/// The kernel's default fs.nr_open: no process may open more files, and a
/// systemd LimitNOFILE= above it keeps the unit from starting. The client
/// counts a profile may ask for are bounded so that the limits render
/// writes stay within it.
pub const NR_OPEN_DEFAULT: u64 = 1_048_576;

/// The most Redis clients a profile may ask for: each is an open file, and
/// with the 128 Redis keeps for itself they stay within fs.nr_open.
pub const MAX_CLIENTS: u32 = NR_OPEN_DEFAULT as u32 - 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    VolatileLru,
    AllkeysLru,
    VolatileLfu,
    AllkeysLfu,
    VolatileRandom,
    AllkeysRandom,
    VolatileTtl,
    Noeviction,
}

impl EvictionPolicy {
    /// The policy a redis.conf names (any case), None for a name Redis
    /// does not know (reported elsewhere).
    pub fn parse(name: &str) -> Option<EvictionPolicy> {
        <EvictionPolicy as clap::ValueEnum>::from_str(name, true).ok()
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::AllkeysLru => "allkeys-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::AllkeysLfu => "allkeys-lfu",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::AllkeysRandom => "allkeys-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
            EvictionPolicy::Noeviction => "noeviction",
        })
    }
}

/// What a Redis holds, which decides what it may lose: a cache can drop any
/// key (the application recomputes it), sessions can lose those that
/// expire anyway (users log in again), a queue or broker can lose nothing
/// (a dropped key is a task that never runs). `mixed` is a queue among
/// other data, the staging seed's one Redis for sessions, the Celery broker
/// and its results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RedisRole {
    Cache,
    Sessions,
    Queue,
    #[default]
    Mixed,
}

impl fmt::Display for RedisRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RedisRole::Cache => "cache",
            RedisRole::Sessions => "sessions",
            RedisRole::Queue => "queue",
            RedisRole::Mixed => "mixed",
        })
    }
}

impl RedisRole {
    /// The eviction policy that loses only what this role can lose.
    pub fn policy(self) -> EvictionPolicy {
        match self {
            RedisRole::Cache => EvictionPolicy::AllkeysLru,
            RedisRole::Sessions => EvictionPolicy::VolatileLru,
            RedisRole::Queue | RedisRole::Mixed => EvictionPolicy::Noeviction,
        }
    }

    /// Whether `policy` can evict data this role must keep: any eviction
    /// for a queue, and keys without a TTL for sessions.
    pub fn allows(self, policy: EvictionPolicy) -> bool {
        match self {
            RedisRole::Cache => true,
            RedisRole::Sessions => policy.only_expiring(),
            RedisRole::Queue | RedisRole::Mixed => policy == EvictionPolicy::Noeviction,
        }
    }

    /// What happens when Redis is full, in words.
    pub fn when_full(self, policy: EvictionPolicy) -> &'static str {
        match (policy, self) {
            (EvictionPolicy::Noeviction, RedisRole::Queue) => {
                "writes are refused (an OOM error to the producer) when the queue reaches \
                 maxmemory; nothing is evicted, no queued task or result is dropped"
            }
            (EvictionPolicy::Noeviction, RedisRole::Mixed) => {
                "writes are refused (an OOM error to whoever writes: the app storing a session, \
                 the producer queueing a task, the worker storing a result) when the data reaches \
                 maxmemory; nothing is evicted, no queued task, session or result is dropped"
            }
            (EvictionPolicy::Noeviction, _) => {
                "when Redis is full, writes fail with an OOM error; nothing is evicted"
            }
            (p, _) if p.only_expiring() => {
                "when Redis is full, keys with a TTL (sessions) may go before they expire, and users \
                 log in again; keys without one are never evicted (writes then fail)"
            }
            _ => "when Redis is full, any key may be evicted, the least recently used first: \
                  the application must be able to recompute what it cached",
        }
    }
}

impl EvictionPolicy {
    /// Evicts only keys that have a TTL (or nothing).
    pub fn only_expiring(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
                | EvictionPolicy::Noeviction
        )
    }
}

/// PgBouncer's `pool_mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    Session,
    Transaction,
    Statement,
}

impl fmt::Display for PoolMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisPolicy {
    pub enabled: bool,
    pub listen: String,
    pub port: u16,
    /// Of the memory left after reservations.
    pub share: Fraction,
    pub maxmemory_max: ByteSize,
    /// What it holds: decides the eviction policy and what persistence it
    /// needs.
    pub role: RedisRole,
    /// Unset: the role's. Set: refused when it can evict what the role
    /// must keep.
    pub policy: Option<EvictionPolicy>,
    pub persistence: Persistence,
    pub maxclients: u32,
    pub disable_commands: Vec<String>,
    /// Where RDB and AOF files go: Redis refuses to start where it does
    /// not exist (`/data` in the redis image, `/var/lib/redis` on Debian).
    pub dir: String,
    /// Redis's worst fragmentation on this host, as observed (the highest
    /// mem_fragmentation_ratio), in place of the one measured for its role
    /// (data/redis-roles.tsv).
    pub fragmentation: Option<f64>,
    /// A save's copy-on-write over maxmemory on this host, as observed
    /// (rdb_last_cow_size / used_memory at its busiest save).
    pub fork_copy: Option<f64>,
    /// Bytes of writes a second at the busiest moment: with the AOF on,
    /// up to 3 s of them wait in its buffer while an fsync lags
    /// (`model::redis_aof_buffer`).
    pub write_rate: ByteSize,
}

impl RedisPolicy {
    /// The `maxmemory-policy` to render: the profile's, else its role's.
    pub fn eviction(&self) -> EvictionPolicy {
        self.policy.unwrap_or(self.role.policy())
    }
}

impl Default for RedisPolicy {
    fn default() -> Self {
        RedisPolicy {
            enabled: true,
            listen: "127.0.0.1".into(),
            port: 6379,
            share: Fraction(0.2),
            maxmemory_max: ByteSize::gib(4),
            role: RedisRole::default(),
            policy: None,
            persistence: Persistence::Rdb,
            maxclients: 1000,
            disable_commands: vec!["FLUSHDB".into(), "FLUSHALL".into(), "DEBUG".into()],
            dir: "/var/lib/redis".into(),
            fragmentation: None,
            fork_copy: None,
            write_rate: crate::model::REDIS_WRITE_RATE,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PgBouncerPolicy {
    pub enabled: bool,
    pub listen: String,
    pub port: u16,
    /// The database clients connect to through PgBouncer.
    pub database: String,
    pub pool_mode: PoolMode,
    pub max_client_conn: u32,
    pub pool_size: u32,
    pub min_pool_size: u32,
    pub reserve_pool_size: u32,
    /// PostgreSQL slots kept for clients that bypass PgBouncer
    /// (migrations, psql, monitoring).
    pub direct_connections: u32,
    /// The user list with SCRAM verifiers (never in pgbouncer.ini).
    pub auth_file: String,
}

impl Default for PgBouncerPolicy {
    fn default() -> Self {
        PgBouncerPolicy {
            enabled: false,
            listen: "127.0.0.1".into(),
            port: 6432,
            database: "app".into(),
            pool_mode: PoolMode::Transaction,
            max_client_conn: 1000,
            pool_size: 20,
            min_pool_size: 0,
            reserve_pool_size: 5,
            direct_connections: 10,
            auth_file: "/etc/pgbouncer/userlist.txt".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ZfsMode {
    Auto,
    On,
    Off,
}

impl<'de> Deserialize<'de> for ZfsMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::B(true) => Ok(ZfsMode::On),
            Raw::B(false) => Ok(ZfsMode::Off),
            Raw::S(s) if s == "auto" => Ok(ZfsMode::Auto),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "`{s}`: expected true, false or \"auto\""
            ))),
        }
    }
}

pub const ZFS_PROPERTIES: &[&str] = &[
    "atime",
    "checksum",
    "compression",
    "logbias",
    "primarycache",
    "recordsize",
    "redundant_metadata",
    "secondarycache",
    "sync",
    "xattr",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZfsPolicy {
    /// `"auto"`: when the data directory is on ZFS (or ZFS is present).
    pub enabled: ZfsMode,
    /// Of the memory left after reservations, for the ARC.
    pub arc_share: Fraction,
    pub pool: String,
    /// Parent dataset; data and WAL are children of it.
    pub dataset: String,
    pub data: BTreeMap<String, String>,
    pub wal: BTreeMap<String, String>,
}

impl Default for ZfsPolicy {
    fn default() -> Self {
        let props = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ZfsPolicy {
            enabled: ZfsMode::Auto,
            arc_share: Fraction(0.25),
            pool: "tank".into(),
            dataset: "postgres".into(),
            data: props(&[
                ("atime", "off"),
                ("compression", "lz4"),
                ("logbias", "throughput"),
                ("recordsize", "16K"),
                ("xattr", "sa"),
            ]),
            wal: props(&[
                ("atime", "off"),
                ("compression", "lz4"),
                ("logbias", "latency"),
                ("recordsize", "128K"),
                ("xattr", "sa"),
            ]),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub workload: Workload,
    /// Where the files run, as the team deploys: `render --layout`
    /// overrides it. Unset: systemd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<crate::plan::layout::Layout>,
    pub host: NominalHost,
    #[serde(default)]
    pub reserve: Vec<Reservation>,
    #[serde(default)]
    pub os: OsPolicy,
    #[serde(default)]
    pub postgres: PostgresPolicy,
    #[serde(default)]
    pub redis: RedisPolicy,
    #[serde(default)]
    pub pgbouncer: PgBouncerPolicy,
    #[serde(default)]
    pub zfs: ZfsPolicy,
}

impl Profile {
    /// The max_connections asked for direct clients: the profile's, else the
    /// workload's.
    pub fn max_connections(&self) -> u32 {
        self.postgres
            .max_connections
            .unwrap_or(self.workload.connections())
    }

    /// What the profile says of the workload, as the memory model's
    /// assumptions.
    pub fn assumptions(&self) -> crate::model::Assumptions {
        crate::model::Assumptions {
            sorts_per_query: self.postgres.sorts_per_query,
            manual_maintenance: self.postgres.manual_maintenance,
            temp_tables: self.postgres.temp_tables,
            busy_fraction_typical: self.postgres.busy_share.0,
            backend_memory: self.postgres.backend_memory,
            redis_fragmentation: self.redis.fragmentation,
            redis_fork_copy: self.redis.fork_copy,
            redis_role: self.redis.enabled.then_some(self.redis.role),
            redis_write_rate: self.redis.write_rate,
            ..crate::model::Assumptions::default()
        }
    }

    /// The memory the profile says other things hold on a host of `ram`:
    /// the OS reserve and each `[[reserve]]`.
    pub fn reserves(&self, ram: ByteSize) -> Vec<crate::model::HostReserve> {
        use crate::model::HostReserve;
        let os_reserve = self
            .os
            .reserve_min
            .max(ram.scale(self.os.reserve_fraction.0));
        let mut reserves = vec![HostReserve {
            name: "OS reserve".into(),
            memory: os_reserve,
            source: format!(
                "profile {} [os]: max({}, {:.0}% of RAM)",
                self.name,
                self.os.reserve_min,
                self.os.reserve_fraction.0 * 100.0
            ),
        }];
        for r in &self.reserve {
            reserves.push(HostReserve {
                name: r.name.clone(),
                memory: r.memory,
                source: format!("profile {} [[reserve]]", self.name),
            });
        }
        reserves
    }

    /// The services the profile runs: PostgreSQL, and each optional one it
    /// enables (ZFS when not switched off).
    pub fn services(&self) -> Vec<crate::service::Service> {
        use crate::service::Service;
        let mut out = vec![Service::Postgres];
        if self.pgbouncer.enabled {
            out.push(Service::Pgbouncer);
        }
        if self.redis.enabled {
            out.push(Service::Redis);
        }
        // "auto" is the facts' call: listed only when switched on.
        if self.zfs.enabled == ZfsMode::On {
            out.push(Service::Zfs);
        }
        out
    }

    /// Runs exactly `services` (PostgreSQL always): the choice a host makes
    /// over the profile's (`--services`). ZFS listed means ZFS is in use.
    pub fn with_services(mut self, services: &[crate::service::Service]) -> Profile {
        use crate::service::Service;
        self.pgbouncer.enabled = services.contains(&Service::Pgbouncer);
        self.redis.enabled = services.contains(&Service::Redis);
        self.zfs.enabled = if services.contains(&Service::Zfs) {
            ZfsMode::On
        } else {
            ZfsMode::Off
        };
        self
    }
}

/// Where a profile was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn builtin_profiles_parse_and_are_named_after_their_file() {
        for (name, text) in BUILTIN {
            let p = Profile::parse(text, Path::new(name)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&p.name, name);
        }
    }

    #[test]
    fn unknown_key_is_reported_with_its_line() {
        let text = BUILTIN[0]
            .1
            .replace("[postgres]\n", "[postgres]\nshared_bufers = 3\n");
        let e = Profile::parse(&text, Path::new("p.toml")).unwrap_err();
        let line = text
            .lines()
            .position(|l| l.starts_with("shared_bufers"))
            .unwrap()
            + 1;
        assert_eq!(
            e.place().map(ToString::to_string),
            Some(format!("p.toml:{line}"))
        );
        assert!(e.message().contains("shared_bufers"), "{}", e.message());
    }

    /// Each bad value at the line of its key, from toml's spans: in a
    /// table, a dotted key, an inline table, the second `[[reserve]]`; a
    /// value the file does not write (a default that conflicts) at its
    /// table's line.
    #[test]
    fn a_bad_value_is_reported_at_its_own_line() {
        let base =
            "name = \"t\"\ndescription = \"test\"\nworkload = \"web\"\n\n[host]\nram = \"4GiB\"\n\
                    cpus = 2\nstorage = \"ssd\"\npg_version = 16\n";
        assert!(Profile::parse(base, Path::new("p.toml")).is_ok());
        let line_of =
            |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let at = |text: &str| {
            let e = Profile::parse(text, Path::new("p.toml")).unwrap_err();
            (e.place().unwrap().to_string(), e.message().to_string())
        };
        let expect = |text: &str, needle: &str| {
            let (location, message) = at(text);
            assert_eq!(
                location,
                format!("p.toml:{}", line_of(text, needle)),
                "{message}"
            );
        };
        // An unknown key in a table of free keys (checked after reading).
        expect(
            &format!("{base}[zfs.data]\natime = \"off\"\natimx = \"off\"\n"),
            "atimx",
        );
        expect(&format!("{base}[zfs.wal]\nrecordsize = \"3K\"\n"), "3K");
        // The second element of an array of tables.
        expect(
            &format!(
                "{base}[[reserve]]\nname = \"api\"\nmemory = \"1GiB\"\n\n[[reserve]]\nname = \"two\\nlines\"\nmemory = \"1GiB\"\n"
            ),
            "two",
        );
        // A dotted key, and an inline table.
        expect(&format!("redis.port = 0\n{base}"), "redis.port");
        expect(
            &format!("pgbouncer = {{ listen = \"no way!\" }}\n{base}"),
            "no way",
        );
        expect(
            &format!("{base}[postgres]\nmax_connections = 5\nmin_connections = 6\n"),
            "min_connections",
        );
        // A default the file does not write that conflicts with one it
        // does: the table's line.
        expect(
            &format!("{base}[postgres]\nmax_connections = 5\n"),
            "[postgres]",
        );
    }

    /// A Redis's role decides what it may lose: a policy that evicts what
    /// the role keeps, or a queue without persistence, is refused at its
    /// line; a role alone gets its policy.
    #[test]
    fn eviction_policies_parse_as_redis_names_them() {
        for p in <EvictionPolicy as clap::ValueEnum>::value_variants() {
            assert_eq!(EvictionPolicy::parse(&p.to_string()), Some(*p));
        }
        assert_eq!(
            EvictionPolicy::parse("AllKeys-LRU"),
            Some(EvictionPolicy::AllkeysLru)
        );
        assert_eq!(EvictionPolicy::parse("lru"), None);
    }

    #[test]
    fn a_redis_role_refuses_policies_that_lose_what_it_keeps() {
        let base = "name = \"t\"\ndescription = \"test\"\nworkload = \"web\"\n\n[host]\n\
                    ram = \"4GiB\"\ncpus = 2\nstorage = \"ssd\"\npg_version = 16\n\n[redis]\n";
        let parse = |extra: &str| Profile::parse(&format!("{base}{extra}"), Path::new("p.toml"));
        // (role, policy, accepted)
        let rows = [
            ("cache", "allkeys-lru", true),
            ("cache", "noeviction", true),
            ("sessions", "volatile-lru", true),
            ("sessions", "volatile-ttl", true),
            ("sessions", "allkeys-lru", false),
            ("queue", "noeviction", true),
            ("queue", "volatile-lru", false),
            ("mixed", "allkeys-lfu", false),
            ("mixed", "volatile-lru", false),
        ];
        for (role, policy, ok) in rows {
            let r = parse(&format!("role = \"{role}\"\npolicy = \"{policy}\"\n"));
            assert_eq!(r.is_ok(), ok, "{role} {policy}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.place().unwrap().line, Some(13), "{e}");
                assert_eq!(e.place().unwrap().setting.as_deref(), Some("redis.policy"));
            }
        }
        // Unset role: mixed, so an evicting policy needs a role said.
        assert!(parse("policy = \"allkeys-lru\"\n").is_err());
        let p = parse("").unwrap();
        assert_eq!(p.redis.eviction(), EvictionPolicy::Noeviction);
        for (role, policy) in [
            (RedisRole::Cache, EvictionPolicy::AllkeysLru),
            (RedisRole::Sessions, EvictionPolicy::VolatileLru),
            (RedisRole::Queue, EvictionPolicy::Noeviction),
        ] {
            let p = parse(&format!("role = \"{role}\"\n")).unwrap();
            assert_eq!(p.redis.eviction(), policy, "{role}");
        }
        let e = parse("role = \"queue\"\npersistence = \"none\"\n").unwrap_err();
        assert!(e.message().contains("loses every queued task"), "{e}");
        assert!(parse("role = \"cache\"\npersistence = \"none\"\n").is_ok());
    }

    #[test]
    fn bad_size_and_bad_fraction_are_reported() {
        let text = BUILTIN[0].1.replace("ram = \"4GiB\"", "ram = \"4XB\"");
        let e = Profile::parse(&text, Path::new("p.toml")).unwrap_err();
        assert!(e.message().contains("unknown unit"), "{}", e.message());

        let text = BUILTIN[0].1.replace(
            "shared_buffers_fraction = 0.25",
            "shared_buffers_fraction = 2.5",
        );
        let e = Profile::parse(&text, Path::new("p.toml")).unwrap_err();
        assert!(e.message().contains("not a fraction"), "{}", e.message());
    }

    #[test]
    fn no_profile_named_is_postgres_alone_for_the_stated_workload() {
        let all = Profiles {
            entries: BUILTIN
                .iter()
                .map(|(n, t)| (Profile::parse(t, Path::new(n)).unwrap(), Origin::Builtin))
                .collect(),
            user_dir: None,
        };
        let (p, _, say) = unnamed(&all, None).unwrap();
        assert_eq!(p.name, GENERIC);
        assert_eq!(p.workload, Workload::Mixed);
        assert!(p.reserve.is_empty() && !p.redis.enabled && !p.pgbouncer.enabled);
        assert_eq!(p.max_connections(), 100);
        assert!(
            say.contains("PostgreSQL alone for a mixed workload (the default"),
            "{say}"
        );
        let (p, _, say) = unnamed(&all, Some(Workload::Analytics)).unwrap();
        assert_eq!((p.workload, p.max_connections()), (Workload::Analytics, 40));
        assert!(say.contains("analytics workload (--workload)"), "{say}");
        // A named profile keeps its workload unless --workload says one.
        let lm = all.get("low-memory").unwrap().0;
        assert_eq!(lm.clone().with_workload(Some(Workload::Web)).1, None);
        let (p, said) = lm.with_workload(Some(Workload::Ingest));
        assert_eq!(p.workload, Workload::Ingest);
        assert!(said.unwrap().contains("profile low-memory says web"));
    }
}
