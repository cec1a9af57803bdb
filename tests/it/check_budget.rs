//! check-budget on real files: Debian's stock configs, the seed documents'
//! configs, include chains, typos, and input that is not a config at all.

use crate::harness;
use std::fs;

use crate::harness::{dbtune, fixture as fx};
use predicates::prelude::*;
use predicates::str::contains;

fn json(args: &[&str]) -> (i32, serde_json::Value) {
    harness::check_budget_json(None, args)
}

fn messages(v: &serde_json::Value) -> String {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}\n", f["at"]["line"], f["severity"], f["message"]))
        .collect()
}

#[test]
fn debian_stock_postgres_fits_8gib_and_4gib_only_at_the_typical_level() {
    // 100 connections, each able to run two hash nodes of 8 MB and a
    // JIT-compiled plan at once: 4.5 GiB in the worst case.
    let conf = fx("debian/postgresql.conf");
    let (code, v) = json(&["--ram", "8GiB", "--pg-version", "15", &conf]);
    assert_eq!(code, 0, "{}", messages(&v));
    assert_eq!(v["verdict"], "fits");
    assert_eq!(v["level"], "worst");
    let (code, v) = json(&["--ram", "4GiB", "--pg-version", "15", &conf]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "does-not-fit");
    // At the typical level the worst case is a warning, and the report
    // says what it assumed.
    let (code, v) = json(&[
        "--ram",
        "4GiB",
        "--pg-version",
        "15",
        "--level",
        "typical",
        &conf,
    ]);
    assert_eq!(code, 0, "{}", messages(&v));
    assert_eq!(v["verdict"], "fits");
    assert!(messages(&v).contains("the worst case"), "{}", messages(&v));
    assert_eq!(v["assumptions"]["sorts_per_query"], 2);
    // Assumptions from flags change the terms they name.
    let (_, three) = json(&[
        "--ram",
        "8GiB",
        "--pg-version",
        "15",
        "--sorts-per-query",
        "3",
        &conf,
    ]);
    let work_mem = |v: &serde_json::Value| {
        v["terms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "work_mem")
            .unwrap()["worst"]
            .as_f64()
            .unwrap()
    };
    let (_, two) = json(&["--ram", "8GiB", "--pg-version", "15", &conf]);
    let ratio = work_mem(&three) / work_mem(&two);
    assert!((ratio - 1.5).abs() < 0.001, "{ratio}");
    assert_eq!(three["assumptions"]["sorts_per_query"], 3);
}

#[test]
fn debian_stock_redis_is_unbounded_and_pgbouncer_uses_md5() {
    let (code, v) = json(&["--ram", "8GiB", "--pg-version", "15", &fx("debian")]);
    assert_eq!(code, 1);
    let m = messages(&v);
    assert!(m.contains("maxmemory is 0 or unset"), "{m}");
    assert!(m.contains("auth_type = md5 is weak"), "{m}");
    assert_eq!(v["verdict"], "invalid");
}

#[test]
fn staging_seed_does_not_fit_its_own_4gb_host() {
    // The seed's own arithmetic: 256MB + 100 x 4MB + 200MB = 856MB for
    // PostgreSQL. The worst case counts every backend, sorts and hashes,
    // autovacuum, and Redis's fork.
    let (code, v) = json(&["--ram", "4GiB", "--pg-version", "15", &fx("seeds/staging")]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "does-not-fit");
    // Old ziplist names are accepted as their listpack names.
    assert!(!messages(&v).contains("ziplist"), "{}", messages(&v));
    let terms = v["terms"].as_array().unwrap();
    let fork = terms
        .iter()
        .find(|t| t["name"] == "fork copy-on-write")
        .unwrap();
    assert!(
        fork["source"].as_str().unwrap().contains("redis.conf:11"),
        "{fork}"
    );
}

#[test]
fn powerhouse_seed_pgbouncer_comments_after_values_are_errors() {
    let (code, v) = json(&["--ram", "64GiB", &fx("seeds/powerhouse")]);
    assert_eq!(code, 1);
    let m = messages(&v);
    assert!(
        m.contains("11 \"error\" \"`max_client_conn` has a comment after its value"),
        "{m}"
    );
    // 256MB work_mem x (200 + 8) x 2 x 2 is far beyond 64 GiB.
    assert_eq!(v["verdict"], "does-not-fit");
}

#[test]
fn pgtune_on_one_gib_is_caught_by_the_work_mem_rule() {
    let out = dbtune()
        .args([
            "check-budget",
            "--ram",
            "1GiB",
            "--pg-version",
            "15",
            &fx("pgtune-1g/postgresql.conf"),
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("postgresql.conf:11: error: work_mem 4 MiB x max_connections 300 = 1.2 GiB"),
        "{text}"
    );
    assert!(text.contains("does not fit"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when not a terminal");
}

#[test]
fn includes_are_followed_and_later_settings_win() {
    let (code, v) = json(&["--ram", "8GiB", "--pg-version", "15", &fx("includes")]);
    assert_eq!(code, 0, "{}", messages(&v));
    let files: Vec<String> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "postgresql.conf",
            "memory.conf",
            "01-connections.conf",
            "02-override.conf",
            "postgresql.auto.conf"
        ]
    );
    let src = |name: &str| {
        v["terms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["source"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // postgresql.auto.conf is read last; memory.conf's work_mem beats the
    // main file's; conf.d's max_connections beats the main file's earlier
    // line but not its later one (main line 7 comes after the include_dir).
    assert!(
        src("shared memory").contains("shared_buffers 512 MiB at")
            && src("shared memory").contains("postgresql.auto.conf:3")
    );
    assert!(
        src("work_mem").contains("work_mem 8 MiB") && src("work_mem").contains("memory.conf:2")
    );
    assert!(
        src("backend processes").contains("50 connections"),
        "{}",
        src("backend processes")
    );
    let m = messages(&v);
    assert!(m.contains("`shared_buffers` is set again"), "{m}");
    assert!(
        !m.contains("1 GiB") && !m.contains("2GB"),
        "hidden and non-.conf files are skipped: {m}"
    );
}

/// check-budget run from `dir`, as the servers read relative includes.
fn json_in(dir: &str, args: &[&str]) -> (i32, serde_json::Value) {
    harness::check_budget_json(Some(dir), args)
}

#[test]
fn redis_include_globs_and_pgbouncer_includes() {
    // Redis and PgBouncer open a relative include from their working
    // directory (asked of redis-server and pgbouncer): run from there.
    let (code, v) = json_in(&fx("includes/redis"), &["--ram", "8GiB", "redis.conf"]);
    let m = messages(&v);
    assert_eq!(code, 0, "{m}");
    let (code, vb) = json_in(&fx("includes/bouncer"), &["--ram", "8GiB", "pgbouncer.ini"]);
    assert_eq!(code, 0, "{}", messages(&vb));
    let data = v["terms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "data x fragmentation")
        .unwrap();
    assert!(
        data["source"]
            .as_str()
            .unwrap()
            .contains("maxmemory 200 MiB"),
        "{data}"
    );
    assert!(
        data["source"].as_str().unwrap().contains("extra-1.conf:1"),
        "{data}"
    );
    let conns = vb["terms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["service"] == "pgbouncer")
        .unwrap();
    assert!(
        conns["source"].as_str().unwrap().contains("500 clients"),
        "{conns}"
    );
    assert!(
        conns["source"].as_str().unwrap().contains("30 server"),
        "{conns}"
    );
}

#[test]
fn relative_redis_and_pgbouncer_includes_are_read_from_the_working_directory() {
    // From elsewhere, the include is not there: as redis-server would say.
    // The report is complete (the include an error at its line), exit 2.
    let (code, v) = json(&["--ram", "8GiB", &fx("includes/bouncer/pgbouncer.ini")]);
    assert_eq!(code, 2);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["message"].as_str().unwrap().contains("does not exist"))
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        f["hint"].as_str().unwrap().contains("working directory"),
        "{v}"
    );
    assert!(
        f["at"]["file"].as_str().unwrap().ends_with("pgbouncer.ini") && f["at"]["line"] == 2,
        "{v}"
    );
}

#[test]
fn a_missing_include_is_an_error_at_its_line() {
    dbtune()
        .args([
            "check-budget",
            "--ram",
            "4GiB",
            &fx("missing-include/postgresql.conf"),
        ])
        .assert()
        .code(2)
        .stdout(
            contains("missing-include/postgresql.conf:2")
                .and(contains("nope.conf` does not exist")),
        );
}

#[test]
fn an_include_cycle_is_an_error_not_a_hang() {
    dbtune()
        .args([
            "check-budget",
            "--ram",
            "4GiB",
            &fx("cycle/postgresql.conf"),
        ])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(contains("include cycle").and(contains("cycle/a.conf:2")));
}

#[test]
fn typos_units_ranges_versions_and_repeats_are_reported_at_their_lines() {
    let (code, v) = json(&[
        "--ram",
        "8GiB",
        "--pg-version",
        "15",
        &fx("typos/postgresql.conf"),
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "invalid");
    let m = messages(&v);
    for want in [
        "1 \"error\" \"unknown parameter `shared_bufers`\"",
        "2 \"error\" \"`mb` is not a valid unit for `work_mem`\"",
        "4 \"error\" \"`checkpoint_timeout` = 5 is below its minimum 30 x s\"",
        "5 \"error\" \"`io_method` does not exist in PostgreSQL 15: it was added in 18\"",
        "3 \"warning\" \"`max_connections` is set again",
    ] {
        assert!(m.contains(want), "missing {want} in\n{m}");
    }
    let hint = v["findings"][0]["hint"].as_str().unwrap();
    assert_eq!(hint, "did you mean `shared_buffers`?");
}

#[test]
fn github_format_annotates_file_and_line() {
    let out = dbtune()
        .args([
            "check-budget",
            "--ram",
            "4GiB",
            "--pg-version",
            "15",
            "--format",
            "github",
            &fx("typos/postgresql.conf"),
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("::error file="), "{first}");
    assert!(
        first.contains("typos/postgresql.conf,line=1,title=dbtune postgres::unknown parameter"),
        "{first}"
    );
    assert!(first.contains("%0Ahint: did you mean"), "{first}");
}

#[test]
fn a_rendered_directory_is_checked_against_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    dbtune()
        .args(["render", "--profile", "bulk-ingest", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    dbtune()
        .arg("check-budget")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(
            contains("manifest: nominal host of profile bulk-ingest")
                .and(contains("upload API workers")),
        )
        .stdout(contains("fits: worst case"));
    // The same files on a smaller host do not fit.
    dbtune()
        .args(["check-budget", "--ram", "16GiB"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(contains("does not fit"));
}

#[test]
fn without_a_ram_source_it_says_it_uses_this_machine() {
    dbtune()
        .args([
            "check-budget",
            "--pg-version",
            "15",
            &fx("debian/postgresql.conf"),
        ])
        .assert()
        .stderr(
            contains("checking against this machine's").and(contains("rarely the target host")),
        );
}

#[test]
fn a_facts_file_gives_the_ram_and_version() {
    let (_, v) = json(&[
        "--facts",
        &fx("facts/db1.toml"),
        &fx("debian/postgresql.conf"),
    ]);
    assert_eq!(v["ram"], 48u64 << 30);
    assert_eq!(v["pg_version"], 16);
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("postgresql.conf"),
        b"shared_buffers = 1GB\n\x00\x01\x02binary",
    )
    .unwrap();
    dbtune()
        .args(["check-budget", "--ram", "4GiB"])
        .arg(d.join("postgresql.conf"))
        .assert()
        .code(2)
        .stderr(contains("postgresql.conf:2").and(contains("binary file")));

    fs::write(d.join("redis.conf"), b"maxmemory 1gb\n# caf\xe9\n").unwrap();
    dbtune()
        .args(["check-budget", "--ram", "4GiB"])
        .arg(d.join("redis.conf"))
        .assert()
        .code(2)
        .stderr(
            contains("redis.conf:2")
                .and(contains("not valid UTF-8"))
                .and(contains("hint:")),
        );

    let big = d.join("big").join("postgresql.conf");
    fs::create_dir(d.join("big")).unwrap();
    let line = "work_mem = 4MB\n".repeat(1024);
    let mut text = String::with_capacity(50 << 20);
    while text.len() < 50 << 20 {
        text.push_str(&line);
    }
    fs::write(&big, text).unwrap();
    dbtune()
        .args(["check-budget", "--ram", "4GiB"])
        .arg(&big)
        .assert()
        .code(2)
        .stderr(contains("too large to be a config file"));

    fs::create_dir(d.join("empty")).unwrap();
    fs::write(d.join("empty").join("notes.txt"), "hello").unwrap();
    dbtune()
        .args(["check-budget", "--ram", "4GiB"])
        .arg(d.join("empty"))
        .assert()
        .code(2)
        .stderr(contains("no config file found").and(contains("hint:")));

    dbtune()
        .args([
            "check-budget",
            "--ram",
            "4GiB",
            "/nonexistent/postgresql.conf",
        ])
        .assert()
        .code(2)
        .stderr(contains("does not exist"));
}

/// JIT memory is counted only where a JIT-compiled query can exist: a build
/// the facts say lacks llvmjit has no JIT term, one with it (or an unknown
/// build: the safe side) has one.
#[test]
fn jit_is_budgeted_only_for_builds_that_can_jit() {
    let dir = tempfile::tempdir().unwrap();
    let conf = fx("debian/postgresql.conf");
    let jit_term = |build: Option<&str>| {
        let facts = dir.path().join("facts.toml");
        let build_line = build.map_or(String::new(), |b| format!("postgres_build = [{b}]\n"));
        fs::write(
            &facts,
            format!("[memory]\nphysical = \"64GiB\"\n[cpu]\nlogical = 8\n[storage]\nkind = \"ssd\"\n[servers]\npostgres = \"15.6\"\n{build_line}"),
        )
        .unwrap();
        let (_, v) = json(&["--facts", facts.to_str().unwrap(), &conf]);
        v["terms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "JIT")
    };
    assert!(!jit_term(Some("\"debian\", \"no-llvmjit\"")));
    assert!(jit_term(Some("\"debian\", \"llvmjit\"")));
    assert!(jit_term(None));
}

/// A file saved with a UTF-8 byte order mark: one error at line 1 that
/// names it and says how to remove it, not an unknown parameter whose name
/// starts with an invisible character (tests/it/pg_start.rs and
/// services_oracle.rs show each server refuses such a file).
#[test]
fn a_byte_order_mark_is_said_plainly_at_line_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("postgresql.conf");
    std::fs::write(&f, "\u{feff}work_mem = 4MB\nmax_connections = 50\n").unwrap();
    let out = dbtune()
        .args(["check-budget", "--ram", "8GiB"])
        .arg(&f)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "postgresql.conf:1: error: the file starts with a UTF-8 byte order mark (BOM)"
        ) && text.contains("hint: save the file as UTF-8 without a BOM"),
        "{text}"
    );
    assert!(!text.contains("unknown parameter"), "{text}");
    assert!(!text.contains('\u{feff}'), "{text}");
}

/// A config file or directory the user may not read: the error says
/// permission denied, with the path, never "no config file found" or "does
/// not exist". Run as the `postgres` user when the tests run as root (root
/// reads everything).
#[test]
fn permission_denied_is_said_with_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = harness::server_dir();
    let d = dir.path();
    let locked = d.join("locked");
    std::fs::create_dir(&locked).unwrap();
    harness::write(&locked.join("postgresql.conf"), "work_mem = 4MB\n");
    let open = d.join("open");
    std::fs::create_dir(&open).unwrap();
    harness::write(&open.join("postgresql.conf"), "work_mem = 4MB\n");
    if let Some((uid, gid)) = harness::postgres_ids() {
        for sub in [&locked, &open] {
            std::os::unix::fs::chown(sub, Some(uid), Some(gid)).unwrap();
        }
    }
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(&locked, 0o000);
    mode(&open.join("postgresql.conf"), 0o000);
    let bin = assert_cmd::cargo::cargo_bin("dbtune");
    let run = |path: &std::path::Path| {
        let mut c = harness::as_postgres(&bin);
        c.args(["check-budget", "--ram", "4GiB"])
            .arg(path)
            .env("NO_COLOR", "1");
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cases = [
        (locked.clone(), locked.join("postgresql.conf")),
        (
            locked.join("postgresql.conf"),
            locked.join("postgresql.conf"),
        ),
        (open.clone(), open.join("postgresql.conf")),
    ];
    let results: Vec<_> = cases.iter().map(|(arg, _)| run(arg)).collect();
    mode(&locked, 0o755);
    for ((arg, shown), (code, err)) in cases.iter().zip(results) {
        assert_eq!(code, Some(2), "{}: {err}", arg.display());
        assert!(
            err.contains(&shown.display().to_string()) && err.contains("Permission denied"),
            "{}: {err}",
            arg.display()
        );
        assert!(
            !err.contains("no config file found") && !err.contains("does not exist"),
            "{}: {err}",
            arg.display()
        );
        assert!(err.contains("hint: "), "{err}");
    }
}
