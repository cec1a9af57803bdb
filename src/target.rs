//! The resolution stage: flags, a facts file, a directory's manifest,
//! this machine and the profile's nominal host, turned into the one
//! [`Host`] every later stage works for, each fact with where it came from.
//!
//! [`resolve`] is the only entry: each command says what the host is for
//! ([`Purpose`]) and the order of the sources follows from it.
//!
//! - render and bench tune for it: flag > facts file (or this machine,
//!   detected when no profile is named) > the profile's nominal host;
//! - check-budget and the live commands judge against it: flag > facts
//!   file > manifest > this machine (for check-budget with a note, for a
//!   live command only when every server runs here); a live server's
//!   release is its own, and where a local server's data directory really
//!   is decides whether it is on ZFS, over any flag or file.

use std::path::Path;

use anyhow::Result;

use crate::error::Error;
use crate::facts::detect::Detector;
use crate::facts::{is_zfs, Facts, Sourced, StorageKind};
use crate::manifest::Manifest;
use crate::model::{Assumptions, HostReserve};
use crate::profile::{Profile, ZfsMode};
use crate::read::catalog::{self, ServiceVersion};
use crate::read::settings::Releases;
use crate::units::ByteSize;
use crate::version::PgVersion;

/// The host being tuned or judged: every fact with its source.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Host {
    pub ram: Sourced<ByteSize>,
    /// What tuning needs (render, bench): when judging files nothing needs
    /// them, and they are what a facts file or manifest says, or unknown.
    pub cpus: Sourced<u32>,
    pub storage: Sourced<StorageKind>,
    /// ZFS is in use on the host: its ARC is capped and budgeted.
    pub zfs: Sourced<bool>,
    /// PostgreSQL's data directory (and its WAL directory, when pg_wal
    /// links elsewhere) is on ZFS: the only thing that makes
    /// `full_page_writes = off` (and wal_init_zero, wal_recycle off) safe.
    pub pg_on_zfs: Sourced<bool>,
    /// Render zfs-datasets.sh: the data is on ZFS, or the profile asks.
    pub zfs_datasets: bool,
    /// The size of the filesystem pg_wal is on, when a facts file (or the
    /// manifest of a directory rendered from one) says it: max_wal_size
    /// stays within a tenth of it.
    pub wal_space: Option<Sourced<ByteSize>>,
    pub pg_version: Sourced<PgVersion>,
    /// A flag, a facts file, a manifest or the live server named the
    /// major; otherwise it is assumed (this machine's, or the default) and
    /// a parameter only other majors have is a warning, not an error.
    pub pg_version_stated: bool,
    /// What the PostgreSQL build supports (`lz4`...), when known: a value
    /// its build lacks stops the server from starting.
    pub pg_build: Sourced<Option<Vec<String>>>,
    /// The exact PostgreSQL release (`16.4`), when known.
    pub pg_release: Option<String>,
    /// The Redis and PgBouncer releases to check against.
    pub redis_version: ServiceVersion,
    pub pgbouncer_version: ServiceVersion,
    /// Memory claimed outside the config files: the OS, other processes.
    pub reserves: Vec<HostReserve>,
    /// What the budget assumes of the workload.
    pub assumptions: Assumptions,
    /// Things the user should know about the resolution (stderr).
    pub notes: Vec<String>,
}

impl Host {
    /// The releases files for this host are read for. An assumed Redis is
    /// read as the newest and budgeted with the largest factors measured
    /// (as render does).
    pub fn releases(&self) -> Releases {
        Releases {
            pg_version: self.pg_version.value,
            pg_build: self.pg_build.value.clone(),
            pg_release: self.pg_release.clone(),
            redis_version: self.redis_version.known().unwrap_or("").to_string(),
            pgbouncer_version: self.pgbouncer_version.version.clone(),
        }
    }

    /// Whether the target build is known to have a feature.
    pub fn pg_build_has(&self, feature: &str) -> bool {
        self.pg_build
            .value
            .as_ref()
            .is_some_and(|b| b.iter().any(|f| f == feature))
    }
}

/// What the command line says about the host.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags<'a> {
    pub ram: Option<ByteSize>,
    /// The CPUs and storage to tune for.
    pub cpus: Option<u32>,
    pub storage: Option<StorageKind>,
    pub facts: Option<&'a Path>,
    pub filesystem: Option<&'a str>,
    pub pg_version: Option<PgVersion>,
    pub redis_version: Option<&'a str>,
    pub pgbouncer_version: Option<&'a str>,
    /// A profile whose reservations and assumptions to count.
    pub profile: Option<&'a Profile>,
    /// More memory held on the host (`--reserve NAME=SIZE`); one named as
    /// a reservation of the profile or manifest takes its place.
    pub reserves: &'a [(String, ByteSize)],
    /// The RAM is a container's memory limit (`--container`): the host's
    /// OS reserve is not charged to it.
    pub container: bool,
    /// Budget assumptions given on the command line, over the profile's
    /// or manifest's.
    pub assumptions: AssumptionFlags,
    /// An operator's YAML being judged: its container's memory limit is
    /// the RAM (after --ram), its image's tag the major (after
    /// --pg-version).
    pub deployment: Option<&'a crate::read::operator::Deployment>,
}

/// `--sorts-per-query`, `--busy-share`, `--manual-maintenance`,
/// `--backend-memory`, `--redis-write-rate`, `--redis-role`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AssumptionFlags {
    pub sorts_per_query: Option<u32>,
    pub busy_share: Option<f64>,
    pub manual_maintenance: Option<u32>,
    pub backend_memory: Option<ByteSize>,
    pub redis_write_rate: Option<ByteSize>,
    pub redis_role: Option<crate::profile::RedisRole>,
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
        if let Some(r) = self.redis_write_rate {
            a.redis_write_rate = r;
        }
        if let Some(r) = self.redis_role {
            a.redis_role = Some(r);
        }
    }
}

/// What a host is resolved for.
#[derive(Clone, Copy, Debug)]
pub enum Purpose<'a> {
    /// `render`: the host to tune `profile` for; `facts` are the facts
    /// file's, or this machine's when no profile was named.
    Render {
        profile: &'a Profile,
        facts: Option<&'a Facts>,
    },
    /// `bench`: this machine as render would tune `profile` for it, at the
    /// release bench runs; its scratch clusters live in temp dirs, never
    /// on ZFS.
    Bench {
        profile: &'a Profile,
        facts: &'a Facts,
        pg_version: PgVersion,
    },
    /// `check-budget`: files judged against flags > facts > manifest >
    /// this machine (said in a note: a CI runner is rarely the host).
    Check,
    /// `inspect`, `diff`, `apply`: servers, this machine's RAM only when
    /// they all run here; the release of the live PostgreSQL; where a
    /// local PostgreSQL's data directory is (`LocalDataDir`).
    Live {
        all_local: bool,
        postgres: Option<&'a LivePostgres>,
        data_dir: Option<&'a LocalDataDir>,
    },
}

/// A live PostgreSQL's own word on its release: what it is, whatever a
/// file says.
#[derive(Clone, Debug, PartialEq)]
pub struct LivePostgres {
    pub major: u32,
    /// What its build supports, from the values and parameters it lists.
    pub build: Vec<String>,
    /// `16.4`.
    pub release: String,
}

/// Where a PostgreSQL on this machine keeps its data, as detection sees
/// it: whether that is on ZFS decides over any flag or file.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalDataDir {
    pub on_zfs: bool,
    pub source: String,
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

/// Whether `--reserve NAME` names the reservation `existing`: its whole
/// name, or its first word (`api` for "API: 4 gunicorn workers"), in any
/// case. Such a --reserve replaces it, so nothing is counted twice.
pub fn names_reserve(name: &str, existing: &str) -> bool {
    let first = existing
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    name.eq_ignore_ascii_case(existing) || (!first.is_empty() && name.eq_ignore_ascii_case(first))
}

/// Inside a container the host's OS reserve is the host's business: the
/// container is charged what it needs itself (measured, see
/// calibration::CONTAINER_OVERHEAD).
fn container_reserve(why: &str, host_reserve: &HostReserve) -> HostReserve {
    HostReserve {
        name: "container overhead".into(),
        memory: ByteSize(crate::calibration::CONTAINER_OVERHEAD),
        source: format!(
            "{why}: the RAM is a container's limit, so the host's {} is not charged to it; {}",
            host_reserve.memory,
            crate::calibration::CONTAINER_OVERHEAD_SOURCE
        ),
    }
}

/// The host for `purpose`, every fact resolved from the sources that
/// purpose reads, in its order. The one resolution every command calls.
pub fn resolve(flags: &Flags, manifest: Option<&Manifest>, purpose: Purpose) -> Result<Host> {
    match purpose {
        Purpose::Render { profile, facts } => Ok(tuning_host(flags, facts, profile, None)),
        Purpose::Bench {
            profile,
            facts,
            pg_version,
        } => Ok(tuning_host(flags, Some(facts), profile, Some(pg_version))),
        Purpose::Check => judged_host(flags, manifest, Here::WithNote, None, None),
        Purpose::Live {
            all_local,
            postgres,
            data_dir,
        } => judged_host(
            flags,
            manifest,
            Here::IfServersLocal(all_local),
            postgres,
            data_dir,
        ),
    }
}

// ---------------------------------------------------------------------------
// Judging files and servers: flag > facts file > manifest > this machine.

/// Whether this machine may stand in for the host when nothing else names
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Here {
    /// check-budget: yes, with a note.
    WithNote,
    /// Live commands: only when every server runs here.
    IfServersLocal(bool),
}

fn judged_host(
    flags: &Flags,
    manifest: Option<&Manifest>,
    here: Here,
    live_pg: Option<&LivePostgres>,
    data_dir: Option<&LocalDataDir>,
) -> Result<Host> {
    let mut src = Sources {
        flags,
        facts: flags.facts.map(Facts::load).transpose()?,
        manifest,
        local: None,
        notes: Vec::new(),
    };
    let ram = src.ram(here)?;
    let (pg_version, pg_here) = src.pg_version(live_pg.map(|p| p.major));
    let pg_version_stated = !pg_here && !pg_version.source.starts_with("assumed");
    let mut pg_on_zfs = src.pg_on_zfs();
    if let Some(d) = data_dir {
        if let Some(fs) = flags.filesystem {
            if is_zfs(fs) != d.on_zfs {
                src.notes.push(format!(
                    "note: --filesystem {fs} is not used: {}, and detection decides for a server on this machine",
                    d.source
                ));
            }
        }
        pg_on_zfs = Sourced::new(d.on_zfs, d.source.clone());
    }
    let redis_version = src.service_version(&REDIS);
    let pgbouncer_version = src.service_version(&PGBOUNCER);
    let (pg_build, pg_release) = match live_pg {
        Some(p) => (
            Sourced::new(Some(p.build.clone()), "the live server"),
            Some(p.release.clone()),
        ),
        None => src.pg_build(pg_here),
    };
    let container = src.container(&ram);
    let (reserves, assumptions) = src.reserves(ram.value, container.as_deref())?;
    let (cpus, storage) = src.cpus_and_storage();
    Ok(Host {
        ram,
        cpus,
        storage,
        zfs: src.zfs_in_use(),
        pg_on_zfs,
        zfs_datasets: false,
        wal_space: src.wal_space(),
        pg_version,
        pg_version_stated,
        pg_build,
        pg_release,
        redis_version,
        pgbouncer_version,
        reserves,
        assumptions,
        notes: src.notes,
    })
}

/// Where each fact of the host can come from, in order.
struct Sources<'a> {
    flags: &'a Flags<'a>,
    facts: Option<Facts>,
    manifest: Option<&'a Manifest>,
    /// This machine, detected at most once and only when asked.
    local: Option<Facts>,
    notes: Vec<String>,
}

/// Where a service's release is said, and the releases dbtune knows.
struct ServiceReleases {
    flag_name: &'static str,
    flag: for<'a> fn(&Flags<'a>) -> Option<&'a str>,
    found: fn(&crate::facts::Servers) -> Option<String>,
    /// What a directory's manifest says it was written for.
    recorded: fn(&Manifest) -> Option<String>,
    known: &'static [&'static str],
    /// The release as dbtune knows it, and a note when it is not exact.
    resolve: fn(&str) -> (String, Option<String>),
}

const REDIS: ServiceReleases = ServiceReleases {
    flag_name: "--redis-version",
    flag: |f| f.redis_version,
    recorded: |m| m.host.redis_version.clone(),
    found: |s| s.redis.as_ref().map(|v| v.value.clone()),
    known: &catalog::REDIS_VERSIONS,
    resolve: catalog::redis_version,
};

const PGBOUNCER: ServiceReleases = ServiceReleases {
    flag_name: "--pgbouncer-version",
    flag: |f| f.pgbouncer_version,
    recorded: |m| m.host.pgbouncer_version.clone(),
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

    /// pg_wal's filesystem size: a facts file's, else the manifest's.
    /// Never this machine's: a CI runner's disk says nothing of the host's.
    fn wal_space(&self) -> Option<Sourced<ByteSize>> {
        match (&self.facts, self.manifest) {
            (Some(f), _) => f
                .storage
                .wal_space
                .as_ref()
                .map(|w| Sourced::new(w.value, format!("{}: {}", self.facts_name(), w.source))),
            (None, Some(m)) => m
                .host
                .wal_space
                .map(|w| Sourced::new(w, format!("manifest: {}", m.host.wal_space_source))),
            (None, None) => None,
        }
    }

    fn local(&mut self) -> &Facts {
        self.local
            .get_or_insert_with(|| Detector::host().detect(None))
    }

    /// Whether nothing names the host, so this machine may stand in.
    fn looks_here(&self) -> bool {
        self.flags.facts.is_none() && self.manifest.is_none()
    }

    fn ram(&mut self, here: Here) -> Result<Sourced<ByteSize>> {
        let limit = self.flags.deployment.and_then(|d| d.memory_limit.as_ref());
        let (ram, source) = match (self.flags.ram, &self.facts, self.manifest) {
            (Some(r), _, _) => (r, "--ram".to_string()),
            (None, _, _) if limit.is_some() => {
                let (b, at) = limit.expect("checked");
                (*b, format!("the container's memory limit ({at})"))
            }
            (None, Some(f), _) => (f.memory.effective(), self.facts_name()),
            (None, None, Some(m)) => (m.host.ram, format!("manifest: {}", m.host.ram_source)),
            (None, None, None) => {
                match here {
                    Here::IfServersLocal(false) => return Err(Error::plain(
                        "the servers are not on this machine, so its RAM says nothing about theirs",
                        "pass --ram SIZE or --facts FILE for the servers' host",
                    )
                    .into()),
                    Here::IfServersLocal(true) => {
                        let ram = self.local().memory.effective();
                        (ram, "this machine (the servers run on it)".to_string())
                    }
                    Here::WithNote => {
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
        Ok(Sourced::new(ram, source))
    }

    /// The major, and whether it is this machine's own `postgres` (then its
    /// build and exact release are this machine's too).
    fn pg_version(&mut self, pg_major: Option<u32>) -> (Sourced<PgVersion>, bool) {
        if let Some(v) = pg_major {
            (
                Sourced::new(PgVersion::nearest(v), "the live server"),
                false,
            )
        } else if let Some(v) = self.flags.pg_version {
            (Sourced::new(v, "--pg-version"), false)
        } else if let Some((major, (image, at))) = self
            .flags
            .deployment
            .and_then(|d| Some((d.image_major?, d.image.as_ref()?)))
        {
            (
                Sourced::new(
                    PgVersion::nearest(major),
                    format!("the image's tag: {image} ({at})"),
                ),
                false,
            )
        } else if let Some(v) = self.facts.as_ref().and_then(|f| f.servers.pg_version()) {
            (Sourced::new(v, self.facts_name()), false)
        } else if let Some(m) = self.manifest {
            (Sourced::new(m.host.pg_version, "manifest"), false)
        } else {
            match self.local().servers.pg_version() {
                Some(v) => (
                    Sourced::new(
                        v,
                        "assumed: this machine's postgres; not stated by --pg-version, facts or manifest",
                    ),
                    true,
                ),
                None => (
                    Sourced::new(
                        PgVersion::DEFAULT,
                        "assumed: no --pg-version, facts or manifest",
                    ),
                    false,
                ),
            }
        }
    }

    fn pg_on_zfs(&self) -> Sourced<bool> {
        match (self.flags.filesystem, &self.facts, self.manifest) {
            (Some(fs), _, _) => Sourced::new(is_zfs(fs), format!("--filesystem {fs}")),
            (None, Some(f), _) => Sourced::new(
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
            (None, None, Some(m)) => Sourced::new(
                m.host.pg_on_zfs,
                format!("manifest: {}", m.host.pg_on_zfs_source),
            ),
            (None, None, None) => Sourced::new(
                false,
                "nothing says the data directory is on ZFS (--filesystem, --facts)",
            ),
        }
    }

    /// Redis's or PgBouncer's release: the flag, the facts file, the server
    /// here (when this machine stands in), else the newest dbtune knows.
    fn service_version(&mut self, r: &ServiceReleases) -> ServiceVersion {
        let flag = (r.flag)(self.flags);
        let fact = self.facts.as_ref().and_then(|f| (r.found)(&f.servers));
        let recorded = self.manifest.and_then(r.recorded);
        // This machine is asked only when nothing else says.
        let local = if flag.is_none() && fact.is_none() && self.looks_here() {
            (r.found)(&self.local().servers)
        } else {
            None
        };
        let unstated = format!("not stated by {} or a facts file", r.flag_name);
        let stated = flag.is_some() || fact.is_some() || recorded.is_some();
        let from_facts = fact.is_some();
        let (given, source) = match (flag, fact.or(recorded), local) {
            (Some(v), _, _) => (v.to_string(), r.flag_name.to_string()),
            (None, Some(v), _) if from_facts => (v, self.facts_name()),
            (None, Some(v), _) => (v, "manifest".to_string()),
            (None, None, Some(v)) => (v, format!("assumed: this machine's; {unstated}")),
            (None, None, None) => {
                return ServiceVersion {
                    version: r.known[r.known.len() - 1].to_string(),
                    source: format!("assumed: the newest dbtune knows; {unstated}"),
                    assumed: true,
                    stated: false,
                }
            }
        };
        let (version, note) = (r.resolve)(&given);
        ServiceVersion {
            version,
            assumed: false,
            stated,
            source: match note {
                Some(n) => format!("{source}: {n}"),
                None => source,
            },
        }
    }

    /// The PostgreSQL build and exact release: the facts file's, else this
    /// machine's when nothing else names the host and the version is its
    /// own.
    fn pg_build(&mut self, pg_here: bool) -> (Sourced<Option<Vec<String>>>, Option<String>) {
        let local_pg = if self.looks_here() && pg_here {
            let s = self.local().servers.clone();
            Some((
                s.postgres_build.map(|b| b.value),
                s.postgres.map(|p| p.value),
            ))
        } else {
            None
        };
        let pg_build = match (&self.facts, &local_pg) {
            (Some(f), _) => Sourced::new(
                f.servers.postgres_build.as_ref().map(|b| b.value.clone()),
                self.facts_name(),
            ),
            (None, Some((b, _))) => Sourced::new(b.clone(), "this machine's postgres"),
            _ => Sourced::new(None, "unknown: no facts from the host"),
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

    /// Why the RAM is a container's limit, when it is: `--container`, or
    /// a cgroup limit below physical RAM in the facts (the facts file's,
    /// or this machine's when its RAM is the one judged).
    fn container(&mut self, ram: &Sourced<ByteSize>) -> Option<String> {
        if self.flags.container {
            return Some("--container".into());
        }
        if ram.source.starts_with("the container's memory limit") {
            return Some(ram.source.clone());
        }
        let limited = |f: &Facts| match &f.memory.cgroup_limit {
            Some(l) if l.value < f.memory.physical.value => Some(format!(
                "cgroup limit {} ({}) below physical {}",
                l.value, l.source, f.memory.physical.value
            )),
            _ => None,
        };
        if let Some(f) = &self.facts {
            return limited(f).map(|why| format!("{}: {why}", self.facts_name()));
        }
        if ram.source.starts_with("this machine") {
            return limited(self.local()).map(|why| format!("this machine: {why}"));
        }
        None
    }

    /// The host's other memory and the budget's assumptions: the profile's
    /// (--profile), else the manifest's, else the OS reserve alone; inside
    /// a container its own overhead in place of the host's OS reserve;
    /// every --reserve, in place of the reservation it names (counted
    /// once), and the assumptions the command line sets.
    fn reserves(
        &self,
        ram: ByteSize,
        container: Option<&str>,
    ) -> Result<(Vec<HostReserve>, Assumptions)> {
        // A pod's memory limit holds PostgreSQL alone: the host's
        // reservations (applications beside it) are not in it.
        let pod = self
            .flags
            .deployment
            .is_some_and(|d| d.memory_limit.is_some() && self.flags.ram.is_none());
        let (mut reserves, mut assumptions) = match (self.flags.profile, self.manifest) {
            (Some(p), _) => (p.reserves(ram), p.assumptions()),
            (None, Some(m)) if pod => (default_reserves(ram), m.assumptions.clone()),
            (None, Some(m)) => (m.reserves.clone(), m.assumptions.clone()),
            (None, None) => (default_reserves(ram), Assumptions::default()),
        };
        if let Some(why) = container {
            for r in reserves.iter_mut().filter(|r| r.name == "OS reserve") {
                *r = container_reserve(why, r);
            }
        }
        for (name, memory) in self.flags.reserves {
            let same: Vec<usize> = reserves
                .iter()
                .enumerate()
                .filter(|(_, r)| names_reserve(name, &r.name))
                .map(|(i, _)| i)
                .collect();
            match same.as_slice() {
                [] => reserves.push(HostReserve {
                    name: name.clone(),
                    memory: *memory,
                    source: "--reserve".into(),
                }),
                [i] => {
                    let r = &mut reserves[*i];
                    r.source = format!(
                        "--reserve {name}={memory}, in place of {} ({}: {})",
                        r.name, r.source, r.memory
                    );
                    r.memory = *memory;
                }
                many => {
                    return Err(Error::plain(
                        format!(
                            "--reserve {name} names {} reservations: {}",
                            many.len(),
                            many.iter()
                                .map(|i| format!("`{}`", reserves[*i].name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        "name one of them in full (a --reserve that names a reservation of the profile \
                         or manifest replaces it), or pick a name of its own to add one",
                    )
                    .into())
                }
            }
        }
        self.flags.assumptions.apply(&mut assumptions);
        Ok((reserves, assumptions))
    }

    /// Whether ZFS is in use on the host (its ARC counts in the budget
    /// through `zfs_arc_max` in the files, whatever this says).
    fn zfs_in_use(&self) -> Sourced<bool> {
        match (&self.facts, self.manifest) {
            (Some(f), _) => Sourced::new(
                f.data_on_zfs() || !f.zfs_pools().is_empty(),
                self.facts_name(),
            ),
            (None, Some(m)) => Sourced::new(m.host.zfs, format!("manifest: {}", m.host.zfs_source)),
            (None, None) => Sourced::new(
                false,
                "unknown: the ARC counts through zfs_arc_max in the files",
            ),
        }
    }

    /// CPUs and storage, which judging files does not use: a flag, the
    /// facts file or the manifest when one says, else unknown (a
    /// placeholder no rule reads, and the source says so).
    fn cpus_and_storage(&self) -> (Sourced<u32>, Sourced<StorageKind>) {
        const UNKNOWN: &str = "unknown: judging files does not need it";
        let cpus = match (self.flags.cpus, &self.facts, self.manifest) {
            (Some(c), _, _) => Sourced::new(c, "--cpus"),
            (None, Some(f), _) => Sourced::new(f.cpu.effective(), self.facts_name()),
            (None, None, Some(m)) => Sourced::new(m.host.cpus, "manifest"),
            (None, None, None) => Sourced::new(1, UNKNOWN),
        };
        let storage = match (self.flags.storage, &self.facts, self.manifest) {
            (Some(s), _, _) => Sourced::new(s, "--storage"),
            (None, Some(f), _) => Sourced::new(f.storage.kind.value, self.facts_name()),
            (None, None, Some(m)) => Sourced::new(m.host.storage, "manifest"),
            (None, None, None) => Sourced::new(StorageKind::Ssd, UNKNOWN),
        };
        (cpus, storage)
    }
}

// ---------------------------------------------------------------------------
// Tuning: flag > facts file (or this machine, detected when no profile is
// named) > the profile's nominal host.

/// Every fact of the host a plan is made for; `bench_release` makes it the
/// bench host (that release, and no ZFS: scratch clusters in temp dirs).
fn tuning_host(
    flags: &Flags,
    facts: Option<&Facts>,
    profile: &Profile,
    bench_release: Option<PgVersion>,
) -> Host {
    let r = TuningSources {
        flags,
        facts,
        nominal: format!("nominal host of profile {}", profile.name),
        profile,
    };
    let ram = r.ram();
    let zfs = match bench_release {
        Some(_) => ZfsUse::none("bench: scratch clusters in temp dirs, never on ZFS"),
        None => resolve_zfs(profile, flags.filesystem, facts, &|w| r.facts_src(w)),
    };
    let pg_version = match bench_release {
        Some(v) => Sourced::new(v, "bench: the PostgreSQL it runs"),
        None => r.pg_version(),
    };
    let build = facts.and_then(|f| f.servers.postgres_build.as_ref());
    let newest = |what: &str| ServiceVersion {
        version: String::new(),
        source: format!("the newest {what} dbtune knows"),
        assumed: true,
        stated: false,
    };
    let mut assumptions = profile.assumptions();
    flags.assumptions.apply(&mut assumptions);
    Host {
        reserves: profile.reserves(ram.value),
        ram,
        cpus: r.cpus(),
        storage: r.storage(),
        zfs: zfs.in_use,
        pg_on_zfs: zfs.pg_on_zfs,
        zfs_datasets: zfs.datasets,
        wal_space: match bench_release {
            Some(_) => None,
            None => facts.and_then(|f| f.storage.wal_space.as_ref()).map(|w| {
                Sourced::new(
                    w.value,
                    r.facts_src(&format!("storage.wal_space ({})", w.source)),
                )
            }),
        },
        pg_version,
        pg_version_stated: true,
        pg_build: Sourced::new(
            build.map(|b| b.value.clone()),
            build.map_or("unknown: no facts from the host".to_string(), |b| {
                r.facts_src(&b.source)
            }),
        ),
        pg_release: None,
        redis_version: newest("Redis"),
        pgbouncer_version: newest("PgBouncer"),
        assumptions,
        notes: Vec::new(),
    }
}

struct TuningSources<'a> {
    flags: &'a Flags<'a>,
    facts: Option<&'a Facts>,
    profile: &'a Profile,
    nominal: String,
}

impl TuningSources<'_> {
    /// A fact's source: the facts file's, or this machine's when detected.
    fn facts_src(&self, what: &str) -> String {
        match self.flags.facts {
            Some(f) => format!("{what} in {}", f.display()),
            None => format!("{what}, detected"),
        }
    }

    fn ram(&self) -> Sourced<ByteSize> {
        match (self.flags.ram, self.facts) {
            (Some(r), _) => Sourced::new(r, "--ram"),
            (None, Some(f)) => {
                let m = &f.memory;
                let src = match &m.cgroup_limit {
                    Some(l) if l.value < m.physical.value => self.facts_src(&format!(
                        "cgroup limit ({}), below physical {}",
                        l.source, m.physical.value
                    )),
                    _ => self.facts_src(&format!("physical ({})", m.physical.source)),
                };
                Sourced::new(m.effective(), src)
            }
            (None, None) => Sourced::new(self.profile.host.ram, self.nominal.clone()),
        }
    }

    fn cpus(&self) -> Sourced<u32> {
        match (self.flags.cpus, self.facts) {
            (Some(c), _) => Sourced::new(c, "--cpus"),
            (None, Some(f)) => Sourced::new(
                f.cpu.effective(),
                self.facts_src(&match &f.cpu.cgroup_quota {
                    Some(q) => format!("cgroup quota {} CPUs", q.value),
                    None => format!("{} logical", f.cpu.logical.value),
                }),
            ),
            (None, None) => Sourced::new(self.profile.host.cpus, self.nominal.clone()),
        }
    }

    fn storage(&self) -> Sourced<StorageKind> {
        match (self.flags.storage, self.facts) {
            (Some(s), _) => Sourced::new(s, "--storage"),
            (None, Some(f)) => Sourced::new(
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
            (None, None) => Sourced::new(self.profile.host.storage, self.nominal.clone()),
        }
    }

    fn pg_version(&self) -> Sourced<PgVersion> {
        match (self.flags.pg_version, self.facts) {
            (Some(v), _) => Sourced::new(v, "--pg-version"),
            (None, Some(f)) => match f.servers.pg_version() {
                Some(v) => Sourced::new(v, self.facts_src("postgres found")),
                None => Sourced::new(
                    self.profile.host.pg_version,
                    format!(
                        "{} (no PostgreSQL {} in the facts)",
                        self.nominal,
                        PgVersion::range_text()
                    ),
                ),
            },
            (None, None) => Sourced::new(self.profile.host.pg_version, self.nominal.clone()),
        }
    }
}

/// What ZFS means for a host: whether PostgreSQL's data is on it (the only
/// thing that makes the ZFS-only settings safe), whether the ARC is there
/// to cap and budget, and whether to render the dataset script.
struct ZfsUse {
    pg_on_zfs: Sourced<bool>,
    in_use: Sourced<bool>,
    datasets: bool,
}

impl ZfsUse {
    fn none(why: &str) -> ZfsUse {
        ZfsUse {
            pg_on_zfs: Sourced::new(false, why),
            in_use: Sourced::new(false, why),
            datasets: false,
        }
    }
}

fn resolve_zfs(
    profile: &Profile,
    filesystem_flag: Option<&str>,
    facts: Option<&Facts>,
    facts_src: &dyn Fn(&str) -> String,
) -> ZfsUse {
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
        ZfsMode::Off => ZfsUse::none(&format!("profile {}: zfs disabled", profile.name)),
        ZfsMode::On => ZfsUse {
            pg_on_zfs: Sourced::new(data_on_zfs, data_source),
            in_use: Sourced::new(true, format!("profile {}: zfs enabled", profile.name)),
            datasets: true,
        },
        ZfsMode::Auto => {
            let in_use = if data_on_zfs {
                Sourced::new(true, data_source.clone())
            } else if !pools.is_empty() {
                Sourced::new(
                    true,
                    facts_src(&format!(
                        "ZFS pool(s) {} imported, PostgreSQL's data not on ZFS",
                        pools.join(", ")
                    )),
                )
            } else {
                Sourced::new(false, format!("no ZFS in use: {data_source}"))
            };
            ZfsUse {
                pg_on_zfs: Sourced::new(data_on_zfs, data_source),
                in_use,
                datasets: data_on_zfs,
            }
        }
    }
}
