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

/// A cgroup bench created: the memory one, and for v1 the CPU and blkio
/// ones beside it.
#[derive(Debug)]
pub struct Cgroup {
    pub version: Version,
    pub memory_dir: PathBuf,
    cpu_dir: Option<PathBuf>,
    blkio_dir: Option<PathBuf>,
    pub limit: ByteSize,
    pub cpus: Option<u32>,
    pub disk: Option<Throttle>,
}

/// The disk of the host bench runs as (`--disk-mbps`, `--disk-iops`): a
/// throttle on the block device the scratch clusters live on, reads and
/// writes each, as a cloud volume's provisioned rate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLimit {
    pub bytes_per_sec: Option<u64>,
    pub iops: Option<u64>,
}

/// A [`DiskLimit`] on one block device (major, minor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    pub limit: DiskLimit,
    pub device: (u32, u32),
}

impl DiskLimit {
    /// The v1 files (blkio.throttle.*) and the lines written to them.
    fn v1_lines(&self, (major, minor): (u32, u32)) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(b) = self.bytes_per_sec {
            out.push((
                "blkio.throttle.read_bps_device",
                format!("{major}:{minor} {b}"),
            ));
            out.push((
                "blkio.throttle.write_bps_device",
                format!("{major}:{minor} {b}"),
            ));
        }
        if let Some(n) = self.iops {
            out.push((
                "blkio.throttle.read_iops_device",
                format!("{major}:{minor} {n}"),
            ));
            out.push((
                "blkio.throttle.write_iops_device",
                format!("{major}:{minor} {n}"),
            ));
        }
        out
    }

    /// The v2 io.max line.
    fn v2_line(&self, (major, minor): (u32, u32)) -> String {
        let mut line = format!("{major}:{minor}");
        if let Some(b) = self.bytes_per_sec {
            line.push_str(&format!(" rbps={b} wbps={b}"));
        }
        if let Some(n) = self.iops {
            line.push_str(&format!(" riops={n} wiops={n}"));
        }
        line
    }
}

/// glibc's split of a dev_t into (major, minor).
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The whole disk holding `path`'s filesystem, as (major, minor): the
/// throttles take a disk, not a partition. An error where the filesystem
/// has no block device (tmpfs, overlay): there is no disk to throttle.
pub fn disk_of(path: &Path) -> Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .dev();
    let (major, minor) = split_dev(dev);
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if !sys.exists() {
        bail!(
            "{} is on device {major}:{minor}, which is not a block device (tmpfs, overlay?): no disk to throttle",
            path.display()
        );
    }
    if !sys.join("partition").exists() {
        return Ok((major, minor));
    }
    let parent = fs::read_to_string(sys.join("../dev"))
        .with_context(|| format!("cannot read the disk of partition {major}:{minor}"))?;
    let (a, b) = parent
        .trim()
        .split_once(':')
        .context("a disk's dev file is MAJOR:MINOR")?;
    Ok((a.parse()?, b.parse()?))
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
    pub fn create(
        name: &str,
        limit: ByteSize,
        cpus: Option<u32>,
        disk: Option<Throttle>,
    ) -> Result<Cgroup> {
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
            blkio_dir: None,
            limit,
            cpus,
            disk,
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
        if let Some(t) = disk {
            match version {
                Version::V2 => {
                    if parent_dir(Version::V2, "io").is_none() {
                        bail!("the cgroup v2 io controller is not delegated here");
                    }
                    write(&cg.memory_dir.join("io.max"), &t.limit.v2_line(t.device))?;
                }
                Version::V1 => {
                    let parent = parent_dir(Version::V1, "blkio")
                        .context("no cgroup v1 blkio controller is mounted")?;
                    remove_stale(&parent);
                    let dir = parent.join(name);
                    fs::create_dir(&dir).with_context(|| {
                        format!("cannot create the blkio cgroup {}", dir.display())
                    })?;
                    cg.blkio_dir = Some(dir.clone());
                    for (file, line) in t.limit.v1_lines(t.device) {
                        write(&dir.join(file), &line)?;
                    }
                }
            }
        }
        Ok(cg)
    }

    /// The cgroup.procs files a process must join.
    fn procs_files(&self) -> Vec<PathBuf> {
        std::iter::once(&self.memory_dir)
            .chain(&self.cpu_dir)
            .chain(&self.blkio_dir)
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
        self.bytes("memory.max_usage_in_bytes", "memory.peak")
    }

    /// The memory (page cache included) charged now.
    pub fn usage(&self) -> Result<ByteSize> {
        self.bytes("memory.usage_in_bytes", "memory.current")
    }

    /// The number of bytes in the v1 or v2 file of the memory cgroup.
    fn bytes(&self, v1: &str, v2: &str) -> Result<ByteSize> {
        let file = match self.version {
            Version::V1 => v1,
            Version::V2 => v2,
        };
        let v = self.read(file)?;
        Ok(ByteSize(
            v.trim()
                .parse()
                .with_context(|| format!("bytes in {file}"))?,
        ))
    }

    /// Starts a new peak from the current usage.
    pub fn reset_peak(&self) {
        let file = match self.version {
            Version::V1 => "memory.max_usage_in_bytes",
            Version::V2 => "memory.peak",
        };
        let _ = fs::write(self.memory_dir.join(file), "0");
    }

    /// Bytes read from and written to the throttled disk by this cgroup's
    /// processes so far: None without a disk limit. On v1 the kernel
    /// charges what a process submits itself (its reads, and the writes
    /// its fsync, sync_file_range and O_DIRECT push out: PostgreSQL's WAL
    /// flushes and checkpoint syncs), not the background writeback of the
    /// kernel's flusher threads; v2 charges that too.
    pub fn disk_bytes(&self) -> Option<(u64, u64)> {
        let device = self.disk?.device;
        let text = match (&self.blkio_dir, self.version) {
            (Some(dir), Version::V1) => {
                fs::read_to_string(dir.join("blkio.throttle.io_service_bytes")).ok()?
            }
            (None, Version::V2) => self.read("io.stat").ok()?,
            _ => return None,
        };
        // A device nothing was done to yet has no line.
        Some(disk_bytes_in(&text, device).unwrap_or((0, 0)))
    }

    /// Page cache charged to this cgroup that is dirty or being written
    /// back now, bytes: what a later phase's reclaim or fsync has to wait
    /// for (v1 memory.stat `dirty` + `writeback`, v2 `file_dirty` +
    /// `file_writeback`).
    pub fn dirty(&self) -> Option<u64> {
        dirty_in(&self.read("memory.stat").ok()?, self.version)
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

/// Dirty and under-writeback bytes in a memory.stat of `version`.
fn dirty_in(text: &str, version: Version) -> Option<u64> {
    let (dirty, writeback) = match version {
        Version::V1 => ("dirty", "writeback"),
        Version::V2 => ("file_dirty", "file_writeback"),
    };
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
    };
    Some(field(dirty)? + field(writeback)?)
}

/// (read, written) bytes of device `dev` in v1's
/// blkio.throttle.io_service_bytes ("8:0 Read 4096" lines) or v2's io.stat
/// ("8:0 rbytes=4096 wbytes=0 ..."); None where the device has no line.
pub fn disk_bytes_in(text: &str, (major, minor): (u32, u32)) -> Option<(u64, u64)> {
    let dev = format!("{major}:{minor}");
    let (mut read, mut written) = (None, None);
    for l in text.lines() {
        let mut f = l.split_whitespace();
        if f.next() != Some(dev.as_str()) {
            continue;
        }
        for field in f.by_ref() {
            match field.split_once('=') {
                Some(("rbytes", v)) => read = v.parse().ok(),
                Some(("wbytes", v)) => written = v.parse().ok(),
                _ => {}
            }
        }
        let mut f = l.split_whitespace().skip(1);
        match (f.next(), f.next().and_then(|v| v.parse().ok())) {
            (Some("Read"), Some(v)) => read = Some(v),
            (Some("Write"), Some(v)) => written = Some(v),
            _ => {}
        }
    }
    Some((read?, written?))
}

/// Removes the empty cgroups a bench killed with SIGKILL left in `parent`
/// (named `dbtune-bench-PID-...` after a PID that no longer runs): its
/// servers stopped with it, its Drop never ran.
fn remove_stale(parent: &Path) {
    remove_where(parent, |pid| !Path::new(&format!("/proc/{pid}")).exists());
}

/// Removes the empty bench cgroups under `parent` whose bench's PID `pred`
/// picks; the ones left.
fn remove_where(parent: &Path, pred: impl Fn(u32) -> bool) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let mut left = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name
            .strip_prefix("dbtune-bench-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(&pred);
        if !ours {
            continue;
        }
        let empty =
            fs::read_to_string(e.path().join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty());
        // rmdir, not remove_dir_all: a cgroup's files cannot be deleted.
        if !(empty && fs::remove_dir(e.path()).is_ok()) {
            left += 1;
        }
    }
    left
}

/// Removes this bench's cgroups, for an interrupted bench whose servers
/// were stopped (their last processes may take a moment to leave): tries
/// for up to 5 s.
pub fn remove_own() {
    let me = std::process::id();
    let parents: Vec<PathBuf> = [
        parent_dir(Version::V2, "memory"),
        parent_dir(Version::V1, "memory"),
        parent_dir(Version::V1, "cpu"),
        parent_dir(Version::V1, "blkio"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let start = Instant::now();
    while parents
        .iter()
        .map(|p| remove_where(p, |pid| pid == me))
        .sum::<usize>()
        > 0
        && start.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(100));
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
        for d in self
            .cpu_dir
            .iter()
            .chain(&self.blkio_dir)
            .chain(std::iter::once(&self.memory_dir))
        {
            // rmdir, not remove_dir_all: a cgroup's files cannot be deleted.
            let _ = fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_page_cache_is_read_from_v1_and_v2_memory_stat() {
        // v1 also has total_dirty (the hierarchy's): not the cgroup's own.
        let v1 = "cache 4096\ndirty 8192\nwriteback 4096\ntotal_dirty 99999\n";
        assert_eq!(dirty_in(v1, Version::V1), Some(12288));
        let v2 = "anon 1\nfile_dirty 40960\nfile_writeback 0\n";
        assert_eq!(dirty_in(v2, Version::V2), Some(40960));
        assert_eq!(dirty_in(v2, Version::V1), None);
        assert_eq!(
            dirty_in("file_dirty x\nfile_writeback 0\n", Version::V2),
            None
        );
    }

    #[test]
    fn oom_kills_are_read_from_v1_oom_control_and_v2_events() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(oom_kills_in(v1), Some(3));
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kills_in(v2), Some(2));
        // A kernel before 4.13 has no counter: unknown, not zero.
        assert_eq!(oom_kills_in("oom_kill_disable 0\nunder_oom 0\n"), None);
    }

    #[test]
    fn a_disk_limit_is_written_as_each_cgroup_version_reads_it() {
        let both = DiskLimit {
            bytes_per_sec: Some(131_072_000),
            iops: Some(3000),
        };
        assert_eq!(
            both.v2_line((254, 0)),
            "254:0 rbps=131072000 wbps=131072000 riops=3000 wiops=3000"
        );
        assert_eq!(
            both.v1_lines((8, 16)),
            vec![
                (
                    "blkio.throttle.read_bps_device",
                    "8:16 131072000".to_string()
                ),
                (
                    "blkio.throttle.write_bps_device",
                    "8:16 131072000".to_string()
                ),
                ("blkio.throttle.read_iops_device", "8:16 3000".to_string()),
                ("blkio.throttle.write_iops_device", "8:16 3000".to_string()),
            ]
        );
        // Only what was asked is limited.
        let iops = DiskLimit {
            bytes_per_sec: None,
            iops: Some(500),
        };
        assert_eq!(iops.v2_line((8, 0)), "8:0 riops=500 wiops=500");
        assert_eq!(iops.v1_lines((8, 0)).len(), 2);
    }

    #[test]
    fn disk_bytes_are_read_from_v1_service_bytes_and_v2_io_stat() {
        let v1 = "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 12288\n8:0 Write 1\nTotal 12288\n";
        assert_eq!(disk_bytes_in(v1, (254, 0)), Some((4096, 8192)));
        let v2 = "8:0 rbytes=1 wbytes=2 rios=3 wios=4\n254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n";
        assert_eq!(disk_bytes_in(v2, (254, 0)), Some((4096, 8192)));
        assert_eq!(disk_bytes_in(v2, (8, 16)), None);
    }

    #[test]
    fn device_numbers_split_as_glibc_does() {
        // makedev(254, 0), makedev(8, 17), makedev(259, 65537): a minor
        // above 255 keeps its low byte in bits 0-7 and the rest from 20.
        assert_eq!(split_dev(0xfe00), (254, 0));
        assert_eq!(split_dev(0x0811), (8, 17));
        let big = (259u64 << 8) | (65537u64 & 0xff) | ((65537u64 & !0xff) << 12);
        assert_eq!(split_dev(big), (259, 65537));
    }

    #[test]
    fn the_disk_of_a_file_is_a_whole_disk_or_a_clear_refusal() {
        match disk_of(Path::new("/proc/self/stat")) {
            Ok(d) => panic!("procfs has no block device, got {d:?}"),
            Err(e) => assert!(format!("{e:#}").contains("not a block device"), "{e:#}"),
        }
        // The temp dir's disk, where it has one, is a whole disk.
        if let Ok((major, minor)) = disk_of(&std::env::temp_dir()) {
            let sys = format!("/sys/dev/block/{major}:{minor}");
            assert!(Path::new(&sys).exists());
            assert!(!Path::new(&sys).join("partition").exists());
        }
    }
}
