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
    json_of(
        harness::dbtune()
            .args(["advise", "--format", "json", "--ram", ram])
            .arg(&file),
    )
}

/// What a dbtune command that must succeed prints, as JSON.
fn json_of(c: &mut assert_cmd::Command) -> serde_json::Value {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `dbtune compare --format json BEFORE AFTER`.
fn compare(before: &std::path::Path, after: &std::path::Path) -> serde_json::Value {
    json_of(
        harness::dbtune()
            .args(["compare", "--format", "json"])
            .arg(before)
            .arg(after),
    )
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
    assert!(evidence.contains("check the free space"), "{evidence}");
    assert_eq!(p[0]["restart"], false);

    // The same window on a host whose facts say pg_wal's filesystem is
    // 1 GiB: the proposal stops at a tenth of it (render's own cap).
    let dir = tempfile::tempdir().unwrap();
    let (obs_file, facts) = (dir.path().join("obs.json"), dir.path().join("db1.toml"));
    std::fs::write(&obs_file, &text).unwrap();
    std::fs::write(
        &facts,
        "[memory]\nphysical = \"4GiB\"\n[cpu]\nlogical = 2\n\
         [storage]\nkind = \"ssd\"\nwal_space = { value = \"1GiB\", source = \"df /srv/pg\" }\n",
    )
    .unwrap();
    let v = json_of(
        harness::dbtune()
            .args(["advise", "--format", "json", "--facts"])
            .arg(&facts)
            .arg(&obs_file),
    );
    let p = proposals(&v, "checkpoints-by-wal-volume");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["proposed"], "96MB", "{v:#}");
    let evidence = p[0]["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("a tenth of pg_wal's filesystem, 1 GiB (")
            && evidence.contains("df /srv/pg"),
        "{evidence}"
    );
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
    let c = compare(&before, &after);
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
/// and advise raises wal_buffers (a restart). The window is 8 s: the
/// burst's counters reach pg_stat_wal when its transaction ends, which a
/// loaded machine can push past a shorter one.
#[test]
fn full_wal_buffers_get_larger_wal_buffers() {
    let pg = Postgres::start("wal_buffers = 64kB\n", &[]);
    pg.psql("postgres", "postgres", "CREATE TABLE t (id int, v text)");
    let obs = Observing::start(&["--seconds", "8", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
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

/// A session left idle inside a transaction for over a minute, and a table
/// whose dead rows nothing removes (autovacuum off): advise proposes a
/// timeout longer than the idle it saw, and autovacuum on; both applied,
/// the server takes them and the dead rows go.
#[test]
fn an_idle_transaction_and_dead_rows_get_a_timeout_and_autovacuum() {
    let pg = Postgres::start("autovacuum = off\n", &[]);
    pg.psql(
        "postgres",
        "postgres",
        "CREATE TABLE t (id int primary key, v int); \
         INSERT INTO t SELECT g, 0 FROM generate_series(1, 100000) g; \
         UPDATE t SET v = 1",
    );
    // BEGIN, a statement, then nothing for 66 s: idle in transaction.
    let mut idle = pg.tool("psql");
    idle.args(["-U", "postgres", "-d", "postgres", "-XAtq"])
        .args([
            "-c",
            "BEGIN",
            "-c",
            "SELECT 1",
            "-c",
            "\\! sleep 66",
            "-c",
            "COMMIT",
        ])
        .stdout(std::process::Stdio::null());
    let idle = idle.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(61));
    let obs = Observing::start(&["--seconds", "2", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
    let (_, text, _) = obs.finish();
    harness::run_ok_child(idle);
    let v = advise(&text);
    let p = proposals(&v, "idle-in-transaction");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["setting"], "idle_in_transaction_session_timeout");
    assert_eq!(p[0]["current"], "0");
    // Twice the 62 s or more it saw, rounded up to minutes: at least 5.
    assert_eq!(p[0]["proposed"], "5min", "{v:#}");
    let a = proposals(&v, "autovacuum-behind");
    assert_eq!(a.len(), 1, "{v:#}");
    assert_eq!(
        (a[0]["setting"].as_str(), a[0]["proposed"].as_str()),
        (Some("autovacuum"), Some("on"))
    );
    assert!(
        a[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("100000 dead rows"),
        "{}",
        a[0]
    );
    for q in [
        "ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min'",
        "ALTER SYSTEM SET autovacuum = on",
        "ALTER SYSTEM SET autovacuum_naptime = 1",
        "SELECT pg_reload_conf()",
    ] {
        pg.psql("postgres", "postgres", q);
    }
    let dead = || -> u64 {
        pg.psql(
            "postgres",
            "postgres",
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 't'",
        )
        .trim()
        .parse()
        .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while dead() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(dead(), 0, "autovacuum on did not remove the dead rows");
    assert_eq!(
        pg.psql(
            "postgres",
            "postgres",
            "SHOW idle_in_transaction_session_timeout"
        )
        .trim(),
        "5min"
    );
}

/// Six clients at once against max_connections 10 (7 for ordinary
/// roles): advise raises max_connections within the budget; the server
/// starts with it.
#[test]
fn connections_near_max_connections_get_more_within_the_budget() {
    let pg = Postgres::start("max_connections = 10\n", &[]);
    let url = pg_url(&pg, "postgres");
    let obs = Observing::start(&["--seconds", "4", "--ram", "4GiB", &url]);
    let clients: Vec<Child> = (0..6)
        .map(|_| in_background(&pg, "SELECT pg_sleep(5)"))
        .collect();
    let (_, text, _) = obs.finish();
    for c in clients {
        harness::run_ok_child(c);
    }
    let v = advise(&text);
    let p = proposals(&v, "connections-near-limit");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(p[0]["current"], "10");
    // 6 x 1.25 + 3 reserved = 10.5 -> 11.
    assert_eq!(p[0]["proposed"], "11", "{v:#}");
    assert_eq!(p[0]["restart"], true);
    // On a host where it does not fit, no raise: a note says a pooler.
    let small = advise_on(&text, "160MiB");
    assert!(
        proposals(&small, "connections-near-limit").is_empty(),
        "{small:#}"
    );
    assert!(
        small["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("a pooler is needed")),
        "{small:#}"
    );
}

/// shared_buffers 512MB over a few megabytes of data: advise brings it
/// down to 128MB and says what that frees; the real server starts with it.
#[test]
fn shared_buffers_far_above_the_data_come_down() {
    let pg = Postgres::start("shared_buffers = 512MB\n", &[]);
    let obs = Observing::start(&["--seconds", "2", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
    pg.psql("postgres", "postgres", "SELECT count(*) FROM pg_class");
    let (_, text, _) = obs.finish();
    let v = advise(&text);
    let p = proposals(&v, "shared-buffers-oversized");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(
        (p[0]["current"].as_str(), p[0]["proposed"].as_str()),
        (Some("512MB"), Some("128MB"))
    );
    assert!(
        p[0]["room"].as_str().unwrap().contains("frees memory"),
        "{}",
        p[0]
    );
    assert!(
        v["budget"]["after"].as_u64().unwrap() < v["budget"]["before"].as_u64().unwrap(),
        "{v:#}"
    );
}

/// Redis filled with 240 MB of values and three in four deleted: the
/// freed memory stays in its RSS. advise proposes activedefrag; Redis 8.0
/// built from source (bundled jemalloc) takes it, Debian's 7.0 (system
/// jemalloc) refuses it, as the evidence says.
#[test]
fn a_fragmented_redis_gets_active_defragmentation() {
    for (version, takes) in [("8.0", true), ("7.0", false)] {
        let r = if version == "7.0" {
            Redis::start("enable-debug-command local\n", &[])
        } else {
            Redis::start_version(version, "enable-debug-command local\n", &[])
        };
        r.cmd(&["DEBUG", "POPULATE", "400000", "key", "512"]);
        r.cmd(&[
            "EVAL",
            "for i = 0, 399999 do if i % 4 ~= 0 then redis.call('DEL', 'key:' .. i) end end return 1",
            "0",
        ]);
        let url = format!("redis://127.0.0.1:{}", r.port);
        let obs = Observing::start(&["--seconds", "2", "--ram", "4GiB", &url]);
        let (_, text, _) = obs.finish();
        let v = advise(&text);
        let p = proposals(&v, "redis-fragmentation");
        assert_eq!(p.len(), 1, "{version}: {v:#}");
        assert_eq!(
            (p[0]["setting"].as_str(), p[0]["proposed"].as_str()),
            (Some("activedefrag"), Some("yes"))
        );
        assert!(p[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("Debian's package"));
        let set = r.cmd(&["CONFIG", "SET", "activedefrag", "yes"]);
        if takes {
            assert_eq!(set.trim(), "OK", "{version}");
        } else {
            assert!(
                set.contains("Active defragmentation cannot be enabled"),
                "{set}"
            );
        }
    }
}

/// `advise --out DIR`: the advised set as a directory. check-budget judges
/// it, diff against the servers shows the proposals and nothing else,
/// apply makes them, and diff then finds nothing; a role's work_mem goes
/// to roles.sql, which psql runs. The problems are states, not rates
/// (dead rows with autovacuum off, a fragmented Redis 8.0), so the window
/// cannot miss them.
#[test]
fn advise_out_writes_a_directory_check_budget_diff_and_apply_take() {
    let pg = Postgres::start(
        "autovacuum = off\nshared_preload_libraries = 'pg_stat_statements'\nwork_mem = 64kB\n",
        &[],
    );
    pg.psql(
        "postgres",
        "postgres",
        "CREATE EXTENSION pg_stat_statements",
    );
    pg.psql("postgres", "postgres", "CREATE ROLE app LOGIN");
    pg.psql(
        "postgres",
        "postgres",
        "CREATE TABLE t (id int primary key, v int); \
         INSERT INTO t SELECT g, 0 FROM generate_series(1, 100000) g; \
         UPDATE t SET v = 1",
    );
    let r = Redis::start_version(
        "8.0",
        "enable-debug-command local\nmaxmemory 256mb\nmaxmemory-policy allkeys-lru\n",
        &[],
    );
    r.cmd(&["DEBUG", "POPULATE", "400000", "key", "512"]);
    r.cmd(&[
        "EVAL",
        "for i = 0, 399999 do if i % 4 ~= 0 then redis.call('DEL', 'key:' .. i) end end return 1",
        "0",
    ]);
    let urls = [
        pg_url(&pg, "postgres"),
        format!("redis://127.0.0.1:{}", r.port),
    ];
    let obs = Observing::start(&["--seconds", "4", "--ram", "4GiB", &urls[0], &urls[1]]);
    pg.psql("postgres", "app", SPILL);
    let (_, text, _) = obs.finish();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("obs.json");
    std::fs::write(&file, &text).unwrap();
    let out = work.path().join("advised");
    let run = harness::dbtune()
        .args(["advise", "--ram", "4GiB", "--format", "json", "--out"])
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let system: Vec<(String, String)> = v["advice"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["applies_to"] == "system")
        .map(|p| {
            (
                p["setting"].as_str().unwrap().to_string(),
                p["proposed"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = system.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"autovacuum") && names.contains(&"activedefrag"),
        "{v:#}"
    );
    let conf = std::fs::read_to_string(out.join("postgresql.conf")).unwrap();
    assert!(conf.contains("# advised (autovacuum-behind)"), "{conf}");
    assert!(conf.contains("autovacuum = 'on'"), "{conf}");
    assert!(out.join("dbtune-manifest.json").exists());

    // The set fits the host it was advised for (the manifest says which).
    let check = harness::dbtune()
        .arg("check-budget")
        .arg(&out)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", harness::whole_output(&check));

    // diff: the proposals and nothing else.
    let diff = harness::dbtune()
        .arg("diff")
        .arg(&out)
        .args(&urls)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&diff.stdout).into_owned();
    assert_eq!(
        diff.status.code(),
        Some(1),
        "{}",
        harness::whole_output(&diff)
    );
    assert!(
        shown.contains(&format!("{} setting(s) differ", system.len())),
        "{shown}\n{system:?}"
    );

    let apply = harness::dbtune()
        .arg("apply")
        .arg(&out)
        .args(&urls)
        .args(["--yes", "--snapshot-dir"])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(apply.status.success(), "{}", harness::whole_output(&apply));
    // What needs a restart still differs until the server restarts.
    let pending = v["advice"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["applies_to"] == "system" && p["restart"] == true)
        .count();
    let again = harness::dbtune()
        .arg("diff")
        .arg(&out)
        .args(&urls)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(&format!("{pending} setting(s) differ")),
        "{}",
        harness::whole_output(&again)
    );
    // The role's work_mem, run as psql would.
    let roles = out.join("roles.sql");
    if roles.exists() {
        let mut psql = pg.tool("psql");
        let ran = psql
            .args([
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-f",
            ])
            .arg(&roles)
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        let set = pg.psql(
            "postgres",
            "postgres",
            "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s \
             JOIN pg_roles r ON r.oid = s.setrole WHERE rolname = 'app'",
        );
        assert!(set.contains("work_mem="), "{set}");
    }
}

/// max_connections 300 on a host of 1 GiB with two clients seen: the set
/// does not fit at the busy level, and the unused connections are the
/// room; on 4 GiB it fits and nothing is proposed.
#[test]
fn a_set_over_its_budget_gets_max_connections_down_to_what_was_used() {
    let pg = Postgres::start("max_connections = 300\n", &[]);
    let obs = Observing::start(&["--seconds", "3", "--ram", "1GiB", &pg_url(&pg, "postgres")]);
    let clients: Vec<Child> = (0..2)
        .map(|_| in_background(&pg, "SELECT pg_sleep(2)"))
        .collect();
    for c in clients {
        harness::run_ok_child(c);
    }
    let (_, text, _) = obs.finish();
    let v = advise_on(&text, "1GiB");
    let p = proposals(&v, "connections-unused");
    assert_eq!(p.len(), 1, "{v:#}");
    assert_eq!(
        (p[0]["current"].as_str(), p[0]["proposed"].as_str()),
        (Some("300"), Some("20"))
    );
    assert!(
        p[0]["room"].as_str().unwrap().contains("frees memory"),
        "{}",
        p[0]
    );
    assert!(
        v["budget"]["after"].as_u64().unwrap() < v["budget"]["before"].as_u64().unwrap(),
        "{v:#}"
    );
    assert!(proposals(&advise_on(&text, "8GiB"), "connections-unused").is_empty());
}

/// pgbench's script for the commit-flush test: a row updated, then 4 ms
/// of work inside the transaction (at the staging host, its disk reads),
/// then the commit and its WAL flush.
const SLOW_COMMITS: &str = "\\set aid random(1, 100000 * :scale)\n\
    BEGIN;\n\
    UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n\
    SELECT pg_sleep(0.004);\n\
    END;\n";

/// The WAL syncs of an observation's window and the milliseconds they
/// took, read from its JSON as the server's views name them.
fn observed_syncs(v: &serde_json::Value) -> (f64, f64) {
    let counters = v["postgres"]["counters"].as_object().unwrap();
    if let Some(n) = counters["wal"]["delta"]["wal_sync"].as_f64() {
        return (
            n,
            counters["wal"]["delta"]["wal_sync_time"].as_f64().unwrap(),
        );
    }
    counters
        .iter()
        .filter(|(k, _)| k.starts_with("io ") && k.split('/').nth(1) == Some("wal"))
        .fold((0.0, 0.0), |(n, ms), (_, c)| {
            (
                n + c["delta"]["fsyncs"].as_f64().unwrap_or(0.0),
                ms + c["delta"]["fsync_time"].as_f64().unwrap_or(0.0),
            )
        })
}

/// Commits queueing behind a slow WAL flush: a cluster on a disk
/// throttled to 500 IOPS (bench's --disk-iops: a flush of milliseconds),
/// track_wal_io_timing on, 10 clients whose transactions each hold 4 ms
/// before committing. advise proposes commit_delay at half the mean flush
/// the window saw; without the flushes' time it says to turn the timing
/// on instead; applied, the same load observed again gets no proposal,
/// and compare reports fewer WAL syncs a transaction.
fn commits_behind_a_slow_flush_get_commit_delay(major: Option<u32>) {
    let pg = Postgres::start_throttled(major, "track_wal_io_timing = on\n", 500);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow-commits.sql");
    std::fs::write(&script, SLOW_COMMITS).unwrap();
    let mut init = pg.tool("pgbench");
    init.args(["-U", "postgres", "-i", "-s", "1", "-q", "postgres"]);
    harness::run_ok(init);
    let window = |name: &str| {
        let obs = Observing::start(&["--seconds", "5", "--ram", "4GiB", &pg_url(&pg, "postgres")]);
        let mut load = pg.tool("pgbench");
        load.args([
            "-U", "postgres", "-n", "-c", "10", "-j", "2", "-T", "7", "-f",
        ])
        .arg(&script)
        .arg("postgres");
        let load = load
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (v, text, _) = obs.finish();
        harness::run_ok_child(load);
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        (path, v, text)
    };
    let (before, v, text) = window("before.json");
    let a = advise(&text);
    let p = proposals(&a, "commit-flushes");
    assert_eq!(p.len(), 1, "{a:#}");
    let (syncs, ms) = observed_syncs(&v);
    let want = ((ms / syncs * 1000.0 / 2.0) / 10.0).floor() * 10.0;
    assert!(want >= 100.0, "{syncs} syncs took {ms} ms");
    assert_eq!(p[0]["setting"], "commit_delay");
    assert_eq!(p[0]["current"], "0");
    assert_eq!(p[0]["proposed"], format!("{want:.0}"), "{a:#}");
    assert_eq!(p[0]["restart"], false);
    let evidence = p[0]["evidence"].as_str().unwrap();
    assert!(evidence.contains("commit_siblings"), "{evidence}");

    // The same window without the flushes' time: a note, no proposal.
    let mut untimed = v.clone();
    for s in untimed["postgres"]["settings"].as_array_mut().unwrap() {
        if s["name"] == "track_wal_io_timing" {
            s["value"] = "off".into();
        }
    }
    let a = advise(&untimed.to_string());
    assert!(proposals(&a, "commit-flushes").is_empty(), "{a:#}");
    let notes = a["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("track_wal_io_timing is off")),
        "{a:#}"
    );

    // Applied (a reload), the same load again: nothing more to propose,
    // and each flush carries more commits.
    pg.psql(
        "postgres",
        "postgres",
        &format!("ALTER SYSTEM SET commit_delay = {want:.0}"),
    );
    pg.psql("postgres", "postgres", "SELECT pg_reload_conf()");
    let (after, _, text) = window("after.json");
    assert!(proposals(&advise(&text), "commit-flushes").is_empty());
    let c = compare(&before, &after);
    let syncs = c["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["measure"] == "WAL syncs per transaction")
        .unwrap_or_else(|| panic!("no WAL syncs: {c:#}"));
    assert_eq!(syncs["outcome"], "improved", "{syncs}");
}

#[test]
fn commits_behind_a_slow_flush_get_commit_delay_pg15() {
    commits_behind_a_slow_flush_get_commit_delay(None);
}

/// 18 counts WAL syncs in pg_stat_io, no longer in pg_stat_wal.
#[test]
fn commits_behind_a_slow_flush_get_commit_delay_pg18() {
    commits_behind_a_slow_flush_get_commit_delay(Some(18));
}
