//! Splits the host's memory between the OS, the profile's reservations, the
//! ZFS ARC, Redis, PgBouncer and PostgreSQL, using the budget's worst-case
//! formulas, so the result fits by construction.

use crate::calibration;
use crate::error::Error;
use crate::model::{
    autovacuum_each, effective_wal_buffers, jit_possible, jit_worst, pg_process_worst,
    pg_processes, pg_shared_memory, redis_worst, Assumptions, HostReserve, PgShmSettings,
};
use crate::profile::{Persistence, Profile, Workload, GENERIC};
use crate::units::{ByteSize, KIB};
use crate::version::PgVersion;

/// The least work_mem dbtune renders: PostgreSQL's default. Below it a
/// "tuned" server spills to temp files sorts and hashes an untuned one
/// keeps in memory; render lowers connections (or refuses) instead.
pub const WORK_MEM_FLOOR: ByteSize = ByteSize::mib(4);

/// pg_stat_statements.max as render writes it (the extension's default).
pub const PGSS_MAX: u64 = 5000;

use super::Host;

#[derive(Clone, Debug)]
pub struct RedisAlloc {
    pub share: ByteSize,
    pub maxmemory: ByteSize,
    pub clients: ByteSize,
    pub backlog: ByteSize,
    /// What the AOF buffer may hold (appendfsync everysec), else zero.
    pub aof_buffer: ByteSize,
    pub worst: ByteSize,
    pub capped: bool,
    /// The measured factors maxmemory was divided by: fragmentation, and
    /// a fork's copy when the persistence forks.
    pub fragmentation: f64,
    pub fork: Option<f64>,
    /// The factors are the profile's (measured on its host), not the
    /// measured worst.
    pub stated: bool,
    /// Where the factors come from (the role measured, the margin).
    pub basis: String,
}

#[derive(Clone, Debug)]
pub struct BouncerAlloc {
    pub pool_size: u32,
    pub reserve_pool: u32,
    pub max_client_conn: u32,
    pub worst: ByteSize,
    /// Why the pool is smaller than the profile asked, if it is.
    pub shrunk: Option<String>,
}

impl BouncerAlloc {
    pub fn servers(&self) -> u32 {
        self.pool_size + self.reserve_pool
    }
}

/// The PostgreSQL numbers that cost memory.
#[derive(Clone, Debug)]
pub struct PgAlloc {
    pub share: ByteSize,
    pub shared_buffers: ByteSize,
    pub wal_buffers: Option<ByteSize>,
    pub max_connections: u32,
    pub superuser_reserved: u32,
    pub connections_reason: String,
    pub max_worker_processes: u32,
    pub max_parallel_workers: u32,
    pub max_parallel_per_gather: u32,
    pub max_parallel_maintenance: u32,
    pub wal_senders: u32,
    pub autovacuum_workers: u32,
    pub io_workers: u32,
    pub work_mem: ByteSize,
    pub work_mem_reason: String,
    pub maintenance_work_mem: ByteSize,
    pub autovacuum_work_mem: ByteSize,
    pub hash_mem_multiplier: f64,
    pub huge_pages: Option<u64>,
    pub shared_estimate: ByteSize,
    pub worst: ByteSize,
    pub effective_cache_size: ByteSize,
}

#[derive(Clone, Debug)]
pub struct Allocation {
    pub ram: ByteSize,
    pub os_reserve: ByteSize,
    pub reserves: Vec<HostReserve>,
    /// RAM less the OS reserve and the profile's reservations.
    pub available: ByteSize,
    pub arc: Option<ByteSize>,
    pub redis: Option<RedisAlloc>,
    pub pgbouncer: Option<BouncerAlloc>,
    pub pg: PgAlloc,
    /// Where a cap bound: what the profile asked and what fits, for stderr.
    pub notes: Vec<String>,
}

/// Redis's worst case for a maxmemory, as the budget counts it.
fn redis_total(
    mm: ByteSize,
    buffers: ByteSize,
    forks: bool,
    c: &calibration::RedisMemory,
) -> ByteSize {
    let (data, buffers, fork, process) = redis_worst(mm, buffers, forks, c);
    data + buffers + fork + process
}

fn size_redis(profile: &Profile, host: &Host, share: ByteSize) -> Result<RedisAlloc, Error> {
    let r = &profile.redis;
    // The release is not known when rendering: the largest factors
    // measured for the role (with their margin), unless the profile states
    // its host's own.
    let c = calibration::redis(None).assumed(&profile.assumptions());
    let backlog = ByteSize::mib(1);
    let forks = r.persistence.forks();
    // The AOF is rendered with appendfsync everysec: its buffer may hold
    // a few seconds of writes outside maxmemory.
    let aof_buffer = if matches!(r.persistence, Persistence::Aof | Persistence::RdbAof) {
        crate::model::redis_aof_buffer(profile.assumptions().redis_write_rate)
    } else {
        ByteSize::ZERO
    };
    // Per byte of maxmemory: its fragmentation, and a fork's copy.
    let per_byte = c.fragmentation + if forks { c.fork_factor() } else { 0.0 };
    let room = share
        .saturating_sub(ByteSize(c.process))
        .saturating_sub(backlog)
        .saturating_sub(aof_buffer);
    // maxmemory-clients is a tenth of maxmemory, at least 8 MiB.
    let mut mm = room.scale(1.0 / (per_byte + 0.1));
    let mut clients = mm.scale(0.1);
    if clients < ByteSize::mib(8) {
        clients = ByteSize::mib(8);
        mm = room.saturating_sub(clients).scale(1.0 / per_byte);
    }
    let capped = mm > r.maxmemory_max;
    if capped {
        mm = r.maxmemory_max;
        clients = mm.scale(0.1).max(ByteSize::mib(8));
    }
    let mm = mm.floor_to(ByteSize::mib(1));
    let clients = clients.floor_to(ByteSize::mib(1));
    if mm < ByteSize::mib(16) {
        return Err(Error::refusal(format!(
            "profile `{}` does not fit a host with {} of RAM ({}): Redis's share ({share}) leaves \
             maxmemory under 16 MiB once fragmentation and {} are counted",
            profile.name,
            host.ram.value,
            host.ram.source,
            if r.persistence.forks() {
                "the copy-on-write of its forks"
            } else {
                "client buffers"
            }
        ))
        .with_hint(format!(
            "give Redis a larger [redis] share, or render without it (--services without redis, \
             or --profile {GENERIC}: PostgreSQL alone)"
        )));
    }
    Ok(RedisAlloc {
        share,
        maxmemory: mm,
        clients,
        backlog,
        aof_buffer,
        worst: redis_total(mm, clients + backlog + aof_buffer, forks, &c),
        capped,
        fragmentation: c.fragmentation,
        fork: forks.then(|| c.fork_factor()),
        stated: c.stated,
        basis: c.basis(),
    })
}

fn bouncer_worst(max_client_conn: u32, servers: u32) -> ByteSize {
    (ByteSize(4096) + ByteSize::kib(1)) * (max_client_conn + servers) as u64 + ByteSize::mib(2)
}

/// The PostgreSQL settings the planner is sizing, costed term by term with
/// the budget's own functions (pg_shared_memory, pg_processes,
/// pg_process_worst, jit_worst, autovacuum_each), so a plan's worst case is
/// the budget's worst case of the files it renders.
struct PgShape {
    version: PgVersion,
    shared_buffers: ByteSize,
    wal_buffers: Option<ByteSize>,
    max_connections: u32,
    max_worker_processes: u32,
    max_parallel_workers: u32,
    wal_senders: u32,
    autovacuum_workers: u32,
    io_workers: u32,
    maintenance_work_mem: ByteSize,
    /// Parallel CREATE INDEX workers maintenance_work_mem can feed.
    max_parallel_maintenance: u32,
    autovacuum_work_mem: ByteSize,
    huge_pages: bool,
    /// pg_stat_statements is loaded (its entries take shared memory).
    query_stats: bool,
    /// A JIT-compiled query can take memory (jit on, a build with LLVM).
    jit: bool,
}

impl PgShape {
    fn wal(&self) -> ByteSize {
        match self.wal_buffers {
            Some(w) => w,
            None => effective_wal_buffers(-1, self.shared_buffers),
        }
    }

    fn shared_estimate(&self) -> ByteSize {
        let pgss = if self.query_stats {
            crate::calibration::pg_library(self.version, "pg_stat_statements")
                .map_or(ByteSize::ZERO, |m| {
                    ByteSize(m.fixed + (m.per_unit * PGSS_MAX as f64).ceil() as u64)
                })
        } else {
            ByteSize::ZERO
        };
        let mut s = PgShmSettings::defaults(self.version, self.shared_buffers);
        s.wal_buffers = self.wal();
        s.max_connections = self.max_connections as u64;
        // On 18 the plan sets autovacuum_worker_slots to the workers too.
        s.autovacuum_slots = self.autovacuum_workers as u64;
        s.max_worker_processes = self.max_worker_processes as u64;
        s.max_wal_senders = self.wal_senders as u64;
        pg_shared_memory(self.version, &s) + pgss
    }

    /// Huge pages to reserve: the estimate rounded up to 2 MiB pages, plus
    /// 2% and 8 pages of margin for what the estimate misses.
    fn huge_pages(&self, a: &Assumptions) -> Option<u64> {
        self.huge_pages.then(|| {
            let n = self.shared_estimate().div_ceil(a.hugepage_size);
            n + n / 50 + 8
        })
    }

    /// Everything except work_mem, worst case.
    fn fixed_worst(&self, a: &Assumptions) -> ByteSize {
        let shared = match self.huge_pages(a) {
            Some(n) => a.hugepage_size * n,
            None => self.shared_estimate(),
        };
        let procs = pg_processes(
            self.max_connections as u64,
            self.autovacuum_workers as u64,
            self.max_worker_processes as u64,
            self.wal_senders as u64,
            self.io_workers as u64,
        );
        let in_huge = self.huge_pages(a).is_some();
        let per_proc = pg_process_worst(self.version, a, self.shared_estimate(), in_huge);
        let jit = if self.jit {
            jit_worst(self.sorters())
        } else {
            ByteSize::ZERO
        };
        let av = autovacuum_each(self.version, self.autovacuum_work_mem);
        let temp = if a.temp_tables {
            ByteSize::mib(8) * self.max_connections as u64
        } else {
            ByteSize::ZERO
        };
        shared
            + per_proc * procs
            + jit
            + av * self.autovacuum_workers as u64
            + self.maintenance_work_mem * a.manual_maintenance as u64
            + temp
    }

    fn sorters(&self) -> u64 {
        (self.max_connections + self.max_parallel_workers) as u64
    }
}

/// work_mem that fills `room`: PostgreSQL's units are kB; round to whole
/// MiB above 4 MiB for readability.
fn fit_work_mem(room: ByteSize, sorters: u64, per_query: f64) -> ByteSize {
    let wm = ByteSize((room.bytes() as f64 / (sorters as f64 * per_query)).floor() as u64);
    if wm >= ByteSize::mib(4) {
        wm.floor_to(ByteSize::mib(1))
    } else {
        wm.floor_to(ByteSize(64 * KIB))
    }
}

/// The memory split, step by step: the host's fixed needs, the shares of
/// the ARC, Redis and PgBouncer, then PostgreSQL's settings sized so their
/// worst case fits what is left.
pub fn allocate(profile: &Profile, host: &Host, a: &Assumptions) -> Result<Allocation, Error> {
    let reserves = host.reserves.clone();
    let available = after_fixed_needs(profile, host, &reserves)?;
    let arc = host.zfs.value.then(|| {
        available
            .scale(profile.zfs.arc_share.0)
            .floor_to(ByteSize::mib(1))
    });
    let redis = if profile.redis.enabled {
        let share = available.scale(profile.redis.share.0);
        Some(size_redis(profile, host, share)?)
    } else {
        None
    };
    let b = &profile.pgbouncer;
    let bouncer = b.enabled.then(|| BouncerAlloc {
        pool_size: b.pool_size,
        reserve_pool: b.reserve_pool_size,
        max_client_conn: b.max_client_conn,
        worst: bouncer_worst(b.max_client_conn, b.pool_size + b.reserve_pool_size),
        shrunk: None,
    });
    let pg_share = available
        - arc.unwrap_or_default()
        - redis.as_ref().map_or(ByteSize::ZERO, |r| r.worst)
        - bouncer.as_ref().map_or(ByteSize::ZERO, |b| b.worst);
    let sizing = PgSizing {
        profile,
        host,
        a,
        reserves: &reserves,
        pg_share,
        arc,
        redis: redis.as_ref(),
    };
    let (pg, pgbouncer) = sizing.postgres(bouncer, available)?;
    let notes = sizing.notes(&pg, pgbouncer.as_ref());
    Ok(Allocation {
        ram: host.ram.value,
        os_reserve: reserves[0].memory,
        reserves,
        available,
        arc,
        redis,
        pgbouncer,
        pg,
        notes,
    })
}

/// What a refusal suggests: every name in it exists. A profile with
/// services or reservations beside PostgreSQL can drop them
/// (`--profile postgres-only`); PostgreSQL alone can only ask less.
fn smaller_hint(profile: &Profile, own: &str, jit: bool) -> String {
    if profile.reserve.is_empty() && profile.services() == [crate::service::Service::Postgres] {
        format!(
            "give the host more memory{}, or lower {own} in a profile of your own (start from \
             profiles/{GENERIC}.toml, --profile-file FILE)",
            if jit {
                ", state a workload that keeps JIT off and its memory out of the worst case \
                 (--workload mixed or web)"
            } else {
                ""
            }
        )
    } else {
        format!(
            "render PostgreSQL alone (--profile {GENERIC}), run fewer services (--services), lower \
             the profile's [[reserve]] entries, or give the host more memory"
        )
    }
}

/// The reserves as refusals list them, one per line.
fn reserve_lines(reserves: &[HostReserve]) -> String {
    reserves
        .iter()
        .map(|r| format!("  {:<44} {:>10}", r.name, r.memory.to_string()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the OS and the profile's reservations leave, or a refusal when
/// PostgreSQL would not have its floor.
fn after_fixed_needs(
    profile: &Profile,
    host: &Host,
    reserves: &[HostReserve],
) -> Result<ByteSize, Error> {
    let ram = host.ram.value;
    let fixed: ByteSize = reserves.iter().map(|r| r.memory).sum();
    // Below this PostgreSQL cannot run a handful of connections.
    let floor = ByteSize::mib(256);
    if fixed + floor > ram {
        return Err(Error::refusal(format!(
            "profile `{}` does not fit a host with {ram} of RAM ({}): its fixed needs take {fixed}\n{}\n\
             and PostgreSQL needs at least {floor} more",
            profile.name,
            host.ram.source,
            reserve_lines(reserves)
        ))
        .with_hint(smaller_hint(profile, "[os] reserve_min", false)));
    }
    Ok(ram - fixed)
}

/// What a parallel CREATE INDEX needs of maintenance_work_mem per
/// participant (the leader and each worker): PostgreSQL plans fewer workers
/// until each gets this much (plan_create_index_workers).
pub const INDEX_PARTICIPANT_MEM: ByteSize = ByteSize::mib(32);

/// PostgreSQL's default maintenance_work_mem, the least dbtune renders
/// where the budget has room for it.
pub const PG_DEFAULT_MAINTENANCE_MEM: ByteSize = ByteSize::mib(64);

/// maintenance_work_mem and the parallel index workers it can feed: the
/// profile's value, else 32 MB for each participant of a parallel index
/// build (the leader and `workers`), at least PostgreSQL's default 64 MB;
/// never above a 16th of PostgreSQL's share. Not more: a B-tree build
/// sorts each participant's share in runs of its memory, and larger runs
/// cost more CPU than the merge they save (BENCHMARKS.md section 5:
/// trace_sort on PostgreSQL 15, 20 M text keys, a serial build took 1.5x
/// the CPU at 256 MB as at 8 MB, one merge pass fewer). Workers beyond
/// what it feeds at 32 MB each would never be planned, so they are not
/// asked.
fn maintenance(asked: Option<ByteSize>, pg_share: ByteSize, workers: u32) -> (ByteSize, u32) {
    let cap = pg_share
        .scale(1.0 / 16.0)
        .floor_to(ByteSize::mib(1))
        .max(ByteSize::mib(1));
    let fed =
        |mwm: ByteSize| (mwm.bytes() / INDEX_PARTICIPANT_MEM.bytes()).saturating_sub(1) as u32;
    match asked {
        Some(asked) => {
            let mwm = asked
                .min(cap)
                .floor_to(ByteSize::mib(1))
                .max(ByteSize::mib(1));
            (mwm, workers.min(fed(mwm)))
        }
        None => {
            let workers = workers.min(fed(cap));
            let mwm = (INDEX_PARTICIPANT_MEM * (workers as u64 + 1))
                .max(PG_DEFAULT_MAINTENANCE_MEM)
                .min(cap);
            (mwm, workers)
        }
    }
}

/// The most of RAM effective_cache_size says is cache (PGTune's 3/4, and
/// the usual 50-75%): PostgreSQL reads through the page cache, so pages in
/// shared_buffers are often in it too, and shared_buffers plus all the
/// free page cache counts them twice (PostgreSQL's docs: "some data might
/// exist in both places"). PostgreSQL alone on a large host would
/// otherwise say 93% of RAM.
pub const CACHE_RAM_SHARE: f64 = 0.75;

/// effective_cache_size's cap on a host of `ram`.
pub fn cache_cap(ram: ByteSize) -> ByteSize {
    ram.scale(CACHE_RAM_SHARE).floor_to(ByteSize::mib(1))
}

/// Sizing PostgreSQL inside its share, after everything else took theirs.
struct PgSizing<'a> {
    profile: &'a Profile,
    host: &'a Host,
    a: &'a Assumptions,
    reserves: &'a [HostReserve],
    pg_share: ByteSize,
    arc: Option<ByteSize>,
    redis: Option<&'a RedisAlloc>,
}

/// superuser_reserved_connections as render writes it.
const SUPERUSER_RESERVED: u32 = 3;

impl PgSizing<'_> {
    /// hash_mem_multiplier as render writes it: 2 where PostgreSQL has it.
    fn hash_mem_multiplier(&self) -> f64 {
        if self.host.pg_version.value >= 15 {
            2.0
        } else {
            1.0
        }
    }

    /// The worst-case memory one sorting query takes per byte of work_mem.
    fn per_query(&self) -> f64 {
        self.a.sorts_per_query as f64
            * self.hash_mem_multiplier()
            * calibration::pg(self.host.pg_version.value).hash
    }

    /// Every count and size except connections and work_mem, from the CPUs,
    /// the RAM and the share.
    fn shape(&self) -> PgShape {
        let (p, host, pg_share) = (&self.profile.postgres, self.host, self.pg_share);
        let cpus = host.cpus.value.max(1);
        let max_parallel_workers = if cpus > 1 { cpus.min(32) } else { 0 };
        // Every sender and worker slot is a process the worst case counts;
        // small hosts keep fewer.
        let small = host.ram.value < ByteSize::gib(8);
        let wal_senders = match (p.replication, small) {
            (false, _) => 0,
            (true, true) => 2,
            (true, false) => 5,
        };
        let (maintenance_work_mem, max_parallel_maintenance) =
            maintenance(p.maintenance_work_mem, pg_share, (cpus / 2).min(4));
        let shared_buffers = pg_share
            .scale(p.shared_buffers_fraction.0)
            .min(p.shared_buffers_max)
            .floor_to(ByteSize::mib(1))
            .max(ByteSize::mib(16));
        PgShape {
            version: host.pg_version.value,
            shared_buffers,
            wal_buffers: match self.profile.workload {
                // Many concurrent COPY streams fill the default 16 MB quickly.
                Workload::Ingest if shared_buffers >= ByteSize::gib(2) => Some(ByteSize::mib(64)),
                _ => None,
            },
            max_connections: 0,
            max_worker_processes: max_parallel_workers + if small { 2 } else { 4 },
            max_parallel_workers,
            wal_senders,
            autovacuum_workers: p.autovacuum_max_workers,
            io_workers: if host.pg_version.value >= 18 {
                (cpus / 4).clamp(3, 16)
            } else {
                0
            },
            maintenance_work_mem,
            max_parallel_maintenance,
            autovacuum_work_mem: p
                .autovacuum_work_mem
                .min(pg_share.scale(1.0 / (8.0 * p.autovacuum_max_workers.max(1) as f64)))
                .floor_to(ByteSize::mib(1))
                .max(ByteSize::mib(1)),
            huge_pages: p.huge_pages,
            query_stats: p.query_stats,
            jit: jit_possible(
                super::postgres::jit_on(self.profile),
                host.pg_build.value.as_deref(),
            ),
        }
    }

    /// max_connections: PgBouncer's server connections plus direct and
    /// superuser slots, else the profile's.
    fn connections_for(&self, bouncer: Option<&BouncerAlloc>) -> u32 {
        match bouncer {
            Some(bb) => {
                bb.servers() + self.profile.pgbouncer.direct_connections + SUPERUSER_RESERVED
            }
            None => self.profile.max_connections(),
        }
    }

    /// The work_mem the share leaves for `shape`, if its fixed part fits.
    fn work_mem_at(&self, shape: &PgShape) -> Option<ByteSize> {
        let fixed = shape.fixed_worst(self.a);
        (fixed <= self.pg_share)
            .then(|| fit_work_mem(self.pg_share - fixed, shape.sorters(), self.per_query()))
    }

    /// Lowers the pools (or max_connections without PgBouncer) a tenth at a
    /// time until work_mem reaches the profile's minimum or the connections
    /// their floor; the work_mem found, if any.
    fn fit_connections(
        &self,
        shape: &mut PgShape,
        bouncer: &mut Option<BouncerAlloc>,
    ) -> Option<ByteSize> {
        let p = &self.profile.postgres;
        let mut wm = self.work_mem_at(shape);
        while wm.is_none_or(|w| w < p.work_mem_min) && shape.max_connections > p.min_connections {
            let step = (shape.max_connections / 10).max(1);
            match bouncer.as_mut() {
                Some(bb) if bb.pool_size > 1 => {
                    let pool_step = step.min(bb.pool_size - 1);
                    bb.pool_size -= pool_step;
                    bb.reserve_pool = bb.reserve_pool.min(bb.pool_size.div_ceil(4));
                }
                Some(_) => break,
                None => {
                    shape.max_connections -= step.min(shape.max_connections - p.min_connections)
                }
            }
            if bouncer.is_some() {
                shape.max_connections = self
                    .connections_for(bouncer.as_ref())
                    .max(p.min_connections);
            }
            wm = self.work_mem_at(shape);
        }
        wm.filter(|w| *w >= p.work_mem_min)
    }

    /// The refusal when not even the minimum work_mem fits, with everything
    /// that took memory first.
    fn refuse(&self, shape: &PgShape) -> Error {
        let (p, host, pg_share) = (&self.profile.postgres, self.host, self.pg_share);
        let fixed = shape.fixed_worst(self.a);
        Error::refusal(format!(
            "profile `{}` does not fit a host with {} of RAM ({}): PostgreSQL's share is {pg_share} \
             but {} connections with work_mem {} need {} in the worst case\n\
             fixed needs:\n{}\n{}{}",
            self.profile.name,
            host.ram.value,
            host.ram.source,
            shape.max_connections,
            p.work_mem_min,
            fixed + p.work_mem_min.scale(self.per_query()) * shape.sorters(),
            reserve_lines(self.reserves),
            self.arc.map_or(String::new(), |x| format!(
                "  {:<44} {:>10}\n",
                "ZFS ARC",
                x.to_string()
            )),
            self.redis.map_or(String::new(), |r| format!(
                "  {:<44} {:>10}\n",
                "Redis (worst case)",
                r.worst.to_string()
            )),
        ))
        .with_hint(smaller_hint(
            self.profile,
            "[postgres] min_connections",
            shape.jit,
        ))
    }

    /// Without PgBouncer the application's own pool must fit max_connections
    /// (less the superuser slots); with it, max_client_conn must take it.
    fn check_app_pool(&self, shape: &PgShape, bouncer: Option<&BouncerAlloc>) -> Result<(), Error> {
        let Some(app) = self.profile.postgres.app_connections else {
            return Ok(());
        };
        let name = &self.profile.name;
        match bouncer {
            Some(bb) if bb.max_client_conn < app => Err(Error::refusal(format!(
                "profile `{name}`: the application opens {app} connections (app_connections) but \
                 PgBouncer accepts {} (max_client_conn)",
                bb.max_client_conn
            ))
            .with_hint("raise [pgbouncer] max_client_conn to at least app_connections")),
            Some(_) => Ok(()),
            None if shape.max_connections.saturating_sub(SUPERUSER_RESERVED) < app => {
                Err(Error::refusal(format!(
                    "profile `{name}` does not fit a host with {} of RAM ({}) for an application that \
                     connects directly: it opens {app} connections (app_connections) and {} fit \
                     (max_connections {} less {SUPERUSER_RESERVED} superuser-reserved) with work_mem \
                     at least {}",
                    self.host.ram.value,
                    self.host.ram.source,
                    shape.max_connections.saturating_sub(SUPERUSER_RESERVED),
                    shape.max_connections,
                    self.profile.postgres.work_mem_min,
                ))
                .with_hint(
                    "put PgBouncer in transaction mode in front (--services with pgbouncer, or \
                     [pgbouncer] enabled = true; docs/profiles.md says what the application must do \
                     then), lower app_connections, or give the host more memory",
                ))
            }
            None => Ok(()),
        }
    }

    /// Who asked for the direct connections: the profile, or its workload.
    fn asked_by(&self) -> String {
        match self.profile.postgres.max_connections {
            Some(_) => "the profile's".to_string(),
            None => format!("the {} workload's", self.profile.workload),
        }
    }

    /// Why max_connections has its value.
    fn connections_reason(&self, bouncer: Option<&BouncerAlloc>, connections: u32) -> String {
        let (profile, pg_share) = (self.profile, self.pg_share);
        let wanted = profile.max_connections();
        match bouncer {
            Some(bb) => format!(
                "PgBouncer's {} server connections + {} direct + {SUPERUSER_RESERVED} superuser-reserved",
                bb.servers(),
                profile.pgbouncer.direct_connections
            ),
            None if connections < wanted => format!(
                "lowered from {} {wanted} so work_mem stays at least {} within {pg_share}",
                self.asked_by(),
                profile.postgres.work_mem_min
            ),
            None => format!(
                "{} max_connections ({wanted}): clients connect directly, with no \
                 PgBouncer in this plan",
                self.asked_by()
            ),
        }
    }

    /// effective_cache_size: shared_buffers plus the ARC when the data is on
    /// ZFS, else what the page cache keeps once the typical private memory
    /// of PostgreSQL, Redis and the ARC are taken, at most
    /// [`CACHE_RAM_SHARE`] of RAM.
    fn effective_cache_size(
        &self,
        shape: &PgShape,
        work_mem: ByteSize,
        available: ByteSize,
    ) -> ByteSize {
        let a = self.a;
        match self.arc {
            Some(arc) if self.host.pg_on_zfs.value => shape.shared_buffers + arc,
            // The page cache caches the data; an ARC for other pools is not it.
            _ => {
                let procs = (shape.max_connections
                    + shape.autovacuum_workers
                    + shape.max_worker_processes
                    + 6) as u64;
                let busy = (shape.max_connections as f64 * a.busy_fraction_typical).ceil() as u64;
                let backend = a.backend_memory.unwrap_or(ByteSize(
                    calibration::pg(self.host.pg_version.value).backend,
                ));
                let typical_private = backend * procs + work_mem * busy;
                (available
                    - self.redis.map_or(ByteSize::ZERO, |r| r.worst)
                    - self.arc.unwrap_or_default()
                    - typical_private)
                    .min(cache_cap(self.host.ram.value))
                    .max(shape.shared_buffers)
            }
        }
        .floor_to(ByteSize::mib(1))
    }

    /// PostgreSQL's settings, and PgBouncer's pools as they fit.
    fn postgres(
        &self,
        mut bouncer: Option<BouncerAlloc>,
        available: ByteSize,
    ) -> Result<(PgAlloc, Option<BouncerAlloc>), Error> {
        let (p, b, a, pg_share) = (
            &self.profile.postgres,
            &self.profile.pgbouncer,
            self.a,
            self.pg_share,
        );
        let mut shape = self.shape();
        shape.max_connections = self.connections_for(bouncer.as_ref());
        let asked_connections = shape.max_connections;
        // What the connections asked for would have had each, before any
        // were taken away to hold the floor.
        let asked_work_mem = self.work_mem_at(&shape);
        let Some(work_mem) = self.fit_connections(&mut shape, &mut bouncer) else {
            return Err(self.refuse(&shape));
        };
        let work_mem = work_mem.min(p.work_mem_max);
        let hmm = self.hash_mem_multiplier();
        self.check_app_pool(&shape, bouncer.as_ref())?;
        let work_mem_reason = if asked_work_mem.is_none_or(|w| w < p.work_mem_min) {
            format!(
                "at least {} ({}), held by lowering {} from {asked_connections} \
                 to {}: the {asked_connections} asked for would get {}; in the worst case, every \
                 connection and parallel worker sorting at once, this costs {} ({} processes x {} nodes \
                 x hash_mem_multiplier {hmm}); a sort or hash larger than it spills to temp files on \
                 disk (log_temp_files names them)",
                p.work_mem_min,
                if p.work_mem_min == WORK_MEM_FLOOR {
                    "dbtune's floor, PostgreSQL's default"
                } else {
                    "the profile's work_mem_min"
                },
                if bouncer.is_some() { "PgBouncer's pool and max_connections" } else { "max_connections" },
                shape.max_connections,
                asked_work_mem.map_or("no room at all".to_string(), |w| format!("{w} each")),
                work_mem.scale(self.per_query()) * shape.sorters(),
                shape.sorters(),
                a.sorts_per_query,
            )
        } else if work_mem == p.work_mem_max {
            "the profile's cap; the worst case would allow more".to_string()
        } else {
            format!(
                "what PostgreSQL's {pg_share} share leaves for ({} connections + {} parallel workers) x {} nodes x hash_mem_multiplier {hmm}",
                shape.max_connections, shape.max_parallel_workers, a.sorts_per_query
            )
        };
        if let Some(bb) = bouncer.as_mut() {
            if bb.pool_size < b.pool_size {
                bb.shrunk = Some(format!(
                    "pool_size lowered from {} so work_mem stays at least {}",
                    b.pool_size, p.work_mem_min
                ));
            }
            bb.worst = bouncer_worst(bb.max_client_conn, bb.servers());
        }
        let cpus = self.host.cpus.value.max(1);
        let per_gather_cap = match self.profile.workload {
            Workload::Web => 2,
            Workload::Ingest | Workload::Mixed => 4,
            // A long report may use half the CPUs (PGTune's dw too).
            Workload::Analytics => shape.max_parallel_workers.max(1),
        };
        let pg = PgAlloc {
            share: pg_share,
            shared_buffers: shape.shared_buffers,
            wal_buffers: shape.wal_buffers,
            max_connections: shape.max_connections,
            superuser_reserved: SUPERUSER_RESERVED,
            connections_reason: self.connections_reason(bouncer.as_ref(), shape.max_connections),
            max_worker_processes: shape.max_worker_processes,
            max_parallel_workers: shape.max_parallel_workers,
            max_parallel_per_gather: (cpus / 2).min(per_gather_cap),
            max_parallel_maintenance: shape.max_parallel_maintenance,
            wal_senders: shape.wal_senders,
            autovacuum_workers: shape.autovacuum_workers,
            io_workers: shape.io_workers,
            work_mem,
            work_mem_reason,
            maintenance_work_mem: shape.maintenance_work_mem,
            autovacuum_work_mem: shape.autovacuum_work_mem,
            hash_mem_multiplier: hmm,
            huge_pages: shape.huge_pages(a),
            shared_estimate: shape.shared_estimate(),
            worst: shape.fixed_worst(a) + work_mem.scale(self.per_query()) * shape.sorters(),
            effective_cache_size: self.effective_cache_size(&shape, work_mem, available),
        };
        debug_assert!(pg.worst <= pg_share, "{} > {}", pg.worst, pg_share);
        Ok((pg, bouncer))
    }

    /// What the profile asked for and did not get, said in render's notes.
    fn notes(&self, pg: &PgAlloc, bouncer: Option<&BouncerAlloc>) -> Vec<String> {
        let (p, b, pg_share) = (
            &self.profile.postgres,
            &self.profile.pgbouncer,
            self.pg_share,
        );
        let mut notes = Vec::new();
        if let Some(bb) = bouncer.filter(|bb| bb.pool_size < b.pool_size) {
            notes.push(format!(
                "PgBouncer pool_size: the profile asks {}, {} fit{} so work_mem stays at least {} within PostgreSQL's {pg_share}",
                b.pool_size,
                bb.pool_size,
                if bb.reserve_pool < b.reserve_pool_size {
                    format!(" (reserve_pool {} of {})", bb.reserve_pool, b.reserve_pool_size)
                } else {
                    String::new()
                },
                p.work_mem_min
            ));
        }
        if bouncer.is_none() && pg.max_connections < self.profile.max_connections() {
            notes.push(format!(
                "max_connections: {} {}, {} fit so work_mem stays at least {} within PostgreSQL's {pg_share}",
                self.asked_by(), self.profile.max_connections(), pg.max_connections, p.work_mem_min
            ));
        }
        if let Some(asked) = p
            .maintenance_work_mem
            .filter(|a| pg.maintenance_work_mem < *a)
        {
            notes.push(format!(
                "maintenance_work_mem: the profile asks {asked}, {} fit (a 16th of PostgreSQL's {pg_share})",
                pg.maintenance_work_mem
            ));
        }
        if pg.autovacuum_work_mem < p.autovacuum_work_mem {
            notes.push(format!(
                "autovacuum_work_mem: the profile asks {}, {} fit ({} workers share an 8th of PostgreSQL's {pg_share})",
                p.autovacuum_work_mem, pg.autovacuum_work_mem, pg.autovacuum_workers
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{host, profile};
    use super::*;

    /// maintenance_work_mem is 32 MB per index-build participant, at least
    /// 64 MB, whatever the host's size; never more than a 16th of the
    /// share, and never asks for parallel index workers it cannot give 32
    /// MB each. A profile's value wins up to the 16th.
    #[test]
    fn maintenance_work_mem_feeds_the_index_workers_it_asks_for() {
        // (share, asked, workers) -> (maintenance_work_mem MiB, workers)
        let rows = [
            (ByteSize::gib(1), None, 1, (64, 1)),
            (ByteSize::gib(2), None, 2, (96, 2)),
            (ByteSize::gib(4), None, 4, (160, 4)),
            (ByteSize::gib(64), None, 4, (160, 4)),
            // A small share: a 16th of 512 MiB is 32 MB, no worker fits.
            (ByteSize::mib(512), None, 2, (32, 0)),
            (ByteSize::gib(8), Some(ByteSize::mib(64)), 4, (64, 1)),
            (ByteSize::gib(16), Some(ByteSize::gib(2)), 4, (1024, 4)),
            // A 16th of 1.25 GiB is 80 MB: it feeds one worker, and the
            // two participants take 64 MB of it.
            (ByteSize::mib(1280), None, 4, (64, 1)),
        ];
        for (share, asked, workers, (mib, fed)) in rows {
            let (m, w) = maintenance(asked, share, workers);
            assert_eq!(
                (m, w),
                (ByteSize::mib(mib), fed),
                "{share} {asked:?} {workers}"
            );
        }
    }

    #[test]
    fn low_memory_on_its_nominal_host() {
        let a = allocate(
            &profile("low-memory"),
            &host(&profile("low-memory"), 4, 2, 15),
            &Assumptions::default(),
        )
        .unwrap();
        let pg = &a.pg;
        assert!(pg.work_mem >= ByteSize::mib(1) && pg.work_mem <= ByteSize::mib(4));
        let b = a.pgbouncer.as_ref().unwrap();
        assert_eq!(pg.max_connections, b.servers() + 5 + 3);
        assert!(a.redis.as_ref().unwrap().maxmemory >= ByteSize::mib(64));
        let total = a.os_reserve
            + ByteSize::mib(1024 + 768)
            + pg.worst
            + a.redis.as_ref().unwrap().worst
            + b.worst;
        assert!(total <= ByteSize::gib(4), "{total}");
    }

    #[test]
    fn redis_maxmemory_respects_the_profile_cap() {
        let a = allocate(
            &profile("powerhouse"),
            &host(&profile("powerhouse"), 512, 64, 16),
            &Assumptions::default(),
        )
        .unwrap();
        let r = a.redis.unwrap();
        assert_eq!(r.maxmemory, ByteSize::gib(4));
        assert!(r.capped);
    }

    #[test]
    fn fixed_needs_above_ram_are_refused_with_the_list() {
        let e = allocate(
            &profile("powerhouse"),
            &host(&profile("powerhouse"), 2, 2, 16),
            &Assumptions::default(),
        )
        .unwrap_err();
        assert!(
            e.message().contains("does not fit a host with 2 GiB"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("backup jobs"), "{}", e.message());
        assert!(e.hint().is_some_and(|h| !h.is_empty()), "{e}");
    }

    #[test]
    fn direct_connections_shrink_before_refusing() {
        let mut p = profile("low-memory");
        p.pgbouncer.enabled = false;
        p.postgres.max_connections = Some(400);
        p.postgres.app_connections = None;
        let a = allocate(&p, &host(&p, 4, 2, 15), &Assumptions::default()).unwrap();
        assert!(a.pg.max_connections < 400);
        assert!(a
            .pg
            .connections_reason
            .contains("lowered from the profile's 400"));
        // The work_mem comment says what holding the floor cost.
        assert_eq!(a.pg.work_mem, WORK_MEM_FLOOR);
        assert!(
            a.pg.work_mem_reason
                .contains("held by lowering max_connections from 400")
                && a.pg.work_mem_reason.contains("spills to temp files"),
            "{}",
            a.pg.work_mem_reason
        );
    }

    /// The staging seed's app opens 80 connections directly: without
    /// PgBouncer the few that fit 4 GiB beside the app are refused with the
    /// pooler named; with it, the plan stands.
    #[test]
    fn an_app_pool_larger_than_max_connections_needs_pgbouncer() {
        let p = profile("low-memory");
        let h = host(&p, 4, 2, 15);
        assert!(allocate(&p, &h, &Assumptions::default()).is_ok());
        let direct = p
            .clone()
            .with_services(&[crate::service::Service::Postgres]);
        let e = allocate(&direct, &h, &Assumptions::default()).unwrap_err();
        assert!(e.message().contains("opens 80 connections"), "{e}");
        assert!(
            e.hint().unwrap().contains("PgBouncer in transaction mode"),
            "{e}"
        );
        // A host large enough takes the 80 directly.
        assert!(allocate(&direct, &host(&p, 16, 2, 15), &Assumptions::default()).is_ok());
    }

    #[test]
    fn huge_pages_cover_the_shared_memory_estimate() {
        let a = allocate(
            &profile("powerhouse"),
            &host(&profile("powerhouse"), 64, 16, 16),
            &Assumptions::default(),
        )
        .unwrap();
        let pages = a.pg.huge_pages.unwrap();
        assert!(ByteSize::mib(2) * pages >= a.pg.shared_estimate);
    }
}
