//! inspect, diff and apply against real PostgreSQL and Redis servers started
//! by the harness.

use crate::harness;
use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{dbtune, Postgres, Redis};
use predicates::prelude::*;
use predicates::str::contains;

fn pg_url(pg: &Postgres, user: &str) -> String {
    format!(
        "postgres://{user}@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    )
}

fn redis_url(r: &Redis) -> String {
    format!("redis://127.0.0.1:{}", r.port)
}

/// A low-memory rendering in a temp dir.
fn rendered(dir: &Path) {
    dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--pg-version",
            &harness::pg_major().to_string(),
            "--out",
        ])
        .arg(dir)
        .assert()
        .success();
}

/// A PostgreSQL and a Redis at their defaults (Redis without RDB saves).
fn fresh_servers() -> (Postgres, Redis) {
    let pg = Postgres::start("", &[]);
    let r = Redis::start("save \"\"\n", &[]);
    (pg, r)
}

fn pg_settings(pg: &Postgres) -> BTreeMap<String, String> {
    pg.psql(
        "postgres",
        "postgres",
        "SELECT name, setting FROM pg_settings",
    )
    .lines()
    .filter_map(|l| l.split_once('|'))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn redis_config(r: &Redis) -> BTreeMap<String, String> {
    let out = r.cmd(&["CONFIG", "GET", "*"]);
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect()
}

#[test]
fn inspect_a_fresh_postgres_and_redis() {
    let (pg, r) = fresh_servers();
    let out = dbtune()
        .args([
            "inspect",
            "--json",
            &pg_url(&pg, "postgres"),
            &redis_url(&r),
        ])
        .assert()
        .code(1) // a fresh Redis has no maxmemory: unbounded
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(v["postgres"]["version"]
        .as_str()
        .unwrap()
        .starts_with(&harness::pg_major().to_string()));
    assert_eq!(v["postgres"]["max_connections"], 100);
    assert!(v["postgres"]["connections"]["active"].as_i64().unwrap() >= 1);
    assert!(v["redis"]["version"].as_str().unwrap().starts_with('7'));
    let findings = v["findings"].to_string();
    assert!(findings.contains("its memory is unbounded"), "{findings}");
    assert_eq!(v["verdict"], "invalid");
    let terms = v["terms"].to_string();
    assert!(terms.contains("shared memory"), "{terms}");

    // The text form, with the budget and where each setting came from.
    dbtune()
        .args(["inspect", &pg_url(&pg, "postgres")])
        .assert()
        .success()
        .stdout(
            contains("settings not at their default:")
                .and(contains("port = "))
                .and(contains("fits: busy")),
        );
}

#[test]
fn diff_is_clean_then_shows_a_change_made_behind_its_back() {
    let dir = tempfile::tempdir().unwrap();
    rendered(dir.path());
    let conf = fs::read_to_string(dir.path().join("postgresql.conf")).unwrap();
    let pg = Postgres::start(&conf, &[]);
    let redis_conf = fs::read_to_string(dir.path().join("redis.conf")).unwrap();
    let r = Redis::start(&redis_conf, &[]);
    // Compare against the files as the servers run them: the test's ports,
    // address and data directory written in.
    let cmp = tempfile::tempdir().unwrap();
    fs::copy(pg.conf_path(), cmp.path().join("postgresql.conf")).unwrap();
    let redis_conf: String = redis_conf
        .lines()
        .map(|l| {
            if l.starts_with("port ") {
                format!("port {}\n", r.port)
            } else if l.starts_with("bind ") {
                "bind 127.0.0.1\n".to_string()
            } else if l.starts_with("dir ") {
                format!("dir {}\n", r.dir.path().canonicalize().unwrap().display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(cmp.path().join("redis.conf"), redis_conf).unwrap();
    dbtune()
        .arg("diff")
        .arg(cmp.path())
        .args([&pg_url(&pg, "postgres"), &redis_url(&r)])
        .assert()
        .success()
        .stdout(contains("0 setting(s) differ"));

    pg.psql("postgres", "postgres", "ALTER SYSTEM SET work_mem = '8MB'");
    pg.psql("postgres", "postgres", "SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));
    r.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    let out = dbtune()
        .arg("diff")
        .arg(cmp.path())
        .args([&pg_url(&pg, "postgres"), &redis_url(&r)])
        .output()
        .unwrap();
    // The whole report: each drifted setting, the file's value and line
    // against the live value and where it came from.
    insta::with_settings!({ filters => live_filters() }, {
        insta::assert_snapshot!(harness::whole_output(&out));
    });
}

#[test]
fn apply_then_rollback_restores_the_exact_previous_values() {
    let dir = tempfile::tempdir().unwrap();
    rendered(dir.path());
    let (pg, r) = fresh_servers();
    let (pg_before, redis_before) = (pg_settings(&pg), redis_config(&r));
    let urls = [pg_url(&pg, "postgres"), redis_url(&r)];

    // Dry run: says what would change, changes nothing.
    dbtune()
        .arg("apply")
        .arg(dir.path().join("."))
        .args(&urls)
        .assert()
        .success()
        .stdout(contains("dry run:").and(contains("shared_buffers: 128MB -> ")))
        .stdout(contains("port").and(contains("not applied")));
    assert_eq!(pg_settings(&pg), pg_before);
    assert_eq!(redis_config(&r), redis_before);

    let snaps = tempfile::tempdir().unwrap();
    let out = dbtune()
        .arg("apply")
        .arg(dir.path())
        .args(&urls)
        .args(["--yes", "--snapshot-dir"])
        .arg(snaps.path())
        .assert()
        .success()
        .stdout(contains("shared_buffers = ").and(contains("takes effect after a restart")))
        .stdout(contains("effective_cache_size = ").and(contains(": in effect")))
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let after = pg_settings(&pg);
    assert_eq!(after["jit"], "off", "{out}");
    assert_ne!(
        after["effective_cache_size"],
        pg_before["effective_cache_size"]
    );
    assert_eq!(redis_config(&r)["maxmemory-policy"], "noeviction");
    let pending = pg.psql(
        "postgres",
        "postgres",
        "SELECT name FROM pg_settings WHERE pending_restart ORDER BY 1",
    );
    assert!(pending.lines().any(|l| l == "shared_buffers"), "{pending}");

    let snap = fs::read_dir(snaps.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .arg("--yes")
        .args(&urls)
        .assert()
        .success()
        .stdout(contains("restored"));
    assert_eq!(
        pg_settings(&pg),
        pg_before,
        "PostgreSQL settings after rollback"
    );
    assert_eq!(
        redis_config(&r),
        redis_before,
        "Redis settings after rollback"
    );
    let auto = fs::read_to_string(pg.data_dir().join("postgresql.auto.conf")).unwrap_or_default();
    assert!(
        !auto
            .lines()
            .any(|l| !l.starts_with('#') && !l.trim().is_empty()),
        "{auto}"
    );
}

#[test]
fn apply_refuses_a_set_that_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    rendered(dir.path());
    let pg = Postgres::start("", &[]);
    let before = pg_settings(&pg);
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg, "postgres"))
        .args(["--yes", "--ram", "1GiB"])
        .assert()
        .code(1)
        .stderr(contains("would not fit").and(contains("nothing was changed")));
    assert_eq!(pg_settings(&pg), before);
}

#[test]
fn apply_as_a_non_superuser_is_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    rendered(dir.path());
    let pg = Postgres::start("", &[]);
    pg.psql("postgres", "postgres", "CREATE ROLE app LOGIN");
    let snaps = tempfile::tempdir().unwrap();
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg, "app"))
        .args(["--yes", "--snapshot-dir"])
        .arg(snaps.path())
        .assert()
        .code(2)
        .stderr(contains("`app` is not a superuser").and(contains("nothing was changed")));
    assert_eq!(
        fs::read_dir(snaps.path()).unwrap().count(),
        0,
        "no snapshot for a refused apply"
    );
}

#[test]
fn a_wrong_password_is_a_clear_error_that_never_shows_the_password() {
    let pg = Postgres::start_auth("", &[], "scram-sha-256");
    pg.psql(
        "postgres",
        "postgres",
        "ALTER ROLE postgres PASSWORD 'right-one'",
    );
    let url = format!(
        "postgres://postgres:WrongPassw0rd@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    );
    let out = dbtune()
        .args(["inspect", &url])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(stderr.contains("postgres:***@"), "{stderr}");
    assert!(
        !stderr.contains("WrongPassw0rd")
            && !String::from_utf8_lossy(&out.stdout).contains("WrongPassw0rd")
    );
    // The right password, from PGPASSWORD with the PG* variables.
    dbtune()
        .arg("inspect")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres")
        .env("PGPASSWORD", "right-one")
        .env("PGSSLMODE", "disable")
        .assert()
        .success()
        .stdout(contains("PostgreSQL"));
}

#[test]
fn a_server_that_is_not_there_fails_fast_with_exit_2() {
    let port = harness::free_port();
    let start = Instant::now();
    dbtune()
        .args([
            "inspect",
            &format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
        ])
        .assert()
        .code(2)
        .stderr(contains("cannot connect to postgres://postgres@127.0.0.1"));
    dbtune()
        .args(["inspect", &format!("redis://127.0.0.1:{port}")])
        .assert()
        .code(2)
        .stderr(contains("cannot connect to redis://127.0.0.1"));
    // A port that accepts but never answers: the timeout ends it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    dbtune()
        .args([
            "inspect",
            "--timeout",
            "2",
            &format!("postgres://postgres@127.0.0.1:{silent_port}/postgres?sslmode=disable"),
        ])
        .assert()
        .code(2)
        .stderr(contains("within 2 s").or(contains("timed out")));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    drop(silent);
}

#[test]
fn no_target_is_a_usage_error() {
    dbtune()
        .arg("inspect")
        .assert()
        .code(2)
        .stderr(contains("no server to talk to").and(contains("hint:")));
}

/// A self-signed certificate with common name `cn` and these
/// subjectAltNames in `dir`, owned by the postgres user as PostgreSQL
/// requires.
fn self_signed_for(dir: &Path, cn: &str, san: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
        ])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [&crt, &key] {
        harness::write(f, &fs::read_to_string(f).unwrap());
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    (crt, key)
}

/// A PostgreSQL serving TLS with a self-signed certificate for `cn` and
/// `san`: the server, the certificate (to trust) and the dir holding it.
fn tls_postgres(cn: &str, san: &str) -> (Postgres, std::path::PathBuf, tempfile::TempDir) {
    harness::need("openssl");
    let certs = harness::server_dir();
    let (crt, key) = self_signed_for(certs.path(), cn, san);
    let (crt_s, key_s) = (crt.display().to_string(), key.display().to_string());
    let pg = Postgres::start(
        "",
        &[
            ("ssl", "on"),
            ("ssl_cert_file", &crt_s),
            ("ssl_key_file", &key_s),
        ],
    );
    (pg, crt, certs)
}

#[test]
fn tls_follows_sslmode() {
    let (pg, crt, _certs) = tls_postgres("localhost", "DNS:localhost,IP:127.0.0.1");
    let url = |host: &str, mode: &str| {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={mode}",
            pg.port
        )
    };
    // Encrypted, certificate unchecked; and disable means plain text.
    dbtune()
        .args(["inspect", &url("127.0.0.1", "require")])
        .assert()
        .success()
        .stdout(contains("over TLS"));
    dbtune()
        .args(["inspect", &url("127.0.0.1", "disable")])
        .assert()
        .success()
        .stdout(contains("not encrypted"));
    // Checked against the public roots: this certificate is nobody's.
    dbtune()
        .args(["inspect", &url("localhost", "verify-full")])
        .assert()
        .code(2)
        .stderr(contains("cannot connect").and(contains("certificate")));
    // Trusted through PGSSLROOTCERT, and the name matches.
    dbtune()
        .env("PGSSLROOTCERT", &crt)
        .args(["inspect", &url("localhost", "verify-full")])
        .assert()
        .success()
        .stdout(contains("over TLS"));
}

/// libpq's verify-ca checks that a trusted CA signed the certificate, not
/// the host name in it; verify-full checks both.
#[test]
fn verify_ca_checks_the_chain_not_the_host_name() {
    let (pg, crt, _certs) = tls_postgres("db.example", "DNS:db.example");
    let url = |mode: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={mode}",
            pg.port
        )
    };
    dbtune()
        .env("PGSSLROOTCERT", &crt)
        .args(["inspect", &url("verify-ca")])
        .assert()
        .success()
        .stdout(contains("over TLS"));
    dbtune()
        .env("PGSSLROOTCERT", &crt)
        .args(["inspect", &url("verify-full")])
        .assert()
        .code(2)
        .stderr(contains("cannot connect").and(contains("certificate")));
    // Without the CA, verify-ca refuses: the chain is what it checks.
    dbtune()
        .args(["inspect", &url("verify-ca")])
        .assert()
        .code(2)
        .stderr(contains("cannot connect"));
}

/// apply's dry run, whole: what it would change on a fresh PostgreSQL and
/// Redis, what it leaves alone and why (ports and the temp dir masked).
#[test]
fn apply_dry_run_output() {
    let dir = tempfile::tempdir().unwrap();
    rendered(dir.path());
    let (pg, r) = fresh_servers();
    let out = dbtune()
        .arg("apply")
        .arg(dir.path())
        .args([pg_url(&pg, "postgres"), redis_url(&r)])
        .output()
        .unwrap();
    let text = harness::whole_output(&out)
        .replace(&dir.path().display().to_string(), "DIR")
        .replace(&r.dir.path().display().to_string(), "REDIS_DIR")
        .replace(&format!("port: {} ->", pg.port), "port: PG_PORT ->")
        .replace(&format!("port: {} ->", r.port), "port: REDIS_PORT ->");
    insta::assert_snapshot!(text);
}

/// What changes from run to run in a live report: ports, temp dirs, the
/// servers' patch releases and their counters. Everything else is the
/// report as people read it.
fn live_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"port = \d+", "port = [PORT]"),
        (r"port: \d+ ->", "port: [PORT] ->"),
        (
            r"[^\s(]*/dbtune-(bench|redis|pgbouncer|server)-(?:[0-9]+-)?[A-Za-z0-9]+",
            "[TMP]",
        ),
        (r"[^\s(]*/\.tmp[A-Za-z0-9]+", "[TMP]"),
        (r"PostgreSQL \d+\.\d+ \([^)]*\)", "PostgreSQL [RELEASE]"),
        (r"Redis \d+\.\d+\.\d+ at", "Redis [RELEASE] at"),
        (r"active \d+", "active [N]"),
        (r"cache hit ratio: [\d.]+%", "cache hit ratio: [N]%"),
        (
            r"used [\d.]+[KMG]?, peak [\d.]+[KMG]?, fragmentation [\d.]+",
            "used [N], peak [N], fragmentation [N]",
        ),
        (
            r"hits \d+, misses \d+, evicted keys \d+, clients \d+",
            "hits [N], misses [N], evicted keys [N], clients [N]",
        ),
        (r"\(\d+ changes since\)", "([N] changes since)"),
        // A server that just started may or may not have read its catalog
        // into shared_buffers yet: the warning comes and goes.
        (
            r"warning: cache hit ratio is [\d.]+%, under 99%\n  hint: [^\n]*\n",
            "",
        ),
    ]
}

/// inspect's text report, whole: each server's state, the findings, the
/// budget of what runs on a host of a stated size.
#[test]
fn inspect_text_output() {
    let (pg, r) = fresh_servers();
    let out = dbtune()
        .args([
            "inspect",
            "--ram",
            "4GiB",
            &pg_url(&pg, "postgres"),
            &redis_url(&r),
        ])
        .output()
        .unwrap();
    insta::with_settings!({ filters => live_filters() }, {
        insta::assert_snapshot!(harness::whole_output(&out));
    });
}

/// A list parameter goes to ALTER SYSTEM element by element: given as
/// one string, `'pg_stat_statements, auto_explain'` became the one
/// library `"pg_stat_statements, auto_explain"` in postgresql.auto.conf
/// and the server did not start again; search_path became one schema.
/// With --prove-start, the proof reads what ALTER SYSTEM writes. The
/// rollback restores the same way.
#[test]
fn apply_sets_a_list_parameter_the_server_reads_back_as_a_list() {
    let mut pg = Postgres::start("", &[]);
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("postgresql.conf"),
        "search_path = '\"$user\", public, App'\n\
         shared_preload_libraries = 'pg_stat_statements, auto_explain'\n",
    )
    .unwrap();
    let snaps = tempfile::tempdir().unwrap();
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg, "postgres"))
        .args(["--yes", "--prove-start", "--ram", "8GiB", "--snapshot-dir"])
        .arg(snaps.path())
        .assert()
        .success()
        .stderr(contains("starts with the settings after the change"));
    let auto = fs::read_to_string(pg.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("shared_preload_libraries = 'pg_stat_statements, auto_explain'\n")
            && auto.contains("search_path = '\"$user\", public, app'\n"),
        "{auto}"
    );
    assert_eq!(
        pg.psql("postgres", "postgres", "SHOW search_path").trim(),
        "\"$user\", public, app"
    );
    pg.stop();
    pg.start_again()
        .unwrap_or_else(|e| panic!("the server does not start after apply: {e:#}\n{auto}"));
    assert_eq!(
        pg.psql("postgres", "postgres", "SHOW shared_preload_libraries")
            .trim(),
        "pg_stat_statements, auto_explain"
    );
    let snap = fs::read_dir(snaps.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .args(["--yes", &pg_url(&pg, "postgres")])
        .assert()
        .success();
    pg.stop();
    pg.start_again()
        .expect("the server starts after the rollback");
    assert_eq!(
        pg.psql("postgres", "postgres", "SHOW search_path").trim(),
        "\"$user\", public"
    );
}
