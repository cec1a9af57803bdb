//! The memory budget: every service on the host added up from *parsed
//! settings*, worst case and typical, each term with where it came from.
//! One module per service, and the table. docs/budget-model.md explains
//! each formula and assumption.

mod pgbouncer;
mod postgres;
mod redis;
mod table;

pub use pgbouncer::pgbouncer_server_conns;
use pgbouncer::pgbouncer_terms;
use postgres::postgres_terms;
use redis::redis_terms;
pub use table::Table;

use serde::Serialize;

use crate::calibration;
use crate::model::*;
use crate::read::settings::{Entry, HostSettings, ServiceSettings};
use crate::service::Scope;
use crate::units::ByteSize;

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
    /// How many heavy queries the set survives at once, when PostgreSQL
    /// is in it.
    pub exposure: Option<Exposure>,
}

/// The exposure: how many concurrent heavy queries (the worst case's
/// query on one connection) the set survives before memory crosses RAM,
/// with everything else at its typical moment; against the queries that
/// can run at once (max_connections, or PgBouncer's server pools in front).
#[derive(Clone, Debug, Serialize)]
pub struct Exposure {
    /// One heavy query's memory.
    pub heavy_query: ByteSize,
    pub heavy_query_source: String,
    /// Everything else at its typical moment: the typical total without
    /// the typical sorts and JIT.
    pub rest: ByteSize,
    /// Heavy queries at once before memory crosses RAM (0 when the rest
    /// alone does not fit).
    pub survives: u64,
    pub max_connections: u64,
    /// PgBouncer's server connections, when a pgbouncer.ini is in the set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooled: Option<u64>,
    /// Queries that can run at once: the pools in front when smaller than
    /// max_connections, else max_connections.
    pub can_run: u64,
    pub can_run_source: String,
    /// What the default gate (`--level busy`) asks: the busy share of
    /// `can_run`, at least one.
    pub required: u64,
}

impl Exposure {
    /// Memory at the busy level: the rest, and `required` heavy queries.
    pub fn busy_total(&self) -> ByteSize {
        self.rest + self.heavy_query * self.required
    }

    /// The exposure line of the report.
    pub fn describe(&self, ram: ByteSize) -> String {
        let verdict = if self.rest > ram {
            format!("none: the rest ({}) alone is over {ram}", self.rest)
        } else if self.survives >= self.can_run {
            format!(
                "survives all {} queries that can run at once ({})",
                self.can_run, self.can_run_source
            )
        } else {
            format!(
                "survives {} concurrent heavy queries before memory crosses {ram}, of {} that can run at once ({})",
                self.survives, self.can_run, self.can_run_source
            )
        };
        format!(
            "{verdict}; a heavy query holds {} ({}), the rest of the set {} at its typical moment; \
             the default gate (--level busy) needs {}",
            self.heavy_query, self.heavy_query_source, self.rest, self.required
        )
    }
}

impl Budget {
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
    let hugepages = settings
        .os
        .as_ref()
        .map(|os| huge_pages(os, a))
        .unwrap_or_default();
    // A CloudNativePG pod's huge pages are its own hugepages-2Mi limit,
    // outside its memory limit (Kubernetes accounts them apart).
    let pod_huge = settings
        .deployment
        .as_ref()
        .and_then(|d| d.hugepages.as_ref())
        .map(|h| h.0)
        .filter(|_| hugepages.is_none());
    let mut heavy = None;
    if let Some(pg) = &settings.postgres {
        heavy = Some(postgres_terms(
            pg,
            settings.pg_version,
            settings.pg_build.as_deref(),
            hugepages.as_ref().map(|h| h.0).or(pod_huge),
            a,
            &mut terms,
        ));
        if pod_huge.is_some() {
            for t in terms
                .iter_mut()
                .filter(|t| t.name == "shared memory (in huge pages)")
            {
                t.source = t.source.replace(
                    "held in the huge pages counted under os",
                    "held in the pod's hugepages limit, outside its memory limit",
                );
            }
        }
    }
    if let Some(r) = &settings.redis {
        let version = Some(settings.redis_version.as_str()).filter(|v| !v.is_empty());
        redis_terms(r, &calibration::redis(version).assumed(a), a, &mut terms);
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
    let exposure = heavy.map(|h| exposure(h, &terms, typical, ram, settings, a));
    Budget {
        ram,
        ram_source: ram_source.to_string(),
        terms,
        worst,
        typical,
        exposure,
    }
}

/// How many heavy queries fit beside everything else at its typical
/// moment, and how many can run at once.
fn exposure(
    h: postgres::HeavyQuery,
    terms: &[Term],
    typical: ByteSize,
    ram: ByteSize,
    settings: &HostSettings,
    a: &Assumptions,
) -> Exposure {
    // The typical sorts and JIT are what the heavy queries replace.
    let queries: ByteSize = terms
        .iter()
        .filter(|t| t.service == Scope::Postgres && (t.name == "work_mem" || t.name == "JIT"))
        .map(|t| t.typical)
        .sum();
    let rest = typical - queries;
    let survives = if rest > ram {
        0
    } else if h.memory == ByteSize::ZERO {
        h.max_connections
    } else {
        (ram - rest).bytes() / h.memory.bytes()
    };
    let pooled = settings
        .pgbouncer
        .as_ref()
        .map(|b| pgbouncer_server_conns(b).0);
    let (can_run, can_run_source) = match pooled {
        Some(p) if p > 0 && p < h.max_connections => (
            p,
            format!(
                "PgBouncer's server pools in front; max_connections {} at {}",
                h.max_connections, h.max_connections_at
            ),
        ),
        _ => (
            h.max_connections,
            format!("max_connections at {}", h.max_connections_at),
        ),
    };
    let required = ((can_run as f64 * a.busy_fraction_typical).ceil() as u64).max(1);
    Exposure {
        heavy_query: h.memory,
        heavy_query_source: h.source,
        rest,
        survives,
        max_connections: h.max_connections,
        pooled,
        can_run,
        can_run_source,
        required,
    }
}

fn huge_pages(os: &ServiceSettings, a: &Assumptions) -> Option<(ByteSize, Entry)> {
    let e = os.get("vm.nr_hugepages")?;
    let n: u64 = e.value.parse().ok()?;
    (n > 0).then(|| (a.hugepage_size * n, e.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::effective::Pg;
    use crate::read::grammar;
    use crate::read::limits;
    use crate::units::{GIB, MIB};

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
        // postgres -C shared_memory_size, PostgreSQL 15.18 and 18.4,
        // defaults but shared_buffers (tests/it/corpus_shm.rs asks the
        // servers themselves on every major).
        for (major, sb, reported_mb) in [
            (15, 128, 143.0),
            (15, 1024, 1074.0),
            (15, 8192, 8399.0),
            (18, 128, 150.0),
        ] {
            let v = crate::version::PgVersion::of(major);
            let s = crate::model::PgShmSettings::defaults(v, ByteSize::mib(sb));
            let est = pg_shared_memory(v, &s);
            let ratio = est.as_mib_f64() / reported_mb;
            // Never under; the MB the server reports are rounded up.
            assert!(
                (0.995..1.03).contains(&ratio),
                "{major} {sb} MB: {est} vs {reported_mb} MB"
            );
        }
    }

    #[test]
    fn pgtune_on_one_gib_does_not_fit() {
        // PGTune's web profile for 1 GB: 300 connections with a 4 MB floor.
        let s = pg("max_connections = 300\nshared_buffers = 256MB\nwork_mem = 4MB\n");
        let b = compute(&s, ByteSize::gib(1), "--ram", &[], &Assumptions::default());
        assert!(!b.total_fits());
        let f = limits::findings(&s, ByteSize::gib(1));
        assert!(
            f[0].message
                .contains("work_mem 4 MiB x max_connections 300"),
            "{f:?}"
        );
        assert!(f[0].memory_limit);
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
        let f = limits::findings(&s, ByteSize::gib(4));
        assert!(f[0].message.contains("unbounded"), "{f:?}");

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
        // fragmented data set) + 3 s of writes at 8 MiB/s in the AOF
        // buffer and a fork's copy of them (appendfsync everysec by
        // default) + the process, with the
        // largest factors measured (no release named)
        let c = calibration::redis(None);
        let mm = ByteSize::mib(100);
        assert_eq!(
            b.service_worst(Scope::Redis),
            mm.scale(c.fragmentation)
                + ByteSize::mib(11)
                + mm.scale(c.fork_factor())
                + ByteSize::mib(48)
                + ByteSize(c.process)
        );
    }

    /// Only `appendfsync everysec` (Redis's default) lets writes wait in
    /// the AOF buffer: `always` writes before each reply, `no` never waits
    /// for an fsync, and without the AOF there is no buffer.
    #[test]
    fn the_aof_buffer_is_counted_where_writes_can_wait() {
        let aof = |conf: &str, a: &Assumptions| {
            let s = HostSettings {
                redis: Some(grammar::redis_conf(conf, "redis.conf").unwrap()),
                ..Default::default()
            };
            compute(&s, ByteSize::gib(4), "x", &[], a)
                .terms
                .into_iter()
                .find(|t| t.name == "AOF buffer")
        };
        let a = Assumptions::default();
        let base = "maxmemory 100mb\nmaxmemory-clients 10mb\n";
        let t = aof(&format!("{base}appendonly yes\n"), &a).expect("default everysec");
        assert_eq!((t.worst, t.typical), (ByteSize::mib(48), ByteSize::ZERO));
        assert!(
            t.source
                .contains("appendonly yes (redis.conf:3), appendfsync everysec by default")
                && t.source.contains("2 x 3 s x 8 MiB/s")
                && t.source.contains("assumed, --redis-write-rate"),
            "{}",
            t.source
        );
        let t = aof(
            &format!("{base}appendonly yes\nappendfsync EverySec\n"),
            &Assumptions {
                redis_write_rate: ByteSize::mib(50),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(t.worst, ByteSize::mib(300));
        assert!(
            t.source.starts_with("appendfsync everysec (redis.conf:4)")
                && t.source.contains("stated"),
            "{}",
            t.source
        );
        for conf in [
            "appendonly yes\nappendfsync always\n",
            "appendonly yes\nappendfsync no\n",
            "appendonly no\n",
            "",
        ] {
            assert!(aof(&format!("{base}{conf}"), &a).is_none(), "{conf}");
        }
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
        let f = limits::findings(&s, ByteSize::gib(64));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("50 server connections"));
    }
}
