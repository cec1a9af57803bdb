//! Replacing files so that nothing is lost, and nothing is written where
//! it must not be.
//!
//! Everything happens relative to an open directory ([`Dir`]): a path
//! swapped under dbtune (a directory replaced by a link) changes nothing
//! about where it writes, and no file is ever opened for writing through a
//! link. A replacement is written to a temporary file beside the real one,
//! takes over its mode and owner, reaches the disk, and is exchanged with
//! it in one step (`renameat2(RENAME_EXCHANGE)`): a reader sees the old
//! file or the new one, never half, and what was displaced is in hand to
//! compare with what dbtune judged. A change made in between is kept as
//! `FILE.bak` (or `FILE.bak.N`), never deleted.
//!
//! A symlink in the output directory is written through when the file it
//! leads to is inside that directory; one that leaves it is refused.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::error::Error;

/// Prefix of dbtune's temporary files in a directory it renders into; a
/// run that was killed leaves them, and the next run (holding the
/// directory's lock) removes them, or keeps them as a backup when they
/// hold something dbtune did not write.
pub const TEMP_PREFIX: &str = ".dbtune-tmp-";

/// Mode and owner a replacement must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keep {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Keep {
    /// A new file of this process's user with `mode`.
    pub fn mine(mode: u32) -> Keep {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Keep { mode, uid, gid }
    }
}

/// Whether this process could give a new file `keep`'s owner: root can,
/// anyone else only when the owner is already theirs.
pub fn can_keep_owner(keep: &Keep) -> bool {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    uid == 0 || (keep.uid == uid && (keep.gid == gid || in_group(keep.gid)))
}

fn in_group(gid: u32) -> bool {
    // SAFETY: a NULL list with size 0 asks for the count only.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n <= 0 {
        return false;
    }
    let mut groups = vec![0 as libc::gid_t; n as usize];
    // SAFETY: the buffer holds n entries.
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    n > 0 && groups[..n as usize].contains(&gid)
}

/// A test hook that stands for `kill -9` at a chosen point:
/// `DBTUNE_FAILPOINT=done:N` aborts once N writes are complete, `tmp:N`
/// in the Nth one after its temporary file is written.
pub fn failpoint(stage: &str, n: u32) {
    let Ok(v) = std::env::var("DBTUNE_FAILPOINT") else {
        return;
    };
    if v.split_once(':')
        .is_some_and(|(s, k)| s == stage && k.parse() == Ok(n))
    {
        std::process::abort();
    }
}

static WRITES: AtomicU32 = AtomicU32::new(0);

/// The number of this write, for [`failpoint`].
pub fn next_write() -> u32 {
    WRITES.fetch_add(1, Ordering::SeqCst) + 1
}

fn cstr(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// renameat2's flags are not supported here (an old kernel, or a
/// filesystem without them).
fn unsupported(e: &io::Error) -> bool {
    matches!(errno(e), libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
}

/// What a name in a directory is, without following a link.
enum Entry {
    Missing,
    File,
    Link,
    Other(&'static str),
}

/// An open directory. Every operation is relative to it.
#[derive(Debug)]
pub struct Dir {
    file: File,
    /// The path it was opened by, for messages.
    path: PathBuf,
}

impl Dir {
    /// Opens the directory `path` (links in `path` itself are followed: the
    /// caller named it).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Dir {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `name` in this directory is, for messages.
    pub fn shown(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            file: self.file.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The directory's real path (no links in it), as the kernel knows it.
    fn real_path(&self) -> io::Result<PathBuf> {
        std::fs::read_link(format!("/proc/self/fd/{}", self.fd()))
            .or_else(|_| self.path.canonicalize())
    }

    /// The subdirectory `name`, refusing a link at that name.
    fn subdir(&self, name: &str) -> io::Result<Dir> {
        let c = cstr(name)?;
        // SAFETY: a valid directory descriptor and NUL-terminated name.
        let fd = cvt(unsafe {
            libc::openat(
                self.fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        Ok(Dir {
            // SAFETY: openat returned a new descriptor that nothing else owns.
            file: unsafe { File::from_raw_fd(fd) },
            path: self.path.join(name),
        })
    }

    fn entry(&self, name: &str) -> io::Result<Entry> {
        let c = cstr(name)?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: valid descriptor, name and buffer; the flag reads a link
        // itself rather than its target.
        let r = unsafe {
            libc::fstatat(
                self.fd(),
                c.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if errno(&e) == libc::ENOENT {
                Ok(Entry::Missing)
            } else {
                Err(e)
            };
        }
        // SAFETY: fstatat succeeded and filled the buffer.
        let st = unsafe { st.assume_init() };
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Entry::File,
            libc::S_IFLNK => Entry::Link,
            libc::S_IFDIR => Entry::Other("a directory"),
            _ => Entry::Other("not a regular file"),
        })
    }

    /// Opens `name` to read, never through a link (ELOOP) and never
    /// blocking on a FIFO or device.
    fn open_read(&self, name: &str) -> io::Result<File> {
        let c = cstr(name)?;
        // SAFETY: a valid directory descriptor and NUL-terminated name.
        let fd = cvt(unsafe {
            libc::openat(
                self.fd(),
                c.as_ptr(),
                libc::O_RDONLY
                    | libc::O_NOFOLLOW
                    | libc::O_NONBLOCK
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    fn rename2(&self, from: &str, to: &str, flags: libc::c_uint) -> io::Result<()> {
        let (f, t) = (cstr(from)?, cstr(to)?);
        // SAFETY: valid descriptors and NUL-terminated names; the raw
        // syscall, so no minimum libc version is needed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                self.fd(),
                f.as_ptr(),
                self.fd(),
                t.as_ptr(),
                flags,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (f, t) = (cstr(from)?, cstr(to)?);
        // SAFETY: valid descriptors and NUL-terminated names.
        cvt(unsafe { libc::renameat(self.fd(), f.as_ptr(), self.fd(), t.as_ptr()) }).map(drop)
    }

    /// A second name for the file (or link) `from`; fails when `to` exists.
    fn link(&self, from: &str, to: &str) -> io::Result<()> {
        let (f, t) = (cstr(from)?, cstr(to)?);
        // SAFETY: valid descriptors and NUL-terminated names; flags 0 does
        // not follow a link at `from`.
        cvt(unsafe { libc::linkat(self.fd(), f.as_ptr(), self.fd(), t.as_ptr(), 0) }).map(drop)
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: a valid directory descriptor and NUL-terminated name.
        cvt(unsafe { libc::unlinkat(self.fd(), c.as_ptr(), 0) }).map(drop)
    }

    /// What is at `name`, without following a link.
    pub fn peek(&self, name: &str, limit: u64) -> Result<Peek> {
        let shown = self.shown(name);
        match self.entry(name) {
            Ok(Entry::Missing) => Ok(Peek::Missing),
            Ok(Entry::File) => match self.open_read(name) {
                Ok(f) => Ok(Peek::File(crate::input::read_open(
                    f, &shown, "file", limit,
                )?)),
                Err(e) if errno(&e) == libc::ENOENT => Ok(Peek::Missing),
                Err(e) if errno(&e) == libc::ELOOP => Ok(Peek::Other),
                Err(e) => Err(e).with_context(|| format!("cannot read `{}`", shown.display())),
            },
            Ok(_) => Ok(Peek::Other),
            Err(e) => Err(e).with_context(|| format!("cannot look at `{}`", shown.display())),
        }
    }

    /// Whether both are the same directory.
    pub fn same_as(&self, other: &Dir) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), other.file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// Renames and removals reach the disk with the directory.
    fn sync(&self) {
        let _ = self.file.sync_all();
    }

    /// The names in the directory.
    fn names(&self) -> Vec<String> {
        let listing = std::fs::read_dir(format!("/proc/self/fd/{}", self.fd()))
            .or_else(|_| std::fs::read_dir(&self.path));
        listing
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An exclusive (or shared) lock on the directory, held while the
    /// value lives: two dbtunes writing into one directory take turns.
    pub fn lock(&self, exclusive: bool) -> Result<DirLock> {
        let file = self.file.try_clone()?;
        lock_file(file, &self.path, exclusive)
    }

    /// `name` moved to the first free backup name beside it (FILE.bak,
    /// FILE.bak.1...), never replacing anything there: a link planted at
    /// a backup name is passed over, not followed.
    fn move_to_backup(&self, from: &str, base: &str) -> io::Result<PathBuf> {
        for bak in backup_names(base) {
            match self.rename2(from, &bak, libc::RENAME_NOREPLACE) {
                Ok(()) => return Ok(self.shown(&bak)),
                Err(e) if errno(&e) == libc::EEXIST => continue,
                Err(e) if unsupported(&e) => match self.link(from, &bak) {
                    Ok(()) => {
                        self.unlink(from)?;
                        return Ok(self.shown(&bak));
                    }
                    Err(e) if errno(&e) == libc::EEXIST => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free backup name (10000 taken)"))
    }

    /// A backup of `name` as it is, keeping it in place: a second link to
    /// the same file (same content, owner and mode), else a copy made with
    /// its owner and mode.
    fn keep_copy(&self, name: &str) -> io::Result<PathBuf> {
        for bak in backup_names(name) {
            match self.link(name, &bak) {
                Ok(()) => return Ok(self.shown(&bak)),
                Err(e) if errno(&e) == libc::EEXIST => continue,
                Err(_) => {
                    let f = self.open_read(name)?;
                    let bytes = read_all(&f)?;
                    return self.new_backup(name, &bytes, &f);
                }
            }
        }
        Err(io::Error::other("no free backup name (10000 taken)"))
    }

    /// A new backup file of `base` holding `bytes`, with `like`'s owner and
    /// mode, created only where nothing is.
    fn new_backup(&self, base: &str, bytes: &[u8], like: &File) -> io::Result<PathBuf> {
        let meta = like.metadata()?;
        let keep = Keep {
            mode: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            uid: std::os::unix::fs::MetadataExt::uid(&meta),
            gid: std::os::unix::fs::MetadataExt::gid(&meta),
        };
        for bak in backup_names(base) {
            match self.create_excl(&bak) {
                Ok(mut f) => {
                    f.write_all(bytes)?;
                    set_keep(&f, keep, true)?;
                    f.sync_all()?;
                    return Ok(self.shown(&bak));
                }
                Err(e) if errno(&e) == libc::EEXIST => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free backup name (10000 taken)"))
    }

    /// A new file at `name`, failing when anything (a link too) is there.
    fn create_excl(&self, name: &str) -> io::Result<File> {
        let c = cstr(name)?;
        // SAFETY: a valid directory descriptor and NUL-terminated name;
        // O_EXCL with O_CREAT never follows a link.
        let fd = cvt(unsafe {
            libc::openat(
                self.fd(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        })?;
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Writes `data` to a new temporary file for `name` and gives it a
    /// name (TEMP_PREFIX, then `name`). The content is complete and on
    /// disk before the file has a name (O_TMPFILE where the filesystem has
    /// it), so a named leftover of a killed run is never half a file.
    fn write_temp(&self, name: &str, data: &[u8], keep: Keep, chown: bool) -> Result<String> {
        let shown = self.shown(name);
        let fill = |f: &mut File| -> Result<()> {
            f.write_all(data)
                .with_context(|| format!("cannot write `{}`", shown.display()))?;
            set_keep(f, keep, chown).map_err(|e| {
                anyhow::Error::new(Error::plain(
                    format!(
                        "cannot give `{}` its owner and mode (uid {}, gid {}, mode {:o}): {e}",
                        shown.display(),
                        keep.uid,
                        keep.gid,
                        keep.mode
                    ),
                    "run dbtune as that user or as root; nothing was replaced",
                ))
            })?;
            f.sync_all()
                .with_context(|| format!("cannot write `{}`", shown.display()))
        };
        let c = cstr(".")?;
        // SAFETY: a valid directory descriptor; O_TMPFILE makes an unnamed
        // file in it.
        let fd = unsafe {
            libc::openat(
                self.fd(),
                c.as_ptr(),
                libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: openat returned a new descriptor that nothing else owns.
            let mut f = unsafe { File::from_raw_fd(fd) };
            fill(&mut f)?;
            let proc_path = cstr(&format!("/proc/self/fd/{fd}"))?;
            for _ in 0..100 {
                let tmp = temp_name(name);
                let t = cstr(&tmp)?;
                // SAFETY: valid path, descriptor and name; how an unnamed
                // file gets a name without CAP_DAC_READ_SEARCH.
                let r = unsafe {
                    libc::linkat(
                        libc::AT_FDCWD,
                        proc_path.as_ptr(),
                        self.fd(),
                        t.as_ptr(),
                        libc::AT_SYMLINK_FOLLOW,
                    )
                };
                if r == 0 {
                    return Ok(tmp);
                }
                let e = io::Error::last_os_error();
                if errno(&e) != libc::EEXIST {
                    break; // no /proc: name the file as it is written
                }
            }
        }
        for _ in 0..100 {
            let tmp = temp_name(name);
            match self.create_excl(&tmp) {
                Ok(mut f) => {
                    if let Err(e) = fill(&mut f) {
                        let _ = self.unlink(&tmp);
                        return Err(e);
                    }
                    return Ok(tmp);
                }
                Err(e) if errno(&e) == libc::EEXIST => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot create a temporary file in `{}`",
                            self.path.display()
                        )
                    })
                }
            }
        }
        anyhow::bail!(
            "cannot find a free temporary name in `{}`",
            self.path.display()
        )
    }

    /// Writes a file of dbtune's own state (manifest, journal): owned by
    /// this user, mode 0644, renamed over whatever is at `name`. A link
    /// there is replaced, never followed.
    pub fn write_state(&self, name: &str, data: &[u8]) -> Result<()> {
        let n = next_write();
        let tmp = self.write_temp(name, data, Keep::mine(0o644), false)?;
        failpoint("tmp", n);
        if let Err(e) = self.rename(&tmp, name) {
            let _ = self.unlink(&tmp);
            return Err(e)
                .with_context(|| format!("cannot write `{}`", self.shown(name).display()));
        }
        self.sync();
        failpoint("done", n);
        Ok(())
    }

    /// Removes a state file (a link at its name too, never its target).
    pub fn remove_state(&self, name: &str) -> Result<()> {
        match self.unlink(name) {
            Err(e) if errno(&e) != libc::ENOENT => {
                Err(e).with_context(|| format!("cannot remove `{}`", self.shown(name).display()))
            }
            _ => {
                self.sync();
                Ok(())
            }
        }
    }

    /// A state file, when it can be trusted as dbtune's own (see
    /// [`State`]).
    pub fn read_state(&self, name: &str, limit: u64) -> Result<State> {
        let f = match self.open_read(name) {
            Ok(f) => f,
            Err(e) if errno(&e) == libc::ENOENT => return Ok(State::Missing),
            Err(e) if errno(&e) == libc::ELOOP => {
                return Ok(State::Untrusted("it is a symbolic link".into()))
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read `{}`", self.shown(name).display()))
            }
        };
        let meta = f.metadata()?;
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if !meta.is_file() {
            return Ok(State::Untrusted("it is not a regular file".into()));
        }
        if meta.uid() != me && meta.uid() != 0 {
            return Ok(State::Untrusted(format!(
                "it is owned by uid {}, neither this user (uid {me}) nor root",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Ok(State::Untrusted(format!(
                "others can write it (mode {:o})",
                meta.mode() & 0o7777
            )));
        }
        let bytes = crate::input::read_open(f, &self.shown(name), "state file", limit)?;
        Ok(State::Trusted(bytes))
    }

    /// Takes `name` out of the directory: moved aside in one step, then
    /// compared with what was judged. Removed when it is the same, kept as
    /// FILE.bak(.N) when it changed meanwhile; with `backup`, kept as the
    /// backup whatever it holds.
    pub fn take_out(&self, name: &str, judged: Option<&[u8]>, backup: bool) -> Result<Swapped> {
        let shown = self.shown(name);
        let mut out = Swapped::default();
        if backup {
            out.backup = Some(
                self.move_to_backup(name, name)
                    .with_context(|| format!("cannot keep `{}` as a backup", shown.display()))?,
            );
            self.sync();
            return Ok(out);
        }
        let tmp = temp_name(name);
        match self.rename2(name, &tmp, libc::RENAME_NOREPLACE) {
            Ok(()) => {}
            Err(e) if errno(&e) == libc::ENOENT => return Ok(out),
            Err(e) if unsupported(&e) => {
                self.link(name, &tmp)
                    .and_then(|()| self.unlink(name))
                    .with_context(|| format!("cannot remove `{}`", shown.display()))?;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove `{}`", shown.display()))
            }
        }
        out.raced = self
            .settle(&tmp, name, judged)
            .with_context(|| format!("cannot remove `{}`", shown.display()))?;
        self.sync();
        Ok(out)
    }

    /// What was displaced from `name` sits at `tmp`: deleted when it is
    /// exactly what was judged, else kept as a backup of `name` (returned).
    fn settle(&self, tmp: &str, name: &str, judged: Option<&[u8]>) -> io::Result<Option<PathBuf>> {
        let f = match self.open_read(tmp) {
            Ok(f) => f,
            Err(e) if errno(&e) == libc::ENOENT => return Ok(None),
            // A link (ELOOP) or something else moved in: not what was judged.
            Err(_) => return self.move_to_backup(tmp, name).map(Some),
        };
        if !f.metadata()?.is_file() {
            return self.move_to_backup(tmp, name).map(Some);
        }
        // Someone who opened the old file before it was displaced may still
        // be writing to it: wait until no one holds it open for writing.
        let _quiet = match Quiet::wait(&f) {
            Quiet::Busy => return self.move_to_backup(tmp, name).map(Some),
            q => q,
        };
        let bytes = read_all(&f)?;
        if judged != Some(bytes.as_slice()) {
            return self.move_to_backup(tmp, name).map(Some);
        }
        self.unlink(tmp)?;
        // Where no lease could be taken, a write may have landed between
        // the read and the unlink: it is still readable here.
        let again = read_all(&f)?;
        if again != bytes {
            return self.new_backup(name, &again, &f).map(Some);
        }
        Ok(None)
    }
}

fn temp_name(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let base = if name.len() <= 180 { name } else { "file" };
    format!(
        "{TEMP_PREFIX}{base}.{:x}{:x}{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The file a temporary name was made for.
fn temp_for(tmp: &str) -> Option<&str> {
    tmp.strip_prefix(TEMP_PREFIX)?
        .rsplit_once('.')
        .map(|(name, _)| name)
        .filter(|n| !n.is_empty())
}

/// FILE.bak, FILE.bak.1, FILE.bak.2...
fn backup_names(base: &str) -> impl Iterator<Item = String> + '_ {
    (0..10_000).map(move |i| {
        if i == 0 {
            format!("{base}.bak")
        } else {
            format!("{base}.bak.{i}")
        }
    })
}

fn set_keep(f: &File, keep: Keep, chown: bool) -> io::Result<()> {
    if chown {
        std::os::unix::fs::fchown(f, Some(keep.uid), Some(keep.gid))?;
    }
    // After the owner: chown clears set-id bits.
    f.set_permissions(std::fs::Permissions::from_mode(keep.mode))
}

fn read_all(f: &File) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut off = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match f.read_at(&mut chunk, off) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        off += n as u64;
        if off > crate::input::MAX_CONFIG {
            return Ok(buf);
        }
    }
}

/// Whether anyone else holds a displaced file open for writing, asked
/// with a read lease: the kernel grants one only when no one does.
enum Quiet {
    /// No writer; the lease is held until this value drops.
    Held(RawFd),
    /// Still open for writing after a while.
    Busy,
    /// Leases are not available here (another filesystem, no right).
    Unknown,
}

impl Quiet {
    fn wait(f: &File) -> Quiet {
        // A lease is broken by SIGIO to its holder, whose default is to
        // terminate: dbtune holds its leases for microseconds and wants no
        // signal for them.
        static IGNORE_SIGIO: std::sync::Once = std::sync::Once::new();
        IGNORE_SIGIO.call_once(|| {
            // SAFETY: setting a signal's disposition to "ignore".
            unsafe {
                libc::signal(libc::SIGIO, libc::SIG_IGN);
            }
        });
        let start = Instant::now();
        loop {
            // SAFETY: a valid descriptor opened read-only.
            let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) };
            if r == 0 {
                return Quiet::Held(f.as_raw_fd());
            }
            let e = io::Error::last_os_error();
            if errno(&e) != libc::EAGAIN {
                return Quiet::Unknown;
            }
            if start.elapsed() > Duration::from_secs(2) {
                return Quiet::Busy;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        if let Quiet::Held(fd) = self {
            // SAFETY: the descriptor outlives this value (it is borrowed
            // from the file the lease was taken on).
            unsafe {
                libc::fcntl(*fd, libc::F_SETLEASE, libc::F_UNLCK);
            }
        }
    }
}

/// A state file as read: dbtune takes its manifest and journal as proof
/// of what it wrote only when no other user could have written them: a
/// regular file (not a link), owned by the user running dbtune or by root,
/// and writable by no one else (no group or other write bit). Someone who
/// can write to the directory can plant any file there, but not one owned
/// by this user or root.
#[derive(Debug)]
pub enum State {
    Missing,
    Trusted(Vec<u8>),
    /// Present but proving nothing: why.
    Untrusted(String),
}

/// What is at a name, read without following a link.
#[derive(Debug)]
pub enum Peek {
    Missing,
    File(Vec<u8>),
    /// A link, a directory, a device...
    Other,
}

/// An exclusive (or shared) lock on a directory, held while the value
/// lives.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// How long dbtune waits for another one to finish with a directory.
const LOCK_WAIT: Duration = Duration::from_secs(60);

fn lock_file(file: File, dir: &Path, exclusive: bool) -> Result<DirLock> {
    let try_lock = |f: &File| {
        if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        }
    };
    let start = Instant::now();
    let mut said = false;
    loop {
        match try_lock(&file) {
            Ok(()) => return Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                if start.elapsed() > LOCK_WAIT {
                    return Err(Error::plain(
                        format!(
                            "another dbtune has held `{}` for over {} s; nothing was written",
                            dir.display(),
                            LOCK_WAIT.as_secs()
                        ),
                        "wait for it to finish (runs in one directory take turns), or check for a stuck process",
                    )
                    .into());
                }
                if !said {
                    crate::note!("waiting for another dbtune working in {}", dir.display());
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock `{}`", dir.display()))
            }
        }
    }
}

/// What a file held when dbtune judged it, read through one descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub bytes: Vec<u8>,
    pub keep: Keep,
}

/// Where writing a name of a directory lands: that name, or for a symlink
/// the file it leads to, which must be inside the directory.
#[derive(Debug)]
pub struct Target {
    /// The directory holding the real file, opened while resolving.
    pub dir: Dir,
    /// The real file's name in it.
    pub name: String,
    /// The real file's path, when the name is a link.
    pub through_link: Option<PathBuf>,
}

impl Target {
    /// Resolves `name` in `base` (see [`Target`]). A link leaving `base`,
    /// a link to nowhere and anything but a regular file are refused.
    pub fn resolve(base: &Dir, name: &str) -> Result<Target, Error> {
        let shown = base.shown(name);
        let cannot = |e: io::Error| {
            Error::plain(
                format!("cannot look at `{}`: {e}", shown.display()),
                "check the directory's permissions",
            )
        };
        let here = |through_link| -> Result<Target, Error> {
            Ok(Target {
                dir: base.try_clone().map_err(cannot)?,
                name: name.to_string(),
                through_link,
            })
        };
        match base.entry(name).map_err(cannot)? {
            Entry::Missing | Entry::File => return here(None),
            Entry::Other(what) => {
                return Err(Error::plain(
                    format!("`{}` exists and is {what}", shown.display()),
                    "move it out of the way",
                ))
            }
            Entry::Link => {}
        }
        // Where the link leads, read through the open directory so that
        // only the link itself can change the answer.
        let via_fd = PathBuf::from(format!("/proc/self/fd/{}/{name}", base.fd()));
        let resolved = via_fd.canonicalize().or_else(|_| shown.canonicalize());
        let real = resolved.map_err(|e| {
            Error::plain(
                format!(
                    "`{}` is a symlink to a file that cannot be reached ({e})",
                    shown.display()
                ),
                "fix or remove the link; dbtune writes through links but never replaces them",
            )
        })?;
        let base_real = base.real_path().map_err(cannot)?;
        let rel = match real.strip_prefix(&base_real) {
            Ok(r) if r.components().next().is_some() => r.to_path_buf(),
            _ => {
                let message = format!(
                    "`{}` is a symlink to `{}`, outside `{}`: dbtune never writes through a \
                     link that leaves the directory; nothing was written",
                    shown.display(),
                    real.display(),
                    base.path().display()
                );
                let hint = format!(
                    "put the file itself in `{}`, and if `{}` must stay where it is, link it \
                     the other way round: `ln -sfn {} {}`",
                    base.path().display(),
                    real.display(),
                    absolute(&shown).display(),
                    real.display()
                );
                return Err(Error::plain(message, hint));
            }
        };
        let changed = |e: io::Error| {
            Error::plain(
                format!(
                    "`{}` changed while dbtune followed the link ({e}); nothing was written",
                    shown.display()
                ),
                "run dbtune again; if this repeats, someone is changing the directory",
            )
        };
        let mut parts: Vec<String> = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(s) => parts.push(
                    s.to_str()
                        .ok_or_else(|| {
                            Error::plain(
                                format!("`{}` leads to a path that is not UTF-8", shown.display()),
                                "rename the target",
                            )
                        })?
                        .to_string(),
                ),
                _ => return Err(changed(io::Error::other("unexpected path component"))),
            }
        }
        let Some(last) = parts.pop() else {
            return Err(changed(io::Error::other(
                "the link leads to the directory itself",
            )));
        };
        let mut dir = base.try_clone().map_err(cannot)?;
        for p in &parts {
            // Each step refuses a link: the path had none when resolved.
            dir = dir.subdir(p).map_err(changed)?;
        }
        match dir.entry(&last).map_err(changed)? {
            Entry::File => Ok(Target {
                dir,
                name: last,
                through_link: Some(real),
            }),
            _ => Err(changed(io::Error::other(
                "its target is no longer a regular file",
            ))),
        }
    }

    /// Where the real file is, for messages.
    pub fn shown(&self) -> PathBuf {
        self.dir.shown(&self.name)
    }

    /// The file as it is now, or None when there is none.
    pub fn judge(&self, limit: u64) -> Result<Option<Judged>> {
        let shown = self.shown();
        let f = match self.dir.open_read(&self.name) {
            Ok(f) => f,
            Err(e) if errno(&e) == libc::ENOENT => return Ok(None),
            Err(e) if errno(&e) == libc::ELOOP => {
                return Err(Error::plain(
                    format!(
                        "`{}` became a symlink while dbtune looked at it",
                        shown.display()
                    ),
                    "run dbtune again; if this repeats, someone is changing the directory",
                )
                .into())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", shown.display())),
        };
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(Error::plain(
                format!("`{}` exists and is not a regular file", shown.display()),
                "move it out of the way",
            )
            .into());
        }
        use std::os::unix::fs::MetadataExt;
        let keep = Keep {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        };
        let bytes = crate::input::read_open(f, &shown, "file", limit)?;
        Ok(Some(Judged { bytes, keep }))
    }

    /// Puts `s.data` in place of the file (see [`Swap`]).
    pub fn swap(&self, s: &Swap) -> Result<Swapped> {
        self.swap_with(s, true)
    }

    fn swap_with(&self, s: &Swap, rename2: bool) -> Result<Swapped> {
        let n = next_write();
        let d = &self.dir;
        let shown = self.shown();
        let (keep, chown) = match (s.judged, s.new_owner) {
            (Some(j), _) => (j.keep, true),
            (None, Some((uid, gid))) => (
                Keep {
                    mode: s.new_mode,
                    uid,
                    gid,
                },
                true,
            ),
            (None, None) => (Keep::mine(s.new_mode), false),
        };
        let tmp = d.write_temp(&self.name, s.data, keep, chown)?;
        failpoint("tmp", n);
        let placed = if rename2 {
            self.exchange(&tmp, s.judged.is_some())
        } else {
            Ok(Placed::Unsupported)
        };
        let placed = match placed {
            Ok(p) => p,
            Err(e) => {
                let _ = d.unlink(&tmp);
                return Err(e).with_context(|| format!("cannot replace `{}`", shown.display()));
            }
        };
        let mut out = Swapped::default();
        let kept = |r: io::Result<PathBuf>| {
            r.with_context(|| {
                format!(
                    "`{}` was replaced, but what it held could not be kept as a backup",
                    shown.display()
                )
            })
        };
        match placed {
            Placed::New => {}
            Placed::Exchanged if s.backup => {
                out.backup = Some(kept(d.move_to_backup(&tmp, &self.name))?);
            }
            Placed::Exchanged => {
                out.raced = d
                    .settle(&tmp, &self.name, s.judged.map(|j| j.bytes.as_slice()))
                    .map_err(anyhow::Error::new)
                    .with_context(|| format!("cannot settle what `{}` held", shown.display()))?;
            }
            Placed::Unsupported => {
                // No renameat2 flags here: look once more just before the
                // rename (a change in that instant is the one this cannot
                // catch).
                match d.entry(&self.name) {
                    Ok(Entry::Missing) => {}
                    Ok(Entry::File) => {
                        let now = d.open_read(&self.name).and_then(|f| read_all(&f));
                        let same = match (&now, s.judged) {
                            (Ok(b), Some(j)) => *b == j.bytes,
                            _ => false,
                        };
                        if s.backup {
                            out.backup = Some(kept(d.keep_copy(&self.name))?);
                        } else if !same {
                            out.raced = Some(kept(d.keep_copy(&self.name))?);
                        }
                    }
                    Ok(_) => {
                        out.raced = Some(kept(d.move_to_backup(&self.name, &self.name))?);
                    }
                    Err(e) => {
                        let _ = d.unlink(&tmp);
                        return Err(e)
                            .with_context(|| format!("cannot read `{}`", shown.display()));
                    }
                }
                if let Err(e) = d.rename(&tmp, &self.name) {
                    let _ = d.unlink(&tmp);
                    return Err(e).with_context(|| format!("cannot replace `{}`", shown.display()));
                }
            }
        }
        d.sync();
        failpoint("done", n);
        Ok(out)
    }

    /// The temporary file takes the name in one step: exchanged with the
    /// file there, or (no file) put where nothing is, so a file created
    /// meanwhile is displaced and kept rather than overwritten.
    fn exchange(&self, tmp: &str, mut exists: bool) -> io::Result<Placed> {
        for _ in 0..8 {
            let flags = if exists {
                libc::RENAME_EXCHANGE
            } else {
                libc::RENAME_NOREPLACE
            };
            match self.dir.rename2(tmp, &self.name, flags) {
                Ok(()) if exists => return Ok(Placed::Exchanged),
                Ok(()) => return Ok(Placed::New),
                Err(e) if unsupported(&e) => return Ok(Placed::Unsupported),
                // Removed meanwhile, or created meanwhile: the other way.
                Err(e) if exists && errno(&e) == libc::ENOENT => exists = false,
                Err(e) if !exists && errno(&e) == libc::EEXIST => exists = true,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "the file kept appearing and disappearing while dbtune replaced it",
        ))
    }
}

enum Placed {
    /// Nothing was there: the new file took the name.
    New,
    /// What was there now sits at the temporary name.
    Exchanged,
    /// This filesystem has no renameat2 flags.
    Unsupported,
}

/// Replacing one file.
#[derive(Clone, Copy, Debug)]
pub struct Swap<'a> {
    pub data: &'a [u8],
    /// What the file held when the caller decided to replace it; None when
    /// there was no file. Anything else displaced is kept.
    pub judged: Option<&'a Judged>,
    /// Mode of a new file...
    pub new_mode: u32,
    /// ...and its owner (uid, gid), when not this user.
    pub new_owner: Option<(u32, u32)>,
    /// The file is someone else's and is replaced anyway (--force): what
    /// is displaced becomes FILE.bak itself, with its owner and mode.
    pub backup: bool,
}

/// What a replacement kept.
#[derive(Debug, Default)]
pub struct Swapped {
    /// Where the file replaced with `backup` went.
    pub backup: Option<PathBuf>,
    /// Where a change made after judging (or a file created meanwhile)
    /// went: not what the caller decided to replace.
    pub raced: Option<PathBuf>,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Replaces the file at `path` with `data` when it still holds `expected`
/// (None: no file); a link is followed only inside its directory. A new
/// file gets `new_mode` and `new_owner`; an existing one keeps its own. A
/// change made since `expected` was read is kept and returned.
pub fn replace(
    path: &Path,
    expected: Option<&[u8]>,
    data: &[u8],
    new_mode: u32,
    new_owner: Option<(u32, u32)>,
) -> Result<Swapped> {
    let (parent, name) = split(path)?;
    let dir = Dir::open(parent)
        .with_context(|| format!("cannot open the directory `{}`", parent.display()))?;
    let target = Target::resolve(&dir, name)?;
    let now = target.judge(crate::input::MAX_CONFIG)?;
    let judged = match (expected, now) {
        (Some(bytes), Some(j)) => Some(Judged {
            bytes: bytes.to_vec(),
            keep: j.keep,
        }),
        // Expected a file and there is none, or the other way round: the
        // swap keeps whatever it displaces.
        (Some(bytes), None) => Some(Judged {
            bytes: bytes.to_vec(),
            keep: Keep::mine(new_mode),
        }),
        (None, _) => None,
    };
    target.swap(&Swap {
        data,
        judged: judged.as_ref(),
        new_mode,
        new_owner,
        backup: false,
    })
}

fn split(path: &Path) -> Result<(&Path, &str)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("`{}` does not name a file", path.display()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

/// What cleaning a directory found of a killed run.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Temporary files holding what dbtune wrote: removed.
    pub removed: Vec<String>,
    /// Temporary files holding anything else (what a killed run displaced
    /// and had not yet compared): kept as backups of their file.
    pub kept: Vec<(String, PathBuf)>,
}

/// Cleans the temporary files a killed run left in `dir`: those that
/// `known` says dbtune wrote (given the file each was for, and its
/// content) are removed, the others kept as FILE.bak(.N) of the file they
/// were for. The caller holds the lock.
pub fn clean_leftovers(dir: &Dir, known: &dyn Fn(&str, &[u8]) -> bool) -> Result<Leftovers> {
    let mut out = Leftovers::default();
    let mut names: Vec<String> = dir
        .names()
        .into_iter()
        .filter(|n| n.starts_with(TEMP_PREFIX))
        .collect();
    names.sort();
    for name in names {
        let base = temp_for(&name).unwrap_or("unknown").to_string();
        let ours = match dir.entry(&name)? {
            Entry::File => dir
                .open_read(&name)
                .and_then(|f| read_all(&f))
                .is_ok_and(|b| known(&base, &b)),
            Entry::Missing => continue,
            _ => false,
        };
        if ours {
            dir.unlink(&name)
                .with_context(|| format!("cannot remove `{}`", dir.shown(&name).display()))?;
            out.removed.push(name);
        } else {
            let bak = dir
                .move_to_backup(&name, &base)
                .with_context(|| format!("cannot keep `{}`", dir.shown(&name).display()))?;
            out.kept.push((base, bak));
        }
    }
    if !out.removed.is_empty() || !out.kept.is_empty() {
        dir.sync();
    }
    Ok(out)
}

/// Writes `data` as a new file in `dir` under the first free name of
/// `names`, never replacing anything. It is written to a temporary file
/// named `temp_prefix...` first; leftovers with that prefix (a killed run's,
/// never published) are removed, all under the directory's lock.
pub fn create_new(
    dir: &Path,
    temp_prefix: &str,
    names: impl Iterator<Item = String>,
    data: &[u8],
    mode: u32,
) -> Result<PathBuf> {
    let d = Dir::open(dir).with_context(|| format!("cannot open `{}`", dir.display()))?;
    let _lock = d.lock(true)?;
    for name in d.names() {
        if name.starts_with(temp_prefix) && matches!(d.entry(&name), Ok(Entry::File)) {
            let _ = d.unlink(&name);
        }
    }
    let n = next_write();
    let mut tmp = None;
    for i in 0..100 {
        let name = format!("{temp_prefix}{:x}-{i}", std::process::id());
        match d.create_excl(&name) {
            Ok(f) => {
                tmp = Some((name, f));
                break;
            }
            Err(e) if errno(&e) == libc::EEXIST => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot write in `{}`", dir.display()))
            }
        }
    }
    let (tmp, mut f) =
        tmp.with_context(|| format!("no free temporary name in `{}`", dir.display()))?;
    let written = f
        .write_all(data)
        .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = d.unlink(&tmp);
        return Err(e).with_context(|| format!("cannot write in `{}`", dir.display()));
    }
    failpoint("tmp", n);
    for name in names {
        match d.rename2(&tmp, &name, libc::RENAME_NOREPLACE) {
            Ok(()) => {
                d.sync();
                failpoint("done", n);
                return Ok(dir.join(name));
            }
            Err(e) if errno(&e) == libc::EEXIST => continue,
            Err(e) if unsupported(&e) => match d.link(&tmp, &name) {
                Ok(()) => {
                    let _ = d.unlink(&tmp);
                    d.sync();
                    failpoint("done", n);
                    return Ok(dir.join(name));
                }
                Err(e) if errno(&e) == libc::EEXIST => continue,
                Err(e) => {
                    let _ = d.unlink(&tmp);
                    return Err(e).with_context(|| format!("cannot write in `{}`", dir.display()));
                }
            },
            Err(e) => {
                let _ = d.unlink(&tmp);
                return Err(e).with_context(|| format!("cannot write in `{}`", dir.display()));
            }
        }
    }
    let _ = d.unlink(&tmp);
    anyhow::bail!("no free file name in `{}`", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    fn judged(t: &Target) -> Judged {
        t.judge(1 << 20).unwrap().unwrap()
    }

    fn swap<'a>(data: &'a [u8], judged: Option<&'a Judged>, backup: bool) -> Swap<'a> {
        Swap {
            data,
            judged,
            new_mode: 0o644,
            new_owner: None,
            backup,
        }
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn mode_survives_and_links_inside_the_directory_are_written_through() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let real = dir.path().join("etc/real.conf");
        std::fs::write(&real, "old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.conf");
        symlink("etc/real.conf", &link).unwrap();
        replace(&link, Some(b"old"), b"new", 0o644, None).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(read(&real), "new");
        assert_eq!(std::fs::metadata(&real).unwrap().mode() & 0o7777, 0o640);
        let dangling = dir.path().join("dangling.conf");
        symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(replace(&dangling, None, b"x", 0o644, None).is_err());
    }

    #[test]
    fn a_link_leaving_the_directory_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let dir = tempfile::tempdir().unwrap();
        symlink(&victim, dir.path().join("x.conf")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let e = Target::resolve(&d, "x.conf").unwrap_err();
        assert!(e.message().contains("outside"), "{e}");
        assert!(e.hint().unwrap().contains("ln -sfn"), "{e}");
        assert!(replace(&dir.path().join("x.conf"), None, b"x", 0o644, None).is_err());
        assert_eq!(read(&victim), "precious");
    }

    #[test]
    fn a_symlink_swapped_in_after_judging_is_replaced_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.conf");
        std::fs::write(&file, "old").unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let t = Target::resolve(&d, "x.conf").unwrap();
        let j = judged(&t);
        // Between judging and writing, the file becomes a link.
        std::fs::remove_file(&file).unwrap();
        symlink(&victim, &file).unwrap();
        let done = t.swap(&swap(b"new", Some(&j), false)).unwrap();
        assert_eq!(read(&victim), "precious");
        assert!(std::fs::symlink_metadata(&file).unwrap().is_file());
        assert_eq!(read(&file), "new");
        let kept = done.raced.expect("the link is kept, not judged dbtune's");
        assert!(std::fs::symlink_metadata(&kept)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_directory_swapped_for_a_link_after_resolving_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.conf"), "precious").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x.conf"), "old").unwrap();
        symlink("sub/x.conf", dir.path().join("x.conf")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let t = Target::resolve(&d, "x.conf").unwrap();
        let j = judged(&t);
        std::fs::rename(dir.path().join("sub"), dir.path().join("moved")).unwrap();
        symlink(outside.path(), dir.path().join("sub")).unwrap();
        t.swap(&swap(b"new", Some(&j), false)).unwrap();
        assert_eq!(read(&outside.path().join("x.conf")), "precious");
        assert_eq!(read(&dir.path().join("moved/x.conf")), "new");
        // Resolved now, the link leads outside: refused.
        assert!(Target::resolve(&d, "x.conf").is_err());
    }

    #[test]
    fn a_link_at_the_backup_name_is_passed_over() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.conf"), "mine").unwrap();
        symlink(&victim, dir.path().join("x.conf.bak")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let t = Target::resolve(&d, "x.conf").unwrap();
        let j = judged(&t);
        let done = t.swap(&swap(b"new", Some(&j), true)).unwrap();
        assert_eq!(read(&victim), "precious");
        assert_eq!(done.backup.unwrap(), dir.path().join("x.conf.bak.1"));
        assert_eq!(read(&dir.path().join("x.conf.bak.1")), "mine");
    }

    #[test]
    fn the_backup_is_the_displaced_file_itself() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.conf");
        std::fs::write(&file, "mine").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let inode = std::fs::metadata(&file).unwrap().ino();
        let d = Dir::open(dir.path()).unwrap();
        let t = Target::resolve(&d, "x.conf").unwrap();
        let j = judged(&t);
        let bak = t
            .swap(&swap(b"new", Some(&j), true))
            .unwrap()
            .backup
            .unwrap();
        let m = std::fs::metadata(&bak).unwrap();
        assert_eq!((m.ino(), m.mode() & 0o7777), (inode, 0o640));
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o640);
    }

    #[test]
    fn an_edit_between_judging_and_replacing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.conf");
        std::fs::write(&file, "old\n").unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let t = Target::resolve(&d, "x.conf").unwrap();
        let j = judged(&t);
        std::fs::write(&file, "old\nedit\n").unwrap();
        let kept = t
            .swap(&swap(b"new\n", Some(&j), false))
            .unwrap()
            .raced
            .unwrap();
        assert_eq!(read(&kept), "old\nedit\n");
        assert_eq!(read(&file), "new\n");
        // Unchanged since judged: nothing is kept.
        let j = judged(&t);
        let done = t.swap(&swap(b"newer\n", Some(&j), false)).unwrap();
        assert!(done.raced.is_none() && done.backup.is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_file_created_after_it_was_judged_absent_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let t = Target::resolve(&d, "x.conf").unwrap();
        assert!(t.judge(1 << 20).unwrap().is_none());
        std::fs::write(dir.path().join("x.conf"), "theirs").unwrap();
        let kept = t.swap(&swap(b"new", None, false)).unwrap().raced.unwrap();
        assert_eq!(read(&kept), "theirs");
        assert_eq!(read(&dir.path().join("x.conf")), "new");
    }

    #[test]
    fn without_renameat2_flags_a_change_before_the_recheck_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.conf");
        std::fs::write(&file, "old").unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let t = Target::resolve(&d, "x.conf").unwrap();
        let j = judged(&t);
        std::fs::write(&file, "old+edit").unwrap();
        let kept = t.swap_with(&swap(b"new", Some(&j), false), false).unwrap();
        assert_eq!(read(&kept.raced.unwrap()), "old+edit");
        assert_eq!(read(&file), "new");
        let j = judged(&t);
        let bak = t.swap_with(&swap(b"newer", Some(&j), true), false).unwrap();
        assert_eq!(read(&bak.backup.unwrap()), "new");
        let j = judged(&t);
        let same = t
            .swap_with(&swap(b"newest", Some(&j), false), false)
            .unwrap();
        assert!(same.raced.is_none() && same.backup.is_none());
        assert_eq!(read(&file), "newest");
    }

    #[test]
    fn state_files_replace_a_link_and_prove_nothing_unless_private_and_ours() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let state = dir.path().join("state.json");
        symlink(&victim, &state).unwrap();
        assert!(matches!(
            d.read_state("state.json", 1024).unwrap(),
            State::Untrusted(_)
        ));
        d.write_state("state.json", b"{}").unwrap();
        assert_eq!(read(&victim), "precious");
        assert!(std::fs::symlink_metadata(&state).unwrap().is_file());
        assert!(
            matches!(d.read_state("state.json", 1024).unwrap(), State::Trusted(b) if b == b"{}")
        );
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(
            matches!(d.read_state("state.json", 1024).unwrap(), State::Untrusted(w) if w.contains("others can write"))
        );
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
            assert!(
                matches!(d.read_state("state.json", 1024).unwrap(), State::Untrusted(w) if w.contains("uid 65534"))
            );
        }
        assert!(matches!(
            d.read_state("none.json", 1024).unwrap(),
            State::Missing
        ));
    }

    #[test]
    fn leftovers_are_removed_when_dbtune_wrote_them_and_kept_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dbtune-tmp-a.conf.12ab"), "known").unwrap();
        std::fs::write(dir.path().join(".dbtune-tmp-b.conf.34cd"), "edit").unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let left = clean_leftovers(&d, &|_, b| b == b"known").unwrap();
        assert_eq!(left.removed, vec![".dbtune-tmp-a.conf.12ab".to_string()]);
        assert_eq!(
            left.kept,
            vec![("b.conf".to_string(), dir.path().join("b.conf.bak"))]
        );
        assert_eq!(read(&dir.path().join("b.conf.bak")), "edit");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn taking_out_removes_only_what_was_judged() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.conf"), "ours").unwrap();
        assert!(d
            .take_out("a.conf", Some(b"ours"), false)
            .unwrap()
            .raced
            .is_none());
        assert!(!dir.path().join("a.conf").exists());
        std::fs::write(dir.path().join("b.conf"), "edited").unwrap();
        let kept = d
            .take_out("b.conf", Some(b"ours"), false)
            .unwrap()
            .raced
            .unwrap();
        assert_eq!(read(&kept), "edited");
        std::fs::write(dir.path().join("c.conf"), "theirs").unwrap();
        let bak = d.take_out("c.conf", None, true).unwrap().backup.unwrap();
        assert_eq!(read(&bak), "theirs");
        assert!(!dir.path().join("c.conf").exists());
    }

    #[test]
    fn a_new_file_never_replaces_one_and_leftovers_go() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".snap-tmp-dead"), "half").unwrap();
        std::fs::write(dir.path().join("s.json"), "older").unwrap();
        let names = ["s.json", "s-1.json"].into_iter().map(String::from);
        let p = create_new(dir.path(), ".snap-tmp-", names, b"new", 0o600).unwrap();
        assert_eq!(p, dir.path().join("s-1.json"));
        assert_eq!(read(&dir.path().join("s.json")), "older");
        assert_eq!(read(&p), "new");
        assert!(!dir.path().join(".snap-tmp-dead").exists());
    }
}
