//! Reads the facts of the host dbtune runs on.
//!
//! Everything under /proc and /sys is read through `root`, so tests point it
//! at fixture trees (cgroup v1, v2, unlimited, missing files). Commands
//! (`postgres --version`...) run only when `probe_commands` is set, i.e. on
//! the real host.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Cpu, Facts, Memory, Servers, Sourced, Storage, StorageKind, Zfs};
use crate::units::ByteSize;

/// cgroup v1 reports "no limit" as the largest page-aligned i64:
/// 9223372036854771712 (0x7FFFFFFFFFFFF000). Anything that large is no limit.
const CGROUP_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

pub struct Detector {
    pub root: PathBuf,
    pub probe_commands: bool,
}

/// Huge pages a new mapping could get, of one page size, and where that
/// was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HugePagesFree {
    pub free: u64,
    pub page: ByteSize,
    pub source: String,
}

impl Detector {
    /// The real host.
    pub fn host() -> Self {
        Detector {
            root: PathBuf::from("/"),
            probe_commands: true,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn read(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.path(p)).ok()
    }

    /// Huge pages of one size free for a new mapping (free minus reserved),
    /// from sysfs, else /proc/meminfo for the default size: what a
    /// PostgreSQL restart with `huge_pages = on` could map. `size` None or
    /// zero means the default size.
    pub fn huge_pages_free(&self, size: Option<ByteSize>) -> Option<HugePagesFree> {
        let meminfo = self.read("/proc/meminfo")?;
        let field = |k: &str| -> Option<u64> {
            meminfo.lines().find_map(|l| {
                l.strip_prefix(k)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        };
        let default = ByteSize::kib(field("Hugepagesize:")?);
        let page = size.filter(|s| *s != ByteSize::ZERO).unwrap_or(default);
        let dir = format!(
            "/sys/kernel/mm/hugepages/hugepages-{}kB",
            page.bytes() / 1024
        );
        let count =
            |f: &str| -> Option<u64> { self.read(&format!("{dir}/{f}"))?.trim().parse().ok() };
        match (count("free_hugepages"), count("resv_hugepages")) {
            (Some(free), Some(resv)) => Some(HugePagesFree {
                free: free.saturating_sub(resv),
                page,
                source: format!("{dir}: {free} free, {resv} reserved"),
            }),
            _ if page == default => {
                let free = field("HugePages_Free:")?;
                let resv = field("HugePages_Rsvd:").unwrap_or(0);
                Some(HugePagesFree {
                    free: free.saturating_sub(resv),
                    page,
                    source: format!("/proc/meminfo: HugePages_Free {free}, HugePages_Rsvd {resv}"),
                })
            }
            _ => None,
        }
    }

    /// Detects every fact. `data_dir` is the PostgreSQL data directory (or
    /// where it will be); without it, /var/lib/postgresql, else /.
    pub fn detect(&self, data_dir: Option<&Path>) -> Facts {
        let mounts = self
            .read("/proc/self/mountinfo")
            .map(|t| parse_mountinfo(&t))
            .unwrap_or_default();
        let groups = self
            .read("/proc/self/cgroup")
            .map(|t| parse_proc_cgroup(&t))
            .unwrap_or_default();

        let memory = Memory {
            physical: self.physical_memory(),
            cgroup_limit: self.cgroup_memory_limit(&mounts, &groups),
        };
        let cpu = Cpu {
            logical: self.logical_cpus(),
            cgroup_quota: self.cgroup_cpu_quota(&mounts, &groups),
        };
        let storage = self.storage(&mounts, data_dir);
        Facts {
            hostname: self.hostname(),
            memory,
            cpu,
            storage,
            zfs: self.zfs(),
            servers: self.servers(),
            suggested_profile: None,
        }
    }

    fn hostname(&self) -> Option<String> {
        if self.probe_commands {
            sysinfo::System::host_name()
        } else {
            self.read("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
        }
    }

    fn physical_memory(&self) -> Sourced<ByteSize> {
        if let Some(text) = self.read("/proc/meminfo") {
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("MemTotal:") {
                    let kb: u64 = rest
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse()
                        .unwrap_or(0);
                    if kb > 0 {
                        return Sourced::new(ByteSize::kib(kb), "/proc/meminfo MemTotal");
                    }
                }
            }
        }
        if self.probe_commands {
            let mut sys = sysinfo::System::new();
            sys.refresh_memory();
            return Sourced::new(ByteSize(sys.total_memory()), "sysinfo");
        }
        Sourced::new(ByteSize::ZERO, "unknown: /proc/meminfo unreadable")
    }

    fn logical_cpus(&self) -> Sourced<u32> {
        if let Some(online) = self.read("/sys/devices/system/cpu/online") {
            if let Some(n) = count_cpu_list(online.trim()) {
                return Sourced::new(n, "/sys/devices/system/cpu/online");
            }
        }
        if let Some(info) = self.read("/proc/cpuinfo") {
            let n = info.lines().filter(|l| l.starts_with("processor")).count() as u32;
            if n > 0 {
                return Sourced::new(n, "/proc/cpuinfo");
            }
        }
        if self.probe_commands {
            if let Ok(n) = std::thread::available_parallelism() {
                return Sourced::new(n.get() as u32, "available_parallelism");
            }
        }
        Sourced::new(1, "unknown: assumed 1")
    }

    /// The directory of this process's cgroup for one controller, and the
    /// mount it lives under: (mount point, cgroup directory).
    fn cgroup_dir(
        &self,
        mounts: &[Mount],
        groups: &[CgroupLine],
        controller: &str,
    ) -> Option<(PathBuf, PathBuf, &'static str)> {
        // cgroup v1 has a hierarchy per controller; it wins in hybrid setups
        // because that is where the controller is attached.
        let v1 = mounts
            .iter()
            .find(|m| m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == controller));
        if let Some(m) = v1 {
            let line = groups
                .iter()
                .find(|g| g.controllers.iter().any(|c| c == controller));
            let rel = line.map(|l| l.path.as_str()).unwrap_or("/");
            return Some((
                self.path(&m.mount_point),
                self.path(&m.mount_point).join(relative_to(rel, &m.root)),
                "v1",
            ));
        }
        let v2 = mounts.iter().find(|m| m.fstype == "cgroup2")?;
        let line = groups.iter().find(|g| g.id == "0")?;
        Some((
            self.path(&v2.mount_point),
            self.path(&v2.mount_point)
                .join(relative_to(&line.path, &v2.root)),
            "v2",
        ))
    }

    /// Walks from the process's cgroup up to the hierarchy root, reading
    /// `file` at each level: a parent's limit binds its children. Returns the
    /// smallest value `parse` accepts, and the file it came from.
    fn min_up_the_tree<T: PartialOrd + Copy>(
        &self,
        mount: &Path,
        dir: &Path,
        file: &str,
        parse: impl Fn(&Path, &str) -> Option<T>,
    ) -> Option<(T, PathBuf)> {
        let mut best: Option<(T, PathBuf)> = None;
        // In a cgroup namespace the path in /proc/self/cgroup may not exist
        // under the mount; then the mount's own files are the ones to read.
        let mut cur = if dir.exists() {
            dir.to_path_buf()
        } else {
            mount.to_path_buf()
        };
        loop {
            let f = cur.join(file);
            if let Ok(text) = std::fs::read_to_string(&f) {
                if let Some(v) = parse(&cur, text.trim()) {
                    if best.as_ref().is_none_or(|(b, _)| v < *b) {
                        best = Some((v, f));
                    }
                }
            }
            if cur == mount || !cur.pop() || !cur.starts_with(mount) {
                break;
            }
        }
        best
    }

    fn display(&self, p: &Path) -> String {
        match p.strip_prefix(&self.root) {
            Ok(rel) if self.root != Path::new("/") => format!("/{}", rel.display()),
            _ => p.display().to_string(),
        }
    }

    fn cgroup_memory_limit(
        &self,
        mounts: &[Mount],
        groups: &[CgroupLine],
    ) -> Option<Sourced<ByteSize>> {
        let (mount, dir, version) = self.cgroup_dir(mounts, groups, "memory")?;
        let file = if version == "v1" {
            "memory.limit_in_bytes"
        } else {
            "memory.max"
        };
        let (limit, path) = self.min_up_the_tree(&mount, &dir, file, |_, t| parse_limit(t))?;
        Some(Sourced::new(
            ByteSize(limit),
            format!("cgroup {version} {}", self.display(&path)),
        ))
    }

    fn cgroup_cpu_quota(&self, mounts: &[Mount], groups: &[CgroupLine]) -> Option<Sourced<f64>> {
        let (mount, dir, version) = self.cgroup_dir(mounts, groups, "cpu")?;
        let (quota, path) = if version == "v1" {
            self.min_up_the_tree(&mount, &dir, "cpu.cfs_quota_us", |d, t| {
                let quota: i64 = t.parse().ok()?;
                let period: i64 = std::fs::read_to_string(d.join("cpu.cfs_period_us"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
            })?
        } else {
            self.min_up_the_tree(&mount, &dir, "cpu.max", |_, t| {
                let mut it = t.split_whitespace();
                let quota = it.next()?;
                let period: f64 = it.next().unwrap_or("100000").parse().ok()?;
                if quota == "max" {
                    return None;
                }
                let quota: f64 = quota.parse().ok()?;
                (quota > 0.0 && period > 0.0).then(|| quota / period)
            })?
        };
        Some(Sourced::new(
            (quota * 100.0).round() / 100.0,
            format!("cgroup {version} {}", self.display(&path)),
        ))
    }

    fn storage(&self, mounts: &[Mount], data_dir: Option<&Path>) -> Storage {
        let dir = match data_dir {
            Some(d) if self.root == Path::new("/") => d.canonicalize().unwrap_or(d.to_path_buf()),
            Some(d) => d.to_path_buf(),
            None if self.path("/var/lib/postgresql").is_dir() => {
                PathBuf::from("/var/lib/postgresql")
            }
            None => PathBuf::from("/"),
        };
        let mount = mounts
            .iter()
            .filter(|m| dir.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.len());
        let filesystem = mount.map(|m| {
            Sourced::new(
                m.fstype.clone(),
                format!("/proc/self/mountinfo (mount {})", m.mount_point),
            )
        });
        let (wal_dir, wal_filesystem) = self.wal_location(mounts, &dir);
        let wal_space = self.filesystem_size(wal_dir.as_deref().map_or(&dir, Path::new));
        let unknown = |why: String| Storage {
            kind: Sourced::new(StorageKind::Ssd, format!("assumed: {why}")),
            doubt: Some(format!(
                "{why}; pass --storage nvme|ssd|hdd to say what it is"
            )),
            device: None,
            data_dir: Some(dir.display().to_string()),
            filesystem: filesystem.clone(),
            wal_dir: wal_dir.clone(),
            wal_filesystem: wal_filesystem.clone(),
            wal_space: wal_space.clone(),
        };
        let Some(m) = mount else {
            return unknown(format!("no mount found for {}", dir.display()));
        };
        let Some(devname) = self.block_device_name(&m.dev) else {
            return unknown(format!(
                "{} is on `{}` ({}), not a block device dbtune can see",
                dir.display(),
                m.source,
                m.fstype
            ));
        };
        let disk = self.whole_disk(&devname);
        let rot_file = format!("/sys/block/{disk}/queue/rotational");
        let rotational = self.read(&rot_file).map(|t| t.trim() == "1");
        let (kind, source, doubt) = if disk.starts_with("nvme") {
            (
                StorageKind::Nvme,
                format!("/sys/block/{disk}: an NVMe namespace"),
                None,
            )
        } else {
            match rotational {
                Some(false) => (StorageKind::Ssd, format!("{rot_file} = 0"), None),
                Some(true) if disk.starts_with("vd") || disk.starts_with("xvd") => (
                    StorageKind::Ssd,
                    format!("{rot_file} = 1, overridden"),
                    Some(format!(
                        "{disk} is a virtual disk and they report rotational = 1 whatever backs them; \
                         assumed ssd, as cloud volumes almost always are: pass --storage hdd if it spins"
                    )),
                ),
                Some(true) => (StorageKind::Hdd, format!("{rot_file} = 1"), None),
                None => {
                    return unknown(format!("{rot_file} is unreadable"));
                }
            }
        };
        Storage {
            kind: Sourced::new(kind, source),
            doubt,
            device: Some(disk),
            data_dir: Some(dir.display().to_string()),
            filesystem,
            wal_dir,
            wal_filesystem,
            wal_space,
        }
    }

    /// The size of the filesystem `dir` is on (statvfs), or of the nearest
    /// directory above it that exists: a data directory not made yet will
    /// be on its parent's filesystem. Only on the real root: under a
    /// fixture root statvfs would measure this machine's disk.
    fn filesystem_size(&self, dir: &Path) -> Option<Sourced<ByteSize>> {
        if self.root != Path::new("/") {
            return None;
        }
        let existing = dir.ancestors().find(|p| p.is_dir())?;
        let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: `c` is a NUL-terminated path and `st` a statvfs the call
        // fills; nothing is kept past it.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        let size = (st.f_blocks as u64).checked_mul(st.f_frsize as u64)?;
        (size > 0).then(|| {
            Sourced::new(
                ByteSize(size),
                format!("statvfs of {}", self.display(existing)),
            )
        })
    }

    /// When `DIR/pg_wal` is a link to another directory (initdb --waldir),
    /// that directory and the filesystem it is on: the ZFS-only settings
    /// need both on ZFS.
    fn wal_location(
        &self,
        mounts: &[Mount],
        data_dir: &Path,
    ) -> (Option<String>, Option<Sourced<String>>) {
        let link = self.path(&data_dir.join("pg_wal").display().to_string());
        let is_link = std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return (None, None);
        }
        let Ok(target) = std::fs::read_link(&link) else {
            return (None, None);
        };
        let target = if target.is_absolute() {
            target
        } else {
            data_dir.join(target)
        };
        let mount = mounts
            .iter()
            .filter(|m| target.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.len());
        let fs = mount.map(|m| {
            Sourced::new(
                m.fstype.clone(),
                format!(
                    "/proc/self/mountinfo (mount {}, pg_wal links to {})",
                    m.mount_point,
                    target.display()
                ),
            )
        });
        // A link that leads nowhere known: say so rather than guess ZFS.
        let fs = fs.or_else(|| {
            Some(Sourced::new(
                "unknown".to_string(),
                format!("no mount found for {}", target.display()),
            ))
        });
        (Some(target.display().to_string()), fs)
    }

    /// `MAJ:MIN` -> kernel device name, from /sys/dev/block/MAJ:MIN/uevent.
    fn block_device_name(&self, dev: &str) -> Option<String> {
        if dev.starts_with("0:") {
            return None; // anonymous devices: overlay, tmpfs, zfs, fuse
        }
        let uevent = self.read(&format!("/sys/dev/block/{dev}/uevent"))?;
        uevent
            .lines()
            .find_map(|l| l.strip_prefix("DEVNAME="))
            .map(str::to_string)
    }

    /// The disk a partition belongs to: sda1 -> sda, nvme0n1p2 -> nvme0n1.
    fn whole_disk(&self, dev: &str) -> String {
        if self.path(&format!("/sys/block/{dev}")).exists() {
            return dev.to_string();
        }
        let trimmed = dev.trim_end_matches(|c: char| c.is_ascii_digit());
        let trimmed =
            if (dev.starts_with("nvme") || dev.starts_with("mmcblk")) && trimmed.ends_with('p') {
                &trimmed[..trimmed.len() - 1]
            } else {
                trimmed
            };
        trimmed.to_string()
    }

    fn zfs(&self) -> Zfs {
        let pools = self.zfs_pools();
        if let Some(v) = self.read("/sys/module/zfs/version") {
            return Zfs {
                present: true,
                version: Some(v.trim().to_string()),
                source: "/sys/module/zfs/version".into(),
                pools,
            };
        }
        if self.probe_commands {
            let version = Command::new("zfs")
                .arg("version")
                .env("ZFS_MODULE_LOADING", "no")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            if let Some(out) = version {
                let v = out.lines().next().unwrap_or("").trim();
                return Zfs {
                    present: true,
                    version: Some(v.trim_start_matches("zfs-").to_string()),
                    source: "`zfs version`".into(),
                    pools,
                };
            }
            if let Some(path) = which("zfs-fuse") {
                return Zfs {
                    present: true,
                    version: Some("zfs-fuse".into()),
                    source: path.display().to_string(),
                    pools,
                };
            }
        }
        Zfs {
            present: false,
            version: None,
            source: if self.probe_commands {
                "no zfs module, `zfs` or `zfs-fuse` found".into()
            } else {
                "no /sys/module/zfs".into()
            },
            pools,
        }
    }

    /// Imported pools: the kernel module keeps a kstat directory per pool
    /// (/proc/spl/kstat/zfs/POOL); zfs-fuse answers `zpool list`.
    fn zfs_pools(&self) -> Option<Vec<String>> {
        let mut pools: Vec<String> = std::fs::read_dir(self.path("/proc/spl/kstat/zfs"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| crate::doc::is_zfs_name(n, true))
                    .collect()
            })
            .unwrap_or_default();
        if self.probe_commands && pools.is_empty() {
            // ZFS_MODULE_LOADING=no: libzfs would otherwise modprobe the
            // module just to answer, and detect must change nothing.
            let out = Command::new("zpool")
                .args(["list", "-H", "-o", "name"])
                .env("ZFS_MODULE_LOADING", "no")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            if let Some(out) = out {
                pools.extend(
                    out.lines()
                        .map(str::trim)
                        .filter(|n| crate::doc::is_zfs_name(n, true))
                        .map(str::to_string),
                );
            }
        }
        pools.sort();
        Some(pools)
    }

    fn servers(&self) -> Servers {
        if !self.probe_commands {
            return Servers::default();
        }
        let postgres = postgres_binary().and_then(|bin| {
            let out = run(&[bin.to_str()?, "--version"])?;
            // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
            let v = out.split_whitespace().nth(2)?.to_string();
            Some(Sourced::new(v, format!("`{} --version`", bin.display())))
        });
        let postgres_build = postgres_binary().and_then(|bin| {
            let features = build_features(&bin)?;
            Some(Sourced::new(
                features,
                format!("libraries and patches linked into {}, and whether its JIT module (llvmjit.so) is installed", bin.display()),
            ))
        });
        let redis = run(&["redis-server", "--version"]).and_then(|out| {
            // "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 ..."
            let v = out.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
            Some(Sourced::new(v.to_string(), "`redis-server --version`"))
        });
        let pgbouncer = run(&["pgbouncer", "--version"]).and_then(|out| {
            // "PgBouncer 1.18.0"
            let v = out.lines().next()?.split_whitespace().nth(1)?;
            Some(Sourced::new(v.to_string(), "`pgbouncer --version`"))
        });
        Servers {
            postgres,
            postgres_build,
            redis,
            pgbouncer,
        }
    }
}

/// The directory holding `postgres` (and initdb, psql, pgbench beside it):
/// that of `postgres` on PATH with symlinks resolved (a lone
/// /usr/local/bin/postgres link points into the real one), else the newest
/// Debian/Ubuntu install under /usr/lib/postgresql.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = which("postgres")
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        return Some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn postgres_binary() -> Option<PathBuf> {
    postgres_bin_dir().map(|d| d.join("postgres"))
}

/// What a postgres binary was built with, from the names in it: the
/// libraries it links (liblz4.so, libzstd.so, liburing.so, in its dynamic
/// section) and Debian's extension_destdir patch.
fn build_features(bin: &Path) -> Option<Vec<String>> {
    let bytes = crate::input::read_bytes(bin, "postgres binary", 512 * 1024 * 1024).ok()?;
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let mut features: Vec<String> = [
        ("lz4", &b"liblz4.so"[..]),
        ("zstd", b"libzstd.so"),
        ("liburing", b"liburing.so"),
        ("debian", b"extension_destdir"),
    ]
    .iter()
    .filter(|(_, needle)| has(needle))
    .map(|(f, _)| f.to_string())
    .collect();
    // JIT is a loadable module beside the server (pkglibdir): said either
    // way, so a facts file from before this was asked means "not known".
    let lib = bin.parent().and_then(Path::parent);
    let llvm = lib.is_some_and(|l| {
        l.join("lib/llvmjit.so").is_file() || l.join("lib/postgresql/llvmjit.so").is_file()
    });
    features.push(if llvm { "llvmjit" } else { "no-llvmjit" }.to_string());
    Some(features)
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run(argv: &[&str]) -> Option<String> {
    let out = Command::new(argv[0]).args(&argv[1..]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A memory limit: "max", the v1 sentinel, and garbage all mean none.
fn parse_limit(text: &str) -> Option<u64> {
    if text == "max" {
        return None;
    }
    let v: u64 = text.parse().ok()?;
    (v < CGROUP_UNLIMITED).then_some(v)
}

/// "0-3,5,7-8" -> 7.
fn count_cpu_list(s: &str) -> Option<u32> {
    let mut n = 0;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().ok()?;
                let b: u32 = b.parse().ok()?;
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<u32>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

fn relative_to(path: &str, mount_root: &str) -> PathBuf {
    let rel = path.strip_prefix(mount_root).unwrap_or(path);
    PathBuf::from(rel.trim_start_matches('/'))
}

#[derive(Debug)]
struct Mount {
    dev: String,
    root: String,
    mount_point: String,
    fstype: String,
    source: String,
    super_opts: String,
}

/// /proc/self/mountinfo: `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                dev: l.get(2)?.to_string(),
                root: unescape(l.get(3)?),
                mount_point: unescape(l.get(4)?),
                fstype: r.first()?.to_string(),
                source: r.get(1).unwrap_or(&"").to_string(),
                super_opts: r.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug)]
struct CgroupLine {
    id: String,
    controllers: Vec<String>,
    path: String,
}

/// /proc/self/cgroup: `id:controllers:path`; v2 is `0::/path`.
fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            Some(CgroupLine {
                id: it.next()?.to_string(),
                controllers: it
                    .next()?
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: it.next()?.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pages_free_come_from_sysfs_else_meminfo_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        let at = |p: &str, text: &str| {
            let path = root.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        at(
            "proc/meminfo",
            "HugePages_Total:      10\nHugePages_Free:        8\nHugePages_Rsvd:        3\nHugepagesize:       2048 kB\n",
        );
        let d = Detector {
            root: root.path().to_path_buf(),
            probe_commands: false,
        };
        let free = d.huge_pages_free(None).unwrap();
        assert_eq!((free.free, free.page), (5, ByteSize::mib(2)));
        assert!(free.source.starts_with("/proc/meminfo"), "{}", free.source);
        // Another size is only known from sysfs.
        assert_eq!(d.huge_pages_free(Some(ByteSize::gib(1))), None);
        at(
            "sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages",
            "4\n",
        );
        at(
            "sys/kernel/mm/hugepages/hugepages-1048576kB/resv_hugepages",
            "1\n",
        );
        let gib = d.huge_pages_free(Some(ByteSize::gib(1))).unwrap();
        assert_eq!((gib.free, gib.page), (3, ByteSize::gib(1)));
    }

    #[test]
    fn cpu_lists_count_ranges_and_singles() {
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list(""), None);
    }

    #[test]
    fn unlimited_memory_spellings_mean_no_limit() {
        assert_eq!(parse_limit("max"), None);
        assert_eq!(parse_limit("9223372036854771712"), None);
        assert_eq!(parse_limit("9223372036854775807"), None);
        assert_eq!(parse_limit("garbage"), None);
        assert_eq!(parse_limit("1073741824"), Some(1 << 30));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let m = parse_mountinfo(
            "27 1 254:0 / /srv/my\\040data rw,relatime shared:1 - ext4 /dev/vda rw\n",
        );
        assert_eq!(m[0].mount_point, "/srv/my data");
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[0].dev, "254:0");
    }

    #[test]
    fn partitions_map_to_their_disk() {
        let d = Detector {
            root: PathBuf::from("/nonexistent-root"),
            probe_commands: false,
        };
        assert_eq!(d.whole_disk("sda1"), "sda");
        assert_eq!(d.whole_disk("nvme0n1p2"), "nvme0n1");
        assert_eq!(d.whole_disk("vda"), "vda");
        assert_eq!(d.whole_disk("mmcblk0p1"), "mmcblk0");
    }
}
