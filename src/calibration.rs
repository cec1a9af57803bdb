//! The memory model's constants as measured on the real servers by
//! scripts/calibrate-memory.py (data/pg-memory.tsv, data/redis-memory.tsv,
//! data/redis-roles.tsv)
//! and scripts/measure-shared-memory.py (data/pg-shared-memory.tsv,
//! data/pg-preload-libraries.tsv): per PostgreSQL major and Redis release.
//! docs/budget-model.md says how each was measured.

use std::sync::OnceLock;

use crate::profile::RedisRole;

/// Where the constants come from, for reasons and reports.
pub const PG_SOURCE: &str = "data/pg-memory.tsv";
pub const PG_SHARED_SOURCE: &str = "data/pg-shared-memory.tsv";
pub const PG_LIBRARY_SOURCE: &str = "data/pg-preload-libraries.tsv";
pub const REDIS_SOURCE: &str = "data/redis-memory.tsv";
pub const REDIS_ROLES_SOURCE: &str = "data/redis-roles.tsv";

/// The margin on a role's measured factors (docs/budget-model.md argues
/// it): +50% on the fragmentation's excess over the data and on the whole
/// fork copy, both measured as the largest over releases and 3 runs at
/// maxmemory 128 MB. A smaller Redis written faster copies more per byte
/// in a save: at 24 MiB with redis-cli writing at full speed,
/// tests/it/redis_roles.rs saw a queue's save take 1.39 x maxmemory where
/// the calibration measured 1.04.
pub const REDIS_ROLE_MARGIN: f64 = 0.5;

/// PostgreSQL's memory, measured for one major.
#[derive(Clone, Debug, PartialEq)]
pub struct PgMemory {
    pub major: u32,
    /// The release measured.
    pub version: String,
    /// Private memory of a backend that has run app statements over a
    /// schema of 20 tables, idle.
    pub backend: u64,
    /// Private memory a hash node takes per byte of its hash_mem.
    pub hash: f64,
    /// Extra private memory of a JIT-compiled query (where measured).
    pub jit: Option<u64>,
}

/// PostgreSQL's shared memory, measured for one major: what each setting
/// that sizes it adds (`model::pg_shared_memory` adds them up).
#[derive(Clone, Debug, PartialEq)]
pub struct PgShared {
    pub major: u32,
    pub version: String,
    /// Per byte of shared_buffers beyond the buffers (descriptors, the
    /// buffer mapping table, checkpoint sort space, the SLRU caches).
    pub buffer_overhead: f64,
    /// What no setting sizes, raised to cover the largest shortfall over
    /// the measured grid.
    pub fixed: u64,
    /// Per backend slot (MaxBackends): PGPROC, snapshots, statistics.
    pub slot: f64,
    /// Per max_prepared_transactions beyond its lock-table share.
    pub prepared: f64,
    /// Per lock-table entry (lock slots x max_locks_per_transaction),
    /// beyond the hash buckets.
    pub lock: f64,
    /// Per predicate-lock target (lock slots x
    /// max_pred_locks_per_transaction), beyond the hash buckets.
    pub pred_lock: f64,
    /// Per backend slot and per byte of track_activity_query_size.
    pub query: f64,
    /// Per max_replication_slots.
    pub replication_slot: f64,
    /// Per asynchronous I/O handle (18): (MaxBackends + 38) x
    /// io_max_concurrency handles.
    pub aio_handle: f64,
    /// The largest excess of the model over the server on the grid.
    pub grid_over: f64,
}

/// Redis's memory, measured for one release.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisMemory {
    /// `major.minor`.
    pub version: String,
    pub release: String,
    /// Resident memory over maxmemory at the worst churn measured.
    pub fragmentation: f64,
    /// Memory a fork's copy-on-write takes, over the memory in use, when
    /// every key is rewritten during the save.
    pub fork_copy: f64,
    /// An empty server.
    pub process: u64,
    /// An idle client connection.
    pub client: u64,
    /// The fragmentation and fork copy a profile states, measured on its
    /// own host (`[redis] fragmentation`, `fork_copy`): they replace the
    /// measured worst, and every source says so.
    pub stated: bool,
    /// The role whose workload the factors were measured under, with
    /// where; None: the worst churn, whatever Redis holds.
    pub role: Option<RoleBasis>,
}

/// Where a role's factors come from, for reasons and sources.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleBasis {
    pub role: RedisRole,
    /// The releases whose measurement was the largest: fragmentation, fork
    /// copy.
    pub fragmentation_on: String,
    pub fork_on: String,
    /// The factors as measured, before the margin.
    pub measured_fragmentation: f64,
    pub measured_fork_copy: f64,
}

/// One role measured on one release (data/redis-roles.tsv).
#[derive(Clone, Debug, PartialEq)]
struct RoleRow {
    release: String,
    role: RedisRole,
    fragmentation: f64,
    fork_copy: f64,
}

fn roles_all() -> &'static [RoleRow] {
    static ALL: OnceLock<Vec<RoleRow>> = OnceLock::new();
    ALL.get_or_init(|| {
        rows(include_str!("../data/redis-roles.tsv"))
            .map(|f| {
                let num = |i: usize| -> f64 {
                    f[i].parse()
                        .unwrap_or_else(|_| panic!("{REDIS_ROLES_SOURCE}: bad number `{}`", f[i]))
                };
                RoleRow {
                    release: f[1].to_string(),
                    role: match f[2] {
                        "cache" => RedisRole::Cache,
                        "sessions" => RedisRole::Sessions,
                        "queue" => RedisRole::Queue,
                        "mixed" => RedisRole::Mixed,
                        other => panic!("{REDIS_ROLES_SOURCE}: unknown role `{other}`"),
                    },
                    fragmentation: num(3),
                    fork_copy: num(4),
                }
            })
            .collect()
    })
}

/// What a container limit is charged beyond the terms of the servers in
/// it. Measured (cgroup v1, 2026-12): an idle PostgreSQL 15 cluster that
/// had served 10 sessions in a memory cgroup was charged 21.4 MiB: 4.4
/// MiB anonymous and 12.6 MiB shared memory (PostgreSQL's own terms),
/// 2.5 MiB page cache (reclaimed before the OOM killer acts) and 1.8 MiB
/// kernel memory (slab, kernel stacks, page tables). The official images'
/// entrypoints exec the server, so no other process stays in the
/// container. Counted: 8 MiB, the kernel memory measured x 4 for a busy
/// server's sockets and files.
pub const CONTAINER_OVERHEAD: u64 = 8 << 20;
pub const CONTAINER_OVERHEAD_SOURCE: &str = "a container's own need: 8 MiB of kernel memory \
    (1.8 MiB measured for an idle PostgreSQL 15 in a memory cgroup, x 4 for a busy one; its \
    entrypoint execs the server, so no other process stays)";

/// Margin on the shared-memory model for settings beyond the measured
/// grid (on the grid it is never under: `PgShared::fixed`).
pub const SHARED_MARGIN: f64 = 0.01;

fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
}

fn pg_all() -> &'static [PgMemory] {
    static ALL: OnceLock<Vec<PgMemory>> = OnceLock::new();
    ALL.get_or_init(|| {
        rows(include_str!("../data/pg-memory.tsv"))
            .map(|f| {
                let num = |i: usize| -> f64 {
                    f[i].parse()
                        .unwrap_or_else(|_| panic!("{PG_SOURCE}: bad number `{}`", f[i]))
                };
                PgMemory {
                    major: num(0) as u32,
                    version: f[1].to_string(),
                    backend: num(2) as u64,
                    hash: num(3),
                    jit: f[4].parse::<f64>().ok().map(|v| v as u64),
                }
            })
            .collect()
    })
}

/// The constants of PostgreSQL `major`: its own, else the nearest major
/// measured (the newer one on a tie).
pub fn pg(major: impl Into<u32>) -> &'static PgMemory {
    let major = major.into();
    pg_all()
        .iter()
        .min_by_key(|m| (m.major.abs_diff(major), std::cmp::Reverse(m.major)))
        .expect("data/pg-memory.tsv has rows")
}

fn pg_shared_all() -> &'static [PgShared] {
    static ALL: OnceLock<Vec<PgShared>> = OnceLock::new();
    ALL.get_or_init(|| {
        rows(include_str!("../data/pg-shared-memory.tsv"))
            .map(|f| {
                let num = |i: usize| -> f64 {
                    f[i].parse()
                        .unwrap_or_else(|_| panic!("{PG_SHARED_SOURCE}: bad number `{}`", f[i]))
                };
                PgShared {
                    major: num(0) as u32,
                    version: f[1].to_string(),
                    buffer_overhead: num(2),
                    fixed: num(3) as u64,
                    slot: num(4),
                    prepared: num(5),
                    lock: num(6),
                    pred_lock: num(7),
                    query: num(8),
                    replication_slot: num(9),
                    aio_handle: num(10),
                    grid_over: num(11),
                }
            })
            .collect()
    })
}

/// The shared-memory constants of PostgreSQL `major`: its own, else the
/// nearest major measured (the newer one on a tie).
pub fn pg_shared(major: impl Into<u32>) -> &'static PgShared {
    let major = major.into();
    pg_shared_all()
        .iter()
        .min_by_key(|m| (m.major.abs_diff(major), std::cmp::Reverse(m.major)))
        .expect("data/pg-shared-memory.tsv has rows")
}

/// What a preloaded library adds to shared memory on one major, measured:
/// bytes whatever its settings, and bytes per unit of the setting that
/// sizes it (pg_stat_statements.max).
#[derive(Clone, Debug, PartialEq)]
pub struct PgLibrary {
    pub major: u32,
    pub name: String,
    pub fixed: u64,
    pub per_unit: f64,
}

fn pg_libraries() -> &'static [PgLibrary] {
    static ALL: OnceLock<Vec<PgLibrary>> = OnceLock::new();
    ALL.get_or_init(|| {
        rows(include_str!("../data/pg-preload-libraries.tsv"))
            .map(|f| PgLibrary {
                major: f[0].parse().expect("major"),
                name: f[1].to_string(),
                fixed: f[2].parse().expect("fixed bytes"),
                per_unit: f[3].parse().expect("bytes per unit"),
            })
            .collect()
    })
}

/// A library measured on `major` (else on the nearest major measured that
/// has it, the newer on a tie); None when no build measured it.
pub fn pg_library(major: impl Into<u32>, name: &str) -> Option<&'static PgLibrary> {
    let major = major.into();
    pg_libraries()
        .iter()
        .filter(|l| l.name == name)
        .min_by_key(|l| (l.major.abs_diff(major), std::cmp::Reverse(l.major)))
}

/// A JIT-compiled query's extra memory: the largest measured on any build
/// with LLVM (JIT's memory depends on LLVM more than on the major).
pub fn pg_jit() -> u64 {
    pg_all().iter().filter_map(|m| m.jit).max().unwrap_or(0)
}

/// Where the JIT figure was measured, for reasons: only builds with LLVM
/// measure it, so it is said when that is one major and the others take it.
pub fn pg_jit_measured_on() -> String {
    let on: Vec<&str> = pg_all()
        .iter()
        .filter(|m| m.jit.is_some())
        .map(|m| m.version.as_str())
        .collect();
    match on.as_slice() {
        [] => "not measured".to_string(),
        [one] => format!(
            "measured on one build only, PostgreSQL {one} with LLVM (Debian's), {PG_SOURCE}; \
             other majors take it"
        ),
        many => format!("measured on PostgreSQL {}, {PG_SOURCE}", many.join(", ")),
    }
}

fn redis_all() -> &'static [RedisMemory] {
    static ALL: OnceLock<Vec<RedisMemory>> = OnceLock::new();
    ALL.get_or_init(|| {
        rows(include_str!("../data/redis-memory.tsv"))
            .map(|f| {
                let num = |i: usize| -> f64 {
                    f[i].parse()
                        .unwrap_or_else(|_| panic!("{REDIS_SOURCE}: bad number `{}`", f[i]))
                };
                RedisMemory {
                    version: f[0].to_string(),
                    release: f[1].to_string(),
                    fragmentation: num(2),
                    fork_copy: num(3),
                    process: num(4) as u64,
                    client: num(5) as u64,
                    stated: false,
                    role: None,
                }
            })
            .collect()
    })
}

impl RedisMemory {
    /// A fork's copy, per byte of maxmemory: every resident page may be
    /// copied (the data at its worst fragmentation), and never less than
    /// the copy measured when every key was rewritten during a save.
    /// For a role other than cache, the copy measured under the role's own
    /// workload (with its margin) is the bound instead.
    pub fn fork_factor(&self) -> f64 {
        if !self.fork_counts_every_page() {
            return self.fork_copy;
        }
        self.fragmentation.max(self.fork_copy)
    }

    /// Whether a fork is counted as copying every resident page: not when
    /// the copy was stated or measured under the role's own workload (the
    /// worst churn's bound stays for a role whose policy evicts).
    pub fn fork_counts_every_page(&self) -> bool {
        !self.stated && self.role.as_ref().is_none_or(|b| keeps_worst(b.role))
    }

    /// Where the factors come from, in a few words for a comment.
    pub fn basis(&self) -> String {
        match &self.role {
            _ if self.stated => "the profile's, measured on its host".into(),
            Some(b) if !keeps_worst(b.role) => format!(
                "measured for role {} with a +{:.0}% margin",
                b.role,
                REDIS_ROLE_MARGIN * 100.0
            ),
            Some(b) => format!(
                "the worst churn measured, a fork copying every resident page: role {} evicts, so \
                 writes go on at full speed when it is full",
                b.role
            ),
            None => "the worst churn measured, a fork copying every resident page".into(),
        }
    }

    /// The factors a budget uses for what the assumptions say: the role's
    /// measured ones with their margin, then what the profile states.
    pub fn assumed(self, a: &crate::model::Assumptions) -> RedisMemory {
        self.for_role(a.redis_role).stated(a)
    }

    /// With the factors measured under `role`'s workload: the largest over
    /// releases and runs, plus the margin (`REDIS_ROLE_MARGIN`) on the
    /// fragmentation's excess and on the fork copy. A cache keeps the worst
    /// churn's factors (its own workload), without a margin: its fork
    /// already counts every resident page; so do sessions, whose policy
    /// evicts too (measured at full speed they reached 3.6 x maxmemory,
    /// docs/budget-model.md). No role: unchanged.
    pub fn for_role(mut self, role: Option<RedisRole>) -> RedisMemory {
        let Some(role) = role else { return self };
        if keeps_worst(role) {
            self.role = Some(RoleBasis {
                role,
                fragmentation_on: self.release.clone(),
                fork_on: self.release.clone(),
                measured_fragmentation: self.fragmentation,
                measured_fork_copy: self.fork_copy,
            });
            return self;
        }
        // A mixed Redis may at any moment run mostly one of its parts: the
        // largest of the three.
        let measured_as = |r: RedisRole| {
            r == role
                || (role == RedisRole::Mixed && matches!(r, RedisRole::Sessions | RedisRole::Queue))
        };
        let rows: Vec<&RoleRow> = roles_all().iter().filter(|r| measured_as(r.role)).collect();
        let largest = |f: fn(&RoleRow) -> f64| {
            rows.iter()
                .copied()
                .max_by(|a, b| f(a).total_cmp(&f(b)))
                .map(|r| (f(r), r.release.clone()))
        };
        let (Some((frag, frag_on)), Some((fork, fork_on))) =
            (largest(|r| r.fragmentation), largest(|r| r.fork_copy))
        else {
            return self; // not measured: the worst churn's
        };
        self.fragmentation = 1.0 + (frag - 1.0).max(0.0) * (1.0 + REDIS_ROLE_MARGIN);
        self.fork_copy = fork * (1.0 + REDIS_ROLE_MARGIN);
        self.role = Some(RoleBasis {
            role,
            fragmentation_on: frag_on,
            fork_on,
            measured_fragmentation: frag,
            measured_fork_copy: fork,
        });
        self
    }

    /// With the factors the assumptions state in place of the measured
    /// ones.
    pub fn stated(mut self, a: &crate::model::Assumptions) -> RedisMemory {
        if a.redis_fragmentation.is_none() && a.redis_fork_copy.is_none() {
            return self;
        }
        if let Some(f) = a.redis_fragmentation {
            self.fragmentation = f;
        }
        self.fork_copy = a.redis_fork_copy.unwrap_or(self.fork_factor());
        self.stated = true;
        self
    }

    /// Where the factors come from, for a budget term's source.
    pub fn source(&self) -> String {
        if self.stated {
            return "stated by the profile's [redis] fragmentation and fork_copy, measured on its \
                    host"
                .into();
        }
        match &self.role {
            Some(b) if keeps_worst(b.role) => format!(
                "role {}: the worst churn, measured on Redis {}, {REDIS_SOURCE}, no margin: its \
                 policy evicts, writes go on when it is full, a fork counts every resident page",
                b.role, self.release
            ),
            Some(b) => {
                let on = if b.fragmentation_on == b.fork_on {
                    format!("Redis {}", b.fragmentation_on)
                } else {
                    format!(
                        "Redis {} (fragmentation) and {} (fork copy)",
                        b.fragmentation_on, b.fork_on
                    )
                };
                format!(
                    "measured for role {}{} on {on}: fragmentation {:.2}, fork copy {:.2}, the \
                     largest of 3 runs; margin +{:.0}%, {REDIS_ROLES_SOURCE}",
                    b.role,
                    if b.role == RedisRole::Mixed {
                        ", the largest of mixed, sessions and queue,"
                    } else {
                        ""
                    },
                    b.measured_fragmentation,
                    b.measured_fork_copy,
                    REDIS_ROLE_MARGIN * 100.0
                )
            }
            None => format!("measured on Redis {}, {}", self.release, REDIS_SOURCE),
        }
    }
}

/// A role whose policy evicts keeps accepting writes when full, at full
/// speed: the churn the worst bound was measured under.
fn keeps_worst(role: RedisRole) -> bool {
    role.policy() != crate::profile::EvictionPolicy::Noeviction
}

fn version_key(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The constants of Redis `version` (`7.2`, `8.0.2`...): the newest
/// release measured at or below it, else the oldest; the largest factors
/// of all when the version is not known.
pub fn redis(version: Option<&str>) -> RedisMemory {
    let all = redis_all();
    let Some(v) = version else {
        let releases: Vec<&str> = all.iter().map(|r| r.release.as_str()).collect();
        return RedisMemory {
            version: "any".into(),
            release: format!("{}, the largest of each", releases.join(" and ")),
            fragmentation: all.iter().map(|r| r.fragmentation).fold(0.0, f64::max),
            fork_copy: all.iter().map(|r| r.fork_copy).fold(0.0, f64::max),
            process: all.iter().map(|r| r.process).max().unwrap_or(0),
            client: all.iter().map(|r| r.client).max().unwrap_or(0),
            stated: false,
            role: None,
        };
    };
    let key = version_key(v);
    all.iter()
        .filter(|r| version_key(&r.version) <= key)
        .max_by_key(|r| version_key(&r.version))
        .or_else(|| all.iter().min_by_key(|r| version_key(&r.version)))
        .cloned()
        .expect("data/redis-memory.tsv has rows")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tested_major_is_measured() {
        for major in crate::version::PgVersion::all().map(|v| v.major()) {
            assert_eq!(pg(major).major, major);
            let m = pg(major);
            assert!(m.backend > 1 << 20 && m.backend < 16 << 20, "{m:?}");
            assert!(m.hash >= 1.0 && m.hash < 2.0, "{m:?}");
            let s = pg_shared(major);
            assert_eq!(s.major, major);
            assert!(s.buffer_overhead > 0.0 && s.buffer_overhead < 0.1, "{s:?}");
            assert!(
                s.lock > 100.0 && s.pred_lock > 100.0 && s.slot > 1000.0,
                "{s:?}"
            );
            assert!(s.grid_over >= 0.0 && s.grid_over < 0.03, "{s:?}");
            assert!(pg_library(major, "pg_stat_statements").is_some());
            assert_eq!(pg_library(major, "plpgsql").map(|l| l.fixed), Some(0));
        }
        assert_eq!(pg(12u32).major, 13);
        assert_eq!(pg(40u32).major, 18);
        assert!(pg_jit() > 1 << 20);
    }

    #[test]
    fn redis_releases_resolve_to_the_one_measured_at_or_below() {
        assert_eq!(redis(Some("7.0.15")).version, "7.0");
        assert_eq!(redis(Some("7.4")).version, "7.0");
        assert_eq!(redis(Some("8.2")).version, "8.0");
        assert_eq!(redis(Some("6.2")).version, "7.0");
        let any = redis(None);
        assert!(any.fragmentation >= redis(Some("8.0")).fragmentation);
    }

    fn measured(role: RedisRole) -> impl Iterator<Item = &'static RoleRow> {
        roles_all().iter().filter(move |r| r.role == role)
    }

    #[test]
    fn every_role_is_measured_on_every_release() {
        for r in redis_all() {
            for role in [
                RedisRole::Cache,
                RedisRole::Sessions,
                RedisRole::Queue,
                RedisRole::Mixed,
            ] {
                assert!(
                    measured(role).any(|m| m.release == r.release),
                    "{role} on {}",
                    r.release
                );
            }
        }
    }

    #[test]
    fn roles_that_evict_keep_the_worst_churn_bound() {
        let worst = redis(None);
        for role in [RedisRole::Cache, RedisRole::Sessions] {
            let c = redis(None).for_role(Some(role));
            assert_eq!(c.fragmentation, worst.fragmentation);
            assert_eq!(c.fork_factor(), worst.fork_factor());
            assert_eq!(c.fork_factor(), worst.fragmentation.max(worst.fork_copy));
            assert!(c.fork_counts_every_page());
            assert!(c
                .source()
                .starts_with(&format!("role {role}: the worst churn")));
        }
        // No role (a directory nobody described): the same worst bound.
        assert_eq!(redis(None).for_role(None), worst);
    }

    #[test]
    fn a_queue_takes_its_largest_measurement_plus_the_margin() {
        for role in [RedisRole::Queue] {
            let c = redis(None).for_role(Some(role));
            let frag = measured(role).map(|m| m.fragmentation).fold(0.0, f64::max);
            let fork = measured(role).map(|m| m.fork_copy).fold(0.0, f64::max);
            assert!(
                (c.fragmentation - (1.0 + (frag - 1.0) * 1.5)).abs() < 1e-9,
                "{c:?}"
            );
            assert!((c.fork_factor() - fork * 1.5).abs() < 1e-9, "{c:?}");
            // Never below what any release measured for the role.
            for m in measured(role) {
                assert!(c.fragmentation >= m.fragmentation && c.fork_factor() >= m.fork_copy);
            }
            assert!(!c.fork_counts_every_page());
            // Below the worst churn's bound: the point of measuring roles.
            let worst = redis(None);
            assert!(
                c.fragmentation + c.fork_factor() < worst.fragmentation + worst.fork_factor(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn mixed_is_bounded_by_each_of_its_parts() {
        let mixed = redis(None).for_role(Some(RedisRole::Mixed));
        for part in [RedisRole::Sessions, RedisRole::Queue, RedisRole::Mixed] {
            for m in measured(part) {
                assert!(mixed.fragmentation >= m.fragmentation, "{m:?}");
                assert!(mixed.fork_factor() >= m.fork_copy * 1.5 - 1e-9, "{m:?}");
            }
        }
    }

    #[test]
    fn the_source_names_the_role_the_release_and_the_margin() {
        let s = redis(None).for_role(Some(RedisRole::Queue)).source();
        assert!(s.starts_with("measured for role queue on Redis "), "{s}");
        assert!(s.contains("fork copy 1.0"), "{s}");
        assert!(
            s.contains("margin +50%") && s.contains(REDIS_ROLES_SOURCE),
            "{s}"
        );
        let s = redis(Some("7.0")).for_role(Some(RedisRole::Cache)).source();
        assert!(
            s.contains("role cache: the worst churn") && s.contains("7.0.15"),
            "{s}"
        );
    }

    #[test]
    fn factors_the_profile_states_win_over_the_role() {
        let a = crate::model::Assumptions {
            redis_role: Some(RedisRole::Queue),
            redis_fragmentation: Some(1.4),
            redis_fork_copy: Some(0.3),
            ..Default::default()
        };
        let c = redis(None).assumed(&a);
        assert_eq!((c.fragmentation, c.fork_factor()), (1.4, 0.3));
        assert!(c.source().starts_with("stated by the profile"));
        // Only the fragmentation stated: the role's measured fork copy stays.
        let a = crate::model::Assumptions {
            redis_fork_copy: None,
            ..a
        };
        let c = redis(None).assumed(&a);
        let role = redis(None).for_role(Some(RedisRole::Queue));
        assert_eq!(c.fork_factor(), role.fork_factor());
    }
}
