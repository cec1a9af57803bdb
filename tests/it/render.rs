//! Rendering: snapshots of every built-in profile's files, determinism,
//! version-specific parameters, and the property that every rendered set
//! fits its host or is refused with the numbers.

use crate::harness;
use crate::harness::{host_for, with_zfs};
use dbtune::facts::Sourced;
use dbtune::facts::StorageKind;
use dbtune::plan::{self, Host};
use dbtune::profile::{Profile, BUILTIN};
use dbtune::read::report;
use dbtune::render;
use dbtune::units::ByteSize;
use dbtune::version::PgVersion;
use proptest::prelude::*;

fn profile(name: &str) -> Profile {
    harness::builtin(name)
}

fn nominal(p: &Profile) -> Host {
    host_for(p, None, None, None, None)
}

fn files(p: &Profile, h: &Host) -> Vec<render::Artifact> {
    let plan = plan::build(p, h).unwrap_or_else(|e| panic!("{e}"));
    render::render(&plan, None).unwrap()
}

#[test]
fn snapshots_of_every_builtin_profile_on_its_nominal_host() {
    for (name, _) in BUILTIN {
        let p = profile(name);
        for a in files(&p, &nominal(&p)) {
            insta::assert_snapshot!(format!("{name}__{}", a.file), a.content);
        }
    }
}

#[test]
fn snapshots_of_zfs_files_for_powerhouse_on_zfs() {
    let p = profile("powerhouse");
    let h = with_zfs(nominal(&p), true, true);
    for a in files(&p, &h)
        .into_iter()
        .filter(|a| a.kind == dbtune::service::FileKind::Zfs)
    {
        insta::assert_snapshot!(format!("powerhouse-zfs__{}", a.file), a.content);
    }
}

#[test]
fn rendering_is_byte_identical_for_the_same_inputs() {
    for (name, _) in BUILTIN {
        let p = profile(name);
        assert_eq!(files(&p, &nominal(&p)), files(&p, &nominal(&p)), "{name}");
    }
}

#[test]
fn every_builtin_profile_fits_its_nominal_host_by_its_parsed_files() {
    for (name, _) in BUILTIN {
        let p = profile(name);
        let h = nominal(&p);
        let plan = plan::build(&p, &h).unwrap();
        let artifacts = render::render(&plan, None).unwrap();
        let r = render::check(&plan, &artifacts).unwrap();
        assert!(
            r.ok() && r.findings.is_empty(),
            "{name}:\n{}",
            report::text(&r, false)
        );
        assert!(
            r.budget.worst > h.ram.value.scale(0.9),
            "{name} leaves more than 10% unused:\n{}",
            report::text(&r, false)
        );
    }
}

#[test]
fn every_profile_passes_its_own_check_on_every_postgres_version() {
    for (name, _) in BUILTIN {
        let p = profile(name);
        for v in PgVersion::all().map(PgVersion::major) {
            for zfs in [false, true] {
                let h = host_for(&p, None, None, None, Some(v));
                let h = with_zfs(h.clone(), zfs, h.pg_on_zfs.value);
                let plan = plan::build(&p, &h).unwrap();
                let r = render::check(&plan, &render::render(&plan, None).unwrap()).unwrap();
                assert!(
                    r.ok() && r.findings.is_empty(),
                    "{name} PG {v} zfs {zfs}:\n{}",
                    report::text(&r, false)
                );
            }
        }
    }
}

/// What render owns in --out (the files it removes once it no longer
/// makes them) is exactly what it makes, for every service set.
#[test]
fn the_files_render_owns_are_the_files_it_makes() {
    use dbtune::service::Service;
    let sets: &[&[Service]] = &[
        &[Service::Postgres],
        &[Service::Postgres, Service::Redis],
        &[Service::Postgres, Service::Pgbouncer],
        &[
            Service::Postgres,
            Service::Redis,
            Service::Pgbouncer,
            Service::Zfs,
        ],
    ];
    for (name, _) in BUILTIN {
        for services in sets {
            for zfs in [false, true] {
                let mut p = profile(name).with_services(services);
                // Ownership, not pools: the app may connect directly here.
                p.postgres.app_connections = None;
                let h = with_zfs(nominal(&p), zfs, zfs);
                let plan = plan::build(&p, &h).unwrap();
                let mut made = render::render(&plan, None).unwrap();
                let budget = render::check(&plan, &made).unwrap().budget;
                made.extend(render::render_limits(&plan, &budget, None).unwrap());
                let names: std::collections::BTreeSet<&str> = made.iter().map(|a| a.file).collect();
                assert_eq!(names.len(), made.len(), "{name}: a file twice");
                assert_eq!(
                    names,
                    render::files_of(&plan),
                    "{name} {services:?} zfs {zfs}"
                );
            }
        }
    }
}

fn pg_names(content: &str) -> Vec<String> {
    content
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
        .map(|l| l.split(" = ").next().unwrap().to_string())
        .collect()
}

#[test]
fn postgres_parameters_follow_the_version() {
    let p = profile("bulk-ingest");
    for v in PgVersion::all().map(PgVersion::major) {
        let h = host_for(&p, None, None, None, Some(v));
        let conf = files(&p, &h)
            .into_iter()
            .find(|a| a.file == "postgresql.conf")
            .unwrap()
            .content;
        let names = pg_names(&conf);
        let has = |n: &str| names.iter().any(|x| x == n);
        assert_eq!(has("io_method"), v >= 18, "io_method on {v}");
        assert_eq!(has("io_workers"), v >= 18, "io_workers on {v}");
        assert_eq!(
            has("autovacuum_worker_slots"),
            v >= 18,
            "autovacuum_worker_slots on {v}"
        );
        assert_eq!(has("summarize_wal"), v >= 17, "summarize_wal on {v}");
        // lz4 only for a build known to have it: the servers tested here
        // (npm's builds) refuse it and would not start.
        assert!(conf.contains(if v >= 15 {
            "wal_compression = pglz"
        } else {
            "wal_compression = on"
        }));
        let mut with_lz4 = host_for(&p, None, None, None, Some(v));
        with_lz4.pg_build = Sourced::new(Some(vec!["lz4".into()]), "test");
        let conf_lz4 = files(&p, &with_lz4)
            .into_iter()
            .find(|a| a.file == "postgresql.conf")
            .unwrap()
            .content;
        assert_eq!(
            conf_lz4.contains("wal_compression = lz4"),
            v >= 15,
            "lz4 on {v}"
        );
        assert_eq!(has("io_combine_limit"), v >= 17, "io_combine_limit on {v}");
        assert_eq!(
            has("io_max_combine_limit"),
            v >= 18,
            "io_max_combine_limit on {v}"
        );
        assert_eq!(
            has("vacuum_buffer_usage_limit"),
            v >= 16,
            "vacuum_buffer_usage_limit on {v}"
        );
        assert_eq!(
            has("autovacuum_vacuum_max_threshold"),
            v >= 18,
            "autovacuum_vacuum_max_threshold on {v}"
        );
        assert!(conf.contains(if v >= 15 {
            "hash_mem_multiplier = 2.0"
        } else {
            "hash_mem_multiplier = 1.0"
        }));
    }
}

#[test]
fn powerhouse_two_gib_is_refused_with_numbers_and_a_hint() {
    let p = profile("powerhouse");
    let h = host_for(&p, Some(ByteSize::gib(2)), None, None, None);
    let e = plan::build(&p, &h).unwrap_err();
    assert!(
        e.message().contains("does not fit a host with 2 GiB"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("OS reserve"), "{}", e.message());
    assert!(e.hint().is_some_and(|h| !h.is_empty()), "{e}");
}

fn storage() -> impl Strategy<Value = StorageKind> {
    prop_oneof![
        Just(StorageKind::Nvme),
        Just(StorageKind::Ssd),
        Just(StorageKind::Hdd)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// For any host up to 64 TiB and 4096 CPUs, a built-in profile renders
    /// files whose parsed budget fits and that hold no finding (no safety
    /// finding either: nothing that loses data or stops a server), or
    /// refuses with the numbers.
    #[test]
    fn rendered_sets_fit_or_are_refused(
        ram_mib in prop_oneof![1024u64..=512 * 1024, 1024u64..=64 * 1024 * 1024],
        cpus in prop_oneof![1u32..=128, 1u32..=4096],
        storage in storage(),
        version in 13u32..=18,
        zfs in any::<bool>(),
        which in 0usize..3,
    ) {
        let p = profile(BUILTIN[which].0);
        let h = host_for(&p, Some(ByteSize::mib(ram_mib)), Some(cpus), Some(storage), Some(version));
        let h = with_zfs(h, zfs, zfs);
        match plan::build(&p, &h) {
            Ok(plan) => {
                let artifacts = render::render(&plan, None).unwrap();
                let r = render::check(&plan, &artifacts).unwrap();
                prop_assert!(
                    r.ok() && r.findings.is_empty(),
                    "{} on {}:\n{}", p.name, h.ram.value, report::text(&r, false)
                );
            }
            Err(e) => {
                prop_assert!(e.message().contains("does not fit a host with"), "{}", e.message());
                prop_assert!(e.hint().is_some_and(|h| !h.is_empty()), "{}", e);
            }
        }
    }
}

/// The same property over a fixed grid, so the edges (1 GiB, odd sizes just
/// above a profile's fixed needs, 128 CPUs) are always covered.
#[test]
fn a_grid_of_hosts_fits_or_is_refused() {
    let rams_mib: Vec<u64> = [
        1,
        2,
        3,
        4,
        5,
        6,
        8,
        12,
        16,
        24,
        32,
        48,
        64,
        96,
        128,
        256,
        512,
        2048,
        17 * 1024,
        64 * 1024,
    ]
    .iter()
    .flat_map(|g| [g * 1024, g * 1024 + 333])
    .collect();
    let mut rendered = 0;
    let mut refused = 0;
    for (name, _) in BUILTIN {
        let p = profile(name);
        for &ram in &rams_mib {
            for cpus in [1, 2, 3, 8, 16, 128, 4096] {
                for version in [13, 15, 17, 18] {
                    for (storage, zfs, pg_on_zfs) in [
                        (StorageKind::Hdd, false, false),
                        (StorageKind::Nvme, true, true),
                        (StorageKind::Ssd, true, false),
                    ] {
                        let h = host_for(
                            &p,
                            Some(ByteSize::mib(ram)),
                            Some(cpus),
                            Some(storage),
                            Some(version),
                        );
                        let h = with_zfs(h, zfs, pg_on_zfs);
                        match plan::build(&p, &h) {
                            Ok(plan) => {
                                let r = render::check(&plan, &render::render(&plan, None).unwrap())
                                    .unwrap();
                                assert!(
                                    r.ok() && r.findings.is_empty(),
                                    "{name} {ram} MiB {cpus} CPUs PG {version}:\n{}",
                                    report::text(&r, false)
                                );
                                rendered += 1;
                            }
                            Err(e) => {
                                assert!(
                                    e.message().contains("does not fit a host with")
                                        && e.hint().is_some(),
                                    "{}",
                                    e.message()
                                );
                                refused += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(rendered > refused, "{rendered} rendered, {refused} refused");
}

/// LimitNOFILE= above the kernel's fs.nr_open keeps a unit from starting:
/// with the most clients a profile may allow, every limit render writes
/// stays within it.
#[test]
fn open_file_limits_never_exceed_the_kernels_nr_open() {
    let mut p = profile("powerhouse");
    p.pgbouncer.max_client_conn = 1_000_000;
    p.redis.maxclients = dbtune::profile::MAX_CLIENTS;
    let h = host_for(&p, Some(ByteSize::gib(256)), None, None, None);
    let plan = plan::build(&p, &h).unwrap_or_else(|e| panic!("{e}"));
    let artifacts = render::render(&plan, None).unwrap();
    let report = render::check(&plan, &artifacts).unwrap();
    let limits = render::limits_of(&plan, &report.budget);
    assert_eq!(limits.len(), 3, "PostgreSQL, PgBouncer and Redis");
    for l in &limits {
        assert!(
            l.nofile <= dbtune::profile::NR_OPEN_DEFAULT,
            "{}: {}",
            l.unit,
            l.nofile
        );
    }
}

/// The comment above a setting says the number it uses: over a grid of
/// hosts (700 MiB to 768 GiB, 1 to 128 CPUs; each seed, and PostgreSQL
/// alone for each workload), "one per CPU (N" and "at most N" name the
/// value written below, maintenance_work_mem's bounds and the index
/// workers it feeds are the values written, the WAL's "small host" is one,
/// shared_buffers names only what this host has, and the systemd drop-in
/// names the instance to restart.
#[test]
fn comments_name_the_numbers_their_values_use() {
    let number_after = |text: &str, marker: &str| -> Option<u32> {
        let rest = &text[text.find(marker)? + marker.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
    };
    let mb = |v: &str| -> u64 {
        let v = v.trim_matches('\'');
        match (
            v.strip_suffix("GB"),
            v.strip_suffix("MB"),
            v.strip_suffix("kB"),
        ) {
            (Some(n), _, _) => n.parse::<u64>().unwrap() * 1024,
            (_, Some(n), _) => n.parse().unwrap(),
            (_, _, Some(n)) => n.parse::<u64>().unwrap() / 1024,
            _ => panic!("{v}"),
        }
    };
    let mut profiles: Vec<Profile> = BUILTIN.iter().map(|(n, _)| profile(n)).collect();
    for w in [
        dbtune::profile::Workload::Web,
        dbtune::profile::Workload::Analytics,
        dbtune::profile::Workload::Ingest,
    ] {
        profiles.push(profile(dbtune::profile::GENERIC).with_workload(Some(w)).0);
    }
    for p in &profiles {
        let name = format!("{} ({})", p.name, p.workload);
        for cpus in [1u32, 2, 4, 8, 12, 32, 33, 64, 96, 128] {
            for ram_mib in [
                700u64, 3072, 8192, 12288, 49152, 65536, 98304, 262144, 786432,
            ] {
                let ram = format!("{ram_mib} MiB");
                let h = host_for(p, Some(ByteSize::mib(ram_mib)), Some(cpus), None, None);
                let Ok(plan) = plan::build(p, &h) else {
                    continue;
                };
                let files = render::render(&plan, None).unwrap();
                let conf = &files
                    .iter()
                    .find(|a| a.file == "postgresql.conf")
                    .unwrap()
                    .content;
                let lines: Vec<&str> = conf.lines().collect();
                let at = lines
                    .iter()
                    .position(|l| l.starts_with("max_parallel_workers ="))
                    .unwrap();
                let value: u32 = lines[at]
                    .trim_start_matches("max_parallel_workers =")
                    .trim()
                    .parse()
                    .unwrap();
                let setting = |key: &str| -> (&str, &str) {
                    let at = lines
                        .iter()
                        .position(|l| l.starts_with(&format!("{key} = ")))
                        .unwrap_or_else(|| panic!("{name} {ram}: no {key}"));
                    (lines[at - 1], lines[at].split(" = ").nth(1).unwrap())
                };
                let (why, mwm) = setting("maintenance_work_mem");
                let label = format!("{name} {cpus} CPUs {ram}: {why} / {mwm}");
                let (_, index_workers) = setting("max_parallel_maintenance_workers");
                let index_workers: u64 = index_workers.parse().unwrap();
                let mwm = mb(mwm);
                // Below the default only where the budget says so; else 32
                // MB a participant of an index build, at least 64 MB, and
                // the comment's numbers are the rendered ones.
                if why.contains("below PostgreSQL's default 64 MB") {
                    assert!(mwm < 64, "{label}");
                    if index_workers == 0 {
                        assert!(why.contains("the leader sorts alone"), "{label}");
                    } else {
                        assert_eq!(
                            number_after(why, "it feeds ").map(u64::from),
                            Some(index_workers),
                            "{label}"
                        );
                    }
                } else if index_workers == 0 {
                    assert!(why.contains("the leader sorts alone"), "{label}");
                    assert_eq!(mwm, 64, "{label}");
                } else {
                    assert_eq!(
                        number_after(why, "32 MB for each of the ").map(u64::from),
                        Some(index_workers + 1),
                        "{label}"
                    );
                    assert_eq!(
                        number_after(why, "the leader and ").map(u64::from),
                        Some(index_workers),
                        "{label}"
                    );
                    assert_eq!(mwm, (32 * (index_workers + 1)).max(64), "{label}");
                }
                assert!(
                    (index_workers + 1) * 32 <= mwm || index_workers == 0,
                    "{label}"
                );
                let (why, _) = setting("max_wal_size");
                let (_, sb) = setting("shared_buffers");
                let label = format!("{name} {cpus} CPUs {ram}: {why} / shared_buffers {sb}");
                if why.contains("shared_buffers") {
                    assert!(why.contains(&format!("shared_buffers {sb}")), "{label}");
                }
                if why.contains("small host") {
                    assert!(mb(sb) < 512, "{label}");
                }
                let (why, ecs) = setting("effective_cache_size");
                let cap = ram_mib * 3 / 4;
                if !why.contains("clamped") {
                    assert!(mb(ecs) <= cap, "{name} {ram}: {why} / {ecs}");
                    assert_eq!(
                        why.contains("75% of RAM"),
                        mb(ecs) == cap,
                        "{name} {ram}: {why} / {ecs}"
                    );
                }
                let (why, _) = setting("shared_buffers");
                if why.contains("PostgreSQL gets after") {
                    assert_eq!(
                        why.contains("reservations"),
                        !p.reserve.is_empty(),
                        "{name} {ram}: {why}"
                    );
                }
                let comment = lines[at - 1];
                let label = format!("{name} {cpus} CPUs {ram}: {comment} / {}", lines[at]);
                if let Some(n) = number_after(comment, "one per CPU (") {
                    assert_eq!(n, value, "{label}");
                }
                if let Some(n) = number_after(comment, "at most ") {
                    assert_eq!(n, value, "{label}");
                }
                assert!(
                    comment.contains("one per CPU") || comment.contains("one CPU"),
                    "{label}"
                );
                let limits = render::render_limits(
                    &plan,
                    &render::check(&plan, &files).unwrap().budget,
                    None,
                )
                .unwrap();
                let dropin = &limits
                    .iter()
                    .find(|a| a.file == "postgresql.service.conf")
                    .unwrap()
                    .content;
                // Each LimitNOFILE= is the sum its comment gives, or says
                // what raised it.
                for l in &limits {
                    let lines: Vec<&str> = l.content.lines().collect();
                    let Some(at) = lines.iter().position(|x| x.starts_with("LimitNOFILE=")) else {
                        continue;
                    };
                    let value: u64 = lines[at]["LimitNOFILE=".len()..].parse().unwrap();
                    let why = lines[at - 1];
                    let sum = match (
                        number_after(why, "one per client ("),
                        number_after(why, "per server connection ("),
                        number_after(why, "(maxclients "),
                    ) {
                        (Some(c), Some(s), _) => Some(u64::from(c + s) + 100),
                        (_, _, Some(c)) => Some(u64::from(c) + 128),
                        _ => None,
                    };
                    if let Some(sum) = sum {
                        if sum != value {
                            assert!(
                                why.contains(&format!("({sum}), raised to {value}")),
                                "{name} {ram} {}: {why} / {value}",
                                l.file
                            );
                        }
                    }
                }
                // The instance ends its line: the next line is not joined to it.
                assert!(
                    dropin.lines().any(|l| l
                        == format!(
                            "#   systemctl daemon-reload && systemctl restart postgresql@{}-main",
                            h.pg_version.value
                        )),
                    "{dropin}"
                );
            }
        }
    }
}

/// Hosts from 512 MiB to 1 TiB, with no profile named (each workload) and
/// with each seed named: every one renders, or is refused with a hint
/// whose `--profile NAME` is a profile that exists. With none named the
/// output says it is PostgreSQL alone, and nothing but PostgreSQL's files
/// is rendered.
#[test]
fn a_grid_of_hosts_renders_or_is_refused_with_a_profile_that_exists() {
    let hosts = [
        ("512MiB", "1"),
        ("1GiB", "1"),
        ("2GiB", "2"),
        ("4GiB", "2"),
        ("23.5GiB", "2"),
        ("40GiB", "16"),
        ("256GiB", "32"),
        ("1TiB", "64"),
    ];
    let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    let mut runs: Vec<Vec<&str>> = vec![vec![]];
    for w in ["web", "mixed", "analytics", "ingest"] {
        runs.push(vec!["--workload", w]);
    }
    for n in ["low-memory", "bulk-ingest", "powerhouse"] {
        runs.push(vec!["--profile", n]);
    }
    for (ram, cpus) in hosts {
        for extra in &runs {
            let out = harness::dbtune()
                .args(["render", "--ram", ram, "--cpus", cpus, "--storage", "ssd"])
                .args(["--filesystem", "ext4", "--pg-version", "16"])
                .args(extra)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let row = format!("{ram} {cpus} CPUs {extra:?}");
            let named = extra.first() == Some(&"--profile");
            match out.status.code() {
                Some(0) if !named => {
                    assert!(err.contains("PostgreSQL alone for a"), "{row}: {err}");
                    assert!(stdout.contains("max_connections = "), "{row}");
                    assert!(!stdout.contains("==> redis.conf"), "{row}");
                    assert!(!stdout.contains("==> pgbouncer.ini"), "{row}");
                }
                Some(0) => {}
                Some(1) => {
                    // PostgreSQL alone is refused only on the smallest host.
                    assert!(
                        named || ram == "512MiB",
                        "{row}: PostgreSQL alone refused\n{err}"
                    );
                    let hint = err
                        .lines()
                        .find(|l| l.starts_with("hint: "))
                        .unwrap_or_else(|| panic!("{row}: no hint\n{err}"));
                    let named_in = |flag: &str| -> Vec<String> {
                        hint.split(flag)
                            .skip(1)
                            .map(|t| {
                                t.split(|c: char| !(c.is_alphanumeric() || c == '-'))
                                    .next()
                                    .unwrap()
                                    .to_string()
                            })
                            .collect()
                    };
                    let (profiles, workloads) = (named_in("--profile "), named_in("--workload "));
                    assert!(
                        !profiles.is_empty() || !workloads.is_empty(),
                        "{row}: the hint names no profile or workload: {hint}"
                    );
                    for p in profiles {
                        assert!(
                            names.contains(&p.as_str()),
                            "{row}: `{p}` does not exist: {hint}"
                        );
                    }
                    for w in workloads {
                        let ok = harness::dbtune()
                            .args(["render", "--ram", ram, "--cpus", cpus, "--storage", "ssd"])
                            .args([
                                "--filesystem",
                                "ext4",
                                "--pg-version",
                                "16",
                                "--workload",
                                &w,
                            ])
                            .output()
                            .unwrap();
                        assert_eq!(
                            ok.status.code(),
                            Some(0),
                            "{row}: --workload {w} does not render"
                        );
                    }
                }
                c => panic!("{row}: exit {c:?}\n{err}"),
            }
        }
    }
}

/// The built-in low-memory profile's file, renamed `name`.
fn low_memory_as(name: &str) -> String {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == "low-memory")
        .unwrap()
        .1
        .replace("name = \"low-memory\"", &format!("name = \"{name}\""))
}

/// `dbtune render --profile-file FILE --out OUT`.
fn render_file(file: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    harness::dbtune()
        .args(["render", "--profile-file"])
        .arg(file)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// The profile file p.toml was refused: exit 2, `what` said at its line.
fn refused_at_line(run: &std::process::Output, what: &str) {
    assert_eq!(run.status.code(), Some(2), "{}", harness::whole_output(run));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains(what) && err.contains("p.toml:"), "{err}");
}

/// A rendered redis.conf's maxmemory, in mb.
fn maxmemory_mb(conf: &str) -> u64 {
    conf.lines()
        .find_map(|l| l.strip_prefix("maxmemory "))
        .and_then(|v| v.trim_end_matches("mb").parse().ok())
        .unwrap()
}

/// Redis's fragmentation and fork copy as measured on the host, stated in
/// the profile: maxmemory is sized with them instead of the ones measured
/// for its role (mixed: 1.11 and 1.56 with their margin), the comment says whose they are and what a worse one
/// costs, check-budget of the directory judges with them (the manifest
/// carries them) and the real Redis starts on the file; a value out of
/// range is refused at its line.
#[test]
fn redis_factors_measured_on_the_host_size_maxmemory_and_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let base = low_memory_as("staging-measured");
    let stated = base.replace(
        "[redis]\n",
        "[redis]\nfragmentation = 1.1\nfork_copy = 0.3\n",
    );
    assert_ne!(stated, base);
    let file = dir.path().join("p.toml");
    std::fs::write(&file, &stated).unwrap();
    let out = dir.path().join("out");
    let run = render_file(&file, &out);
    assert!(run.status.success(), "{}", harness::whole_output(&run));
    let conf = std::fs::read_to_string(out.join("redis.conf")).unwrap();
    let mm = maxmemory_mb;
    let seed_out = dir.path().join("seed");
    let seed = harness::dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(&seed_out)
        .output()
        .unwrap();
    assert!(seed.status.success(), "{}", harness::whole_output(&seed));
    let seed_mm = mm(&std::fs::read_to_string(seed_out.join("redis.conf")).unwrap());
    assert!(mm(&conf) > seed_mm * 3 / 2, "{} vs {seed_mm}", mm(&conf));
    assert!(
        conf.contains("the factors are the profile's, measured on its host"),
        "{conf}"
    );
    let check = harness::dbtune()
        .args(["check-budget", "--level", "worst"])
        .arg(&out)
        .output()
        .unwrap();
    let text = harness::whole_output(&check);
    assert!(check.status.success(), "{text}");
    assert!(
        text.contains("x 1.10 worst (stated by the profile's [redis]"),
        "{text}"
    );
    assert!(text.contains("maxmemory x 0.30 (stated"), "{text}");
    // The real Redis takes the file (its paths are the Debian layout's:
    // only dir and port are moved to the test's).
    let conf_here: String = conf
        .lines()
        .filter(|l| !l.starts_with("dir ") && !l.starts_with("port ") && !l.starts_with("bind "))
        .map(|l| format!("{l}\n"))
        .collect();
    let r = harness::Redis::start(&conf_here, &[]);
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "maxmemory"])
            .lines()
            .nth(1)
            .map(str::trim),
        Some((mm(&conf) * 1048576).to_string().as_str())
    );
    // Out of range: exit 2 at the line.
    std::fs::write(
        &file,
        base.replace("[redis]\n", "[redis]\nfragmentation = 0.5\n"),
    )
    .unwrap();
    let bad = harness::dbtune()
        .args(["render", "--profile-file"])
        .arg(&file)
        .output()
        .unwrap();
    refused_at_line(&bad, "fragmentation = 0.5 is out of range");
}

/// The peak write rate a profile states sizes the AOF buffer: render takes
/// 3 s of it from Redis's share before maxmemory, the manifest carries it
/// so check-budget of the directory counts the same term, the flag
/// overrides it, and a rate out of range is refused at its line.
#[test]
fn a_stated_write_rate_sizes_the_aof_buffer_in_render_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let base = low_memory_as("staging-writes");
    let file = dir.path().join("p.toml");
    let render = |profile: &str, out: &str| {
        std::fs::write(&file, profile).unwrap();
        let out = dir.path().join(out);
        let run = render_file(&file, &out);
        (out, run)
    };
    let mm = |out: &std::path::Path| {
        maxmemory_mb(&std::fs::read_to_string(out.join("redis.conf")).unwrap())
    };
    let (assumed, run) = render(&base, "assumed");
    assert!(run.status.success(), "{}", harness::whole_output(&run));
    let (stated, run) = render(
        &base.replace("[redis]\n", "[redis]\nwrite_rate = \"32MiB\"\n"),
        "stated",
    );
    assert!(run.status.success(), "{}", harness::whole_output(&run));
    // 192 MiB for the buffer and its copy against 48 MiB: 144 MiB less
    // share, divided by 1.11 + 1.56 + 0.1 per byte of maxmemory (role
    // mixed).
    let (a, s) = (mm(&assumed), mm(&stated));
    assert!((50..=54).contains(&(a - s)), "{a} vs {s}");
    let conf = std::fs::read_to_string(stated.join("redis.conf")).unwrap();
    assert!(conf.contains("and AOF buffer (192 MiB)"), "{conf}");
    let check = |dir: &std::path::Path, extra: &[&str]| {
        let run = harness::dbtune()
            .args(["check-budget", "--level", "worst"])
            .args(extra)
            .arg(dir)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", harness::whole_output(&run));
        harness::whole_output(&run)
    };
    let text = check(&stated, &[]);
    assert!(
        text.contains("2 x 3 s x 32 MiB/s of writes at peak (stated)"),
        "{text}"
    );
    let text = check(&assumed, &[]);
    assert!(
        text.contains("2 x 3 s x 8 MiB/s of writes at peak (assumed, --redis-write-rate)"),
        "{text}"
    );
    let text = check(&assumed, &["--redis-write-rate", "1MiB"]);
    assert!(
        text.contains("2 x 3 s x 1 MiB/s of writes at peak (stated)"),
        "{text}"
    );
    // Out of range: exit 2 at the line, nothing written.
    let (out, bad) = render(
        &base.replace("[redis]\n", "[redis]\nwrite_rate = \"20GiB\"\n"),
        "bad",
    );
    refused_at_line(&bad, "write_rate");
    assert!(!out.exists());
}
