//! A memory cgroup the size of the host bench pretends to be (`--ram`),
//! CPU-limited when asked (`--cpus`), that a scratch server runs inside.
//!
//! The page cache a process fills is charged to its memory cgroup (v1 and
//! v2 alike), so a cluster inside one competes for the host's RAM with its
//! own data, as on the host: the 24 GiB of this machine no longer hide
//! shared_buffers. cgroup v2 is used where the machine delegates the memory
//! controller to us, v1 otherwise. The cgroups are created under our own
//! (so a limit on us still holds) and removed on drop, once the processes
//! in them are gone.

use std::ffi::CString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::units::ByteSize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A cgroup bench created: the memory one, and for v1 the CPU one beside it.
#[derive(Debug)]
pub struct Cgroup {
    pub version: Version,
    pub memory_dir: PathBuf,
    cpu_dir: Option<PathBuf>,
    pub limit: ByteSize,
    pub cpus: Option<u32>,
}

/// (fstype, mount point, options) of each cgroup mount.
fn cgroup_mounts() -> Vec<(String, PathBuf, Vec<String>)> {
    let text = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && (f[2] == "cgroup" || f[2] == "cgroup2")).then(|| {
                (
                    f[2].to_string(),
                    PathBuf::from(f[1]),
                    f[3].split(',').map(String::from).collect(),
                )
            })
        })
        .collect()
}

/// Our own cgroup's path in the v1 hierarchy of `controller`, or in v2 for "".
fn own_path(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, list, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if controller.is_empty() {
            list.is_empty()
        } else {
            list.split(',').any(|c| c == controller)
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

/// The directory new child cgroups go in for `controller` (v1), or the v2
/// one where the memory controller is delegated to its children.
fn parent_dir(version: Version, controller: &str) -> Option<PathBuf> {
    let mounts = cgroup_mounts();
    match version {
        Version::V2 => {
            let (_, mount, _) = mounts.iter().find(|(t, _, _)| t == "cgroup2")?;
            let dir = mount.join(own_path("")?);
            let delegated = |d: &Path| {
                fs::read_to_string(d.join("cgroup.subtree_control"))
                    .is_ok_and(|s| s.split_whitespace().any(|c| c == controller))
            };
            // Enabling it is refused when the cgroup holds processes itself;
            // then there is no v2 to use.
            if !delegated(&dir) {
                let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{controller}"));
            }
            delegated(&dir).then_some(dir)
        }
        Version::V1 => {
            let (_, mount, _) = mounts
                .iter()
                .find(|(t, _, o)| t == "cgroup" && o.iter().any(|c| c == controller))?;
            Some(mount.join(own_path(controller)?))
        }
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).with_context(|| format!("cannot write `{value}` to {}", path.display()))
}

impl Cgroup {
    /// Creates cgroup `name` limited to `limit` of memory (swap included,
    /// where the kernel accounts it) and `cpus` CPUs; an error saying why
    /// not when the machine has no writable memory cgroup.
    pub fn create(name: &str, limit: ByteSize, cpus: Option<u32>) -> Result<Cgroup> {
        let version = if parent_dir(Version::V2, "memory").is_some() {
            Version::V2
        } else if parent_dir(Version::V1, "memory").is_some() {
            Version::V1
        } else {
            bail!(
                "no memory cgroup controller is mounted (neither a delegated cgroup v2 one nor v1)"
            )
        };
        let parent = parent_dir(version, "memory").expect("checked");
        remove_stale(&parent);
        if let Some(cpu) = parent_dir(Version::V1, "cpu").filter(|_| version == Version::V1) {
            remove_stale(&cpu);
        }
        let memory_dir = parent.join(name);
        fs::create_dir(&memory_dir)
            .with_context(|| format!("cannot create the memory cgroup {}", memory_dir.display()))?;
        let mut cg = Cgroup {
            version,
            memory_dir,
            cpu_dir: None,
            limit,
            cpus,
        };
        let bytes = limit.bytes().to_string();
        match version {
            Version::V2 => {
                write(&cg.memory_dir.join("memory.max"), &bytes)?;
                let _ = fs::write(cg.memory_dir.join("memory.swap.max"), "0");
            }
            Version::V1 => {
                write(&cg.memory_dir.join("memory.limit_in_bytes"), &bytes)?;
                // memory+swap can only be set after memory, and is absent
                // without swap accounting.
                let memsw = cg.memory_dir.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    let _ = fs::write(memsw, &bytes);
                }
            }
        }
        if let Some(n) = cpus {
            // The CFS quota: n CPUs' worth of time every 100 ms.
            let period = 100_000u64;
            let quota = n as u64 * period;
            match version {
                Version::V2 => {
                    if parent_dir(Version::V2, "cpu").is_none() {
                        bail!("the cgroup v2 cpu controller is not delegated here");
                    }
                    write(&cg.memory_dir.join("cpu.max"), &format!("{quota} {period}"))?;
                }
                Version::V1 => {
                    let dir = parent_dir(Version::V1, "cpu")
                        .context("no cgroup v1 cpu controller is mounted")?
                        .join(name);
                    fs::create_dir(&dir).with_context(|| {
                        format!("cannot create the cpu cgroup {}", dir.display())
                    })?;
                    cg.cpu_dir = Some(dir.clone());
                    write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                    write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
            }
        }
        Ok(cg)
    }

    /// The cgroup.procs files a process must join.
    fn procs_files(&self) -> Vec<PathBuf> {
        std::iter::once(&self.memory_dir)
            .chain(&self.cpu_dir)
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Makes `command` start inside this cgroup, then run as `ids` (when
    /// root runs it as the postgres user): the child joins before it
    /// changes user (joining needs root) and before exec, so everything it
    /// allocates and every process it forks is charged here. The user is
    /// changed here, not by `Command::uid`, which would come first.
    pub fn enter(&self, command: &mut Command, ids: Option<(u32, u32)>) {
        let files: Vec<CString> = self
            .procs_files()
            .iter()
            .map(|p| CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL in a path"))
            .collect();
        // SAFETY: open, write, close, setgroups, setgid and setuid are
        // async-signal-safe; nothing allocates between fork and exec.
        unsafe {
            command.pre_exec(move || {
                for f in &files {
                    let fd = libc::open(f.as_ptr(), libc::O_WRONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // "0": the process writing.
                    let n = libc::write(fd, b"0\n".as_ptr().cast(), 2);
                    libc::close(fd);
                    if n < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some((uid, gid)) = ids {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    /// PIDs of the processes in the memory cgroup.
    pub fn pids(&self) -> Vec<u32> {
        fs::read_to_string(self.memory_dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    fn read(&self, file: &str) -> Result<String> {
        let p = self.memory_dir.join(file);
        fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))
    }

    /// The most memory (page cache included) charged at once since the
    /// last [`Cgroup::reset_peak`] (v1) or since creation (v2 before Linux
    /// 6.12, which cannot reset it).
    pub fn peak(&self) -> Result<ByteSize> {
        let file = match self.version {
            Version::V1 => "memory.max_usage_in_bytes",
            Version::V2 => "memory.peak",
        };
        let v = self.read(file)?;
        Ok(ByteSize(v.trim().parse().context("peak memory")?))
    }

    /// Starts a new peak from the current usage.
    pub fn reset_peak(&self) {
        let file = match self.version {
            Version::V1 => "memory.max_usage_in_bytes",
            Version::V2 => "memory.peak",
        };
        let _ = fs::write(self.memory_dir.join(file), "0");
    }

    /// Processes the kernel's OOM killer killed in this cgroup so far.
    pub fn oom_kills(&self) -> Result<u64> {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = self.read(file)?;
        oom_kills_in(&text).with_context(|| format!("no oom_kill line in {file} (kernel < 4.13?)"))
    }
}

/// Removes the empty cgroups a bench killed with SIGKILL left in `parent`
/// (named `dbtune-bench-PID-...` after a PID that no longer runs): its
/// servers stopped with it, its Drop never ran.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("dbtune-bench-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let empty =
            fs::read_to_string(e.path().join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty());
        if empty && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir(e.path());
        }
    }
}

/// The `oom_kill N` line of memory.oom_control (v1) or memory.events (v2).
pub fn oom_kills_in(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == "oom_kill").then(|| v.trim().parse().ok())?
    })
}

impl Drop for Cgroup {
    /// Removes the cgroups once their processes are gone (a cgroup with
    /// processes cannot be removed): the server was stopped before this
    /// runs; anything still inside after 10 s was started by bench in it
    /// and is killed.
    fn drop(&mut self) {
        let start = Instant::now();
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                for p in pids {
                    // SAFETY: kill(2) on a PID in the cgroup bench created.
                    unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
                }
            }
            if start.elapsed() > Duration::from_secs(20) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for d in self.cpu_dir.iter().chain(std::iter::once(&self.memory_dir)) {
            // rmdir, not remove_dir_all: a cgroup's files cannot be deleted.
            let _ = fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kills_are_read_from_v1_oom_control_and_v2_events() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(oom_kills_in(v1), Some(3));
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kills_in(v2), Some(2));
        // A kernel before 4.13 has no counter: unknown, not zero.
        assert_eq!(oom_kills_in("oom_kill_disable 0\nunder_oom 0\n"), None);
    }
}
