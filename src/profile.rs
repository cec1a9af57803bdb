//! Profiles: policy. The workload, the host a profile was written for, what
//! else runs on it, and per-service preferences. Built-ins live in
//! `profiles/*.toml` and are embedded; users add their own files.

use crate::version::PgVersion;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;
use crate::facts::StorageKind;
use crate::units::ByteSize;

pub const BUILTIN: &[(&str, &str)] = &[
    ("low-memory", include_str!("../profiles/low-memory.toml")),
    ("bulk-ingest", include_str!("../profiles/bulk-ingest.toml")),
    ("powerhouse", include_str!("../profiles/powerhouse.toml")),
];

/// A number in 0..=1, checked while reading so the error points at its line.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
pub struct Fraction(pub f64);

impl Fraction {
    /// `v` when it is in 0..=1, else why not.
    pub fn new(v: f64) -> Result<Fraction, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(Fraction(v))
        } else {
            Err(format!(
                "{v} is not a fraction: it must be between 0.0 and 1.0"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fraction::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Many short queries from an application.
    Web,
    /// Bulk loads: COPY, big transactions, index builds.
    Ingest,
    /// Both, on a large host.
    Mixed,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Web => "web",
            Workload::Ingest => "ingest",
            Workload::Mixed => "mixed",
        })
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
    /// max_connections when PgBouncer is off.
    pub max_connections: u32,
    /// Below this many connections render refuses rather than shrink further.
    pub min_connections: u32,
    /// Of PostgreSQL's share of memory.
    pub shared_buffers_fraction: Fraction,
    pub shared_buffers_max: ByteSize,
    pub work_mem_min: ByteSize,
    pub work_mem_max: ByteSize,
    pub maintenance_work_mem: ByteSize,
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
            max_connections: 100,
            min_connections: 10,
            shared_buffers_fraction: Fraction(0.25),
            shared_buffers_max: ByteSize::gib(16),
            work_mem_min: ByteSize::mib(1),
            work_mem_max: ByteSize::mib(64),
            maintenance_work_mem: ByteSize::mib(64),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    pub policy: EvictionPolicy,
    pub persistence: Persistence,
    pub maxclients: u32,
    pub disable_commands: Vec<String>,
    /// Where RDB and AOF files go: Redis refuses to start where it does
    /// not exist (`/data` in the redis image, `/var/lib/redis` on Debian).
    pub dir: String,
}

impl Default for RedisPolicy {
    fn default() -> Self {
        RedisPolicy {
            enabled: true,
            listen: "127.0.0.1".into(),
            port: 6379,
            share: Fraction(0.2),
            maxmemory_max: ByteSize::gib(4),
            policy: EvictionPolicy::AllkeysLru,
            persistence: Persistence::Rdb,
            maxclients: 1000,
            disable_commands: vec!["FLUSHDB".into(), "FLUSHALL".into(), "DEBUG".into()],
            dir: "/var/lib/redis".into(),
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

impl Profile {
    /// Parses and checks a profile; `path` names it in errors. Every value
    /// is checked here, with its line, before anything uses it: profile
    /// values end up in config files and a shell script.
    pub fn parse(text: &str, path: &Path) -> Result<Profile, Error> {
        let hint = "see docs/profiles.md for every field and its default";
        let p: Profile =
            toml::from_str(text).map_err(|e| Error::from_toml(path, text, &e, hint))?;
        if let Err(bad) = p.check() {
            let keys: Vec<&str> = bad.path.iter().map(String::as_str).collect();
            let line = toml_line(text, &keys);
            return Err(Error::input(
                format!("{}:{line}", path.display()),
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
            check_reserve(&format!("reserve.{i}"), &r.name, r.memory)?;
        }
        self.os.check()?;
        self.postgres.check()?;
        check_assumptions(&crate::plan::assumptions_of(self), "postgres", "busy_share")?;
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

/// A reservation's name (plain text: it is printed in reports) and size
/// (more than 0, at most the largest host): the bounds a profile's
/// `[[reserve]]` and a manifest's `reserves` are both held to.
pub fn check_reserve(entry: &str, name: &str, memory: ByteSize) -> Result<(), BadValue> {
    text_ok(name, 100, BadValue::at(Some(entry), "name"))?;
    if memory == ByteSize::ZERO || memory > crate::facts::MAX_RAM {
        return Err(BadValue::at(Some(entry), "memory").says(
            format!("reserve `{name}`: {memory} is out of range"),
            format!(
                "a reservation is more than 0 and at most {}",
                crate::facts::MAX_RAM
            ),
        ));
    }
    Ok(())
}

/// The budget's assumptions within their bounds: what a profile states
/// (under `[postgres]`) and what a manifest records (under `assumptions`,
/// where the busy share is `busy_fraction_typical`) are checked with the
/// same rules. `section` and `busy_key` name where they are written.
pub fn check_assumptions(
    a: &crate::model::Assumptions,
    section: &str,
    busy_key: &'static str,
) -> Result<(), BadValue> {
    range_u32(
        section,
        "sorts_per_query",
        a.sorts_per_query,
        1,
        64,
        "sort/hash nodes one query runs at once",
    )?;
    range_u32(
        section,
        "manual_maintenance",
        a.manual_maintenance,
        0,
        1024,
        "manual VACUUM / CREATE INDEX sessions at once",
    )?;
    if let Err(why) = Fraction::new(a.busy_fraction_typical) {
        return Err(BadValue::at(Some(section), busy_key).says(
            format!("{section}.{busy_key}: {why}"),
            "the share of connections running a sort or hash at a typical moment",
        ));
    }
    if let Some(b) = a.backend_memory {
        range_size(
            section,
            "backend_memory",
            b,
            ByteSize::kib(512),
            ByteSize::gib(1),
            "a backend's private memory",
        )?;
    }
    // Not profile keys: dbtune's own values, bounded by what they mean.
    let worst = crate::calibration::redis(None).fragmentation;
    let frag = a.redis_frag_typical;
    if !(1.0..=worst).contains(&frag) {
        return Err(BadValue::at(Some(section), "redis_frag_typical").says(
            format!("{section}.redis_frag_typical = {frag} is out of range"),
            format!(
                "1.0 to {worst:.2}: Redis's fragmentation at a typical moment, at most the worst \
                 measured ({})",
                crate::calibration::REDIS_SOURCE
            ),
        ));
    }
    let hp = a.hugepage_size;
    if !(hp.0.is_power_of_two() && hp >= ByteSize::kib(64) && hp <= ByteSize::gib(16)) {
        return Err(BadValue::at(Some(section), "hugepage_size").says(
            format!("{section}.hugepage_size = {hp} is not a huge page size"),
            "a size the kernel offers huge pages in: a power of two from 64 KiB to 16 GiB",
        ));
    }
    Ok(())
}

/// A profile value that fails its check: where, what, and what to do.
#[derive(Clone, Debug)]
pub struct BadValue {
    /// The keys down to the value (`zfs`, `data`, `atime`); an array's
    /// element by its index (`reserve`, `0`, `memory`).
    pub path: Vec<String>,
    pub message: String,
    pub hint: String,
}

impl BadValue {
    /// `key` inside the dotted `section` (`postgres`, `zfs.data`,
    /// `reserve.2`), or at the top.
    fn at(section: Option<&str>, key: impl Into<String>) -> BadValue {
        let mut path: Vec<String> = section
            .map(|s| s.split('.').map(str::to_string).collect())
            .unwrap_or_default();
        path.push(key.into());
        BadValue {
            path,
            message: String::new(),
            hint: String::new(),
        }
    }

    /// The key the value is under.
    pub fn key(&self) -> &str {
        self.path.last().map_or("", String::as_str)
    }

    fn says(mut self, message: impl Into<String>, hint: impl Into<String>) -> BadValue {
        self.message = message.into();
        self.hint = hint.into();
        self
    }
}

/// The line of the value at `path` in a TOML text (keys, and array indexes
/// as numbers), or when its last key is not written there, of the table it
/// would be in (the nearest one that is). From toml's own spans: a probe
/// walks the document and fails where the path ends, and the error's span
/// is where the deserializer was (dotted keys, inline tables and arrays of
/// tables included).
pub fn toml_line(text: &str, path: &[&str]) -> usize {
    use serde::de::DeserializeSeed;
    match Probe(path).deserialize(toml::de::Deserializer::new(text)) {
        Err(e) => e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        }),
        Ok(()) => 1,
    }
}

/// The line of the value at `path` in a JSON text, the same way: serde_json
/// places the probe's error where it stopped.
pub fn json_line(text: &str, path: &[&str]) -> usize {
    use serde::de::DeserializeSeed;
    match Probe(path).deserialize(&mut serde_json::Deserializer::from_str(text)) {
        Err(e) => e.line().max(1),
        Ok(()) => 1,
    }
}

/// A walk down `path` that ends with an error, for its place.
struct Probe<'a>(&'a [&'a str]);

impl<'de> serde::de::DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.0.split_first() {
            None => Err(serde::de::Error::custom("here")),
            Some((key, rest)) => d.deserialize_any(ProbeStep { key, rest }),
        }
    }
}

struct ProbeStep<'a> {
    key: &'a str,
    rest: &'a [&'a str],
}

impl<'de> serde::de::Visitor<'de> for ProbeStep<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a table with `{}`", self.key)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key::<String>()? {
            if k == self.key {
                return m.next_value_seed(Probe(self.rest));
            }
            m.next_value::<serde::de::IgnoredAny>()?;
        }
        Err(serde::de::Error::custom("not written"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        let want: usize = self.key.parse().unwrap_or(usize::MAX);
        for _ in 0..want {
            if s.next_element::<serde::de::IgnoredAny>()?.is_none() {
                return Err(serde::de::Error::custom("not written"));
            }
        }
        match s.next_element_seed(Probe(self.rest))? {
            Some(()) => Ok(()),
            None => Err(serde::de::Error::custom("not written")),
        }
    }
}

/// Why `s` is not plain one-line text of at most `max` characters.
pub fn plain_text_problem(s: &str, max: usize) -> Option<String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Some(format!(
            "contains a control character ({}): values are one line of plain text",
            c.escape_debug()
        ));
    }
    if s.chars().count() > max {
        return Some(format!("is longer than {max} characters"));
    }
    None
}

fn text_ok(s: &str, max: usize, at: BadValue) -> Result<(), BadValue> {
    match plain_text_problem(s, max) {
        None => Ok(()),
        Some(why) => {
            let key = at.key().to_string();
            Err(at.says(
                format!("`{key}` {why}"),
                "write it as one line of plain text",
            ))
        }
    }
}

fn is_profile_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A ZFS pool name (`pool`) or one component of a dataset name: letters,
/// digits and `_ - . :`; a pool starts with a letter and is not a name
/// zpool reserves.
pub fn is_zfs_name(s: &str, pool: bool) -> bool {
    let ok_chars = !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
    if !ok_chars {
        return false;
    }
    if pool {
        let reserved = [
            "mirror", "raidz", "draid", "spare", "log", "cache", "special",
        ];
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && !reserved.iter().any(|r| s.starts_with(r))
            && !s.starts_with("c0")
    } else {
        s != "." && s != ".."
    }
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

fn range_u32(
    section: &str,
    key: &str,
    v: u32,
    lo: u32,
    hi: u32,
    why: &str,
) -> Result<(), BadValue> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(BadValue::at(Some(section), key).says(
            format!("{section}.{key} = {v} is out of range"),
            format!("{lo} to {hi}: {why}"),
        ))
    }
}

fn range_size(
    section: &str,
    key: &str,
    v: ByteSize,
    lo: ByteSize,
    hi: ByteSize,
    why: &str,
) -> Result<(), BadValue> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(BadValue::at(Some(section), key).says(
            format!("{section}.{key} = {v} is out of range"),
            format!("{lo} to {hi}: {why}"),
        ))
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
        range_u32(
            s,
            "max_connections",
            self.max_connections,
            1,
            PG_MAX_BACKENDS,
            "PostgreSQL's range",
        )?;
        if self.min_connections == 0 || self.min_connections > self.max_connections {
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
                self.maintenance_work_mem,
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
        range_u32(
            s,
            "maxclients",
            self.maxclients,
            1,
            MAX_CLIENTS,
            "Redis refuses 0 clients, and each client is an open file: the kernel's fs.nr_open \
             (1048576) bounds them",
        )?;
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

/// Every profile dbtune can see: built-ins, then files in the user's
/// profile directory (which shadow built-ins of the same name).
pub struct Profiles {
    pub entries: Vec<(Profile, Origin)>,
    pub user_dir: Option<PathBuf>,
}

/// `$DBTUNE_PROFILE_DIR`, else `$XDG_CONFIG_HOME/dbtune/profiles`, else
/// `~/.config/dbtune/profiles`.
pub fn user_profile_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DBTUNE_PROFILE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("dbtune/profiles"))
}

impl Profiles {
    pub fn load() -> Result<Profiles> {
        let mut entries: Vec<(Profile, Origin)> = BUILTIN
            .iter()
            .map(|(name, text)| {
                let p = Profile::parse(text, Path::new(&format!("profiles/{name}.toml")))
                    .expect("built-in profiles are valid (tested)");
                (p, Origin::Builtin)
            })
            .collect();
        let user_dir = user_profile_dir();
        if let Some(dir) = user_dir.as_ref().filter(|d| d.is_dir()) {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot list profile directory `{}`", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "toml") && crate::input::is_regular(p)
                })
                .collect();
            files.sort();
            for f in files {
                let p = load_file(&f)?;
                entries.retain(|(e, _)| e.name != p.name);
                entries.push((p, Origin::File(f)));
            }
        }
        Ok(Profiles { entries, user_dir })
    }

    pub fn get(&self, name: &str) -> Result<(Profile, Origin), Error> {
        self.entries
            .iter()
            .find(|(p, _)| p.name == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = self.entries.iter().map(|(p, _)| p.name.as_str()).collect();
                Error::plain(
                    format!("unknown profile `{name}`"),
                    format!(
                        "known profiles: {}; or pass --profile-file PATH",
                        names.join(", ")
                    ),
                )
            })
    }
}

pub fn load_file(path: &Path) -> Result<Profile> {
    let text = crate::input::read_text(path, "profile", crate::input::MAX_DOCUMENT)?;
    Ok(Profile::parse(&text, path)?)
}

/// How far a host is from a profile's nominal host: RAM counts most (it
/// sizes everything), then CPUs, then storage. Each term is a factor-of-2
/// distance.
fn distance(p: &NominalHost, ram: ByteSize, cpus: u32, storage: StorageKind) -> (f64, Vec<String>) {
    let log2 = |a: f64, b: f64| (a.max(1.0) / b.max(1.0)).log2().abs();
    let ram_d = log2(ram.bytes() as f64, p.ram.bytes() as f64);
    let cpu_d = log2(cpus as f64, p.cpus as f64);
    let storage_d = match (storage, p.storage) {
        (a, b) if a == b => 0.0,
        (StorageKind::Hdd, _) | (_, StorageKind::Hdd) => 1.0,
        _ => 0.5,
    };
    let mut misses = Vec::new();
    if ram_d >= 1.0 {
        misses.push(format!("RAM {ram} here, {} nominal", p.ram));
    }
    if cpu_d >= 1.0 {
        misses.push(format!("{cpus} CPUs here, {} nominal", p.cpus));
    }
    if storage_d > 0.0 {
        misses.push(format!("{storage} here, {} nominal", p.storage));
    }
    (1.5 * ram_d + cpu_d + storage_d, misses)
}

/// The profile whose nominal host is closest to this one, and why; says
/// which traits differ when none fits well.
pub fn pick_from<'a>(
    profiles: impl IntoIterator<Item = &'a Profile>,
    ram: ByteSize,
    cpus: u32,
    storage: StorageKind,
) -> Option<(String, String)> {
    let mut scored: Vec<(f64, &Profile, Vec<String>)> = profiles
        .into_iter()
        .map(|p| {
            let (d, misses) = distance(&p.host, ram, cpus, storage);
            (d, p, misses)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (d, p, misses) = scored.into_iter().next()?;
    let host = format!("{ram}, {cpus} CPUs, {storage}");
    let nominal = format!("{}, {} CPUs, {}", p.host.ram, p.host.cpus, p.host.storage);
    let reason = if misses.is_empty() {
        format!(
            "this host ({host}) is closest to {} (written for {nominal})",
            p.name
        )
    } else if d < 2.5 {
        format!(
            "this host ({host}) is closest to {} (written for {nominal}); it differs in {}",
            p.name,
            misses.join(", ")
        )
    } else {
        format!(
            "no profile fits this host ({host}) well: the closest is {} (written for {nominal}), which \
             differs in {}; write a profile for this host (docs/profiles.md)",
            p.name,
            misses.join(", ")
        )
    };
    Some((p.name.clone(), reason))
}

/// The built-in profile for a host, and why.
pub fn pick(ram: ByteSize, cpus: u32, storage: StorageKind) -> (String, String) {
    let builtins: Vec<Profile> = BUILTIN
        .iter()
        .map(|(name, text)| {
            Profile::parse(text, Path::new(name)).expect("built-in profiles are valid (tested)")
        })
        .collect();
    pick_from(&builtins, ram, cpus, storage).expect("there are built-in profiles")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(e.location(), Some(format!("p.toml:{line}").as_str()));
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
            (e.location().unwrap().to_string(), e.message().to_string())
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
    fn pick_weighs_ram_cpus_and_storage() {
        let pick_ = |gib: u64, cpus: u32, s: StorageKind| pick(ByteSize::gib(gib), cpus, s);
        assert_eq!(pick_(1, 1, StorageKind::Ssd).0, "low-memory");
        assert_eq!(pick_(4, 2, StorageKind::Ssd).0, "low-memory");
        assert_eq!(pick_(32, 8, StorageKind::Nvme).0, "bulk-ingest");
        assert_eq!(pick_(64, 16, StorageKind::Nvme).0, "powerhouse");
        assert_eq!(pick_(512, 64, StorageKind::Nvme).0, "powerhouse");
        // The 2-CPU VM with 23.5 GiB: RAM says bulk-ingest, and the reason
        // says what does not match.
        let (name, why) = pick(ByteSize::mib(24064), 2, StorageKind::Ssd);
        assert_eq!(name, "bulk-ingest");
        assert!(why.contains("2 CPUs here, 8 nominal"), "{why}");
        assert!(why.contains("ssd here, nvme nominal"), "{why}");
        // Far from every profile: said so.
        let (_, why) = pick(ByteSize::gib(512), 2, StorageKind::Hdd);
        assert!(why.contains("no profile fits this host"), "{why}");
    }
}
