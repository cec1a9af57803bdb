//! `dbtune advise` against real servers: each rule provoked by the load it
//! is about (a write burst under a small max_wal_size, a spilling sort,
//! Redis written past maxmemory, more PgBouncer clients than the pool),
//! its proposal applied where that proves it (the spill is gone), and a
//! well-sized set under a light load that gets no proposal at all.

use std::process::Child;

use crate::harness::{self, Postgres, Redis};
use crate::observe::{bouncer, in_background, pg_url, through, Observing, SPILL};

/// The observation's JSON through `dbtune advise FILE --format json` for
/// a 4 GiB host.
fn advise(observation: &str) -> serde_json::Value {
    advise_on(observation, "4GiB")
}

fn advise_on(observation: &str, ram: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("obs.json");
    std::fs::write(&file, observation).unwrap();
    let out = harness::dbtune()
        .args(["advise", "--format", "json", "--ram", ram])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn proposals<'a>(v: &'a serde_json::Value, rule: &str) -> Vec<&'a serde_json::Value> {
    v["advice"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rule"] == rule)
        .collect()
}

/// A write burst under max_wal_size 32MB requests checkpoints; advise
/// sizes max_wal_size from the WAL rate, with the counts as evidence.
#[test]
fn a_write_burst_under_a_small_max_wal_size_gets_max_wal_size_from_its_wal_rate() {
    let pg = Postgres::start("max_wal_size = 32MB\nmin_wal_size = 32MB\n", &[]);
    pg.psql("postgres", "postgres", "CREATE TABLE t (id int, v text)");
    let obs = Observing::start(&["--seconds", "4", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
    pg.psql(
        "postgres",
        "postgres",
        "INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 400000) g",
    );
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    let p = proposals(&v, "checkpoints-by-wal-volume");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["setting"], "max_wal_size");
    assert_eq!(p[0]["current"], "32MB");
    let proposed = p[0]["proposed"].as_str().unwrap();
    let mb: u64 = proposed
        .trim_end_matches("MB")
        .trim_end_matches("GB")
        .parse()
        .unwrap();
    assert!(proposed.ends_with("GB") || mb > 32, "{proposed}");
    let evidence = p[0]["evidence"].as_str().unwrap();
    assert!(evidence.contains("requested"), "{evidence}");
    assert_eq!(p[0]["restart"], false);
}

/// A sort that spills at work_mem 64kB: advise proposes work_mem for the
/// role that spilled (or everyone, when the budget holds it), and with the
/// proposal applied the same sort writes no temp file.
#[test]
fn a_spilling_sort_gets_work_mem_that_stops_the_spill() {
    let pg = Postgres::start(
        "shared_preload_libraries = 'pg_stat_statements'\nwork_mem = 64kB\n",
        &[],
    );
    pg.psql(
        "postgres",
        "postgres",
        "CREATE EXTENSION pg_stat_statements",
    );
    pg.psql("postgres", "postgres", "CREATE ROLE app LOGIN");
    let obs = Observing::start(&["--seconds", "3", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
    pg.psql("postgres", "app", SPILL);
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    let p = proposals(&v, "temp-spills");
    assert_eq!(p.len(), 1, "{v:#}");
    let (scope, value) = (
        p[0]["applies_to"].as_str().unwrap(),
        p[0]["proposed"].as_str().unwrap(),
    );
    assert!(scope == "system" || scope == "role app", "{scope}");
    assert!(
        p[0]["evidence"].as_str().unwrap().contains("temp"),
        "{}",
        p[0]
    );
    let sql = match scope {
        "system" => format!("ALTER SYSTEM SET work_mem = '{value}'"),
        _ => format!("ALTER ROLE app SET work_mem = '{value}'"),
    };
    pg.psql("postgres", "postgres", &sql);
    pg.psql("postgres", "postgres", "SELECT pg_reload_conf()");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let temp = || -> u64 {
        pg.psql(
            "postgres",
            "postgres",
            "SELECT temp_bytes FROM pg_stat_database WHERE datname = 'postgres'",
        )
        .trim()
        .parse()
        .unwrap()
    };
    let before = temp();
    pg.psql("postgres", "app", SPILL);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(temp(), before, "the sort still spills at work_mem {value}");
}

/// Redis written past maxmemory 2mb: advise raises maxmemory within the
/// budget of a 4 GiB host, with the evictions as evidence.
#[test]
fn a_redis_that_evicts_gets_more_maxmemory_within_the_budget() {
    let r = Redis::start("maxmemory 2mb\nmaxmemory-policy allkeys-lru\n", &[]);
    let url = format!("redis://127.0.0.1:{}", r.port);
    let obs = Observing::start(&["--seconds", "3", "--ram", "4GiB", &url]);
    for i in 0..300 {
        r.cmd(&["SET", &format!("k{i}"), &"v".repeat(20_000)]);
    }
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    let p = proposals(&v, "redis-evictions");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["setting"], "maxmemory");
    assert_eq!(p[0]["proposed"], "4mb");
    assert!(p[0]["evidence"].as_str().unwrap().contains("evicted"));
    assert!(v["budget"]["after"].as_u64().unwrap() <= 4 << 30, "{v:#}");
}

/// Three clients for a pool of one: advise raises default_pool_size by
/// the clients that waited, within PostgreSQL's max_connections.
#[test]
fn clients_waiting_for_a_small_pool_get_a_larger_pool() {
    let pg = Postgres::start("", &[]);
    pg.psql(
        "postgres",
        "postgres",
        "CREATE ROLE app LOGIN PASSWORD 'AppSecret9'",
    );
    let b = bouncer(&pg, None, 1);
    let obs = Observing::start(&[
        "--seconds",
        "6",
        "--ram",
        "4GiB",
        &pg_url(&pg, "postgres"),
        &format!("pgbouncer://app:AppSecret9@127.0.0.1:{}", b.port),
    ]);
    let clients: Vec<Child> = (0..3)
        .map(|_| through(&pg, &b, "SELECT pg_sleep(1.5)"))
        .collect();
    for c in clients {
        harness::run_ok_child(c);
    }
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    let p = proposals(&v, "pgbouncer-waiting");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["current"], "1");
    let proposed: u32 = p[0]["proposed"].as_str().unwrap().parse().unwrap();
    assert!((2..=3).contains(&proposed), "{}", p[0]);
}

/// The null case: PostgreSQL at its defaults with pg_stat_statements,
/// Redis with room, PgBouncer with a pool larger than its load, under a
/// light load: no rule fires.
#[test]
fn a_well_sized_set_under_a_light_load_gets_no_advice() {
    let pg = Postgres::start("shared_preload_libraries = 'pg_stat_statements'\n", &[]);
    pg.psql(
        "postgres",
        "postgres",
        "CREATE EXTENSION pg_stat_statements",
    );
    pg.psql(
        "postgres",
        "postgres",
        "CREATE ROLE app LOGIN PASSWORD 'AppSecret9'",
    );
    pg.psql(
        "postgres",
        "postgres",
        "CREATE TABLE t (id int primary key, v text)",
    );
    let r = Redis::start("maxmemory 64mb\nmaxmemory-policy allkeys-lru\n", &[]);
    let b = bouncer(&pg, None, 5);
    let obs = Observing::start(&[
        "--seconds",
        "4",
        "--ram",
        "4GiB",
        &pg_url(&pg, "postgres"),
        &format!("redis://127.0.0.1:{}", r.port),
        &format!("pgbouncer://app:AppSecret9@127.0.0.1:{}", b.port),
    ]);
    let light = in_background(
        &pg,
        "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g; \
         SELECT count(*) FROM t; SELECT v FROM t ORDER BY id LIMIT 10",
    );
    for i in 0..50 {
        r.cmd(&["SET", &format!("k{i}"), "v"]);
        r.cmd(&["GET", &format!("k{i}")]);
    }
    harness::run_ok_child(through(&pg, &b, "SELECT 1"));
    harness::run_ok_child(light);
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    assert!(v["advice"].as_array().unwrap().is_empty(), "{v:#}");
}

/// Observe, advise, apply, observe the same workload again, compare: the
/// spilling statement's temp bytes per call and the database's temp bytes
/// per transaction are reported improved with the numbers, and comparing
/// a window with itself claims nothing.
#[test]
fn compare_shows_the_advised_work_mem_removed_the_spill() {
    let pg = Postgres::start(
        "shared_preload_libraries = 'pg_stat_statements'\nwork_mem = 64kB\n",
        &[],
    );
    pg.psql(
        "postgres",
        "postgres",
        "CREATE EXTENSION pg_stat_statements",
    );
    pg.psql("postgres", "postgres", "CREATE ROLE app LOGIN");
    let dir = tempfile::tempdir().unwrap();
    let window = |name: &str| {
        let obs = Observing::start(&["--seconds", "3", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
        for _ in 0..3 {
            pg.psql("postgres", "app", SPILL);
        }
        let (_, text, _) = obs.finish();
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        (path, text)
    };
    let (before, text) = window("before.json");
    let v = advise(&text);
    let p = proposals(&v, "temp-spills");
    let value = p[0]["proposed"].as_str().unwrap();
    pg.psql(
        "postgres",
        "postgres",
        &format!("ALTER ROLE app SET work_mem = '{value}'"),
    );
    let (after, _) = window("after.json");
    let out = harness::dbtune()
        .args(["compare", "--format", "json"])
        .arg(&before)
        .arg(&after)
        .output()
        .unwrap();
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = c["changes"].as_array().unwrap();
    let find = |m: &str| {
        changes
            .iter()
            .find(|x| x["measure"].as_str().unwrap().contains(m))
            .unwrap_or_else(|| panic!("no {m}: {c:#}"))
    };
    let temp = find("temp bytes per transaction");
    assert_eq!(temp["outcome"], "improved", "{temp}");
    assert_eq!(temp["after"], 0.0, "{temp}");
    let per_call = find("temp bytes per call");
    assert_eq!(per_call["outcome"], "improved", "{per_call}");
    // The same window against itself: nothing improved or regressed.
    harness::dbtune()
        .args(["compare"])
        .arg(&after)
        .arg(&after)
        .assert()
        .success()
        .stdout(predicates::str::contains("0 improved, 0 regressed"));
}

/// A spill whose work_mem the budget cannot give 500 connections: the
/// room comes from connections the window never used, and advise says so
/// (max_connections down, work_mem up for everyone, the budget after).
#[test]
fn a_raise_that_does_not_fit_takes_its_room_from_unused_connections() {
    let pg = Postgres::start(
        "shared_preload_libraries = 'pg_stat_statements'\nwork_mem = 64kB\nmax_connections = 500\n",
        &[],
    );
    pg.psql(
        "postgres",
        "postgres",
        "CREATE EXTENSION pg_stat_statements",
    );
    pg.psql("postgres", "postgres", "CREATE ROLE app LOGIN");
    let obs = Observing::start(&["--seconds", "3", "--ram", "2GiB", &pg_url(&pg, "postgres")]);
    pg.psql("postgres", "app", SPILL);
    let (_, text, _) = obs.finish();
    let v = advise_on(&text, "2GiB");
    let conns = proposals(&v, "connections-unused");
    assert_eq!(conns.len(), 1, "{v:#}");
    assert_eq!(conns[0]["current"], "500");
    assert_eq!(conns[0]["restart"], true);
    let wm = proposals(&v, "temp-spills");
    assert_eq!(wm.len(), 1, "{v:#}");
    assert_eq!(wm[0]["applies_to"], "system");
    assert!(
        wm[0]["room"]
            .as_str()
            .unwrap()
            .contains("max_connections 500 ->"),
        "{}",
        wm[0]
    );
    // The set with both fits the 2 GiB host at the default gate.
    assert!(v["budget"]["after"].as_u64().unwrap() <= 2 << 30, "{v:#}");
}

/// A write burst through wal_buffers of 64kB: backends found them full,
/// and advise raises wal_buffers (a restart).
#[test]
fn full_wal_buffers_get_larger_wal_buffers() {
    let pg = Postgres::start("wal_buffers = 64kB\n", &[]);
    pg.psql("postgres", "postgres", "CREATE TABLE t (id int, v text)");
    let obs = Observing::start(&["--seconds", "3", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
    pg.psql(
        "postgres",
        "postgres",
        "INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g",
    );
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    let p = proposals(&v, "wal-buffers-full");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["current"], "64kB");
    assert_eq!(p[0]["proposed"], "16MB");
    assert_eq!(p[0]["restart"], true);
}

/// Random reads over a database ten times shared_buffers: hits under 99%,
/// and advise raises shared_buffers toward the data within the budget.
#[test]
fn cache_misses_on_a_database_larger_than_shared_buffers_get_more_shared_buffers() {
    let pg = Postgres::start("shared_buffers = 16MB\n", &[]);
    let mut init = pg.tool("pgbench");
    init.args(["-U", "postgres", "-i", "-s", "10", "-q", "postgres"]);
    harness::run_ok(init);
    let obs = Observing::start(&["--seconds", "4", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
    let mut run = pg.tool("pgbench");
    run.args(["-U", "postgres", "-S", "-T", "3", "-c", "2", "postgres"]);
    harness::run_ok(run);
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    let p = proposals(&v, "cache-misses");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["current"], "16MB");
    let proposed = p[0]["proposed"].as_str().unwrap();
    assert!(
        proposed.ends_with("MB") || proposed.ends_with("GB"),
        "{proposed}"
    );
    assert_ne!(proposed, "16MB");
    assert!(p[0]["evidence"]
        .as_str()
        .unwrap()
        .contains("hit shared_buffers"));
}

/// Short queries compiled by JIT at every cost (jit_above_cost = 0, on
/// Debian's build, which has llvmjit): JIT time is most of their
/// execution, and advise raises jit_above_cost.
#[test]
fn jit_that_costs_more_than_it_saves_gets_a_higher_jit_above_cost() {
    harness::need("postgres");
    let pg = Postgres::start(
        "shared_preload_libraries = 'pg_stat_statements'\njit = on\njit_above_cost = 0\n\
         jit_inline_above_cost = 0\njit_optimize_above_cost = 0\n",
        &[],
    );
    pg.psql(
        "postgres",
        "postgres",
        "CREATE EXTENSION pg_stat_statements",
    );
    let obs = Observing::start(&["--seconds", "3", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
    for _ in 0..5 {
        pg.psql(
            "postgres",
            "postgres",
            "SELECT sum(g), avg(g), max(g) FROM generate_series(1, 100) g",
        );
    }
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    let p = proposals(&v, "jit-overhead");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["setting"], "jit_above_cost");
    assert_eq!(p[0]["current"], "0");
    assert_eq!(p[0]["proposed"], "1000000");
}
