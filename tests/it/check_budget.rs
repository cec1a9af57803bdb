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
fn debian_stock_postgres_fits_8gib_and_4gib_below_the_worst_case() {
    // 100 connections, each able to run two hash nodes of 8 MB and a
    // JIT-compiled plan at once: 4.5 GiB in the worst case.
    let conf = fx("debian/postgresql.conf");
    let (code, v) = json(&["--ram", "8GiB", "--pg-version", "15", &conf]);
    assert_eq!(code, 0, "{}", messages(&v));
    assert_eq!(v["verdict"], "fits");
    assert_eq!(v["level"], "busy");
    assert_eq!(v["fits_at"], "worst");
    // On 4 GiB the default gate passes: 97 of the 100 connections can run
    // the heavy query at once, 25 are needed; the worst case is a warning.
    let (code, v) = json(&["--ram", "4GiB", "--pg-version", "15", &conf]);
    assert_eq!(code, 0, "{}", messages(&v));
    assert_eq!(v["fits_at"], "busy");
    assert_eq!(v["exposure"]["survives"], 97);
    assert_eq!(v["exposure"]["required"], 25);
    assert!(messages(&v).contains("the worst case (4.5 GiB of 4 GiB) does not fit"));
    let (code, v) = json(&[
        "--ram",
        "4GiB",
        "--pg-version",
        "15",
        "--level",
        "worst",
        &conf,
    ]);
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
    assert!(m.contains("its memory is unbounded"), "{m}");
    assert!(m.contains("auth_type = md5 is weak"), "{m}");
    assert_eq!(v["verdict"], "invalid");
}

#[test]
fn staging_seed_fits_its_own_4gb_host_only_below_the_worst_case() {
    // The seed's own arithmetic: 256MB + 100 x 4MB + 200MB = 856MB for
    // PostgreSQL. The worst case counts every backend, sorts and hashes,
    // autovacuum, and Redis's fork: the strict gate fails it.
    let staging = fx("seeds/staging");
    let args = [
        "--ram",
        "4GiB",
        "--pg-version",
        "15",
        "--redis-version",
        "7.0",
    ];
    let (code, v) = json(&[&args[..], &["--level", "worst", &staging]].concat());
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "does-not-fit");
    // The host runs it: at the default gate 72 heavy queries survive at
    // once, and a quarter of its 100 connections (25) is what is asked.
    let (code, d) = json(&[&args[..], &[staging.as_str()]].concat());
    assert_eq!(code, 0, "{}", messages(&d));
    assert_eq!(d["fits_at"], "busy");
    assert_eq!(d["exposure"]["survives"], 72);
    assert_eq!(d["levels"]["worst"]["fits"], false);
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
    let args = [
        "--ram",
        "64GiB",
        "--pg-version",
        "15",
        "--pgbouncer-version",
        "1.18",
    ];
    let (code, v) = json(&[&args[..], &["--level", "worst", &fx("seeds/powerhouse")]].concat());
    assert_eq!(code, 1);
    let m = messages(&v);
    assert!(
        m.contains("11 \"error\" \"`max_client_conn` has a comment after its value"),
        "{m}"
    );
    // 256MB work_mem x (200 + 8) x 2 x 2 is far beyond 64 GiB; the
    // verdict names the budget, and the errors are still every one there
    // and counted beside it (issue 22: JSON hid them behind the verdict).
    assert_eq!(v["verdict"], "does-not-fit");
    assert_eq!(v["errors"], 8, "{m}");
    assert_eq!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error")
            .count(),
        8
    );
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
        .stdout(contains("fits: busy level").and(contains("fits at the worst case level")));
    // The same files on a smaller host do not fit.
    dbtune()
        .args(["check-budget", "--ram", "16GiB", "--level", "worst"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(contains("does not fit"));
}

#[test]
fn a_rendered_directory_gives_one_answer_whether_named_or_its_files_are() {
    // Issue 22: naming the files gave another RAM, reservations and
    // releases than naming the directory; the manifest lists its files.
    let dir = tempfile::tempdir().unwrap();
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let d = dir.path().to_str().unwrap();
    let (code_dir, by_dir) = json(&[d]);
    let files: Vec<String> = [
        "postgresql.conf",
        "redis.conf",
        "pgbouncer.ini",
        "99-dbtune.conf",
    ]
    .iter()
    .map(|f| format!("{d}/{f}"))
    .collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code_files, by_files) = json(&args);
    assert_eq!(code_dir, code_files);
    for key in [
        "verdict",
        "ram",
        "ram_source",
        "worst",
        "typical",
        "levels",
        "exposure",
    ] {
        assert_eq!(by_dir[key], by_files[key], "{key}");
    }
    assert_eq!(by_dir["redis_version"], by_files["redis_version"]);
    assert_eq!(by_dir["terms"], by_files["terms"]);
    assert!(by_files["ram_source"]
        .as_str()
        .unwrap()
        .starts_with("manifest"));
}

#[test]
fn a_reserve_that_names_the_profiles_reservation_is_counted_once() {
    // The README's `--profile low-memory --reserve api=1GiB`: the profile
    // already holds "API: 4 gunicorn workers"; --reserve api replaces it.
    let conf = fx("debian/postgresql.conf");
    let base = [
        "--ram",
        "4GiB",
        "--pg-version",
        "15",
        "--profile",
        "low-memory",
    ];
    let (_, plain) = json(&[&base[..], &[conf.as_str()]].concat());
    let (_, api) = json(&[&base[..], &["--reserve", "api=1GiB", &conf]].concat());
    assert_eq!(plain["worst"], api["worst"], "the API is counted once");
    let host: Vec<&serde_json::Value> = api["terms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["service"] == "host")
        .collect();
    assert_eq!(host.len(), 3, "{host:?}");
    assert!(host[1]["source"]
        .as_str()
        .unwrap()
        .contains("--reserve api=1 GiB, in place of API: 4 gunicorn workers"));
    // A new name adds a term; a name that matches two is refused.
    let (_, more) = json(&[&base[..], &["--reserve", "cron=256MiB", &conf]].concat());
    assert_eq!(
        more["worst"].as_u64().unwrap(),
        plain["worst"].as_u64().unwrap() + 256 * 1024 * 1024
    );
}

#[test]
fn inside_a_container_the_hosts_os_reserve_is_not_charged() {
    // A 1 GiB container: the host's 512 MiB OS reserve was half of it.
    let conf = fx("debian/postgresql.conf");
    let (_, host) = json(&["--ram", "1GiB", "--pg-version", "15", &conf]);
    let (_, ctr) = json(&["--ram", "1GiB", "--pg-version", "15", "--container", &conf]);
    let term = |v: &serde_json::Value, name: &str| {
        v["terms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
    };
    assert_eq!(
        term(&host, "OS reserve").unwrap()["worst"],
        512 * 1024 * 1024
    );
    assert!(term(&ctr, "OS reserve").is_none());
    let own = term(&ctr, "container overhead").unwrap();
    assert_eq!(own["worst"], 8 * 1024 * 1024);
    assert!(
        own["source"].as_str().unwrap().contains("measured"),
        "{own}"
    );
    assert_eq!(
        host["worst"].as_u64().unwrap() - ctr["worst"].as_u64().unwrap(),
        504 * 1024 * 1024
    );
}

#[test]
fn a_release_that_is_not_stated_gives_warnings_not_errors_for_keys_of_other_releases() {
    // `locale-collate` is Redis 7.2+ (and `max_db_client_connections`
    // PgBouncer 1.24): stated releases that lack them are errors...
    let dir = tempfile::tempdir().unwrap();
    let redis = dir.path().join("redis.conf");
    fs::write(&redis, "maxmemory 100mb\nlocale-collate \"\"\n").unwrap();
    let r = redis.to_str().unwrap();
    let (code, v) = json(&["--ram", "4GiB", "--redis-version", "7.0", r]);
    assert_eq!(code, 1);
    assert_eq!(v["errors"], 1, "{}", messages(&v));
    assert_eq!(v["redis_version"]["stated"], true);
    // ...an assumed one (a facts file without Redis, nothing else) is
    // this machine's or the newest, and a key of other releases is a
    // warning that names them and the flag.
    let facts = dir.path().join("facts.toml");
    fs::write(
        &facts,
        "[memory]\nphysical = \"4GiB\"\n[cpu]\nlogical = 2\n[storage]\nkind = \"ssd\"\n",
    )
    .unwrap();
    let (_, v) = json(&["--ram", "4GiB", r]);
    assert_eq!(v["redis_version"]["stated"], false);
    assert_eq!(v["errors"], 0, "{}", messages(&v));
    let f = &v["findings"].as_array().unwrap();
    if v["redis_version"]["version"] == "7.0" {
        // This machine's Redis 7.0 assumed: the 7.2 key is said.
        let w = f
            .iter()
            .find(|f| f["message"].as_str().unwrap().contains("locale-collate"))
            .unwrap();
        assert_eq!(w["severity"], "warning");
        assert!(
            w["hint"]
                .as_str()
                .unwrap()
                .contains("7.2, 7.4, 8.0 have it"),
            "{w}"
        );
        assert!(
            w["hint"].as_str().unwrap().contains("--redis-version"),
            "{w}"
        );
    }
    assert!(v["redis_version"]["source"]
        .as_str()
        .unwrap()
        .starts_with("assumed"));
    // PostgreSQL alike: io_method is 18's.
    let pg = dir.path().join("postgresql.conf");
    fs::write(&pg, "io_method = worker\n").unwrap();
    let p = pg.to_str().unwrap();
    let (code, v) = json(&["--ram", "4GiB", "--pg-version", "16", p]);
    assert_eq!((code, v["errors"].as_u64()), (1, Some(1)));
    let (_, v) = json(&["--ram", "4GiB", "--facts", facts.to_str().unwrap(), p]);
    assert_eq!(v["errors"], 0, "{}", messages(&v));
    let w = &v["findings"][0];
    assert_eq!(w["severity"], "warning");
    assert!(
        w["hint"].as_str().unwrap().contains("release 18 has it"),
        "{w}"
    );
    assert!(w["hint"].as_str().unwrap().contains("--pg-version"), "{w}");
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

/// check-budget's JSON when it cannot run names the file, line and setting
/// as data, not only inside a `file:line` string.
#[test]
fn a_bad_facts_value_is_an_error_with_its_file_line_and_setting_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let facts = dir.path().join("facts.toml");
    fs::write(
        &facts,
        "hostname = \"db1\"\n\n[memory]\nphysical = \"8GiB\"\n\n[cpu]\nlogical = 100000\n\n\
         [storage]\nkind = \"ssd\"\n",
    )
    .unwrap();
    let (code, v) = json(&[
        "--facts",
        facts.to_str().unwrap(),
        &fx("debian/postgresql.conf"),
    ]);
    assert_eq!(code, 2, "{v}");
    let e = &v["error"];
    assert_eq!(e["file"], facts.display().to_string(), "{v}");
    assert_eq!(e["line"], 7, "{v}");
    assert_eq!(e["setting"], "cpu.logical", "{v}");
    assert_eq!(e["at"], format!("{}:7", facts.display()), "{v}");
    assert!(e["hint"].as_str().is_some_and(|h| !h.is_empty()), "{v}");
}
