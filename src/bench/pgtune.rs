//! A PGTune-style baseline, written from PGTune's published formulas (the
//! "data warehouse" type, which is what people pick for bulk loading), to
//! measure dbtune against what people use today.

use crate::facts::StorageKind;
use crate::units::{ByteSize, KIB, MIB};

/// postgresql.conf lines PGTune would suggest for `ram`, `cpus` and
/// `storage` with the "dw" workload and its default 40 connections.
pub fn dw(
    ram: ByteSize,
    cpus: u32,
    storage: StorageKind,
    pg_version: crate::version::PgVersion,
) -> String {
    let cpus = cpus.max(1);
    let max_connections: u64 = 40;
    let shared_buffers = ram.scale(0.25);
    let effective_cache_size = ram.scale(0.75);
    // RAM/8 for dw, at most 2 GB.
    let maintenance = ram.scale(1.0 / 8.0).min(ByteSize::gib(2));
    // 3% of shared_buffers, at least 32 kB, 16 MB once it passes 14 MB.
    let mut wal_buffers = shared_buffers.scale(0.03).max(ByteSize::kib(32));
    if wal_buffers > ByteSize::mib(14) {
        wal_buffers = ByteSize::mib(16);
    }
    let per_gather = cpus.div_ceil(2);
    // (RAM - shared_buffers) / (connections x 3) / workers per gather, / 2 for dw.
    let work_mem = ByteSize(
        ((ram - shared_buffers).bytes() / (max_connections * 3) / per_gather as u64 / 2)
            .max(64 * KIB),
    )
    .floor_to(ByteSize::kib(1));
    let (rpc, eic) = match storage {
        StorageKind::Hdd => ("4", 2),
        _ => ("1.1", 200),
    };
    let mut s = format!(
        "# PGTune-style \"data warehouse\" settings for {ram}, {cpus} CPUs, {storage} (baseline for dbtune bench)\n\
         max_connections = {max_connections}\n\
         shared_buffers = {}\n\
         effective_cache_size = {}\n\
         maintenance_work_mem = {}\n\
         checkpoint_completion_target = 0.9\n\
         wal_buffers = {}\n\
         default_statistics_target = 500\n\
         random_page_cost = {rpc}\n\
         effective_io_concurrency = {eic}\n\
         work_mem = {}\n\
         min_wal_size = 4GB\n\
         max_wal_size = 16GB\n\
         max_worker_processes = {}\n\
         max_parallel_workers_per_gather = {per_gather}\n\
         max_parallel_workers = {cpus}\n\
         max_parallel_maintenance_workers = {}\n",
        shared_buffers.floor_to(ByteSize(MIB)).pg(),
        effective_cache_size.floor_to(ByteSize(MIB)).pg(),
        maintenance.floor_to(ByteSize(MIB)).pg(),
        wal_buffers.floor_to(ByteSize::kib(1)).pg(),
        work_mem.pg(),
        cpus.max(8),
        per_gather.min(4),
    );
    if pg_version >= 15 {
        s.push_str("wal_compression = lz4\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pgtune_for_a_known_host() {
        // PGTune's dw output for 8 GB, 8 CPUs, HDD (with 100 connections it
        // gives work_mem 2621kB; with its dw default of 40, 6553kB).
        let s = dw(
            ByteSize::gib(8),
            8,
            StorageKind::Hdd,
            crate::version::PgVersion::of(14),
        );
        for line in [
            "shared_buffers = 2GB",
            "effective_cache_size = 6GB",
            "maintenance_work_mem = 1GB",
            "wal_buffers = 16MB",
            "random_page_cost = 4",
            "max_parallel_workers_per_gather = 4",
            "work_mem = 6553kB",
        ] {
            assert!(s.contains(line), "{line} missing from\n{s}");
        }
        assert!(!s.contains("wal_compression"));
    }
}
