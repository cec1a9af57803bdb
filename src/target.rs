//! The host a set of configs is judged against: its RAM, the memory other
//! processes hold there, the PostgreSQL version, and whether PostgreSQL's
//! data is on ZFS, each with where it came from. check-budget, inspect,
//! diff and apply resolve it here, through the same code, so they cannot
//! disagree about the same directory and flags.

use crate::version::PgVersion;
use std::path::Path;

use anyhow::Result;

use crate::error::Error;
use crate::facts::detect::Detector;
use crate::facts::{is_zfs, Facts};
use crate::read::budget::{Assumptions, HostReserve};
use crate::read::catalog::{self, ServiceVersion};
use crate::render::output::Manifest;
use crate::units::ByteSize;

#[derive(Clone, Debug)]
pub struct CheckTarget {
    pub ram: ByteSize,
    pub ram_source: String,
    pub reserves: Vec<HostReserve>,
    pub assumptions: Assumptions,
    pub pg_version: PgVersion,
    pub pg_version_source: String,
    /// PostgreSQL's data (and WAL) directory is known to be on ZFS: the
    /// only thing that makes `full_page_writes = off` safe.
    pub pg_on_zfs: bool,
    pub pg_on_zfs_source: String,
    /// What the PostgreSQL build supports, when a facts file says.
    pub pg_build: Option<Vec<String>>,
    /// The exact PostgreSQL release, when a facts file says (`16.4`).
    pub pg_release: Option<String>,
    /// The Redis and PgBouncer releases to check against.
    pub redis_version: ServiceVersion,
    pub pgbouncer_version: ServiceVersion,
    /// Things the user should know about the resolution (stderr).
    pub notes: Vec<String>,
}

/// What the command line says about the target host.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags<'a> {
    pub ram: Option<ByteSize>,
    pub facts: Option<&'a Path>,
    pub filesystem: Option<&'a str>,
    pub pg_version: Option<PgVersion>,
    pub redis_version: Option<&'a str>,
    pub pgbouncer_version: Option<&'a str>,
    /// A profile whose reservations and assumptions to count.
    pub profile: Option<&'a crate::profile::Profile>,
    /// More memory held on the host (`--reserve NAME=SIZE`).
    pub reserves: &'a [(String, ByteSize)],
}

/// Whether this machine may stand in for the target host when nothing
/// else names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThisMachine {
    /// check-budget: yes, with a note (a CI runner is rarely the host).
    WithNote,
    /// Live commands: only when every server runs here.
    IfServersLocal(bool),
}

/// The OS reserve dbtune assumes when nothing says otherwise.
pub fn default_reserves(ram: ByteSize) -> Vec<HostReserve> {
    let reserve = ByteSize::mib(512).max(ram.scale(0.05));
    vec![HostReserve {
        name: "OS reserve".into(),
        memory: reserve,
        source: "dbtune default: max(512 MiB, 5% of RAM)".into(),
    }]
}

/// Flags > facts file > manifest > this machine. `live_version` is the
/// major version of a live server, which is what it is whatever a file says.
pub fn resolve(
    flags: &Flags,
    manifest: Option<&Manifest>,
    this_machine: ThisMachine,
    live_version: Option<u32>,
) -> Result<CheckTarget> {
    let facts = flags.facts.map(Facts::load).transpose()?;
    let facts_name = || {
        flags
            .facts
            .map(|f| format!("facts file {}", f.display()))
            .unwrap_or_default()
    };
    let mut local: Option<Facts> = None;
    let mut detect_local = || -> Facts {
        local
            .get_or_insert_with(|| Detector::host().detect(None))
            .clone()
    };
    let mut notes = Vec::new();

    let (ram, ram_source) = match (flags.ram, &facts, manifest) {
        (Some(r), _, _) => (r, "--ram".to_string()),
        (None, Some(f), _) => (f.memory.effective(), facts_name()),
        (None, None, Some(m)) => (m.host.ram, format!("manifest: {}", m.host.ram_source)),
        (None, None, None) => match this_machine {
            ThisMachine::IfServersLocal(false) => {
                return Err(Error::plain(
                    "the servers are not on this machine, so its RAM says nothing about theirs",
                    "pass --ram SIZE or --facts FILE for the servers' host",
                )
                .into())
            }
            ThisMachine::IfServersLocal(true) => {
                let ram = detect_local().memory.effective();
                (ram, "this machine (the servers run on it)".to_string())
            }
            ThisMachine::WithNote => {
                let ram = detect_local().memory.effective();
                notes.push(format!(
                    "note: no --ram, --facts or manifest: checking against this machine's {ram}; \
                     a CI runner is rarely the target host (pass --ram or --facts)"
                ));
                (ram, "this machine (detected)".to_string())
            }
        },
    };
    if ram == ByteSize::ZERO {
        return Err(Error::plain(
            "no RAM to check against: this machine's RAM is unreadable",
            "pass --ram SIZE or --facts FILE",
        )
        .into());
    }

    let (pg_version, pg_version_source) = if let Some(v) = live_version {
        (PgVersion::nearest(v), "the live server".to_string())
    } else if let Some(v) = flags.pg_version {
        (v, "--pg-version".to_string())
    } else if let Some(v) = facts.as_ref().and_then(|f| f.servers.pg_version()) {
        (v, facts_name())
    } else if let Some(m) = manifest {
        (m.host.pg_version, "manifest".to_string())
    } else {
        match detect_local().servers.pg_version() {
            Some(v) => (v, "this machine's postgres".to_string()),
            None => (
                PgVersion::DEFAULT,
                "assumed: no --pg-version, facts or manifest".to_string(),
            ),
        }
    };

    let (pg_on_zfs, pg_on_zfs_source) = match (flags.filesystem, &facts, manifest) {
        (Some(fs), _, _) => (is_zfs(fs), format!("--filesystem {fs}")),
        (None, Some(f), _) => (
            f.data_on_zfs(),
            format!(
                "{}: data directory on {}",
                facts_name(),
                f.storage
                    .filesystem
                    .as_ref()
                    .map_or("an unknown filesystem", |s| s.value.as_str())
            ),
        ),
        (None, None, Some(m)) => (
            m.host.pg_on_zfs,
            format!("manifest: {}", m.host.pg_on_zfs_source),
        ),
        (None, None, None) => (
            false,
            "nothing says the data directory is on ZFS (--filesystem, --facts)".to_string(),
        ),
    };

    // Redis and PgBouncer: the flag, the facts file, the servers here
    // (when this machine stands in), else the newest dbtune knows.
    let service = |flag: Option<&str>,
                   fact: Option<&String>,
                   local: Option<String>,
                   resolve: fn(&str) -> (String, Option<String>),
                   newest: &str|
     -> ServiceVersion {
        let (given, source) = match (flag, fact, local) {
            (Some(v), _, _) => (v.to_string(), "--flag".to_string()),
            (None, Some(v), _) => (v.clone(), facts_name()),
            (None, None, Some(v)) => (v, "this machine's".to_string()),
            (None, None, None) => {
                return ServiceVersion {
                    version: newest.to_string(),
                    source: "assumed: the newest dbtune knows".into(),
                    assumed: true,
                }
            }
        };
        let (version, note) = resolve(&given);
        ServiceVersion {
            version,
            assumed: false,
            source: match note {
                Some(n) => format!("{source}: {n}"),
                None => source,
            },
        }
    };
    let looks_here = flags.facts.is_none() && manifest.is_none();
    let redis_version = service(
        flags.redis_version,
        facts
            .as_ref()
            .and_then(|f| f.servers.redis.as_ref())
            .map(|s| &s.value),
        looks_here
            .then(|| detect_local().servers.redis.map(|s| s.value))
            .flatten(),
        catalog::redis_version,
        catalog::REDIS_VERSIONS[catalog::REDIS_VERSIONS.len() - 1],
    );
    let pgbouncer_version = service(
        flags.pgbouncer_version,
        facts
            .as_ref()
            .and_then(|f| f.servers.pgbouncer.as_ref())
            .map(|s| &s.value),
        looks_here
            .then(|| detect_local().servers.pgbouncer.map(|s| s.value))
            .flatten(),
        catalog::pgbouncer_version,
        catalog::PGBOUNCER_VERSIONS[catalog::PGBOUNCER_VERSIONS.len() - 1],
    );
    let fix = |mut v: ServiceVersion, flag: &str| {
        v.source = v.source.replace("--flag", flag);
        v
    };
    let redis_version = fix(redis_version, "--redis-version");
    let pgbouncer_version = fix(pgbouncer_version, "--pgbouncer-version");

    // The PostgreSQL build and exact release: the facts file's, else this
    // machine's when nothing else names the host and the version is its own.
    let local_pg = (looks_here && pg_version_source == "this machine's postgres")
        .then(|| detect_local().servers)
        .map(|s| {
            (
                s.postgres_build.map(|b| b.value),
                s.postgres.map(|p| p.value),
            )
        });
    let pg_build = match (&facts, &local_pg) {
        (Some(f), _) => f.servers.postgres_build.as_ref().map(|b| b.value.clone()),
        (None, Some((b, _))) => b.clone(),
        _ => None,
    };
    let pg_release = match (&facts, &local_pg) {
        (Some(f), _) if flags.pg_version.is_none() => {
            f.servers.postgres.as_ref().map(|p| p.value.clone())
        }
        (None, Some((_, r))) => r.clone(),
        _ => None,
    };

    let (mut reserves, assumptions) = match (flags.profile, manifest) {
        (Some(p), _) => (
            crate::plan::memory::host_reserves(p, ram),
            crate::plan::assumptions_of(p),
        ),
        (None, Some(m)) => (m.reserves.clone(), m.assumptions.clone()),
        (None, None) => (default_reserves(ram), Assumptions::default()),
    };
    for (name, memory) in flags.reserves {
        reserves.push(HostReserve {
            name: name.clone(),
            memory: *memory,
            source: "--reserve".into(),
        });
    }
    Ok(CheckTarget {
        ram,
        ram_source,
        reserves,
        assumptions,
        pg_version,
        pg_version_source,
        pg_on_zfs,
        pg_on_zfs_source,
        pg_build,
        pg_release,
        redis_version,
        pgbouncer_version,
        notes,
    })
}
