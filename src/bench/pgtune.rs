//! The PGTune baseline bench measures dbtune against: PGTune's formulas for
//! each of its database types, followed line by line from its source,
//! le0pard/pgtune `src/features/configuration/configurationSlice.js` at
//! commit 830d3bb36876013e9f56b87faa025b82f4f93e64 (2026-06-09; the
//! repository's HEAD 7caef27c only updates dependencies since) and the
//! formatting and order of `src/common/components/configurationView`.
//!
//! PGTune works in kB with JavaScript numbers (f64) and floors where it
//! says `Math.floor`; so does this, so that the output matches its page to
//! the kB. A setting PGTune leaves out (null, or no parallel settings under
//! 4 CPUs) is left out here too.

use crate::facts::StorageKind;
use crate::units::ByteSize;
use crate::version::PgVersion;

/// PGTune's "DB Type".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbType {
    Web,
    Oltp,
    Dw,
    Desktop,
    Mixed,
}

impl DbType {
    pub fn name(self) -> &'static str {
        match self {
            DbType::Web => "web",
            DbType::Oltp => "oltp",
            DbType::Dw => "dw",
            DbType::Desktop => "desktop",
            DbType::Mixed => "mixed",
        }
    }

    /// The type PGTune users would pick for the host a dbtune profile is
    /// written for (issue #24): a web app on the small staging host, a data
    /// warehouse for bulk loading, OLTP for the many-client host.
    pub fn for_profile(profile: &str) -> DbType {
        match profile {
            "low-memory" => DbType::Web,
            "powerhouse" => DbType::Oltp,
            _ => DbType::Dw,
        }
    }
}

/// PGTune's "database size vs RAM" question (its default: between).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbSize {
    LessRam,
    MidRam,
    GreaterRam,
}

/// What PGTune asks about the host (Linux is assumed: bench runs there).
#[derive(Clone, Copy, Debug)]
pub struct Host {
    pub ram: ByteSize,
    pub cpus: u32,
    pub storage: StorageKind,
    pub pg_version: PgVersion,
    /// None: PGTune's default for the type.
    pub connections: Option<u32>,
    pub db_size: DbSize,
}

const KB_PER_MB: f64 = 1024.0;
const KB_PER_GB: f64 = 1024.0 * 1024.0;

/// PGTune's formatValue: GB or MB only when the value is a whole number of
/// them, else kB.
fn format_kb(kb: f64) -> String {
    if kb % KB_PER_GB == 0.0 {
        format!("{}GB", (kb / KB_PER_GB).floor())
    } else if kb % KB_PER_MB == 0.0 {
        format!("{}MB", (kb / KB_PER_MB).floor())
    } else {
        format!("{kb}kB")
    }
}

/// The settings PGTune prints for `t` on `h`, in its order.
pub fn settings(t: DbType, h: &Host) -> Vec<(&'static str, String)> {
    use DbType::*;
    let total_kb = h.ram.bytes() as f64 / 1024.0;
    let max_connections = h.connections.unwrap_or(match t {
        Web => 200,
        Oltp => 300,
        Dw => 40,
        Desktop => 20,
        Mixed => 100,
    });
    let shared_buffers = match t {
        Desktop => (total_kb / 16.0).floor(),
        _ => (total_kb / 4.0).floor(),
    };
    let huge_pages = if shared_buffers >= 2.0 * KB_PER_GB {
        "try"
    } else {
        "off"
    };
    let effective_cache_size = match t {
        Desktop => (total_kb / 4.0).floor(),
        _ => (total_kb * 3.0 / 4.0).floor(),
    };
    // Capped at 8 GB (2 GB only on Windows).
    let maintenance_work_mem = match t {
        Dw => (total_kb / 8.0).floor(),
        _ => (total_kb / 16.0).floor(),
    }
    .min(8.0 * KB_PER_GB);
    let (min_wal_mb, max_wal_mb) = match t {
        Web => (1024.0, 4096.0),
        Oltp => (2048.0, 8192.0),
        Dw => (4096.0, 16384.0),
        Desktop => (100.0, 2048.0),
        Mixed => (1024.0, 4096.0),
    };
    // 3% of shared_buffers, at most 16 MB, rounded up to 16 MB above 14 MB,
    // at least 32 kB.
    let mut wal_buffers = (3.0 * shared_buffers / 100.0).floor().min(16.0 * KB_PER_MB);
    if wal_buffers > 14.0 * KB_PER_MB {
        wal_buffers = 16.0 * KB_PER_MB;
    }
    let wal_buffers = wal_buffers.max(32.0);
    let default_statistics_target = if t == Dw { 500 } else { 100 };
    let random_page_cost = if h.db_size == DbSize::LessRam {
        "1.1"
    } else if h.storage == StorageKind::Hdd || t == Dw {
        "4"
    } else {
        "1.1"
    };
    let effective_io_concurrency = match h.storage {
        StorageKind::Hdd => 2,
        StorageKind::Ssd => 200,
        StorageKind::Nvme => 1000,
    };
    // Parallel settings only from 4 CPUs on; per gather capped at 4 except dw.
    let parallel = (h.cpus >= 4).then(|| {
        let per_gather = h.cpus.div_ceil(2);
        let per_gather = if t != Dw {
            per_gather.min(4)
        } else {
            per_gather
        };
        (per_gather, h.cpus.div_ceil(2).min(4))
    });
    // (RAM - shared_buffers) / ((max_connections + max_worker_processes) x 3),
    // max_worker_processes being the CPUs when set, else PostgreSQL's 8.
    let workers = if parallel.is_some() { h.cpus } else { 8 };
    let per = (total_kb - shared_buffers) / ((max_connections + workers) as f64 * 3.0);
    let mut work_mem = match t {
        Web | Oltp => per.floor(),
        Dw | Mixed => (per / 2.0).floor(),
        Desktop => (per / 6.0).floor(),
    };
    match h.db_size {
        DbSize::LessRam => work_mem = (work_mem * 1.3).floor(),
        DbSize::GreaterRam => work_mem = (work_mem * 0.9).floor(),
        DbSize::MidRam => {}
    }
    let work_mem = work_mem.max(4.0 * KB_PER_MB);

    let mut s: Vec<(&'static str, String)> = vec![
        ("max_connections", max_connections.to_string()),
        ("shared_buffers", format_kb(shared_buffers)),
        ("effective_cache_size", format_kb(effective_cache_size)),
        ("maintenance_work_mem", format_kb(maintenance_work_mem)),
        ("checkpoint_completion_target", "0.9".into()),
        ("wal_buffers", format_kb(wal_buffers)),
        (
            "default_statistics_target",
            default_statistics_target.to_string(),
        ),
        ("random_page_cost", random_page_cost.into()),
        (
            "effective_io_concurrency",
            effective_io_concurrency.to_string(),
        ),
        ("work_mem", format_kb(work_mem)),
        ("huge_pages", huge_pages.into()),
    ];
    if h.pg_version >= 12 && matches!(t, Web | Oltp | Mixed) {
        s.push(("jit", "off".into()));
    }
    if h.pg_version >= 15 {
        s.push(("wal_compression", "lz4".into()));
    } else if h.pg_version >= 10 {
        s.push(("wal_compression", "on".into()));
    }
    if h.cpus >= 32 {
        s.push(("autovacuum_max_workers", "5".into()));
    } else if h.cpus >= 16 {
        s.push(("autovacuum_max_workers", "4".into()));
    }
    if maintenance_work_mem >= 2.0 * KB_PER_GB {
        s.push(("autovacuum_work_mem", format_kb(2.0 * KB_PER_GB)));
    }
    if h.pg_version >= 18 {
        // On Linux PGTune picks io_uring, and then no io_workers.
        s.push(("io_method", "io_uring".into()));
    }
    s.push(("min_wal_size", format_kb(min_wal_mb * KB_PER_MB)));
    s.push(("max_wal_size", format_kb(max_wal_mb * KB_PER_MB)));
    if let Some((per_gather, maintenance_workers)) = parallel {
        s.push(("max_worker_processes", h.cpus.to_string()));
        s.push(("max_parallel_workers_per_gather", per_gather.to_string()));
        if h.pg_version >= 10 {
            s.push(("max_parallel_workers", h.cpus.to_string()));
        }
        if h.pg_version >= 11 {
            s.push((
                "max_parallel_maintenance_workers",
                maintenance_workers.to_string(),
            ));
        }
    }
    if t == Desktop {
        s.push(("wal_level", "minimal".into()));
        s.push(("max_wal_senders", "0".into()));
    }
    s
}

/// postgresql.conf lines PGTune prints for `t` on `h`, headed by what was
/// asked.
pub fn conf(t: DbType, h: &Host) -> String {
    let mut out = format!(
        "# PGTune ({} type, le0pard/pgtune@830d3bb) for {}, {} CPUs, {}, PostgreSQL {}\n",
        t.name(),
        h.ram,
        h.cpus,
        h.storage,
        h.pg_version
    );
    for (k, v) in settings(t, h) {
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(gib: u64, cpus: u32, storage: StorageKind, pg: u32) -> Host {
        Host {
            ram: ByteSize::gib(gib),
            cpus,
            storage,
            pg_version: PgVersion::of(pg),
            connections: None,
            db_size: DbSize::MidRam,
        }
    }

    fn value(s: &[(&str, String)], k: &str) -> Option<String> {
        s.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    /// The values below are worked by hand from configurationSlice.js, in
    /// kB: total = GiB x 1048576.
    #[test]
    fn dw_on_8_gib_8_cpus_hdd_gives_work_mem_21845kb() {
        // sb = 8388608/4 = 2097152 (2GB); work_mem = (8388608 - 2097152) /
        // ((40 + 8) x 3) / 2 = 43690.67 / 2 -> 21845.
        let s = settings(DbType::Dw, &host(8, 8, StorageKind::Hdd, 14));
        let expect = [
            ("max_connections", "40"),
            ("shared_buffers", "2GB"),
            ("effective_cache_size", "6GB"),
            ("maintenance_work_mem", "1GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "500"),
            ("random_page_cost", "4"),
            ("effective_io_concurrency", "2"),
            ("work_mem", "21845kB"),
            ("huge_pages", "try"),
            ("wal_compression", "on"),
            ("min_wal_size", "4GB"),
            ("max_wal_size", "16GB"),
            ("max_worker_processes", "8"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "8"),
            ("max_parallel_maintenance_workers", "4"),
        ];
        let got: Vec<(&str, &str)> = s.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn web_on_the_4_gib_2_cpu_staging_host() {
        // total 4194304 kB; sb 1048576 (1GB, under 2GB: huge_pages off);
        // ecs 3145728 (3GB); maintenance /16 = 262144 (256MB); wal_buffers
        // 3% = 31457 kB, above 14 MB -> 16MB; under 4 CPUs no parallel
        // settings and work_mem counts PostgreSQL's 8 workers:
        // 3145728 / ((200 + 8) x 3) = 5041.5 -> 5041kB.
        let s = settings(DbType::Web, &host(4, 2, StorageKind::Ssd, 15));
        let got: Vec<(&str, &str)> = s.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("max_connections", "200"),
                ("shared_buffers", "1GB"),
                ("effective_cache_size", "3GB"),
                ("maintenance_work_mem", "256MB"),
                ("checkpoint_completion_target", "0.9"),
                ("wal_buffers", "16MB"),
                ("default_statistics_target", "100"),
                ("random_page_cost", "1.1"),
                ("effective_io_concurrency", "200"),
                ("work_mem", "5041kB"),
                ("huge_pages", "off"),
                ("jit", "off"),
                ("wal_compression", "lz4"),
                ("min_wal_size", "1GB"),
                ("max_wal_size", "4GB"),
            ]
        );
    }

    #[test]
    fn oltp_on_a_64_gib_16_cpu_nvme_host() {
        // total 67108864 kB; sb 16777216 (16GB); ecs 50331648 (48GB);
        // maintenance /16 = 4194304 (4GB, so autovacuum_work_mem 2GB);
        // work_mem = 50331648 / ((300 + 16) x 3) = 53092.4 -> 53092kB;
        // per gather min(8, 4) = 4; 16 CPUs: autovacuum_max_workers 4.
        let s = settings(DbType::Oltp, &host(64, 16, StorageKind::Nvme, 16));
        let got: Vec<(&str, &str)> = s.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("max_connections", "300"),
                ("shared_buffers", "16GB"),
                ("effective_cache_size", "48GB"),
                ("maintenance_work_mem", "4GB"),
                ("checkpoint_completion_target", "0.9"),
                ("wal_buffers", "16MB"),
                ("default_statistics_target", "100"),
                ("random_page_cost", "1.1"),
                ("effective_io_concurrency", "1000"),
                ("work_mem", "53092kB"),
                ("huge_pages", "try"),
                ("jit", "off"),
                ("wal_compression", "lz4"),
                ("autovacuum_max_workers", "4"),
                ("autovacuum_work_mem", "2GB"),
                ("min_wal_size", "2GB"),
                ("max_wal_size", "8GB"),
                ("max_worker_processes", "16"),
                ("max_parallel_workers_per_gather", "4"),
                ("max_parallel_workers", "16"),
                ("max_parallel_maintenance_workers", "4"),
            ]
        );
    }

    #[test]
    fn dw_on_32_gib_12_cpus_ssd_larger_than_ram() {
        // total 33554432; sb 8388608 (8GB); maintenance /8 = 4194304 (4GB);
        // work_mem = 25165824 / ((40 + 12) x 3) / 2 = 80659.7 -> 80659,
        // x 0.9 for greater_ram = 72593.1 -> 72593kB; dw on SSD keeps
        // random_page_cost 4; dw's per gather is not capped: 6.
        let mut h = host(32, 12, StorageKind::Ssd, 18);
        h.db_size = DbSize::GreaterRam;
        let s = settings(DbType::Dw, &h);
        assert_eq!(value(&s, "work_mem").as_deref(), Some("72593kB"));
        assert_eq!(value(&s, "random_page_cost").as_deref(), Some("4"));
        assert_eq!(value(&s, "maintenance_work_mem").as_deref(), Some("4GB"));
        assert_eq!(value(&s, "autovacuum_work_mem").as_deref(), Some("2GB"));
        assert_eq!(
            value(&s, "max_parallel_workers_per_gather").as_deref(),
            Some("6")
        );
        assert_eq!(
            value(&s, "max_parallel_maintenance_workers").as_deref(),
            Some("4")
        );
        assert_eq!(value(&s, "io_method").as_deref(), Some("io_uring"));
        assert_eq!(value(&s, "jit"), None);
    }

    #[test]
    fn mixed_and_desktop_on_a_2_gib_host() {
        // total 2097152. mixed: sb 524288 (512MB), wal_buffers 15728 kB
        // (above 14 MB -> 16MB), work_mem 1572864 / ((100 + 8) x 3) / 2 =
        // 2427.2 -> floored to PGTune's 4MB minimum.
        let h = host(2, 1, StorageKind::Ssd, 17);
        let s = settings(DbType::Mixed, &h);
        assert_eq!(value(&s, "shared_buffers").as_deref(), Some("512MB"));
        assert_eq!(value(&s, "wal_buffers").as_deref(), Some("16MB"));
        assert_eq!(value(&s, "work_mem").as_deref(), Some("4MB"));
        assert_eq!(value(&s, "max_connections").as_deref(), Some("100"));
        // desktop: sb /16 = 131072 (128MB), ecs /4 = 524288 (512MB),
        // wal_buffers 3932 kB, wal_level minimal without WAL senders.
        let s = settings(DbType::Desktop, &h);
        assert_eq!(value(&s, "shared_buffers").as_deref(), Some("128MB"));
        assert_eq!(value(&s, "effective_cache_size").as_deref(), Some("512MB"));
        assert_eq!(value(&s, "wal_buffers").as_deref(), Some("3932kB"));
        assert_eq!(value(&s, "min_wal_size").as_deref(), Some("100MB"));
        assert_eq!(value(&s, "wal_level").as_deref(), Some("minimal"));
        assert_eq!(value(&s, "max_wal_senders").as_deref(), Some("0"));
    }

    #[test]
    fn conf_names_the_type_and_the_commit() {
        let c = conf(DbType::Oltp, &host(8, 4, StorageKind::Ssd, 15));
        assert!(c.starts_with("# PGTune (oltp type, le0pard/pgtune@830d3bb)"));
        assert!(c.contains("\nmax_connections = 300\n"));
    }
}
