//! bench's scratch directories, and what happens to them when bench does
//! not end by itself. A directory is named after the bench that made it
//! (`dbtune-bench-PID-…`), so one whose bench is gone (killed with SIGKILL,
//! the machine rebooted) is found and removed by the next bench; an
//! interrupt (Ctrl-C, SIGTERM) stops bench's servers and removes its
//! directories and cgroups before it exits. A data set sized to a host is
//! gigabytes a cluster: an interrupted bench must not leave it in /tmp.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

const PREFIX: &str = "dbtune-bench-";

/// Set once an interrupt is being handled: no new scratch directory.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// A new scratch directory in the temp dir, named after this bench.
pub fn tempdir() -> Result<TempDir> {
    if STOPPING.load(Ordering::SeqCst) {
        bail!("bench is stopping (interrupted)");
    }
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .tempdir()
        .context("cannot make a scratch directory")
}

/// The PID of the bench that made scratch directory `name`, if it is one.
fn owner(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

fn running(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Bytes of the files under `path` (not following links).
fn size(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|d| d.flatten().map(|e| size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// The scratch directories in `dir` that `pred` picks by their bench's PID.
fn scratch_dirs(dir: &Path, pred: impl Fn(u32) -> bool) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter(|e| owner(&e.file_name().to_string_lossy()).is_some_and(&pred))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the scratch directories in `dir` whose bench is no longer
/// running; how many and their bytes. A directory whose PID is running
/// (another bench, or an unrelated process that took the PID) is kept.
pub fn remove_stale(dir: &Path) -> (usize, u64) {
    let mut removed = (0, 0);
    for d in scratch_dirs(dir, |pid| !running(pid)) {
        let bytes = size(&d);
        if fs::remove_dir_all(&d).is_ok() {
            removed.0 += 1;
            removed.1 += bytes;
        }
    }
    removed
}

/// Whether an interrupt is being handled.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// On SIGINT or SIGTERM: stop this bench's servers and clients, remove its
/// scratch directories and cgroups, exit 130. The main thread may be
/// waiting on any of them; it finds them gone and unwinds, and
/// [`wait_if_stopping`] keeps it from exiting first.
pub fn on_interrupt() -> Result<()> {
    ctrlc::set_handler(|| {
        STOPPING.store(true, Ordering::SeqCst);
        eprintln!("bench interrupted: stopping its servers and removing its scratch directories");
        let me = std::process::id();
        stop_children(me);
        for d in scratch_dirs(&std::env::temp_dir(), |pid| pid == me) {
            let _ = fs::remove_dir_all(d);
        }
        super::cgroup::remove_own();
        std::process::exit(130);
    })
    .context("cannot handle interrupts")
}

/// Called when bench returns: if an interrupt is being handled, waits for
/// its handler to clean up and exit.
pub fn wait_if_stopping() {
    while stopping() {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// SIGINT to every child of `pid` (PostgreSQL's fast shutdown, Redis's
/// and PgBouncer's clean exit, pgbench's stop), again to any started
/// since, SIGKILL to what is left after 15 s; returns once none runs or
/// after 20 s.
fn stop_children(pid: u32) {
    let start = Instant::now();
    let mut signalled = Vec::new();
    loop {
        let kids = children(pid);
        if kids.is_empty() || start.elapsed() > Duration::from_secs(20) {
            return;
        }
        for k in kids {
            let late = start.elapsed() > Duration::from_secs(15);
            if late || !signalled.contains(&k) {
                let sig = if late { libc::SIGKILL } else { libc::SIGINT };
                // SAFETY: kill(2) on a child of this process.
                unsafe { libc::kill(k as libc::pid_t, sig) };
                signalled.push(k);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The running (not exited) children of `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            // "pid (comm) state ppid ...": the comm may hold spaces.
            let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut f = rest.split_whitespace();
            let state = f.next();
            let ppid = f.next().and_then(|v| v.parse::<u32>().ok());
            ppid == Some(pid) && state != Some("Z")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_dir_names_its_bench() {
        assert_eq!(owner("dbtune-bench-4242-a1B2c3"), Some(4242));
        assert_eq!(owner("dbtune-bench-probe-4242"), None);
        // Directories of benches before the PID was in the name, and others.
        assert_eq!(owner("dbtune-bench-a1B2c3"), None);
        assert_eq!(owner("dbtune-prove-4242-x"), None);
        let d = tempdir().unwrap();
        let name = d.path().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(owner(&name), Some(std::process::id()));
    }

    #[test]
    fn stale_scratch_dirs_go_and_running_benches_keep_theirs() {
        let tmp = tempfile::tempdir().unwrap();
        // PIDs above the kernel's limit (4194304) run nowhere.
        let dead = tmp.path().join("dbtune-bench-4999999-abc");
        fs::create_dir_all(dead.join("data/base")).unwrap();
        fs::write(dead.join("data/base/1"), vec![0u8; 3000]).unwrap();
        let alive = tmp
            .path()
            .join(format!("dbtune-bench-{}-def", std::process::id()));
        fs::create_dir(&alive).unwrap();
        let old_style = tmp.path().join("dbtune-bench-xyz");
        fs::create_dir(&old_style).unwrap();
        let file = tmp.path().join("dbtune-bench-4999998-file");
        fs::write(&file, "not a directory").unwrap();
        assert_eq!(remove_stale(tmp.path()), (1, 3000));
        assert!(!dead.exists());
        assert!(alive.exists() && old_style.exists() && file.exists());
    }
}
