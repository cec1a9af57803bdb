//! postgresql.conf: memory, connections, WAL and checkpoints, parallelism,
//! I/O, autovacuum, logging. Each concern is a function; each setting says
//! why it has its value.

use crate::facts::{Sourced, StorageKind};
use crate::profile::{Profile, Workload};
use crate::units::ByteSize;
use crate::version::PgVersion;

use super::memory::Allocation;
use super::{Host, Sections};

pub fn settings(profile: &Profile, host: &Host, alloc: &Allocation) -> Sections {
    let mut s = Sections::default();
    connections(&mut s, profile, alloc);
    memory(&mut s, profile, host, alloc);
    wal(&mut s, profile, host, alloc);
    parallelism(&mut s, host, alloc);
    io(&mut s, profile, host, alloc);
    autovacuum(&mut s, profile, host, alloc);
    logging(&mut s, profile, alloc);
    // A parameter the target version lacks must never reach it: the
    // version's catalog (from the real server) decides.
    let cat = crate::read::catalog::PgCatalog::get(host.pg_version.value);
    for sec in &mut s.0 {
        sec.settings.retain(|x| {
            // Extension placeholders (pg_stat_statements.max) are
            // accepted by every version.
            x.name.contains('.')
                || matches!(cat.lookup(&x.name), crate::read::catalog::Lookup::Known(_))
        });
    }
    s.0.retain(|sec| !sec.settings.is_empty());
    clamp_to_ranges(&mut s, host.pg_version.value);
    s
}

/// Every number inside the parameter's real range for the version, for
/// any host size (a 17 TiB host's page cache is more than
/// effective_cache_size can say), with the clamp in the reason.
fn clamp_to_ranges(s: &mut Sections, version: PgVersion) {
    use crate::read::catalog::{Lookup, PgCatalog, VarType};
    let cat = PgCatalog::get(version);
    for x in s.0.iter_mut().flat_map(|sec| sec.settings.iter_mut()) {
        let Lookup::Known(p) = cat.lookup(&x.name) else {
            continue;
        };
        if !matches!(p.vartype, VarType::Integer | VarType::Real) {
            continue;
        }
        let Ok(v) = crate::read::pgvalue::number(p, &x.value) else {
            continue;
        };
        let (bound, which) = match (p.min, p.max) {
            (_, Some(max)) if v > max => (max, "maximum"),
            (Some(min), _) if v < min => (min, "minimum"),
            _ => continue,
        };
        let was = x.value.clone();
        x.value = crate::read::pgvalue::format_number(p, bound);
        x.reason = format!(
            "{}; {was} clamped to PostgreSQL {version}'s {which}",
            x.reason
        );
    }
}

fn quoted(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn connections(s: &mut Sections, profile: &Profile, alloc: &Allocation) {
    let p = &profile.postgres;
    let pg = &alloc.pg;
    s.section("Connections")
        .set(
            "listen_addresses",
            quoted(&p.listen),
            if p.listen == "127.0.0.1" || p.listen == "localhost" {
                "loopback only; the profile says when clients come from elsewhere"
            } else {
                "the profile's listen address"
            },
        )
        .set("port", p.port, "the profile's port")
        .set(
            "max_connections",
            pg.max_connections,
            pg.connections_reason.clone(),
        )
        .set(
            "superuser_reserved_connections",
            pg.superuser_reserved,
            "slots an administrator can still use when the pools are full",
        )
        .set(
            "password_encryption",
            quoted("scram-sha-256"),
            "md5 is weak and was still the default in 13; PgBouncer authenticates with SCRAM",
        )
        .set(
            "idle_in_transaction_session_timeout",
            quoted("10min"),
            "a session left idle inside a transaction holds locks and stops vacuum",
        );
}

fn memory(s: &mut Sections, profile: &Profile, host: &Host, alloc: &Allocation) {
    let pg = &alloc.pg;
    let p = &profile.postgres;
    let sec = s.section("Memory");
    sec.set(
        "shared_buffers",
        pg.shared_buffers.pg(),
        if pg.shared_buffers == p.shared_buffers_max {
            format!(
                "the profile's cap ({} of {} would be more)",
                p.shared_buffers_fraction.0, pg.share
            )
        } else {
            {
                // Only what this host has: "the OS and Redis", not a list
                // with reservations that are not there.
                let mut before = vec!["the OS"];
                if !profile.reserve.is_empty() {
                    before.push("reservations");
                }
                if alloc.redis.is_some() {
                    before.push("Redis");
                }
                if alloc.arc.is_some() {
                    before.push("the ZFS ARC");
                }
                let last = before.pop().unwrap_or("the OS");
                let listed = if before.is_empty() {
                    last.to_string()
                } else {
                    format!("{} and {last}", before.join(", "))
                };
                format!(
                    "{:.0}% of the {} PostgreSQL gets after {listed}",
                    p.shared_buffers_fraction.0 * 100.0,
                    pg.share,
                )
            }
        },
    );
    sec.set(
        "huge_pages",
        if pg.huge_pages.is_some() { "on" } else { "off" },
        match pg.huge_pages {
            Some(n) => format!(
                "{n} huge pages are reserved in sysctl; `on`, not `try`: a fallback would leave them idle \
                 and allocate shared memory twice"
            ),
            None => "no huge pages are reserved for this host; `try` would hide a misconfiguration".into(),
        },
    );
    if pg.huge_pages.is_some() {
        sec.set(
            "huge_page_size",
            0,
            "the kernel's default huge page size: the one vm.nr_hugepages reserves (2 MiB on x86-64)",
        );
    }
    if let Some(w) = pg.wal_buffers {
        sec.set(
            "wal_buffers",
            w.pg(),
            "many concurrent COPY streams fill the automatic 16 MB before the WAL writer drains it",
        );
    }
    sec.set("work_mem", pg.work_mem.pg(), pg.work_mem_reason.clone());
    sec.set(
        "hash_mem_multiplier",
        format!("{:.1}", pg.hash_mem_multiplier),
        if host.pg_version.value >= 15 {
            "the default since 15, written out because the budget multiplies by it"
        } else {
            "the default before 15, written out because the budget multiplies by it"
        },
    );
    sec.set(
        "maintenance_work_mem",
        pg.maintenance_work_mem.pg(),
        match p.maintenance_work_mem {
            Some(v) if v == pg.maintenance_work_mem => "the profile's value".to_string(),
            Some(v) => format!(
                "the profile asks {v}; a 16th of PostgreSQL's {} share fits",
                pg.share
            ),
            None if pg.maintenance_work_mem < ByteSize::mib(64) => format!(
                "a 16th of PostgreSQL's {} share, below PostgreSQL's default 64 MB: the budget \
                 of this small host has no more room (VACUUM and index builds take more passes); \
                 {}",
                pg.share,
                match pg.max_parallel_maintenance {
                    0 => "the leader sorts alone: PostgreSQL plans a parallel index worker only \
                          for each 32 MB"
                        .to_string(),
                    w => format!(
                        "it feeds {w} parallel index worker{} at 32 MB each",
                        if w == 1 { "" } else { "s" }
                    ),
                }
            ),
            None => format!(
                "{}; no more: a B-tree build sorts in runs of this size, and larger runs cost \
                 more CPU (BENCHMARKS.md section 5). A GIN build, or a manual VACUUM of many dead \
                 rows before 17, can SET more in its session (outside this budget); autovacuum \
                 has autovacuum_work_mem. Each manual session holds it, and the budget counts them",
                match pg.max_parallel_maintenance {
                    0 =>
                        "PostgreSQL's default 64 MB: with half this host's CPUs no parallel index \
                          worker is asked, and the leader sorts alone"
                            .to_string(),
                    w => format!(
                        "32 MB for each of the {} participants of a parallel index build (the \
                         leader and {w} worker{}; PostgreSQL plans a worker only for each 32 MB), \
                         at least PostgreSQL's default 64 MB",
                        w + 1,
                        if w == 1 { "" } else { "s" }
                    ),
                }
            ),
        },
    );
    sec.set(
        "autovacuum_work_mem",
        pg.autovacuum_work_mem.pg(),
        format!(
            "dead-tuple memory per autovacuum worker, separate from maintenance_work_mem; {} workers x this is budgeted{}",
            pg.autovacuum_workers,
            if host.pg_version.value < 17 { " (at most 1 GB is used before 17)" } else { "" }
        ),
    );
    sec.set(
        "effective_cache_size",
        pg.effective_cache_size.pg(),
        if alloc.arc.is_some() && host.pg_on_zfs.value {
            "shared_buffers + the ZFS ARC cap: on ZFS the ARC, not the page cache, holds the data".to_string()
        } else if pg.effective_cache_size == super::memory::cache_cap(host.ram.value) {
            format!(
                "{:.0}% of RAM: shared_buffers + the page cache left at a typical moment would be \
                 more, but pages in shared_buffers are often in the page cache too (PostgreSQL \
                 reads through it), so the sum counts them twice; a planner hint, allocates nothing",
                super::memory::CACHE_RAM_SHARE * 100.0
            )
        } else {
            "shared_buffers + the page cache left at a typical moment; a planner hint, allocates nothing".to_string()
        },
    );
}

fn wal(s: &mut Sections, profile: &Profile, host: &Host, alloc: &Allocation) {
    let replication = profile.postgres.replication;
    let sec = s.section("WAL and checkpoints");
    if replication {
        sec.set(
            "wal_level",
            "replica",
            "replicas and point-in-time recovery need it",
        );
        sec.set(
            "max_wal_senders",
            alloc.pg.wal_senders,
            if alloc.pg.wal_senders >= 5 {
                "two replicas, two base backups and one spare"
            } else {
                "one replica and one base backup: each sender is a process a small host pays for"
            },
        );
    } else {
        sec.set(
            "wal_level",
            "minimal",
            "the profile has no replicas and no PITR: COPY into a table created or truncated in the \
             same transaction skips WAL (about 1.1x faster); replication and point-in-time recovery are given up",
        );
        sec.set("max_wal_senders", 0, "wal_level = minimal requires it");
    }
    let (compression, why) = wal_compression(host);
    sec.set("wal_compression", compression, why);
    checkpoints(
        sec,
        profile.workload,
        alloc.pg.shared_buffers,
        host.wal_space.as_ref(),
    );
    commit_delay(sec, profile.workload, host);
    load_writeback(sec, profile.workload, replication);
    zfs_wal(sec, host);
    if host.pg_version.value >= 17 && replication {
        sec.set(
            "summarize_wal",
            "off",
            "only incremental backups (pg_basebackup --incremental) need it; turn on if you use them",
        );
    }
}

/// lz4 where the build is known to have it, pglz otherwise (13 and 14
/// know only `on`): a value the build lacks stops the server.
fn wal_compression(host: &Host) -> (&'static str, String) {
    match host.pg_version.value.major() {
        ..=14 => (
            "on",
            "less WAL for full-page images (pglz: 13 and 14 know no other)".to_string(),
        ),
        _ if host.pg_build_has("lz4") => (
            "lz4",
            format!(
                "less WAL for full-page images at little CPU cost; this build has lz4 ({})",
                host.pg_build.source
            ),
        ),
        _ => (
            "pglz",
            format!(
                "less WAL for full-page images; pglz, because lz4 (faster) works only on builds with it \
                 and this one is {} (render with facts from the host to use lz4)",
                match &host.pg_build.value {
                    Some(_) => "without it",
                    None => "not known",
                }
            ),
        ),
    }
}

/// shared_buffers below which a web or mixed host checkpoints every 5
/// minutes (not a mixed host's 10): recovery stays short on a small host.
const SMALL_HOST_SHARED_BUFFERS: ByteSize = ByteSize::mib(512);

/// The share of pg_wal's filesystem max_wal_size may take: a tenth.
/// max_wal_size is a soft limit (PostgreSQL's docs: heavy load or a
/// failing archive_command can pass it) and a full pg_wal stops the
/// server, so the WAL dbtune asks for stays a small part of the disk and
/// the data and any overshoot have the rest.
pub const WAL_SPACE_SHARE: u64 = 10;

/// max_wal_size's and min_wal_size's lower bound: two 16 MB segments.
const WAL_SIZE_FLOOR: ByteSize = ByteSize::mib(32);

/// The most max_wal_size dbtune writes or proposes for pg_wal on a
/// filesystem of `space`: a tenth of it, in whole 16 MB segments, at least
/// two of them.
pub fn wal_space_cap(space: ByteSize) -> ByteSize {
    ByteSize(space.0 / WAL_SPACE_SHARE)
        .floor_to(ByteSize::mib(16))
        .max(WAL_SIZE_FLOOR)
}

/// WAL kept and checkpoint spacing, by workload and, for mixed, by the
/// host's size (shared_buffers); max_wal_size kept within a tenth of the
/// filesystem pg_wal is on, when its size is known.
fn checkpoints(
    sec: &mut super::Section,
    workload: Workload,
    shared_buffers: ByteSize,
    wal_space: Option<&Sourced<ByteSize>>,
) {
    let small = shared_buffers < SMALL_HOST_SHARED_BUFFERS;
    // A small host's write burst forces checkpoints by WAL volume as a large
    // one's does, and each starts the full-page images over: measured at
    // 4 GiB with data larger than RAM (BENCHMARKS.md section 5), 1 GB
    // forced one checkpoint in 112 s of TPC-B and 1.29 full-page images
    // per transaction, 4 GB none and 1.16.
    let small_why = format!(
        "a small host (shared_buffers {}, under 512 MB) still writes in bursts: 4 GB of WAL \
         (PGTune's web) lets checkpoints come by time, not forced by size, each of which starts \
         the full-page images over; 5 minutes keeps recovery short",
        shared_buffers.pg()
    );
    let (min_wal, max_wal, timeout, why) = match workload {
        Workload::Web | Workload::Mixed if small => (1, 4, "5min", small_why),
        Workload::Web => (
            1,
            4,
            "5min",
            format!(
                "short web writes with shared_buffers {}: 4 GB of WAL (PGTune's web) lets \
                 checkpoints come by time, not forced by size, and 5 minutes keeps recovery short",
                shared_buffers.pg()
            ),
        ),
        Workload::Ingest => (
            2,
            8,
            "15min",
            "bulk loads write WAL fast: checkpoints by time, not by size".to_string(),
        ),
        Workload::Mixed => (
            1,
            4,
            "10min",
            "spread checkpoints over a busy mixed load".to_string(),
        ),
        Workload::Analytics => (
            1,
            8,
            "15min",
            "a reporting database writes in batch loads: checkpoints by time, not by size"
                .to_string(),
        ),
    };
    let (min_wal, max_wal) = (ByteSize::gib(min_wal), ByteSize::gib(max_wal));
    let wal = wal_sizes(min_wal, max_wal, wal_space);
    sec.set("min_wal_size", wal.min.pg(), wal.min_why);
    sec.set(
        "max_wal_size",
        wal.max.pg(),
        format!("{why}{}", wal.max_why),
    );
    sec.set("checkpoint_timeout", timeout, why);
    sec.set(
        "checkpoint_completion_target",
        "0.9",
        "spread checkpoint writes over 90% of the interval (the default since 14)",
    );
}

/// min_wal_size and max_wal_size after the disk's word, with what to add
/// to their reasons.
#[derive(Debug, PartialEq)]
struct WalSizes {
    min: ByteSize,
    max: ByteSize,
    min_why: String,
    /// Appended to the policy's reason for max_wal_size.
    max_why: String,
}

/// The policy's WAL sizes, or a tenth of pg_wal's filesystem when that is
/// less (min_wal_size then a quarter of it, the policy's own ratio).
fn wal_sizes(min: ByteSize, max: ByteSize, space: Option<&Sourced<ByteSize>>) -> WalSizes {
    let kept = "WAL segments kept for reuse".to_string();
    let Some(space) = space else {
        return WalSizes {
            min,
            max,
            min_why: kept,
            max_why: format!(
                "; the size of pg_wal's filesystem is not known (render with facts from the host): \
                 it should be at least {WAL_SPACE_SHARE} times this, since max_wal_size is a soft \
                 limit and a full pg_wal stops PostgreSQL"
            ),
        };
    };
    let cap = wal_space_cap(space.value);
    if max <= cap {
        return WalSizes {
            min,
            max,
            min_why: kept,
            max_why: format!(
                "; pg_wal's filesystem is {} ({}), {WAL_SPACE_SHARE} times this or more",
                space.value, space.source
            ),
        };
    }
    let capped_min = ByteSize(cap.0 / 4)
        .floor_to(ByteSize::mib(16))
        .max(WAL_SIZE_FLOOR)
        .min(min);
    WalSizes {
        min: capped_min,
        max: cap,
        min_why: if capped_min < min {
            format!("{kept}; a quarter of max_wal_size, which pg_wal's filesystem caps")
        } else {
            kept
        },
        max_why: format!(
            "; but {} at most here: a tenth of pg_wal's filesystem, {} ({}). max_wal_size is a \
             soft limit (heavy writes or a failing archive pass it) and a full pg_wal stops \
             PostgreSQL, so the data and any overshoot keep the rest; checkpoints come by size \
             sooner than the policy's {}",
            cap.pg(),
            space.value,
            space.source,
            max.pg()
        ),
    }
}

/// Microseconds a committing backend waits, when enough others are in a
/// transaction, so that one WAL flush carries several commits.
const COMMIT_DELAY_US: u32 = 300;

/// Fewer flushes for the same commits, where commits are many and short
/// (web, mixed) and a flush is slow enough to share: an SSD or a cloud
/// volume (0.68 ms measured on a disk throttled to gp3's baseline; other
/// SSDs unmeasured). At the staging host (4 GiB, that disk, 8 clients)
/// the durable write path's cost was the commit flush, and 300 us gave
/// 1.11x the transactions a second, apart over 6 runs. Not on NVMe, whose
/// flush can be shorter than the wait, nor on a spinning disk, where it
/// is unmeasured. Every commit still waits for its own flush: nothing is
/// lost in a crash.
fn commit_delay(sec: &mut super::Section, workload: Workload, host: &Host) {
    if !matches!(workload, Workload::Web | Workload::Mixed)
        || host.storage.value != StorageKind::Ssd
    {
        return;
    }
    sec.set(
        "commit_delay",
        COMMIT_DELAY_US,
        format!(
            "many short commits on an SSD or a cloud volume, where a WAL flush is slow enough to \
             share (0.68 ms measured on a disk throttled to gp3's baseline): a commit waits {COMMIT_DELAY_US} \
             microseconds (about half that flush, as the docs advise) \
             when at least 5 other transactions are open (commit_siblings), so one flush carries \
             several commits; each still waits for its flush, and a quiet host never waits. Measured on \
             the 4 GiB staging host (TPC-B, 8 clients): 1.11x the transactions a second, apart \
             over 6 runs (BENCHMARKS.md section 5)"
        ),
    );
}

/// The most backend_flush_after takes: 256 pages of 8 kB.
const LOAD_FLUSH_AFTER: &str = "2MB";

/// Writeback started while a load writes, where its commit would
/// otherwise write the whole table. With wal_level = minimal, a COPY into
/// a table created or truncated in the same transaction writes no WAL and
/// syncs the table's files at commit instead, so all of it still in the
/// page cache is written while the commit waits. backend_flush_after has
/// the backend ask the kernel to start writing every 2 MB it writes, so
/// the disk works during the COPY's CPU-bound parsing, not after it.
/// Ingest hosts without replication only: with WAL the commit syncs no
/// table (the checkpointer does, spreading it already), and a web host's
/// backends evict pages they will dirty again, which early writeback
/// writes more than once (PostgreSQL's reason for the default 0).
fn load_writeback(sec: &mut super::Section, workload: Workload, replication: bool) {
    if replication || workload != Workload::Ingest {
        return;
    }
    sec.set(
        "backend_flush_after",
        LOAD_FLUSH_AFTER,
        "wal_level = minimal: a COPY into a table created or truncated in its transaction syncs the \
         table at commit; starting writeback every 2MB a backend writes lets the disk work during the \
         COPY instead of after it. On the 6 GiB ingest host's initial load (5 M rows, 365 MB; two sets of 5 \
         runs): 1.53 s against 1.65-1.67 without it by the medians (the ranges overlap), 1.05x the no-WAL \
         floor against 1.14-1.15x, iowait 0.3% against 4.2-4.6% (BENCHMARKS.md section 5)",
    );
}

/// The settings copy-on-write makes safe. Only when the data (and WAL)
/// directory is on ZFS: ZFS tools being installed, or a pool elsewhere on
/// the host, proves nothing, and on any other filesystem
/// full_page_writes = off can corrupt data in a crash.
fn zfs_wal(sec: &mut super::Section, host: &Host) {
    if host.pg_on_zfs.value {
        sec.set(
            "full_page_writes",
            "off",
            format!(
                "ZFS never writes a partial record (copy-on-write), so torn pages cannot happen: \
                 the data directory is on ZFS ({})",
                host.pg_on_zfs.source
            ),
        );
        sec.set(
            "wal_init_zero",
            "off",
            "zero-filling WAL files gains nothing on copy-on-write ZFS",
        );
        sec.set(
            "wal_recycle",
            "off",
            "recycled WAL files are rewritten anyway on copy-on-write ZFS",
        );
    }
}

fn parallelism(s: &mut Sections, host: &Host, alloc: &Allocation) {
    let pg = &alloc.pg;
    let cpus = host.cpus.value;
    s.section("Parallelism")
        .set(
            "max_worker_processes",
            pg.max_worker_processes,
            if pg.max_worker_processes >= pg.max_parallel_workers + 4 {
                "parallel workers + 4 for extensions and logical replication"
            } else {
                "parallel workers + 2 for extensions: each slot is a process a small host pays for"
            },
        )
        .set(
            "max_parallel_workers",
            pg.max_parallel_workers,
            if cpus > 1 && pg.max_parallel_workers == cpus {
                format!("one per CPU ({cpus}, {})", host.cpus.source)
            } else if cpus > 1 {
                format!(
                    "one per CPU, at most {}: {cpus} CPUs ({}), and each worker is a process with \
                     its own work_mem in the budget",
                    pg.max_parallel_workers, host.cpus.source
                )
            } else {
                "one CPU: parallel query would only add overhead".to_string()
            },
        )
        .set(
            "max_parallel_workers_per_gather",
            pg.max_parallel_per_gather,
            "half the CPUs, capped for the workload so one query cannot take them all",
        )
        .set(
            "max_parallel_maintenance_workers",
            pg.max_parallel_maintenance,
            "half the CPUs, at most 4, and no more than maintenance_work_mem gives 32 MB each \
             with the leader (PostgreSQL plans fewer otherwise: plan_create_index_workers)",
        );
}

fn io(s: &mut Sections, profile: &Profile, host: &Host, alloc: &Allocation) {
    let (rpc, eic, why) = match host.storage.value {
        StorageKind::Nvme => (
            "1.1",
            256,
            "NVMe: random reads cost about what sequential ones do",
        ),
        StorageKind::Ssd => (
            "1.1",
            200,
            "SSD: random reads cost about what sequential ones do",
        ),
        StorageKind::Hdd => ("4.0", 2, "spinning disk: random reads are expensive"),
    };
    let sec = s.section("I/O");
    sec.set(
        "random_page_cost",
        rpc,
        format!("{why} ({})", host.storage.source),
    );
    sec.set(
        "effective_io_concurrency",
        eic,
        format!(
            "concurrent prefetch requests the {} device can serve",
            host.storage.value
        ),
    );
    sec.set(
        "maintenance_io_concurrency",
        eic,
        "the same, for VACUUM and index builds",
    );
    // Larger reads for sequential scans and bulk work on fast storage;
    // 256 kB is the most 17 accepts. 18 caps it by io_max_combine_limit.
    let bulk = profile.workload != Workload::Web && host.storage.value != StorageKind::Hdd;
    let combine = if bulk { "256kB" } else { "128kB" };
    sec.set(
        "io_max_combine_limit",
        combine,
        "the cap io_combine_limit cannot exceed (18+), set at start",
    );
    sec.set(
        "io_combine_limit",
        combine,
        if bulk {
            "read up to 256 kB at once in sequential scans and bulk work: fast storage serves large reads well"
        } else {
            "the default 128 kB: short web queries read little sequentially"
        },
    );
    if host.pg_version.value >= 18 {
        sec.set(
            "io_method",
            "worker",
            "asynchronous I/O through worker processes works everywhere; io_uring needs kernel support",
        );
        sec.set(
            "io_workers",
            alloc.pg.io_workers,
            "a quarter of the CPUs, at least 3 (the default), counted as processes in the budget",
        );
    }
}

fn autovacuum(s: &mut Sections, profile: &Profile, host: &Host, alloc: &Allocation) {
    let workers = alloc.pg.autovacuum_workers;
    let sec = s.section("Autovacuum");
    sec.set(
        "autovacuum",
        "on",
        "never off: without it tables bloat and transaction IDs wrap around",
    );
    sec.set(
        "autovacuum_max_workers",
        workers,
        "the profile's value; each may use autovacuum_work_mem",
    );
    sec.set(
        "autovacuum_worker_slots",
        workers,
        "slots reserved at start (18+); equal to autovacuum_max_workers so the budget counts what can run",
    );
    sec.set(
        "autovacuum_vacuum_scale_factor",
        "0.1",
        "vacuum after 10% of a table changes, not the default 20%",
    );
    sec.set(
        "autovacuum_analyze_scale_factor",
        "0.05",
        "keep planner statistics fresh after 5% changes",
    );
    if profile.workload == Workload::Analytics {
        sec.set(
            "default_statistics_target",
            500,
            "long queries filter and join on skewed columns: 5x the default histogram and \
             common values (PGTune's for a warehouse); ANALYZE reads more rows and takes longer",
        );
    }
    if profile.workload != Workload::Web {
        sec.set(
            "autovacuum_vacuum_insert_scale_factor",
            "0.05",
            "tables that only grow still need vacuum to set visibility bits and freeze",
        );
    }
    // Only fast storage takes the faster rate; a spinning disk keeps the
    // default (200), or vacuum starves the queries' I/O.
    if host.storage.value != StorageKind::Hdd {
        sec.set(
            "autovacuum_vacuum_cost_limit",
            2000,
            format!(
                "{} storage can take ten times the default vacuum I/O rate",
                host.storage.value
            ),
        );
    }
    if profile.workload != Workload::Web {
        sec.set(
            "autovacuum_vacuum_max_threshold",
            10_000_000,
            "at most 10 million dead rows before vacuum, whatever a big table's scale factor says (18+)",
        );
        let ring = if alloc.pg.shared_buffers >= crate::units::ByteSize::gib(1) {
            "16MB"
        } else {
            "2MB"
        };
        sec.set(
            "vacuum_buffer_usage_limit",
            ring,
            "VACUUM's ring of shared buffers (16+): a larger ring vacuums big tables faster, with fewer \
             WAL flushes; it is taken from shared_buffers, so it costs no extra memory",
        );
    }
}

fn logging(s: &mut Sections, profile: &Profile, alloc: &Allocation) {
    if profile.postgres.query_stats {
        s.section("Query statistics")
            .set(
                "shared_preload_libraries",
                quoted("pg_stat_statements"),
                format!(
                    "the profile wants query statistics; pg_stat_statements keeps {} entries in shared memory \
                     (counted in the budget); CREATE EXTENSION pg_stat_statements to read them",
                    super::memory::PGSS_MAX
                ),
            )
            .set(
                "pg_stat_statements.max",
                super::memory::PGSS_MAX,
                "the extension's default: about 2.5 MiB of shared memory",
            )
            .set(
                "pg_stat_statements.track",
                "top",
                "statements sent by clients, not those inside functions",
            );
    }
    let sec = s.section("Logging");
    sec.set(
        "log_min_duration_statement",
        quoted("1s"),
        "log queries slower than a second",
    );
    sec.set(
        "log_temp_files",
        quoted("8MB"),
        format!(
            "log sorts and hashes that spill past work_mem ({}) so you can see which queries want more",
            alloc.pg.work_mem
        ),
    );
    sec.set(
        "log_checkpoints",
        "on",
        "checkpoint timing shows whether max_wal_size is right",
    );
    sec.set(
        "log_lock_waits",
        "on",
        "log waits longer than deadlock_timeout",
    );
    if !jit_on(profile) {
        sec.set(
            "jit",
            "off",
            match profile.workload {
                Workload::Web => "short web queries pay JIT compile time and rarely gain from it",
                _ => "a JIT-compiled query holds ~16 MiB more (measured); many mixed connections pay \
                      that in memory for little CPU",
            },
        );
    }
}

/// JIT stays on only for the ingest and analytics workloads (long queries); its
/// memory is then in the budget.
pub fn jit_on(profile: &Profile) -> bool {
    matches!(profile.workload, Workload::Ingest | Workload::Analytics)
}

/// One table per concern: each row is a host or profile difference and the
/// settings it must lead to.
#[cfg(test)]
mod tests {
    use super::super::fixture::{host, plan_of, profile, value};
    use super::*;
    use crate::read::catalog::{Lookup, PgCatalog};

    #[test]
    fn wal_level_and_senders_follow_replication() {
        // (profile, replication, host GiB, wal_level, max_wal_senders)
        let rows = [
            ("low-memory", true, 4, "replica", "2"),
            ("low-memory", false, 4, "minimal", "0"),
            ("powerhouse", true, 64, "replica", "5"),
            ("bulk-ingest", false, 32, "minimal", "0"),
        ];
        for (name, replication, gib, level, senders) in rows {
            let mut p = profile(name);
            p.postgres.replication = replication;
            let plan = plan_of(&p, &host(&p, gib, 8, 16));
            let row = format!("{name} replication={replication}");
            assert_eq!(value(&plan.postgres, "wal_level"), Some(level), "{row}");
            assert_eq!(
                value(&plan.postgres, "max_wal_senders"),
                Some(senders),
                "{row}"
            );
        }
    }

    #[test]
    fn commit_delay_only_where_many_short_commits_share_a_slow_flush() {
        // (profile, storage, commit_delay)
        let rows = [
            ("low-memory", StorageKind::Ssd, Some("300")),
            ("postgres-only", StorageKind::Ssd, Some("300")),
            ("powerhouse", StorageKind::Ssd, Some("300")),
            ("low-memory", StorageKind::Nvme, None),
            ("low-memory", StorageKind::Hdd, None),
            ("bulk-ingest", StorageKind::Ssd, None),
        ];
        for (name, storage, want) in rows {
            let p = profile(name);
            let mut h = host(&p, 16, 4, 16);
            h.storage.value = storage;
            let plan = plan_of(&p, &h);
            let row = format!("{name} on {storage}");
            assert_eq!(value(&plan.postgres, "commit_delay"), want, "{row}");
            if want.is_some() {
                let x = plan.postgres.0.iter().flat_map(|sec| &sec.settings);
                let x = x.clone().find(|x| x.name == "commit_delay").unwrap();
                assert!(x.reason.contains("commit_siblings"), "{row}: {}", x.reason);
                // The wait only pays where others commit: the server's
                // own gate is left as it is.
                assert_eq!(value(&plan.postgres, "commit_siblings"), None, "{row}");
            }
        }
    }

    #[test]
    fn backend_writeback_only_where_a_load_syncs_its_table_at_commit() {
        // (profile, workload, replication, backend_flush_after)
        let rows = [
            ("bulk-ingest", Workload::Ingest, false, Some("2MB")),
            ("bulk-ingest", Workload::Ingest, true, None),
            ("low-memory", Workload::Web, false, None),
            ("postgres-only", Workload::Mixed, false, None),
            ("postgres-only", Workload::Analytics, false, None),
        ];
        for (name, workload, replication, want) in rows {
            let mut p = profile(name);
            p.workload = workload;
            p.postgres.replication = replication;
            let plan = plan_of(&p, &host(&p, 32, 8, 16));
            let row = format!("{name} {workload:?} replication={replication}");
            assert_eq!(value(&plan.postgres, "backend_flush_after"), want, "{row}");
            if want.is_some() {
                assert_eq!(value(&plan.postgres, "wal_level"), Some("minimal"), "{row}");
            }
        }
    }

    #[test]
    fn max_wal_size_stays_within_a_tenth_of_the_wal_filesystem() {
        // (profile, pg_wal's filesystem in GiB, min_wal_size, max_wal_size)
        let rows = [
            ("low-memory", None, "1GB", "4GB"),
            ("low-memory", Some(100), "1GB", "4GB"),
            ("low-memory", Some(40), "1GB", "4GB"),
            ("low-memory", Some(20), "512MB", "2GB"),
            ("low-memory", Some(8), "192MB", "816MB"),
            ("bulk-ingest", Some(1000), "2GB", "8GB"),
            ("bulk-ingest", Some(50), "1280MB", "5GB"),
        ];
        for (name, gib, min, max) in rows {
            let p = profile(name);
            let mut h = host(&p, 32, 8, 16);
            h.wal_space = gib.map(|g| Sourced::new(ByteSize::gib(g), "facts.json"));
            let plan = plan_of(&p, &h);
            let row = format!("{name} on {gib:?} GiB");
            assert_eq!(value(&plan.postgres, "min_wal_size"), Some(min), "{row}");
            assert_eq!(value(&plan.postgres, "max_wal_size"), Some(max), "{row}");
            let why = &plan
                .postgres
                .0
                .iter()
                .flat_map(|s| &s.settings)
                .find(|s| s.name == "max_wal_size")
                .expect("rendered")
                .reason;
            match gib {
                None => assert!(why.contains("is not known"), "{row}: {why}"),
                Some(_) => assert!(why.contains("facts.json"), "{row}: {why}"),
            }
        }
        // The smallest filesystem a facts file may name still gets two segments.
        let tiny = Sourced::new(ByteSize::mib(64), "facts.json");
        let w = wal_sizes(ByteSize::gib(1), ByteSize::gib(4), Some(&tiny));
        assert_eq!((w.min.pg(), w.max.pg()), ("32MB".into(), "32MB".into()));
    }

    #[test]
    fn wal_compression_only_names_what_the_build_has() {
        // (major, build, value)
        let lz4 = Some(vec!["lz4".to_string()]);
        let rows = [
            (13, None, "on"),
            (14, lz4.clone(), "on"),
            (15, lz4.clone(), "lz4"),
            (16, Some(vec![]), "pglz"),
            (17, None, "pglz"),
            (18, lz4, "lz4"),
        ];
        for (major, build, want) in rows {
            let mut h = host(&profile("bulk-ingest"), 8, 4, major);
            h.pg_build.value = build.clone();
            assert_eq!(wal_compression(&h).0, want, "PostgreSQL {major}, {build:?}");
        }
    }

    #[test]
    fn zfs_only_settings_need_the_data_on_zfs() {
        // (ZFS in use on the host, data directory on ZFS, full_page_writes)
        let rows = [
            (false, false, None),
            (true, false, None),
            (true, true, Some("off")),
        ];
        for (zfs, pg_on_zfs, fpw) in rows {
            let mut h = host(&profile("powerhouse"), 64, 16, 16);
            (h.zfs.value, h.pg_on_zfs.value) = (zfs, pg_on_zfs);
            let plan = plan_of(&profile("powerhouse"), &h);
            let row = format!("zfs={zfs} pg_on_zfs={pg_on_zfs}");
            for name in ["full_page_writes", "wal_init_zero", "wal_recycle"] {
                assert_eq!(value(&plan.postgres, name), fpw, "{name}, {row}");
            }
        }
    }

    #[test]
    fn checkpoints_are_spaced_by_workload() {
        // (workload, shared_buffers, max_wal_size, checkpoint_timeout):
        // a small host's bursts get 4 GB as a large one's do (a forced
        // checkpoint costs it full-page images all the same); a small mixed
        // host checkpoints every 5 minutes, not 10.
        let rows = [
            (Workload::Web, ByteSize::mib(335), "4GB", "5min"),
            (Workload::Web, ByteSize::gib(16), "4GB", "5min"),
            (Workload::Ingest, ByteSize::mib(335), "8GB", "15min"),
            (Workload::Mixed, ByteSize::mib(143), "4GB", "5min"),
            (Workload::Mixed, ByteSize::gib(3), "4GB", "10min"),
            (Workload::Analytics, ByteSize::mib(512), "8GB", "15min"),
        ];
        for (workload, sb, max_wal, timeout) in rows {
            let mut s = Sections::default();
            checkpoints(s.section("t"), workload, sb, None);
            assert_eq!(value(&s, "max_wal_size"), Some(max_wal), "{workload:?}");
            assert_eq!(
                value(&s, "checkpoint_timeout"),
                Some(timeout),
                "{workload:?}"
            );
        }
    }

    #[test]
    fn version_specific_settings_appear_only_where_they_exist() {
        // (major, replication, summarize_wal, io_workers set)
        let rows = [
            (16, true, None, false),
            (17, true, Some("off"), false),
            (17, false, None, false),
            (18, true, Some("off"), true),
        ];
        for (major, replication, summarize, io) in rows {
            let mut p = profile("bulk-ingest");
            p.postgres.replication = replication;
            let plan = plan_of(&p, &host(&p, 32, 8, major));
            let row = format!("PostgreSQL {major}, replication={replication}");
            assert_eq!(value(&plan.postgres, "summarize_wal"), summarize, "{row}");
            assert_eq!(value(&plan.postgres, "io_workers").is_some(), io, "{row}");
            // Nothing the version lacks, whatever the profile.
            let cat = PgCatalog::get(PgVersion::of(major));
            for x in plan.postgres.0.iter().flat_map(|s| &s.settings) {
                assert!(
                    x.name.contains('.') || matches!(cat.lookup(&x.name), Lookup::Known(_)),
                    "{} on {row}",
                    x.name
                );
            }
        }
    }

    #[test]
    fn parallel_workers_follow_the_cpus() {
        // (CPUs, max_parallel_workers, per gather for mixed, maintenance)
        let rows = [
            (1, "0", "0", "0"),
            (2, "2", "1", "1"),
            (16, "16", "4", "4"),
            (64, "32", "4", "4"),
        ];
        for (cpus, workers, per_gather, maintenance) in rows {
            let plan = plan_of(
                &profile("powerhouse"),
                &host(&profile("powerhouse"), 64, cpus, 16),
            );
            let row = format!("{cpus} CPUs");
            assert_eq!(
                value(&plan.postgres, "max_parallel_workers"),
                Some(workers),
                "{row}"
            );
            assert_eq!(
                value(&plan.postgres, "max_parallel_workers_per_gather"),
                Some(per_gather),
                "{row}"
            );
            assert_eq!(
                value(&plan.postgres, "max_parallel_maintenance_workers"),
                Some(maintenance),
                "{row}"
            );
        }
    }

    #[test]
    fn jit_is_off_for_short_queries() {
        // (profile, jit)
        let rows = [
            ("low-memory", false),
            ("bulk-ingest", true),
            ("powerhouse", false),
        ];
        for (name, on) in rows {
            assert_eq!(jit_on(&profile(name)), on, "{name}");
        }
    }
}
