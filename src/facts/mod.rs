//! Facts: what a host is, each with where it came from.
//!
//! Plain data. `detect` fills it from /proc and /sys; a facts file (the JSON
//! `dbtune detect --json` prints, or TOML) fills it for another host.

pub mod detect;
mod show;

use std::fmt;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};

use crate::units::ByteSize;
use crate::version::PgVersion;

/// A value and the place it was read from (a file, a command, a flag).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: String,
}

impl<T> Sourced<T> {
    pub fn new(value: T, source: impl Into<String>) -> Self {
        Sourced {
            value,
            source: source.into(),
        }
    }
}

/// A facts file written by hand may give a bare value (`ram = "64GiB"`);
/// `detect --json` writes `{ "value": .., "source": .. }`. Both are read,
/// and a bad value is said as its own type says it (`unknown unit`, `unknown
/// variant`), at its place: an untagged enum would only say that nothing
/// matched.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sourced<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{
            BoolDeserializer, F64Deserializer, I64Deserializer, SeqAccessDeserializer,
            StrDeserializer, U64Deserializer,
        };
        use serde::de::{Error, MapAccess, SeqAccess, Visitor};

        struct Either<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Either<T> {
            type Value = Sourced<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value, or { value = ..., source = \"...\" }")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Sourced<T>, A::Error> {
                let (mut value, mut source) = (None, None);
                while let Some(key) = m.next_key::<String>()? {
                    match key.as_str() {
                        "value" => value = Some(m.next_value::<T>()?),
                        "source" => source = Some(m.next_value::<String>()?),
                        other => return Err(A::Error::unknown_field(other, &["value", "source"])),
                    }
                }
                Ok(Sourced {
                    value: value.ok_or_else(|| A::Error::missing_field("value"))?,
                    source: source.unwrap_or_else(|| "facts file".into()),
                })
            }

            fn visit_str<E: Error>(self, v: &str) -> Result<Sourced<T>, E> {
                T::deserialize(StrDeserializer::<E>::new(v)).map(|v| Sourced::new(v, "facts file"))
            }

            fn visit_u64<E: Error>(self, v: u64) -> Result<Sourced<T>, E> {
                T::deserialize(U64Deserializer::<E>::new(v)).map(|v| Sourced::new(v, "facts file"))
            }

            fn visit_i64<E: Error>(self, v: i64) -> Result<Sourced<T>, E> {
                T::deserialize(I64Deserializer::<E>::new(v)).map(|v| Sourced::new(v, "facts file"))
            }

            fn visit_f64<E: Error>(self, v: f64) -> Result<Sourced<T>, E> {
                T::deserialize(F64Deserializer::<E>::new(v)).map(|v| Sourced::new(v, "facts file"))
            }

            fn visit_bool<E: Error>(self, v: bool) -> Result<Sourced<T>, E> {
                T::deserialize(BoolDeserializer::<E>::new(v)).map(|v| Sourced::new(v, "facts file"))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Sourced<T>, A::Error> {
                T::deserialize(SeqAccessDeserializer::new(s)).map(|v| Sourced::new(v, "facts file"))
            }
        }

        d.deserialize_any(Either(std::marker::PhantomData))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Nvme,
    Ssd,
    Hdd,
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageKind::Nvme => "nvme",
            StorageKind::Ssd => "ssd",
            StorageKind::Hdd => "hdd",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub physical: Sourced<ByteSize>,
    /// The memory cgroup's hard limit, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_limit: Option<Sourced<ByteSize>>,
}

impl Memory {
    /// The smaller of physical RAM and the cgroup limit.
    pub fn effective(&self) -> ByteSize {
        match &self.cgroup_limit {
            Some(l) if l.value < self.physical.value => l.value,
            _ => self.physical.value,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    pub logical: Sourced<u32>,
    /// CPUs the cgroup quota grants (quota / period), when limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_quota: Option<Sourced<f64>>,
}

impl Cpu {
    /// Whole CPUs this host can keep busy: the logical count, or the cgroup
    /// quota rounded down (a 1.5-CPU quota cannot run two busy workers), at
    /// least one.
    pub fn effective(&self) -> u32 {
        let logical = self.logical.value.max(1);
        match &self.cgroup_quota {
            Some(q) => (q.value.floor() as u32).clamp(1, logical),
            None => logical,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub kind: Sourced<StorageKind>,
    /// Set when the kernel's answer is known to be unreliable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doubt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<Sourced<String>>,
    /// Where pg_wal really is, when it is a link out of the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_dir: Option<String>,
    /// The filesystem of `wal_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_filesystem: Option<Sourced<String>>,
    /// The size of the filesystem pg_wal is on (`wal_dir`'s, else the data
    /// directory's): what bounds how much WAL the host can keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_space: Option<Sourced<ByteSize>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zfs {
    /// ZFS software is on the host (a module, `zfs`, or zfs-fuse). Says
    /// nothing about where PostgreSQL's data is.
    pub present: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub source: String,
    /// Imported pools; None when unknown (an older facts file). A pool
    /// means the ARC holds memory whatever PostgreSQL's data is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pools: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Servers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Sourced<String>>,
    /// What the PostgreSQL build supports where values depend on it
    /// (`lz4`, `zstd`, `liburing`, `debian`) and whether JIT can load
    /// (`llvmjit` or `no-llvmjit`); None when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_build: Option<Sourced<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Sourced<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbouncer: Option<Sourced<String>>,
}

impl Servers {
    /// The PostgreSQL major version found, e.g. 15 from "15.18".
    pub fn postgres_major(&self) -> Option<u32> {
        let v = &self.postgres.as_ref()?.value;
        // "15.18", "16", "17beta1"; "9.6" has major 9.
        let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    }

    /// The PostgreSQL found, if dbtune supports its major.
    pub fn pg_version(&self) -> Option<PgVersion> {
        self.postgres_major().and_then(PgVersion::new)
    }
}

/// Everything dbtune knows about a host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub memory: Memory,
    pub cpu: Cpu,
    pub storage: Storage,
    #[serde(default)]
    pub zfs: Zfs,
    #[serde(default)]
    pub servers: Servers,
    /// What `detect` would pick; informational, ignored when read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_profile: Option<Suggestion>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suggestion {
    pub name: String,
    pub reason: String,
}

/// Filesystem names that are ZFS: the kernel module's, and zfs-fuse's.
pub fn is_zfs(fstype: &str) -> bool {
    fstype == "zfs" || fstype == "fuse.zfs-fuse" || fstype == "fuse.zfs"
}

/// Build features that change which values PostgreSQL accepts, and
/// whether its JIT provider is installed (what the budget counts).
pub const PG_BUILD_FEATURES: &[&str] =
    &["lz4", "zstd", "liburing", "debian", "llvmjit", "no-llvmjit"];

/// The largest host dbtune renders for.
pub const MAX_RAM: ByteSize = ByteSize(64 * crate::units::TIB);
/// The most CPUs dbtune renders for.
pub const MAX_CPUS: u32 = 4096;
/// The smallest filesystem a facts file may say pg_wal is on: a few WAL
/// segments.
pub const MIN_WAL_SPACE: ByteSize = ByteSize::mib(64);

/// Why `ram` is not a host's RAM dbtune renders for, as a hint: the bound
/// facts files and manifests are both held to.
pub fn ram_problem(ram: ByteSize) -> Option<String> {
    (ram == ByteSize::ZERO || ram > MAX_RAM)
        .then(|| format!("dbtune renders for hosts with 1 byte to {MAX_RAM} of RAM"))
}

/// Why `cpus` is not a host's CPU count, as a hint.
pub fn cpus_problem(cpus: u32) -> Option<String> {
    (!(1..=MAX_CPUS).contains(&cpus)).then(|| format!("a host has 1 to {MAX_CPUS} CPUs"))
}

/// Why a host fact's free text (a source, a note) is not plain text.
pub fn text_problem(text: &str) -> Option<String> {
    crate::doc::plain_text_problem(text, 4096)
}

impl Facts {
    /// Whether the data directory sits on ZFS (and, when pg_wal is a link
    /// to another directory, that directory too): what makes the ZFS-only
    /// PostgreSQL settings safe.
    pub fn data_on_zfs(&self) -> bool {
        let data = self
            .storage
            .filesystem
            .as_ref()
            .is_some_and(|f| is_zfs(&f.value));
        let wal = self
            .storage
            .wal_filesystem
            .as_ref()
            .is_none_or(|f| is_zfs(&f.value));
        data && wal
    }

    /// Pools imported on the host, when known.
    pub fn zfs_pools(&self) -> &[String] {
        self.zfs.pools.as_deref().unwrap_or(&[])
    }

    /// Reads a facts file: JSON (what `detect --json` prints) or TOML, and
    /// checks every value (file:line, exit 2).
    pub fn load(path: &Path) -> Result<Facts> {
        let text = crate::input::read_text(path, "facts file", crate::input::MAX_DOCUMENT)?;
        let is_json =
            path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        let facts: Facts = if is_json {
            serde_json::from_str(&text).map_err(|e| {
                crate::error::Error::input(
                    crate::error::Place::line(path.display(), e.line()),
                    format!("invalid facts file: {e}"),
                    "the file should be what `dbtune detect --json` prints; see docs/facts.md",
                )
            })?
        } else {
            toml::from_str(&text).map_err(|e| {
                crate::error::Error::from_toml(path, &text, &e, "see docs/facts.md for the fields")
            })?
        };
        if let Err(bad) = facts.check() {
            let line = if is_json {
                crate::doc::json_line(&text, &bad.path)
            } else {
                crate::doc::toml_line(&text, &bad.path)
            };
            return Err(crate::error::Error::input(
                crate::error::Place::line(path.display(), line).setting(bad.path.join(".")),
                format!("invalid facts file: {}", bad.message),
                bad.hint,
            )
            .into());
        }
        Ok(facts)
    }

    /// Every value in range and every string plain text: facts reach
    /// rendered files (as comments) and decide what is safe to write.
    pub fn check(&self) -> Result<(), BadFact> {
        self.check_resources()?;
        self.check_servers()?;
        self.check_names()
    }

    /// RAM, CPUs and filesystems inside what dbtune renders for.
    fn check_resources(&self) -> Result<(), BadFact> {
        let m = &self.memory;
        if let Some(hint) = ram_problem(m.physical.value) {
            return Err(BadFact::new(
                &["memory", "physical"],
                format!("memory.physical {} is out of range", m.physical.value),
                hint,
            ));
        }
        if let Some(l) = &m.cgroup_limit {
            if l.value == ByteSize::ZERO {
                return Err(BadFact::new(
                    &["memory", "cgroup_limit"],
                    "memory.cgroup_limit is 0".to_string(),
                    "leave it out when there is no limit",
                ));
            }
        }
        let c = &self.cpu;
        if let Some(hint) = cpus_problem(c.logical.value) {
            return Err(BadFact::new(
                &["cpu", "logical"],
                format!("cpu.logical {} is out of range", c.logical.value),
                hint,
            ));
        }
        if let Some(q) = &c.cgroup_quota {
            if !(q.value.is_finite() && q.value > 0.0 && q.value <= MAX_CPUS as f64) {
                return Err(BadFact::new(
                    &["cpu", "cgroup_quota"],
                    format!("cpu.cgroup_quota {} is out of range", q.value),
                    format!("CPUs the quota grants: more than 0, at most {MAX_CPUS}"),
                ));
            }
        }
        if let Some(w) = &self.storage.wal_space {
            if w.value < MIN_WAL_SPACE {
                return Err(BadFact::new(
                    &["storage", "wal_space"],
                    format!("storage.wal_space {} is too small", w.value),
                    format!(
                        "the size of the filesystem pg_wal is on, at least {MIN_WAL_SPACE} \
                         (PostgreSQL's WAL segments are 16 MiB); leave it out when unknown"
                    ),
                ));
            }
        }
        for (key, fs) in [
            ("filesystem", &self.storage.filesystem),
            ("wal_filesystem", &self.storage.wal_filesystem),
        ] {
            if let Some(fs) = fs {
                if !is_fs_name(&fs.value) {
                    return Err(BadFact::new(
                        &["storage", key],
                        format!("`{}` is not a filesystem type", fs.value.escape_debug()),
                        "a type as /proc/self/mountinfo shows it: ext4, xfs, zfs, btrfs...",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Server versions dbtune knows the grammar of, and build features it
    /// knows the meaning of.
    fn check_servers(&self) -> Result<(), BadFact> {
        if let Some(v) = &self.servers.postgres {
            let major = self.servers.postgres_major();
            match major.and_then(PgVersion::new) {
                Some(_) => {}
                _ => {
                    return Err(BadFact::new(
                        &["servers", "postgres"],
                        format!(
                            "servers.postgres `{}` is not a PostgreSQL version dbtune supports",
                            v.value.escape_debug()
                        ),
                        format!(
                            "dbtune renders for PostgreSQL {}: write the version the host runs, \
                             like \"16.4\", or leave it out and pass --pg-version",
                            PgVersion::range_text()
                        ),
                    ))
                }
            }
        }
        for (key, v) in [
            ("redis", &self.servers.redis),
            ("pgbouncer", &self.servers.pgbouncer),
        ] {
            if let Some(v) = v {
                if !is_version(&v.value) {
                    return Err(BadFact::new(
                        &["servers", key],
                        format!(
                            "servers.{key} `{}` is not a version",
                            v.value.escape_debug()
                        ),
                        "write it as numbers and dots, like \"7.0.15\"",
                    ));
                }
            }
        }
        if let Some(b) = &self.servers.postgres_build {
            if let Some(bad) = b
                .value
                .iter()
                .find(|f| !PG_BUILD_FEATURES.contains(&f.as_str()))
            {
                return Err(BadFact::new(
                    &["servers", "postgres_build"],
                    format!(
                        "`{}` is not a build feature dbtune knows",
                        bad.escape_debug()
                    ),
                    format!("features: {}", PG_BUILD_FEATURES.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Pool names and free text that end up in scripts and comments.
    fn check_names(&self) -> Result<(), BadFact> {
        for pool in self.zfs_pools() {
            if !crate::doc::is_zfs_name(pool, false) {
                return Err(BadFact::new(
                    &["zfs", "pools"],
                    format!("`{}` is not a ZFS pool name", pool.escape_debug()),
                    "pool names are letters, digits and _ - . :",
                ));
            }
        }
        for (path, text) in self.strings() {
            if let Some(why) = text_problem(text) {
                let key = path[path.len() - 1];
                return Err(BadFact::new(
                    &path,
                    format!("`{key}` {why}"),
                    "facts are plain one-line text",
                ));
            }
        }
        Ok(())
    }

    /// Every free-text value, with the keys down to it.
    fn strings(&self) -> Vec<(Vec<&'static str>, &str)> {
        fn source<'a>(
            s: Option<&'a str>,
            parent: [&'static str; 2],
        ) -> Option<(Vec<&'static str>, &'a str)> {
            s.map(|s| (vec![parent[0], parent[1], "source"], s))
        }
        let m = &self.memory;
        let st = &self.storage;
        let sv = &self.servers;
        let all: Vec<Option<(Vec<&'static str>, &str)>> = vec![
            Some((vec!["hostname"], self.hostname.as_deref().unwrap_or(""))),
            source(Some(&m.physical.source), ["memory", "physical"]),
            source(
                m.cgroup_limit.as_ref().map(|s| s.source.as_str()),
                ["memory", "cgroup_limit"],
            ),
            source(Some(&self.cpu.logical.source), ["cpu", "logical"]),
            source(
                self.cpu.cgroup_quota.as_ref().map(|s| s.source.as_str()),
                ["cpu", "cgroup_quota"],
            ),
            source(Some(&st.kind.source), ["storage", "kind"]),
            source(
                st.filesystem.as_ref().map(|s| s.source.as_str()),
                ["storage", "filesystem"],
            ),
            source(
                st.wal_filesystem.as_ref().map(|s| s.source.as_str()),
                ["storage", "wal_filesystem"],
            ),
            source(
                st.wal_space.as_ref().map(|s| s.source.as_str()),
                ["storage", "wal_space"],
            ),
            st.doubt.as_deref().map(|s| (vec!["storage", "doubt"], s)),
            st.device.as_deref().map(|s| (vec!["storage", "device"], s)),
            st.data_dir
                .as_deref()
                .map(|s| (vec!["storage", "data_dir"], s)),
            st.wal_dir
                .as_deref()
                .map(|s| (vec!["storage", "wal_dir"], s)),
            Some((vec!["zfs", "source"], self.zfs.source.as_str())),
            self.zfs
                .version
                .as_deref()
                .map(|s| (vec!["zfs", "version"], s)),
            self.suggested_profile
                .as_ref()
                .map(|s| (vec!["suggested_profile", "reason"], s.reason.as_str())),
            source(
                sv.postgres.as_ref().map(|s| s.source.as_str()),
                ["servers", "postgres"],
            ),
            source(
                sv.redis.as_ref().map(|s| s.source.as_str()),
                ["servers", "redis"],
            ),
            source(
                sv.pgbouncer.as_ref().map(|s| s.source.as_str()),
                ["servers", "pgbouncer"],
            ),
        ];
        all.into_iter().flatten().collect()
    }
}

/// A facts value out of range, at `path`.
#[derive(Debug)]
pub struct BadFact {
    /// The keys down to the value (`memory`, `physical`).
    pub path: Vec<&'static str>,
    pub message: String,
    pub hint: String,
}

impl BadFact {
    fn new(path: &[&'static str], message: String, hint: impl Into<String>) -> Self {
        BadFact {
            path: path.to_vec(),
            message,
            hint: hint.into(),
        }
    }
}

fn is_fs_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// `7.0.15`, `1.18.0`, `16`: numbers and dots.
fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}
