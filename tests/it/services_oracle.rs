//! Redis and PgBouncer as the oracle: the key lists dbtune keeps per release
//! are the servers' own, and what dbtune's validation refuses is what the
//! servers refuse. Redis 7.0 and PgBouncer 1.18 come from Debian 12; Redis
//! 8.0 and PgBouncer 1.24 are built from Debian 13's sources by
//! scripts/fetch-redis-pgbouncer.sh.

use crate::harness;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::Redis;
use dbtune::read::catalog::{BouncerCatalog, RedisCatalog, RedisType};
use dbtune::read::{findings, grammar};

/// (release, redis-server, redis-cli) of every Redis the tests run:
/// Debian's 7.0 and the 8.0 built from Debian 13's sources.
fn redises() -> Vec<(&'static str, PathBuf, PathBuf)> {
    let bin = harness::built("redis", "8.0");
    vec![
        (
            "7.0",
            harness::need("redis-server"),
            harness::need("redis-cli"),
        ),
        ("8.0", bin.join("redis-server"), bin.join("redis-cli")),
    ]
}

/// (release, pgbouncer) of every PgBouncer the tests run: Debian's 1.18
/// and the 1.24 built from Debian 13's sources.
fn bouncers() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("1.18", harness::need("pgbouncer")),
        (
            "1.24",
            harness::built("pgbouncer", "1.24").join("pgbouncer"),
        ),
    ]
}

#[test]
fn redis_key_lists_are_the_servers_own() {
    for (version, server, cli) in redises() {
        let r = Redis::start_with(&server, &cli, "save \"\"\n", &[]);
        let answer = r.cmd(&["CONFIG", "GET", "*"]);
        let theirs: BTreeSet<String> = answer.lines().step_by(2).map(str::to_string).collect();
        // CONFIG GET * lists old names too, and not hidden configs.
        let ours: BTreeSet<String> = RedisCatalog::get(version)
            .keys()
            .filter(|k| !matches!(k.typ, RedisType::Directive | RedisType::Deprecated))
            .filter(|k| !k.hidden)
            .flat_map(|k| std::iter::once(k.name.clone()).chain(k.alias.clone()))
            .collect();
        let missing: Vec<_> = theirs.difference(&ours).collect();
        let extra: Vec<_> = ours.difference(&theirs).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "Redis {version}: the server has {missing:?} that dbtune lacks, dbtune has {extra:?} the server lacks"
        );
    }
}

/// Values for the configs CONFIG SET can change safely here, by type.
const REDIS_CASES: &[(&str, &[&str])] = &[
    (
        "activerehashing",
        &["yes", "no", "YES", "No", "true", "1", "", "y"],
    ),
    (
        "maxmemory-policy",
        &[
            "allkeys-lru",
            "ALLKEYS-LRU",
            "lru",
            "noeviction",
            "volatile-ttl",
            "",
        ],
    ),
    (
        "maxmemory",
        &[
            "0", "100mb", "100MB", "1gb", "1g", "1G", "100k", "100kb", "100b", "100", "1.5gb",
            "-1", "1tb", "10 mb", "abc", "100mbb", "+5mb", "0x10", "", "mb", "007",
        ],
    ),
    (
        "maxmemory-clients",
        &[
            "0", "10%", "50%", "100%", "101%", "10mb", "-5", "10.5%", "x%", "%",
        ],
    ),
    (
        "hz",
        &[
            "10", "1", "500", "0", "-1", "+10", "010", "1e2", "10.0", "ten", "", " 10",
        ],
    ),
    ("active-defrag-cycle-min", &["1", "99", "100", "0", "50"]),
    ("repl-backlog-size", &["1mb", "16384", "0", "1gb", "1zb"]),
];

#[test]
fn redis_refuses_what_dbtune_refuses() {
    for (version, server, cli) in redises() {
        let r = Redis::start_with(&server, &cli, "save \"\"\n", &[]);
        let mut disagreements = Vec::new();
        for (name, values) in REDIS_CASES {
            for v in *values {
                let theirs = r.cmd(&["CONFIG", "SET", name, v]).trim() == "OK";
                let line = format!("{name} \"{v}\"\n");
                let s = grammar::redis_conf(&line, "redis.conf").unwrap();
                let ours = findings::redis(&s, version)
                    .iter()
                    .all(|f| f.severity != findings::Severity::Error);
                if theirs != ours {
                    disagreements.push(format!(
                        "{name} {v:?}: Redis {}, dbtune {}",
                        if theirs { "accepts" } else { "refuses" },
                        if ours { "accepts" } else { "refuses" }
                    ));
                }
            }
        }
        assert!(
            disagreements.is_empty(),
            "Redis {version}:\n{}",
            disagreements.join("\n")
        );
    }
}

/// Whether PgBouncer starts with `extra` after a minimal working config.
fn pgbouncer_starts(bin: &std::path::Path, extra: &str) -> bool {
    pgbouncer_starts_around(bin, "", extra)
}

/// Whether PgBouncer starts with a minimal working config between
/// `prefix` (the very start of the file) and `extra`.
fn pgbouncer_starts_around(bin: &std::path::Path, prefix: &str, extra: &str) -> bool {
    let dir = harness::server_dir();
    let port = harness::free_port();
    harness::write(&dir.path().join("users.txt"), "\"app\" \"x\"\n");
    let ini = format!(
        "{prefix}[databases]\napp = host=127.0.0.1 port=1\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
         unix_socket_dir = {d}\nauth_type = scram-sha-256\nauth_file = {d}/users.txt\nlogfile = {d}/log\n{extra}\n",
        d = dir.path().display()
    );
    let path = dir.path().join("pgbouncer.ini");
    harness::write(&path, &ini);
    let mut c = harness::as_postgres(bin);
    c.arg(&path).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    let log = dir.path().join("log");
    let up = loop {
        if let Ok(Some(_)) = child.try_wait() {
            break false;
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("process up") || text.contains("listening on") {
            break true;
        }
        if start.elapsed() > Duration::from_secs(10) {
            break true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    up
}

const BOUNCER_CASES: &[&str] = &[
    "max_client_conn = 10",
    "MAX_CLIENT_CONN = 10",
    "Max_Client_Conn = 10",
    "max_client_conn = 0x10",
    "max_client_conn = 010",
    "max_client_conn = ten",
    "max_client_conn = 10.5",
    "max_client_conn = 10 # many",
    "max_client_conn=10",
    "'max_client_conn' = 10",
    "max client conn = 10",
    "max_client_conn 10",
    "auth_type = foo",
    "auth_type = SCRAM-SHA-256",
    "auth_type = md5",
    "server_idle_timeout = 600",
    "server_idle_timeout = 0.5",
    "server_idle_timeout = 10s",
    "server_idle_timeout = -1",
    "pool_mode = SESSION",
    "pool_mode = sessions",
    "max_prepared_statements = 100",
    "auth_dbname = postgres",
    "track_extra_parameters = IntervalStyle",
    "max_user_client_connections = 10",
    "client_tls_sslmode = disable",
    "client_tls_sslmode = verify_full",
    "nonexistent_setting = 1",
    "[bogus]\nx = 1",
    "[PgBouncer]\nmax_client_conn = 10",
    "[users]\napp = pool_mode=session",
    "[peers]",
];

#[test]
fn pgbouncer_refuses_what_dbtune_refuses() {
    for (version, bin) in bouncers() {
        let mut disagreements = Vec::new();
        for case in BOUNCER_CASES {
            let theirs = pgbouncer_starts(&bin, case);
            let text = format!("[databases]\napp = host=127.0.0.1 port=1\n[pgbouncer]\n{case}\n");
            let s = grammar::pgbouncer_ini(&text, "pgbouncer.ini").unwrap();
            let ours = findings::pgbouncer(&s, version)
                .iter()
                .all(|f| f.severity != findings::Severity::Error);
            if theirs != ours {
                disagreements.push(format!(
                    "{case:?}: PgBouncer {}, dbtune {}",
                    if theirs { "starts" } else { "refuses" },
                    if ours { "accepts" } else { "refuses" }
                ));
            }
        }
        assert!(
            disagreements.is_empty(),
            "PgBouncer {version}:\n{}",
            disagreements.join("\n")
        );
    }
}

#[test]
fn pgbouncer_key_lists_name_what_the_servers_show() {
    for (version, bin) in bouncers() {
        // Every setting of the release is accepted by the server.
        let cat = BouncerCatalog::get(version);
        let ini: String = cat
            .keys()
            .filter(|k| {
                // Settings whose default would need something here.
                !["auth_file", "logfile", "pidfile", "listen_addr", "listen_port", "unix_socket_dir",
                  "user", "conffile", "service_name", "job_name", "resolv_conf", "auth_hba_file",
                  "auth_ident_file", "auth_type", "syslog", "so_reuseport", "admin_users",
                  "stats_users", "auth_user", "auth_dbname", "auth_query", "client_tls_sslmode",
                  "server_tls_sslmode", "peer_id", "unix_socket_group"]
                    .contains(&k.name.as_str())
                    // TLS strings need real files and cipher names.
                    || k.name.contains("_tls_")
                    || ["unused"]
                    .contains(&k.name.as_str())
            })
            .map(|k| format!("{} = {}\n", k.name, sample(&k.typ)))
            .collect();
        assert!(
            pgbouncer_starts(&bin, &ini),
            "PgBouncer {version} refused the settings dbtune lists:\n{ini}"
        );
    }
}

fn sample(t: &dbtune::read::catalog::BouncerType) -> String {
    use dbtune::read::catalog::BouncerType;
    match t {
        BouncerType::Int | BouncerType::Uint => "1".into(),
        BouncerType::Time => "30".into(),
        BouncerType::Lookup(v) => v[0].clone(),
        BouncerType::String => "x".into(),
    }
}

/// The sample files each release ships: nothing but true findings (the
/// samples leave maxmemory unbounded and use md5).
#[test]
fn upstream_samples_give_only_true_findings() {
    let samples = [
        (
            "--redis-version",
            "8.0",
            harness::built("redis", "8.0").join("../redis.conf"),
        ),
        (
            "--pgbouncer-version",
            "1.24",
            harness::built("pgbouncer", "1.24").join("../pgbouncer.ini"),
        ),
    ];
    for (flag, version, file) in samples {
        let out = harness::dbtune()
            .args([
                "check-budget",
                "--ram",
                "8GiB",
                "--format",
                "json",
                flag,
                version,
            ])
            .arg(&file)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for f in v["findings"].as_array().unwrap() {
            let m = f["message"].as_str().unwrap();
            assert!(
                m.contains("its memory is unbounded") || m.contains("auth_type = md5 is weak"),
                "{}: {m}",
                file.display()
            );
        }
    }
}

/// Whether `server` starts with `conf` as its redis.conf: listening on its
/// port, or gone first (a refused config exits at once). Port, address,
/// directory and log are given on the command line, which Redis reads
/// after the file.
fn redis_starts(server: &std::path::Path, conf: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redis.conf");
    std::fs::write(&path, conf).unwrap();
    let port = harness::free_port();
    let mut c = std::process::Command::new(server);
    c.arg(&path)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--daemonize", "no", "--logfile", ""])
        .arg("--dir")
        .arg(dir.path());
    let log = dir.path().join("log");
    let mut p = harness::Proc::spawn("redis-server", c, log.clone(), libc::SIGTERM);
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (true, p.log_text());
        }
        if let Ok(Some(_)) = p.child.try_wait() {
            return (false, p.log_text());
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "redis-server neither started nor exited:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// dbtune's errors for a redis.conf read as check-budget reads it.
fn redis_errors(path: &std::path::Path, version: &str) -> Vec<String> {
    match dbtune::read::include::redis(path, None) {
        Ok(s) => findings::redis(&s, version)
            .into_iter()
            .filter(|f| f.severity == findings::Severity::Error)
            .map(|f| f.to_string())
            .collect(),
        Err(e) => vec![e.to_string()],
    }
}

/// Lines of directives Redis judges with their own code in config.c
/// (special configs, is_valid functions, argument counts): each bad one
/// and its good form.
const REDIS_START_CASES: &[&str] = &[
    "save \"900\"",
    "save 900",
    "save 0 1",
    "save 900 -1",
    "save 900 1x",
    "save \"900 1\"",
    "save 900 1 300 10",
    "save \"\"",
    "notify-keyspace-events \"Zq\"",
    "notify-keyspace-events \"KEA\"",
    "notify-keyspace-events \"\"",
    "notify-keyspace-events K E",
    "oom-score-adj-values \"1 2\"",
    "oom-score-adj-values 0 200 2001",
    "oom-score-adj-values \"0 200 800\"",
    "oom-score-adj-values -2000 0 2000",
    "latency-tracking-info-percentiles \"abc\"",
    "latency-tracking-info-percentiles 50 101",
    "latency-tracking-info-percentiles \" 50\"",
    "latency-tracking-info-percentiles \"50 99 99.9\"",
    "latency-tracking-info-percentiles \"\"",
    "proc-title-template \"{bogus}\"",
    "proc-title-template \"{title}\"",
    "proc-title-template \"{title\"",
    "proc-title-template \"redis {{ {port}\"",
    "proc-title-template \"{title} {listen-addr} {server-mode}\"",
    "client-output-buffer-limit master 0 0 0",
    "client-output-buffer-limit normal 0 0",
    "client-output-buffer-limit normal 1x 0 0",
    "client-output-buffer-limit normal 0 0 -1",
    "client-output-buffer-limit replica 256mb 64mb 60 pubsub 32mb 8mb 60",
    "client-output-buffer-limit \"normal 0 0 0\"",
    "replicaof localhost 70000",
    "replicaof localhost",
    "replicaof no one",
    "replicaof 127.0.0.1 1",
    "shutdown-on-sigint save nosave",
    "shutdown-on-sigint \"\"",
    "shutdown-on-sigint bogus",
    "shutdown-on-sigint nosave now",
    "dbfilename /tmp/dump.rdb",
    "dbfilename dump-2.rdb",
    "appendfilename \"\"",
    "appenddirname a/b",
    "appendfilename aof.aof",
    "cluster-announce-hostname \"bad_host\"",
    "cluster-announce-hostname node-1.example",
    "cluster-announce-human-nodename \"db#1\"",
    "cluster-announce-human-nodename \"db 1\"",
    "bind 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1",
    "maxmemory",
    "maxmemory 1 gb",
    "maxmemory \"100mb\"",
    "logfile a b",
    "rename-command FLUSHALL",
    "rename-command FLUSHALL \"\"",
    "list-max-ziplist-entries 1 2",
    "list-max-ziplist-entries 128",
];

/// Redis 7.0 and 8.0 started with each line: dbtune refuses exactly what
/// the server refuses at start.
#[test]
fn redis_refuses_at_start_what_dbtune_refuses() {
    let dir = tempfile::tempdir().unwrap();
    for (version, server, _) in redises() {
        let mut disagreements = Vec::new();
        for line in REDIS_START_CASES {
            let conf = format!("{line}\n");
            let (theirs, log) = redis_starts(&server, &conf);
            let path = dir.path().join("redis.conf");
            std::fs::write(&path, &conf).unwrap();
            let ours = redis_errors(&path, version);
            if theirs != ours.is_empty() {
                disagreements.push(format!(
                    "{line}: Redis {version} {}, dbtune {ours:?}\n  {}",
                    if theirs { "starts" } else { "refuses" },
                    log.lines()
                        .filter(|l| !l.is_empty())
                        .take(4)
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
        }
        assert!(
            disagreements.is_empty(),
            "Redis {version}:\n{}",
            disagreements.join("\n")
        );
    }
}

/// `activedefrag yes` depends on how Redis was built (its own jemalloc):
/// Debian's 7.0 refuses it, the 8.0 built from source takes it, so dbtune
/// warns instead of judging.
#[test]
fn activedefrag_depends_on_the_build_and_is_a_warning() {
    let verdicts: Vec<(&str, bool)> = redises()
        .into_iter()
        .map(|(v, server, _)| (v, redis_starts(&server, "activedefrag yes\n").0))
        .collect();
    if verdicts.len() == 2 {
        assert_eq!(verdicts, [("7.0", false), ("8.0", true)]);
    }
    let s = grammar::redis_conf("activedefrag yes\n", "redis.conf").unwrap();
    let f = findings::redis(&s, "7.0");
    assert!(
        f.len() == 1 && f[0].severity == findings::Severity::Warning,
        "{f:?}"
    );
}

/// Redis hands an include with `*`, `?` or `[` anywhere (a directory part
/// too) to glob(3), and a bad line in any file it matches stops the server;
/// dbtune reads the same files.
#[test]
fn redis_include_globs_match_as_redis_globs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["a", "b"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("a/x.conf"), "maxmemory 10mb\n").unwrap();
    let main = d.join("redis.conf");
    for pattern in ["*/x.conf", "[ab]/x.conf", "?/x.conf"] {
        for (bad, text) in [(true, "maxmemory lots\n"), (false, "maxmemory 20mb\n")] {
            std::fs::write(d.join("b/x.conf"), text).unwrap();
            let conf = format!("include {}/{pattern}\n", d.display());
            std::fs::write(&main, &conf).unwrap();
            let ours = redis_errors(&main, "8.0");
            assert_eq!(ours.is_empty(), !bad, "{pattern} {text}: {ours:?}");
            if !bad {
                // b/x.conf is read after a/x.conf: its value wins.
                let s = dbtune::read::include::redis(&main, None).unwrap();
                assert_eq!(s.get("maxmemory").unwrap().value, "20mb");
                assert!(s.get("maxmemory").unwrap().at.file.ends_with("b/x.conf"));
            }
            for (version, server, _) in redises() {
                let (starts, log) = redis_starts(&server, &conf);
                assert_eq!(starts, !bad, "Redis {version}, {pattern} {text}: {log}");
            }
        }
    }
}

/// A UTF-8 byte order mark at the start of a file: Redis and PgBouncer
/// refuse to start (and start without it), and dbtune says why at line 1
/// with a hint.
#[test]
fn a_byte_order_mark_is_refused_by_redis_and_pgbouncer_and_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let conf = "\u{feff}maxmemory 100mb\n";
    let path = dir.path().join("redis.conf");
    std::fs::write(&path, conf).unwrap();
    let ours = redis_errors(&path, "7.0");
    assert!(
        ours.len() == 1
            && ours[0].contains("redis.conf:1: ")
            && ours[0].contains("byte order mark")
            && ours[0].contains("hint:"),
        "{ours:?}"
    );
    for (version, server, _) in redises() {
        assert!(!redis_starts(&server, conf).0, "Redis {version}");
        assert!(
            redis_starts(&server, "maxmemory 100mb\n").0,
            "Redis {version}"
        );
    }
    let ini = "\u{feff}[databases]\napp = host=127.0.0.1\n[pgbouncer]\nlisten_port = 6432\n";
    let path = dir.path().join("pgbouncer.ini");
    std::fs::write(&path, ini).unwrap();
    let s = dbtune::read::include::pgbouncer(&path, None).unwrap();
    let f: Vec<_> = findings::pgbouncer(&s, "1.18")
        .into_iter()
        .filter(|f| f.severity == findings::Severity::Error)
        .collect();
    assert!(
        f.len() == 1 && f[0].message.contains("byte order mark"),
        "{f:?}"
    );
    for (version, bin) in bouncers() {
        assert!(
            !pgbouncer_starts_around(&bin, "\u{feff}", ""),
            "PgBouncer {version}"
        );
        assert!(pgbouncer_starts_around(&bin, "", ""), "PgBouncer {version}");
    }
}

/// `[databases]` and `[users]` lines, each after the minimal working
/// config: PgBouncer 1.18 and 1.24 start exactly when dbtune finds no
/// error (the options, values and names each release refuses;
/// data/pgbouncer-options.tsv has them per release from the source).
const BOUNCER_LINE_CASES: &[&str] = &[
    "[databases]\nfoo = host=127.0.0.1 port=1 pool_size=5",
    "[databases]\nfoo = host=127.0.0.1 pool_sise=5",
    "[databases]\nfoo = host=127.0.0.1 port=${DB_PORT}",
    "[databases]\nfoo = host=127.0.0.1 port=5x",
    "[databases]\nfoo = host=127.0.0.1 pool_size=many",
    "[databases]\nfoo = host=127.0.0.1 pool_mode=Transaction",
    "[databases]\nfoo = host=127.0.0.1 pool_mode=tx",
    "[databases]\nfoo = host=127.0.0.1 reserve_pool=2",
    "[databases]\nfoo = host=127.0.0.1 reserve_pool_size=2",
    "[databases]\nfoo = host=127.0.0.1 server_lifetime=60",
    "[databases]\nfoo = host=127.0.0.1 auth_dbname=postgres",
    "[databases]\nfoo = host=127.0.0.1 auth_query='SELECT 1'",
    "[databases]\nfoo = host=127.0.0.1 load_balance_hosts=disable",
    "[databases]\nfoo = host=127.0.0.1 load_balance_hosts=random",
    "[databases]\nfoo = host=127.0.0.1 max_db_client_connections=10",
    "[databases]\nfoo = host=127.0.0.1 password='open",
    "[databases]\nfoo = host=127.0.0.1 password='it''s'",
    "[databases]\nfoo = host=127.0.0.1 ; the test database",
    "[databases]\nfoo = host=127.0.0.1 dbname=",
    "[databases]\nfoo = host = 127.0.0.1",
    "[databases]\npgbouncer = host=127.0.0.1",
    "[databases]\n* = host=127.0.0.1 pool_sise=5",
    "[users]\napp = pool_mode=transaction",
    "[users]\napp = max_user_conections=3",
    "[users]\napp = max_user_connections=3",
    "[users]\napp = pool_size=5",
    "[users]\napp = reserve_pool_size=1",
    "[users]\napp = max_user_client_connections=10",
    "[users]\napp = query_timeout=5",
    "[users]\napp = pool_mode",
];

#[test]
fn pgbouncer_reads_databases_and_users_as_dbtune_does() {
    for (version, bin) in bouncers() {
        let mut disagreements = Vec::new();
        for case in BOUNCER_LINE_CASES {
            let theirs = pgbouncer_starts(&bin, case);
            let text = format!("[databases]\napp = host=127.0.0.1 port=1\n[pgbouncer]\n{case}\n");
            let s = grammar::pgbouncer_ini(&text, "pgbouncer.ini").unwrap();
            let f = findings::pgbouncer(&s, version);
            let ours = f.iter().all(|f| f.severity != findings::Severity::Error);
            if theirs != ours {
                disagreements.push(format!(
                    "{case:?}: PgBouncer {}, dbtune {} {f:?}",
                    if theirs { "starts" } else { "refuses" },
                    if ours { "accepts" } else { "refuses" }
                ));
            }
        }
        assert!(
            disagreements.is_empty(),
            "PgBouncer {version}:\n{}",
            disagreements.join("\n")
        );
    }
}

/// `server_reset_query =        ; (blank is fine ...)`: PgBouncer starts
/// and takes the text after `=` as the query (its admin console shows it),
/// and dbtune says so.
#[test]
fn pgbouncer_takes_a_value_starting_with_a_semicolon_as_the_value() {
    let psql = harness::need("psql");
    for (version, bin) in bouncers() {
        let dir = harness::server_dir();
        let port = harness::free_port();
        harness::write(&dir.path().join("users.txt"), "\"app\" \"x\"\n");
        let ini = format!(
            "[databases]\napp = host=127.0.0.1 port=1\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir = {d}\nauth_type = plain\nauth_file = {d}/users.txt\nlogfile = {d}/log\n\
             admin_users = app\nserver_reset_query =        ; (blank is fine)\n",
            d = dir.path().display()
        );
        let path = dir.path().join("pgbouncer.ini");
        harness::write(&path, &ini);
        let mut c = harness::as_postgres(&bin);
        c.arg(&path);
        let mut proc =
            harness::Proc::spawn("pgbouncer", c, dir.path().join("out.log"), libc::SIGINT);
        proc.wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        let out = std::process::Command::new(&psql)
            .env("PGPASSWORD", "x")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "app",
                "-XAt",
                "-F",
                "|",
            ])
            .args(["-c", "SHOW CONFIG", "pgbouncer"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        let row = shown
            .lines()
            .find(|l| l.starts_with("server_reset_query|"))
            .unwrap_or_else(|| {
                panic!(
                    "PgBouncer {version}: no server_reset_query in {shown}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert!(
            row.starts_with("server_reset_query|; (blank is fine)|"),
            "PgBouncer {version}: {row}"
        );
        let s = grammar::pgbouncer_ini(&ini, "pgbouncer.ini").unwrap();
        let f = findings::pgbouncer(&s, version);
        assert!(
            f.iter()
                .any(|f| f.message.contains("reads `; (blank is fine)` as the value")),
            "{f:?}"
        );
    }
}
