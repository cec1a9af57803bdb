//! Redis, PgBouncer, ZFS and OS settings.

use crate::profile::{Persistence, Profile, RedisPolicy};
use crate::units::ByteSize;

use super::memory::{Allocation, BouncerAlloc, RedisAlloc};
use super::{Dataset, Host, Sections, Setting, ZfsPlan};

pub fn redis(profile: &Profile, r: &RedisAlloc) -> Sections {
    let pol = &profile.redis;
    let mut s = Sections::default();
    redis_network(&mut s, pol);
    redis_memory(&mut s, pol, r);
    redis_persistence(&mut s, pol);
    let sec = s.section("Security");
    for cmd in &pol.disable_commands {
        sec.set(
            "rename-command",
            format!("{cmd} \"\""),
            format!("{cmd} disabled: too dangerous on a shared host"),
        );
    }
    s
}

fn redis_network(s: &mut Sections, pol: &RedisPolicy) {
    s.section("Network")
        .set(
            "bind",
            if pol.listen == "127.0.0.1" {
                "127.0.0.1 -::1".to_string()
            } else {
                pol.listen.clone()
            },
            "loopback only unless the profile says otherwise",
        )
        .set(
            "protected-mode",
            "yes",
            "refuse outside clients while no password is set",
        )
        .set("port", pol.port, "the profile's port")
        .set("timeout", 300, "close clients idle for 5 minutes")
        .set("tcp-keepalive", 300, "notice dead peers");
}

/// maxmemory from Redis's share and the measured factors, and the other
/// bounds the budget counts.
fn redis_memory(s: &mut Sections, pol: &RedisPolicy, r: &RedisAlloc) {
    let mem = s.section("Memory");
    mem.set(
        "maxmemory",
        r.maxmemory.redis(),
        if r.capped {
            format!(
                "the profile's cap; Redis's {} share would allow more",
                r.share
            )
        } else {
            // Each byte of maxmemory costs its fragmentation, plus a fork's
            // copy when the persistence forks (factors measured, see
            // docs/budget-model.md).
            format!(
                "Redis's {} share less its process, {}, / (fragmentation {:.2}{}; {}){}",
                r.share,
                if r.aof_buffer > ByteSize::ZERO {
                    format!("backlog, client buffers and AOF buffer ({})", r.aof_buffer)
                } else {
                    "backlog and client buffers".to_string()
                },
                r.fragmentation,
                match r.fork {
                    Some(f) => format!(" + {f:.2} for a fork's copy-on-write"),
                    None => String::new(),
                },
                r.basis,
                if r.stated {
                    "; the factors are the profile's, measured on its host: a worse \
                     fragmentation or a save that copies more goes over the budget"
                } else {
                    ""
                }
            )
        },
    );
    let policy = pol.eviction();
    mem.set(
        "maxmemory-policy",
        policy,
        format!(
            "{} (role {}): {}",
            if pol.policy.is_some() {
                "the profile's policy"
            } else {
                "the role's policy"
            },
            pol.role,
            pol.role.when_full(policy)
        ),
    );
    mem.set(
        "maxmemory-clients",
        r.clients.redis(),
        "bounds client query and output buffers, which maxmemory does not count (7.0+)",
    );
    mem.set(
        "maxclients",
        pol.maxclients,
        "the profile's value; client buffers are bounded by maxmemory-clients",
    );
    mem.set(
        "repl-backlog-size",
        r.backlog.redis(),
        "the default, counted in the budget",
    );
    // No `activedefrag`: Debian's Redis refuses to start with it (its jemalloc
    // lacks the patch active defragmentation needs).
}

/// RDB rules and the AOF, as the profile's persistence says.
fn redis_persistence(s: &mut Sections, pol: &RedisPolicy) {
    let per = s.section("Persistence");
    match pol.persistence {
        Persistence::Rdb | Persistence::RdbAof => {
            for rule in ["900 1", "300 10", "60 10000"] {
                per.set("save", rule, "RDB snapshot rule (seconds, changes)");
            }
        }
        Persistence::None | Persistence::Aof => {
            per.set("save", "\"\"", "no RDB snapshots");
        }
    }
    let aof = matches!(pol.persistence, Persistence::Aof | Persistence::RdbAof);
    per.set(
        "appendonly",
        if aof { "yes" } else { "no" },
        if aof {
            "log every write: lose at most a second"
        } else {
            "no append-only file"
        },
    );
    if aof {
        per.set(
            "appendfsync",
            "everysec",
            "fsync once a second: durable enough, fast",
        );
        per.set(
            "auto-aof-rewrite-percentage",
            100,
            "rewrite when the AOF doubles",
        );
        per.set("auto-aof-rewrite-min-size", "64mb", "not for small files");
    }
    per.set(
        "dir",
        &pol.dir,
        if pol.dir == "/var/lib/redis" {
            "Debian's data directory (the profile's [redis] dir): RDB and AOF files go here"
        } else {
            "the profile's [redis] dir: RDB and AOF files go here; Redis refuses to start where it does not exist"
        },
    );
}

pub fn pgbouncer(profile: &Profile, b: &BouncerAlloc, alloc: &Allocation) -> Sections {
    let pol = &profile.pgbouncer;
    let pg = &profile.postgres;
    let mut s = Sections::default();
    s.section("databases").set(
        &pol.database,
        format!(
            "host=127.0.0.1 port={} dbname={} pool_size={} reserve_pool={} max_db_connections={}",
            pg.port,
            pol.database,
            b.pool_size,
            b.reserve_pool,
            b.servers()
        ),
        format!(
            "{} server connections at most (pool {} + reserve {}), inside PostgreSQL's max_connections {}{}",
            b.servers(),
            b.pool_size,
            b.reserve_pool,
            alloc.pg.max_connections,
            b.shrunk.as_ref().map_or(String::new(), |w| format!("; {w}"))
        ),
    );
    s.section("pgbouncer")
        .set("listen_addr", &pol.listen, "loopback only unless the profile says otherwise")
        .set("listen_port", pol.port, "the profile's port")
        .set("auth_type", "scram-sha-256", "not md5")
        .set(
            "auth_file",
            &pol.auth_file,
            "secrets stay out of this file: the user list (the profile's [pgbouncer] auth_file) holds the SCRAM verifiers",
        )
        .set(
            "pool_mode",
            pol.pool_mode,
            match pol.pool_mode {
                crate::profile::PoolMode::Transaction => {
                    "the profile's: a server connection is a client's for one transaction, so SET \
                     (use SET LOCAL), session advisory locks, LISTEN and WITH HOLD cursors do not \
                     survive it; protocol-level prepared statements need PgBouncer 1.21+ with \
                     max_prepared_statements, else turn off the driver's statement cache (asyncpg \
                     statement_cache_size=0); docs/profiles.md, Transaction pooling"
                }
                _ => "the profile's pooling mode",
            },
        )
        .set(
            "max_client_conn",
            b.max_client_conn,
            "client connections PgBouncer accepts; each costs a packet buffer",
        )
        .set("default_pool_size", b.pool_size, "the same as the database entry")
        .set("min_pool_size", pol.min_pool_size.min(b.pool_size), "server connections kept warm")
        .set("reserve_pool_size", b.reserve_pool, "extra connections for bursts")
        .set("reserve_pool_timeout", 3, "seconds a client waits before the reserve opens")
        .set(
            "max_db_connections",
            b.servers(),
            "a hard cap per database whatever the number of users, so the pools stay inside max_connections",
        )
        .set("server_idle_timeout", 600, "close server connections idle for 10 minutes")
        .set("query_wait_timeout", 120, "fail a client that waited two minutes for a connection")
        .set(
            "ignore_startup_parameters",
            "extra_float_digits",
            "JDBC and asyncpg send it; PgBouncer would refuse the connection",
        );
    s
}

/// ZFS shows sizes as `16K`, `1M`: write them the same way so a second run
/// of the script sees nothing to change.
fn zfs_value(name: &str, v: &str) -> String {
    if name == "recordsize" {
        v.to_ascii_uppercase()
    } else {
        v.to_string()
    }
}

pub fn zfs(profile: &Profile, host: &Host, arc: ByteSize, alloc: &Allocation) -> ZfsPlan {
    let z = &profile.zfs;
    let props = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| Setting {
                name: k.clone(),
                value: zfs_value(k, v),
                reason: match k.as_str() {
                    "recordsize" if v.eq_ignore_ascii_case("16K") => {
                        "two PostgreSQL pages: less read amplification than 128K, still compresses"
                            .into()
                    }
                    "recordsize" => "large sequential WAL writes".into(),
                    "compression" => "fewer bytes to disk for little CPU".into(),
                    "atime" => "no write on every read".into(),
                    "logbias" if v == "throughput" => {
                        "data files are written by checkpoints, in bulk".into()
                    }
                    "logbias" => "WAL fsyncs wait on latency".into(),
                    "xattr" => "extended attributes in the inode, not a hidden directory".into(),
                    _ => "the profile's value".into(),
                },
            })
            .collect::<Vec<_>>()
    };
    // Names are relative to the pool, which the script can override.
    let parent = z.dataset.clone();
    ZfsPlan {
        script: host.zfs_datasets,
        pool: z.pool.clone(),
        datasets: vec![
            Dataset {
                name: parent.clone(),
                purpose: "parent of the PostgreSQL datasets".into(),
                properties: vec![Setting {
                    name: "atime".into(),
                    value: "off".into(),
                    reason: "no write on every read".into(),
                }],
            },
            Dataset {
                name: format!("{parent}/data"),
                purpose: "the data directory".into(),
                properties: props(&z.data),
            },
            Dataset {
                name: format!("{parent}/wal"),
                purpose: "pg_wal (symlink it, or initdb --waldir)".into(),
                properties: props(&z.wal),
            },
        ],
        arc_max: arc,
        arc_reason: format!(
            "{:.0}% of the {} left after the OS and reservations ({}); the automatic cap would \
             take half the RAM or more",
            profile.zfs.arc_share.0 * 100.0,
            alloc.available,
            host.zfs.source
        ),
    }
}

pub fn sysctl(profile: &Profile, alloc: &Allocation) -> Sections {
    let mut s = Sections::default();
    let sec = s.section("Memory");
    sec.set(
        "vm.swappiness",
        profile.os.swappiness,
        "prefer dropping page cache to swapping database memory out",
    );
    // Chosen by what runs here.
    if profile.redis.enabled && profile.redis.persistence.forks() {
        sec.set(
            "vm.overcommit_memory",
            1,
            "Redis forks to save; with the kernel's heuristic the fork can fail on a large dataset \
             (the copy-on-write it may need is in the budget)",
        );
    } else if profile.reserve.is_empty() {
        sec.set(
            "vm.overcommit_memory",
            2,
            "a host that runs only the databases: strict accounting makes an allocation past the budget \
             fail in that query instead of waking the OOM killer (PostgreSQL's documentation advises it)",
        );
        sec.set(
            "vm.overcommit_ratio",
            100,
            "with strict accounting the commit limit is this share of the RAM outside huge pages: all of it, \
             which the budget already divides",
        );
    } else {
        sec.set(
            "vm.overcommit_memory",
            0,
            format!(
                "the kernel's heuristic (the default): other processes run here ({}), and strict accounting \
                 could refuse memory they reserve but never use",
                profile
                    .reserve
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if let Some(n) = alloc.pg.huge_pages {
        sec.set(
            "vm.nr_hugepages",
            n,
            format!(
                "2 MiB pages for PostgreSQL's ~{} of shared memory, plus 2% and 8 pages of margin",
                alloc.pg.shared_estimate
            ),
        );
    }
    sec.set(
        "vm.dirty_background_ratio",
        5,
        "start writeback early so checkpoints do not meet a wall of dirty pages",
    );
    sec.set(
        "vm.dirty_ratio",
        10,
        "cap dirty pages before writers are throttled",
    );
    s
}

/// One table per concern of Redis, PgBouncer, ZFS and the kernel.
#[cfg(test)]
mod tests {
    use super::super::fixture::{host, plan_of, profile, value, values};
    use crate::profile::Persistence;

    #[test]
    fn redis_persistence_follows_the_profile() {
        // (persistence, save rules, appendonly, appendfsync)
        let rows = [
            (Persistence::None, vec!["\"\""], "no", None),
            (
                Persistence::Rdb,
                vec!["900 1", "300 10", "60 10000"],
                "no",
                None,
            ),
            (Persistence::Aof, vec!["\"\""], "yes", Some("everysec")),
            (
                Persistence::RdbAof,
                vec!["900 1", "300 10", "60 10000"],
                "yes",
                Some("everysec"),
            ),
        ];
        for (persistence, saves, aof, fsync) in rows {
            let mut p = profile("low-memory");
            p.redis.persistence = persistence;
            let plan = plan_of(&p, &host(&p, 4, 2, 15));
            let r = plan.redis.as_ref().unwrap();
            let row = format!("{persistence:?}");
            assert_eq!(values(r, "save"), saves, "{row}");
            assert_eq!(value(r, "appendonly"), Some(aof), "{row}");
            assert_eq!(value(r, "appendfsync"), fsync, "{row}");
        }
    }

    #[test]
    fn redis_binds_where_the_profile_listens() {
        // (listen, bind)
        let rows = [("127.0.0.1", "127.0.0.1 -::1"), ("10.0.0.5", "10.0.0.5")];
        for (listen, bind) in rows {
            let mut p = profile("low-memory");
            p.redis.listen = listen.into();
            let plan = plan_of(&p, &host(&p, 4, 2, 15));
            assert_eq!(
                value(plan.redis.as_ref().unwrap(), "bind"),
                Some(bind),
                "{listen}"
            );
        }
    }

    #[test]
    fn redis_memory_fits_its_share_whatever_it_forks() {
        // A fork's copy is counted only when the persistence forks (RDB
        // saves and AOF rewrites both do), so the same share gives more
        // maxmemory without one.
        let mm = |persistence| {
            let mut p = profile("low-memory");
            p.redis.persistence = persistence;
            let plan = plan_of(&p, &host(&p, 4, 2, 15));
            let r = plan.redis.unwrap();
            crate::units::parse_redis_memory(value(&r, "maxmemory").unwrap()).unwrap()
        };
        assert!(mm(Persistence::None) > mm(Persistence::Rdb));
        assert!(mm(Persistence::None) > mm(Persistence::Aof));
        assert_eq!(mm(Persistence::Aof), mm(Persistence::RdbAof));
    }

    #[test]
    fn huge_pages_are_reserved_only_when_postgres_uses_them() {
        // (profile, sysctl has vm.nr_hugepages)
        let rows = [
            ("powerhouse", true),
            ("bulk-ingest", false),
            ("low-memory", false),
        ];
        for (name, huge) in rows {
            let plan = plan_of(&profile(name), &host(&profile(name), 64, 16, 16));
            assert_eq!(
                value(&plan.sysctl, "vm.nr_hugepages").is_some(),
                huge,
                "{name}"
            );
            assert_eq!(
                value(&plan.postgres, "huge_pages"),
                Some(if huge { "on" } else { "off" }),
                "{name}"
            );
        }
    }

    #[test]
    fn zfs_datasets_only_when_the_data_is_on_zfs() {
        // (ZFS in use, data on ZFS, dataset script rendered)
        let rows = [(true, false, false), (true, true, true)];
        for (zfs, on_zfs, script) in rows {
            let mut h = host(&profile("powerhouse"), 64, 16, 16);
            (h.zfs.value, h.pg_on_zfs.value, h.zfs_datasets) = (zfs, on_zfs, on_zfs);
            let plan = plan_of(&profile("powerhouse"), &h);
            let z = plan.zfs.expect("ZFS in use: the ARC is capped");
            assert_eq!(z.script, script, "zfs={zfs} on_zfs={on_zfs}");
            assert!(z.arc_max.bytes() > 0);
        }
    }

    #[test]
    fn pgbouncer_pools_fit_max_connections() {
        // (profile, host GiB): PgBouncer's server connections plus direct
        // and superuser slots are PostgreSQL's max_connections.
        let rows = [("low-memory", 4), ("bulk-ingest", 32), ("powerhouse", 64)];
        for (name, gib) in rows {
            let plan = plan_of(&profile(name), &host(&profile(name), gib, 8, 16));
            let b = plan.pgbouncer.as_ref().unwrap();
            let n = |s, k| value(s, k).unwrap().parse::<u32>().unwrap();
            let p = profile(name);
            let servers = n(b, "default_pool_size") + n(b, "reserve_pool_size");
            assert_eq!(
                n(&plan.postgres, "max_connections"),
                servers + p.pgbouncer.direct_connections + 3,
                "{name}"
            );
        }
    }
}
