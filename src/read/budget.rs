//! The memory budget: every service on the host added up from *parsed
//! settings*, worst case and typical, each term with where it came from.
//! docs/budget-model.md explains each formula and assumption.

use crate::service::Scope;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::calibration;
use crate::read::catalog::{Lookup, PgCatalog, PgParam};
use crate::read::findings::Finding;
use crate::read::pgvalue::{self, PgValue};
use crate::read::settings::{Entry, HostSettings, ServiceSettings};
use crate::units::{parse_redis_memory, ByteSize, KIB, MIB};
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

/// Redis's worst case, term by term: data x fragmentation, client
/// buffers and backlog, a fork's copy, the process (measured factors).
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

/// Memory claimed outside the config files: the OS and other processes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostReserve {
    pub name: String,
    pub memory: ByteSize,
    pub source: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Term {
    pub service: Scope,
    pub name: String,
    pub worst: ByteSize,
    pub typical: ByteSize,
    /// file:line of the settings it came from, or the rule it assumed.
    pub source: String,
}

impl Term {
    pub fn new(
        service: Scope,
        name: &str,
        worst: ByteSize,
        typical: ByteSize,
        source: String,
    ) -> Term {
        Term {
            service,
            name: name.to_string(),
            worst,
            typical,
            source,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Budget {
    pub ram: ByteSize,
    pub ram_source: String,
    pub terms: Vec<Term>,
    pub worst: ByteSize,
    pub typical: ByteSize,
    /// Rules broken whatever the total (unbounded Redis, pools above
    /// max_connections, work_mem x connections alone above RAM).
    pub problems: Vec<Finding>,
}

impl Budget {
    pub fn fits(&self) -> bool {
        self.worst <= self.ram
            && !self
                .problems
                .iter()
                .any(|p| p.severity == crate::read::findings::Severity::Error)
    }

    /// Only the arithmetic: worst case within RAM.
    pub fn total_fits(&self) -> bool {
        self.worst <= self.ram
    }

    pub fn headroom(&self) -> i128 {
        self.ram.bytes() as i128 - self.worst.bytes() as i128
    }

    /// `5.1 MiB headroom`, or `1.2 GiB over`.
    pub fn headroom_text(&self) -> String {
        let h = self.headroom();
        if h >= 0 {
            format!("{} headroom", ByteSize(h as u64))
        } else {
            format!("{} over", ByteSize((-h) as u64))
        }
    }

    /// Worst-case total of one service's terms.
    pub fn service_worst(&self, service: impl Into<Scope>) -> ByteSize {
        let service = service.into();
        self.terms
            .iter()
            .filter(|t| t.service == service)
            .map(|t| t.worst)
            .sum()
    }

    /// The table people read: per term, worst and typical, and the source.
    pub fn table(&self) -> String {
        Table(self).to_string()
    }
}

/// Computes the budget of a host's settings.
pub fn compute(
    settings: &HostSettings,
    ram: ByteSize,
    ram_source: &str,
    reserves: &[HostReserve],
    a: &Assumptions,
) -> Budget {
    let mut terms = Vec::new();
    let mut problems = Vec::new();
    let hugepages = settings
        .os
        .as_ref()
        .map(|os| huge_pages(os, a))
        .unwrap_or_default();
    if let Some(pg) = &settings.postgres {
        postgres_terms(
            pg,
            settings.pg_version,
            settings.pg_build.as_deref(),
            hugepages.as_ref().map(|h| h.0),
            a,
            &mut terms,
        );
        work_mem_rule(pg, settings.pg_version, ram, &mut problems);
        for lib in extension_shared_memory(&Pg::new(pg, settings.pg_version)).unknown {
            problems.push(Finding::warning(
                Scope::Postgres,
                pg.get("shared_preload_libraries").map(|e| &e.at),
                format!(
                    "`{lib}` in shared_preload_libraries: its shared memory is not in the budget (unknown, not 0)"
                ),
                Some(
                    "count it as a reservation (--reserve NAME=SIZE); postgres -C shared_memory_size with and \
                     without it says how much"
                        .into(),
                ),
            ));
        }
        if let Some(b) = &settings.pgbouncer {
            pool_rule(b, pg, settings.pg_version, &mut problems);
        }
    }
    if let Some(r) = &settings.redis {
        let version = Some(settings.redis_version.as_str()).filter(|v| !v.is_empty());
        redis_terms(
            r,
            &calibration::redis(version),
            a,
            &mut terms,
            &mut problems,
        );
    }
    if let Some(b) = &settings.pgbouncer {
        pgbouncer_terms(b, &mut terms);
    }
    if let Some(os) = &settings.os {
        if let Some((bytes, e)) = hugepages {
            terms.push(Term {
                service: Scope::Os,
                name: "huge pages reserved".into(),
                worst: bytes,
                typical: bytes,
                source: format!("{} (vm.nr_hugepages = {})", e.at, e.value),
            });
        }
        if let Some(e) = os.get("zfs.zfs_arc_max") {
            let arc = ByteSize(e.value.parse().unwrap_or(0));
            terms.push(Term {
                service: Scope::Zfs,
                name: "ARC cap (zfs_arc_max)".into(),
                worst: arc,
                typical: arc,
                source: e.at.to_string(),
            });
        }
    }
    for r in reserves {
        terms.push(Term {
            service: Scope::Host,
            name: r.name.clone(),
            worst: r.memory,
            typical: r.memory,
            source: r.source.clone(),
        });
    }
    let worst = terms.iter().map(|t| t.worst).sum();
    let typical = terms.iter().map(|t| t.typical).sum();
    Budget {
        ram,
        ram_source: ram_source.to_string(),
        terms,
        worst,
        typical,
        problems,
    }
}

fn huge_pages(os: &ServiceSettings, a: &Assumptions) -> Option<(ByteSize, Entry)> {
    let e = os.get("vm.nr_hugepages")?;
    let n: u64 = e.value.parse().ok()?;
    (n > 0).then(|| (a.hugepage_size * n, e.clone()))
}

/// PostgreSQL settings as the server reads them (`pgvalue`, against the
/// version's catalog): the file's value when PostgreSQL would accept it,
/// else the version's default, with a source saying which.
pub struct Pg<'a> {
    s: &'a ServiceSettings,
    version: PgVersion,
    cat: &'static PgCatalog,
}

impl<'a> Pg<'a> {
    pub fn new(s: &'a ServiceSettings, version: PgVersion) -> Self {
        Pg {
            s,
            version,
            cat: PgCatalog::get(version),
        }
    }

    /// The value in effect, when the file sets one PostgreSQL accepts.
    pub fn read(&self, name: &str) -> Option<PgValue> {
        let e = self.s.get(name)?;
        match self.cat.lookup(name) {
            Lookup::Known(p) => pgvalue::read(p, &e.value).ok(),
            _ => None,
        }
    }

    fn param(&self, name: &str) -> Option<&'static PgParam> {
        match self.cat.lookup(name) {
            Lookup::Known(p) => Some(p),
            _ => None,
        }
    }

    /// Where a value came from; a value PostgreSQL would refuse is
    /// replaced by the default, and the source says so.
    pub fn src(&self, name: &str) -> String {
        match self.s.get(name) {
            Some(e) if self.read(name).is_some() => e.at.to_string(),
            Some(e) => format!(
                "default of PostgreSQL {}: the value at {} is invalid",
                self.version, e.at
            ),
            None => format!("default of PostgreSQL {}", self.version),
        }
    }

    /// Counts: clamped so absurd values cannot overflow the sums (PostgreSQL
    /// itself refuses anything above 262143 connections).
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.read(name)
            .and_then(|v| v.as_f64())
            .map_or(default, |x| x as i64)
            .clamp(-1, 1 << 24)
    }

    /// An integer in its own unit, as PostgreSQL runs with it: the file's
    /// value when PostgreSQL accepts it, else the version's built-in
    /// default (0 for a parameter the version lacks).
    pub fn int_or_boot(&self, name: &str) -> i64 {
        let boot = self
            .param(name)
            .and_then(|p| p.boot_val.as_deref())
            .and_then(|b| b.parse::<f64>().ok())
            .map_or(0, |x| x as i64);
        self.int(name, boot)
    }

    pub fn real(&self, name: &str, default: f64) -> f64 {
        self.read(name).and_then(|v| v.as_f64()).unwrap_or(default)
    }

    /// A memory setting in bytes; -1 (or any negative) stays -1: "use
    /// another setting".
    pub fn mem(&self, name: &str, default: i64) -> i64 {
        match (self.read(name), self.param(name)) {
            (Some(v), Some(p)) => match pgvalue::bytes(p, &v) {
                Some(b) => b.min(i64::MAX as u64) as i64,
                None => -1,
            },
            _ => default,
        }
    }

    /// An enum, string or boolean as lowercase text (`on`/`off`).
    pub fn text(&self, name: &str, default: &str) -> String {
        match self.read(name) {
            Some(PgValue::Enum(e)) => e,
            Some(PgValue::String(s)) => s.trim().to_ascii_lowercase(),
            Some(PgValue::Bool(b)) => if b { "on" } else { "off" }.to_string(),
            _ => default.to_string(),
        }
    }

    pub fn version(&self) -> PgVersion {
        self.version
    }

    /// An extension's integer (a placeholder, not in the catalog).
    pub fn raw_int(&self, name: &str) -> Option<i64> {
        let v = self.s.get(name)?.value.trim().to_string();
        let (n, end) = pgvalue::c_strtol(v.as_bytes());
        n.filter(|_| end == v.len())
    }

    pub fn bool(&self, name: &str, default: bool) -> bool {
        match self.read(name) {
            Some(PgValue::Bool(b)) => b,
            _ => default,
        }
    }
}

/// PostgreSQL's shared memory for a set of settings, and its parts.
pub struct SharedMemory {
    pub shared_buffers: ByteSize,
    pub wal_buffers: ByteSize,
    /// Backend slots the lock table and per-slot arrays are sized for.
    pub slots: u64,
    pub total: ByteSize,
    pub extensions: ExtensionMemory,
}

impl SharedMemory {
    pub fn of(pg: &Pg) -> SharedMemory {
        let sb = ByteSize(pg.mem("shared_buffers", 128 * MIB as i64).max(0) as u64);
        let wal = effective_wal_buffers(pg.mem("wal_buffers", -1), sb);
        let max_conn = pg.int("max_connections", 100).max(0) as u64;
        let av_workers = if pg.version() >= 18 {
            pg.int("autovacuum_worker_slots", 16)
        } else {
            pg.int("autovacuum_max_workers", 3)
        }
        .max(0) as u64;
        let bg_workers = pg.int("max_worker_processes", 8).max(0) as u64;
        let wal_senders = pg.int("max_wal_senders", 10).max(0) as u64;
        let prepared = pg.int("max_prepared_transactions", 0).max(0) as u64;
        let max_locks = pg.int("max_locks_per_transaction", 64).max(10) as u64;
        let query_size = pg.int("track_activity_query_size", 1024).max(100) as u64;
        let slots = max_conn + av_workers + bg_workers + wal_senders + prepared + 1;
        let ext = extension_shared_memory(pg);
        SharedMemory {
            shared_buffers: sb,
            wal_buffers: wal,
            slots,
            total: pg_shared_memory(pg.version(), sb, wal, slots, max_locks, query_size)
                + ext.known,
            extensions: ext,
        }
    }
}

/// Shared memory of the libraries in shared_preload_libraries: what
/// dbtune models, and the names of those it does not.
#[derive(Clone, Debug, Default)]
pub struct ExtensionMemory {
    pub known: ByteSize,
    pub detail: Vec<String>,
    pub unknown: Vec<String>,
}

/// pg_stat_statements keeps about 420 bytes per entry in shared memory
/// (`postgres -C shared_memory_size` with and without it, 15 and 18: +2 MB
/// for 5000 entries, +8 MB for 20000); counted as 512.
pub const PGSS_BYTES_PER_ENTRY: u64 = 512;

pub fn extension_shared_memory(pg: &Pg) -> ExtensionMemory {
    let libs = pg.text("shared_preload_libraries", "");
    let mut out = ExtensionMemory::default();
    for lib in libs
        .split(',')
        .map(|l| l.trim().trim_matches('"'))
        .filter(|l| !l.is_empty())
    {
        if lib == "pg_stat_statements" {
            let max = pg
                .raw_int("pg_stat_statements.max")
                .unwrap_or(5000)
                .clamp(0, 1 << 30) as u64;
            let bytes = ByteSize(max * PGSS_BYTES_PER_ENTRY);
            out.known += bytes;
            out.detail.push(format!(
                "pg_stat_statements {max} entries x {PGSS_BYTES_PER_ENTRY} B"
            ));
        } else {
            out.unknown.push(lib.to_string());
        }
    }
    out
}

/// The shared memory PostgreSQL asks for at start, estimated.
pub fn pg_shared_estimate(pg: &Pg) -> ByteSize {
    SharedMemory::of(pg).total
}

/// Estimated shared memory: shared_buffers and what sizes with it,
/// wal_buffers, the per-slot structures (lock tables by
/// max_locks_per_transaction, the activity buffer by
/// track_activity_query_size) and the rest, with the constants measured on
/// the major's server (data/pg-memory.tsv) and a margin for the fit.
pub fn pg_shared_memory(
    major: PgVersion,
    shared_buffers: ByteSize,
    wal_buffers: ByteSize,
    slots: u64,
    max_locks: u64,
    query_size: u64,
) -> ByteSize {
    let c = calibration::pg(major);
    let per_slot = c.slot as f64 + c.lock * max_locks as f64 + c.query * query_size as f64;
    let bytes = shared_buffers.bytes() as f64 * (1.0 + c.buffer_overhead)
        + wal_buffers.bytes() as f64
        + c.fixed as f64
        + per_slot * slots as f64;
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

/// The mistake PGTune makes on small hosts: work_mem x max_connections alone
/// is more than the RAM.
fn work_mem_rule(
    s: &ServiceSettings,
    version: PgVersion,
    ram: ByteSize,
    problems: &mut Vec<Finding>,
) {
    let pg = Pg::new(s, version);
    let wm = ByteSize(pg.mem("work_mem", 4 * MIB as i64).max(0) as u64);
    let conns = pg.int("max_connections", 100).max(0) as u64;
    if wm * conns > ram {
        problems.push(Finding::error(
            Scope::Postgres,
            s.get("work_mem").or(s.get("max_connections")).map(|e| &e.at),
            format!(
                "work_mem {wm} x max_connections {conns} = {} is more than the {ram} of RAM on its own",
                wm * conns
            ),
            Some("lower work_mem or max_connections (put PgBouncer in front for many clients)".into()),
        ));
    }
}

fn postgres_terms(
    s: &ServiceSettings,
    version: PgVersion,
    build: Option<&[String]>,
    hugepages: Option<ByteSize>,
    a: &Assumptions,
    terms: &mut Vec<Term>,
) {
    let pg = Pg::new(s, version);
    let max_conn = pg.int("max_connections", 100).max(0) as u64;
    let t = PgTerms {
        shm: SharedMemory::of(&pg),
        max_conn,
        parallel: pg.int("max_parallel_workers", 8).max(0) as u64,
        av_running: pg.int("autovacuum_max_workers", 3).max(0) as u64,
        busy_typical: ((max_conn as f64 * a.busy_fraction_typical).ceil() as u64).max(1),
        pg,
        a,
    };
    let in_huge_pages = t.shared_memory(hugepages, terms);
    terms.push(t.backend_processes(in_huge_pages));
    terms.push(t.work_mem());
    if jit_possible(t.pg.bool("jit", true), build) {
        terms.push(t.jit());
    }
    terms.push(t.autovacuum());
    if a.manual_maintenance > 0 {
        terms.push(t.manual_maintenance());
    }
    if a.temp_tables {
        terms.push(t.temp_buffers());
    }
}

/// PostgreSQL's terms, one method each, over the counts they share.
struct PgTerms<'a> {
    pg: Pg<'a>,
    a: &'a Assumptions,
    shm: SharedMemory,
    max_conn: u64,
    parallel: u64,
    av_running: u64,
    busy_typical: u64,
}

impl PgTerms<'_> {
    fn version(&self) -> PgVersion {
        self.pg.version()
    }

    /// Connections and parallel workers: each may sort at once.
    fn sorters(&self) -> u64 {
        self.max_conn + self.parallel
    }

    /// Shared memory (or nothing, when it sits in huge pages counted under
    /// os) and an unknown term per unmodelled preload library; whether the
    /// shared memory is in huge pages.
    fn shared_memory(&self, hugepages: Option<ByteSize>, terms: &mut Vec<Term>) -> bool {
        let (pg, shm) = (&self.pg, &self.shm);
        let shared = shm.total;
        let huge = pg.text("huge_pages", "try");
        let shm_src = format!(
            "shared_buffers {} at {}, wal_buffers {}, lock table for {} slots{}",
            shm.shared_buffers,
            pg.src("shared_buffers"),
            shm.wal_buffers,
            shm.slots,
            shm.extensions
                .detail
                .iter()
                .map(|d| format!(", {d}"))
                .collect::<String>()
        );
        // Not enough huge pages for `huge_pages = on` is a safety finding
        // (the server would not start); here only where the memory is counted.
        let in_huge_pages = matches!(hugepages, Some(h) if huge == "on" && h >= shared);
        if in_huge_pages {
            terms.push(Term::new(
                Scope::Postgres,
                "shared memory (in huge pages)",
                ByteSize::ZERO,
                ByteSize::ZERO,
                format!("{shared} estimated, held in the huge pages counted under os; {shm_src}"),
            ));
        } else {
            terms.push(Term::new(
                Scope::Postgres,
                "shared memory",
                shared,
                shared,
                shm_src,
            ));
        }
        for lib in &shm.extensions.unknown {
            // Named, never silently 0: the budget cannot see this memory.
            terms.push(Term::new(
                Scope::Postgres,
                &format!("{lib} (unknown)"),
                ByteSize::ZERO,
                ByteSize::ZERO,
                format!(
                    "shared_preload_libraries at {}: {lib}'s shared memory is not modelled",
                    pg.src("shared_preload_libraries")
                ),
            ));
        }
        in_huge_pages
    }

    fn backend_processes(&self, in_huge_pages: bool) -> Term {
        let (pg, a, version, shared) = (&self.pg, self.a, self.version(), self.shm.total);
        let max_conn = self.max_conn;
        let av_running = self.av_running;
        let bg_workers = pg.int("max_worker_processes", 8).max(0) as u64;
        let wal_senders = pg.int("max_wal_senders", 10).max(0) as u64;
        let io_workers = if version >= 18 && pg.text("io_method", "worker") == "worker" {
            pg.int("io_workers", 3).max(0) as u64
        } else {
            0
        };
        let procs = pg_processes(max_conn, av_running, bg_workers, wal_senders, io_workers);
        let per_proc = pg_process_worst(version, a, shared, in_huge_pages);
        let base = per_proc - page_tables(shared, in_huge_pages);
        Term::new(Scope::Postgres, "backend processes",
            per_proc * procs,
            base * procs,
            format!(
                "{procs} processes ({max_conn} connections at {}, {av_running} autovacuum, \
                 {bg_workers} background, {wal_senders} WAL senders{}, {AUXILIARY} auxiliary) x {base} ({}) \
                 + {} page tables for {shared} of shared memory{}; typical: without the page tables",
                pg.src("max_connections"),
                if io_workers > 0 {
                    format!(", {io_workers} I/O workers")
                } else {
                    String::new()
                },
                if a.backend_memory.is_some() {
                    "assumed".to_string()
                } else {
                    format!(
                        "measured on PostgreSQL {}, {}",
                        calibration::pg(version).version,
                        calibration::PG_SOURCE
                    )
                },
                page_tables(shared, in_huge_pages),
                if in_huge_pages { " in huge pages" } else { "" },
            ),
        )
    }

    fn work_mem(&self) -> Term {
        let (pg, a, version) = (&self.pg, self.a, self.version());
        let c = calibration::pg(version);
        let work_mem = ByteSize(pg.mem("work_mem", 4 * MIB as i64).max(0) as u64);
        let hmm = pg.real("hash_mem_multiplier", if version >= 15 { 2.0 } else { 1.0 });
        let per_query = work_mem.scale(a.sorts_per_query as f64 * hmm * c.hash);
        let busy_typical = self.busy_typical;
        Term::new(Scope::Postgres, "work_mem",
            per_query * self.sorters(),
            work_mem * busy_typical,
            format!(
                "({} connections + {} parallel workers) x {} nodes x work_mem {work_mem} ({}) \
                 x hash_mem_multiplier {hmm} ({}) x {:.2} (a hash node's memory over its hash_mem, measured); \
                 typical: {busy_typical} busy x 1 node",
                self.max_conn,
                self.parallel,
                a.sorts_per_query,
                pg.src("work_mem"),
                pg.src("hash_mem_multiplier"),
                c.hash,
            ),
        )
    }

    fn jit(&self) -> Term {
        let jit = jit_worst(1);
        let busy_typical = self.busy_typical;
        Term::new(Scope::Postgres, "JIT",
            jit_worst(self.sorters()),
            jit_worst(busy_typical),
            format!(
                "jit on ({}): a JIT-compiled query holds {jit} more (measured, {}) x ({} connections \
                 + {} parallel workers); typical: {busy_typical} busy",
                self.pg.src("jit"),
                calibration::PG_SOURCE,
                self.max_conn,
                self.parallel,
            ),
        )
    }

    fn maintenance_work_mem(&self) -> ByteSize {
        ByteSize(self.pg.mem("maintenance_work_mem", 64 * MIB as i64).max(0) as u64)
    }

    fn autovacuum(&self) -> Term {
        let (pg, version, av_running) = (&self.pg, self.version(), self.av_running);
        let avwm_setting = pg.mem("autovacuum_work_mem", -1);
        let (avwm, avwm_src) = if avwm_setting < 0 {
            (
                self.maintenance_work_mem(),
                format!("maintenance_work_mem at {}", pg.src("maintenance_work_mem")),
            )
        } else {
            (ByteSize(avwm_setting as u64), pg.src("autovacuum_work_mem"))
        };
        let avwm_eff = autovacuum_each(version, avwm);
        Term::new(
            Scope::Postgres,
            "autovacuum",
            avwm_eff * av_running,
            avwm_eff.min(ByteSize::gib(1)),
            format!(
                "{av_running} workers x {avwm_eff} ({avwm_src}{}); typical: one worker",
                if version < 17 && avwm > avwm_eff {
                    ", capped at 1 GB before PostgreSQL 17"
                } else {
                    ""
                }
            ),
        )
    }

    fn manual_maintenance(&self) -> Term {
        let mwm = self.maintenance_work_mem();
        let sessions = self.a.manual_maintenance;
        Term::new(
            Scope::Postgres,
            "manual maintenance",
            mwm * sessions as u64,
            mwm,
            format!(
                "{sessions} session(s) (assumed) x maintenance_work_mem {mwm} ({})",
                self.pg.src("maintenance_work_mem")
            ),
        )
    }

    fn temp_buffers(&self) -> Term {
        let tb = ByteSize(self.pg.mem("temp_buffers", 8 * MIB as i64).max(0) as u64);
        Term::new(
            Scope::Postgres,
            "temp_buffers",
            tb * self.max_conn,
            tb * self.busy_typical,
            format!(
                "{} connections x temp_buffers {tb} ({})",
                self.max_conn,
                self.pg.src("temp_buffers")
            ),
        )
    }
}

/// PgBouncer's server connections are PostgreSQL backends: all pools must
/// fit in max_connections minus the slots reserved for superusers.
fn pool_rule(
    b: &ServiceSettings,
    pg: &ServiceSettings,
    version: PgVersion,
    problems: &mut Vec<Finding>,
) {
    let pgs = Pg::new(pg, version);
    let (servers, detail) = pgbouncer_server_conns(b);
    let max_conn = pgs.int("max_connections", 100);
    let reserved = pgs.int("superuser_reserved_connections", 3)
        + if version >= 16 {
            pgs.int("reserved_connections", 0)
        } else {
            0
        };
    let usable = max_conn - reserved;
    if servers as i64 > usable {
        let at = b
            .entries
            .iter()
            .find(|(k, _)| k.starts_with("databases."))
            .and_then(|(_, v)| v.last())
            .map(|e| &e.at);
        problems.push(Finding::error(
            Scope::Pgbouncer,
            at,
            format!(
                "PgBouncer may open {servers} server connections ({detail}) but PostgreSQL accepts \
                 {usable} (max_connections {max_conn} at {} minus {reserved} reserved)",
                pgs.src("max_connections")
            ),
            Some("lower pool_size / reserve_pool or set max_db_connections, or raise max_connections".into()),
        ));
    }
}

/// Server connections PgBouncer may open: per database, pool_size +
/// reserve_pool_size, capped by max_db_connections. Assumes one user per
/// database (pools are per database and user).
pub fn pgbouncer_server_conns(b: &ServiceSettings) -> (u64, String) {
    let global = |k: &str, d: u64| {
        b.get(&format!("pgbouncer.{k}"))
            .and_then(|e| e.value.parse::<u64>().ok())
            .unwrap_or(d)
            .min(1 << 24)
    };
    let default_pool = global("default_pool_size", 20);
    let reserve = global("reserve_pool_size", 0);
    let max_db_global = global("max_db_connections", 0);
    let mut total = 0;
    let mut parts = Vec::new();
    for (key, entries) in &b.entries {
        let Some(db) = key.strip_prefix("databases.") else {
            continue;
        };
        let e = entries.last().expect("entries are never empty");
        let param = |k: &str| {
            e.value
                .split_whitespace()
                .find_map(|kv| {
                    let (pk, pv) = kv.split_once('=')?;
                    (pk == k).then(|| pv.parse::<u64>().ok()).flatten()
                })
                .map(|v| v.min(1 << 24))
        };
        let pool =
            param("pool_size").unwrap_or(default_pool) + param("reserve_pool").unwrap_or(reserve);
        let cap = param("max_db_connections").unwrap_or(max_db_global);
        let n = if cap > 0 { pool.min(cap) } else { pool };
        total += n;
        parts.push(format!("{db} {n} at {}", e.at));
    }
    (total, parts.join(", "))
}

fn redis_terms(
    r: &ServiceSettings,
    c: &calibration::RedisMemory,
    a: &Assumptions,
    terms: &mut Vec<Term>,
    problems: &mut Vec<Finding>,
) {
    let maxmemory = r
        .get("maxmemory")
        .and_then(|e| parse_redis_memory(&e.value));
    let mm_src = r
        .get("maxmemory")
        .map_or("default".to_string(), |e| e.at.to_string());
    let Some(mm) = maxmemory.filter(|m| m.bytes() > 0) else {
        problems.push(Finding::error(
            Scope::Redis,
            r.get("maxmemory").map(|e| &e.at),
            format!("Redis maxmemory is 0 or unset ({mm_src}): its memory is unbounded and no budget can hold it"),
            Some("set maxmemory (and a maxmemory-policy) to what this host can give Redis".into()),
        ));
        terms.push(Term::new(
            Scope::Redis,
            "data (unbounded)",
            ByteSize::ZERO,
            ByteSize::ZERO,
            mm_src,
        ));
        return;
    };
    let measured = format!(
        "measured on Redis {}, {}",
        c.release,
        calibration::REDIS_SOURCE
    );
    terms.push(Term::new(
        Scope::Redis,
        "data x fragmentation",
        mm.scale(c.fragmentation),
        mm.scale(a.redis_frag_typical),
        format!(
            "maxmemory {mm} ({mm_src}) x {:.2} worst ({measured}) / {} typical (assumed)",
            c.fragmentation, a.redis_frag_typical
        ),
    ));
    let (clients, clients_src) = redis_clients(r, mm, c, problems);
    let backlog = r
        .get("repl-backlog-size")
        .and_then(|e| parse_redis_memory(&e.value))
        .unwrap_or(ByteSize::mib(1));
    terms.push(Term::new(
        Scope::Redis,
        "client buffers + backlog",
        clients + backlog,
        backlog + clients.scale(0.1),
        format!("clients {clients} ({clients_src}), repl-backlog-size {backlog}"),
    ));
    terms.extend(redis_fork(r, mm, c, &measured));
    terms.push(Term::new(
        Scope::Redis,
        "process",
        ByteSize(c.process),
        ByteSize(c.process),
        format!("an empty server ({measured})"),
    ));
}

/// The client buffers Redis allows: maxmemory-clients (bytes or a share of
/// maxmemory), else every client idle at its measured size, with a warning
/// that their growth is unbounded.
fn redis_clients(
    r: &ServiceSettings,
    mm: ByteSize,
    c: &calibration::RedisMemory,
    problems: &mut Vec<Finding>,
) -> (ByteSize, String) {
    let maxclients: u64 = r
        .get("maxclients")
        .and_then(|e| e.value.parse::<u64>().ok())
        .unwrap_or(10000)
        .min(1 << 24);
    match r.get("maxmemory-clients") {
        Some(e) if e.value.ends_with('%') => {
            let pct: f64 = e.value.trim_end_matches('%').parse().unwrap_or(0.0);
            (mm.scale(pct / 100.0), e.at.to_string())
        }
        Some(e) if parse_redis_memory(&e.value).is_some_and(|v| v.bytes() > 0) => (
            parse_redis_memory(&e.value).unwrap_or_default(),
            e.at.to_string(),
        ),
        _ => {
            problems.push(Finding::warning(
                Scope::Redis,
                r.get("maxmemory-clients").map(|e| &e.at),
                "maxmemory-clients is unset: client buffers are outside maxmemory, and a client \
                 reading large replies can grow without bound"
                    .to_string(),
                Some("set maxmemory-clients (e.g. 10% of maxmemory) so Redis disconnects the largest clients first".into()),
            ));
            (
                ByteSize(c.client) * maxclients,
                format!(
                    "maxmemory-clients unset: {maxclients} idle clients x {} (measured), growth unbounded",
                    ByteSize(c.client)
                ),
            )
        }
    }
}

/// The copy-on-write of a fork, when RDB saves or AOF rewrites fork.
fn redis_fork(
    r: &ServiceSettings,
    mm: ByteSize,
    c: &calibration::RedisMemory,
    measured: &str,
) -> Option<Term> {
    let saves = r.all("save");
    let rdb = match saves.last() {
        None => true, // Redis saves by default (3600 1 300 100 60 10000)
        Some(e) => !e.value.trim().trim_matches('"').is_empty(),
    };
    let aof = r
        .get("appendonly")
        .is_some_and(|e| e.value.eq_ignore_ascii_case("yes"));
    let what = match (rdb, aof) {
        (true, true) => "RDB saves and AOF rewrites fork",
        (true, false) => "RDB saves fork",
        (false, true) => "AOF rewrites fork",
        (false, false) => return None,
    };
    let at = saves
        .last()
        .map(|e| e.at.to_string())
        .or_else(|| r.get("appendonly").map(|e| e.at.to_string()))
        .unwrap_or_else(|| "default save rules".into());
    Some(Term::new(
        Scope::Redis,
        "fork copy-on-write",
        mm.scale(c.fork_factor()),
        mm.scale(0.1),
        format!(
            "{what} ({at}): the child may copy every resident page, maxmemory x {:.2} \
             ({measured}); typical 10%",
            c.fork_factor()
        ),
    ))
}

fn pgbouncer_terms(b: &ServiceSettings, terms: &mut Vec<Term>) {
    let get = |k: &str, d: u64| {
        b.get(&format!("pgbouncer.{k}"))
            .and_then(|e| e.value.parse::<u64>().ok())
            .unwrap_or(d)
            .min(1 << 24)
    };
    let clients = get("max_client_conn", 100);
    let pkt_buf = get("pkt_buf", 4096);
    let (servers, _) = pgbouncer_server_conns(b);
    let per_conn = ByteSize(pkt_buf) + ByteSize::kib(1);
    let worst = per_conn * (clients + servers) + ByteSize::mib(2);
    let src = b
        .get("pgbouncer.max_client_conn")
        .map_or("default".into(), |e| e.at.to_string());
    terms.push(Term {
        service: Scope::Pgbouncer,
        name: "connections".into(),
        worst,
        typical: ByteSize::mib(2) + per_conn * servers,
        source: format!(
            "({clients} clients at {src} + {servers} server) x (pkt_buf {pkt_buf} B + 1 KiB) + 2 MiB"
        ),
    });
}

/// The budget as a table: one line per term with its source, a subtotal
/// per service, the total, the headroom, then the budget's own findings.
pub struct Table<'a>(pub &'a Budget);

impl fmt::Display for Table<'_> {
    fn fmt(&self, s: &mut fmt::Formatter<'_>) -> fmt::Result {
        let budget = self.0;
        let w = budget
            .terms
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(10)
            .max(10);
        writeln!(
            s,
            "{:<9} {:<w$} {:>10} {:>10}  source",
            "service", "term", "worst", "typical"
        )?;
        for t in &budget.terms {
            writeln!(
                s,
                "{:<9} {:<w$} {:>10} {:>10}  {}",
                t.service,
                t.name,
                t.worst.to_string(),
                t.typical.to_string(),
                t.source
            )?;
        }
        let mut services: Vec<Scope> = Vec::new();
        for t in &budget.terms {
            if !services.contains(&t.service) {
                services.push(t.service);
            }
        }
        for svc in services {
            let typical: ByteSize = budget
                .terms
                .iter()
                .filter(|t| t.service == svc)
                .map(|t| t.typical)
                .sum();
            writeln!(
                s,
                "{:<9} {:<w$} {:>10} {:>10}",
                "subtotal",
                svc,
                budget.service_worst(svc).to_string(),
                typical.to_string()
            )?;
        }
        writeln!(
            s,
            "{:<9} {:<w$} {:>10} {:>10}",
            "total",
            "",
            budget.worst.to_string(),
            budget.typical.to_string()
        )?;
        let head = budget.headroom();
        let head_s = if head >= 0 {
            ByteSize(head as u64).to_string()
        } else {
            format!("-{}", ByteSize((-head) as u64))
        };
        writeln!(
            s,
            "{:<9} {:<w$} {:>10}  ({} of RAM, {})",
            "headroom", "", head_s, budget.ram, budget.ram_source
        )?;
        for p in &budget.problems {
            writeln!(s, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::grammar;
    use crate::units::GIB;

    fn pg(text: &str) -> HostSettings {
        HostSettings {
            postgres: Some(grammar::postgresql_conf(text, "pg.conf").unwrap()),
            pg_version: crate::version::PgVersion::of(15),
            ..Default::default()
        }
    }

    #[test]
    fn values_are_read_as_postgres_reads_them() {
        let mem = |line: &str, name: &str| {
            let s = grammar::postgresql_conf(line, "pg.conf").unwrap();
            Pg::new(&s, crate::version::PgVersion::of(15)).mem(name, -99)
        };
        assert_eq!(
            mem("shared_buffers = 16384", "shared_buffers"),
            128 * MIB as i64
        );
        assert_eq!(mem("work_mem = 4096", "work_mem"), 4 * MIB as i64);
        assert_eq!(mem("max_wal_size = 1024", "max_wal_size"), GIB as i64);
        assert_eq!(mem("work_mem = 4MB", "work_mem"), 4 * MIB as i64);
        // The regression: 1.5GB is what PostgreSQL reads, never the default.
        assert_eq!(
            mem("shared_buffers = '1.5GB'", "shared_buffers"),
            3 * GIB as i64 / 2
        );
        assert_eq!(
            mem("work_mem = 4mb", "work_mem"),
            -99,
            "units are case-sensitive"
        );
        assert_eq!(mem("autovacuum_work_mem = -1", "autovacuum_work_mem"), -1);
    }

    #[test]
    fn wal_buffers_auto_is_a_32nd_of_shared_buffers_capped_at_16mb() {
        assert_eq!(
            effective_wal_buffers(-1, ByteSize::mib(128)),
            ByteSize::mib(4)
        );
        assert_eq!(
            effective_wal_buffers(-1, ByteSize::gib(8)),
            ByteSize::mib(16)
        );
        assert_eq!(
            effective_wal_buffers(-1, ByteSize::mib(1)),
            ByteSize::kib(64)
        );
    }

    #[test]
    fn shared_memory_estimate_tracks_postgres_own_report() {
        // postgres -C shared_memory_size, PostgreSQL 15, max_connections 100:
        // slots = 100 + 3 autovacuum + 8 workers + 10 WAL senders + 1.
        for (sb, wal, reported_mb) in [(128, 4, 143.0), (1024, 16, 1074.0), (8192, 16, 8399.0)] {
            let est = pg_shared_memory(
                crate::version::PgVersion::of(15),
                ByteSize::mib(sb),
                ByteSize::mib(wal),
                122,
                64,
                1024,
            );
            let ratio = est.as_mib_f64() / reported_mb;
            // Never under; the MB the server reports are rounded up.
            assert!(
                (0.995..1.03).contains(&ratio),
                "{sb} MB: {est} vs {reported_mb} MB"
            );
        }
    }

    #[test]
    fn pgtune_on_one_gib_does_not_fit() {
        // PGTune's web profile for 1 GB: 300 connections with a 4 MB floor.
        let s = pg("max_connections = 300\nshared_buffers = 256MB\nwork_mem = 4MB\n");
        let b = compute(&s, ByteSize::gib(1), "--ram", &[], &Assumptions::default());
        assert!(!b.fits());
        let wm = b.terms.iter().find(|t| t.name == "work_mem").unwrap();
        // (300 + 8) x 2 x 4 MB x 2.0 x the hash factor measured on 15
        let hash = calibration::pg(15u32).hash;
        assert_eq!(wm.worst, ByteSize::mib(4).scale(4.0 * hash) * 308);
        assert!(wm.source.contains("pg.conf:3"), "{}", wm.source);
    }

    #[test]
    fn hash_mem_multiplier_default_depends_on_version() {
        let mut s = pg("work_mem = 1MB\nmax_connections = 10\nmax_parallel_workers = 0\n");
        let at = |s: &HostSettings| {
            let b = compute(s, ByteSize::gib(4), "x", &[], &Assumptions::default());
            b.terms.iter().find(|t| t.name == "work_mem").unwrap().worst
        };
        assert_eq!(at(&s), ByteSize::mib(40).scale(calibration::pg(15u32).hash));
        s.pg_version = crate::version::PgVersion::of(14);
        assert_eq!(at(&s), ByteSize::mib(20).scale(calibration::pg(14u32).hash));
    }

    #[test]
    fn autovacuum_dead_tuples_capped_before_17() {
        let mut s = pg("autovacuum_work_mem = 4GB\nautovacuum_max_workers = 2\n");
        let av = |s: &HostSettings| {
            let b = compute(s, ByteSize::gib(64), "x", &[], &Assumptions::default());
            b.terms
                .iter()
                .find(|t| t.name == "autovacuum")
                .unwrap()
                .worst
        };
        assert_eq!(av(&s), ByteSize::gib(2));
        s.pg_version = crate::version::PgVersion::of(17);
        assert_eq!(av(&s), ByteSize::gib(8));
    }

    #[test]
    fn redis_unbounded_and_forking_are_seen() {
        let s = HostSettings {
            redis: Some(grammar::redis_conf("maxmemory 0\n", "r.conf").unwrap()),
            ..Default::default()
        };
        let b = compute(&s, ByteSize::gib(4), "x", &[], &Assumptions::default());
        assert!(!b.fits());
        assert!(b.problems[0].message.contains("unbounded"));

        let s = HostSettings {
            redis: Some(
                grammar::redis_conf(
                    "maxmemory 100mb\nmaxmemory-clients 10mb\nsave \"\"\nappendonly yes\n",
                    "r",
                )
                .unwrap(),
            ),
            ..Default::default()
        };
        let b = compute(&s, ByteSize::gib(4), "x", &[], &Assumptions::default());
        // data x fragmentation + 11 buffers + a fork's copy (bounded by the
        // fragmented data set) + the process, with the largest factors
        // measured (no release named)
        let c = calibration::redis(None);
        let mm = ByteSize::mib(100);
        assert_eq!(
            b.service_worst(Scope::Redis),
            mm.scale(c.fragmentation)
                + ByteSize::mib(11)
                + mm.scale(c.fork_factor())
                + ByteSize(c.process)
        );
    }

    #[test]
    fn pools_above_max_connections_are_a_problem() {
        let mut s = pg("max_connections = 50\n");
        s.pgbouncer = Some(
            grammar::pgbouncer_ini(
                "[databases]\napp = host=127.0.0.1 pool_size=40\n[pgbouncer]\nreserve_pool_size = 10\n",
                "b.ini",
            )
            .unwrap(),
        );
        let b = compute(&s, ByteSize::gib(64), "x", &[], &Assumptions::default());
        assert_eq!(b.problems.len(), 1, "{:?}", b.problems);
        assert!(b.problems[0].message.contains("50 server connections"));
    }
}
