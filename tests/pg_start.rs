//! What PostgreSQL refuses at start, asked of every major (13-18, fetched by
//! scripts/fetch-postgres.sh): each case is a set of config files a
//! scratch cluster starts with, and dbtune's verdict on the same files (an
//! error finding or an error reading them, else none) must be the
//! server's. The rules pinned here: include depth and include_dir entries.

mod harness;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use dbtune::read::budget::Assumptions;
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
    fn new(major: u32) -> Option<Scratch> {
        let bin = harness::pg_server(major)?;
        let dir = harness::server_dir();
        let mut c = harness::as_postgres(&bin.join("initdb"));
        c.arg("-D")
            .arg(dir.path().join("data"))
            .args(["--no-sync", "-U", "postgres"]);
        harness::run_ok(c);
        Some(Scratch { major, bin, dir })
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

/// Each case: what it checks, its files, and the majors it is asked of.
fn cases() -> Vec<(&'static str, Vec<(String, String)>, RangeInclusive<u32>)> {
    let all = 13..=18;
    vec![
        ("include depth", chain(10), all.clone()),
        ("include depth", chain(11), all.clone()),
    ]
}

/// Every case of `cases` this major is asked: dbtune refuses exactly what
/// the server refuses.
fn refuses_what_the_server_refuses(major: u32) {
    let Some(pg) = Scratch::new(major) else {
        return;
    };
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

/// A FIFO (here behind a symlink) in an include_dir: PostgreSQL opens it
/// and waits for a writer that never comes; dbtune says so at the
/// include_dir line, at once. A link to nothing: PostgreSQL refuses to
/// start, dbtune says so at the same line.
#[test]
fn an_include_dir_entry_that_is_a_fifo_or_a_dangling_link_is_an_error_at_its_line() {
    let Some(pg) = Scratch::new(16) else {
        return;
    };
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
    ($($major:literal => $start:ident;)*) => {$(
        #[test]
        fn $start() {
            refuses_what_the_server_refuses($major);
        }
    )*};
}

per_major! {
    13 => pg13_refuses_at_start_what_dbtune_refuses;
    14 => pg14_refuses_at_start_what_dbtune_refuses;
    15 => pg15_refuses_at_start_what_dbtune_refuses;
    16 => pg16_refuses_at_start_what_dbtune_refuses;
    17 => pg17_refuses_at_start_what_dbtune_refuses;
    18 => pg18_refuses_at_start_what_dbtune_refuses;
}
