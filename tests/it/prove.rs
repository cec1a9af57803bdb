//! `--prove-start` against the real servers: what PostgreSQL 15 and 18,
//! Redis 7.0 and 8.0 and PgBouncer 1.18 and 1.24 refuse is reported as
//! theirs, at the line of the setting; what dbtune renders starts; a
//! committed config runs no command and loads no library; the scratch
//! servers stop, also when the process that started them dies.

use crate::harness;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{check_budget_json, dbtune};
use dbtune::prove;
use dbtune::read::grammar;
use dbtune::version::PgVersion;
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

/// The servers each proof needs are part of the test set-up (`bash
/// .ci/run` fetches and builds them): one that is missing fails the test.
fn need_pg(major: u32) {
    assert!(
        prove::postgres::find(major).is_some(),
        "PostgreSQL {major} is not on this machine for the start proof (bash .ci/run installs it)"
    );
}

fn need_redis(release: &str) {
    assert!(
        prove::redis::find(release).is_some(),
        "Redis {release} is not on this machine for the start proof (bash .ci/run installs it)"
    );
}

fn need_pgbouncer(release: &str) {
    assert!(
        prove::pgbouncer::find(release).is_some(),
        "PgBouncer {release} is not on this machine for the start proof (bash .ci/run installs it)"
    );
}

/// A directory holding `files` (name, text).
fn files(list: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in list {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// `check-budget --prove-start ARGS --format json` in `dir`.
fn prove_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--prove-start"];
    all.extend_from_slice(args);
    check_budget_json(Some(dir.to_str().unwrap()), &all)
}

/// The start proof's entry for one service.
fn proof<'a>(v: &'a Value, service: &str) -> &'a Value {
    v["start_proof"]
        .as_array()
        .unwrap_or_else(|| panic!("no start_proof: {v:#}"))
        .iter()
        .find(|p| p["service"] == service)
        .unwrap_or_else(|| panic!("no {service} in {v:#}"))
}

/// The refusal finding at `file:line` that says `needle`.
fn refusal_at<'a>(v: &'a Value, file: &str, line: u64, needle: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["at"]["file"] == file
                && f["at"]["line"] == line
                && f["message"].as_str().unwrap().contains("refused to start")
                && f["message"].as_str().unwrap().contains(needle)
        })
        .unwrap_or_else(|| panic!("no refusal at {file}:{line} saying {needle}: {v:#}"))
}

#[test]
fn postgres_refusals_are_the_servers_own_lines_at_the_setting() {
    let cases: [(&str, &str); 4] = [
        // superuser_reserved_connections defaults to 3: none left.
        ("max_connections = 3", "superuser_reserved_connections"),
        (
            "shared_preload_libraries = 'not_installed'",
            "not_installed",
        ),
        ("timezone = 'Mars/Olympus'", "Mars/Olympus"),
        ("unix_socket_group = 'no_such_group'", "no_such_group"),
    ];
    for major in [15, 18] {
        need_pg(major);
        for (line, said) in cases {
            let dir = files(&[("postgresql.conf", &format!("# a comment\n{line}\n"))]);
            let (code, v) = prove_json(
                dir.path(),
                &[
                    "--ram",
                    "4GiB",
                    "--pg-version",
                    &major.to_string(),
                    "postgresql.conf",
                ],
            );
            let label = format!("PostgreSQL {major}, {line}");
            assert_eq!(code, 1, "{label}: {v:#}");
            let p = proof(&v, "postgres");
            assert_eq!(p["outcome"], "refused", "{label}: {p:#}");
            assert!(
                p["server"]["release"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("PostgreSQL {major}.")),
                "{label}: {p:#}"
            );
            let f = refusal_at(&v, "postgresql.conf", 2, said);
            assert_eq!(f["severity"], "error", "{label}");
            assert_eq!(
                f["safety"], true,
                "{label}: a server that does not start is unsafe"
            );
            assert!(
                f["message"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("PostgreSQL {major}.")),
                "{label}: {f:#}"
            );
            assert_eq!(v["verdict"], "unsafe", "{label}");
        }
    }
}

#[test]
fn redis_refusals_are_the_servers_own_lines_at_the_directive() {
    for release in ["7.0", "8.0"] {
        need_redis(release);
        for (line, said) in [
            ("save \"900\"", "Invalid save parameters"),
            (
                "notify-keyspace-events \"Zq\"",
                "Invalid event class character",
            ),
        ] {
            let dir = files(&[("redis.conf", &format!("maxmemory 100mb\n{line}\n"))]);
            let (code, v) = prove_json(
                dir.path(),
                &["--ram", "4GiB", "--redis-version", release, "redis.conf"],
            );
            let label = format!("Redis {release}, {line}");
            assert_eq!(code, 1, "{label}: {v:#}");
            assert_eq!(proof(&v, "redis")["outcome"], "refused", "{label}");
            let f = refusal_at(&v, "redis.conf", 2, said);
            assert_eq!(f["safety"], true, "{label}");
        }
    }
}

/// The server gets the lines dbtune read, includes followed: a refusal
/// points into the included file, and Redis's quoting survives (a password
/// of two words would be two arguments, which Redis refuses, if the line
/// were rewritten from dbtune's parsed value).
#[test]
fn refusals_point_into_included_files_and_redis_quoting_survives() {
    need_pg(15);
    {
        let dir = files(&[
            (
                "postgresql.conf",
                "work_mem = '4MB'\ninclude 'tuning.conf'\n",
            ),
            ("tuning.conf", "# tuning\nmax_connections = 3\n"),
        ]);
        let (code, v) = prove_json(
            dir.path(),
            &["--ram", "4GiB", "--pg-version", "15", "postgresql.conf"],
        );
        assert_eq!(code, 1, "{v:#}");
        refusal_at(&v, "tuning.conf", 2, "superuser_reserved_connections");
    }
    need_redis("7.0");
    {
        let dir = files(&[
            ("redis.conf", "maxmemory 100mb\ninclude sub.conf\n"),
            (
                "sub.conf",
                "requirepass \"two words\"\nrename-command CONFIG \"\"\n",
            ),
        ]);
        let (code, v) = prove_json(
            dir.path(),
            &["--ram", "4GiB", "--redis-version", "7.0", "redis.conf"],
        );
        assert_eq!(proof(&v, "redis")["outcome"], "starts", "{v:#}");
        assert_ne!(code, 2);
        fs::write(dir.path().join("sub.conf"), "save \"900\"\n").unwrap();
        let (code, v) = prove_json(
            dir.path(),
            &["--ram", "4GiB", "--redis-version", "7.0", "redis.conf"],
        );
        assert_eq!(code, 1, "{v:#}");
        refusal_at(&v, "./sub.conf", 1, "Invalid save parameters");
    }
}

#[test]
fn pgbouncer_refuses_an_unknown_pgbouncer_key_at_its_line() {
    for release in ["1.18", "1.24"] {
        need_pgbouncer(release);
        let dir = files(&[(
            "pgbouncer.ini",
            "[databases]\napp = host=127.0.0.1 dbname=app\n[pgbouncer]\nauth_type = scram-sha-256\n\
             not_a_key = 1\n",
        )]);
        let (code, v) = prove_json(
            dir.path(),
            &[
                "--ram",
                "4GiB",
                "--pgbouncer-version",
                release,
                "pgbouncer.ini",
            ],
        );
        assert_eq!(code, 1, "PgBouncer {release}: {v:#}");
        let p = proof(&v, "pgbouncer");
        assert_eq!(p["outcome"], "refused", "PgBouncer {release}: {p:#}");
        refusal_at(&v, "pgbouncer.ini", 5, "not_a_key");
    }
}

#[test]
fn rendered_low_memory_sets_start_on_each_release() {
    for (major, redis, bouncer) in [(15, "7.0", "1.18"), (18, "8.0", "1.24")] {
        need_pg(major);
        need_redis(redis);
        need_pgbouncer(bouncer);
        let dir = tempfile::tempdir().unwrap();
        dbtune()
            .args(["render", "--profile", "low-memory", "--pg-version"])
            .arg(major.to_string())
            .arg("--out")
            .arg(dir.path())
            .assert()
            .success();
        let (code, v) = prove_json(
            dir.path(),
            &[
                ".",
                "--redis-version",
                redis,
                "--pgbouncer-version",
                bouncer,
            ],
        );
        let label = format!("PostgreSQL {major}, Redis {redis}, PgBouncer {bouncer}");
        assert_eq!(code, 0, "{label}: {v:#}");
        assert_eq!(v["verdict"], "fits", "{label}");
        for (service, release) in [
            ("postgres", format!("PostgreSQL {major}.")),
            ("redis", format!("Redis {redis}.")),
            ("pgbouncer", format!("PgBouncer {bouncer}.")),
        ] {
            let p = proof(&v, service);
            assert_eq!(p["outcome"], "starts", "{label}: {p:#}");
            assert!(
                p["server"]["release"]
                    .as_str()
                    .unwrap()
                    .starts_with(&release),
                "{label}: {p:#}"
            );
        }
        // The rendered auth_file is the host's: missing here, an empty one
        // in the scratch directory stood in for it, and the report says so.
        if !Path::new("/etc/pgbouncer/userlist.txt").exists() {
            let p = proof(&v, "pgbouncer");
            assert!(
                p["overrides"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|o| o["name"] == "auth_file" && o["why"] == "host"),
                "{p:#}"
            );
        }
        // shared_buffers of the rendering (335 MB) is capped for the proof.
        let pg = proof(&v, "postgres");
        let sb = pg["overrides"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "shared_buffers")
            .unwrap_or_else(|| panic!("{pg:#}"));
        assert_eq!(sb["to"], "128MB");
        assert_eq!(sb["why"], "memory");
    }
}

/// A shared library whose constructor creates `marker`: it runs the
/// moment any process loads it.
fn evil_library(dir: &Path, marker: &Path) -> PathBuf {
    let gcc = harness::need("gcc");
    let src = dir.join("evil.c");
    fs::write(
        &src,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void evil(void) \
             {{ FILE *f = fopen(\"{}\", \"w\"); if (f) fclose(f); }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let lib = dir.join("evil.so");
    let mut c = Command::new(gcc);
    c.args(["-shared", "-fPIC", "-o"]).arg(&lib).arg(&src);
    harness::run_ok(c);
    fs::set_permissions(&lib, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir.join("evil")
}

fn wait_for(path: &Path, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    path.exists()
}

#[test]
fn a_committed_config_runs_no_command_and_loads_no_library() {
    harness::need("psql");
    need_pg(15);
    let b = prove::postgres::find(15).unwrap();
    let dir = harness::server_dir();
    let marker = dir.path().join("MARKER");
    let evil = evil_library(dir.path(), &marker);
    let archive = format!(
        "archive_mode = on\narchive_command = 'touch {}'\n",
        marker.display()
    );

    // The controls: loaded as the files say, the library runs its code,
    // and the archiver runs the command.
    let loaded = dbtune::bench::cluster::Cluster::start_in(
        &b.bin,
        &format!("shared_preload_libraries = '{}'\n", evil.display()),
        &[],
        "trust",
    );
    assert!(loaded.is_err(), "the library has no magic block");
    assert!(
        marker.exists(),
        "control: loading the library creates the marker"
    );
    fs::remove_file(&marker).unwrap();
    let pg = harness::Postgres::start_major(15, &archive, &[]);
    pg.psql(
        "postgres",
        "postgres",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g",
    );
    pg.psql("postgres", "postgres", "SELECT pg_switch_wal()");
    assert!(
        wait_for(&marker, Duration::from_secs(30)),
        "control: the archiver runs archive_command"
    );
    drop(pg);
    fs::remove_file(&marker).unwrap();

    // check-budget --prove-start with both: nothing runs, nothing loads.
    let conf = dir.path().join("postgresql.conf");
    fs::write(
        &conf,
        format!("{archive}shared_preload_libraries = '{}'\n", evil.display()),
    )
    .unwrap();
    let (code, v) = prove_json(
        dir.path(),
        &["--ram", "4GiB", "--pg-version", "15", "postgresql.conf"],
    );
    assert_ne!(code, 2, "{v:#}");
    let p = proof(&v, "postgres");
    assert_eq!(p["outcome"], "not-proven", "{p:#}");
    assert!(
        p["reason"]
            .as_str()
            .unwrap()
            .contains("loads a library from outside the server's directory"),
        "{p:#}"
    );
    assert_eq!(p["at"]["line"], 3, "{p:#}");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["severity"] == "warning"
            && f["message"].as_str().unwrap().starts_with("not proven: ")));
    assert!(!marker.exists(), "the proof loaded the library");

    // The archive command alone: the server starts, and even with a WAL
    // segment to archive it never runs the command.
    let settings = grammar::postgresql_conf(&archive, "postgresql.conf").unwrap();
    let (attempt, overrides) =
        prove::postgres::start(&b, &settings, PgVersion::nearest(15)).unwrap();
    let prove::Attempt::Running(r) = attempt else {
        panic!("PostgreSQL 15 did not start with archive_mode = on");
    };
    let cmd = overrides
        .iter()
        .find(|o| o.name == "archive_command")
        .unwrap();
    assert_eq!(cmd.to, "");
    let psql = |sql: &str| {
        let mut c = Command::new(harness::need("psql"));
        c.arg("-h")
            .arg(r.scratch.path())
            .args([
                "-p",
                &r.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        harness::run_ok(c)
    };
    assert_eq!(psql("SHOW archive_command").trim(), "");
    assert_eq!(psql("SHOW archive_mode").trim(), "on");
    psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g");
    psql("SELECT pg_switch_wal()");
    assert!(
        !wait_for(&marker, Duration::from_secs(5)),
        "the proof's server ran archive_command"
    );
    let pid = r.process.pid().unwrap();
    drop(r);
    assert!(
        !alive(pid),
        "the proof's server still runs after its guard dropped"
    );
    assert!(!marker.exists());
}

/// Whether a process runs (a zombie waiting to be reaped does not).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn a_proof_server_stops_when_the_thread_that_started_it_dies() {
    need_redis("7.0");
    let b = prove::redis::find("7.0").unwrap();
    let files = files(&[("redis.conf", "maxmemory 10mb\n")]);
    let settings = dbtune::read::include::redis(&files.path().join("redis.conf"), None).unwrap();
    // The guard is forgotten, as when dbtune is killed: only the
    // parent-death signal is left to stop the server.
    let (pid, dir) = std::thread::spawn(move || {
        let (attempt, _) = prove::redis::start(&b, &settings).unwrap();
        let prove::Attempt::Running(r) = attempt else {
            panic!("Redis did not start");
        };
        let out = (r.process.pid().unwrap(), r.scratch.path().to_path_buf());
        std::mem::forget(r);
        out
    })
    .join()
    .unwrap();
    let start = Instant::now();
    while alive(pid) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = !alive(pid);
    // Reap it and remove what the forgotten guard would have.
    // SAFETY: waiting for our own child.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
        libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
    }
    let _ = fs::remove_dir_all(dir);
    assert!(stopped, "the server outlived the thread that started it");
}

#[test]
fn not_proven_when_the_release_is_not_here() {
    // A PostgreSQL major with no server on this machine outside the cache,
    // and an empty cache.
    let installed = |m: u32| {
        Path::new(&format!("/usr/lib/postgresql/{m}/bin/initdb")).exists()
            || Path::new(&format!("/usr/pgsql-{m}/bin/initdb")).exists()
            || dbtune::facts::detect::postgres_bin_dir()
                .is_some_and(|d| prove::postgres::find(m).is_some_and(|b| b.bin == d))
    };
    let major = PgVersion::all()
        .map(|v| v.major())
        .find(|m| !installed(*m))
        .expect("a PostgreSQL major not installed here");
    let empty = tempfile::tempdir().unwrap();
    let dir = files(&[("postgresql.conf", "max_connections = 20\n")]);
    let out = dbtune()
        .current_dir(dir.path())
        .env("DBTUNE_CACHE", empty.path())
        .args([
            "check-budget",
            "--prove-start",
            "--ram",
            "4GiB",
            "--pg-version",
        ])
        .arg(major.to_string())
        .args(["postgresql.conf", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning, not a failure: {v:#}"
    );
    let p = proof(&v, "postgres");
    assert_eq!(p["outcome"], "not-proven");
    assert_eq!(p["reason"], format!("no PostgreSQL {major} here"));
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["severity"] == "warning"
            && f["message"] == format!("not proven: no PostgreSQL {major} here")));
}

fn pg_url(pg: &harness::Postgres) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    )
}

#[test]
fn apply_prove_start_refuses_a_change_that_would_stop_postgres() {
    let pg = harness::Postgres::start("", &[]);
    need_pg(harness::pg_major());
    let dir = files(&[("postgresql.conf", "max_connections = 3\n")]);
    let snaps = tempfile::tempdir().unwrap();
    // dbtune's own start-up rules refuse it already, and the proof does
    // not let it through either.
    for extra in [&[][..], &["--prove-start"][..]] {
        dbtune()
            .arg("apply")
            .arg(dir.path())
            .arg(pg_url(&pg))
            .args(extra)
            .args(["--yes", "--snapshot-dir"])
            .arg(snaps.path())
            .assert()
            .code(1)
            .stderr(
                contains("superuser_reserved_connections")
                    .and(contains("postgresql.conf:1"))
                    .and(contains("nothing was changed")),
            );
    }
    assert_eq!(
        fs::read_dir(snaps.path()).unwrap().count(),
        0,
        "no snapshot"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "postgres",
            "SELECT count(*) FROM pg_file_settings WHERE name = 'max_connections'"
        )
        .trim(),
        "0",
        "nothing was written to postgresql.auto.conf"
    );
    // A change that leaves the server able to start goes through.
    fs::write(dir.path().join("postgresql.conf"), "max_connections = 20\n").unwrap();
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .arg("--prove-start")
        .assert()
        .success()
        .stderr(contains("starts with the settings after the change"));
}

/// check-budget's whole text report with the proof: a PostgreSQL that
/// refuses, a Redis that refuses, a PgBouncer that starts, and what each
/// overrode (server paths and minor releases masked).
#[test]
fn check_budget_prove_start_text() {
    need_pg(15);
    need_redis("7.0");
    need_pgbouncer("1.18");
    let dir = files(&[
        (
            "postgresql.conf",
            "shared_buffers = '8GB'\nhuge_pages = try\narchive_mode = on\n\
             archive_command = 'cp %p /archive/%f'\nport = 5433\ntimezone = 'Mars/Olympus'\n",
        ),
        (
            "redis.conf",
            "maxmemory 100mb\nrequirepass \"s3cret pw\"\nloadmodule /opt/redis/x.so\nsave \"900\"\n",
        ),
        (
            "pgbouncer.ini",
            "[databases]\napp = host=127.0.0.1 dbname=app\n[pgbouncer]\nauth_type = scram-sha-256\n\
             auth_file = /nonexistent/userlist.txt\nlisten_port = 6432\n",
        ),
    ]);
    let out = dbtune()
        .current_dir(dir.path())
        .args([
            "check-budget",
            "--prove-start",
            "--ram",
            "32GiB",
            "--pg-version",
            "15",
            "--redis-version",
            "7.0",
            "--pgbouncer-version",
            "1.18",
            "postgresql.conf",
            "redis.conf",
            "pgbouncer.ini",
        ])
        .output()
        .unwrap();
    let mut text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("s3cret"), "the password shows:\n{text}");
    for (b, name) in [
        (prove::postgres::find(15).unwrap().bin, "<postgres 15 bin>"),
        (
            prove::redis::find("7.0")
                .unwrap()
                .program
                .parent()
                .unwrap()
                .to_path_buf(),
            "<redis 7.0 bin>",
        ),
        (
            prove::pgbouncer::find("1.18")
                .unwrap()
                .program
                .parent()
                .unwrap()
                .to_path_buf(),
            "<pgbouncer 1.18 bin>",
        ),
    ] {
        text = text.replace(&b.display().to_string(), name);
    }
    for prefix in ["PostgreSQL 15.", "Redis 7.0.", "PgBouncer 1.18."] {
        text = mask_minor(&text, prefix);
    }
    insta::assert_snapshot!(text);
}

/// `PREFIX123` as `PREFIXx`: the patch release of the server here.
fn mask_minor(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i + prefix.len()]);
        rest = &rest[i + prefix.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push('x');
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}
