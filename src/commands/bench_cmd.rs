//! `bench`: the configs compared on scratch clusters of this machine.

use std::process::ExitCode;

use anyhow::Result;

use crate::console;
use crate::error::Error;
use crate::facts::detect::Detector;
use crate::facts::Facts;
use crate::note;
use crate::plan;
use crate::profile::{self, Profiles};
use crate::render;
use crate::service::FileKind;
use crate::target;
use crate::version::PgVersion;

pub(super) fn bench(args: crate::cli::BenchArgs) -> Result<ExitCode> {
    use crate::bench::{self, Options, Workload};
    let mut facts = Detector::host().detect(None);
    if let Some(ram) = args.ram {
        // The host bench runs as: every config is rendered for it.
        facts.memory.physical = crate::facts::Sourced::new(ram, "bench --ram");
        facts.memory.cgroup_limit = None;
        if let Some(n) = args.cpus {
            facts.cpu.logical = crate::facts::Sourced::new(n, "bench --cpus");
            facts.cpu.cgroup_quota = None;
        }
        // Refused now, not after the configs were rendered: a run without
        // the limit would measure this machine, not the host.
        let probe = format!("dbtune-bench-probe-{}", std::process::id());
        let host = host_of(&args).expect("--ram given");
        let throttle = host.throttle().map_err(|e| {
            Error::plain(
                format!("--disk-mbps/--disk-iops need the scratch clusters on a disk: {e:#}"),
                "set TMPDIR to a directory on a block device, or leave out --disk-mbps and --disk-iops",
            )
        })?;
        if let Err(e) = bench::cgroup::Cgroup::create(&probe, ram, args.cpus, throttle) {
            return Err(Error::plain(
                format!("--ram needs a memory cgroup of its own: {e:#}"),
                "run as root on a machine with cgroup v1's memory controller or a delegated cgroup v2 one (and v1's cpu controller or v2's cpu for --cpus, v1's blkio or v2's io for --disk-mbps/--disk-iops), or leave out --ram",
            )
            .into());
        }
    }
    let ram = facts.memory.effective();
    let (cpus, storage) = (facts.cpu.effective(), facts.storage.kind.value);
    let pg_version = facts.servers.pg_version().ok_or_else(|| {
        Error::plain(
            format!(
                "no PostgreSQL {} found on this machine",
                PgVersion::range_text()
            ),
            "apt-get install postgresql",
        )
    })?;
    let (configs, side_files) = bench_configs(&args, &facts, pg_version)?;
    let workloads = if args.only.is_empty() {
        vec![
            Workload::Floor,
            Workload::CopyIndex,
            Workload::ConcurrentCopy,
            Workload::Tpcb,
            Workload::SelectOnly,
            Workload::Write,
            Workload::Analytic,
        ]
    } else {
        args.only.clone()
    };
    let pooled = workloads.iter().any(|w| w.needs_pooler());
    // The direct pgbench workloads need it only for a config whose server
    // cannot take --clients straight (its host's clients come through it).
    let direct = workloads.iter().any(|w| w.direct_pgbench());
    let pooler = match (&side_files.pgbouncer, pooled) {
        (None, true) => {
            return Err(Error::plain(
                "the pooled workloads need a profile that renders pgbouncer.ini",
                "name one with --profile (bulk-ingest, powerhouse, low-memory)",
            )
            .into())
        }
        (None, false) => None,
        (Some(_), false) if !direct => None,
        (Some(ini), _) => {
            let bin = match &args.pgbouncer {
                Some(p) => Some(p.clone()),
                None => match bench::services::find_program("pgbouncer", "pgbouncer") {
                    Ok(p) => Some(p),
                    Err(e) if pooled => {
                        return Err(Error::plain(
                            format!("{e:#}"),
                            "or name it with --pgbouncer PATH",
                        )
                        .into())
                    }
                    Err(e) => {
                        note!("{e:#}: a config whose server cannot take --clients {} straight will have its direct runs refused (too many clients)", args.clients);
                        None
                    }
                },
            };
            match bin {
                Some(bin) => Some(bench::PoolerSpec {
                    bin,
                    pool: bench::services::PoolSettings::parse(ini)?,
                }),
                None => None,
            }
        }
    };
    let redis =
        match (&side_files.redis, args.redis) {
            (_, false) => None,
            (None, true) => {
                return Err(Error::plain(
                    "--redis needs a profile that renders redis.conf",
                    "name one with --profile (low-memory, bulk-ingest, powerhouse)",
                )
                .into())
            }
            (Some(conf), true) => Some(bench::RedisSpec {
                bin: match &args.redis_server {
                    Some(p) => p.clone(),
                    None => bench::services::find_program("redis-server", "redis-server").map_err(
                        |e| Error::plain(format!("{e:#}"), "or name it with --redis-server PATH"),
                    )?,
                },
                conf: conf.clone(),
                writes_per_sec: args.redis_writes,
            }),
        };
    let held = match (args.hold_reserves, side_files.reserves.as_slice()) {
        (false, _) => None,
        (true, []) => {
            return Err(Error::plain(
                "--hold-reserves needs a profile with [[reserve]] entries (the host's other processes)",
                "name one with --profile (low-memory, bulk-ingest, powerhouse), or leave out --hold-reserves",
            )
            .into())
        }
        (true, reserves) => {
            let bytes: u64 = reserves.iter().map(|r| r.memory.bytes()).sum();
            // Less than this and the cluster could not start beside them;
            // the holder is never the one the OOM killer picks, so the
            // cgroup would be stuck, not a config lost.
            let room = crate::units::ByteSize::gib(1);
            if bytes.saturating_add(room.bytes()) > ram.bytes() {
                return Err(Error::plain(
                    format!(
                        "the profile's reserves ({}) leave less than {room} of the host's {ram} for PostgreSQL and its services",
                        crate::units::ByteSize(bytes)
                    ),
                    "give --ram a larger host, or leave out --hold-reserves",
                )
                .into());
            }
            note!(
                "holding the profile's reserves in each cluster's cgroup: {}",
                reserves
                    .iter()
                    .map(|r| format!("{} {}", r.name, r.memory))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Some(bytes)
        }
    };
    let opts = Options {
        rows: args.rows,
        streams: args.streams,
        scale: args.scale.unwrap_or_else(|| match args.ram {
            Some(r) => bench::scale_of(r, args.data.factor()),
            None => bench::scale_for(ram),
        }),
        clients: args.clients,
        pooled_clients: args.pooled_clients.unwrap_or(args.clients),
        seconds: args.seconds,
        write_seconds: args.write_seconds,
        runs: args.runs,
        confirm: args.confirm,
        workloads,
        host: host_of(&args),
        pooler,
        redis,
        held,
        write_auto: args.write_auto,
        write_why: None,
    };
    match args.ram {
        Some(_) => note!(
            "bench as a host of {ram}, {cpus} CPUs (each cluster in a cgroup of that size{}), {storage}{}, PostgreSQL {pg_version}; pgbench scale {}; {} configs, {} runs each{}",
            if args.cpus.is_some() { " and CPU quota" } else { "" },
            disk_text(args.disk_mbps, args.disk_iops),
            opts.scale,
            configs.len(),
            opts.runs,
            confirm_text(&opts)
        ),
        None => note!(
            "bench on this machine: {ram}, {cpus} CPUs, {storage}, PostgreSQL {pg_version}; {} configs, {} runs each{}",
            configs.len(),
            opts.runs,
            confirm_text(&opts)
        ),
    }
    // What killed benches left in the temp dir (gigabytes a cluster at a
    // host's size) goes; this one's is removed on an interrupt too.
    let (stale, bytes) = bench::scratch::remove_stale(&std::env::temp_dir());
    if stale > 0 {
        note!(
            "removed {stale} scratch directories of benches no longer running ({} MiB)",
            bytes >> 20
        );
    }
    bench::scratch::on_interrupt()?;
    // Nothing more is said once an interrupt is being handled: what fails
    // then is the servers being stopped.
    let series = bench::run(&configs, &opts, |m| {
        if !bench::scratch::stopping() {
            note!("{m}")
        }
    });
    bench::scratch::wait_if_stopping();
    let series = series?;
    if args.json {
        console::print(&(serde_json::to_string_pretty(&series)? + "\n"))?;
    } else {
        console::print(&bench::report(&series, &configs, opts.runs))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the host line says of the confirming rounds.
fn confirm_text(o: &crate::bench::Options) -> String {
    match o.confirm {
        0 => String::new(),
        n => format!(", up to {n} more where two configs' ranges are apart"),
    }
}

/// The host bench runs as, from --ram, --cpus and the disk flags.
fn host_of(args: &crate::cli::BenchArgs) -> Option<crate::bench::HostSize> {
    let disk = (args.disk_mbps.is_some() || args.disk_iops.is_some()).then(|| {
        crate::bench::cgroup::DiskLimit {
            bytes_per_sec: args.disk_mbps.map(|m| m << 20),
            iops: args.disk_iops,
        }
    });
    Some(crate::bench::HostSize {
        ram: args.ram?,
        cpus: args.cpus,
        disk,
    })
}

/// ", a disk of 125 MiB/s and 3000 IOPS" for the host line, or nothing.
fn disk_text(mbps: Option<u64>, iops: Option<u64>) -> String {
    match (mbps, iops) {
        (None, None) => String::new(),
        (Some(m), None) => format!(", a disk of {m} MiB/s"),
        (None, Some(n)) => format!(", a disk of {n} IOPS"),
        (Some(m), Some(n)) => format!(", a disk of {m} MiB/s and {n} IOPS"),
    }
}

/// The pgbouncer.ini and redis.conf the first profile renders for the host:
/// the same pooler and Redis run beside every config.
#[derive(Default)]
struct SideFiles {
    pgbouncer: Option<String>,
    redis: Option<String>,
    /// The same profile's `[[reserve]]`s: the host's other processes.
    reserves: Vec<crate::profile::Reservation>,
}

/// The configs bench compares on this machine: PostgreSQL's defaults, a
/// PGTune-style baseline, each profile asked for (and its initial-load
/// variant), and the user's own files; with the first profile's PgBouncer
/// and Redis files.
fn bench_configs(
    args: &crate::cli::BenchArgs,
    facts: &Facts,
    pg_version: PgVersion,
) -> Result<(Vec<crate::bench::Config>, SideFiles)> {
    use crate::bench::{self, Config};
    let ram = facts.memory.effective();
    let (cpus, storage) = (facts.cpu.effective(), facts.storage.kind.value);
    let mut configs = vec![Config {
        name: "defaults".into(),
        conf: String::new(),
        extra: vec![],
    }];
    let names = if args.profile.is_empty() {
        vec![profile::GENERIC.to_string()]
    } else {
        args.profile.clone()
    };
    // PGTune for the type its users would pick for each profile's host.
    let mut types: Vec<bench::pgtune::DbType> = Vec::new();
    for name in &names {
        let t = bench::pgtune::DbType::for_profile(name);
        if !types.contains(&t) {
            types.push(t);
        }
    }
    for t in types {
        let host = bench::pgtune::Host {
            ram,
            cpus,
            storage,
            pg_version,
            connections: None,
            db_size: bench::pgtune::DbSize::MidRam,
        };
        configs.push(Config {
            name: format!("pgtune-{}", t.name()),
            conf: bench::pgtune::conf(t, &host),
            extra: vec![],
        });
    }
    let catalog = Profiles::load()?;
    let mut variants = Vec::new();
    for name in names {
        let (p, _) = catalog.get(&name)?;
        if args.initial_load && p.postgres.replication {
            let mut load = p.clone();
            load.postgres.replication = false;
            variants.push((format!("dbtune {name} initial-load"), load));
        }
        variants.push((format!("dbtune {name}"), p));
    }
    variants.sort_by_key(|(n, _)| n.ends_with("initial-load"));
    let mut side = SideFiles::default();
    for (label, p) in variants {
        let host = target::resolve(
            &target::Flags::default(),
            None,
            target::Purpose::Bench {
                profile: &p,
                facts,
                pg_version,
            },
        )?;
        let plan = plan::build(&p, &host)?;
        let files = render::render(&plan, None)?;
        let file = |kind: FileKind| {
            files
                .iter()
                .find(|a| a.kind == kind)
                .map(|a| a.content.clone())
        };
        let conf = file(FileKind::Postgres).expect("postgresql.conf is always rendered");
        if side.pgbouncer.is_none() && side.redis.is_none() && side.reserves.is_empty() {
            side.pgbouncer = file(FileKind::Pgbouncer);
            side.redis = file(FileKind::Redis);
            side.reserves = p.reserve.clone();
        }
        // No huge pages are reserved on this machine for the scratch cluster.
        let extra = if plan.postgres.value("huge_pages") == Some("on") {
            vec![("huge_pages".into(), "off".into())]
        } else {
            vec![]
        };
        configs.push(Config {
            name: label,
            conf,
            extra,
        });
    }
    if args.ceiling {
        // The plain profile's file (initial-load variants sort last).
        let base = configs
            .iter()
            .find(|c| c.name.starts_with("dbtune "))
            .expect("bench renders at least one profile");
        note!(
            "{}: {} with {} off; a scratch cluster's only, what no config that keeps its commits can pass with these memory sizes",
            bench::CEILING,
            base.name,
            bench::NO_DURABILITY.map(|(k, _)| k).join(", ")
        );
        configs.push(bench::ceiling(base));
    }
    for c in &args.config {
        let (name, path) = c.split_once('=').ok_or_else(|| {
            Error::plain(
                format!("--config `{c}` is not NAME=FILE"),
                "e.g. --config mine=/etc/postgresql/15/main/postgresql.conf",
            )
        })?;
        let conf = crate::read::include::read_text(std::path::Path::new(path))?;
        configs.push(Config {
            name: name.into(),
            conf,
            extra: vec![],
        });
    }
    Ok((configs, side))
}
