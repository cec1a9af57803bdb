//! A missing include, in each format: the server refuses to start, and
//! check-budget reports it at the including line together with every other
//! finding of the same pass (PostgreSQL 18 reports its syntax errors in
//! that pass too), exiting 2 as before (a file it names was not read).

use std::path::Path;

use crate::harness;

/// check-budget's exit code and the `file:line` of each error finding.
fn errors_at(cwd: &Path, args: &[&str]) -> (i32, Vec<String>) {
    let (code, v) = harness::check_budget_json(Some(cwd.to_str().unwrap()), args);
    let at = v["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings: {v}"))
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            format!(
                "{}:{}",
                f["at"]["file"].as_str().unwrap_or(""),
                f["at"]["line"]
            )
        })
        .collect();
    (code, at)
}

#[test]
fn postgres_18_and_dbtune_report_every_error_past_a_missing_include_dir() {
    let dir = harness::server_dir();
    let conf = dir.path().join("postgresql.conf");
    harness::write(
        &conf,
        "shared_buffers = 1.5GB\n\
         include_dir = 'conf.d'\n\
         work_mem = 2MB;\n\
         max_connections = 100\n\
         checkpoint_timeout = 15min,\n",
    );
    // The server, in one pass over the file.
    let bin = harness::pg_server(18);
    let data = dir.path().join("data");
    let mut c = harness::as_postgres(&bin.join("initdb"));
    c.arg("-D").arg(&data).args(["--no-sync", "-U", "postgres"]);
    harness::run_ok(c);
    let mut c = harness::as_postgres(&bin.join("postgres"));
    c.arg("-D")
        .arg(&data)
        .arg("-c")
        .arg(format!("config_file={}", conf.display()))
        .args(["-C", "shared_buffers"]);
    let out = harness::run(c);
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("could not open configuration directory"),
        "{log}"
    );
    let server_lines: Vec<usize> = log
        .lines()
        .filter_map(|l| l.split(" line ").nth(1))
        .filter_map(|l| l.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    assert_eq!(server_lines, vec![1, 3, 5], "{log}");
    // dbtune: the include at its line, and every line the server names.
    let (code, at) = errors_at(
        dir.path(),
        &["postgresql.conf", "--pg-version", "18", "--ram", "8GiB"],
    );
    assert_eq!(code, 2, "{at:?}");
    for line in [1, 2, 3, 5] {
        assert!(
            at.contains(&format!("postgresql.conf:{line}")),
            "line {line} not reported: {at:?}"
        );
    }
}

#[test]
fn redis_and_dbtune_on_a_missing_include() {
    let dir = harness::server_dir();
    let text = "include missing.conf\nmaxmemory 100mb\nmaxmemory-policy sometimes\n";
    harness::write(&dir.path().join("redis.conf"), text);
    // `timeout`: a server that did start would run in the foreground.
    let out = std::process::Command::new(harness::need("timeout"))
        .current_dir(dir.path())
        .arg("10")
        .arg(harness::need("redis-server"))
        .arg("redis.conf")
        .output()
        .unwrap();
    assert!(
        !out.status.success() && out.status.code() != Some(124),
        "Redis started without its include"
    );
    let (code, at) = errors_at(
        dir.path(),
        &["redis.conf", "--redis-version", "7.0", "--ram", "8GiB"],
    );
    assert_eq!(code, 2, "{at:?}");
    assert!(at.contains(&"redis.conf:1".to_string()), "{at:?}");
    assert!(at.contains(&"redis.conf:3".to_string()), "{at:?}");
}

#[test]
fn pgbouncer_and_dbtune_on_a_missing_include() {
    let dir = harness::server_dir();
    let port = harness::free_port();
    harness::write(&dir.path().join("users.txt"), "\"app\" \"x\"\n");
    let text = format!(
        "[databases]\napp = host=127.0.0.1 port=1\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
         unix_socket_dir = {d}\nauth_type = scram-sha-256\nauth_file = {d}/users.txt\nlogfile = {d}/log\n\
         %include missing.ini\npool_mode = sessions\n",
        d = dir.path().display()
    );
    let ini = dir.path().join("pgbouncer.ini");
    harness::write(&ini, &text);
    for bin in [
        harness::need("pgbouncer"),
        harness::built("pgbouncer", "1.24").join("pgbouncer"),
    ] {
        let mut c = harness::as_postgres(&harness::need("timeout"));
        c.current_dir(dir.path()).arg("10").arg(&bin).arg(&ini);
        let out = c.output().unwrap();
        assert!(
            !out.status.success() && out.status.code() != Some(124),
            "PgBouncer started without its include"
        );
    }
    let (code, at) = errors_at(
        dir.path(),
        &[
            "pgbouncer.ini",
            "--pgbouncer-version",
            "1.24",
            "--ram",
            "8GiB",
        ],
    );
    assert_eq!(code, 2, "{at:?}");
    assert!(at.contains(&"pgbouncer.ini:10".to_string()), "{at:?}");
    assert!(at.contains(&"pgbouncer.ini:11".to_string()), "{at:?}");
}

/// Redis opens a relative include from its working directory as it reads,
/// and a `dir` line before it has already moved there (Redis 7.0 and 8.0
/// load the file only when the include is in `dir`); dbtune looks in the
/// same place.
#[test]
fn redis_reads_a_relative_include_from_dir_once_dir_is_read() {
    let dir = harness::server_dir();
    let (data, cwd) = (dir.path().join("data"), dir.path().join("cwd"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let conf = format!("port 0\ndir {}\ninclude rel.conf\n", data.display());
    harness::write(&cwd.join("redis.conf"), &conf);
    harness::write(&data.join("rel.conf"), "maxmemory 7mb\n");
    let bin = harness::built("redis", "8.0").join("redis-server");
    for server in [harness::need("redis-server"), bin] {
        let out = std::process::Command::new(harness::need("timeout"))
            .current_dir(&cwd)
            .arg("2")
            .arg(&server)
            .arg("redis.conf")
            .output()
            .unwrap();
        // It read the whole file (then exits: port 0 listens nowhere).
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            log.contains("Configuration loaded") && !log.contains("Fatal"),
            "{log}"
        );
    }
    let (code, v) = harness::check_budget_json(
        Some(cwd.to_str().unwrap()),
        &["redis.conf", "--redis-version", "7.0", "--ram", "8GiB"],
    );
    assert_ne!(code, 2, "{v}");
    assert!(v["files"].to_string().contains("rel.conf"), "{v}");
}
