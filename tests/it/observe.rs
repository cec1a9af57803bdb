//! `dbtune observe` against the real servers of each release: the counters
//! move when the workload does, the peaks see what ran at once, what the
//! role cannot read is said, a reset inside the window is not computed,
//! and no secret reaches the file.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, Stdio};

use crate::harness::{self, PgBouncer, Postgres, Redis};
use predicates::prelude::*;

/// `dbtune observe ARGS` started in the background (the test runs the
/// workload meanwhile, once observe says its first read is done);
/// `finish` waits and parses its JSON.
pub(crate) struct Observing {
    child: Child,
    stderr: BufReader<ChildStderr>,
    said: String,
}

impl Observing {
    pub(crate) fn start(args: &[&str]) -> Observing {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
            .arg("observe")
            .args(args)
            .env_remove("PGHOST")
            .env_remove("PGPASSWORD")
            .env_remove("REDIS_URL")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut said = String::new();
        loop {
            let mut line = String::new();
            let n = stderr.read_line(&mut line).unwrap();
            said.push_str(&line);
            assert!(n > 0, "observe ended before its first read:\n{said}");
            if line.contains("first read done") {
                break;
            }
        }
        Observing {
            child,
            stderr,
            said,
        }
    }

    pub(crate) fn finish(mut self) -> (serde_json::Value, String, String) {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let mut stderr = self.said;
        self.stderr.read_to_string(&mut stderr).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "observe failed:\n{stderr}\n{stdout}");
        let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        (v, stdout, stderr)
    }
}

/// PgBouncer in front of `pg`'s `postgres` database for role `app`
/// (password AppSecret9, also its admin), pools of `pool`, statistics
/// every second.
pub(crate) fn bouncer(pg: &Postgres, version: Option<&str>, pool: u32) -> PgBouncer {
    let ini = format!(
        "[databases]\npostgres = host=127.0.0.1 port=5432 dbname=postgres\n\n\
         [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = 6432\nauth_type = plain\n\
         auth_file = users.txt\npool_mode = transaction\ndefault_pool_size = {pool}\n\
         admin_users = app\nstats_period = 1\n"
    );
    let users = [("app", "AppSecret9")];
    match version {
        None => PgBouncer::start(&ini, pg.port, &users),
        Some(v) => PgBouncer::start_version(v, &ini, pg.port, &users),
    }
}

/// `sql` as role app through PgBouncer, started in the background.
pub(crate) fn through(pg: &Postgres, b: &PgBouncer, sql: &str) -> Child {
    let mut c = pg.tool("psql");
    c.env("PGPASSWORD", "AppSecret9")
        .args(["-h", "127.0.0.1", "-p", &b.port.to_string(), "-U", "app"])
        .args(["-d", "postgres", "-XAtqc", sql])
        .stdout(Stdio::null());
    c.spawn().unwrap()
}

/// `sql` as the superuser over the socket, started in the background.
pub(crate) fn in_background(pg: &Postgres, sql: &str) -> Child {
    let mut c = pg.tool("psql");
    c.args(["-U", "postgres", "-d", "postgres", "-XAtqc", sql])
        .stdout(Stdio::null());
    c.spawn().unwrap()
}

pub(crate) fn pg_url(pg: &Postgres, user: &str) -> String {
    format!(
        "postgres://{user}:NotThePassw0rd@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    )
}

/// A sort that cannot fit work_mem (64kB): it writes temp files.
pub(crate) const SPILL: &str =
    "SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s";

/// On every major: temp bytes from a spilling sort, the statement that
/// spilled (by queryid, never its text), the WAL it wrote, the sessions
/// that ran at once, the views each release has, read as a pg_monitor
/// role.
#[test]
fn observe_reads_each_majors_counters_peaks_and_statements() {
    for major in 13..=18 {
        let pg = Postgres::start_major(
            major,
            "shared_preload_libraries = 'pg_stat_statements'\nwork_mem = 64kB\n",
            &[],
        );
        pg.psql(
            "postgres",
            "postgres",
            "CREATE EXTENSION pg_stat_statements",
        );
        pg.psql(
            "postgres",
            "postgres",
            "CREATE ROLE mon LOGIN IN ROLE pg_monitor",
        );
        pg.psql("postgres", "postgres", "CREATE TABLE t (id int, v text)");
        // A database nothing has run in yet: before 15 the statistics
        // collector has no entry for it (stats_reset NULL, every counter
        // zero) until its first report, which comes inside the window
        // (stats_reset -> now). Its counters began there: not a reset.
        pg.psql("postgres", "postgres", "CREATE DATABASE fresh");
        let obs = Observing::start(&["--seconds", "3", "--ram", "4GiB", &pg_url(&pg, "mon")]);
        // First, so that its report reaches the collector well inside the
        // window.
        pg.psql("fresh", "postgres", "SELECT 1");
        let sleeping = in_background(&pg, "SELECT pg_sleep(1.5)");
        pg.psql("postgres", "postgres", SPILL);
        pg.psql(
            "postgres",
            "postgres",
            "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g",
        );
        harness::run_ok_child(sleeping);
        let (v, text, _) = obs.finish();
        let p = &v["postgres"];
        let label = format!("PostgreSQL {major}");
        assert_eq!(p["major"], major, "{label}");
        assert_eq!(p["restarted"], false, "{label}");
        let fresh = &p["databases"]["fresh"];
        assert!(fresh["reset"].is_null(), "{label}: {fresh}");
        assert!(
            fresh["delta"]["xact_commit"].as_f64() >= Some(1.0),
            "{label}: {fresh}"
        );
        assert!(
            p["counters"]["database"]["reset"].is_null(),
            "{label}: {}",
            p["counters"]["database"]
        );
        let db = &p["counters"]["database"]["delta"];
        let temp = db["temp_bytes"].as_f64();
        assert!(temp.is_some_and(|t| t > 0.0), "{label}: {v}");
        assert!(db["xact_commit"].as_f64().unwrap() >= 2.0, "{label}: {db}");
        // The spilling statement, by queryid, with its temp blocks.
        let statements = p["statements"].as_array().unwrap();
        assert!(
            statements
                .iter()
                .any(|s| s["counters"]["delta"]["temp_blks_written"]
                    .as_f64()
                    .is_some_and(|n| n > 0.0)
                    && s["role"] == "postgres"
                    && s["queryid"].as_str().is_some_and(|q| !q.is_empty())),
            "{label}: {statements:#?}"
        );
        assert!(
            !text.contains("generate_series"),
            "{label}: a query's text is in the file"
        );
        // WAL: pg_stat_wal from 14, the position on every major.
        let wal = &p["counters"]["wal"]["delta"];
        assert!(
            wal["wal_position_bytes"].as_f64().unwrap() > 0.0,
            "{label}: {wal}"
        );
        assert_eq!(wal["wal_bytes"].is_number(), major >= 14, "{label}: {wal}");
        assert_eq!(
            p["counters"]["checkpointer"].is_object(),
            major >= 17,
            "{label}"
        );
        let io = p["counters"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("io "));
        assert_eq!(io, major >= 16, "{label}");
        // The sleeping session was seen: it ran while the sort did.
        assert!(
            p["peaks"]["active"]["max"].as_f64().unwrap() >= 1.0,
            "{label}: {}",
            p["peaks"]
        );
        // pg_monitor sees everything it needs; only releases' gaps remain.
        for u in p["unavailable"].as_array().unwrap() {
            let what = u["what"].as_str().unwrap();
            assert!(
                (what == "pg_stat_wal" && major < 14)
                    || (what == "pg_stat_io" && major < 16)
                    || what.starts_with("observe's own statements"),
                "{label}: {u}"
            );
        }
        assert!(
            p["gauges"]["database_bytes"].as_f64().unwrap() > 0.0,
            "{label}"
        );
        assert!(v["host"]["ram_bytes"] == 4u64 << 30, "{}", v["host"]);
        assert!(
            !text.contains("NotThePassw0rd"),
            "{label}: the password is in the file"
        );
    }
}

/// A role that is neither pg_monitor nor superuser, in a database without
/// pg_stat_statements: observe still runs and says what it could not
/// read; a stats reset inside the window gives no deltas, and says so.
#[test]
fn what_cannot_be_read_is_said_and_a_reset_is_not_computed() {
    let pg = Postgres::start("work_mem = 64kB\n", &[]);
    pg.psql("postgres", "postgres", "CREATE ROLE plain LOGIN");
    let obs = Observing::start(&["--seconds", "3", "--ram", "4GiB", &pg_url(&pg, "plain")]);
    pg.psql("postgres", "postgres", SPILL);
    pg.psql("postgres", "postgres", "SELECT pg_stat_reset()");
    pg.psql("postgres", "postgres", SPILL);
    let (v, _, stderr) = obs.finish();
    let p = &v["postgres"];
    let unavailable = p["unavailable"].to_string();
    assert!(unavailable.contains("pg_stat_statements"), "{unavailable}");
    assert!(unavailable.contains("not installed"), "{unavailable}");
    assert!(unavailable.contains("pg_read_all_stats"), "{unavailable}");
    let db = &p["counters"]["database"];
    assert!(db["delta"].as_object().unwrap().is_empty(), "{db}");
    assert!(db["reset"].as_str().unwrap().contains("reset"), "{db}");
    assert!(stderr.contains("no deltas"), "{stderr}");
    // The other groups were not reset and still have their numbers.
    assert!(
        p["counters"]["bgwriter"]["reset"].is_null(),
        "{}",
        p["counters"]["bgwriter"]
    );
}

/// Redis 7.0 and 8.0 written past a small maxmemory: the evictions and
/// hits are counted, used memory peaks, and requirepass is not in the file.
#[test]
fn observe_redis_sees_evictions_and_keeps_its_password_out() {
    let conf = "maxmemory 2mb\nmaxmemory-policy allkeys-lru\n";
    for version in ["7.0", "8.0"] {
        let r = match version {
            // Debian 12's.
            "7.0" => Redis::start(conf, &[]),
            v => Redis::start_version(v, conf, &[]),
        };
        // Set once it answers (the harness pings without a password).
        r.cmd(&["CONFIG", "SET", "requirepass", "Redis-S3cret-Pw"]);
        let url = format!("redis://:Redis-S3cret-Pw@127.0.0.1:{}", r.port);
        let obs = Observing::start(&["--seconds", "8", "--ram", "4GiB", &url]);
        let auth = ["--no-auth-warning", "-a", "Redis-S3cret-Pw"];
        // A hit first, so a slow machine cannot push it out of the window.
        r.cmd(&[&auth[..], &["SET", "first", "v"]].concat());
        r.cmd(&[&auth[..], &["GET", "first"]].concat());
        for i in 0..300 {
            let key = format!("k{i}");
            let value = "v".repeat(20_000);
            r.cmd(&[&auth[..], &["SET", &key, &value]].concat());
        }
        r.cmd(&[&auth[..], &["GET", "k299"]].concat());
        let (v, text, _) = obs.finish();
        let x = &v["redis"];
        assert!(x["version"]
            .as_str()
            .unwrap()
            .starts_with(version.split('.').next().unwrap()));
        let d = &x["counters"]["delta"];
        assert!(d["evicted_keys"].as_f64().unwrap() > 0.0, "{version}: {d}");
        assert!(
            d["keyspace_hits"].as_f64().unwrap() >= 1.0,
            "{version}: {d}"
        );
        assert!(
            x["peaks"]["used_memory"]["max"].as_f64().unwrap() > 1e6,
            "{version}"
        );
        assert_eq!(
            x["gauges"]["maxmemory"].as_f64().unwrap(),
            2.0 * 1024.0 * 1024.0
        );
        assert!(
            !text.contains("Redis-S3cret-Pw"),
            "{version}: the password is in the file"
        );
        assert!(
            x["settings"].to_string().contains("requirepass"),
            "{version}"
        );
    }
}

/// PgBouncer 1.18 and 1.24 with one server connection and three clients
/// at once: the admin console shows them waiting, and the transactions.
#[test]
fn observe_pgbouncer_sees_clients_waiting_for_a_small_pool() {
    let pg = Postgres::start("", &[]);
    pg.psql(
        "postgres",
        "postgres",
        "CREATE ROLE app LOGIN PASSWORD 'AppSecret9'",
    );
    for version in [None, Some("1.24")] {
        let b = bouncer(&pg, version, 1);
        let url = format!("pgbouncer://app:AppSecret9@127.0.0.1:{}", b.port);
        let obs = Observing::start(&["--seconds", "4", "--ram", "4GiB", &url]);
        let clients: Vec<Child> = (0..3)
            .map(|_| through(&pg, &b, "SELECT pg_sleep(0.8)"))
            .collect();
        for c in clients {
            harness::run_ok_child(c);
        }
        let (v, text, _) = obs.finish();
        let x = &v["pgbouncer"];
        let label = format!("PgBouncer {}", x["version"]);
        assert!(
            x["peaks"]["clients_waiting"]["max"].as_f64().unwrap() >= 1.0,
            "{label}: {}",
            x["peaks"]
        );
        let stats = &x["databases"]["postgres"]["delta"];
        assert!(stats.is_object(), "{label}: {}", x["databases"]);
        assert!(
            stats["total_xact_count"].as_f64().is_some_and(|n| n >= 3.0),
            "{label}: {}",
            x["databases"]
        );
        assert!(
            x["settings"].to_string().contains("default_pool_size"),
            "{label}"
        );
        assert!(
            !text.contains("AppSecret9"),
            "{label}: the password is in the file"
        );
    }
}

/// --out writes a new file, never over one that is there.
#[test]
fn observe_out_writes_a_new_file_and_never_over_one() {
    let pg = Postgres::start("", &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("obs.json");
    harness::dbtune()
        .args(["observe", "--seconds", "1", "--ram", "4GiB", "--out"])
        .arg(&out)
        .arg(pg_url(&pg, "postgres"))
        .assert()
        .success();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["schema"], 1);
    harness::dbtune()
        .args(["observe", "--seconds", "1", "--ram", "4GiB", "--out"])
        .arg(&out)
        .arg(pg_url(&pg, "postgres"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("never written over"));
}

/// PostgreSQL and Redis restarted inside the window: observe connects
/// again, says the server restarted, and compares no counter across it.
#[test]
fn a_restart_inside_the_window_is_said_and_not_computed() {
    let mut pg = Postgres::start("", &[]);
    let r = Redis::start("", &[]);
    let obs = Observing::start(&[
        "--seconds",
        "6",
        "--ram",
        "4GiB",
        &pg_url(&pg, "postgres"),
        &format!("redis://127.0.0.1:{}", r.port),
    ]);
    pg.stop();
    pg.start_again().unwrap();
    // Redis restarts in place: DEBUG RESTART is not in every build, so
    // its statistics reset stands in for it (CONFIG RESETSTAT).
    r.cmd(&["SET", "a", "1"]);
    r.cmd(&["CONFIG", "RESETSTAT"]);
    let (v, _, stderr) = obs.finish();
    let p = &v["postgres"];
    assert_eq!(p["restarted"], true, "{p}");
    for (name, c) in p["counters"].as_object().unwrap() {
        assert!(c["delta"].as_object().unwrap().is_empty(), "{name}: {c}");
        assert!(
            c["reset"].as_str().unwrap().contains("restarted"),
            "{name}: {c}"
        );
    }
    assert!(p["statements"].as_array().unwrap().is_empty());
    let x = &v["redis"]["counters"];
    assert!(x["delta"].as_object().unwrap().is_empty(), "{x}");
    assert!(x["reset"].as_str().unwrap().contains("went down"), "{x}");
    assert!(stderr.contains("no deltas"), "{stderr}");
}

/// check-budget --observed: the files' budget at the load an observation
/// saw (the most active backends at once times the heavy query, Redis at
/// its peak RSS), each replaced assumption named, beside the other levels.
#[test]
fn check_budget_adds_the_observed_level_and_names_what_it_replaced() {
    let pg = Postgres::start("", &[]);
    pg.psql(
        "postgres",
        "postgres",
        "CREATE ROLE app LOGIN PASSWORD 'AppSecret9'",
    );
    let r = Redis::start("maxmemory 64mb\nmaxmemory-policy noeviction\n", &[]);
    let b = bouncer(&pg, None, 5);
    let obs = Observing::start(&[
        "--seconds",
        "3",
        "--ram",
        "4GiB",
        &pg_url(&pg, "postgres"),
        &format!("redis://127.0.0.1:{}", r.port),
        &format!("pgbouncer://app:AppSecret9@127.0.0.1:{}", b.port),
    ]);
    let sleeping = in_background(&pg, "SELECT pg_sleep(1.5)");
    let pooled = through(&pg, &b, "SELECT pg_sleep(1.5)");
    harness::run_ok_child(sleeping);
    harness::run_ok_child(pooled);
    let (_, text, _) = obs.finish();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("obs.json");
    std::fs::write(&file, &text).unwrap();
    let rendered = dir.path().join("set");
    harness::dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(&rendered)
        .assert()
        .success();
    let out = harness::dbtune()
        .args(["check-budget", "--format", "json", "--observed"])
        .arg(&file)
        .arg(&rendered)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let levels = &v["levels"];
    let observed = &levels["observed"];
    let replaced = observed["replaced"].to_string();
    // The backend through PgBouncer and the one direct, at once.
    assert!(replaced.contains("heavy queries at once: 2,"), "{replaced}");
    assert!(replaced.contains("Redis:"), "{replaced}");
    assert!(
        replaced.contains("PgBouncer:") && replaced.contains("2 client and 1 server connection(s)"),
        "{replaced}"
    );
    assert!(
        replaced.contains("kept: each heavy query's sort and hash memory"),
        "{replaced}"
    );
    assert!(!replaced.contains("AppSecret9"), "{replaced}");
    assert!(
        observed["total"].as_u64().unwrap() < levels["busy"]["total"].as_u64().unwrap(),
        "{levels:#}"
    );
    // The text report says the same.
    harness::dbtune()
        .args(["check-budget", "--observed"])
        .arg(&file)
        .arg(&rendered)
        .assert()
        .stdout(
            predicates::str::contains("observed: heavy queries at once")
                .and(predicates::str::contains(", observed ")),
        );
}
