//! Plan: every concrete setting, computed from facts + profile by pure
//! functions grouped by concern. Each setting keeps a one-line reason.
//!
//! `memory` splits the host's RAM between services with the same worst-case
//! formulas the budget uses, so what it produces fits by construction (and
//! `render` proves it by parsing its own files back through the budget).

pub mod layout;
pub mod memory;
pub mod postgres;
pub mod services;

use serde::Serialize;

use crate::profile::{Profile, Workload};
use crate::units::ByteSize;

pub use crate::target::Host;

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
    /// The value the plan gives `name`, when it sets it (the last, for a
    /// name set more than once).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .flat_map(|s| &s.settings)
            .rfind(|x| x.name == name)
            .map(|x| x.value.as_str())
    }

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
    /// Serialized as the manifest records it: templates read
    /// `host.ram`, `host.ram_source`...
    #[serde(serialize_with = "crate::manifest::serialize_host")]
    pub host: Host,
    pub postgres: Sections,
    pub redis: Option<Sections>,
    pub pgbouncer: Option<Sections>,
    pub zfs: Option<ZfsPlan>,
    pub sysctl: Sections,
    /// Where a cap bound (connections, pools, memory shares shrunk to
    /// fit): what the profile asked and what was given.
    pub notes: Vec<String>,
    /// Where the files run: templates say what is true there (where a
    /// password comes from, how a service is applied).
    pub layout: layout::Layout,
}

/// Builds the plan, or refuses with the numbers when the profile's fixed
/// needs cannot fit the host.
pub fn build(profile: &Profile, host: &Host) -> Result<Plan, crate::error::Error> {
    let alloc = memory::allocate(profile, host, &host.assumptions)?;
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
        notes: alloc.notes.clone(),
        layout: layout::Layout::Systemd,
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

    /// The host render resolves for `p` with this RAM, these CPUs and
    /// this PostgreSQL (SSD, ext4): the flags a user would give.
    pub fn host(p: &Profile, gib: u64, cpus: u32, version: u32) -> Host {
        let flags = crate::target::Flags {
            ram: Some(ByteSize::gib(gib)),
            cpus: Some(cpus),
            storage: Some(StorageKind::Ssd),
            filesystem: Some("ext4"),
            pg_version: Some(PgVersion::of(version)),
            ..Default::default()
        };
        let purpose = crate::target::Purpose::Render {
            profile: p,
            facts: None,
        };
        crate::target::resolve(&flags, None, purpose).unwrap()
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
