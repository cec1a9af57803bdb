//! Plan: every concrete setting, computed from facts + profile by pure
//! functions grouped by concern. Each setting keeps a one-line reason.
//!
//! `memory` splits the host's RAM between services with the same worst-case
//! formulas the budget uses, so what it produces fits by construction (and
//! `render` proves it by parsing its own files back through the budget).

pub mod memory;
pub mod postgres;
pub mod services;

use crate::version::PgVersion;
use serde::{Deserialize, Serialize};

use crate::facts::StorageKind;
use crate::model::{Assumptions, HostReserve};
use crate::profile::{Profile, Workload};
use crate::units::ByteSize;

/// The host a plan is for, each fact with where it came from
/// (flag > facts file > detected > the profile's nominal host).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub ram: ByteSize,
    pub ram_source: String,
    pub cpus: u32,
    pub cpus_source: String,
    pub storage: StorageKind,
    pub storage_source: String,
    /// ZFS is in use on the host: its ARC is capped and budgeted.
    pub zfs: bool,
    pub zfs_source: String,
    /// PostgreSQL's data directory (and its WAL directory, when pg_wal
    /// links elsewhere) is on ZFS. Only then are full_page_writes,
    /// wal_init_zero and wal_recycle turned off: on any other filesystem a
    /// crash could leave torn pages.
    #[serde(default)]
    pub pg_on_zfs: bool,
    #[serde(default)]
    pub pg_on_zfs_source: String,
    /// Render zfs-datasets.sh: the data is on ZFS, or the profile asks.
    #[serde(default)]
    pub zfs_datasets: bool,
    pub pg_version: PgVersion,
    pub pg_version_source: String,
    /// What the target PostgreSQL build supports (`lz4`...), when known:
    /// a value its build lacks stops the server from starting.
    #[serde(default)]
    pub pg_build: Option<Vec<String>>,
    #[serde(default)]
    pub pg_build_source: String,
}

impl Host {
    /// Whether the target build is known to have a feature.
    pub fn pg_build_has(&self, feature: &str) -> bool {
        self.pg_build
            .as_ref()
            .is_some_and(|b| b.iter().any(|f| f == feature))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    pub title: String,
    pub settings: Vec<Setting>,
}

/// Settings grouped by concern, in the order they are written.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sections(pub Vec<Section>);

impl Sections {
    pub fn section(&mut self, title: &str) -> &mut Section {
        self.0.push(Section {
            title: title.to_string(),
            settings: Vec::new(),
        });
        self.0.last_mut().expect("just pushed")
    }
}

impl Section {
    pub fn set(
        &mut self,
        name: &str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> &mut Self {
        self.settings.push(Setting {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        });
        self
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dataset {
    pub name: String,
    pub purpose: String,
    pub properties: Vec<Setting>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ZfsPlan {
    /// Whether zfs-datasets.sh is rendered (zfs-arc.conf always is).
    pub script: bool,
    pub pool: String,
    pub datasets: Vec<Dataset>,
    pub arc_max: ByteSize,
    pub arc_reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub profile: String,
    pub workload: Workload,
    pub host: Host,
    pub postgres: Sections,
    pub redis: Option<Sections>,
    pub pgbouncer: Option<Sections>,
    pub zfs: Option<ZfsPlan>,
    pub sysctl: Sections,
    /// Memory claimed outside the rendered files (OS, the profile's
    /// reservations): budget terms the files cannot show.
    pub reserves: Vec<HostReserve>,
    pub assumptions: Assumptions,
    /// Where a cap bound (connections, pools, memory shares shrunk to
    /// fit): what the profile asked and what was given.
    pub notes: Vec<String>,
}

/// The budget assumptions a profile states (sorts per query...).
pub fn assumptions_of(profile: &Profile) -> Assumptions {
    Assumptions {
        sorts_per_query: profile.postgres.sorts_per_query,
        manual_maintenance: profile.postgres.manual_maintenance,
        temp_tables: profile.postgres.temp_tables,
        busy_fraction_typical: profile.postgres.busy_share.0,
        backend_memory: profile.postgres.backend_memory,
        ..Assumptions::default()
    }
}

/// Builds the plan, or refuses with the numbers when the profile's fixed
/// needs cannot fit the host.
pub fn build(profile: &Profile, host: &Host) -> Result<Plan, crate::error::Error> {
    let assumptions = assumptions_of(profile);
    let alloc = memory::allocate(profile, host, &assumptions)?;
    let postgres = postgres::settings(profile, host, &alloc);
    let redis = alloc.redis.as_ref().map(|r| services::redis(profile, r));
    let pgbouncer = alloc
        .pgbouncer
        .as_ref()
        .map(|b| services::pgbouncer(profile, b, &alloc));
    let zfs = alloc
        .arc
        .map(|arc| services::zfs(profile, host, arc, &alloc));
    let sysctl = services::sysctl(profile, &alloc);
    Ok(Plan {
        profile: profile.name.clone(),
        workload: profile.workload,
        host: host.clone(),
        postgres,
        redis,
        pgbouncer,
        zfs,
        sysctl,
        reserves: alloc.reserves.clone(),
        assumptions,
        notes: alloc.notes.clone(),
    })
}

/// Hosts, profiles and lookups the plan's table tests share.
#[cfg(test)]
pub(crate) mod fixture {
    use std::path::Path;

    use super::{Host, Plan, Sections};
    use crate::facts::StorageKind;
    use crate::profile::{Profile, BUILTIN};
    use crate::units::ByteSize;
    use crate::version::PgVersion;

    pub fn host(gib: u64, cpus: u32, version: u32) -> Host {
        Host {
            ram: ByteSize::gib(gib),
            ram_source: "test".into(),
            cpus,
            cpus_source: "test".into(),
            storage: StorageKind::Ssd,
            storage_source: "test".into(),
            zfs: false,
            zfs_source: "test".into(),
            pg_on_zfs: false,
            pg_on_zfs_source: "test".into(),
            zfs_datasets: false,
            pg_version: PgVersion::of(version),
            pg_version_source: "test".into(),
            pg_build: None,
            pg_build_source: "test".into(),
        }
    }

    /// A built-in profile by name.
    pub fn profile(name: &str) -> Profile {
        let text = BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1;
        Profile::parse(text, Path::new(name)).unwrap()
    }

    /// The plan of a built-in profile on its nominal-sized host.
    pub fn plan_of(p: &Profile, h: &Host) -> Plan {
        super::build(p, h).unwrap()
    }

    /// Every value a setting has in the sections (Redis repeats `save`).
    pub fn values<'a>(s: &'a Sections, name: &str) -> Vec<&'a str> {
        s.0.iter()
            .flat_map(|sec| &sec.settings)
            .filter(|x| x.name == name)
            .map(|x| x.value.as_str())
            .collect()
    }

    /// A setting's value, if set.
    pub fn value<'a>(s: &'a Sections, name: &str) -> Option<&'a str> {
        values(s, name).last().copied()
    }
}
