//! `dbtune bench` end to end, tiny: scratch clusters start, every config is
//! measured, the report has a ratio per config, and nothing is left behind.

use crate::harness;

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
    let out = harness::dbtune()
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
        .output()
        .unwrap();
    // The whole report as people read it: every workload's table with one
    // row per config; the measured numbers are masked, the layout is not.
    let text = harness::whole_output(&out);
    let filters = vec![
        (
            r"(?m)^(  [a-z][a-z -]*?) +[\d.]+ +[\d.]+ +[\d.]+ +(?:[\d.]+x|-) +(\d+)$",
            "$1  [median] [min] [max] [ratio]  $2",
        ),
        (
            r"bench on this machine: [^;]*;",
            "bench on this machine: [HOST];",
        ),
        // The counters' medians, and what the ranges allow to claim.
        (
            r"(?m)^(  [a-z][a-z -]*?)(?: +(?:[\d.]+|-)){5,}$",
            "$1  [counters]",
        ),
        (
            r"(?m)^(  [a-z][a-z -]*?): (?:better than|worse than|overlaps|no claim).*$",
            "$1: [claim]",
        ),
    ];
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!(text);
    });
    assert_eq!(leftovers(tmp.path()), 0, "scratch clusters left behind");
}

/// `bench --runs 3 --confirm 1`: a workload gets a fourth round on every
/// config exactly when, after its three, some pair of configs had min-max
/// ranges apart (read back from the JSON's runs, which are in the order
/// they ran), and stderr says each confirming run as it starts.
#[test]
fn bench_adds_a_round_where_three_runs_put_two_configs_apart_and_only_there() {
    harness::need("postgres");
    harness::need("pgbench");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = harness::server_dir();
    let out = harness::dbtune()
        .env("TMPDIR", tmp.path())
        .args(["bench", "--only", "analytic,copy-index", "--rows", "20000"])
        .args(["--scale", "1", "--runs", "3", "--confirm", "1", "--json"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let series: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let timed: Vec<&serde_json::Value> = series
        .iter()
        .filter(|s| s.get("counter").is_none())
        .collect();
    let mut metrics: Vec<&str> = timed
        .iter()
        .map(|s| s["metric"].as_str().unwrap())
        .collect();
    metrics.sort_unstable();
    metrics.dedup();
    let analytic = "hash aggregate of 500 000 groups (analytic)";
    // Two workloads: the aggregate; a COPY and its index build.
    assert_eq!(metrics, ["COPY", "CREATE INDEX", analytic]);
    let values = |m: &str| -> Vec<Vec<f64>> {
        timed
            .iter()
            .filter(|s| s["metric"] == m)
            .map(|s| {
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect()
    };
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let apart_in = |runs: &[Vec<f64>]| {
        runs.iter().enumerate().any(|(j, b)| {
            runs[..j].iter().any(|a| {
                let ((alo, ahi), (blo, bhi)) = (range(a), range(b));
                blo > ahi || bhi < alo
            })
        })
    };
    let first_three =
        |m: &str| -> Vec<Vec<f64>> { values(m).iter().map(|v| v[..3].to_vec()).collect() };
    let asked = |m: &str| apart_in(&first_three(m));
    let workloads: [&[&str]; 2] = [&[analytic], &["COPY", "CREATE INDEX"]];
    for ms in workloads {
        let want = if ms.iter().any(|m| asked(m)) { 4 } else { 3 };
        for m in ms {
            let v = values(m);
            assert_eq!(v.len(), 3, "{m}: one series per config");
            for runs in &v {
                assert_eq!(
                    runs.len(),
                    want,
                    "{m}: {v:?} (first three apart: {})",
                    asked(m)
                );
            }
        }
    }
    let confirming = err
        .lines()
        .filter(|l| l.contains("[confirming 1/1]"))
        .count();
    let rounds = workloads
        .iter()
        .filter(|ms| ms.iter().any(|m| asked(m)))
        .count();
    assert_eq!(confirming, 3 * rounds, "{err}");
    assert_eq!(leftovers(tmp.path()), 0, "scratch clusters left behind");
}

/// `bench --ceiling`: one more config, the profile's file with every
/// durability setting off, measured like the others. The server's own
/// counters show the settings reached it: the ceiling's write run writes
/// no full page image and syncs no WAL, where the same file with them on
/// writes some images on every run (the first change of a page after the
/// checkpoint before it) and syncs the WAL for its commits.
#[test]
fn the_ceiling_is_the_profiles_file_without_durability_and_the_server_runs_it_so() {
    harness::need("postgres");
    harness::need("pgbench");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = harness::server_dir();
    let out = harness::dbtune()
        .env("TMPDIR", tmp.path())
        .args([
            "bench",
            "--profile",
            "low-memory",
            "--ceiling",
            "--only",
            "write",
        ])
        .args(["--scale", "1", "--clients", "2", "--write-seconds", "3"])
        .args(["--runs", "2", "--confirm", "0", "--json"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "no-durability ceiling: dbtune low-memory with fsync, synchronous_commit, full_page_writes off"
        ),
        "{err}"
    );
    let series: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let counter = |config: &str, counter: &str| -> Vec<f64> {
        let s: Vec<&serde_json::Value> = series
            .iter()
            .filter(|s| s["config"] == config && s["counter"] == counter)
            .collect();
        assert_eq!(s.len(), 1, "{config}: {series:?}");
        s[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    for name in ["FPI/unit", "WAL syncs/unit"] {
        let ceiling = counter("no-durability ceiling", name);
        let base = counter("dbtune low-memory", name);
        assert_eq!(ceiling, [0.0, 0.0], "{name}");
        assert_eq!(base.len(), 2, "{name}");
        assert!(base.iter().all(|&v| v > 0.0), "{name}: {base:?}");
    }
    // And it is timed like every other config: a rate for each run.
    let timed: Vec<&serde_json::Value> = series
        .iter()
        .filter(|s| s["config"] == "no-durability ceiling" && s.get("counter").is_none())
        .filter(|s| s["unit"] == "tps")
        .collect();
    assert_eq!(timed.len(), 1, "{series:?}");
    for s in timed {
        let runs = s["values"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{s}");
        assert!(runs.iter().all(|v| v.as_f64().unwrap() > 0.0), "{s}");
    }
    assert_eq!(leftovers(tmp.path()), 0, "scratch clusters left behind");
}

fn leftovers(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dbtune-bench-"))
        .count()
}

/// The processes in cgroup `cg`: PID and command name.
fn processes_in(cg: &std::path::Path) -> Vec<(u32, String)> {
    std::fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .filter_map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).ok()?;
            Some((p, comm.trim().to_string()))
        })
        .collect()
}

/// Watches the cgroups `cgroups` lists while `bench` runs, until 3 of them
/// have passed `check` (one that has not is checked again on the next
/// pass), bench has exited or 240 s have gone; the ones that passed.
fn watch_cgroups(
    bench: &mut std::process::Child,
    cgroups: impl Fn() -> Vec<std::path::PathBuf>,
    mut check: impl FnMut(&std::path::Path) -> bool,
) -> Vec<std::path::PathBuf> {
    let start = std::time::Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 3 && start.elapsed() < std::time::Duration::from_secs(240) {
        for cg in cgroups() {
            if !seen.contains(&cg) && check(&cg) {
                seen.push(cg);
            }
        }
        if bench.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    seen
}

/// Waits for `bench` (its stderr piped) and asserts it succeeded; its
/// stderr.
fn succeeded(bench: &mut std::process::Child) -> String {
    let status = bench.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(bench.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "bench failed:\n{err}");
    err
}

/// The values of one counter for each config (3 rows) in the counters
/// table after the workload whose title contains `workload`. Counters are
/// right-aligned under their header, as wide as it and at least 14.
fn counter_column(report: &str, workload: &str, counter: &str) -> Vec<f64> {
    let mut lines = report
        .lines()
        .skip_while(|l| !l.contains(workload))
        .skip_while(|l| !l.contains(counter));
    let header = lines.next().unwrap_or_default();
    let end = header.find(counter).map_or(0, |i| i + counter.len());
    lines
        .take(3)
        .filter_map(|l| {
            l.get(end.saturating_sub(counter.len().max(14))..end)?
                .trim()
                .parse()
                .ok()
        })
        .collect()
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
/// its scratch servers itself: they stop because their parent died. Their
/// directories are left; the next bench removes them (and says so).
#[test]
fn a_killed_bench_leaves_no_server_running() {
    harness::need("postgres");
    harness::need("pgbench");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = harness::server_dir();
    let bin = assert_cmd::cargo::cargo_bin("dbtune");
    let mut bench = std::process::Command::new(&bin)
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
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // What SIGKILL leaves: the servers' directories, and (if the servers
    // outlive the bench, the bug this test is for) the servers.
    let (servers, _reap) = clusters_up(bench.id());
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
    // One directory per config's cluster, named after the killed bench,
    // and removed by the next bench before it starts its own.
    assert_eq!(leftovers(tmp.path()), 3, "scratch dirs of the killed bench");
    let next = std::process::Command::new(&bin)
        .args(["bench", "--profile", "low-memory", "--only", "tpcb"])
        .args([
            "--scale",
            "1",
            "--clients",
            "1",
            "--seconds",
            "1",
            "--runs",
            "1",
        ])
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&next.stderr);
    assert!(next.status.success(), "{err}");
    assert!(
        err.contains("removed 3 scratch directories of benches no longer running"),
        "{err}"
    );
    assert_eq!(leftovers(tmp.path()), 0, "scratch dirs left");
}

/// An interrupted bench (Ctrl-C, or SIGTERM from a service manager) stops
/// its servers, removes its scratch directories and cgroups itself, and
/// exits 130: a host-sized data set is gigabytes a cluster.
#[test]
fn an_interrupted_bench_stops_its_servers_and_removes_its_scratch() {
    harness::need("postgres");
    harness::need("pgbench");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let profiles = one_gib_profile_dir();
    let tmp = harness::server_dir();
    let bin = assert_cmd::cargo::cargo_bin("dbtune");
    let mut bench = std::process::Command::new(bin)
        .args(["bench", "--profile", "low-memory", "--ram", "1GiB"])
        .args(["--only", "tpcb", "--scale", "1", "--clients", "2"])
        .args(["--seconds", "60", "--runs", "1"])
        .env("DBTUNE_PROFILE_DIR", profiles.path())
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = bench.id();
    let (servers, _reap) = clusters_up(pid);
    assert_eq!(leftovers(tmp.path()), 3);
    assert_eq!(bench_cgroups(pid).len(), 3);
    // Its stderr read as it comes, so the interrupt lands inside the first
    // timed run (the loop that goes on to the next config's run).
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let said = said.clone();
        let mut stderr = bench.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stderr, &mut buf) {
                if n == 0 {
                    break;
                }
                said.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let start = std::time::Instant::now();
    while !said.lock().unwrap().contains("] run 1: ") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "no timed run began:\n{}",
            said.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SIGINT to bench alone, as `kill -INT` sends it: Ctrl-C in a terminal
    // would reach its whole process group.
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = bench.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "bench still running 60 s after SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    reader.join().unwrap();
    let err = said.lock().unwrap().clone();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("bench interrupted"), "{err}");
    // Nothing goes on after it: no run is started against the servers
    // being stopped, and none is announced.
    let after = err.split("bench interrupted").nth(1).unwrap_or_default();
    assert!(
        after.lines().skip(1).all(|l| l.trim().is_empty()),
        "bench went on after the interrupt:\n{err}"
    );
    let running: Vec<_> = servers.iter().filter(|p| alive(**p)).collect();
    assert!(running.is_empty(), "servers still running: {running:?}");
    assert_eq!(leftovers(tmp.path()), 0, "scratch dirs left\n{err}");
    assert!(
        bench_cgroups(pid).is_empty(),
        "cgroups left: {:?}",
        bench_cgroups(pid)
    );
}

/// Waits (up to 120 s) until bench `pid` runs the 3 configs' servers (every
/// config's cluster is up before the first measurement); their PIDs, and
/// what stops them and removes their directories if the test fails.
fn clusters_up(pid: u32) -> (Vec<u32>, Reap) {
    let start = std::time::Instant::now();
    let servers = loop {
        let servers: Vec<u32> = children(pid)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "postgres")
            })
            .collect();
        if servers.len() >= 3 {
            break servers;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "the bench did not start its clusters: {servers:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let reap = Reap {
        servers: servers.clone(),
        dirs: servers.iter().filter_map(|p| scratch_dir(*p)).collect(),
    };
    (servers, reap)
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

/// The directory bench's memory cgroups are created in: ours (the test's
/// and so the bench's) in the v1 memory hierarchy, as on this machine and
/// CI, or the v2 one.
fn own_memory_cgroup() -> std::path::PathBuf {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let v1 = own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, list, path) = (f.next()?, f.next()?, f.next()?);
        list.split(',').any(|c| c == "memory").then(|| {
            std::path::Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'))
        })
    });
    v1.filter(|p| p.join("memory.limit_in_bytes").exists())
        .expect("bench --ram needs the cgroup v1 memory controller at /sys/fs/cgroup/memory")
}

/// Bench's cgroups for the bench process `pid` (named dbtune-bench-PID-N).
fn bench_cgroups(pid: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!("dbtune-bench-{pid}-");
    std::fs::read_dir(own_memory_cgroup())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// The low-memory profile without its application reserves and its
/// Redis, so that it fits a 1 GiB host: bench refuses to render a profile
/// that does not fit.
fn one_gib_profile_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/low-memory.toml"),
    )
    .unwrap();
    // Without its reservations, and without its Redis: at 1 GiB the
    // work_mem floor (4 MiB) leaves no room for both.
    let mut out = String::new();
    let (mut in_reserve, mut section) = (false, "");
    for line in text.lines() {
        if line.starts_with('[') {
            in_reserve = line == "[[reserve]]";
            section = line;
        }
        if in_reserve {
            continue;
        }
        if section == "[redis]" && line == "enabled = true" {
            out.push_str("enabled = false\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(dir.path().join("low-memory.toml"), out).unwrap();
    dir
}

/// `bench --ram 1GiB`: while it runs, every scratch cluster is in a memory
/// cgroup limited to 1 GiB (read from the kernel, with the postmaster's
/// own /proc/PID/cgroup naming it); the report has each run's peak memory
/// (above zero, under the limit) and OOM kills; no cgroup is left after.
#[test]
fn bench_at_a_host_size_runs_each_cluster_in_a_cgroup_of_that_size() {
    harness::need("postgres");
    harness::need("pgbench");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let profiles = one_gib_profile_dir();
    let tmp = harness::server_dir();
    let bin = assert_cmd::cargo::cargo_bin("dbtune");
    let out_path = tmp.path().join("bench.json");
    let mut bench = std::process::Command::new(bin)
        .args([
            "bench",
            "--profile",
            "low-memory",
            "--ram",
            "1GiB",
            "--cpus",
            "1",
        ])
        .args([
            "--only",
            "tpcb,copy-index",
            "--rows",
            "20000",
            "--scale",
            "1",
        ])
        .args(["--clients", "2", "--seconds", "3", "--runs", "1", "--json"])
        .env("DBTUNE_PROFILE_DIR", profiles.path())
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = bench.id();
    // Watch the cgroups while the clusters run: 3 configs, 3 cgroups, each
    // limited to 1 GiB and holding a postgres whose /proc says so.
    let seen = watch_cgroups(
        &mut bench,
        || bench_cgroups(pid),
        |cg| {
            let Some(server) = processes_in(cg)
                .into_iter()
                .find_map(|(p, comm)| (comm == "postgres").then_some(p))
            else {
                return false;
            };
            let limit = std::fs::read_to_string(cg.join("memory.limit_in_bytes")).unwrap();
            assert_eq!(limit.trim(), (1u64 << 30).to_string(), "{}", cg.display());
            let own = std::fs::read_to_string(format!("/proc/{server}/cgroup")).unwrap();
            let name = cg.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                own.lines()
                    .any(|l| l.contains(":memory:") && l.ends_with(&name)),
                "postgres {server} is not in {name}:\n{own}"
            );
            true
        },
    );
    let err = succeeded(&mut bench);
    assert_eq!(
        seen.len(),
        3,
        "clusters seen in 1 GiB cgroups: {seen:?}\n{err}"
    );
    assert!(err.contains("bench as a host of 1 GiB, 1 CPUs"), "{err}");
    let series: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let counter = |name: &str| -> Vec<f64> {
        series
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["counter"] == name)
            .flat_map(|s| {
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
            })
            .collect()
    };
    // 3 configs x 2 workloads x 1 run.
    let peaks = counter("peak MiB");
    assert_eq!(peaks.len(), 6, "{series:#}");
    assert!(peaks.iter().all(|p| *p > 0.0 && *p <= 1024.0), "{peaks:?}");
    assert_eq!(counter("OOM kills"), vec![0.0; 6]);
    assert!(!counter("WAL B/unit").is_empty(), "{series:#}");
    // The CREATE INDEX after the COPY has counters of its own, read
    // between the two: every config's logs the index it builds (wal_level
    // replica), and its dirty page cache is read as it starts.
    let of = |metric: &str, name: &str| -> Vec<f64> {
        series
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["metric"] == metric && s["counter"] == name)
            .flat_map(|s| s["values"].as_array().unwrap().clone())
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let index_wal = of("CREATE INDEX", "WAL MiB");
    assert_eq!(index_wal.len(), 3, "{series:#}");
    assert!(index_wal.iter().all(|w| *w > 0.0), "{index_wal:?}");
    assert_eq!(of("CREATE INDEX", "dirty MiB").len(), 3, "{series:#}");
    assert_eq!(of("COPY", "dirty MiB").len(), 3, "{series:#}");
    // The machine's CPUs during each phase (TPC-B, COPY, CREATE INDEX):
    // busy, waiting on the disk and stolen by the hypervisor are shares of
    // the same time.
    let (busy, iowait, steal) = (
        counter("CPU busy %"),
        counter("iowait %"),
        counter("steal %"),
    );
    assert_eq!(busy.len(), 9, "{series:#}");
    assert!(busy.iter().all(|b| *b > 0.0 && *b <= 100.0), "{busy:?}");
    for i in 0..9 {
        assert!(
            busy[i] + iowait[i] + steal[i] <= 100.0 + 1e-9,
            "{busy:?} {iowait:?} {steal:?}"
        );
    }
    assert!(
        bench_cgroups(pid).is_empty(),
        "cgroups left: {:?}",
        bench_cgroups(pid)
    );
}

/// `bench --disk-mbps --disk-iops`: while it runs, each cluster is in a
/// blkio cgroup whose throttle the kernel reads back as asked, on the disk
/// of the scratch clusters' temp dir; the writes PostgreSQL flushes are
/// charged to it (the report's "disk write MiB" is above zero for every
/// config, so the throttle governs them); no cgroup is left after.
#[test]
fn bench_with_a_disk_limit_throttles_each_clusters_disk() {
    harness::need("postgres");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let profiles = one_gib_profile_dir();
    let tmp = harness::server_dir();
    let (major, minor) = dbtune::bench::cgroup::disk_of(tmp.path())
        .expect("the test's temp dir is on a block device");
    let bin = assert_cmd::cargo::cargo_bin("dbtune");
    let out_path = tmp.path().join("bench.json");
    let mut bench = std::process::Command::new(bin)
        .args(["bench", "--profile", "low-memory", "--ram", "1GiB"])
        .args(["--disk-mbps", "64", "--disk-iops", "2000"])
        .args(["--only", "copy-index", "--rows", "200000", "--runs", "1"])
        .arg("--json")
        .env("DBTUNE_PROFILE_DIR", profiles.path())
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = bench.id();
    let blkio = own_blkio_cgroup();
    let prefix = format!("dbtune-bench-{pid}-");
    let ours = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&blkio)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect()
    };
    let seen = watch_cgroups(&mut bench, ours, |cg| {
        if !processes_in(cg).iter().any(|(_, comm)| comm == "postgres") {
            return false;
        }
        let read = |f: &str| std::fs::read_to_string(cg.join(f)).unwrap();
        let dev = format!("{major}:{minor}");
        for (file, limit) in [
            ("blkio.throttle.write_bps_device", 64u64 << 20),
            ("blkio.throttle.read_bps_device", 64u64 << 20),
            ("blkio.throttle.write_iops_device", 2000),
            ("blkio.throttle.read_iops_device", 2000),
        ] {
            assert_eq!(read(file).trim(), format!("{dev} {limit}"), "{file}");
        }
        true
    });
    let err = succeeded(&mut bench);
    assert_eq!(
        seen.len(),
        3,
        "clusters seen in blkio cgroups: {seen:?}\n{err}"
    );
    assert!(err.contains("a disk of 64 MiB/s and 2000 IOPS"), "{err}");
    let series: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let written: Vec<f64> = series
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metric"] == "COPY" && s["counter"] == "disk write MiB")
        .flat_map(|s| s["values"].as_array().unwrap().clone())
        .map(|v| v.as_f64().unwrap())
        .collect();
    // 3 configs x 1 run of COPY: its WAL alone is several MiB, flushed by
    // the server itself.
    assert_eq!(written.len(), 3, "{series:#}");
    assert!(written.iter().all(|w| *w > 1.0), "{written:?}");
    assert!(ours().is_empty(), "blkio cgroups left: {:?}", ours());
}

/// The disk limit needs the scratch clusters on a disk: a temp dir on
/// tmpfs is an input error naming the problem, with a hint, before any
/// cluster starts.
#[test]
fn bench_disk_limit_on_tmpfs_is_an_input_error() {
    let shm = tempfile::Builder::new()
        .prefix("dbtune-test-")
        .tempdir_in("/dev/shm")
        .expect("/dev/shm, a tmpfs");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
        .args([
            "bench",
            "--ram",
            "4GiB",
            "--disk-mbps",
            "125",
            "--only",
            "tpcb",
        ])
        .env("TMPDIR", shm.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a block device"), "{err}");
    assert!(err.contains("hint: set TMPDIR"), "{err}");
    assert_eq!(std::fs::read_dir(shm.path()).unwrap().count(), 0);
}

/// The directory bench's v1 blkio cgroups are created in: ours.
fn own_blkio_cgroup() -> std::path::PathBuf {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    own.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, list, path) = (f.next()?, f.next()?, f.next()?);
            list.split(',').any(|c| c == "blkio").then(|| {
                std::path::Path::new("/sys/fs/cgroup/blkio").join(path.trim_start_matches('/'))
            })
        })
        .filter(|p| p.join("blkio.throttle.write_bps_device").exists())
        .expect("bench --disk-mbps needs the cgroup v1 blkio controller at /sys/fs/cgroup/blkio")
}

/// A process that outgrows its cgroup is killed by the kernel, and the
/// cgroup's counter, which bench reports, says so; the cgroup is removed.
#[test]
fn an_oom_kill_in_a_bench_cgroup_is_counted() {
    use dbtune::bench::cgroup::Cgroup;
    use dbtune::units::ByteSize;
    let name = format!("dbtune-bench-{}-oom-test", std::process::id());
    let cg = Cgroup::create(&name, ByteSize::mib(32), None, None).expect("a memory cgroup");
    assert_eq!(cg.oom_kills().unwrap(), 0);
    let mut perl = std::process::Command::new(harness::need("perl"));
    // 256 MiB in a string, touched: far over 32 MiB.
    perl.args(["-e", "my $x = 'a' x (256 * 1024 * 1024); print length $x"]);
    cg.enter(&mut perl, None);
    let status = perl.status().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{status}"
    );
    assert_eq!(cg.oom_kills().unwrap(), 1);
    assert!(cg.peak().unwrap() <= ByteSize::mib(32));
    let dir = cg.memory_dir.clone();
    drop(cg);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Without a writable memory cgroup (here: not root) `--ram` is refused
/// with a hint, not run on this machine's memory.
#[test]
fn bench_ram_without_a_cgroup_is_an_input_error() {
    use std::os::unix::process::CommandExt;
    let bin = assert_cmd::cargo::cargo_bin("dbtune");
    let out = std::process::Command::new(bin)
        .args(["bench", "--ram", "4GiB", "--only", "tpcb"])
        .env("DBTUNE_PROFILE_DIR", "/nonexistent/dbtune-profiles")
        .env("NO_COLOR", "1")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--ram needs a memory cgroup of its own"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

/// The profiles' own workloads (issue #24), tiny: COPY streams and more
/// pgbench clients than max_connections through the profile's PgBouncer,
/// the profile's Redis filled beside each cluster, and a write run sized
/// from the defaults' WAL rate. While it runs, each config's host-sized
/// cgroup holds its postgres, its pgbouncer and its redis-server; the
/// report has the new workloads with the pooler's and Redis's counters,
/// and nothing is left after.
#[test]
fn bench_runs_pooled_workloads_and_redis_inside_each_hosts_cgroup() {
    harness::need("postgres");
    harness::need("pgbench");
    harness::need("pgbouncer");
    harness::need("redis-server");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = harness::server_dir();
    let bin = assert_cmd::cargo::cargo_bin("dbtune");
    let out_path = tmp.path().join("report.txt");
    // low-memory at 4 GiB renders max_connections 33 and a pool of 20
    // server connections (25 with the reserve): 40 pooled clients are more
    // than the server takes. The write run's 16 go straight to it after
    // the pooled runs: with the pool's 20 connections still open (idle
    // until server_idle_timeout) they are more than 33, so they are let
    // in only because bench closes the pool's connections after each
    // pooled run.
    let mut bench = std::process::Command::new(bin)
        .args(["bench", "--profile", "low-memory", "--ram", "4GiB"])
        .args(["--only", "pooled-copy,indexed-copy,pooled-tpcb,write"])
        .arg("--redis")
        .args(["--redis-writes", "200"])
        .args(["--write-auto", "--write-seconds", "4"])
        .args(["--rows", "20000", "--streams", "3", "--scale", "1"])
        .args(["--clients", "16", "--pooled-clients", "40"])
        .args(["--seconds", "2", "--runs", "1"])
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = bench.id();
    let seen = watch_cgroups(
        &mut bench,
        || bench_cgroups(pid),
        |cg| {
            let c = processes_in(cg);
            ["postgres", "pgbouncer", "redis-server"]
                .iter()
                .all(|want| c.iter().any(|(_, have)| have == want))
        },
    );
    let err = succeeded(&mut bench);
    assert_eq!(
        seen.len(),
        3,
        "cgroups seen holding postgres, pgbouncer and redis-server: {seen:?}\n{err}"
    );
    let report = std::fs::read_to_string(&out_path).unwrap();
    for line in [
        "3 COPY streams through PgBouncer into an indexed table (seconds",
        "CREATE INDEX after the pooled COPY (seconds",
        "3 COPY streams through PgBouncer into a table with a random-key index (seconds",
        "pgbench TPC-B, 40 clients through PgBouncer (simple protocol) (transactions/s",
        "writes, checkpoints; the defaults wrote ",
        "max waiting",
        "wait ms/xact",
        "redis MiB",
        "redis RSS MiB",
    ] {
        assert!(report.contains(line), "no `{line}` in:\n{report}\n{err}");
    }
    assert!(!report.contains("failed"), "{report}\n{err}");
    // The table of indexed-copy has its second index while it is loaded:
    // every row writes a record for it too.
    let wal_per_row = |workload: &str| counter_column(&report, workload, "WAL B/unit");
    let (plain, indexed) = (
        wal_per_row("into an indexed table (seconds"),
        wal_per_row("into a table with a random-key index (seconds"),
    );
    assert_eq!((plain.len(), indexed.len()), (3, 3), "{report}");
    for (p, i) in plain.iter().zip(&indexed) {
        assert!(
            i > &(p + 30.0),
            "WAL a row: {p} without, {i} with the index\n{report}"
        );
    }
    // The write run's length and its reason are said before it runs.
    assert!(err.contains("write run: "), "{err}");
    // Redis was at its maxmemory (160 MiB at 4 GiB) in every config's run.
    let redis_mib = counter_column(&report, "through PgBouncer (simple protocol)", "redis MiB");
    assert_eq!(redis_mib.len(), 3, "{report}");
    assert!(
        redis_mib.iter().all(|m| *m > 90.0),
        "{redis_mib:?}\n{report}"
    );
    // Its clients wrote during every run, never faster than asked: the
    // pacing bounds the rate from above whatever this machine's load
    // (one pipeline of 4 keys ahead of the schedule at most).
    let writes = counter_column(
        &report,
        "through PgBouncer (simple protocol)",
        "redis writes/s",
    );
    assert_eq!(writes.len(), 3, "{report}");
    assert!(
        writes.iter().all(|w| *w > 0.0 && *w <= 220.0),
        "{writes:?}\n{report}"
    );
    assert!(
        bench_cgroups(pid).is_empty(),
        "cgroups left: {:?}",
        bench_cgroups(pid)
    );
    assert_eq!(leftovers(tmp.path()), 0, "scratch dirs left behind");
}

/// `--hold-reserves`: the profile's `[[reserve]]`s (low-memory's API
/// workers and Celery worker, 1792 MiB) are held resident inside each
/// config's 4 GiB cgroup by a process of bench's, so PostgreSQL gets what
/// the host leaves it; the holders are gone when bench is.
#[test]
fn bench_holds_the_profiles_reserves_in_each_hosts_cgroup() {
    harness::need("postgres");
    harness::need("pgbench");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = harness::server_dir();
    let out_path = tmp.path().join("report.txt");
    let reserves: u64 = 1792 << 20;
    let mut bench = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
        .args(["bench", "--profile", "low-memory", "--ram", "4GiB"])
        .args(["--hold-reserves", "--only", "tpcb", "--scale", "1"])
        .args(["--clients", "2", "--seconds", "1", "--runs", "1"])
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = bench.id();
    let rss = |p: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb << 10)
    };
    let mut holders = Vec::new();
    let seen = watch_cgroups(
        &mut bench,
        || bench_cgroups(pid),
        |cg| {
            let usage: u64 = std::fs::read_to_string(cg.join("memory.usage_in_bytes"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            let holder = processes_in(cg)
                .into_iter()
                .find(|(p, name)| name == "dbtune" && rss(*p) >= reserves);
            match holder {
                Some((p, _)) if usage >= reserves => {
                    holders.push(p);
                    true
                }
                _ => false,
            }
        },
    );
    let err = succeeded(&mut bench);
    assert_eq!(
        seen.len(),
        3,
        "cgroups seen holding 1792 MiB in a process of bench's: {seen:?}\n{err}"
    );
    assert!(
        err.contains("1792 MiB of the profile's reserves held"),
        "{err}"
    );
    // The cgroup's peak in each run counts the reserves with PostgreSQL.
    let report = std::fs::read_to_string(&out_path).unwrap();
    let peaks = counter_column(&report, "pgbench TPC-B", "peak MiB");
    assert_eq!(peaks.len(), 3, "{report}");
    assert!(
        peaks.iter().all(|p| *p >= 1792.0 && *p <= 4096.0),
        "{peaks:?}\n{report}"
    );
    assert!(
        holders.iter().all(|p| !alive(*p)),
        "holders left: {holders:?}"
    );
    assert!(bench_cgroups(pid).is_empty(), "cgroups left");
    assert_eq!(leftovers(tmp.path()), 0, "scratch dirs left behind");
}

/// `--hold-reserves` with a profile that has no `[[reserve]]` is an input
/// error, before any cluster starts.
#[test]
fn holding_the_reserves_of_a_profile_without_any_is_an_input_error() {
    let tmp = harness::server_dir();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
        .args(["bench", "--profile", "postgres-only", "--ram", "4GiB"])
        .args(["--hold-reserves", "--only", "tpcb"])
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs a profile with [[reserve]]"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(leftovers(tmp.path()), 0);
}

/// A server that cannot take `--clients` straight gets them through the
/// profile's PgBouncer, as its host would; a server that cannot take the
/// profile's pool gets the pool lowered to fit. Both are said beside the
/// numbers, and no run fails. Before, the first failed every run with
/// "too many clients", the second stopped the whole bench (exit 2): the
/// bulk-ingest profile at 8 GiB and larger, or powerhouse at 12 GiB, with
/// PGTune's or the defaults' max_connections below its pool.
#[test]
fn clients_a_server_cannot_take_go_through_the_profiles_pgbouncer_its_pool_fitted() {
    harness::need("postgres");
    harness::need("pgbench");
    harness::need("pgbouncer");
    let _one = ONE_BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = harness::server_dir();
    let tiny = tmp.path().join("tiny.conf");
    std::fs::write(&tiny, "max_connections = 6\n").unwrap();
    // low-memory on this machine: max_connections 33 (30 for clients) and
    // a pool of 25 server connections (20 + 5 in reserve); `tiny` takes 3.
    let out = harness::dbtune()
        .args(["bench", "--profile", "low-memory", "--config"])
        .arg(format!("tiny={}", tiny.display()))
        .args(["--only", "tpcb,pooled-tpcb", "--scale", "1"])
        .args(["--clients", "40", "--pooled-clients", "40"])
        .args(["--seconds", "2", "--runs", "1"])
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}\n{err}");
    assert!(!report.contains("failed"), "{report}\n{err}");
    let table = |title: &str| -> String {
        report
            .split("\n\n")
            .find(|t| t.contains(title))
            .unwrap_or_else(|| panic!("no `{title}` table in:\n{report}"))
            .to_string()
    };
    let direct = table("pgbench TPC-B (transactions/s");
    let routed = "its 40 clients through PgBouncer: its max_connections";
    for line in [
        "  dbtune low-memory: its 40 clients through PgBouncer: its max_connections 33 less 3 reserved for superusers take 30 straight\n",
        "  tiny: its 40 clients through PgBouncer: its max_connections 6 less 3 reserved for superusers take 3 straight; PgBouncer's pool lowered from the profile's 25 server connections to 3 (pool 3 + reserve 0)",
    ] {
        assert!(direct.contains(line), "no `{line}` in:\n{direct}");
    }
    // The defaults' 100 take 40 straight: nothing to say.
    assert!(!direct.contains("  defaults: "), "{direct}");
    assert_eq!(direct.matches(routed).count(), 2, "{direct}");
    // The pooled run: only the pool that did not fit is said.
    let pooled = table("40 clients through PgBouncer (simple protocol)");
    assert!(
        pooled.contains(
            "  tiny: PgBouncer's pool lowered from the profile's 25 server connections to 3"
        ),
        "{pooled}"
    );
    assert!(!pooled.contains(routed), "{pooled}");
    assert!(
        !pooled
            .lines()
            .any(|l| l.starts_with("  dbtune low-memory: ") && l.contains("PgBouncer")),
        "{pooled}"
    );
    assert_eq!(leftovers(tmp.path()), 0, "scratch dirs left behind");
}

/// bench's clients of a queue's Redis (noeviction, full) go on where the
/// last run stopped: after a run has consumed more keys than the Redis
/// holds, the next run's consumer still finds the oldest keys and its
/// writes are taken. (Each run used to start its consumer at key 0: from
/// the second run on it deleted keys long gone, and once it had freed
/// what little it found, every write was refused. low-memory's Redis at
/// 3 GiB took 334 writes a second of the 1000 asked.) Each run must get
/// 3 times the Redis's keys written, counted by Redis; a stalled loop
/// never does, and the minute allowed is for a slow machine, not a rate.
#[test]
fn a_full_queue_redis_takes_the_writes_asked_run_after_run() {
    let bin = harness::need("redis-server");
    let conf = "maxmemory 4mb\nmaxmemory-policy noeviction\nsave \"\"\nappendonly no\n";
    let cache = dbtune::bench::services::Cache::start_in(&bin, conf, None).unwrap();
    cache.fill().unwrap();
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{}/", cache.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let held: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(held > 500, "the Redis holds {held} keys");
    // SETs Redis carried out (its refusals are rejected_calls, not calls).
    let sets = |con: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
            .and_then(|v| v.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    for run in 1..=3 {
        let before = sets(&mut con);
        let churn = cache.churn(4000).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while sets(&mut con) - before < 3 * held && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        churn.finish();
        let written = sets(&mut con) - before;
        assert!(
            written >= 3 * held,
            "run {run}: {written} keys written in a minute, the Redis holding {held}"
        );
        let now: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert!(now > held / 2, "run {run}: {now} keys left of {held}");
    }
}
