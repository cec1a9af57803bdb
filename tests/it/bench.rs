//! `dbtune bench` end to end, tiny: scratch clusters start, every config is
//! measured, the report has a ratio per config, and nothing is left behind.

use crate::harness;
use predicates::prelude::*;
use predicates::str::contains;

/// The two benches count and leave scratch directories: one at a time.
static ONE_BENCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_tiny_bench_measures_every_config_and_cleans_up() {
    harness::need("postgres");
    harness::need("pgbench");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    // Its own temp dir: other processes on the machine make scratch dirs
    // of their own in /tmp, and would be counted as this bench's.
    let tmp = harness::server_dir();
    harness::dbtune()
        .env("TMPDIR", tmp.path())
        .args([
            "bench",
            "--profile",
            "low-memory",
            "--rows",
            "20000",
            "--streams",
            "2",
        ])
        .args([
            "--scale",
            "1",
            "--clients",
            "2",
            "--seconds",
            "1",
            "--runs",
            "2",
            "--write-seconds",
            "2",
        ])
        .timeout(std::time::Duration::from_secs(300))
        .assert()
        .success()
        .stdout(contains("COPY (seconds, lower is better)").and(contains("CREATE INDEX")))
        .stdout(
            contains("2 concurrent COPY streams")
                .and(contains("pgbench TPC-B"))
                .and(contains("select-only")),
        )
        .stdout(
            contains("COPY floor: UNLOGGED, no index")
                .and(contains("pgbench TPC-B for 2 s"))
                .and(contains(
                    "checkpoints during the write run (count, fewer is better)",
                ))
                .and(contains("hash aggregate of 500 000 groups")),
        )
        .stdout(
            contains("defaults")
                .and(contains("1.00x"))
                .and(contains("pgtune-dw"))
                .and(contains("dbtune low-memory")),
        )
        .stderr(contains("[1/6] run 1: defaults"));
    assert_eq!(leftovers(tmp.path()), 0, "scratch clusters left behind");
}

fn leftovers(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dbtune-bench-"))
        .count()
}

/// The PIDs of the processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            // "pid (comm) state ppid ...": the comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.to_string();
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its entry is left for its (dead) parent.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// A bench killed with SIGKILL (a CI timeout, the OOM killer) cannot stop
/// its scratch servers itself: they stop because their parent died.
#[test]
fn a_killed_bench_leaves_no_server_running() {
    harness::need("postgres");
    harness::need("pgbench");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let bin = assert_cmd::cargo::cargo_bin("dbtune");
    let mut bench = std::process::Command::new(bin)
        .args(["bench", "--profile", "low-memory", "--rows", "2000000"])
        .args([
            "--scale",
            "1",
            "--clients",
            "2",
            "--seconds",
            "60",
            "--runs",
            "1",
        ])
        .env("DBTUNE_PROFILE_DIR", "/nonexistent/dbtune-profiles")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let servers = loop {
        let servers: Vec<u32> = children(bench.id())
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "postgres")
            })
            .collect();
        // Every config's cluster is up before the first measurement.
        if servers.len() >= 3 {
            break servers;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "the bench did not start its clusters: {servers:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // What SIGKILL leaves: the servers' directories, and (if the servers
    // outlive the bench, the bug this test is for) the servers.
    let _reap = Reap {
        servers: servers.clone(),
        dirs: servers.iter().filter_map(|p| scratch_dir(*p)).collect(),
    };
    bench.kill().unwrap();
    bench.wait().unwrap();
    let start = std::time::Instant::now();
    while servers.iter().any(|p| alive(*p)) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "scratch servers still running after the bench was killed: {:?}",
            servers.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The scratch directory a server runs in (`-D DIR/data`).
fn scratch_dir(pid: u32) -> Option<std::path::PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let data = args
        .iter()
        .position(|a| *a == b"-D")
        .and_then(|i| args.get(i + 1))?;
    let data = std::path::PathBuf::from(String::from_utf8_lossy(data).into_owned());
    let dir = data.parent()?.to_path_buf();
    dir.file_name()?
        .to_string_lossy()
        .starts_with("dbtune-bench-")
        .then_some(dir)
}

/// Stops what a killed bench left, also when the test fails.
struct Reap {
    servers: Vec<u32>,
    dirs: Vec<std::path::PathBuf>,
}

impl Drop for Reap {
    fn drop(&mut self) {
        for p in self.servers.iter().filter(|p| alive(**p)) {
            // SAFETY: a signal to a server this test saw started.
            unsafe {
                libc::kill(*p as i32, libc::SIGQUIT);
            }
        }
        let start = std::time::Instant::now();
        while self.servers.iter().any(|p| alive(*p))
            && start.elapsed() < std::time::Duration::from_secs(30)
        {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
