//! The servers' opinion of what dbtune renders: PostgreSQL, Redis and
//! PgBouncer from Debian's packages start with every built-in profile (and a
//! 1 GiB and a 128 GiB host), and what they report equals the files.

use crate::harness;
use std::path::Path;
use std::process::Command;

use crate::harness::{need, run, run_ok, PgBouncer, Postgres, Redis, ZfsPool};
use dbtune::profile::{Profile, BUILTIN};
use dbtune::render::Artifact;
use dbtune::units::{parse_redis_memory, ByteSize};

fn builtin(name: &str) -> Profile {
    let text = BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1;
    Profile::parse(text, Path::new(name)).unwrap()
}

fn fixture_profile(file: &str) -> Profile {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles")
        .join(file);
    dbtune::profile::load_file(&p).unwrap()
}

/// A rendering for the PostgreSQL major version installed here.
fn render_for(p: &Profile, ram: Option<ByteSize>, cpus: Option<u32>, zfs: bool) -> Vec<Artifact> {
    let host = harness::host_for(p, ram, cpus, None, Some(harness::pg_major()));
    let host = harness::with_zfs(host, zfs, zfs);
    harness::render_checked(p, &host)
}

fn file<'a>(files: &'a [Artifact], name: &str) -> &'a str {
    &files
        .iter()
        .find(|a| a.file == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .content
}

/// Starts PostgreSQL with the rendered postgresql.conf and checks every
/// setting reads back as written; then PgBouncer and pgbench when rendered.
fn postgres_and_pgbouncer(files: &[Artifact], label: &str) {
    postgres_and_pgbouncer_on(files, label, None)
}

/// As `postgres_and_pgbouncer`, with PgBouncer from Debian (None) or a
/// release built from Debian 13's sources.
fn postgres_and_pgbouncer_on(files: &[Artifact], label: &str, bouncer_version: Option<&str>) {
    let conf = file(files, "postgresql.conf");
    // This machine reserves no huge pages: the one setting overridden.
    let overrides: Vec<(&str, &str)> = if conf.contains("\nhuge_pages = on") {
        vec![("huge_pages", "off")]
    } else {
        vec![]
    };
    let pg = Postgres::start(conf, &overrides);

    let skip: Vec<&str> = overrides.iter().map(|(k, _)| *k).collect();
    let compared = harness::assert_reads_back(&pg, conf, &skip, label);
    assert!(compared >= 30, "{label}: only {compared} settings compared");

    let Some(ini) = files.iter().find(|a| a.file == "pgbouncer.ini") else {
        return;
    };
    let max_conn: u32 = pg
        .psql("postgres", "postgres", "SHOW max_connections")
        .trim()
        .parse()
        .unwrap();
    pg.psql(
        "postgres",
        "postgres",
        "CREATE ROLE app LOGIN PASSWORD 'secret'",
    );
    pg.psql("postgres", "postgres", "CREATE DATABASE app OWNER app");
    let bouncer = match bouncer_version {
        None => PgBouncer::start(&ini.content, pg.port, &[("app", "secret")]),
        Some(v) => PgBouncer::start_version(v, &ini.content, pg.port, &[("app", "secret")]),
    };
    let mut init = pg.tool("pgbench");
    init.arg("-h").arg(pg.dir.path()).args([
        "-p",
        &pg.port.to_string(),
        "-U",
        "app",
        "-i",
        "-s",
        "1",
        "-q",
        "app",
    ]);
    run_ok(init);

    let clients = (max_conn + 50).to_string();
    let mut bench = pg.tool("pgbench");
    bench
        .env("PGPASSWORD", "secret")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &bouncer.port.to_string(),
            "-U",
            "app",
        ])
        .args(["-c", &clients, "-j", "2", "-t", "5", "-n", "app"]);
    let out = run(bench);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{label}: pgbench with {clients} clients through PgBouncer failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        bouncer.log()
    );
    assert!(
        stdout.contains("number of failed transactions: 0 "),
        "{label}:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("number of clients: {clients}")),
        "{label}:\n{stdout}"
    );

    // The same number of clients straight to PostgreSQL is refused.
    let mut direct = pg.tool("pgbench");
    direct
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "app"])
        .args(["-c", &clients, "-j", "2", "-t", "1", "-n", "app"]);
    let out = run(direct);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{label}: {clients} direct clients were all accepted"
    );
    assert!(
        stderr.contains("too many clients") || stderr.contains("remaining connection slots"),
        "{label}: {stderr}"
    );
}

/// RESP for `SET key value EX 3600` commands totalling about `bytes`.
fn fill_commands(bytes: u64) -> Vec<u8> {
    let value = "x".repeat(10 * 1024);
    let mut out = Vec::with_capacity(bytes as usize + 1024);
    let n = bytes / value.len() as u64;
    for i in 0..n {
        let key = format!("dbtune:fill:{i}");
        let parts = ["SET", key.as_str(), value.as_str(), "EX", "3600"];
        out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
        for p in parts {
            out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
        }
    }
    out
}

/// Redis from Debian (None) or a release built from Debian 13's sources.
fn redis_case(files: &[Artifact], label: &str) {
    redis_case_on(files, label, None)
}

fn redis_case_on(files: &[Artifact], label: &str, version: Option<&str>) {
    let conf = file(files, "redis.conf");
    let r = match version {
        None => Redis::start(conf, &[]),
        Some(v) => Redis::start_version(v, conf, &[]),
    };
    let rendered = dbtune::read::grammar::redis_conf(conf, "redis.conf").unwrap();
    for (name, entries) in &rendered.entries {
        if ["port", "bind", "dir", "rename-command"].contains(&name.as_str()) {
            continue;
        }
        let got = r.cmd(&["CONFIG", "GET", name]);
        let got = got
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("{label}: CONFIG GET {name}: {got}"));
        if name == "save" {
            let want: Vec<&str> = entries
                .iter()
                .map(|e| e.value.as_str())
                .filter(|v| *v != "\"\"")
                .collect();
            assert_eq!(got, want.join(" "), "{label}: save");
            continue;
        }
        let want = &entries.last().unwrap().value;
        match parse_redis_memory(want) {
            Some(bytes) => assert_eq!(got, bytes.bytes().to_string(), "{label}: {name} {want}"),
            None => assert_eq!(
                got.to_ascii_lowercase(),
                want.to_ascii_lowercase(),
                "{label}: {name}"
            ),
        }
    }
    for e in rendered.all("rename-command") {
        let cmd = e.value.split_whitespace().next().unwrap();
        let answer = r.cmd(&[cmd]);
        assert!(
            answer.contains("unknown command"),
            "{label}: {cmd} was not refused: {answer}"
        );
    }

    // Twice maxmemory of data: used memory stays at maxmemory by evicting.
    // A multi-GiB maxmemory is lowered to 64 MiB for this part only (the
    // policy stays the rendered one), to keep the test short.
    let mut maxmemory: u64 = r
        .cmd(&["CONFIG", "GET", "maxmemory"])
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    if maxmemory > 256 << 20 {
        maxmemory = 64 << 20;
        assert!(r
            .cmd(&["CONFIG", "SET", "maxmemory", &maxmemory.to_string()])
            .contains("OK"));
    }
    let policy = r.cmd(&["CONFIG", "GET", "maxmemory-policy"]);
    let policy = policy.lines().nth(1).unwrap_or("").to_string();
    if policy == "noeviction" {
        // A Redis that holds queues refuses writes when full instead of
        // dropping keys: nothing is evicted, and used memory stays put.
        maxmemory = maxmemory.min(16 << 20);
        assert!(r
            .cmd(&["CONFIG", "SET", "maxmemory", &maxmemory.to_string()])
            .contains("OK"));
        let out = r.pipe(&fill_commands(2 * maxmemory));
        assert!(
            !out.contains("errors: 0"),
            "{label}: no write refused: {out}"
        );
        assert_eq!(r.info("evicted_keys"), 0, "{label}: a key was evicted");
        let used = r.info("used_memory");
        assert!(
            used <= maxmemory + maxmemory / 20,
            "{label}: used_memory {used} above maxmemory {maxmemory}"
        );
        return;
    }
    let out = r.pipe(&fill_commands(2 * maxmemory));
    assert!(out.contains("errors: 0"), "{label}: {out}\n{}", r.log());
    let used = r.info("used_memory");
    let evicted = r.info("evicted_keys");
    assert!(
        evicted > 0,
        "{label}: nothing evicted after writing twice maxmemory ({policy})"
    );
    assert!(
        used <= maxmemory + maxmemory / 20,
        "{label}: used_memory {used} above maxmemory {maxmemory}"
    );
}

#[test]
fn low_memory_on_real_postgres_and_pgbouncer() {
    postgres_and_pgbouncer(
        &render_for(&builtin("low-memory"), None, None, false),
        "low-memory",
    );
}

#[test]
fn bulk_ingest_on_real_postgres_and_pgbouncer() {
    postgres_and_pgbouncer(
        &render_for(&builtin("bulk-ingest"), None, None, false),
        "bulk-ingest",
    );
}

#[test]
fn powerhouse_on_real_postgres_and_pgbouncer() {
    postgres_and_pgbouncer(
        &render_for(&builtin("powerhouse"), None, None, false),
        "powerhouse",
    );
}

#[test]
fn bulk_ingest_128gib_on_real_postgres_and_pgbouncer() {
    let files = render_for(
        &builtin("bulk-ingest"),
        Some(ByteSize::gib(128)),
        Some(32),
        false,
    );
    postgres_and_pgbouncer(&files, "bulk-ingest 128 GiB");
}

/// What render tunes with no profile named, PostgreSQL alone, for every
/// workload on the smallest host it renders and a large one: the real
/// server starts with it and reads back every setting (the analytics
/// statistics target and JIT, the 4 MB floor on 512 MiB).
#[test]
fn postgres_alone_for_every_workload_on_real_postgres() {
    use dbtune::profile::Workload;
    for w in [
        Workload::Web,
        Workload::Mixed,
        Workload::Analytics,
        Workload::Ingest,
    ] {
        let mut p = builtin("postgres-only");
        p.workload = w;
        for (ram, cpus) in [(ByteSize::mib(512), 1), (ByteSize::gib(64), 16)] {
            if ram < ByteSize::gib(1) && matches!(w, Workload::Analytics | Workload::Ingest) {
                // Refused there (JIT's memory): the grid test in render.rs.
                continue;
            }
            let files = render_for(&p, Some(ram), Some(cpus), false);
            assert!(!files
                .iter()
                .any(|a| a.file == "redis.conf" || a.file == "pgbouncer.ini"));
            postgres_and_pgbouncer(&files, &format!("postgres-only {w} on {ram}"));
        }
    }
}

#[test]
fn one_gib_container_on_real_postgres() {
    let files = render_for(
        &fixture_profile("solo-1g.toml"),
        Some(ByteSize::gib(1)),
        Some(1),
        false,
    );
    postgres_and_pgbouncer(&files, "solo 1 GiB");
}

#[test]
fn low_memory_on_real_redis() {
    redis_case(
        &render_for(&builtin("low-memory"), None, None, false),
        "low-memory",
    );
}

#[test]
fn bulk_ingest_on_real_redis() {
    redis_case(
        &render_for(&builtin("bulk-ingest"), None, None, false),
        "bulk-ingest",
    );
}

#[test]
fn powerhouse_on_real_redis() {
    redis_case(
        &render_for(&builtin("powerhouse"), None, None, false),
        "powerhouse",
    );
}

#[test]
fn bulk_ingest_128gib_on_real_redis() {
    let files = render_for(
        &builtin("bulk-ingest"),
        Some(ByteSize::gib(128)),
        Some(32),
        false,
    );
    redis_case(&files, "bulk-ingest 128 GiB");
}

/// The newest Redis and PgBouncer Debian ships (13, trixie), built from
/// its sources by scripts/fetch-redis-pgbouncer.sh, run what dbtune renders.
#[test]
fn every_profile_on_redis_8() {
    for name in ["low-memory", "bulk-ingest", "powerhouse"] {
        redis_case_on(
            &render_for(&builtin(name), None, None, false),
            &format!("{name} on Redis 8.0"),
            Some("8.0"),
        );
    }
}

#[test]
fn bulk_ingest_through_pgbouncer_1_24() {
    postgres_and_pgbouncer_on(
        &render_for(
            &builtin("bulk-ingest"),
            Some(ByteSize::gib(8)),
            Some(2),
            false,
        ),
        "bulk-ingest through PgBouncer 1.24",
        Some("1.24"),
    );
}

#[test]
fn zfs_script_runs_twice_against_a_file_backed_pool() {
    let p = fixture_profile("powerhouse-zfs-fuse.toml");
    let files = render_for(&p, None, None, true);
    let script_text = file(&files, "zfs-datasets.sh");
    let Some(pool) = ZfsPool::create() else {
        return;
    };
    let script = pool.dir.path().join("zfs-datasets.sh");
    std::fs::write(&script, script_text).unwrap();
    let mut c = Command::new(need("shellcheck"));
    c.arg(&script);
    run_ok(c);
    let run_script = || {
        let mut c = Command::new("bash");
        c.arg(&script).env("DBTUNE_ZFS_POOL", &pool.name);
        run_ok(c)
    };
    let first = run_script();
    assert!(
        first.contains(&format!("created {}/postgres/data", pool.name)),
        "{first}"
    );
    assert!(!first.contains("\n0 change(s)"), "{first}");
    let second = run_script();
    assert!(
        second.ends_with("0 change(s)\n"),
        "second run changed something:\n{second}"
    );
    for (ds, props) in [("postgres/data", &p.zfs.data), ("postgres/wal", &p.zfs.wal)] {
        for (k, v) in props.iter() {
            // zfs prints sizes in upper case (16K), as the script writes them.
            let want = if k == "recordsize" {
                v.to_ascii_uppercase()
            } else {
                v.clone()
            };
            assert_eq!(pool.get(ds, k), want, "{ds} {k}");
        }
    }
    // A missing pool is refused with a hint, and nothing is created.
    let mut c = Command::new("bash");
    c.arg(&script).env("DBTUNE_ZFS_POOL", "no-such-pool");
    let out = run(c);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn servers_stop_when_a_test_panics() {
    need("redis-server");
    let result = std::panic::catch_unwind(|| {
        let r = Redis::start("save \"\"\n", &[]);
        assert_eq!(r.cmd(&["PING"]).trim(), "PONG");
        std::panic::panic_any(r.port);
    });
    let port = *result.unwrap_err().downcast::<u16>().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "redis on {port} outlived the panicking test"
    );
}

/// A test killed outright runs no Drop: the kernel stops its servers when
/// the thread that started them is gone (here, one that forgets its
/// server and ends).
#[test]
fn servers_stop_when_their_test_dies_without_dropping_them() {
    let (port, dir) = std::thread::spawn(|| {
        let r = Redis::start("save \"\"\n", &[]);
        let out = (r.port, r.dir.path().to_path_buf());
        std::mem::forget(r);
        out
    })
    .join()
    .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "redis on {port} outlived the thread that started it"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The forgotten server's directory is this test's to remove.
    let _ = std::fs::remove_dir_all(dir);
}

/// The value of `key` as a rendered postgresql.conf writes it.
fn conf_value<'a>(conf: &'a str, key: &str) -> &'a str {
    conf.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key}"))
}

/// The parallel index-build participants that sorted in a CREATE INDEX
/// run with `maintenance_work_mem` and `workers` asked: trace_sort's
/// "performsort of worker N starting" with N >= 0 (the workers and the
/// leader taking part); a serial build logs only worker -1.
fn index_build_participants(pg: &Postgres, mwm: &str, workers: &str) -> usize {
    let sql = format!(
        "SET maintenance_work_mem = '{mwm}'; SET max_parallel_maintenance_workers = {workers}; \
         SET min_parallel_table_scan_size = 0; SET trace_sort = on; \
         SET client_min_messages = log; CREATE INDEX i ON t (payload); DROP INDEX i;"
    );
    let mut c = pg.tool("psql");
    c.args([
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-XAtq",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        &sql,
    ]);
    let out = run(c);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    log.lines()
        .filter(|l| {
            l.contains("performsort of worker")
                && l.contains(" starting")
                && !l.contains("worker -1")
        })
        .count()
}

/// The claim maintenance_work_mem's comment makes, asked of the real
/// server: the rendered value feeds every index worker rendered beside it
/// (PostgreSQL plans one only for each 32 MB of it, the leader's included),
/// and a megabyte less plans one fewer.
#[test]
fn the_rendered_maintenance_work_mem_feeds_the_rendered_index_workers() {
    let pg = Postgres::start(
        "",
        &[
            ("max_worker_processes", "16"),
            ("max_parallel_workers", "16"),
        ],
    );
    pg.psql(
        "postgres",
        "postgres",
        "CREATE TABLE t AS SELECT i, md5(i::text) AS payload FROM generate_series(1, 100000) i",
    );
    pg.psql("postgres", "postgres", "VACUUM ANALYZE t");
    for cpus in [2, 4, 8, 16] {
        let files = render_for(&builtin("bulk-ingest"), None, Some(cpus), false);
        let conf = file(&files, "postgresql.conf");
        let mwm = conf_value(conf, "maintenance_work_mem");
        let workers = conf_value(conf, "max_parallel_maintenance_workers");
        let w: usize = workers.parse().unwrap();
        let label = format!("{cpus} CPUs: maintenance_work_mem {mwm}, {w} index workers");
        assert!(w >= 1, "{label}");
        assert_eq!(
            index_build_participants(&pg, mwm, workers),
            w + 1,
            "{label}"
        );
        let mib: usize = mwm.trim_end_matches("MB").parse().unwrap();
        assert_eq!(mib, (32 * (w + 1)).max(64), "{label}");
        let less = format!("{}MB", 32 * (w + 1) - 1);
        let fewer = index_build_participants(&pg, &less, workers);
        // One worker fewer; with none left the build is serial (no
        // participant N >= 0 at all).
        assert_eq!(fewer, if w == 1 { 0 } else { w }, "{label}, at {less}");
    }
}
