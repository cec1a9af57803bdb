//! Facts: what a host is, each with where it came from.
//!
//! Plain data. `detect` fills it from /proc and /sys; a facts file (the JSON
//! `dbtune detect --json` prints, or TOML) fills it for another host.

pub mod detect;

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Deserializer, Serialize};

use crate::units::ByteSize;

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
/// `detect --json` writes `{ "value": .., "source": .. }`. Both are read.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sourced<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            Full { value: T, source: Option<String> },
            Bare(T),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Full { value, source } => Sourced {
                value,
                source: source.unwrap_or_else(|| "facts file".into()),
            },
            Raw::Bare(value) => Sourced::new(value, "facts file"),
        })
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
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zfs {
    pub present: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Servers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Sourced<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Sourced<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbouncer: Option<Sourced<String>>,
}

impl Servers {
    /// The PostgreSQL major version found, e.g. 15 from "15.18".
    pub fn postgres_major(&self) -> Option<u32> {
        let v = &self.postgres.as_ref()?.value;
        v.split(['.', ' ']).next()?.parse().ok()
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

impl Facts {
    /// Whether the data directory sits on ZFS.
    pub fn data_on_zfs(&self) -> bool {
        self.storage
            .filesystem
            .as_ref()
            .is_some_and(|f| f.value == "zfs" || f.value == "fuse.zfs-fuse")
    }

    /// Reads a facts file: JSON (what `detect --json` prints) or TOML.
    pub fn load(path: &Path) -> Result<Facts> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read facts file `{}`", path.display()))?;
        let is_json =
            path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        if is_json {
            serde_json::from_str(&text).map_err(|e| {
                crate::error::InputError::new(
                    format!("{}:{}", path.display(), e.line()),
                    format!("invalid facts file: {e}"),
                    "the file should be what `dbtune detect --json` prints; see docs/facts.md",
                )
                .into()
            })
        } else {
            toml::from_str(&text).map_err(|e| {
                crate::error::InputError::from_toml(
                    path,
                    &text,
                    &e,
                    "see docs/facts.md for the fields",
                )
                .into()
            })
        }
    }
}
