//! Profiles: policy. The workload, the host a profile was written for, what
//! else runs on it, and per-service preferences. Built-ins live in
//! `profiles/*.toml` and are embedded; users add their own files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::InputError;
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

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&v) {
            Ok(Fraction(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "{v} is not a fraction: it must be between 0.0 and 1.0"
            )))
        }
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
    pub pg_version: u32,
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisPolicy {
    pub enabled: bool,
    pub listen: String,
    pub port: u16,
    /// Of the memory left after reservations.
    pub share: Fraction,
    pub maxmemory_max: ByteSize,
    pub policy: String,
    pub persistence: Persistence,
    pub maxclients: u32,
    pub disable_commands: Vec<String>,
}

impl Default for RedisPolicy {
    fn default() -> Self {
        RedisPolicy {
            enabled: true,
            listen: "127.0.0.1".into(),
            port: 6379,
            share: Fraction(0.2),
            maxmemory_max: ByteSize::gib(4),
            policy: "allkeys-lru".into(),
            persistence: Persistence::Rdb,
            maxclients: 1000,
            disable_commands: vec!["FLUSHDB".into(), "FLUSHALL".into(), "DEBUG".into()],
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
    pub pool_mode: String,
    pub max_client_conn: u32,
    pub pool_size: u32,
    pub min_pool_size: u32,
    pub reserve_pool_size: u32,
    /// PostgreSQL slots kept for clients that bypass PgBouncer
    /// (migrations, psql, monitoring).
    pub direct_connections: u32,
}

impl Default for PgBouncerPolicy {
    fn default() -> Self {
        PgBouncerPolicy {
            enabled: false,
            listen: "127.0.0.1".into(),
            port: 6432,
            database: "app".into(),
            pool_mode: "transaction".into(),
            max_client_conn: 1000,
            pool_size: 20,
            min_pool_size: 0,
            reserve_pool_size: 5,
            direct_connections: 10,
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
    /// Parses and checks a profile; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Profile, InputError> {
        let hint = "see docs/profiles.md for every field and its default";
        let p: Profile =
            toml::from_str(text).map_err(|e| InputError::from_toml(path, text, &e, hint))?;
        let line_of = |needle: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(needle))
                .map_or(1, |i| i + 1)
        };
        let at = |needle: &str| format!("{}:{}", path.display(), line_of(needle));
        let mut bad_prop = None;
        for (table, props) in [("[zfs.data]", &p.zfs.data), ("[zfs.wal]", &p.zfs.wal)] {
            for k in props.keys() {
                if !ZFS_PROPERTIES.contains(&k.as_str()) && bad_prop.is_none() {
                    bad_prop = Some((table, k.clone()));
                }
            }
        }
        if let Some((table, k)) = bad_prop {
            return Err(InputError::new(
                at(&format!("{k} ")),
                format!("`{k}` in {table} is not a ZFS property dbtune sets"),
                format!("known properties: {}", ZFS_PROPERTIES.join(", ")),
            ));
        }
        if p.redis.share.0 + p.zfs.arc_share.0 > 0.8 {
            return Err(InputError::new(
                at("share"),
                format!(
                    "redis.share ({}) + zfs.arc_share ({}) leave PostgreSQL less than 20% of the memory",
                    p.redis.share.0, p.zfs.arc_share.0
                ),
                "lower one of them; PostgreSQL gets what the others leave",
            ));
        }
        if !(13..=18).contains(&p.host.pg_version) {
            return Err(InputError::new(
                at("pg_version"),
                format!("pg_version {} is not supported", p.host.pg_version),
                "dbtune renders for PostgreSQL 13 to 18",
            ));
        }
        if p.postgres.min_connections == 0
            || p.postgres.min_connections > p.postgres.max_connections
        {
            return Err(InputError::new(
                at("min_connections"),
                "min_connections must be at least 1 and at most max_connections",
                "render lowers max_connections toward min_connections to fit memory",
            ));
        }
        if p.postgres.work_mem_min > p.postgres.work_mem_max {
            return Err(InputError::new(
                at("work_mem_min"),
                "work_mem_min is larger than work_mem_max",
                "swap them",
            ));
        }
        if p.pgbouncer.enabled && p.pgbouncer.pool_size == 0 {
            return Err(InputError::new(
                at("pool_size"),
                "pgbouncer.pool_size is 0: no client could ever be served",
                "set pool_size to the number of server connections PgBouncer may open",
            ));
        }
        Ok(p)
    }
}

/// Every profile dbtune can see: built-ins, then files in the user's
/// profile directory (which shadow built-ins of the same name).
pub struct Catalog {
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

impl Catalog {
    pub fn load() -> Result<Catalog> {
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
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            for f in files {
                let p = load_file(&f)?;
                entries.retain(|(e, _)| e.name != p.name);
                entries.push((p, Origin::File(f)));
            }
        }
        Ok(Catalog { entries, user_dir })
    }

    pub fn get(&self, name: &str) -> Result<(Profile, Origin), InputError> {
        self.entries
            .iter()
            .find(|(p, _)| p.name == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = self.entries.iter().map(|(p, _)| p.name.as_str()).collect();
                InputError::plain(
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
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read profile `{}`", path.display()))?;
    Ok(Profile::parse(&text, path)?)
}

/// The built-in profile for a host's effective RAM, and why.
pub fn pick(ram: ByteSize) -> (&'static str, String) {
    let gib = ram.bytes() as f64 / crate::units::GIB as f64;
    if gib < 12.0 {
        (
            "low-memory",
            format!("effective RAM {ram} is under 12 GiB: low-memory (written for 4 GiB)"),
        )
    } else if gib < 48.0 {
        (
            "bulk-ingest",
            format!("effective RAM {ram} is 12-48 GiB: bulk-ingest (written for 32 GiB)"),
        )
    } else {
        (
            "powerhouse",
            format!("effective RAM {ram} is 48 GiB or more: powerhouse (written for 64 GiB)"),
        )
    }
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
        assert_eq!(
            e.location.as_deref(),
            Some(format!("p.toml:{line}").as_str())
        );
        assert!(e.message.contains("shared_bufers"), "{}", e.message);
    }

    #[test]
    fn bad_size_and_bad_fraction_are_reported() {
        let text = BUILTIN[0].1.replace("ram = \"4GiB\"", "ram = \"4XB\"");
        let e = Profile::parse(&text, Path::new("p.toml")).unwrap_err();
        assert!(e.message.contains("unknown unit"), "{}", e.message);

        let text = BUILTIN[0].1.replace(
            "shared_buffers_fraction = 0.25",
            "shared_buffers_fraction = 2.5",
        );
        let e = Profile::parse(&text, Path::new("p.toml")).unwrap_err();
        assert!(e.message.contains("not a fraction"), "{}", e.message);
    }

    #[test]
    fn pick_follows_effective_ram() {
        assert_eq!(pick(ByteSize::gib(1)).0, "low-memory");
        assert_eq!(pick(ByteSize::gib(4)).0, "low-memory");
        assert_eq!(pick(ByteSize::gib(24)).0, "bulk-ingest");
        assert_eq!(pick(ByteSize::gib(32)).0, "bulk-ingest");
        assert_eq!(pick(ByteSize::gib(64)).0, "powerhouse");
        assert_eq!(pick(ByteSize::gib(512)).0, "powerhouse");
    }
}
