//! The memory model: what each part of a server costs, as formulas over
//! numbers, with the constants measured on the real servers
//! (`calibration`). The planner sizes settings with them and the budget
//! adds up parsed settings with them; neither owns them.
//! docs/budget-model.md explains each.

use serde::{Deserialize, Serialize};

use crate::calibration;
use crate::doc::{range_size, range_u32, text_ok, BadValue, Fraction};
use crate::units::{ByteSize, KIB, MIB};
use crate::version::PgVersion;

/// The numbers the model assumes about the workload; each is named in the
/// report when used. What the servers themselves cost is measured
/// (`calibration`), not assumed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Assumptions {
    /// Sort/hash nodes one query runs at once, each up to work_mem.
    pub sorts_per_query: u32,
    /// Private memory of a backend, when the workload's is known to differ
    /// from the one measured (`backend` in data/pg-memory.tsv): a schema of
    /// thousands of tables, many cached plans.
    pub backend_memory: Option<ByteSize>,
    /// Share of connections running a sort or hash at a typical moment.
    pub busy_fraction_typical: f64,
    /// Manual VACUUM / CREATE INDEX sessions at once.
    pub manual_maintenance: u32,
    pub temp_tables: bool,
    /// jemalloc fragmentation of Redis data at a typical moment (the worst
    /// is measured).
    pub redis_frag_typical: f64,
    /// Redis's worst fragmentation and fork copy (per byte of maxmemory),
    /// when the profile states them as measured on its host (`observe`:
    /// mem_fragmentation_ratio at its highest, rdb_last_cow_size over
    /// used_memory); else the factors measured here (data/redis-memory.tsv).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_fragmentation: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_fork_copy: Option<f64>,
    /// What Redis holds: its fragmentation and fork copy are the ones
    /// measured under that role's workload (data/redis-roles.tsv), with a
    /// margin. None (a directory nobody described): the worst churn's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_role: Option<crate::profile::RedisRole>,
    /// Bytes of write commands a second Redis takes at its busiest: with
    /// `appendfsync everysec` they wait in the AOF buffer, outside
    /// maxmemory, while a background fsync lags (`redis_aof_buffer`).
    pub redis_write_rate: ByteSize,
    pub hugepage_size: ByteSize,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            sorts_per_query: 2,
            backend_memory: None,
            busy_fraction_typical: 0.25,
            manual_maintenance: 1,
            temp_tables: false,
            redis_frag_typical: 1.2,
            redis_fragmentation: None,
            redis_fork_copy: None,
            redis_role: None,
            redis_write_rate: REDIS_WRITE_RATE,
            hugepage_size: ByteSize::mib(2),
        }
    }
}

impl Assumptions {
    /// The assumptions in one line, for reports.
    pub fn describe(&self) -> String {
        format!(
            "{} sort/hash nodes per query, {:.0}% of connections busy at a typical moment, \
             {} manual maintenance session(s), temp tables {}, backend memory {}",
            self.sorts_per_query,
            self.busy_fraction_typical * 100.0,
            self.manual_maintenance,
            if self.temp_tables {
                "counted"
            } else {
                "not counted"
            },
            match self.backend_memory {
                Some(b) => format!("{b} (set)"),
                None => format!("as measured ({})", calibration::PG_SOURCE),
            }
        )
    }
}

/// Private memory of one PostgreSQL process in the worst case: what the
/// backend holds (measured, or the assumption's) plus its page tables for
/// the shared memory it maps (8 bytes per 4 kB page, or per huge page).
pub fn pg_process_worst(
    major: PgVersion,
    a: &Assumptions,
    shared: ByteSize,
    huge: bool,
) -> ByteSize {
    let base = a
        .backend_memory
        .unwrap_or(ByteSize(calibration::pg(major).backend));
    base + page_tables(shared, huge)
}

/// Page-table memory of a process that touches all of `shared`.
pub fn page_tables(shared: ByteSize, huge: bool) -> ByteSize {
    let page = if huge { 2 * MIB } else { 4 * KIB };
    ByteSize(shared.bytes().div_ceil(page) * 8)
}

/// Processes PostgreSQL may run at once: connections, autovacuum workers,
/// background workers, WAL senders, I/O workers (18) and the auxiliary
/// processes (postmaster, checkpointer, background writer, WAL writer,
/// autovacuum launcher, logical replication launcher).
pub fn pg_processes(
    connections: u64,
    autovacuum_workers: u64,
    worker_processes: u64,
    wal_senders: u64,
    io_workers: u64,
) -> u64 {
    connections + autovacuum_workers + worker_processes + wal_senders + io_workers + AUXILIARY
}

/// PostgreSQL's auxiliary processes, counted in every worst case.
pub const AUXILIARY: u64 = 6;

/// What one autovacuum worker may hold: before 17 a vacuum stores at most
/// 1 GB of dead tuple ids whatever the setting.
pub fn autovacuum_each(version: PgVersion, work_mem: ByteSize) -> ByteSize {
    if version < 17 {
        work_mem.min(ByteSize::gib(1))
    } else {
        work_mem
    }
}

/// A JIT-compiled query's extra memory for each query that may run at once.
pub fn jit_worst(queries: u64) -> ByteSize {
    ByteSize(calibration::pg_jit()) * queries
}

/// Whether a JIT-compiled query can take memory: `jit` on and a build
/// that is not known to lack LLVM.
pub fn jit_possible(jit_on: bool, build: Option<&[String]>) -> bool {
    jit_on && !build.is_some_and(|b| b.iter().any(|f| f == "no-llvmjit"))
}

/// Redis's worst case, term by term: data x fragmentation, the buffers
/// outside maxmemory (clients, backlog, the AOF's), a fork's copy, the
/// process (measured factors).
pub fn redis_worst(
    maxmemory: ByteSize,
    buffers: ByteSize,
    forks: bool,
    c: &calibration::RedisMemory,
) -> (ByteSize, ByteSize, ByteSize, ByteSize) {
    let data = maxmemory.scale(c.fragmentation);
    let fork = if forks {
        maxmemory.scale(c.fork_factor())
    } else {
        ByteSize::ZERO
    };
    (data, buffers, fork, ByteSize(c.process))
}

/// The peak write rate assumed when nobody states one: 8 MiB a second,
/// 8192 writes of 1 KiB, eight times the load `dbtune bench` puts beside a
/// staging database (`--redis-writes`, the staging seed's 10-50 users).
pub const REDIS_WRITE_RATE: ByteSize = ByteSize(8 * MIB);

/// How many seconds of writes Redis may hold in its AOF buffer with
/// `appendfsync everysec`. While the last second's fsync still runs in the
/// background (a busy disk, or a save's child writing to it), Redis
/// postpones the write of its buffer, for as long as its clock, counted in
/// whole seconds, shows less than 2 seconds since it began to: up to just
/// under 3 s (`flushAppendOnlyFile` in redis/redis's aof.c, read, not run;
/// tests/it/redis_roles.rs measures the buffer within it on 7.0 and 8.0). Then it
/// writes, blocking. The buffer is not counted in maxmemory.
pub const AOF_POSTPONE_SECONDS: u64 = 3;

/// What the AOF buffer may hold at `rate` bytes of writes a second, and a
/// fork's copy of its pages: the AOF forks to rewrite, a child shares the
/// buffer's pages (written, they were seen to stay resident: 86 MiB held
/// with 0.5 MiB in the buffer after a 14 MiB peak) and the parent reuses
/// them at once. Seen in CI: a queue on 8.0 held
/// 171 MiB with a 64 MiB buffer peak and 82 MiB of other terms.
pub fn redis_aof_buffer(rate: ByteSize) -> ByteSize {
    rate * AOF_POSTPONE_SECONDS * 2
}

/// Memory claimed outside the config files: the OS and other processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostReserve {
    pub name: String,
    pub memory: ByteSize,
    pub source: String,
}

/// The settings PostgreSQL sizes its shared memory by, as the server reads
/// them (`defaults` gives the server's own defaults for the rest).
#[derive(Clone, Debug, PartialEq)]
pub struct PgShmSettings {
    pub shared_buffers: ByteSize,
    /// The effective value (`effective_wal_buffers`).
    pub wal_buffers: ByteSize,
    pub min_dynamic_shared_memory: ByteSize,
    pub max_connections: u64,
    /// autovacuum_max_workers, or autovacuum_worker_slots from 18.
    pub autovacuum_slots: u64,
    /// Workers with a slot of their own: the autovacuum launcher, and from
    /// 17 the slot sync worker.
    pub special_workers: u64,
    pub max_worker_processes: u64,
    pub max_wal_senders: u64,
    pub max_prepared_transactions: u64,
    pub max_locks_per_transaction: u64,
    pub max_pred_locks_per_transaction: u64,
    pub track_activity_query_size: u64,
    pub max_replication_slots: u64,
    /// -1: chosen by the server from shared_buffers (18).
    pub io_max_concurrency: i64,
}

impl PgShmSettings {
    /// The server's defaults of `major` with `shared_buffers`.
    pub fn defaults(major: PgVersion, shared_buffers: ByteSize) -> Self {
        PgShmSettings {
            shared_buffers,
            wal_buffers: effective_wal_buffers(-1, shared_buffers),
            min_dynamic_shared_memory: ByteSize::ZERO,
            max_connections: 100,
            autovacuum_slots: if major >= 18 { 16 } else { 3 },
            special_workers: if major >= 17 { 2 } else { 1 },
            max_worker_processes: 8,
            max_wal_senders: 10,
            max_prepared_transactions: 0,
            max_locks_per_transaction: 64,
            max_pred_locks_per_transaction: 64,
            track_activity_query_size: 1024,
            max_replication_slots: 10,
            io_max_concurrency: -1,
        }
    }

    /// MaxBackends: connections, autovacuum slots, the special workers,
    /// background workers and WAL senders.
    pub fn max_backends(&self) -> u64 {
        self.max_connections
            + self.autovacuum_slots
            + self.special_workers
            + self.max_worker_processes
            + self.max_wal_senders
    }

    /// Slots the lock tables are sized for: MaxBackends and prepared
    /// transactions.
    pub fn lock_slots(&self) -> u64 {
        self.max_backends() + self.max_prepared_transactions
    }

    /// The I/O handles of each process on 18: io_max_concurrency, or when
    /// -1 shared_buffers' pages over the processes, 1 to 64.
    fn io_concurrency(&self) -> u64 {
        if self.io_max_concurrency >= 0 {
            return self.io_max_concurrency as u64;
        }
        let pages = self.shared_buffers.bytes() / 8192;
        (pages / (self.max_backends() + AIO_AUXILIARY)).clamp(1, 64)
    }
}

/// The auxiliary processes PostgreSQL 18 sizes I/O handles for besides
/// MaxBackends (NUM_AUXILIARY_PROCS: 6 and up to 32 I/O workers).
const AIO_AUXILIARY: u64 = 38;

/// The bucket array of one of PostgreSQL's shared hash tables: a pointer
/// per bucket, as many buckets as the next power of two of its entries,
/// in segments of 256.
pub fn hash_buckets(entries: u64) -> u64 {
    8 * entries.next_power_of_two().max(256)
}

/// Estimated shared memory, as docs/budget-model.md sets out: each part
/// the server sizes from a setting times what the major was measured to
/// take for it (data/pg-shared-memory.tsv), the lock and predicate-lock
/// tables' buckets as the server rounds them, and a margin for settings
/// beyond the measured grid.
pub fn pg_shared_memory(major: PgVersion, s: &PgShmSettings) -> ByteSize {
    let c = calibration::pg_shared(major);
    let backends = s.max_backends() as f64;
    let locks = s.lock_slots() * s.max_locks_per_transaction;
    let pred = s.lock_slots() * s.max_pred_locks_per_transaction;
    // The server adds 10% to the predicate-lock tables' estimate.
    let buckets = (hash_buckets(locks) + hash_buckets(2 * locks)) as f64
        + 1.1 * (hash_buckets(pred) + hash_buckets(2 * pred)) as f64;
    let aio = if major >= 18 {
        ((s.max_backends() + AIO_AUXILIARY) * s.io_concurrency()) as f64 * c.aio_handle
    } else {
        0.0
    };
    let bytes = s.shared_buffers.bytes() as f64 * (1.0 + c.buffer_overhead)
        + s.wal_buffers.bytes() as f64
        + s.min_dynamic_shared_memory.bytes() as f64
        + c.fixed as f64
        + backends * (c.slot + c.query * s.track_activity_query_size as f64)
        + s.max_prepared_transactions as f64 * c.prepared
        + locks as f64 * c.lock
        + pred as f64 * c.pred_lock
        + buckets
        + s.max_replication_slots as f64 * c.replication_slot
        + aio;
    ByteSize((bytes * (1.0 + calibration::SHARED_MARGIN)).ceil() as u64)
}

/// wal_buffers = -1 means 1/32 of shared_buffers, at least 64 kB, at most
/// one WAL segment (16 MB).
pub fn effective_wal_buffers(setting: i64, shared_buffers: ByteSize) -> ByteSize {
    if setting >= 0 {
        return ByteSize(setting as u64);
    }
    ByteSize((shared_buffers.bytes() / 32).clamp(64 * KIB, 16 * MIB))
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
    if let Some(f) = a.redis_fragmentation {
        if !(1.0..=3.0).contains(&f) {
            return Err(BadValue::at(Some(section), "redis_fragmentation").says(
                format!("{section}.redis_fragmentation = {f} is out of range"),
                "1.0 to 3.0: Redis's resident memory over its data at the worst moment seen",
            ));
        }
    }
    if let Some(f) = a.redis_fork_copy {
        if !(0.0..=3.0).contains(&f) {
            return Err(BadValue::at(Some(section), "redis_fork_copy").says(
                format!("{section}.redis_fork_copy = {f} is out of range"),
                "0.0 to 3.0: a save's copy-on-write over maxmemory",
            ));
        }
    }
    range_size(
        section,
        "redis_write_rate",
        a.redis_write_rate,
        ByteSize::ZERO,
        ByteSize::gib(10),
        "bytes of writes a second at Redis's busiest moment",
    )?;
    let hp = a.hugepage_size;
    if !(hp.0.is_power_of_two() && hp >= ByteSize::kib(64) && hp <= ByteSize::gib(16)) {
        return Err(BadValue::at(Some(section), "hugepage_size").says(
            format!("{section}.hugepage_size = {hp} is not a huge page size"),
            "a size the kernel offers huge pages in: a power of two from 64 KiB to 16 GiB",
        ));
    }
    Ok(())
}
