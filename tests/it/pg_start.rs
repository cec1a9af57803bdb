//! What PostgreSQL refuses at start, asked of every major (13-18, fetched by
//! scripts/fetch-postgres.sh): each case is a set of config files a
//! scratch cluster starts with, and dbtune's verdict on the same files (an
//! error finding or an error reading them, else none) must be the
//! server's. The rules pinned here: settings PostgreSQL checks against each
//! other (PostmasterMain, the process limit, ReadControlFile, the recovery
//! target hooks), time zones, include depth and include_dir entries, and a
//! byte order mark.

use crate::harness;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbtune::model::Assumptions;
use dbtune::read::findings::{self, Severity};
use dbtune::read::settings::HostSettings;
use dbtune::read::{include, safety};
use dbtune::version::PgVersion;

/// What a server did with a set of files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    Starts,
    Refuses,
    /// Neither ready nor gone after a while: waiting on something.
    Hangs,
}

/// An initdb'd data directory of one major, started again for each case.
struct Scratch {
    major: u32,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(major: u32) -> Scratch {
        let bin = harness::pg_server(major);
        let dir = harness::server_dir();
        let mut c = harness::as_postgres(&bin.join("initdb"));
        c.arg("-D")
            .arg(dir.path().join("data"))
            .args(["--no-sync", "-U", "postgres"]);
        harness::run_ok(c);
        Scratch { major, bin, dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes `files` (postgresql.conf first) into the data directory,
    /// replacing the previous case's.
    fn write(&self, files: &[(&str, &str)]) {
        let data = self.data();
        let _ = std::fs::remove_file(data.join("postgresql.auto.conf"));
        for (name, text) in files {
            let path = data.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
                harness::write(&path, text);
            }
        }
    }

    /// Starts the server on the files written: ready to accept connections,
    /// gone first, or neither within `patience`.
    fn start(&self, patience: Duration) -> (Start, String) {
        let port = harness::free_port();
        let mut c = harness::as_postgres(&self.bin.join("postgres"));
        c.arg("-D")
            .arg(self.data())
            .args(["-p", &port.to_string(), "-c", "listen_addresses="])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .stdin(Stdio::null());
        let log = self.dir.path().join(format!("start-{port}.log"));
        let mut server = harness::Proc::spawn("postgres", c, log.clone(), libc::SIGINT);
        let begun = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("ready to accept connections") {
                return (Start::Starts, text);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                return (Start::Refuses, text);
            }
            if begun.elapsed() > patience {
                return (Start::Hangs, text);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// dbtune's verdict on the same files, read from `dir`: the errors it
/// finds (validation and the start-up rules, not the memory budget), or
/// the error that stops it reading them.
fn dbtune_errors(dir: &Path, major: u32) -> Vec<String> {
    let version = PgVersion::of(major);
    let s = match include::postgres(&dir.join("postgresql.conf"), None) {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    // npm's builds: no lz4, zstd, liburing or Debian patch.
    let mut found = findings::postgres(&s, version, Some(&[]), None);
    let hs = HostSettings {
        postgres: Some(s),
        pg_version: version,
        ..Default::default()
    };
    found.extend(safety::findings(
        &hs,
        &safety::Context::default(),
        &Assumptions::default(),
    ));
    found
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect()
}

/// A chain of `n` nested includes under postgresql.conf.
fn chain(n: usize) -> Vec<(String, String)> {
    let mut files = vec![(
        "postgresql.conf".to_string(),
        "include 'inc1.conf'\n".to_string(),
    )];
    for i in 1..=n {
        let next = if i < n {
            format!("include 'inc{}.conf'\n", i + 1)
        } else {
            "work_mem = 8MB\n".to_string()
        };
        files.push((format!("inc{i}.conf"), next));
    }
    files
}

/// What a case checks, its files (postgresql.conf first), and the majors
/// it is asked of.
type Case = (&'static str, Vec<(String, String)>, RangeInclusive<u32>);

fn cases() -> Vec<Case> {
    let one = |text: &str| vec![("postgresql.conf".to_string(), text.to_string())];
    // The process limit's cases map ~262 000 backends: small lock tables
    // keep that to a few seconds.
    let many = |n: u32| {
        one(&format!(
            "max_connections = {n}\nmax_locks_per_transaction = 10\nmax_pred_locks_per_transaction = 10\n"
        ))
    };
    let all = 13..=18;
    vec![
        ("reserved slots", one("max_connections = 3\n"), all.clone()),
        ("reserved slots", one("max_connections = 4\n"), all.clone()),
        (
            "reserved slots",
            one("superuser_reserved_connections = 100\n"),
            all.clone(),
        ),
        (
            "reserved_connections",
            one("max_connections = 5\nreserved_connections = 2\n"),
            all.clone(),
        ),
        (
            "reserved_connections",
            one("max_connections = 6\nreserved_connections = 2\n"),
            all.clone(),
        ),
        ("process limit", many(262_122), all.clone()),
        ("process limit", many(262_121), all.clone()),
        ("process limit", many(262_120), 17..=17),
        ("process limit", many(262_107), 18..=18),
        ("WAL size floor", one("min_wal_size = 31MB\n"), all.clone()),
        (
            "WAL size floor",
            one("min_wal_size = 32767kB\n"),
            all.clone(),
        ),
        (
            "WAL size floor",
            one("max_wal_size = 16MB\nmin_wal_size = 32MB\n"),
            all.clone(),
        ),
        (
            "recovery targets",
            one("recovery_target_time = '2020-01-01'\nrecovery_target_xid = ''\n"),
            all.clone(),
        ),
        (
            "recovery targets",
            one("recovery_target_xid = ''\nrecovery_target_time = '2020-01-01'\n"),
            all.clone(),
        ),
        (
            "recovery targets",
            one("recovery_target_time = '2020-01-01'\nrecovery_target_time = '2021-01-01'\n"),
            all.clone(),
        ),
        (
            "recovery targets in include order",
            vec![
                (
                    "postgresql.conf".into(),
                    "include 'b.conf'\nrecovery_target_name = 'x'\n".into(),
                ),
                (
                    "b.conf".into(),
                    "recovery_target_time = '2020-01-01'\n".into(),
                ),
            ],
            all.clone(),
        ),
        (
            "wal_level minimal",
            one("wal_level = minimal\n"),
            all.clone(),
        ),
        (
            "wal_level minimal",
            one("wal_level = minimal\nmax_wal_senders = 0\n"),
            all.clone(),
        ),
        (
            "wal_level minimal",
            one("wal_level = minimal\nmax_wal_senders = 0\narchive_mode = on\n"),
            all.clone(),
        ),
        (
            "wal_level minimal",
            one("wal_level = minimal\nmax_wal_senders = 0\nsummarize_wal = on\n"),
            all.clone(),
        ),
        ("time zone", one("timezone = 'Mars/Olympus'\n"), all.clone()),
        (
            "time zone",
            one("log_timezone = 'Mars/Olympus'\n"),
            all.clone(),
        ),
        (
            "time zone",
            one("timezone = 'Europe/Paris'\nlog_timezone = 'EST5EDT'\n"),
            all.clone(),
        ),
        (
            "only the last value is read",
            one("timezone = 'Mars/Olympus'\ntimezone = 'UTC'\nwork_mem = lots\nwork_mem = 4MB\n"),
            all.clone(),
        ),
        (
            "byte order mark",
            one("\u{feff}work_mem = 4MB\n"),
            all.clone(),
        ),
        (
            "byte order mark",
            one("\u{feff}# settings\nwork_mem = 4MB\n"),
            all.clone(),
        ),
        ("include depth", chain(10), all.clone()),
        ("include depth", chain(11), all.clone()),
    ]
}

/// Every case of `cases` this major is asked: dbtune refuses exactly what
/// the server refuses.
fn refuses_what_the_server_refuses(major: u32) {
    let pg = Scratch::new(major);
    let mut disagreements = Vec::new();
    for (what, files, majors) in cases() {
        if !majors.contains(&major) {
            continue;
        }
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        pg.write(&files);
        let (theirs, log) = pg.start(Duration::from_secs(60));
        let ours = dbtune_errors(&pg.data(), pg.major);
        let agree = match theirs {
            Start::Starts => ours.is_empty(),
            Start::Refuses => !ours.is_empty(),
            Start::Hangs => false,
        };
        if !agree {
            disagreements.push(format!(
                "{what} {:?}: PostgreSQL {major} {theirs:?}, dbtune {ours:?}\n{}",
                files[0].1,
                log.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "PostgreSQL {major}:\n{}",
        disagreements.join("\n")
    );
}

/// `timezone` and `log_timezone` values: dbtune accepts exactly what the
/// server's check hooks accept (`postgres -C`, which reads the file).
fn time_zones_read_as_the_server_reads_them(major: u32) {
    let pg = Scratch::new(major);
    let values = [
        "UTC",
        "utc",
        "GMT",
        "Europe/Paris",
        "europe/PARIS",
        ":Europe/Paris",
        "Europe/Paris ",
        "Europe//Paris",
        "Europe/../Europe/Paris",
        "Europe",
        "Mars/Olympus",
        "Factory",
        "posixrules",
        "localtime",
        "right/UTC",
        "posix/Europe/Paris",
        "Etc/GMT+5",
        "EST5EDT",
        "est5edt",
        "FOO3",
        "XYZ",
        "XY",
        "-3:30",
        "+3",
        "<+03>-3",
        "<>5",
        "<+03-3",
        "UTC+3",
        "UTC+168",
        "UTC+167:59:60",
        "UTC+3:60",
        "abc3def",
        "abc3def4",
        "abc3def,M3.2.0,M11.1.0",
        "abc3def,M3.2.0/-1,M11.1.0/30",
        "abc3def;M3.2.0,M11.1.0",
        "abc3def,J1,J365",
        "abc3def,J0,J365",
        "abc3def,0,365",
        "abc3def,0,366",
        "abc3def,M13.1.0,M11.1.0",
        "abc3def,M3.6.0,M11.1.0",
        "abc3def,M3.2.7,M11.1.0",
        "abc3def,M3.2.0",
        "abc3def4x",
        "5",
        "-5.5",
        "167",
        "167.999",
        "168",
        "-168",
        "0x10",
        "1e1",
        "1e-400",
        "1e400",
        " 5",
        "5 ",
        "inf",
        "nan",
        "",
        ":",
        "interval '1'",
        "interval '+02:00' hour to minute",
        "Intervalx",
    ];
    let conf = pg.data().join("postgresql.conf");
    let mut disagreements = Vec::new();
    for name in ["timezone", "log_timezone"] {
        for v in values {
            harness::write(&conf, &format!("{name} = '{}'\n", v.replace('\'', "''")));
            let mut c = harness::as_postgres(&pg.bin.join("postgres"));
            c.arg("-D").arg(pg.data()).args(["-C", name]);
            let theirs = c.output().unwrap().status.success();
            let ours = dbtune_errors(&pg.data(), pg.major).is_empty();
            if theirs != ours {
                disagreements.push(format!(
                    "{name} = {v:?}: PostgreSQL {major} {}, dbtune {}",
                    if theirs { "accepts" } else { "refuses" },
                    if ours { "accepts" } else { "refuses" }
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "PostgreSQL {major}:\n{}",
        disagreements.join("\n")
    );
}

/// A FIFO (here behind a symlink) in an include_dir: PostgreSQL opens it
/// and waits for a writer that never comes; dbtune says so at the
/// include_dir line, at once. A link to nothing: PostgreSQL refuses to
/// start, dbtune says so at the same line.
#[test]
fn an_include_dir_entry_that_is_a_fifo_or_a_dangling_link_is_an_error_at_its_line() {
    let pg = Scratch::new(16);
    let conf_d = pg.data().join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    harness::write(&conf_d.join("01-ok.conf"), "work_mem = 8MB\n");
    let fifo = pg.dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink(&fifo, conf_d.join("02-pipe.conf")).unwrap();
    pg.write(&[("postgresql.conf", "work_mem = 4MB\ninclude_dir 'conf.d'\n")]);

    let (theirs, log) = pg.start(Duration::from_secs(5));
    assert_eq!(theirs, Start::Hangs, "{log}");
    let begun = Instant::now();
    let ours = dbtune_errors(&pg.data(), 16);
    assert!(begun.elapsed() < Duration::from_secs(5));
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(
        ours[0].contains("postgresql.conf:2: ")
            && ours[0].contains("02-pipe.conf` in include_dir")
            && ours[0].contains("FIFO"),
        "{ours:?}"
    );

    std::fs::remove_file(conf_d.join("02-pipe.conf")).unwrap();
    std::os::unix::fs::symlink(pg.dir.path().join("gone"), conf_d.join("03-gone.conf")).unwrap();
    let (theirs, log) = pg.start(Duration::from_secs(60));
    assert_eq!(theirs, Start::Refuses, "{log}");
    assert!(log.contains("03-gone.conf"), "{log}");
    let ours = dbtune_errors(&pg.data(), 16);
    assert!(
        ours.len() == 1
            && ours[0].contains("postgresql.conf:2: ")
            && ours[0].contains("03-gone.conf` in include_dir"),
        "{ours:?}"
    );
}

macro_rules! per_major {
    ($($major:literal => $start:ident, $zones:ident;)*) => {$(
        #[test]
        fn $start() {
            refuses_what_the_server_refuses($major);
        }
        #[test]
        fn $zones() {
            time_zones_read_as_the_server_reads_them($major);
        }
    )*};
}

per_major! {
    13 => pg13_refuses_at_start_what_dbtune_refuses, pg13_reads_time_zones_as_dbtune_does;
    14 => pg14_refuses_at_start_what_dbtune_refuses, pg14_reads_time_zones_as_dbtune_does;
    15 => pg15_refuses_at_start_what_dbtune_refuses, pg15_reads_time_zones_as_dbtune_does;
    16 => pg16_refuses_at_start_what_dbtune_refuses, pg16_reads_time_zones_as_dbtune_does;
    17 => pg17_refuses_at_start_what_dbtune_refuses, pg17_reads_time_zones_as_dbtune_does;
    18 => pg18_refuses_at_start_what_dbtune_refuses, pg18_reads_time_zones_as_dbtune_does;
}

/// Debian's PostgreSQL reads the host's time zone database: the names only
/// such builds have are accepted there (with the debian build feature),
/// and refused by a build known to ship its own.
#[test]
fn system_tz_database_names_follow_the_build() {
    let bin = harness::need("postgres");
    let version_out = Command::new(&bin).arg("--version").output().unwrap();
    let major: u32 = String::from_utf8_lossy(&version_out.stdout)
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap();
    let dir = harness::server_dir();
    let mut c = harness::as_postgres(&bin.parent().unwrap().join("initdb"));
    c.arg("-D")
        .arg(dir.path().join("data"))
        .args(["--no-sync", "-U", "postgres"]);
    harness::run_ok(c);
    let conf = dir.path().join("data/postgresql.conf");
    harness::write(&conf, "timezone = 'posix/Europe/Paris'\n");
    let mut c = harness::as_postgres(&bin);
    c.arg("-D")
        .arg(dir.path().join("data"))
        .args(["-C", "timezone"]);
    assert!(
        c.output().unwrap().status.success(),
        "Debian's PostgreSQL {major} reads the host's tz database"
    );
    let s = dbtune::read::grammar::postgresql_conf(
        "timezone = 'posix/Europe/Paris'\n",
        "postgresql.conf",
    )
    .unwrap();
    let v = PgVersion::of(major);
    let with = |build: Option<&[String]>| {
        findings::postgres(&s, v, build, None)
            .into_iter()
            .map(|f| f.severity)
            .collect::<Vec<_>>()
    };
    assert_eq!(with(Some(&["debian".to_string()])), []);
    assert_eq!(with(Some(&[])), [Severity::Error]);
    assert_eq!(with(None), [Severity::Warning]);
}
