//! PostgreSQL's terms: shared memory, processes, work_mem, maintenance,
//! temp buffers, JIT.

use super::*;
use crate::calibration;
use crate::model::*;
use crate::read::effective::*;
use crate::read::settings::ServiceSettings;
use crate::service::Scope;
use crate::units::{ByteSize, MIB};
use crate::version::PgVersion;

pub(super) fn postgres_terms(
    s: &ServiceSettings,
    version: PgVersion,
    build: Option<&[String]>,
    hugepages: Option<ByteSize>,
    a: &Assumptions,
    terms: &mut Vec<Term>,
) -> HeavyQuery {
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
    // jit_above_cost = -1 switches JIT off as surely as jit = off.
    let jit =
        jit_possible(t.pg.bool("jit", true), build) && t.pg.int("jit_above_cost", 100_000) >= 0;
    if jit {
        terms.push(t.jit());
    }
    terms.push(t.autovacuum());
    if a.manual_maintenance > 0 {
        terms.push(t.manual_maintenance());
    }
    if a.temp_tables {
        terms.push(t.temp_buffers());
    }
    t.heavy_query(jit)
}

/// One heavy query as the worst case counts it, for the exposure: the
/// connection's sort/hash nodes at hash_mem, plus JIT where it can happen.
pub(super) struct HeavyQuery {
    pub memory: ByteSize,
    pub source: String,
    pub max_connections: u64,
    pub max_connections_at: String,
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

    /// The worst case's query on one connection: its nodes at hash_mem
    /// x the measured hash factor, and JIT's memory when JIT can run.
    fn heavy_query(&self, jit: bool) -> HeavyQuery {
        let (pg, a, version) = (&self.pg, self.a, self.version());
        let c = calibration::pg(version);
        let work_mem = ByteSize(pg.mem("work_mem", 4 * MIB as i64).max(0) as u64);
        let hmm = pg.real("hash_mem_multiplier", if version >= 15 { 2.0 } else { 1.0 });
        let nodes = work_mem.scale(a.sorts_per_query as f64 * hmm * c.hash);
        let jit_each = if jit { jit_worst(1) } else { ByteSize::ZERO };
        HeavyQuery {
            memory: nodes + jit_each,
            source: format!(
                "{} hash nodes x work_mem {work_mem} x hash_mem_multiplier {hmm} x {:.2} (measured on PostgreSQL {}){}",
                a.sorts_per_query,
                c.hash,
                c.version,
                if jit {
                    format!(" + JIT {jit_each} ({})", calibration::pg_jit_measured_on())
                } else {
                    " (no JIT: off, or the build lacks LLVM)".to_string()
                },
            ),
            max_connections: self.max_conn,
            max_connections_at: pg.src("max_connections"),
        }
    }

    fn jit(&self) -> Term {
        let jit = jit_worst(1);
        let busy_typical = self.busy_typical;
        Term::new(
            Scope::Postgres,
            "JIT",
            jit_worst(self.sorters()),
            jit_worst(busy_typical),
            format!(
                "jit on ({}): a JIT-compiled query holds {jit} more ({}) x ({} connections \
                 + {} parallel workers); typical: {busy_typical} busy",
                self.pg.src("jit"),
                calibration::pg_jit_measured_on(),
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
                "{av_running} workers x {avwm_eff} ({avwm_src}{}); typical: one worker, at most 1 GiB",
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
