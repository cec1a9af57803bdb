//! The resolution stage: flags, a facts file, a directory's manifest and
//! this machine, in that order, turned into the host every later stage
//! works for, each fact with where it came from.
//!
//! - [`resolve`]: the host a set of configs is judged against (RAM, the
//!   memory other processes hold, versions, ZFS, assumptions), for
//!   check-budget, inspect, diff and apply, so they cannot disagree about
//!   the same directory and flags;
//! - [`render_host`]: the host render (and bench) tunes for (RAM, CPUs,
//!   storage, version, build, ZFS), falling back to the profile's nominal
//!   host.

use crate::version::PgVersion;
use std::path::Path;

use anyhow::Result;

use crate::error::Error;
use crate::facts::detect::Detector;
use crate::facts::{is_zfs, Facts};
use crate::model::{Assumptions, HostReserve};
use crate::plan::Host;
use crate::profile::{Profile, ZfsMode};
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
    /// render only: the CPUs and storage to tune for.
    pub cpus: Option<u32>,
    pub storage: Option<crate::facts::StorageKind>,
    pub facts: Option<&'a Path>,
    pub filesystem: Option<&'a str>,
    pub pg_version: Option<PgVersion>,
    pub redis_version: Option<&'a str>,
    pub pgbouncer_version: Option<&'a str>,
    /// A profile whose reservations and assumptions to count.
    pub profile: Option<&'a crate::profile::Profile>,
    /// More memory held on the host (`--reserve NAME=SIZE`).
    pub reserves: &'a [(String, ByteSize)],
    /// Budget assumptions given on the command line, over the profile's
    /// or manifest's.
    pub assumptions: AssumptionFlags,
}

/// `--sorts-per-query`, `--busy-share`, `--manual-maintenance`,
/// `--backend-memory`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AssumptionFlags {
    pub sorts_per_query: Option<u32>,
    pub busy_share: Option<f64>,
    pub manual_maintenance: Option<u32>,
    pub backend_memory: Option<ByteSize>,
}

impl AssumptionFlags {
    fn apply(&self, a: &mut Assumptions) {
        if let Some(n) = self.sorts_per_query {
            a.sorts_per_query = n;
        }
        if let Some(b) = self.busy_share {
            a.busy_fraction_typical = b;
        }
        if let Some(n) = self.manual_maintenance {
            a.manual_maintenance = n;
        }
        if let Some(m) = self.backend_memory {
            a.backend_memory = Some(m);
        }
    }
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
    let mut src = Sources {
        flags,
        facts: flags.facts.map(Facts::load).transpose()?,
        manifest,
        local: None,
        notes: Vec::new(),
    };
    let (ram, ram_source) = src.ram(this_machine)?;
    let (pg_version, pg_version_source) = src.pg_version(live_version);
    let (pg_on_zfs, pg_on_zfs_source) = src.pg_on_zfs();
    let redis_version = src.service_version(&REDIS);
    let pgbouncer_version = src.service_version(&PGBOUNCER);
    let (pg_build, pg_release) = src.pg_build(&pg_version_source);
    let (reserves, assumptions) = src.reserves(ram);
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
        notes: src.notes,
    })
}

/// Where each fact of the target host can come from, in order.
struct Sources<'a> {
    flags: &'a Flags<'a>,
    facts: Option<Facts>,
    manifest: Option<&'a Manifest>,
    /// This machine, detected at most once and only when asked.
    local: Option<Facts>,
    notes: Vec<String>,
}

const THIS_MACHINES_POSTGRES: &str = "this machine's postgres";

/// Where a service's release is said, and the releases dbtune knows.
struct Releases {
    flag_name: &'static str,
    flag: for<'a> fn(&Flags<'a>) -> Option<&'a str>,
    found: fn(&crate::facts::Servers) -> Option<String>,
    known: &'static [&'static str],
    /// The release as dbtune knows it, and a note when it is not exact.
    resolve: fn(&str) -> (String, Option<String>),
}

const REDIS: Releases = Releases {
    flag_name: "--redis-version",
    flag: |f| f.redis_version,
    found: |s| s.redis.as_ref().map(|v| v.value.clone()),
    known: &catalog::REDIS_VERSIONS,
    resolve: catalog::redis_version,
};

const PGBOUNCER: Releases = Releases {
    flag_name: "--pgbouncer-version",
    flag: |f| f.pgbouncer_version,
    found: |s| s.pgbouncer.as_ref().map(|v| v.value.clone()),
    known: &catalog::PGBOUNCER_VERSIONS,
    resolve: catalog::pgbouncer_version,
};

impl Sources<'_> {
    fn facts_name(&self) -> String {
        self.flags
            .facts
            .map(|f| format!("facts file {}", f.display()))
            .unwrap_or_default()
    }

    fn local(&mut self) -> &Facts {
        self.local
            .get_or_insert_with(|| Detector::host().detect(None))
    }

    /// Whether nothing names the host, so this machine may stand in.
    fn looks_here(&self) -> bool {
        self.flags.facts.is_none() && self.manifest.is_none()
    }

    fn ram(&mut self, this_machine: ThisMachine) -> Result<(ByteSize, String)> {
        let (ram, source) = match (self.flags.ram, &self.facts, self.manifest) {
            (Some(r), _, _) => (r, "--ram".to_string()),
            (None, Some(f), _) => (f.memory.effective(), self.facts_name()),
            (None, None, Some(m)) => (m.host.ram, format!("manifest: {}", m.host.ram_source)),
            (None, None, None) => {
                match this_machine {
                    ThisMachine::IfServersLocal(false) => return Err(Error::plain(
                        "the servers are not on this machine, so its RAM says nothing about theirs",
                        "pass --ram SIZE or --facts FILE for the servers' host",
                    )
                    .into()),
                    ThisMachine::IfServersLocal(true) => {
                        let ram = self.local().memory.effective();
                        (ram, "this machine (the servers run on it)".to_string())
                    }
                    ThisMachine::WithNote => {
                        let ram = self.local().memory.effective();
                        self.notes.push(format!(
                        "note: no --ram, --facts or manifest: checking against this machine's {ram}; \
                         a CI runner is rarely the target host (pass --ram or --facts)"
                    ));
                        (ram, "this machine (detected)".to_string())
                    }
                }
            }
        };
        if ram == ByteSize::ZERO {
            return Err(Error::plain(
                "no RAM to check against: this machine's RAM is unreadable",
                "pass --ram SIZE or --facts FILE",
            )
            .into());
        }
        Ok((ram, source))
    }

    fn pg_version(&mut self, live_version: Option<u32>) -> (PgVersion, String) {
        if let Some(v) = live_version {
            (PgVersion::nearest(v), "the live server".to_string())
        } else if let Some(v) = self.flags.pg_version {
            (v, "--pg-version".to_string())
        } else if let Some(v) = self.facts.as_ref().and_then(|f| f.servers.pg_version()) {
            (v, self.facts_name())
        } else if let Some(m) = self.manifest {
            (m.host.pg_version, "manifest".to_string())
        } else {
            match self.local().servers.pg_version() {
                Some(v) => (v, THIS_MACHINES_POSTGRES.to_string()),
                None => (
                    PgVersion::DEFAULT,
                    "assumed: no --pg-version, facts or manifest".to_string(),
                ),
            }
        }
    }

    fn pg_on_zfs(&self) -> (bool, String) {
        match (self.flags.filesystem, &self.facts, self.manifest) {
            (Some(fs), _, _) => (is_zfs(fs), format!("--filesystem {fs}")),
            (None, Some(f), _) => (
                f.data_on_zfs(),
                format!(
                    "{}: data directory on {}",
                    self.facts_name(),
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
        }
    }

    /// Redis's or PgBouncer's release: the flag, the facts file, the server
    /// here (when this machine stands in), else the newest dbtune knows.
    fn service_version(&mut self, r: &Releases) -> ServiceVersion {
        let flag = (r.flag)(self.flags);
        let fact = self.facts.as_ref().and_then(|f| (r.found)(&f.servers));
        // This machine is asked only when nothing else says.
        let local = if flag.is_none() && fact.is_none() && self.looks_here() {
            (r.found)(&self.local().servers)
        } else {
            None
        };
        let (given, source) = match (flag, fact, local) {
            (Some(v), _, _) => (v.to_string(), r.flag_name.to_string()),
            (None, Some(v), _) => (v, self.facts_name()),
            (None, None, Some(v)) => (v, "this machine's".to_string()),
            (None, None, None) => {
                return ServiceVersion {
                    version: r.known[r.known.len() - 1].to_string(),
                    source: "assumed: the newest dbtune knows".into(),
                    assumed: true,
                }
            }
        };
        let (version, note) = (r.resolve)(&given);
        ServiceVersion {
            version,
            assumed: false,
            source: match note {
                Some(n) => format!("{source}: {n}"),
                None => source,
            },
        }
    }

    /// The PostgreSQL build and exact release: the facts file's, else this
    /// machine's when nothing else names the host and the version is its
    /// own.
    fn pg_build(&mut self, pg_version_source: &str) -> (Option<Vec<String>>, Option<String>) {
        let local_pg = if self.looks_here() && pg_version_source == THIS_MACHINES_POSTGRES {
            let s = self.local().servers.clone();
            Some((
                s.postgres_build.map(|b| b.value),
                s.postgres.map(|p| p.value),
            ))
        } else {
            None
        };
        let pg_build = match (&self.facts, &local_pg) {
            (Some(f), _) => f.servers.postgres_build.as_ref().map(|b| b.value.clone()),
            (None, Some((b, _))) => b.clone(),
            _ => None,
        };
        let pg_release = match (&self.facts, &local_pg) {
            (Some(f), _) if self.flags.pg_version.is_none() => {
                f.servers.postgres.as_ref().map(|p| p.value.clone())
            }
            (None, Some((_, r))) => r.clone(),
            _ => None,
        };
        (pg_build, pg_release)
    }

    /// The host's other memory and the budget's assumptions: the profile's
    /// (--profile), else the manifest's, else the OS reserve alone; plus
    /// every --reserve, and the assumptions the command line sets.
    fn reserves(&self, ram: ByteSize) -> (Vec<HostReserve>, Assumptions) {
        let (mut reserves, mut assumptions) = match (self.flags.profile, self.manifest) {
            (Some(p), _) => (
                crate::plan::memory::host_reserves(p, ram),
                crate::plan::assumptions_of(p),
            ),
            (None, Some(m)) => (m.reserves.clone(), m.assumptions.clone()),
            (None, None) => (default_reserves(ram), Assumptions::default()),
        };
        for (name, memory) in self.flags.reserves {
            reserves.push(HostReserve {
                name: name.clone(),
                memory: *memory,
                source: "--reserve".into(),
            });
        }
        self.flags.assumptions.apply(&mut assumptions);
        (reserves, assumptions)
    }
}

// ---------------------------------------------------------------------------
// The host render tunes for: flag > facts file (or this machine, detected
// when no profile is named) > the profile's nominal host.

/// Every fact of the host a plan is made for, each with its source.
pub fn render_host(flags: &Flags, facts: Option<&Facts>, profile: &Profile) -> Host {
    let r = RenderSources {
        flags,
        facts,
        nominal: format!("nominal host of profile {}", profile.name),
        profile,
    };
    let (ram, ram_source) = r.ram();
    let (cpus, cpus_source) = r.cpus();
    let (storage, storage_source) = r.storage();
    let (pg_version, pg_version_source) = r.pg_version();
    let zfs = resolve_zfs(profile, flags.filesystem, facts, &|w| r.facts_src(w));
    let build = facts.and_then(|f| f.servers.postgres_build.as_ref());
    Host {
        ram,
        ram_source,
        cpus,
        cpus_source,
        storage,
        storage_source,
        zfs: zfs.in_use,
        zfs_source: zfs.in_use_source,
        pg_on_zfs: zfs.pg_on_zfs,
        pg_on_zfs_source: zfs.pg_on_zfs_source,
        zfs_datasets: zfs.datasets,
        pg_version,
        pg_version_source,
        pg_build: build.map(|b| b.value.clone()),
        pg_build_source: build.map_or("unknown: no facts from the host".to_string(), |b| {
            r.facts_src(&b.source)
        }),
    }
}

struct RenderSources<'a> {
    flags: &'a Flags<'a>,
    facts: Option<&'a Facts>,
    profile: &'a Profile,
    nominal: String,
}

impl RenderSources<'_> {
    /// A fact's source: the facts file's, or this machine's when detected.
    fn facts_src(&self, what: &str) -> String {
        match self.flags.facts {
            Some(f) => format!("{what} in {}", f.display()),
            None => format!("{what}, detected"),
        }
    }

    fn ram(&self) -> (ByteSize, String) {
        match (self.flags.ram, self.facts) {
            (Some(r), _) => (r, "--ram".to_string()),
            (None, Some(f)) => {
                let m = &f.memory;
                let src = match &m.cgroup_limit {
                    Some(l) if l.value < m.physical.value => self.facts_src(&format!(
                        "cgroup limit ({}), below physical {}",
                        l.source, m.physical.value
                    )),
                    _ => self.facts_src(&format!("physical ({})", m.physical.source)),
                };
                (m.effective(), src)
            }
            (None, None) => (self.profile.host.ram, self.nominal.clone()),
        }
    }

    fn cpus(&self) -> (u32, String) {
        match (self.flags.cpus, self.facts) {
            (Some(c), _) => (c, "--cpus".to_string()),
            (None, Some(f)) => (
                f.cpu.effective(),
                self.facts_src(&match &f.cpu.cgroup_quota {
                    Some(q) => format!("cgroup quota {} CPUs", q.value),
                    None => format!("{} logical", f.cpu.logical.value),
                }),
            ),
            (None, None) => (self.profile.host.cpus, self.nominal.clone()),
        }
    }

    fn storage(&self) -> (crate::facts::StorageKind, String) {
        match (self.flags.storage, self.facts) {
            (Some(s), _) => (s, "--storage".to_string()),
            (None, Some(f)) => (
                f.storage.kind.value,
                self.facts_src(&format!(
                    "{}{}",
                    f.storage.kind.source,
                    if f.storage.doubt.is_some() {
                        ", doubtful"
                    } else {
                        ""
                    }
                )),
            ),
            (None, None) => (self.profile.host.storage, self.nominal.clone()),
        }
    }

    fn pg_version(&self) -> (PgVersion, String) {
        match (self.flags.pg_version, self.facts) {
            (Some(v), _) => (v, "--pg-version".to_string()),
            (None, Some(f)) => match f.servers.pg_version() {
                Some(v) => (v, self.facts_src("postgres found")),
                None => (
                    self.profile.host.pg_version,
                    format!(
                        "{} (no PostgreSQL {} in the facts)",
                        self.nominal,
                        PgVersion::range_text()
                    ),
                ),
            },
            (None, None) => (self.profile.host.pg_version, self.nominal.clone()),
        }
    }
}

/// What ZFS means for a host: whether PostgreSQL's data is on it (the only
/// thing that makes the ZFS-only settings safe), whether the ARC is there
/// to cap and budget, and whether to render the dataset script.
struct ZfsUse {
    pub pg_on_zfs: bool,
    pub pg_on_zfs_source: String,
    pub in_use: bool,
    pub in_use_source: String,
    pub datasets: bool,
}

fn resolve_zfs(
    profile: &Profile,
    filesystem_flag: Option<&str>,
    facts: Option<&Facts>,
    facts_src: &dyn Fn(&str) -> String,
) -> ZfsUse {
    use crate::facts::is_zfs;
    let nominal = format!("nominal host of profile {}", profile.name);
    let (data_on_zfs, data_source) = match (filesystem_flag, facts) {
        (Some(fs), _) => (is_zfs(fs), format!("--filesystem {fs}")),
        (None, Some(f)) => {
            let data = match &f.storage.filesystem {
                Some(fs) => format!(
                    "data directory {} on {} ({})",
                    f.storage.data_dir.as_deref().unwrap_or("?"),
                    fs.value,
                    fs.source
                ),
                None => "the filesystem of the data directory is unknown".to_string(),
            };
            let wal = match &f.storage.wal_filesystem {
                Some(fs) => format!(
                    "; pg_wal links to {} on {}",
                    f.storage.wal_dir.as_deref().unwrap_or("?"),
                    fs.value
                ),
                None => String::new(),
            };
            (f.data_on_zfs(), facts_src(&format!("{data}{wal}")))
        }
        (None, None) => (
            is_zfs(&profile.host.filesystem),
            format!("{nominal}: filesystem {}", profile.host.filesystem),
        ),
    };
    let pools = facts.map(|f| f.zfs_pools().to_vec()).unwrap_or_default();
    match profile.zfs.enabled {
        ZfsMode::Off => ZfsUse {
            pg_on_zfs: false,
            pg_on_zfs_source: format!("profile {}: zfs disabled", profile.name),
            in_use: false,
            in_use_source: format!("profile {}: zfs disabled", profile.name),
            datasets: false,
        },
        ZfsMode::On => ZfsUse {
            pg_on_zfs: data_on_zfs,
            pg_on_zfs_source: data_source,
            in_use: true,
            in_use_source: format!("profile {}: zfs enabled", profile.name),
            datasets: true,
        },
        ZfsMode::Auto => {
            let (in_use, in_use_source) = if data_on_zfs {
                (true, data_source.clone())
            } else if !pools.is_empty() {
                (
                    true,
                    facts_src(&format!(
                        "ZFS pool(s) {} imported, PostgreSQL's data not on ZFS",
                        pools.join(", ")
                    )),
                )
            } else {
                (false, format!("no ZFS in use: {data_source}"))
            };
            ZfsUse {
                pg_on_zfs: data_on_zfs,
                pg_on_zfs_source: data_source,
                in_use,
                in_use_source,
                datasets: data_on_zfs,
            }
        }
    }
}
